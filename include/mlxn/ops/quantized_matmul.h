// MLX affine quantized matmul: out = x @ dequant(w)^T, plain and expert-routed (MoE).
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// An MLX affine-quantized weight: w = scale * q + bias per group of `group_size` inputs.
/// packed: u32 [n, k*bits/32] (or [experts, n, k*bits/32]), one LSB-first bit stream per row;
/// scales, biases: [n, k/group_size] (or [experts, ...]) in f32, f16 or bf16 (the same dtype).
/// bits: 2, 3, 4, 5, 6, 8; group_size: 32, 64, 128.
struct QuantizedWeight {
  Buffer packed;
  Buffer scales;
  Buffer biases;
  int bits = 4;
  int group_size = 64;
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

}  // namespace mlxn::ops
