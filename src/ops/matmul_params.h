// Parameter structs of the matmul family (dense, MLX affine quantized, GGML quantized), shared by
// the CPU and CUDA kernels (plain data, no host types).
#pragma once

#include <cstdint>

#include "ops/op_params.h"

namespace mlxn::ops {

/// matmul / matvec: out[i, j] = sum_k x[i, k] * w[j, k] (+ bias[j]). Bindings: x [m, k],
/// w [n, k], out [m, n], then bias [n] when has_bias. Spec: dtype (all operands share it).
/// "matvec" is the m == 1 kernel (a weight-streaming GEMV on CUDA), "matmul" the general one.
struct MatmulParams {
  std::int64_t m;
  std::int64_t n;
  std::int64_t k;
  std::int32_t has_bias;
  std::int32_t pad_ = 0;
};

/// Where the scales/biases of an MLX-quantized weight keep their values (f32, f16 or bf16),
/// read at run time so one kernel serves checkpoints whatever dtype they chose.
enum ScaleType : std::int32_t { kScaleF32 = 0, kScaleF16 = 1, kScaleBF16 = 2 };

/// QuantMatmulParams::layout: ops::QuantLayout as the kernels read it.
inline constexpr std::int32_t kLayoutRows = 0;
inline constexpr std::int32_t kLayoutDecodeTiles = 1;

/// Quantized matmul (MLX affine and GGML), plain and expert-routed:
///   out[a, j] = sum_k x_a[k] * W_e(a)[j, k], a = token * top_k + slot,
///   x_a = x + token * x_token_stride + slot * x_slot_stride, e(a) = ids[a] (0 without ids).
/// Bindings, MLX: x, w (u32 [experts, n, k*bits/32]), scales, biases ([experts, n, k/group]),
/// out [m*top_k, n], then ids (i32 [m, top_k]) when has_ids. GGML: x, w (u8 [experts, n,
/// row_bytes]), out, then ids. Spec: dtype (x and out), bits (MLX) or type (GGML, e.g. "q4_k").
/// "quantized_matvec"/"ggml_matvec" are the small-m (and expert-routed) kernels, streaming the
/// weights once per row of x; "quantized_matmul"/"ggml_matmul" the tiled ones for larger m.
struct QuantMatmulParams {
  std::int64_t m;               // tokens
  std::int64_t n;               // output features (weight rows per expert)
  std::int64_t k;               // input features
  std::int64_t top_k;           // experts per token (1 without ids)
  std::int64_t n_experts;       // stacked experts in w (1 without ids)
  std::int64_t x_token_stride;  // elements between tokens' x rows
  std::int64_t x_slot_stride;   // elements between slots' x rows (0: the slots share x)
  std::int32_t bits;            // MLX: 2, 3, 4, 5, 6, 8
  std::int32_t group_size;      // MLX: 32, 64, 128
  std::int32_t scale_type;      // MLX: ScaleType of scales and biases
  std::int32_t has_ids;         // expert-routed: ids bound after out
  std::int32_t ggml_type;       // GGML: io::GgmlType id
  std::int32_t layout = 0;      // MLX: kLayoutRows or kLayoutDecodeTiles (ops::QuantLayout)
};

/// Status code a CUDA quantized matmul writes when ids[a] is outside [0, n_experts); info is a.
/// (Outside ops::StatusCode so this family does not edit the shared header; see the report.)

}  // namespace mlxn::ops
