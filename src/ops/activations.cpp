// Activation op entry points: validate, then dispatch the backend kernel.
#include "mlxn/ops/activations.h"

#include <cmath>
#include <string>

#include "mlxn/core/device.h"
#include "ops/activations_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

void unary(const char* op, CommandEncoder& enc, const Buffer& x, const Buffer& out, float s) {
  detail::require_float(op, "x", x);
  detail::require_same_dtype(op, "out", out, x.dtype());
  detail::require_numel(op, "out", out, x.numel());
  if (x.numel() == 0) return;
  const Kernel& k = enc.device().kernels().get(op, x.dtype());
  const ActivationParams p{x.numel(), s};
  enc.dispatch(k, {Arg::in(x), Arg::out(out)}, p, op);
}

void gated(const char* op, CommandEncoder& enc, const Buffer& gate, const Buffer& up,
           const Buffer& out) {
  detail::require_float(op, "gate", gate);
  detail::require_same_dtype(op, "up", up, gate.dtype());
  detail::require_same_dtype(op, "out", out, gate.dtype());
  detail::require_numel(op, "up", up, gate.numel());
  detail::require_numel(op, "out", out, gate.numel());
  if (gate.numel() == 0) return;
  const Kernel& k = enc.device().kernels().get(op, gate.dtype());
  const ActivationParams p{gate.numel(), 0.0f};
  enc.dispatch(k, {Arg::in(gate), Arg::in(up), Arg::out(out)}, p, op);
}

}  // namespace

void scalar_mul(CommandEncoder& enc, const Buffer& x, float s, const Buffer& out) {
  unary("scalar_mul", enc, x, out, s);
}

void silu(CommandEncoder& enc, const Buffer& x, const Buffer& out) {
  unary("silu", enc, x, out, 0.0f);
}

void gelu(CommandEncoder& enc, const Buffer& x, const Buffer& out, GeluApprox approx) {
  unary(approx == GeluApprox::Tanh ? "gelu_tanh" : "gelu_erf", enc, x, out, 0.0f);
}

void softcap(CommandEncoder& enc, const Buffer& x, float cap, const Buffer& out) {
  if (!(cap > 0.0f) || !std::isfinite(cap)) {
    throw Error(ErrorKind::InvalidArgument,
                "softcap: cap must be positive and finite, got " + std::to_string(cap));
  }
  unary("softcap", enc, x, out, cap);
}

void silu_mul(CommandEncoder& enc, const Buffer& gate, const Buffer& up, const Buffer& out) {
  gated("silu_mul", enc, gate, up, out);
}

void gelu_mul(CommandEncoder& enc, const Buffer& gate, const Buffer& up, const Buffer& out,
              GeluApprox approx) {
  gated(approx == GeluApprox::Tanh ? "gelu_tanh_mul" : "gelu_erf_mul", enc, gate, up, out);
}

void sigmoid_mul(CommandEncoder& enc, const Buffer& gate, const Buffer& x, const Buffer& out) {
  gated("sigmoid_mul", enc, gate, x, out);
}

}  // namespace mlxn::ops
