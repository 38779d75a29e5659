// MLX affine quantized matmul: out = x @ dequant(w)^T, plain and expert-routed (MoE).
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// How the packed codes of a QuantizedWeight are ordered.
///  Rows: MLX's own, one LSB-first bit stream per row (what checkpoints store).
///  DecodeTiles: 4-bit weights only, n a multiple of 16 and k of 128 -- every 16 rows x 128
///  codes (1 KB) stored in one piece, 16-row tiles one after another, each tile's k in order
///  (ops/quant_decode_tiles.h has the exact order). Batch-1 decode with bf16 x on CUDA streams
///  it with the tensor cores (docs/perf.md, issue 7, steps 22-23); every op that takes a
///  QuantizedWeight accepts it except the expert-routed one. Made by tile_for_decode; rows
///  [16 i, 16 j) of it are a contiguous byte range, as in Rows.
enum class QuantLayout { Rows, DecodeTiles };

/// DecodeTiles: rows a tile holds, and codes of each row a tile's step holds (n and k must be
/// multiples of these).
inline constexpr std::int64_t kDecodeTileRows = 16;
inline constexpr std::int64_t kDecodeTileCodes = 128;

/// An MLX affine-quantized weight: w = scale * q + bias per group of `group_size` inputs.
/// packed: u32 [n, k*bits/32] (or [experts, n, k*bits/32]), one LSB-first bit stream per row
/// in the Rows layout; scales, biases: [n, k/group_size] (or [experts, ...]) in f32, f16 or bf16
/// (the same dtype), row-major in either layout. bits: 2, 3, 4, 5, 6, 8; group_size: 32, 64, 128.
struct QuantizedWeight {
  Buffer packed;
  Buffer scales;
  Buffer biases;
  int bits = 4;
  int group_size = 64;
  QuantLayout layout = QuantLayout::Rows;
};

/// out = x @ dequant(w)^T. x: [..., k] (f32/f16/bf16; leading dims are the m rows),
/// w: [n, ...] as above, out: [..., n] in x's dtype. f32 accumulation.
void quantized_matmul(CommandEncoder& encoder, const Buffer& x, const QuantizedWeight& w,
                      const Buffer& out);

/// Expert-routed: out[t, s, :] = x_ts @ dequant(w[ids[t, s]])^T. x: [m, k] (every slot uses the
/// token's row) or [m, top_k, k] (one row per slot); w: [experts, n, ...]; ids: i32 [m, top_k];
/// out: [m, top_k, n]. An id outside [0, experts) fails the command buffer.
void quantized_matmul_id(CommandEncoder& encoder, const Buffer& x, const QuantizedWeight& w,
                         const Buffer& ids, const Buffer& out);

/// out = dequant(w), the [n, k] matrix quantized_matmul multiplies by, in out's float dtype
/// (scale * q + bias in f32, rounded once). For many rows of x it is cheaper to dequantize once
/// and run the dense matmul (tensor cores on CUDA) than to decode inside the quantized kernel.
void dequantize(CommandEncoder& encoder, const QuantizedWeight& w, const Buffer& out);

/// Whether tile_for_decode accepts w: Rows layout, 4 bits, not stacked, n a multiple of 16 and
/// k a multiple of 128.
bool decode_tiles_fit(const QuantizedWeight& w);

/// Writes w's codes into `packed_out` (u32, w.packed's shape, not overlapping it) in the
/// DecodeTiles order and returns w with that packed buffer and layout (scales and biases are
/// shared, unchanged). Fails with QuantConfig where decode_tiles_fit does not hold.
QuantizedWeight tile_for_decode(CommandEncoder& encoder, const QuantizedWeight& w,
                                const Buffer& packed_out);

}  // namespace mlxn::ops
