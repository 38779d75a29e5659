// CPU reference kernel of ops::apply_penalties: walks each row's (token id, count) pairs and
// penalizes those logits in place, in f32, rounded once.
#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/penalties_params.h"

namespace mlxn::cpu {
namespace {

template <class T>
void apply_penalties(const KernelArgs& k) {
  const auto& p = k.params_as<ops::PenaltiesParams>();
  T* logits = k.ptr<T>(0);
  const std::int32_t* pairs = k.ptr<const std::int32_t>(1);
  parallel_for(p.rows, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      for (std::int64_t j = 0; j < p.n_valid; ++j) {
        const std::int64_t id = pairs[(r * p.n + j) * 2];
        const std::int32_t count = pairs[(r * p.n + j) * 2 + 1];
        // Padding and foreign ids are skipped rather than failing the command buffer: the pairs
        // come from the host, which pads fixed-size buffers with -1.
        if (id < 0 || id >= p.vocab || count <= 0) continue;
        T& slot = logits[r * p.vocab + id];
        float x = to_f32(slot);
        x = x > 0.0f ? x / p.repetition : x * p.repetition;
        // Product and sum rounded separately, as the CUDA kernel does with __fmul_rn/__fadd_rn.
        const float freq = static_cast<float>(count) * p.frequency;
        const float sub = freq + p.presence;
        slot = from_f32<T>(x - sub);
      }
    }
  });
}

}  // namespace

KernelFn penalties_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&apply_penalties<typename decltype(tag)::type>);
  });
}

}  // namespace mlxn::cpu
