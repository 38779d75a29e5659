// CPU reference kernels of argmax, top-k and sampling (the oracle: sort, then walk in rank order),
// and the registration of the sampling family's CPU kernels.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/moe_routing_kernels.h"
#include "backends/cpu/kernels/sampling_kernels.h"
#include "backends/cpu/kernels/softmax_kernels.h"
#include "backends/cpu/thread_pool.h"
#include "mlxn/core/kernel_registry.h"
#include "ops/sampling_params.h"

namespace mlxn::cpu {
namespace {

using ops::order_key;
using ops::rank_word;
using ops::rank_word_index;

// Largest rank word of a row: the maximum at its lowest index.
template <class T>
std::uint64_t row_max_word(const T* row, std::int64_t cols) {
  std::uint64_t best = 0;
  for (std::int64_t c = 0; c < cols; ++c) {
    best = std::max(best, rank_word(order_key(to_f32(row[c])), static_cast<std::uint32_t>(c)));
  }
  return best;
}

std::int64_t row_grain(std::int64_t cols) {
  return std::max<std::int64_t>(1, (1 << 14) / cols);
}

template <class T>
void argmax(const KernelArgs& k) {
  const auto& p = k.params_as<ops::ArgmaxParams>();
  const T* x = k.ptr<const T>(0);
  auto* idx = k.ptr<std::int32_t>(1);
  auto* val = k.ptr<float>(2);
  parallel_for(p.rows, row_grain(p.cols), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const std::uint32_t i = rank_word_index(row_max_word(x + r * p.cols, p.cols));
      idx[r] = static_cast<std::int32_t>(i);
      val[r] = to_f32(x[r * p.cols + i]);
    }
  });
}

template <class T>
void top_k(const KernelArgs& k) {
  const auto& p = k.params_as<ops::TopKParams>();
  const T* x = k.ptr<const T>(0);
  auto* values = k.ptr<float>(1);
  auto* indices = k.ptr<std::int32_t>(2);
  parallel_for(p.rows, row_grain(p.cols), [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::uint64_t> words(p.cols);
    for (std::int64_t r = lo; r < hi; ++r) {
      const T* row = x + r * p.cols;
      for (std::int64_t c = 0; c < p.cols; ++c) {
        words[c] = rank_word(order_key(to_f32(row[c])), static_cast<std::uint32_t>(c));
      }
      std::partial_sort(words.begin(), words.begin() + p.k, words.end(), std::greater<>());
      for (std::int64_t j = 0; j < p.k; ++j) {
        values[r * p.k + j] = ops::key_value(static_cast<std::uint32_t>(words[j] >> 32));
        indices[r * p.k + j] = static_cast<std::int32_t>(rank_word_index(words[j]));
      }
    }
  });
}

// One row of sample(): the algorithm of include/mlxn/ops/sampling.h step by step, with w in f32
// (as the CUDA kernel computes it) and the cumulative sums in double.
template <class T>
std::int32_t sample_row(const T* row, std::int64_t vocab, float temperature, std::int32_t top_k,
                        float top_p, float min_p, float u, std::vector<std::uint64_t>& words,
                        std::vector<double>& cum) {
  const std::uint64_t best = row_max_word(row, vocab);
  const float x_max = ops::key_value(static_cast<std::uint32_t>(best >> 32));
  if (!(temperature > 0.0f) || !std::isfinite(x_max)) {
    return static_cast<std::int32_t>(rank_word_index(best));
  }
  for (std::int64_t c = 0; c < vocab; ++c) {
    words[c] = rank_word(order_key(to_f32(row[c])), static_cast<std::uint32_t>(c));
  }
  std::sort(words.begin(), words.end(), std::greater<>());
  const float l_max = x_max / temperature;
  auto weight = [&](std::uint64_t w) {
    const float l = ops::key_value(static_cast<std::uint32_t>(w >> 32)) / temperature;
    return std::exp(l - l_max);
  };
  // cum[j] = W(j), the mass of the first j ranks.
  cum[0] = 0.0;
  for (std::int64_t j = 0; j < vocab; ++j) cum[j + 1] = cum[j] + weight(words[j]);

  std::int64_t n = (top_k > 0 && top_k < vocab) ? top_k : vocab;
  if (top_p > 0.0f && top_p < 1.0f) {
    const double target = static_cast<double>(top_p) * cum[n];
    std::int64_t m = 1;
    while (m < n && cum[m] < target) ++m;
    n = m;
  }
  if (min_p > 0.0f) {
    const float threshold = std::min(min_p, 1.0f);
    std::int64_t m = 0;
    while (m < n && weight(words[m]) >= threshold) ++m;
    n = std::max<std::int64_t>(m, 1);
  }
  const double target = static_cast<double>(u) * cum[n];
  std::int64_t r = 0;
  while (r < n - 1 && cum[r + 1] <= target) ++r;
  return static_cast<std::int32_t>(rank_word_index(words[r]));
}

