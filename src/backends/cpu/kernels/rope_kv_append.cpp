// CPU reference kernel of the fused rope + KV-cache append: the rope kernel's float64 rotation of
// q and k in place, then kv_cache_append's conversion of the rotated k and of v into the cache,
// one token per task. The arithmetic is rope.cpp's and kv_cache.cpp's, expression for expression,
// so the results equal the three-op sequence bit for bit.
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/kv_cache_kernels.h"
#include "backends/cpu/thread_pool.h"
#include "mlxn/core/error.h"
#include "ops/rope_kv_append_params.h"

namespace mlxn::cpu {
namespace {

// Rotates one head in place with the token's cos_a / sin_a (rope.cpp's loop; in place, so the
// pass-through dims stay as they are).
template <class T>
void rotate(T* x, std::int64_t half, bool neox, const std::vector<double>& cos_a,
            const std::vector<double>& sin_a) {
  for (std::int64_t i = 0; i < half; ++i) {
    const std::int64_t u = neox ? i : 2 * i;
    const std::int64_t v = neox ? i + half : 2 * i + 1;
    const double xu = to_f32(x[u]), xv = to_f32(x[v]);  // both read before either write
    x[u] = from_f32<T>(static_cast<float>(xu * cos_a[i] - xv * sin_a[i]));
    x[v] = from_f32<T>(static_cast<float>(xv * cos_a[i] + xu * sin_a[i]));
  }
}

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
  // winner (the greatest position). Without K/V heads nothing is appended, as there.
  std::unordered_map<std::int64_t, std::int64_t> winner;  // slot -> token
  if (p.n_kv_heads > 0) {
    for (std::int64_t t = 0; t < p.n_tokens; ++t) {
      if (pos[t] < 0 || (!p.ring && pos[t] >= p.capacity)) {
        throw Error(ErrorKind::CommandBuffer,
                    "rope_kv_append: token " + std::to_string(t) + " has position " +
                        std::to_string(pos[t]) + " outside the cache (capacity " +
                        std::to_string(p.capacity) + (p.ring ? ", ring)" : ")"));
      }
      const std::int64_t slot = p.ring ? pos[t] % p.capacity : pos[t];
      auto [it, fresh] = winner.try_emplace(slot, t);
      if (!fresh && pos[t] > pos[it->second]) it->second = t;
    }
  }

  const std::int64_t grain =
      std::max<std::int64_t>(1, 4096 / ((p.n_heads + 2 * p.n_kv_heads) * p.head_dim + 1));
  parallel_for(p.n_tokens, grain, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<double> cos_a(half), sin_a(half);
    for (std::int64_t t = lo; t < hi; ++t) {
      for (std::int64_t i = 0; i < half; ++i) {
        const double ang = static_cast<double>(pos[t]) * static_cast<double>(inv_freq[i]);
        cos_a[i] = std::cos(ang) * p.scale;
        sin_a[i] = std::sin(ang) * p.scale;
      }
      for (std::int64_t h = 0; h < p.n_heads; ++h) {
        rotate(q + (t * p.n_heads + h) * row, half, neox, cos_a, sin_a);
      }
      for (std::int64_t h = 0; h < p.n_kv_heads; ++h) {
        rotate(k + (t * p.n_kv_heads + h) * row, half, neox, cos_a, sin_a);
      }
      if (p.n_kv_heads == 0) continue;
      const std::int64_t slot = p.ring ? pos[t] % p.capacity : pos[t];
      if (winner.at(slot) != t) continue;
      for (std::int64_t h = 0; h < p.n_kv_heads; ++h) {
        const std::int64_t src = (t * p.n_kv_heads + h) * row;
        const std::int64_t dst = (h * p.capacity + slot) * row;
        for (std::int64_t d = 0; d < row; ++d) {
          k_cache[dst + d] = from_f32<Tdst>(to_f32(k[src + d]));
          v_cache[dst + d] = from_f32<Tdst>(to_f32(v[src + d]));
        }
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
