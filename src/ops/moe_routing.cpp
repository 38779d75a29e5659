// MoE routing op entry points: validate, then dispatch the backend kernel.
#include "mlxn/ops/moe_routing.h"

#include <cmath>
#include <string>

#include "mlxn/core/device.h"
#include "ops/moe_routing_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const char* op, const std::string& msg) {
  throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + msg);
}

void require_dtype(const char* op, const char* name, const Buffer& b, DType dtype) {
  if (!b.valid()) fail(op, std::string(name) + " is an empty buffer");
  detail::require_same_dtype(op, name, b, dtype);
}

void combine(const Buffer& e, const Buffer& w, const Buffer* shared, const Buffer* gate,
             const Buffer& out, CommandEncoder& enc) {
  const char* op = "moe_combine";
  detail::require_float(op, "expert_out", e);
  if (e.shape().size() < 2) fail(op, "expert_out must be [n_tokens, k, hidden]");
  const std::int64_t hidden = e.shape().back();
  const std::int64_t k = e.shape()[e.shape().size() - 2];
  if (hidden <= 0 || k <= 0) fail(op, "expert_out has an empty k or hidden dim");
  const std::int64_t n_tokens = e.numel() / (k * hidden);
  require_dtype(op, "weights", w, DType::F32);
  detail::require_numel(op, "weights", w, n_tokens * k);
  require_dtype(op, "out", out, e.dtype());
  detail::require_numel(op, "out", out, n_tokens * hidden);
  if (shared) {
    require_dtype(op, "shared", *shared, e.dtype());
    detail::require_numel(op, "shared", *shared, n_tokens * hidden);
  }
  if (gate) {
    require_dtype(op, "shared_gate", *gate, e.dtype());
    detail::require_numel(op, "shared_gate", *gate, n_tokens);
  }
  if (n_tokens == 0) return;
  const Kernel& kern =
      enc.device().kernels().get("moe_combine", Specialization()
                                                    .set("dtype", e.dtype())
                                                    .set("shared", std::int64_t{shared != nullptr})
                                                    .set("gate", std::int64_t{gate != nullptr}));
  const MoeCombineParams p{n_tokens, k, hidden};
  if (gate) {
    enc.dispatch(kern, {Arg::in(e), Arg::in(w), Arg::in(*shared), Arg::in(*gate), Arg::out(out)}, p,
                 op);
  } else if (shared) {
    enc.dispatch(kern, {Arg::in(e), Arg::in(w), Arg::in(*shared), Arg::out(out)}, p, op);
  } else {
    enc.dispatch(kern, {Arg::in(e), Arg::in(w), Arg::out(out)}, p, op);
  }
}

}  // namespace

void moe_route(CommandEncoder& enc, const Buffer& logits, std::int64_t k, MoeScoring scoring,
               bool renormalize, const Buffer& ids, const Buffer& weights, float scale) {
  const char* op = "moe_route";
  detail::require_float(op, "logits", logits);
  if (logits.shape().empty()) fail(op, "logits must be [n_tokens, n_experts]");
  const std::int64_t n_experts = logits.shape().back();
  if (n_experts < 1 || n_experts > kMaxExperts) {
    fail(op, "n_experts = " + std::to_string(n_experts) + " must be in [1, " +
                 std::to_string(kMaxExperts) + "]");
  }
  if (k < 1 || k > n_experts || k > kMaxExpertsPerToken) {
    fail(op, "k = " + std::to_string(k) + " must be in [1, min(n_experts, " +
                 std::to_string(kMaxExpertsPerToken) + ")]");
  }
  if (!std::isfinite(scale)) fail(op, "scale must be finite");
  const std::int64_t n_tokens = logits.numel() / n_experts;
  require_dtype(op, "ids", ids, DType::I32);
  require_dtype(op, "weights", weights, DType::F32);
  detail::require_numel(op, "ids", ids, n_tokens * k);
  detail::require_numel(op, "weights", weights, n_tokens * k);
  if (n_tokens == 0) return;
  const MoeRouteParams p{n_tokens,
                         static_cast<std::int32_t>(n_experts),
                         static_cast<std::int32_t>(k),
                         scoring == MoeScoring::Sigmoid ? kScoringSigmoid : kScoringSoftmax,
                         renormalize ? 1 : 0,
                         scale};
  const Kernel& kern = enc.device().kernels().get("moe_route", logits.dtype());
  enc.dispatch(kern, {Arg::in(logits), Arg::out(ids), Arg::out(weights)}, p, op);
}

void moe_combine(CommandEncoder& enc, const Buffer& expert_out, const Buffer& weights,
                 const Buffer& out) {
  combine(expert_out, weights, nullptr, nullptr, out, enc);
}

void moe_combine_shared(CommandEncoder& enc, const Buffer& expert_out, const Buffer& weights,
                        const Buffer& shared, const Buffer& shared_gate, const Buffer& out) {
  combine(expert_out, weights, &shared, shared_gate.valid() ? &shared_gate : nullptr, out, enc);
}

}  // namespace mlxn::ops
