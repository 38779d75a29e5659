// CPU reference kernel for kv_cache_append: copies each token's K/V rows into the head-major cache
// at its slot, converting dtypes; in ring mode the greatest position of a slot wins.
#include <algorithm>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/kv_cache_kernels.h"
#include "backends/cpu/kernels/kv_cache_rows.h"
#include "backends/cpu/thread_pool.h"
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

  const auto winner = slot_winners("kv_cache_append", pos, p.n_tokens, p.capacity, p.ring != 0);
  parallel_for(p.n_tokens, std::max<std::int64_t>(1, 4096 / (p.n_kv_heads * p.head_dim + 1)),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t t = lo; t < hi; ++t) {
                   const std::int64_t slot = cache_slot(pos[t], p.capacity, p.ring != 0);
                   if (winner.at(slot) != t) continue;
                   write_cache_rows(k_new, v_new, t, slot, p.n_kv_heads, p.head_dim, p.capacity,
                                    k_cache, v_cache);
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
