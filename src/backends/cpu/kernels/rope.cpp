// CPU reference kernel of RoPE: angles, sines and cosines in double, one token per task.
#include <algorithm>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/rope_kernels.h"
#include "backends/cpu/kernels/rope_rotation.h"
#include "backends/cpu/thread_pool.h"
#include "ops/rope_params.h"

namespace mlxn::cpu {
namespace {

template <class T>
void rope(const KernelArgs& k) {
  const auto& p = k.params_as<ops::RopeParams>();
  const T* x = k.ptr<const T>(0);
  const std::int32_t* pos = k.ptr<const std::int32_t>(1);
  const float* inv_freq = k.ptr<const float>(2);
  T* out = k.ptr<T>(3);
  const std::int64_t half = p.rotary_dim / 2;
  const bool neox = p.layout == ops::kRopeNeox;
  const std::int64_t grain = std::max<std::int64_t>(1, 4096 / (p.n_heads * p.head_dim));
  parallel_for(p.n_tokens, grain, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<double> cos_a(half), sin_a(half);
    for (std::int64_t t = lo; t < hi; ++t) {
      rope_angles(pos[t], inv_freq, half, p.scale, cos_a, sin_a);
      for (std::int64_t h = 0; h < p.n_heads; ++h) {
        const T* xh = x + t * p.x_token_stride + h * p.head_dim;
        T* oh = out + t * p.out_token_stride + h * p.head_dim;
        rotate_head(xh, oh, half, neox, cos_a, sin_a);
        if (oh != xh) {
          for (std::int64_t d = p.rotary_dim; d < p.head_dim; ++d) oh[d] = xh[d];
        }
      }
    }
  });
}

}  // namespace

void register_rope_kernels(KernelRegistry& registry) {
  registry.register_factory("rope", [](const Specialization& spec) -> const void* {
    const KernelFn fn = dispatch_float<KernelFn>(dtype_from_name(spec.get("dtype")), [](auto tag) {
      return static_cast<KernelFn>(&rope<typename decltype(tag)::type>);
    });
    return reinterpret_cast<const void*>(fn);
  });
}

}  // namespace mlxn::cpu