template <class T>
void sample(const KernelArgs& k) {
  const auto& p = k.params_as<ops::SampleParams>();
  const T* logits = k.ptr<const T>(0);
  const float* temperature = k.ptr<const float>(1);
  const std::int32_t* top_k = k.ptr<const std::int32_t>(2);
  const float* top_p = k.ptr<const float>(3);
  const float* min_p = k.ptr<const float>(4);
  const float* u = k.ptr<const float>(5);
  auto* tokens = k.ptr<std::int32_t>(6);
  parallel_for(p.rows, 1, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::uint64_t> words(p.vocab);
    std::vector<double> cum(p.vocab + 1);
    for (std::int64_t r = lo; r < hi; ++r) {
      tokens[r] = sample_row(logits + r * p.vocab, p.vocab, temperature[r], top_k[r], top_p[r],
                             min_p[r], u[r], words, cum);
    }
  });
}

template <template <class> class K>
KernelFn by_float(DType dtype) {
  return dispatch_float<KernelFn>(
      dtype, [](auto tag) -> KernelFn { return &K<typename decltype(tag)::type>::run; });
}

template <class T>
struct ArgmaxK {
  static void run(const KernelArgs& k) { argmax<T>(k); }
};
template <class T>
struct TopKK {
  static void run(const KernelArgs& k) { top_k<T>(k); }
};
template <class T>
struct SampleK {
  static void run(const KernelArgs& k) { sample<T>(k); }
};

KernelFactory dtype_factory(KernelFn (*lookup)(DType)) {
  return [lookup](const Specialization& spec) -> const void* {
    return reinterpret_cast<const void*>(lookup(dtype_from_name(spec.get("dtype"))));
  };
}

bool flag(const Specialization& spec, const char* name) {
  return spec.has(name) && spec.get(name) == "1";
}

}  // namespace

KernelFn argmax_kernel(DType dtype) {
  return by_float<ArgmaxK>(dtype);
}
KernelFn top_k_kernel(DType dtype) {
  return by_float<TopKK>(dtype);
}
KernelFn sample_kernel(DType dtype) {
  return by_float<SampleK>(dtype);
}

void register_sampling_kernels(KernelRegistry& registry) {
  registry.register_factory("argmax", dtype_factory(argmax_kernel));
  registry.register_factory("top_k", dtype_factory(top_k_kernel));
  registry.register_factory("sample", dtype_factory(sample_kernel));
  registry.register_factory("moe_route", dtype_factory(moe_route_kernel));
  registry.register_factory("softmax", [](const Specialization& spec) -> const void* {
    return reinterpret_cast<const void*>(softmax_kernel(
        dtype_from_name(spec.get("src")), dtype_from_name(spec.get("dst")), flag(spec, "masked")));
  });
  registry.register_factory("moe_combine", [](const Specialization& spec) -> const void* {
    return reinterpret_cast<const void*>(moe_combine_kernel(
        dtype_from_name(spec.get("dtype")), flag(spec, "shared"), flag(spec, "gate")));
  });
}

}  // namespace mlxn::cpu
