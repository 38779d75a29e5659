// Embedding lookups: dense rows (f32/f16/bf16) and MLX-affine-quantized rows, with an optional
// output scale. Out-of-range ids fail the command buffer; nothing is read outside the table.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// out[t, :] = table[ids[t], :] * scale. table: [vocab, hidden] (f32, f16 or bf16); ids: i32
/// [n_tokens]; out: [n_tokens, hidden], table's dtype. Gemma passes scale = sqrt(hidden) rounded
/// to the model dtype, as transformers does.
void embedding(CommandEncoder& encoder, const Buffer& table, const Buffer& ids, const Buffer& out,
               float scale = 1.0f);

/// An MLX affine-quantized table: packed: u32 [vocab, hidden * bits / 32] (one LSB-first bit stream
/// per row); scales, biases: [vocab, hidden / group_size] (f32, f16 or bf16, one dtype).
struct QuantizedEmbedding {
  Buffer packed;
  Buffer scales;
  Buffer biases;
  int bits = 4;         // 2, 3, 4, 5, 6 or 8
  int group_size = 64;  // 32, 64 or 128
};

/// out[t, j] = (scale_g * q + bias_g) * scale for row ids[t]. ids: i32 [n_tokens]; out:
/// [n_tokens, hidden] in f32, f16 or bf16.
void embedding_quantized(CommandEncoder& encoder, const QuantizedEmbedding& table,
                         const Buffer& ids, const Buffer& out, float scale = 1.0f);

}  // namespace mlxn::ops
