// CPU reference kernel for kv_cache_append: copies each token's K/V rows into the head-major cache
// at its slot, converting dtypes; in ring mode the greatest position of a slot wins.
#include <algorithm>
#include <string>
#include <unordered_map>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/kv_cache_kernels.h"
#include "backends/cpu/thread_pool.h"
#include "mlxn/core/error.h"
#include "ops/kv_cache_params.h"

namespace mlxn::cpu {
namespace {

// Bindings k_new, v_new, positions, k_cache, v_cache.
template <class Tsrc, class Tdst>
void append(const KernelArgs& a) {
  const auto& p = a.params_as<ops::KvCacheAppendParams>();
  const Tsrc* k_new = a.ptr<const Tsrc>(0);
  const Tsrc* v_new = a.ptr<const Tsrc>(1);
  const std::int32_t* pos = a.ptr<const std::int32_t>(2);
  Tdst* k_cache = a.ptr<Tdst>(3);
  Tdst* v_cache = a.ptr<Tdst>(4);

  // Validate every position before writing anything, and find each slot's winner: the token with
  // the greatest position (positions are distinct, so there is one).
  std::unordered_map<std::int64_t, std::int64_t> winner;  // slot -> token
  for (std::int64_t t = 0; t < p.n_tokens; ++t) {
    if (pos[t] < 0 || (!p.ring && pos[t] >= p.capacity)) {
      throw Error(ErrorKind::CommandBuffer,
                  "kv_cache_append: token " + std::to_string(t) + " has position " +
                      std::to_string(pos[t]) + " outside the cache (capacity " +
                      std::to_string(p.capacity) + (p.ring ? ", ring)" : ")"));
    }
    const std::int64_t slot = p.ring ? pos[t] % p.capacity : pos[t];
    auto [it, fresh] = winner.try_emplace(slot, t);
    if (!fresh && pos[t] > pos[it->second]) it->second = t;
  }

  const std::int64_t row = p.head_dim;
  parallel_for(p.n_tokens, std::max<std::int64_t>(1, 4096 / (p.n_kv_heads * row + 1)),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t t = lo; t < hi; ++t) {
                   const std::int64_t slot = p.ring ? pos[t] % p.capacity : pos[t];
                   if (winner.at(slot) != t) continue;
                   for (std::int64_t h = 0; h < p.n_kv_heads; ++h) {
                     const std::int64_t src = (t * p.n_kv_heads + h) * row;
                     const std::int64_t dst = (h * p.capacity + slot) * row;
                     for (std::int64_t d = 0; d < row; ++d) {
                       k_cache[dst + d] = from_f32<Tdst>(to_f32(k_new[src + d]));
                       v_cache[dst + d] = from_f32<Tdst>(to_f32(v_new[src + d]));
                     }
                   }
                 }
               });
}

}  // namespace

KernelFn kv_cache_append_kernel(DType src, DType dst) {
  return dispatch_float<KernelFn>(src, [dst](auto src_tag) {
    return dispatch_float<KernelFn>(dst, [](auto dst_tag) {
      return static_cast<KernelFn>(
          &append<typename decltype(src_tag)::type, typename decltype(dst_tag)::type>);
    });
  });
}

void register_kv_cache_kernels(KernelRegistry& registry) {
  registry.register_factory("kv_cache_append", [](const Specialization& spec) -> const void* {
    return reinterpret_cast<const void*>(
        kv_cache_append_kernel(dtype_from_name(spec.get("src")), dtype_from_name(spec.get("dst"))));
  });
  registry.register_factory("rope_kv_append", [](const Specialization& spec) -> const void* {
    return reinterpret_cast<const void*>(
        rope_kv_append_kernel(dtype_from_name(spec.get("src")), dtype_from_name(spec.get("dst"))));
  });
}

}  // namespace mlxn::cpu
