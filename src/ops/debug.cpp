// assert_finite entry point.
#include "mlxn/ops/debug.h"

#include "mlxn/core/device.h"
#include "ops/op_checks.h"
#include "ops/op_params.h"

namespace mlxn::ops {

void assert_finite(CommandEncoder& enc, const Buffer& x) {
  detail::require_float("assert_finite", "x", x);
  if (x.numel() == 0) return;
  const Kernel& k =
      enc.device().kernels().get("assert_finite", x.dtype());
  AssertFiniteParams p{x.numel()};
  enc.dispatch(k, {Arg::in(x)}, p, "assert_finite");
}

}  // namespace mlxn::ops
