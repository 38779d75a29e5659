// Normalization ops beyond plain RMSNorm (norm.h): Gemma's (1 + w) RMSNorm, LayerNorm, L2 norm,
// residual add fused with RMSNorm, and per-head RMSNorm of Q/K. Accumulation in f32.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// The weight an RMSNorm multiplies by: w (Llama, Qwen) or 1 + w (Gemma stores w - 1).
enum class NormWeight { Plain, OnePlus };

/// out = x / sqrt(mean(x^2) + eps) * (1 + w) per row (Gemma). x, out: [rows, cols] (leading dims
/// flattened); w: [cols]; one float dtype; out may alias x.
void rms_norm_gemma(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& out,
                    float eps);

/// out = (x - mean) / sqrt(var + eps) * w + b per row (biased variance, as torch). x, out:
/// [rows, cols]; w, b: [cols]; b may be an empty Buffer() for no bias; out may alias x.
void layer_norm(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& b,
                const Buffer& out, float eps);

/// out = x / sqrt(sum(x^2) + eps) per row. x, out: [rows, cols]; out may alias x.
void l2_norm(CommandEncoder& encoder, const Buffer& x, const Buffer& out, float eps);

/// h = x + residual (written out, rounded to the dtype), y = rms_norm(h) * w (or (1 + w)), in one
/// pass over the row. x, residual, h, y: [rows, cols]; w: [cols]. h may alias x or residual
/// (in-place residual stream); y may alias x; y must not alias h.
void add_rms_norm(CommandEncoder& encoder, const Buffer& x, const Buffer& residual, const Buffer& w,
                  const Buffer& h, const Buffer& y, float eps,
                  NormWeight weight = NormWeight::Plain);

/// Per-head RMSNorm (qk-norm, Qwen3 / Gemma 3): x, out: [n_tokens, n_heads, head_dim]; w:
/// [head_dim] shared by the heads; out may alias x.
void qk_norm(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& out,
             float eps, NormWeight weight = NormWeight::Plain);

}  // namespace mlxn::ops
