// MLX affine quantized matmul entry points: validate the packed weight, scales, biases and
// routing, then dispatch the matvec (small m, expert-routed) or the tiled matmul kernel.
#include "mlxn/ops/quantized_matmul.h"

#include <string>

#include "mlxn/core/device.h"
#include "ops/matmul_params.h"
#include "ops/matmul_routing.h"
#include "ops/op_checks.h"
#include "ops/quant_decode_tiles.h"

namespace mlxn::ops {
namespace {

static_assert(static_cast<std::int32_t>(QuantLayout::Rows) == kLayoutRows &&
              static_cast<std::int32_t>(QuantLayout::DecodeTiles) == kLayoutDecodeTiles);
static_assert(kDecodeStepCodes == kDecodeTileCodes &&
              kDecodeTileBytes == kDecodeTileRows * kDecodeTileCodes / 2);

ScaleType scale_type_of(DType dtype) {
  switch (dtype) {
    case DType::F16:
      return kScaleF16;
    case DType::BF16:
      return kScaleBF16;
    default:
      return kScaleF32;
  }
}

// Checks w against its own metadata; returns {experts, n, k}. `stacked` expects [experts, ...].
struct WeightDims {
  std::int64_t experts, n, k;
};

WeightDims check_weight(const char* op, const QuantizedWeight& w, bool stacked) {
  const int bits = w.bits;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8) {
    throw Error(ErrorKind::QuantConfig,
                std::string(op) + ": bits must be 2, 3, 4, 5, 6 or 8, got " + std::to_string(bits));
  }
  if (w.group_size != 32 && w.group_size != 64 && w.group_size != 128) {
    throw Error(ErrorKind::QuantConfig, std::string(op) +
                                            ": group_size must be 32, 64 or 128, got " +
                                            std::to_string(w.group_size));
  }
  if (!w.packed.valid() || w.packed.dtype() != DType::U32) {
    detail::matmul_fail(op, "packed weight must be a u32 buffer");
  }
  const Shape& ps = w.packed.shape();
  const std::size_t rank = stacked ? 3 : 2;
  if (ps.size() != rank) {
    detail::matmul_fail(op, std::string("packed weight must be ") +
                                (stacked ? "[experts, n, k*bits/32]" : "[n, k*bits/32]") +
                                ", got " + shape_to_string(ps));
  }
  WeightDims d{stacked ? ps[0] : 1, ps[rank - 2], ps[rank - 1] * 32 / bits};
  if (d.experts <= 0 || d.n <= 0 || d.k <= 0 || ps[rank - 1] * 32 % bits != 0) {
    detail::matmul_fail(op, "packed weight has an invalid shape " + shape_to_string(ps));
  }
  if (d.k % w.group_size != 0) {
    throw Error(ErrorKind::QuantConfig, std::string(op) + ": k = " + std::to_string(d.k) +
                                            " is not a multiple of group_size " +
                                            std::to_string(w.group_size));
  }
  detail::require_float(op, "scales", w.scales);
  detail::require_float(op, "biases", w.biases);
  detail::require_same_dtype(op, "biases", w.biases, w.scales.dtype());
  if (w.layout == QuantLayout::DecodeTiles) {
    if (w.bits != 4 || stacked || d.n % kDecodeTileRows != 0 || d.k % kDecodeTileCodes != 0) {
      throw Error(ErrorKind::QuantConfig,
                  std::string(op) + ": the DecodeTiles layout needs 4 bits, a 2-D weight, n a " +
                      "multiple of 16 and k of 128; got bits " + std::to_string(w.bits) +
                      ", packed " + shape_to_string(ps));
    }
  }
  Shape gs = stacked ? Shape{d.experts, d.n, d.k / w.group_size} : Shape{d.n, d.k / w.group_size};
  if (w.scales.shape() != gs || w.biases.shape() != gs) {
    detail::matmul_fail(op, "scales and biases must be " + shape_to_string(gs) + ", got " +
                                shape_to_string(w.scales.shape()) + " and " +
                                shape_to_string(w.biases.shape()));
  }
  return d;
}

// Params of an op over the whole of a 2-D weight, with no x (dequantize, tile_for_decode).
QuantMatmulParams whole_weight_params(const WeightDims& d, const QuantizedWeight& w) {
  QuantMatmulParams p{};
  p.n = d.n;
  p.k = d.k;
  p.n_experts = 1;
  p.bits = w.bits;
  p.group_size = w.group_size;
  p.scale_type = scale_type_of(w.scales.dtype());
  p.layout = static_cast<std::int32_t>(w.layout);
  return p;
}

void dispatch(CommandEncoder& enc, const Buffer& x, const QuantizedWeight& w, const Buffer* ids,
              const Buffer& out, QuantMatmulParams& p, const char* op) {
  if (p.m == 0) return;
  p.bits = w.bits;
  p.group_size = w.group_size;
  p.scale_type = scale_type_of(w.scales.dtype());
  p.ggml_type = 0;
  p.layout = static_cast<std::int32_t>(w.layout);
  const bool matvec = ids != nullptr || p.m * p.top_k <= detail::kQuantMatvecMaxRows;
  const Kernel& kernel = enc.device().kernels().get(
      matvec ? "quantized_matvec" : "quantized_matmul",
      Specialization().set("dtype", x.dtype()).set("bits", std::int64_t{w.bits}));
  if (ids != nullptr) {
    enc.dispatch(kernel,
                 {Arg::in(x), Arg::in(w.packed), Arg::in(w.scales), Arg::in(w.biases),
                  Arg::out(out), Arg::in(*ids)},
                 p, op);
  } else {
    enc.dispatch(
        kernel,
        {Arg::in(x), Arg::in(w.packed), Arg::in(w.scales), Arg::in(w.biases), Arg::out(out)}, p,
        op);
  }
}

}  // namespace

