// GGML quantized matmul: out = x @ dequant(w)^T with w stored as GGML blocks (Q4_0, Q8_0, Q4_K,
// Q5_K, Q6_K), plain and expert-routed (MoE).
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"
#include "mlxn/io/ggml_types.h"

namespace mlxn::ops {

/// True for the GGML types ggml_matmul runs natively: Q4_0, Q8_0, Q4_K, Q5_K, Q6_K.
/// out = dequant(w) as [n, k] in out's float dtype (k = out's last dim), for the types
/// ggml_matmul supports: see ops::dequantize for why.
void ggml_dequantize(CommandEncoder& encoder, const Buffer& w, io::GgmlType type,
                     const Buffer& out);

bool ggml_matmul_supports(io::GgmlType type);

/// out = x @ dequant(w)^T. x: [..., k] (f32/f16/bf16; leading dims are the m rows), k a multiple
/// of the type's block size; w: u8 [n, ggml_row_size(type, k)] (each row whole blocks, as in a
/// GGUF tensor of ne = [k, n]); out: [..., n] in x's dtype. f32 accumulation.
/// Throws Unsupported for other types (dequantize them to f16/bf16 and use ops::matmul).
void ggml_matmul(CommandEncoder& encoder, const Buffer& x, const Buffer& w, io::GgmlType type,
                 const Buffer& out);

/// Expert-routed: out[t, s, :] = x_ts @ dequant(w[ids[t, s]])^T. x: [m, k] or [m, top_k, k];
/// w: u8 [experts, n, row_bytes]; ids: i32 [m, top_k]; out: [m, top_k, n].
void ggml_matmul_id(CommandEncoder& encoder, const Buffer& x, const Buffer& w, io::GgmlType type,
                    const Buffer& ids, const Buffer& out);

}  // namespace mlxn::ops
