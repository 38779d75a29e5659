// Dense matmul: out = x @ w^T (+ bias) for f32, f16 and bf16, weights in [out, in] layout.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// out = x @ w^T. x: [..., k] (leading dims are the m rows), w: [n, k], out: [..., n]; one float
/// dtype (f32, f16, bf16); f32 accumulation. m == 1 runs a weight-streaming GEMV on CUDA,
/// larger m cuBLASLt (tensor cores for f16/bf16, exact f32 math for f32).
void matmul(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& out);
/// out = x @ w^T + bias. bias: [n], same dtype.
void matmul(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& bias,
            const Buffer& out);

/// The activation of a gated projection: out = act(gate) * up (SwiGLU, GeGLU).
enum class GatedActivation { Silu, GeluTanh, GeluErf };

/// Gated MLP projection in one pass: w: [2n, k] holds the gate rows [0, n) then the up rows
/// [n, 2n) (a fused gate/up weight); out: [..., n] = act(x @ w[0:n]^T) * (x @ w[n:2n]^T), each
/// product rounded to the dtype before the activation, as matmul, matmul and silu_mul/gelu_mul
/// would give. For decode (m == 1) one mat-vec computes both rows of an output (on CUDA in one
/// warp) and writes only out; larger m runs the two matmuls and the activation op.
void matmul_gated(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& out,
                  GatedActivation act);

/// Expert-routed dense matmul (MoE weights stored in f32/f16/bf16): out[t, s, :] =
/// x_ts @ w[ids[t, s]]^T. x: [m, k] (every slot uses the token's row) or [m, top_k, k];
/// w: [experts, n, k] in x's dtype; ids: i32 [m, top_k]; out: [m, top_k, n]. An id outside
/// [0, experts) fails the command buffer.
void matmul_id(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& ids,
               const Buffer& out);

}  // namespace mlxn::ops
