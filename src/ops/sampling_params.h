// Parameter structs and the shared order key of argmax, top-k and sampling (CPU and CUDA).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MLXN_HD __host__ __device__ __forceinline__
#else
#define MLXN_HD inline
#endif

namespace mlxn::ops {

/// argmax: idx[r] = the lowest c with x[r, c] maximal, val[r] = x[r, c] as f32. Order as
/// order_key (NaN above +inf). Bindings: x, idx (i32), val (f32). Spec: dtype.
struct ArgmaxParams {
  std::int64_t rows;
  std::int64_t cols;
};

/// top_k: the k largest of each row in descending order_key, ties by lower index. Bindings: x,
/// values (f32 [rows, k]), indices (i32 [rows, k]). Spec: dtype.
struct TopKParams {
  std::int64_t rows;
  std::int64_t cols;
  std::int64_t k;
};

/// sample: one token per row, algorithm in include/mlxn/ops/sampling.h. Bindings: logits,
/// temperature (f32 [rows]), top_k (i32 [rows]), top_p (f32 [rows]), min_p (f32 [rows]),
/// u (f32 [rows]), tokens (i32 [rows]). Spec: dtype.
struct SampleParams {
  std::int64_t rows;
  std::int64_t vocab;
};

/// Largest k top_k accepts and the largest vocab / cols index the kernels handle (indices i32).
inline constexpr std::int64_t kMaxTopK = 1024;
inline constexpr std::int64_t kMaxSampleCols = std::int64_t{1} << 31;

/// A total order on f32 as uint32: larger value -> larger key. -0 and +0 map to the same key,
/// every NaN maps to the largest key (NaN counts as the maximum, as torch.argmax / topk do).
/// Real values map to keys >= 0x007fffff (-inf), so key 0 is free as a "nothing" marker.
MLXN_HD std::uint32_t order_key(float v) {
  if (v != v) return 0xffffffffu;
  if (v == 0.0f) v = 0.0f;
#if defined(__CUDA_ARCH__)
  const std::uint32_t b = __float_as_uint(v);
#else
  std::uint32_t b;
  std::memcpy(&b, &v, 4);
#endif
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/// Inverse of order_key on its image (NaN comes back as a quiet NaN, -0 as +0).
MLXN_HD float key_value(std::uint32_t key) {
  const std::uint32_t b = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float v;
  std::memcpy(&v, &b, 4);
  return v;
#endif
}

/// Key and index in one word: the max of composites is the largest key at the lowest index.
MLXN_HD std::uint64_t rank_word(std::uint32_t key, std::uint32_t index) {
  return (static_cast<std::uint64_t>(key) << 32) | (0xffffffffu - index);
}
MLXN_HD std::uint32_t rank_word_index(std::uint64_t w) {
  return 0xffffffffu - static_cast<std::uint32_t>(w);
}

}  // namespace mlxn::ops
