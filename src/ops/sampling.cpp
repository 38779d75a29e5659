// Argmax, top-k and sampling op entry points: validate, then dispatch the backend kernel.
#include "mlxn/ops/sampling.h"

#include <string>

#include "mlxn/core/device.h"
#include "ops/op_checks.h"
#include "ops/sampling_params.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const char* op, const std::string& msg) {
  throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + msg);
}

void require_dtype(const char* op, const char* name, const Buffer& b, DType dtype) {
  if (!b.valid()) fail(op, std::string(name) + " is an empty buffer");
  detail::require_same_dtype(op, name, b, dtype);
}

struct RowsCols {
  std::int64_t rows, cols;
};

RowsCols rows_cols(const char* op, const Buffer& x) {
  detail::require_float(op, "x", x);
  if (x.shape().empty() || x.shape().back() <= 0) fail(op, "x must have a non-empty last dim");
  const std::int64_t cols = x.shape().back();
  if (cols >= kMaxSampleCols) fail(op, "rows longer than 2^31 - 1 are not supported");
  const std::int64_t rows = x.numel() / cols;
  if (rows * cols != x.numel()) fail(op, "x's shape " + shape_to_string(x.shape()) + " is invalid");
  return {rows, cols};
}

}  // namespace

void argmax(CommandEncoder& enc, const Buffer& x, const Buffer& idx, const Buffer& val) {
  const RowsCols s = rows_cols("argmax", x);
  require_dtype("argmax", "idx", idx, DType::I32);
  require_dtype("argmax", "val", val, DType::F32);
  detail::require_numel("argmax", "idx", idx, s.rows);
  detail::require_numel("argmax", "val", val, s.rows);
  if (s.rows == 0) return;
  const Kernel& k = enc.device().kernels().get("argmax", x.dtype());
  enc.dispatch(k, {Arg::in(x), Arg::out(idx), Arg::out(val)}, ArgmaxParams{s.rows, s.cols},
               "argmax");
}

void top_k(CommandEncoder& enc, const Buffer& x, std::int64_t k, const Buffer& values,
           const Buffer& indices) {
  const RowsCols s = rows_cols("top_k", x);
  if (k < 1 || k > kMaxTopK || k > s.cols) {
    fail("top_k", "k = " + std::to_string(k) + " must be in [1, min(cols = " +
                      std::to_string(s.cols) + ", " + std::to_string(kMaxTopK) + ")]");
  }
  require_dtype("top_k", "values", values, DType::F32);
  require_dtype("top_k", "indices", indices, DType::I32);
  detail::require_numel("top_k", "values", values, s.rows * k);
  detail::require_numel("top_k", "indices", indices, s.rows * k);
  if (s.rows == 0) return;
  const Kernel& kern = enc.device().kernels().get("top_k", x.dtype());
  enc.dispatch(kern, {Arg::in(x), Arg::out(values), Arg::out(indices)},
               TopKParams{s.rows, s.cols, k}, "top_k");
}

void sample(CommandEncoder& enc, const Buffer& logits, const SamplingRowParams& params,
            const Buffer& u, const Buffer& tokens) {
  const RowsCols s = rows_cols("sample", logits);
  const struct {
    const char* name;
    const Buffer& b;
    DType dtype;
  } per_row[] = {{"temperature", params.temperature, DType::F32},
                 {"top_k", params.top_k, DType::I32},
                 {"top_p", params.top_p, DType::F32},
                 {"min_p", params.min_p, DType::F32},
                 {"u", u, DType::F32},
                 {"tokens", tokens, DType::I32}};
  for (const auto& a : per_row) {
    require_dtype("sample", a.name, a.b, a.dtype);
    detail::require_numel("sample", a.name, a.b, s.rows);
  }
  if (s.rows == 0) return;
  const Kernel& k = enc.device().kernels().get("sample", logits.dtype());
  enc.dispatch(k,
               {Arg::in(logits), Arg::in(params.temperature), Arg::in(params.top_k),
                Arg::in(params.top_p), Arg::in(params.min_p), Arg::in(u), Arg::out(tokens)},
               SampleParams{s.rows, s.cols}, "sample");
}

}  // namespace mlxn::ops
