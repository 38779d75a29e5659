// Activation ops: scalar mul, SiLU, GELU (tanh and erf), the gated forms SwiGLU / GeGLU /
// sigmoid-mul, and logit softcapping. f32/f16/bf16, any element count, computed in f32.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// Which GELU: the tanh approximation (gelu_pytorch_tanh, Gemma) or the exact erf form.
enum class GeluApprox { Tanh, Erf };

/// out = x * s. x, out: same dtype (f32, f16 or bf16) and element count; out may alias x.
void scalar_mul(CommandEncoder& encoder, const Buffer& x, float s, const Buffer& out);
/// out = x * sigmoid(x). Same rules as scalar_mul.
void silu(CommandEncoder& encoder, const Buffer& x, const Buffer& out);
/// out = gelu(x) with the given approximation. Same rules as scalar_mul.
void gelu(CommandEncoder& encoder, const Buffer& x, const Buffer& out,
          GeluApprox approx = GeluApprox::Tanh);
/// out = cap * tanh(x / cap) (Gemma 2 logit softcapping); cap > 0. Same rules as scalar_mul.
void softcap(CommandEncoder& encoder, const Buffer& x, float cap, const Buffer& out);

/// SwiGLU: out = silu(gate) * up. gate, up, out: [n_tokens, ffn] (any shape of one element
/// count), one dtype; out may alias gate or up.
void silu_mul(CommandEncoder& encoder, const Buffer& gate, const Buffer& up, const Buffer& out);
/// GeGLU: out = gelu(gate) * up. Same rules as silu_mul.
void gelu_mul(CommandEncoder& encoder, const Buffer& gate, const Buffer& up, const Buffer& out,
              GeluApprox approx = GeluApprox::Tanh);
/// out = sigmoid(gate) * x (gated attention output, Qwen3-Next). Same rules as silu_mul.
void sigmoid_mul(CommandEncoder& encoder, const Buffer& gate, const Buffer& x, const Buffer& out);

}  // namespace mlxn::ops
