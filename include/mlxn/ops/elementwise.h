// Elementwise ops: add, mul and dtype casts among f32, f16 and bf16.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// out = a + b. a, b, out: same dtype (f32, f16 or bf16) and element count; out may alias a or b.
void add(CommandEncoder& encoder, const Buffer& a, const Buffer& b, const Buffer& out);
/// out = a * b, same rules as add.
void mul(CommandEncoder& encoder, const Buffer& a, const Buffer& b, const Buffer& out);
/// out = in converted to out's dtype (f32, f16, bf16; round to nearest even). Same element count.
void cast(CommandEncoder& encoder, const Buffer& in, const Buffer& out);

/// out[r, :] = x[r, :] + bias (broadcast over rows). x, out: [rows, n] (leading dims flattened),
/// bias: [n]; one dtype (f32, f16 or bf16); out may alias x.
void bias_add(CommandEncoder& encoder, const Buffer& x, const Buffer& bias, const Buffer& out);

}  // namespace mlxn::ops
