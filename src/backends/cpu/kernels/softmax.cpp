// CPU reference kernel of row softmax (optionally scaled and masked), accumulating in double.
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/softmax_kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/softmax_params.h"

namespace mlxn::cpu {
namespace {

template <class Tin, class Tout, bool kMasked>
void softmax(const KernelArgs& k) {
  const auto& p = k.params_as<ops::SoftmaxParams>();
  const Tin* x = k.ptr<const Tin>(0);
  const Tin* mask = kMasked ? k.ptr<const Tin>(1) : nullptr;
  Tout* out = k.ptr<Tout>(kMasked ? 2 : 1);
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 14) / p.cols);
  parallel_for(p.rows, grain, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> v(p.cols);
    for (std::int64_t r = lo; r < hi; ++r) {
      const Tin* xr = x + r * p.cols;
      const Tin* mr = kMasked ? mask + (r % p.mask_rows) * p.cols : nullptr;
      // v is formed in f32 exactly as the CUDA kernel forms it, so both see the same inputs.
      float m = -std::numeric_limits<float>::infinity();
      for (std::int64_t c = 0; c < p.cols; ++c) {
        float t = to_f32(xr[c]) * p.scale;
        if constexpr (kMasked) t += to_f32(mr[c]);
        v[c] = t;
        m = std::max(m, t);
      }
      Tout* o = out + r * p.cols;
      if (m == -std::numeric_limits<float>::infinity()) {  // fully masked row
        for (std::int64_t c = 0; c < p.cols; ++c) o[c] = from_f32<Tout>(0.0f);
        continue;
      }
      double sum = 0.0;
      for (std::int64_t c = 0; c < p.cols; ++c) sum += std::exp(double(v[c]) - m);
      for (std::int64_t c = 0; c < p.cols; ++c) {
        o[c] = from_f32<Tout>(static_cast<float>(std::exp(double(v[c]) - m) / sum));
      }
    }
  });
}

template <class Tin, class Tout>
KernelFn pick(bool masked) {
  return masked ? &softmax<Tin, Tout, true> : &softmax<Tin, Tout, false>;
}

}  // namespace

KernelFn softmax_kernel(DType src, DType dst, bool masked) {
  if (dst != src && dst != DType::F32) return nullptr;
  return dispatch_float<KernelFn>(src, [&](auto tag) -> KernelFn {
    using T = typename decltype(tag)::type;
    return dst == src ? pick<T, T>(masked) : pick<T, float>(masked);
  });
}

}  // namespace mlxn::cpu
