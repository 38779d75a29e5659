// Linear: one projection weight as the model stores it -- dense float, MLX affine quantized, or
// GGML blocks -- and the matmul op that applies it. Weights are never expanded in memory; the
// engine calls apply() and the right kernel runs. (On CUDA with bf16 activations, 4-bit MLX codes
// are reordered at load into ops::QuantLayout::DecodeTiles: the same bytes, another order.)
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/io/ggml_types.h"
#include "mlxn/ops/quantized_matmul.h"

namespace mlxn::engine {

/// Rows of x from which a quantized Linear on CUDA decodes its weight and runs the dense matmul
/// (given a workspace). Break-even, H100: decoding costs ~2.6 bytes of traffic a weight (~0.9
/// ps), the tiled kernel ~2m FLOP at ~70 TFLOP/s and cuBLASLt ~2m FLOP at ~700 TFLOP/s, so the
/// decode pays for itself from m ~ 33.
inline constexpr std::int64_t kDequantGemmMinRows = 32;

/// How a weight is stored on the device.
enum class WeightKind { Dense, MlxQuant, Ggml };

/// y = x @ W^T (+ b) with W logically [out, in].
struct Linear {
  WeightKind kind = WeightKind::Dense;
  std::int64_t in = 0;
  std::int64_t out = 0;
  Buffer dense;                                // Dense: [out, in] in the compute dtype
  ops::QuantizedWeight quant;                  // MlxQuant: packed/scales/biases, bits, group
  Buffer ggml;                                 // Ggml: u8 [out, ggml_row_size(type, in)]
  io::GgmlType ggml_type = io::GgmlType::F32;  // Ggml: a type ops::ggml_matmul runs natively
  Buffer bias;                                 // optional [out] in the compute dtype

  /// True when a weight is bound (a default-constructed Linear, e.g. an absent fused
  /// projection, holds none).
  bool valid() const { return dense.valid() || quant.packed.valid() || ggml.valid(); }
  /// out = x @ W^T (+ bias). x: [m, in], out: [m, out], both in the compute dtype.
  /// `workspace` (optional, compute dtype, at least out * in elements): on CUDA, a quantized
  /// weight applied to kDequantGemmMinRows rows or more is first decoded into it and multiplied
  /// by the dense matmul (cuBLASLt's tensor cores), which beats the quantized tiled kernel once
  /// the decode is shared by that many rows.
  void apply(CommandEncoder& encoder, const Buffer& x, const Buffer& out,
             const Buffer& workspace = {}) const;
  /// Output rows [row0, row0 + rows) as a Linear sharing this one's memory (zero-copy): splits
  /// fused projections (q/k/v, gate/up) into the parts prefill applies one by one.
  Linear rows(std::int64_t row0, std::int64_t rows) const;
};

/// Stacked expert weights W[e] logically [n_experts, out, in] (MoE).
struct ExpertLinear {
  WeightKind kind = WeightKind::Dense;
  std::int64_t n_experts = 0;
  std::int64_t in = 0;
  std::int64_t out = 0;
  Buffer dense;                // Dense: [n_experts, out, in]
  ops::QuantizedWeight quant;  // MlxQuant: [n_experts, out, ...]
  Buffer ggml;                 // Ggml: u8 [n_experts, out, row_bytes]
  io::GgmlType ggml_type = io::GgmlType::F32;

  /// out[t, s, :] = x_ts @ W[ids[t, s]]^T. x: [m, in] or [m, top_k, in]; ids: i32 [m, top_k];
  /// out: [m, top_k, out].
  void apply(CommandEncoder& encoder, const Buffer& x, const Buffer& ids, const Buffer& out) const;
};

}  // namespace mlxn::engine
