// The DecodeTiles order of 4-bit MLX codes (ops::QuantLayout): where each 16 bytes of a row
// (32 codes) go. Shared by the CPU and CUDA kernels, so both read and write one definition.
//
// Why this order: the CUDA batch-1 mat-vec gives each warp a 16-row tile and walks its k in
// steps of 128 codes; lane l = 4 g + t of the warp needs codes [32 t, 32 t + 32) of rows g and
// g + 8 of the step. Storing those as lane l's two 16-byte pieces (row g's at 16 l, row g + 8's
// at 512 + 16 l) makes each step of each warp one contiguous kilobyte, and a tile's steps
// consecutive: measured on the H100, the same kernel on MLX's row order decoded 310.5 tok/s where
// a timing emulation of this order gave 346 (docs/perf.md, issue 7, step 22), because a warp
// then reads 16 rows 64 bytes at a time.
#pragma once

#include <cstdint>

namespace mlxn::ops {

// A tile is 16 rows (ops::kDecodeTileRows) and a step 128 codes of each (ops::kDecodeTileCodes),
// 1 KB. Those two are public (mlxn/ops/quantized_matmul.h), which the CUDA sources do not
// include; these are the same numbers.
inline constexpr std::int64_t kDecodeStepCodes = 128;
inline constexpr std::int64_t kDecodeTileBytes = 1024;

/// Byte offset, in the DecodeTiles order, of the 16 bytes holding codes [32 seg, 32 seg + 32)
/// of `row`; row_bytes = k / 2 (a multiple of 64). Rows [16 i, 16 j) keep the byte range they
/// have in MLX's row order.
constexpr std::int64_t decode_tile_offset(std::int64_t row, std::int64_t seg,
                                          std::int64_t row_bytes) {
  const std::int64_t steps = row_bytes / (kDecodeStepCodes / 2);
  const std::int64_t tile = row / 16, r16 = row % 16;
  const std::int64_t lane = (r16 % 8) * 4 + seg % 4;
  return (tile * steps + seg / 4) * kDecodeTileBytes + (r16 / 8) * 512 + lane * 16;
}

}  // namespace mlxn::ops
