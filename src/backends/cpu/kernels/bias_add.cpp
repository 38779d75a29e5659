// CPU reference kernel of ops::bias_add: out[r, :] = x[r, :] + bias, in f32, rounded once.
#include <algorithm>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/bias_add_params.h"

namespace mlxn::cpu {
namespace {

template <class T>
void bias_add(const KernelArgs& k) {
  const auto& p = k.params_as<ops::BiasAddParams>();
  const T* x = k.ptr<const T>(0);
  const T* bias = k.ptr<const T>(1);
  T* out = k.ptr<T>(2);
  // out may alias x: each element is read before it is written, by the same thread.
  const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t{1} << 15) / p.n);
  parallel_for(p.rows, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      for (std::int64_t j = 0; j < p.n; ++j) {
        out[r * p.n + j] = from_f32<T>(to_f32(x[r * p.n + j]) + to_f32(bias[j]));
      }
    }
  });
}

}  // namespace

KernelFn bias_add_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&bias_add<typename decltype(tag)::type>);
  });
}

}  // namespace mlxn::cpu
