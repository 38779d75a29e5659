// Parameter struct of ops::apply_penalties, shared by the CPU and CUDA kernels (plain data).
#pragma once

#include <cstdint>

namespace mlxn::ops {

/// apply_penalties: for r < rows, j < n_valid, (id, count) = pairs[r, j] with 0 <= id < vocab and
/// count > 0: x = logits[r, id]; x = x > 0 ? x / repetition : x * repetition;
/// x = x - (count * frequency + presence), in f32 with each operation rounded (no fused
/// multiply-add), stored rounded once. Bindings: logits (read-write), pairs (i32 [rows, n, 2]).
/// Spec: dtype.
struct PenaltiesParams {
  std::int64_t rows;
  std::int64_t vocab;
  std::int64_t n;        // pairs per row in the buffer
  std::int64_t n_valid;  // pairs per row that are read
  float repetition;
  float presence;
  float frequency;
};

}  // namespace mlxn::ops
