// Dense matmul entry point: validate shapes and dtypes, then dispatch matvec (m == 1) or matmul.
#include "mlxn/ops/matmul.h"

#include <string>

#include "mlxn/core/device.h"
#include "ops/matmul_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorKind::InvalidArgument, "matmul: " + message);
}

void run(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer* bias,
         const Buffer& out) {
  detail::require_float("matmul", "x", x);
  detail::require_same_dtype("matmul", "w", w, x.dtype());
  detail::require_same_dtype("matmul", "out", out, x.dtype());
  if (w.shape().size() != 2) fail("w must be [n, k], got " + shape_to_string(w.shape()));
  const std::int64_t n = w.shape()[0];
  const std::int64_t k = w.shape()[1];
  if (n <= 0 || k <= 0) fail("w has an empty shape " + shape_to_string(w.shape()));
  if (x.shape().empty() || x.shape().back() != k) {
    fail("x's last dim must be k = " + std::to_string(k) + ", got " + shape_to_string(x.shape()));
  }
  const std::int64_t m = x.numel() / k;
  if (out.shape().empty() || out.shape().back() != n) {
    fail("out's last dim must be n = " + std::to_string(n) + ", got " +
         shape_to_string(out.shape()));
  }
  detail::require_numel("matmul", "out", out, m * n);
  if (bias != nullptr) {
    detail::require_float("matmul", "bias", *bias);
    detail::require_same_dtype("matmul", "bias", *bias, x.dtype());
    detail::require_numel("matmul", "bias", *bias, n);
  }
  if (m == 0) return;
  const MatmulParams p{m, n, k, bias != nullptr ? 1 : 0};
  // m == 1 is decode: a kernel that streams w once at memory speed beats a GEMM library there.
  const char* name = m == 1 ? "matvec" : "matmul";
  const Kernel& kernel = enc.device().kernels().get(name, x.dtype());
  if (bias != nullptr) {
    enc.dispatch(kernel, {Arg::in(x), Arg::in(w), Arg::out(out), Arg::in(*bias)}, p, "matmul");
  } else {
    enc.dispatch(kernel, {Arg::in(x), Arg::in(w), Arg::out(out)}, p, "matmul");
  }
}

}  // namespace

void matmul(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& out) {
  run(enc, x, w, nullptr, out);
}

void matmul(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& bias,
            const Buffer& out) {
  run(enc, x, w, &bias, out);
}

}  // namespace mlxn::ops
