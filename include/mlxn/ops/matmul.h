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

/// Expert-routed dense matmul (MoE weights stored in f32/f16/bf16): out[t, s, :] =
/// x_ts @ w[ids[t, s]]^T. x: [m, k] (every slot uses the token's row) or [m, top_k, k];
/// w: [experts, n, k] in x's dtype; ids: i32 [m, top_k]; out: [m, top_k, n]. An id outside
/// [0, experts) fails the command buffer.
void matmul_id(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& ids,
               const Buffer& out);

}  // namespace mlxn::ops
