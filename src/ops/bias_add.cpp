// bias_add entry point: out[r, :] = x[r, :] + bias (the bias of a projection whose matmul ran
// without one, e.g. a quantized linear layer). Validates, then dispatches the "bias_add" kernel.
#include <string>

#include "mlxn/core/device.h"
#include "mlxn/ops/elementwise.h"
#include "ops/bias_add_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {

void bias_add(CommandEncoder& enc, const Buffer& x, const Buffer& bias, const Buffer& out) {
  constexpr const char* kOp = "bias_add";
  detail::require_float(kOp, "x", x);
  detail::require_same_dtype(kOp, "bias", bias, x.dtype());
  detail::require_same_dtype(kOp, "out", out, x.dtype());
  if (x.shape().empty()) {
    throw Error(ErrorKind::InvalidArgument, "bias_add: x must be [..., n], got a scalar");
  }
  const std::int64_t n = x.shape().back();
  detail::require_numel(kOp, "bias", bias, n);
  if (out.shape().empty() || out.shape().back() != n) {
    throw Error(ErrorKind::InvalidArgument,
                "bias_add: out's last dim must be n = " + std::to_string(n) + ", got " +
                    shape_to_string(out.shape()));
  }
  detail::require_numel(kOp, "out", out, x.numel());
  if (x.numel() == 0) return;
  const BiasAddParams p{x.numel() / n, n};
  const Kernel& kernel = enc.device().kernels().get(kOp, x.dtype());
  enc.dispatch(kernel, {Arg::in(x), Arg::in(bias), Arg::out(out)}, p, kOp);
}

}  // namespace mlxn::ops
