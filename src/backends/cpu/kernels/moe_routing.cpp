// CPU reference kernels of MoE routing: top-k expert selection with softmax or sigmoid weights,
// and the weighted combine of expert outputs (with an optional gated shared expert).
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/moe_routing_kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/moe_routing_params.h"
#include "ops/sampling_params.h"

namespace mlxn::cpu {
namespace {

template <class T>
void moe_route(const KernelArgs& k) {
  const auto& p = k.params_as<ops::MoeRouteParams>();
  const T* logits = k.ptr<const T>(0);
  auto* ids = k.ptr<std::int32_t>(1);
  auto* weights = k.ptr<float>(2);
  const std::int64_t E = p.n_experts, K = p.k;
  parallel_for(
      p.n_tokens, std::max<std::int64_t>(1, 4096 / E), [&](std::int64_t lo, std::int64_t hi) {
        std::vector<std::uint64_t> words(E);
        std::vector<double> w(K);
        for (std::int64_t t = lo; t < hi; ++t) {
          const T* row = logits + t * E;
          for (std::int64_t e = 0; e < E; ++e) {
            words[e] =
                ops::rank_word(ops::order_key(to_f32(row[e])), static_cast<std::uint32_t>(e));
          }
          std::partial_sort(words.begin(), words.begin() + K, words.end(), std::greater<>());
          const double x_max = to_f32(row[ops::rank_word_index(words[0])]);
          double all = 0.0;  // softmax denominator over every expert
          if (p.scoring == ops::kScoringSoftmax) {
            for (std::int64_t e = 0; e < E; ++e) all += std::exp(double(to_f32(row[e])) - x_max);
          }
          double selected = 0.0;
          for (std::int64_t j = 0; j < K; ++j) {
            const double x = to_f32(row[ops::rank_word_index(words[j])]);
            w[j] = p.scoring == ops::kScoringSoftmax ? std::exp(x - x_max) / all
                                                     : 1.0 / (1.0 + std::exp(-x));
            selected += w[j];
          }
          for (std::int64_t j = 0; j < K; ++j) {
            const double v = p.renormalize ? w[j] / selected : w[j];
            ids[t * K + j] = static_cast<std::int32_t>(ops::rank_word_index(words[j]));
            weights[t * K + j] = static_cast<float>(v * p.scale);
          }
        }
      });
}

template <class T, bool kShared, bool kGate>
void moe_combine(const KernelArgs& k) {
  const auto& p = k.params_as<ops::MoeCombineParams>();
  const T* e = k.ptr<const T>(0);
  const float* w = k.ptr<const float>(1);
  const T* shared = kShared ? k.ptr<const T>(2) : nullptr;
  const T* gate = kGate ? k.ptr<const T>(3) : nullptr;
  T* out = k.ptr<T>(kGate ? 4 : (kShared ? 3 : 2));
  const std::int64_t H = p.hidden;
  parallel_for(p.n_tokens, std::max<std::int64_t>(1, 8192 / (H * p.k)),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t t = lo; t < hi; ++t) {
                   float g = 1.0f;
                   if constexpr (kGate) g = 1.0f / (1.0f + std::exp(-to_f32(gate[t])));
                   for (std::int64_t h = 0; h < H; ++h) {
                     float acc = 0.0f;
                     for (std::int64_t j = 0; j < p.k; ++j) {
                       acc += w[t * p.k + j] * to_f32(e[(t * p.k + j) * H + h]);
                     }
                     if constexpr (kShared) acc += g * to_f32(shared[t * H + h]);
                     out[t * H + h] = from_f32<T>(acc);
                   }
                 }
               });
}

}  // namespace

KernelFn moe_route_kernel(DType dtype) {
  return dispatch_float<KernelFn>(
      dtype, [](auto tag) -> KernelFn { return &moe_route<typename decltype(tag)::type>; });
}

KernelFn moe_combine_kernel(DType dtype, bool shared, bool gate) {
  if (gate && !shared) return nullptr;
  return dispatch_float<KernelFn>(dtype, [&](auto tag) -> KernelFn {
    using T = typename decltype(tag)::type;
    if (gate) return &moe_combine<T, true, true>;
    return shared ? &moe_combine<T, true, false> : &moe_combine<T, false, false>;
  });
}

}  // namespace mlxn::cpu
