// Parameter structs of the ops, shared by the CPU and CUDA kernels (plain data, no host types).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// add, mul: out[i] = a[i] (op) b[i] for i < n. Bindings: a, b, out. Spec: dtype.
struct BinaryParams {
  std::int64_t n;
};

/// cast: out[i] = convert(in[i]) for i < n. Bindings: in, out. Spec: src, dst.
struct CastParams {
  std::int64_t n;
};

/// rms_norm: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w[:]. Bindings: x, w, out.
/// rms_norm_mul (the fusion of rms_norm then mul): the same times g[r, :]. Bindings: x, w, g, out.
/// Spec: dtype. Accumulation in f32.
struct RmsNormParams {
  std::int64_t rows;
  std::int64_t cols;
  float eps;
};

/// assert_finite: fails the command buffer when any of x[0..n) is NaN or infinite, reporting the
/// first offending index it sees. Bindings: x. Spec: dtype.
struct AssertFiniteParams {
  std::int64_t n;
};

/// Status codes a CUDA kernel writes to its command buffer's status word.
enum StatusCode : std::uint32_t {
  kStatusOk = 0,
  kStatusNonFinite = 1,            // assert_finite; info = element index
  kStatusEmbeddingIdOutOfRange = 2,  // embedding lookups; info = token index
  kStatusKvPositionOutOfRange = 3,   // kv_cache_append; info = token index
  kStatusExpertIdOutOfRange = 4,     // expert-routed matmul; info = (token, slot) index
  kStatusFusedDecodeStalled = 5,     // fused decode step: a wait ran past its limit; info = step
};

}  // namespace mlxn::ops
