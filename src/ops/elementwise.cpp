// Elementwise op entry points: validate, then dispatch the backend kernel.
#include "mlxn/ops/elementwise.h"

#include "mlxn/core/device.h"
#include "ops/op_checks.h"
#include "ops/op_params.h"

namespace mlxn::ops {
namespace {

void binary(const char* op, CommandEncoder& enc, const Buffer& a, const Buffer& b,
            const Buffer& out) {
  detail::require_float(op, "a", a);
  detail::require_same_dtype(op, "b", b, a.dtype());
  detail::require_same_dtype(op, "out", out, a.dtype());
  detail::require_numel(op, "b", b, a.numel());
  detail::require_numel(op, "out", out, a.numel());
  if (a.numel() == 0) return;
  const Kernel& k = enc.device().kernels().get(op, a.dtype());
  BinaryParams p{a.numel()};
  enc.dispatch(k, {Arg::in(a), Arg::in(b), Arg::out(out)}, p, op);
}

}  // namespace

void add(CommandEncoder& enc, const Buffer& a, const Buffer& b, const Buffer& out) {
  binary("add", enc, a, b, out);
}

void mul(CommandEncoder& enc, const Buffer& a, const Buffer& b, const Buffer& out) {
  binary("mul", enc, a, b, out);
}

void cast(CommandEncoder& enc, const Buffer& in, const Buffer& out) {
  detail::require_float("cast", "in", in);
  detail::require_float("cast", "out", out);
  detail::require_numel("cast", "out", out, in.numel());
  if (in.numel() == 0) return;
  const Kernel& k = enc.device().kernels().get(
      "cast", Specialization().set("src", in.dtype()).set("dst", out.dtype()));
  CastParams p{in.numel()};
  enc.dispatch(k, {Arg::in(in), Arg::out(out)}, p, "cast");
}

}  // namespace mlxn::ops
