// GGML quantized matmul entry points: validate the block-quantized weight and the routing, then
// dispatch the matvec (small m, expert-routed) or the tiled matmul kernel.
#include "mlxn/ops/ggml_matmul.h"

#include <string>

#include "mlxn/core/device.h"
#include "ops/matmul_params.h"
#include "ops/matmul_routing.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

struct WeightDims {
  std::int64_t experts, n, k;
};

// w: u8 [(experts,) n, row_bytes] with row_bytes = ggml_row_size(type, k) for x's k.
WeightDims check_weight(const char* op, const Buffer& x, const Buffer& w, io::GgmlType type,
                        bool stacked) {
  if (!ggml_matmul_supports(type)) {
    throw Error(ErrorKind::Unsupported, std::string(op) + ": GGML type " +
                                            io::ggml_type_name(type) +
                                            " is not supported (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K; "
                                            "dequantize others and use matmul)");
  }
  detail::require_float(op, "x", x);
  if (!w.valid() || w.dtype() != DType::U8) detail::matmul_fail(op, "w must be a u8 buffer");
  // GPU kernels read blocks with 2- and 4-byte loads (16-byte where aligned); GGUF data is
  // 32-byte aligned, so only a deliberately odd view fails this.
  if (w.offset() % 4 != 0) detail::matmul_fail(op, "w must start at a 4-byte aligned offset");
  const Shape& ws = w.shape();
  const std::size_t rank = stacked ? 3 : 2;
  if (ws.size() != rank) {
    detail::matmul_fail(op, std::string("w must be ") +
                                (stacked ? "[experts, n, row_bytes]" : "[n, row_bytes]") +
                                ", got " + shape_to_string(ws));
  }
  const std::int64_t k = x.shape().empty() ? 0 : x.shape().back();
  const std::uint32_t block = io::ggml_type_traits(type).block_size;
  if (k <= 0 || k % block != 0) {
    detail::matmul_fail(op, "k = " + std::to_string(k) + " must be a positive multiple of " +
                                std::to_string(block) + " for " + io::ggml_type_name(type));
  }
  const auto row_bytes = static_cast<std::int64_t>(io::ggml_row_size(type, k));
  if (ws[rank - 1] != row_bytes) {
    detail::matmul_fail(op, "w rows must be " + std::to_string(row_bytes) + " bytes (" +
                                io::ggml_type_name(type) + ", k = " + std::to_string(k) +
                                "), got " + shape_to_string(ws));
  }
  WeightDims d{stacked ? ws[0] : 1, ws[rank - 2], k};
  if (d.experts <= 0 || d.n <= 0) detail::matmul_fail(op, "w is empty " + shape_to_string(ws));
  return d;
}

void dispatch(CommandEncoder& enc, const Buffer& x, const Buffer& w, io::GgmlType type,
              const Buffer* ids, const Buffer& out, QuantMatmulParams& p, const char* op) {
  if (p.m == 0) return;
  p.ggml_type = static_cast<std::int32_t>(type);
  const bool matvec = ids != nullptr || p.m * p.top_k <= detail::kQuantMatvecMaxRows;
  const Kernel& kernel = enc.device().kernels().get(
      matvec ? "ggml_matvec" : "ggml_matmul",
      Specialization().set("dtype", x.dtype()).set("type", io::ggml_type_name(type)));
  if (ids != nullptr) {
    enc.dispatch(kernel, {Arg::in(x), Arg::in(w), Arg::out(out), Arg::in(*ids)}, p, op);
  } else {
    enc.dispatch(kernel, {Arg::in(x), Arg::in(w), Arg::out(out)}, p, op);
  }
}

}  // namespace

void ggml_dequantize(CommandEncoder& enc, const Buffer& w, io::GgmlType type, const Buffer& out) {
  constexpr const char* kOp = "ggml_dequantize";
  // out plays x's part in the checks: its last dim is k.
  const WeightDims d = check_weight(kOp, out, w, type, false);
  if (out.shape() != Shape{d.n, d.k}) {
    detail::matmul_fail(kOp, "out must be " + shape_to_string(Shape{d.n, d.k}) + ", got " +
                                 shape_to_string(out.shape()));
  }
  QuantMatmulParams p{};
  p.n = d.n;
  p.k = d.k;
  p.n_experts = 1;
  p.ggml_type = static_cast<std::int32_t>(type);
  const Kernel& kernel = enc.device().kernels().get(
      "ggml_dequant",
      Specialization().set("dtype", out.dtype()).set("type", io::ggml_type_name(type)));
  enc.dispatch(kernel, {Arg::out(out), Arg::in(w)}, p, kOp);
}

bool ggml_matmul_supports(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::Q4_0:
    case io::GgmlType::Q8_0:
    case io::GgmlType::Q4_K:
    case io::GgmlType::Q5_K:
    case io::GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void ggml_matmul(CommandEncoder& enc, const Buffer& x, const Buffer& w, io::GgmlType type,
                 const Buffer& out) {
  const WeightDims d = check_weight("ggml_matmul", x, w, type, false);
  QuantMatmulParams p{};
  p.n = d.n;
  p.k = d.k;
  detail::plain_routing("ggml_matmul", x, out, d.n, d.k, p);
  dispatch(enc, x, w, type, nullptr, out, p, "ggml_matmul");
}

void ggml_matmul_id(CommandEncoder& enc, const Buffer& x, const Buffer& w, io::GgmlType type,
                    const Buffer& ids, const Buffer& out) {
  const WeightDims d = check_weight("ggml_matmul_id", x, w, type, true);
  QuantMatmulParams p{};
  p.n = d.n;
  p.k = d.k;
  detail::id_routing("ggml_matmul_id", x, ids, out, d.n, d.k, d.experts, p);
  dispatch(enc, x, w, type, &ids, out, p, "ggml_matmul_id");
}

}  // namespace mlxn::ops
