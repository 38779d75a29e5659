// Dense matmul entry point: validate shapes and dtypes, then dispatch matvec (m == 1) or matmul.
#include "mlxn/ops/matmul.h"

#include <string>

#include "mlxn/core/device.h"
#include "ops/immutable_weights.h"
#include "ops/matmul_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorKind::InvalidArgument, "matmul: " + message);
}

// Checks x, w ([n_rows, k]), out ([..., n_out]) and bias; returns {m, k}.
struct Dims {
  std::int64_t m, k;
};

Dims check(const Buffer& x, const Buffer& w, const Buffer* bias, const Buffer& out,
           std::int64_t n_out) {
  detail::require_float("matmul", "x", x);
  detail::require_same_dtype("matmul", "w", w, x.dtype());
  detail::require_same_dtype("matmul", "out", out, x.dtype());
  if (w.shape().size() != 2) fail("w must be [n, k], got " + shape_to_string(w.shape()));
  const std::int64_t n = n_out;
  const std::int64_t k = w.shape()[1];
  if (w.shape()[0] <= 0 || k <= 0) fail("w has an empty shape " + shape_to_string(w.shape()));
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
    detail::require_numel("matmul", "bias", *bias, w.shape()[0]);
  }
  return {m, k};
}

bool static_weights(const Buffer& w, const Buffer* bias) {
  return bias != nullptr ? detail::weights_static({&w, bias}) : detail::weights_static({&w});
}

void run(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer* bias,
         const Buffer& out) {
  if (w.shape().size() != 2) fail("w must be [n, k], got " + shape_to_string(w.shape()));
  const std::int64_t n = w.shape()[0];
  const auto [m, k] = check(x, w, bias, out, n);
  if (m == 0) return;
  MatmulParams p{m, n, k, bias != nullptr ? 1 : 0};
  p.weights_static = static_weights(w, bias) ? 1 : 0;
  // m == 1 is decode: a kernel that streams w once at memory speed beats a GEMM library there.
  const char* name = m == 1 ? "matvec" : "matmul";
  const Kernel& kernel = enc.device().kernels().get(name, x.dtype());
  if (bias != nullptr) {
    enc.dispatch(kernel, {Arg::in(x), Arg::in(w), Arg::out(out), Arg::in(*bias)}, p, "matmul");
  } else {
    enc.dispatch(kernel, {Arg::in(x), Arg::in(w), Arg::out(out)}, p, "matmul");
  }
}

// Gated decode projections up to this many rows of x take the fused mat-vec (it streams the
// weights once per row of x); more take the GEMMs and the activation op.
constexpr std::int64_t kGatedMatvecMaxRows = 1;

}  // namespace

void matmul(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& out) {
  run(enc, x, w, nullptr, out);
}

void matmul_gated(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& out,
                  GatedActivation act) {
  if (w.shape().size() != 2 || w.shape()[0] % 2 != 0) {
    fail("gated: w must be [2n, k] (gate rows, then as many up rows), got " +
         shape_to_string(w.shape()));
  }
  const std::int64_t n = w.shape()[0] / 2;
  const auto [m, k] = check(x, w, nullptr, out, n);
  if (m == 0) return;
  if (m <= kGatedMatvecMaxRows) {
    MatmulParams p{m, n, k, 0};
    p.gate_act = detail::gate_act_of(act);
    p.weights_static = static_weights(w, nullptr) ? 1 : 0;
    enc.dispatch(enc.device().kernels().get("matvec", x.dtype()),
                 {Arg::in(x), Arg::in(w), Arg::out(out)}, p, "matmul_gated");
    return;
  }
  const std::size_t half = static_cast<std::size_t>(n * k) * dtype_size(w.dtype());
  const Buffer up = enc.device().alloc(x.dtype(), out.shape());
  run(enc, x, w.view(0, half, w.dtype(), {n, k}), nullptr, out);
  run(enc, x, w.view(half, half, w.dtype(), {n, k}), nullptr, up);
  enc.barrier();
  detail::gated_activation(enc, act, out, up, out);
}

void matmul(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& bias,
            const Buffer& out) {
  run(enc, x, w, &bias, out);
}

}  // namespace mlxn::ops
