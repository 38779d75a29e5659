// Shape checks shared by the quantized matmul entry points (MLX and GGML): the rows of x, the
// expert routing of the _id variants and the output shape, as QuantMatmulParams fields.
#pragma once

#include <string>

#include "mlxn/core/buffer.h"
#include "mlxn/core/error.h"
#include "ops/matmul_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops::detail {

/// Up to this many rows of x (tokens x slots) the matvec kernel runs, streaming the weights once
/// per row; above it the tiled kernel, which reads each weight tile once per 64 rows.
inline constexpr std::int64_t kQuantMatvecMaxRows = 8;

[[noreturn]] inline void matmul_fail(const char* op, const std::string& message) {
  throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + message);
}

/// Fills m, top_k and the x strides of `p` for x: [..., k] -> out: [..., n] (no routing).
inline void plain_routing(const char* op, const Buffer& x, const Buffer& out, std::int64_t n,
                          std::int64_t k, QuantMatmulParams& p) {
  require_float(op, "x", x);
  require_same_dtype(op, "out", out, x.dtype());
  if (x.shape().empty() || x.shape().back() != k) {
    matmul_fail(op, "x's last dim must be k = " + std::to_string(k) + ", got " +
                        shape_to_string(x.shape()));
  }
  if (out.shape().empty() || out.shape().back() != n) {
    matmul_fail(op, "out's last dim must be n = " + std::to_string(n) + ", got " +
                        shape_to_string(out.shape()));
  }
  p.m = x.numel() / k;
  require_numel(op, "out", out, p.m * n);
  p.top_k = 1;
  p.n_experts = 1;
  p.x_token_stride = k;
  p.x_slot_stride = 0;
  p.has_ids = 0;
}

/// Fills m, top_k and the x strides of `p` for the expert-routed form: ids: i32 [m, top_k];
/// x: [m, k] or [m, top_k, k]; out: [m, top_k, n].
inline void id_routing(const char* op, const Buffer& x, const Buffer& ids, const Buffer& out,
                       std::int64_t n, std::int64_t k, std::int64_t n_experts,
                       QuantMatmulParams& p) {
  require_float(op, "x", x);
  require_same_dtype(op, "out", out, x.dtype());
  if (!ids.valid() || ids.dtype() != DType::I32 || ids.shape().size() != 2) {
    matmul_fail(op, "ids must be i32 [m, top_k]");
  }
  const std::int64_t m = ids.shape()[0];
  const std::int64_t top_k = ids.shape()[1];
  if (top_k <= 0) matmul_fail(op, "ids has top_k = 0");
  const Shape& xs = x.shape();
  if (xs == Shape{m, k}) {
    p.x_slot_stride = 0;
  } else if (xs == Shape{m, top_k, k}) {
    p.x_slot_stride = k;
  } else {
    matmul_fail(op, "x must be [m, k] or [m, top_k, k] = [" + std::to_string(m) + ", " +
                        std::to_string(top_k) + ", " + std::to_string(k) + "], got " +
                        shape_to_string(xs));
  }
  if (out.shape() != Shape{m, top_k, n}) {
    matmul_fail(op, "out must be [m, top_k, n] = [" + std::to_string(m) + ", " +
                        std::to_string(top_k) + ", " + std::to_string(n) + "], got " +
                        shape_to_string(out.shape()));
  }
  p.m = m;
  p.top_k = top_k;
  p.n_experts = n_experts;
  p.x_token_stride = p.x_slot_stride == 0 ? k : top_k * k;
  p.has_ids = 1;
}

}  // namespace mlxn::ops::detail
