// RMSNorm op entry points and the rms_norm -> mul fusion rule.
#include "mlxn/ops/norm.h"

#include <cstring>

#include "mlxn/core/device.h"
#include "ops/op_checks.h"
#include "ops/op_params.h"

namespace mlxn::ops {
namespace {

RmsNormParams norm_params(const char* op, const Buffer& x, const Buffer& w, const Buffer& out,
                          float eps) {
  detail::require_float(op, "x", x);
  detail::require_same_dtype(op, "w", w, x.dtype());
  detail::require_same_dtype(op, "out", out, x.dtype());
  if (x.shape().empty()) {
    throw Error(ErrorKind::InvalidArgument, std::string(op) + ": x must have at least one dim");
  }
  const std::int64_t cols = x.shape().back();
  if (cols <= 0) throw Error(ErrorKind::InvalidArgument, std::string(op) + ": x has no columns");
  const std::int64_t rows = x.numel() / cols;
  if (rows * cols != x.numel()) {
    throw Error(ErrorKind::InvalidArgument, std::string(op) + ": x's shape " +
                                                shape_to_string(x.shape()) +
                                                " does not match its size");
  }
  detail::require_numel(op, "w", w, cols);
  detail::require_numel(op, "out", out, x.numel());
  if (!(eps >= 0.0f)) {
    throw Error(ErrorKind::InvalidArgument, std::string(op) + ": eps must be >= 0");
  }
  return RmsNormParams{rows, cols, eps};
}

bool same_view(const Buffer& a, const Buffer& b) {
  return a.same_storage(b) && a.offset() == b.offset() && a.size_bytes() == b.size_bytes();
}

}  // namespace

void rms_norm(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& out,
              float eps) {
  const RmsNormParams p = norm_params("rms_norm", x, w, out, eps);
  const Kernel& k = enc.device().kernels().get("rms_norm", x.dtype());
  enc.dispatch(k, {Arg::in(x), Arg::in(w), Arg::out(out)}, p, "rms_norm");
}

void rms_norm_mul(CommandEncoder& enc, const Buffer& x, const Buffer& w, const Buffer& g,
                  const Buffer& out, float eps) {
  const RmsNormParams p = norm_params("rms_norm_mul", x, w, out, eps);
  detail::require_same_dtype("rms_norm_mul", "g", g, x.dtype());
  detail::require_numel("rms_norm_mul", "g", g, x.numel());
  const Kernel& k =
      enc.device().kernels().get("rms_norm_mul", x.dtype());
  enc.dispatch(k, {Arg::in(x), Arg::in(w), Arg::in(g), Arg::out(out)}, p, "rms_norm_mul");
}

FusionRule rms_norm_mul_fusion(KernelRegistry& registry) {
  return [&registry](const GraphNode& a, const GraphNode& b) -> std::optional<GraphNode> {
    if (a.op != "rms_norm" || b.op != "mul" || a.args.size() != 3 || b.args.size() != 3) {
      return std::nullopt;
    }
    const Buffer& t = a.args[2].buffer;
    const Buffer* g = nullptr;
    if (same_view(b.args[0].buffer, t) && !same_view(b.args[1].buffer, t)) g = &b.args[1].buffer;
    if (same_view(b.args[1].buffer, t) && !same_view(b.args[0].buffer, t)) g = &b.args[0].buffer;
    if (!g || g->numel() != t.numel() || g->dtype() != t.dtype()) return std::nullopt;
    GraphNode f;
    f.kind = GraphNode::Kind::Dispatch;
    f.op = "rms_norm_mul";
    f.kernel = &registry.get("rms_norm_mul", t.dtype());
    f.args = {a.args[0], a.args[1], Arg::in(*g), b.args[2]};
    f.params = a.params;  // RmsNormParams: same rows, cols, eps
    return f;
  };
}

}  // namespace mlxn::ops