void quantized_matmul(CommandEncoder& enc, const Buffer& x, const QuantizedWeight& w,
                      const Buffer& out) {
  const WeightDims d = check_weight("quantized_matmul", w, false);
  QuantMatmulParams p{};
  p.n = d.n;
  p.k = d.k;
  detail::plain_routing("quantized_matmul", x, out, d.n, d.k, p);
  dispatch(enc, x, w, nullptr, out, p, "quantized_matmul");
}

void dequantize(CommandEncoder& enc, const QuantizedWeight& w, const Buffer& out) {
  constexpr const char* kOp = "dequantize";
  const WeightDims d = check_weight(kOp, w, false);
  detail::require_float(kOp, "out", out);
  if (out.shape() != Shape{d.n, d.k}) {
    detail::matmul_fail(kOp, "out must be " + shape_to_string(Shape{d.n, d.k}) + ", got " +
                                 shape_to_string(out.shape()));
  }
  const QuantMatmulParams p = whole_weight_params(d, w);
  const Kernel& kernel = enc.device().kernels().get(
      "quantized_dequant",
      Specialization().set("dtype", out.dtype()).set("bits", std::int64_t{w.bits}));
  // out takes the place of x (binding 0), so the weight bindings are those of quantized_matmul.
  enc.dispatch(kernel, {Arg::out(out), Arg::in(w.packed), Arg::in(w.scales), Arg::in(w.biases)}, p,
               kOp);
}

void quantized_matmul_id(CommandEncoder& enc, const Buffer& x, const QuantizedWeight& w,
                         const Buffer& ids, const Buffer& out) {
  const WeightDims d = check_weight("quantized_matmul_id", w, true);
  QuantMatmulParams p{};
  p.n = d.n;
  p.k = d.k;
  detail::id_routing("quantized_matmul_id", x, ids, out, d.n, d.k, d.experts, p);
  dispatch(enc, x, w, &ids, out, p, "quantized_matmul_id");
}

bool decode_tiles_fit(const QuantizedWeight& w) {
  if (w.layout != QuantLayout::Rows || w.bits != 4 || !w.packed.valid() ||
      w.packed.shape().size() != 2) {
    return false;
  }
  const std::int64_t n = w.packed.shape()[0], k = w.packed.shape()[1] * 8;
  return n % kDecodeTileRows == 0 && k % kDecodeTileCodes == 0;
}

QuantizedWeight tile_for_decode(CommandEncoder& enc, const QuantizedWeight& w,
                                const Buffer& packed_out) {
  constexpr const char* kOp = "tile_for_decode";
  const WeightDims d = check_weight(kOp, w, false);
  if (!decode_tiles_fit(w)) {
    throw Error(ErrorKind::QuantConfig,
                std::string(kOp) + ": needs a Rows-layout 4-bit weight with n a multiple of 16 " +
                    "and k of 128; got bits " + std::to_string(w.bits) + ", packed " +
                    shape_to_string(w.packed.shape()) +
                    (w.layout == QuantLayout::Rows ? "" : " (already tiled)"));
  }
  if (!packed_out.valid() || packed_out.dtype() != DType::U32 ||
      packed_out.shape() != w.packed.shape()) {
    detail::matmul_fail(kOp, "packed_out must be u32 " + shape_to_string(w.packed.shape()));
  }
  if (detail::overlap(packed_out, w.packed)) {
    detail::matmul_fail(kOp, "packed_out overlaps w.packed");
  }
  QuantMatmulParams p = whole_weight_params(d, w);
  p.layout = static_cast<std::int32_t>(QuantLayout::DecodeTiles);
  const Kernel& kernel = enc.device().kernels().get("quantized_tile_decode", Specialization());
  enc.dispatch(kernel, {Arg::out(packed_out), Arg::in(w.packed)}, p, kOp);
  QuantizedWeight t = w;
  t.packed = packed_out;
  t.layout = QuantLayout::DecodeTiles;
  return t;
}

}  // namespace mlxn::ops
