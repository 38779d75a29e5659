// Entry points of the norm ops in norms.h: validate shapes and dtypes, then dispatch.
#include "mlxn/ops/norms.h"

#include <string>

#include "mlxn/core/device.h"
#include "ops/norms_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + what);
}

// rows x cols of x (leading dims flattened), with out checked against x.
RowNormParams row_params(const char* op, const Buffer& x, const Buffer& out, float eps) {
  detail::require_float(op, "x", x);
  detail::require_same_dtype(op, "out", out, x.dtype());
  if (x.shape().empty()) fail(op, "x must have at least one dim");
  const std::int64_t cols = x.shape().back();
  if (cols <= 0) fail(op, "x has no columns");
  const std::int64_t rows = x.numel() / cols;
  if (rows * cols != x.numel()) {
    fail(op, "x's shape " + shape_to_string(x.shape()) + " does not match its size");
  }
  detail::require_numel(op, "out", out, x.numel());
  if (!(eps >= 0.0f)) fail(op, "eps must be >= 0");
  return RowNormParams{rows, cols, eps, 0.0f};
}

void require_weight(const char* op, const char* name, const Buffer& w, const Buffer& x,
                    std::int64_t cols) {
  detail::require_float(op, name, w);
  detail::require_same_dtype(op, name, w, x.dtype());
  detail::require_numel(op, name, w, cols);
}

float offset_of(NormWeight weight) {
  return weight == NormWeight::OnePlus ? 1.0f : 0.0f;
}

}  // namespace

void rms_norm_gemma(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& out,
                    float eps) {
  const char* op = "rms_norm_gemma";
  RowNormParams p = row_params(op, x, out, eps);
  require_weight(op, "w", w, x, p.cols);
  p.weight_offset = 1.0f;
  if (p.rows == 0) return;
  const Kernel& k = enc.device().kernels().get(op, x.dtype());
  enc.dispatch(k, {Arg::in(x), Arg::in(w), Arg::out(out)}, p, op);
}

void layer_norm(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& b,
                const Buffer& out, float eps) {
  const char* op = "layer_norm";
  const RowNormParams p = row_params(op, x, out, eps);
  require_weight(op, "w", w, x, p.cols);
  const bool has_bias = b.valid();
  if (has_bias) require_weight(op, "b", b, x, p.cols);
  if (p.rows == 0) return;
  const Kernel& k = enc.device().kernels().get(
      op, Specialization().set("dtype", x.dtype()).set("bias", has_bias ? 1 : 0));
  if (has_bias) {
    enc.dispatch(k, {Arg::in(x), Arg::in(w), Arg::in(b), Arg::out(out)}, p, op);
  } else {
    enc.dispatch(k, {Arg::in(x), Arg::in(w), Arg::out(out)}, p, op);
  }
}

void l2_norm(CommandEncoder& enc, const Buffer& x, const Buffer& out, float eps) {
  const char* op = "l2_norm";
  const RowNormParams p = row_params(op, x, out, eps);
  if (p.rows == 0) return;
  const Kernel& k = enc.device().kernels().get(op, x.dtype());
  enc.dispatch(k, {Arg::in(x), Arg::out(out)}, p, op);
}

void add_rms_norm(CommandEncoder& enc, const Buffer& x, const Buffer& residual, const Buffer& w,
                  const Buffer& h, const Buffer& y, float eps, NormWeight weight) {
  const char* op = "add_rms_norm";
  RowNormParams p = row_params(op, x, y, eps);
  detail::require_float(op, "residual", residual);
  detail::require_same_dtype(op, "residual", residual, x.dtype());
  detail::require_numel(op, "residual", residual, x.numel());
  detail::require_float(op, "h", h);
  detail::require_same_dtype(op, "h", h, x.dtype());
  detail::require_numel(op, "h", h, x.numel());
  require_weight(op, "w", w, x, p.cols);
  // y is written from h in the second pass; if they overlapped, h would be lost mid-row.
  if (h.same_storage(y) && h.offset() < y.offset() + y.size_bytes() &&
      y.offset() < h.offset() + h.size_bytes()) {
    fail(op, "y must not overlap h");
  }
  p.weight_offset = offset_of(weight);
  if (p.rows == 0) return;
  const Kernel& k = enc.device().kernels().get(op, x.dtype());
  enc.dispatch(k, {Arg::in(x), Arg::in(residual), Arg::in(w), Arg::out(h), Arg::out(y)}, p, op);
}

void qk_norm(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& out, float eps,
             NormWeight weight) {
  const char* op = "qk_norm";
  if (x.valid() && x.shape().size() != 3) {
    fail(op, "x must be [n_tokens, n_heads, head_dim], got " + shape_to_string(x.shape()));
  }
  RowNormParams p = row_params(op, x, out, eps);
  require_weight(op, "w", w, x, p.cols);
  p.weight_offset = offset_of(weight);
  if (p.rows == 0) return;
  const Kernel& k = enc.device().kernels().get(op, x.dtype());
  enc.dispatch(k, {Arg::in(x), Arg::in(w), Arg::out(out)}, p, op);
}

}  // namespace mlxn::ops
