// Dense expert-routed matmul entry point (MoE experts stored in f32/f16/bf16): validate the
// stacked weight and the routing, then dispatch the "matmul_id" kernel.
#include <string>

#include "mlxn/core/device.h"
#include "mlxn/ops/matmul.h"
#include "ops/matmul_id_params.h"
#include "ops/matmul_routing.h"
#include "ops/op_checks.h"

namespace mlxn::ops {

void matmul_id(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& ids,
               const Buffer& out) {
  constexpr const char* kOp = "matmul_id";
  detail::require_float(kOp, "x", x);
  detail::require_same_dtype(kOp, "w", w, x.dtype());
  const Shape& ws = w.shape();
  if (ws.size() != 3)
    detail::matmul_fail(kOp, "w must be [experts, n, k], got " + shape_to_string(ws));
  const std::int64_t experts = ws[0], n = ws[1], k = ws[2];
  if (experts <= 0 || n <= 0 || k <= 0) {
    detail::matmul_fail(kOp, "w has an empty shape " + shape_to_string(ws));
  }
  // The quantized _id ops share these routing rules; their params struct carries the result.
  QuantMatmulParams routing{};
  detail::id_routing(kOp, x, ids, out, n, k, experts, routing);
  if (routing.m == 0) return;
  const MatmulIdParams p{
      routing.m, n, k, routing.top_k, experts, routing.x_token_stride, routing.x_slot_stride};
  const Kernel& kernel = enc.device().kernels().get(kOp, x.dtype());
  enc.dispatch(kernel, {Arg::in(x), Arg::in(w), Arg::out(out), Arg::in(ids)}, p, kOp);
}

}  // namespace mlxn::ops
