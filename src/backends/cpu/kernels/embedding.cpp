// CPU reference kernels of the embedding lookups: dense rows and MLX-affine-quantized rows.
#include <algorithm>
#include <string>

#include "backends/cpu/kernels/embedding_kernels.h"
#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "mlxn/core/error.h"
#include "ops/embedding_params.h"

namespace mlxn::cpu {
namespace {

// Checked before any row is touched, so a bad id never causes an out-of-bounds read.
void check_ids(const char* op, const std::int32_t* ids, std::int64_t n, std::int64_t vocab) {
  for (std::int64_t t = 0; t < n; ++t) {
    if (ids[t] < 0 || ids[t] >= vocab) {
      throw Error(ErrorKind::CommandBuffer, std::string(op) + ": id " + std::to_string(ids[t]) +
                                                " of token " + std::to_string(t) +
                                                " is outside the vocabulary [0, " +
                                                std::to_string(vocab) + ")");
    }
  }
}

template <class T>
void embedding(const KernelArgs& k) {
  const auto& p = k.params_as<ops::EmbeddingParams>();
  const T* table = k.ptr<const T>(0);
  const std::int32_t* ids = k.ptr<const std::int32_t>(1);
  T* out = k.ptr<T>(2);
  check_ids("embedding", ids, p.n_tokens, p.vocab);
  const std::int64_t grain = std::max<std::int64_t>(1, 8192 / p.hidden);
  parallel_for(p.n_tokens, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t) {
      const T* row = table + static_cast<std::int64_t>(ids[t]) * p.hidden;
      for (std::int64_t j = 0; j < p.hidden; ++j) {
        out[t * p.hidden + j] = from_f32<T>(to_f32(row[j]) * p.scale);
      }
    }
  });
}

// Code j of a row: bits [j * bits, (j + 1) * bits) of the row's little-endian word stream.
std::uint32_t code_at(const std::uint32_t* row, std::int64_t j, int bits) {
  const std::int64_t bit = j * bits;
  const std::int64_t word = bit / 32;
  const int shift = static_cast<int>(bit % 32);
  std::uint64_t window = row[word] >> shift;
  if (shift + bits > 32) window |= static_cast<std::uint64_t>(row[word + 1]) << (32 - shift);
  return static_cast<std::uint32_t>(window & ((1u << bits) - 1u));
}

template <class T, class S>
void embedding_quantized(const KernelArgs& k) {
  const auto& p = k.params_as<ops::EmbeddingQuantizedParams>();
  const std::uint32_t* packed = k.ptr<const std::uint32_t>(0);
  const S* scales = k.ptr<const S>(1);
  const S* biases = k.ptr<const S>(2);
  const std::int32_t* ids = k.ptr<const std::int32_t>(3);
  T* out = k.ptr<T>(4);
  check_ids("embedding_quantized", ids, p.n_tokens, p.vocab);
  const std::int64_t row_words = p.hidden * p.bits / 32;
  const std::int64_t groups = p.hidden / p.group_size;
  const std::int64_t grain = std::max<std::int64_t>(1, 8192 / p.hidden);
  parallel_for(p.n_tokens, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t) {
      const std::int64_t id = ids[t];
      const std::uint32_t* row = packed + id * row_words;
      for (std::int64_t j = 0; j < p.hidden; ++j) {
        const std::int64_t g = id * groups + j / p.group_size;
        const float w =
            to_f32(scales[g]) * static_cast<float>(code_at(row, j, p.bits)) + to_f32(biases[g]);
        out[t * p.hidden + j] = from_f32<T>(w * p.scale);
      }
    }
  });
}

template <class T>
KernelFn quantized_for(DType scale_dtype) {
  return dispatch_float<KernelFn>(scale_dtype, [](auto tag) {
    return static_cast<KernelFn>(&embedding_quantized<T, typename decltype(tag)::type>);
  });
}

}  // namespace

void register_embedding_kernels(KernelRegistry& registry) {
  registry.register_factory("embedding", [](const Specialization& spec) -> const void* {
    const KernelFn fn = dispatch_float<KernelFn>(dtype_from_name(spec.get("dtype")), [](auto tag) {
      return static_cast<KernelFn>(&embedding<typename decltype(tag)::type>);
    });
    return reinterpret_cast<const void*>(fn);
  });
  registry.register_factory("embedding_quantized", [](const Specialization& spec) -> const void* {
    const DType scale_dtype = dtype_from_name(spec.get("scale_dtype"));
    const KernelFn fn =
        dispatch_float<KernelFn>(dtype_from_name(spec.get("dtype")), [scale_dtype](auto tag) {
          return quantized_for<typename decltype(tag)::type>(scale_dtype);
        });
    return reinterpret_cast<const void*>(fn);
  });
}

}  // namespace mlxn::cpu
