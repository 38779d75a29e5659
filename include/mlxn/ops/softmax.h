// Row softmax, optionally scaled and with an additive mask (attention scores, vocab logits).
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// out[r, :] = softmax(x[r, :] * scale) over the last dim, max-subtracted, accumulated in f32.
/// x: [rows, cols] (leading dims flattened; f32, f16 or bf16); out: x's element count, x's dtype
/// or f32. cols may be anything from 1 to 2^31 - 1. x and out may be the same view.
void softmax(CommandEncoder& encoder, const Buffer& x, const Buffer& out, float scale = 1.0f);

/// out[r, :] = softmax(x[r, :] * scale + mask[r % mask_rows, :]). mask: [mask_rows, cols] in x's
/// dtype, additive (-inf masks out), broadcast over x's rows (mask_rows must divide rows, e.g.
/// x [heads * q, k] with mask [q, k]). A row that is -inf everywhere yields zeros.
void softmax_masked(CommandEncoder& encoder, const Buffer& x, const Buffer& mask, const Buffer& out,
                    float scale = 1.0f);

}  // namespace mlxn::ops
