// CPU reference kernel of the fused rope + KV-cache append: the rope kernel's float64 rotation of
// q and k in place, then kv_cache_append's conversion of the rotated k and of v into the cache,
// one token per task. The arithmetic is the same code as rope.cpp's and kv_cache.cpp's
// (rope_rotation.h, kv_cache_rows.h), so the results equal the three-op sequence bit for bit.
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/kv_cache_kernels.h"
#include "backends/cpu/kernels/kv_cache_rows.h"
#include "backends/cpu/kernels/rope_rotation.h"
#include "backends/cpu/thread_pool.h"
#include "ops/rope_kv_append_params.h"

namespace mlxn::cpu {
namespace {

// Bindings q, k, v, positions, inv_freq, k_cache, v_cache.
template <class Tsrc, class Tdst>
void rope_kv_append(const KernelArgs& a) {
  const auto& p = a.params_as<ops::RopeKvAppendParams>();
  Tsrc* q = a.ptr<Tsrc>(0);
  Tsrc* k = a.ptr<Tsrc>(1);
  const Tsrc* v = a.ptr<const Tsrc>(2);
  const std::int32_t* pos = a.ptr<const std::int32_t>(3);
  const float* inv_freq = a.ptr<const float>(4);
  Tdst* k_cache = a.ptr<Tdst>(5);
  Tdst* v_cache = a.ptr<Tdst>(6);
  const std::int64_t half = p.rotary_dim / 2;
  const bool neox = p.layout == ops::kRopeNeox;
  const std::int64_t row = p.head_dim;

  // As kv_cache_append: validate every position before writing anything, and find each slot's
  // winner. Without K/V heads nothing is appended, as there.
  std::unordered_map<std::int64_t, std::int64_t> winner;  // slot -> token
  if (p.n_kv_heads > 0) {
    winner = slot_winners("rope_kv_append", pos, p.n_tokens, p.capacity, p.ring != 0);
  }

  const std::int64_t grain =
      std::max<std::int64_t>(1, 4096 / ((p.n_heads + 2 * p.n_kv_heads) * p.head_dim + 1));
  parallel_for(p.n_tokens, grain, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<double> cos_a(half), sin_a(half);
    for (std::int64_t t = lo; t < hi; ++t) {
      rope_angles(pos[t], inv_freq, half, p.scale, cos_a, sin_a);
      for (std::int64_t h = 0; h < p.n_heads; ++h) {
        Tsrc* qh = q + (t * p.n_heads + h) * row;
        rotate_head(qh, qh, half, neox, cos_a, sin_a);
      }
      for (std::int64_t h = 0; h < p.n_kv_heads; ++h) {
        Tsrc* kh = k + (t * p.n_kv_heads + h) * row;
        rotate_head(kh, kh, half, neox, cos_a, sin_a);
      }
      if (winner.empty()) continue;  // no K/V heads
      const std::int64_t slot = cache_slot(pos[t], p.capacity, p.ring != 0);
      if (winner.at(slot) == t) {
        write_cache_rows(k, v, t, slot, p.n_kv_heads, row, p.capacity, k_cache, v_cache);
      }
    }
  });
}

}  // namespace

KernelFn rope_kv_append_kernel(DType src, DType dst) {
  return dispatch_float<KernelFn>(src, [dst](auto src_tag) {
    return dispatch_float<KernelFn>(dst, [](auto dst_tag) {
      return static_cast<KernelFn>(
          &rope_kv_append<typename decltype(src_tag)::type, typename decltype(dst_tag)::type>);
    });
  });
}

}  // namespace mlxn::cpu
