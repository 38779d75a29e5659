// Reading MLX 4-bit codes out of 16-byte chunks: shared by the register and tensor-core MLX
// mat-vecs and the fused decode step (and through it the decode-stream probe).
#pragma once

#include <cuda_runtime.h>

namespace mlxn::cuda {

/// Word `i` of a 16-byte chunk (loops that call it are unrolled, so the selects fold away).
__device__ __forceinline__ unsigned int word_of(const uint4& q, int i) {
  return i == 0 ? q.x : i == 1 ? q.y : i == 2 ? q.z : q.w;
}

/// Codes i and i + 4 of a word (i = shift / 4) as the exact bf16 pair (128 + q_i, 128 + q_{i+4}):
/// bf16 has unit spacing in [128, 256), so OR-ing a code into 0x4300's mantissa is exact.
__device__ __forceinline__ unsigned int code_pair(unsigned int word, int shift) {
  return ((word >> shift) & 0x000F000Fu) | 0x43004300u;
}

}  // namespace mlxn::cuda
