// The fused decode step's weight checks and its scales reorder (mlxn/ops/fused_decode.h): which
// weights the step can stream, and the op that lays a weight's scales and biases out in the order
// one of its units reads them, so a unit's bulk copy brings them in with its codes.
#include <string>

#include "mlxn/core/device.h"
#include "mlxn/core/error.h"
#include "mlxn/ops/fused_decode.h"
#include "ops/fused_decode_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

constexpr const char* kOp = "fused_decode_scales";
constexpr int kBits = 4;
constexpr int kGroup = 64;

const char* layout_name(QuantLayout layout) {
  return layout == QuantLayout::Rows ? "Rows" : "DecodeTiles";
}

// fused_decode_weight_problem, with the layout check optional: fused_decode_scales reads only the
// scales and biases, which are row-major in either layout.
std::string weight_problem(const QuantizedWeight& w, bool need_tiles) {
  if (!w.packed.valid()) return "packed is an empty buffer";
  if (!w.scales.valid()) return "scales is an empty buffer";
  if (!w.biases.valid()) return "biases is an empty buffer";
  if (w.bits != kBits) return "bits " + std::to_string(w.bits) + " (needs 4)";
  if (w.group_size != kGroup) return "group size " + std::to_string(w.group_size) + " (needs 64)";
  if (w.scales.dtype() != DType::BF16) {
    return "scales are " + std::string(dtype_name(w.scales.dtype())) + " (needs bf16)";
  }
  if (w.biases.dtype() != DType::BF16) {
    return "biases are " + std::string(dtype_name(w.biases.dtype())) + " (needs bf16)";
  }
  if (need_tiles && w.layout != QuantLayout::DecodeTiles) {
    return std::string("layout is ") + layout_name(w.layout) + " (needs DecodeTiles)";
  }
  if (w.packed.dtype() != DType::U32) {
    return "packed is " + std::string(dtype_name(w.packed.dtype())) + " (needs u32)";
  }
  if (w.packed.shape().size() != 2) {
    return "packed is " + shape_to_string(w.packed.shape()) + " (needs [n, k / 8], not stacked)";
  }
  if (w.scales.shape().size() != 2) {
    return "scales are " + shape_to_string(w.scales.shape()) + " (needs [n, k / 64])";
  }
  const std::int64_t n = w.scales.shape()[0], k = w.scales.shape()[1] * kGroup;
  if (w.biases.shape() != w.scales.shape()) {
    return "biases are " + shape_to_string(w.biases.shape()) + ", scales " +
           shape_to_string(w.scales.shape());
  }
  if (w.packed.shape() != Shape{n, k * kBits / 32}) {
    return "packed is " + shape_to_string(w.packed.shape()) + ", scales " +
           shape_to_string(w.scales.shape()) + " (needs " +
           shape_to_string(Shape{n, k * kBits / 32}) + ")";
  }
  if (n <= 0 || n % kDecodeTileRows != 0) {
    return "n " + std::to_string(n) + " is not a multiple of " + std::to_string(kDecodeTileRows);
  }
  if (k <= 0 || k % kFusedDecodeUnitCodes != 0) {
    return "k " + std::to_string(k) + " is not a multiple of " +
           std::to_string(kFusedDecodeUnitCodes);
  }
  if (k > kFusedDecodeMaxK) {
    return "k " + std::to_string(k) + " is over " + std::to_string(kFusedDecodeMaxK);
  }
  return {};
}

[[noreturn]] void fail(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, std::string(kOp) + ": " + what);
}

}  // namespace

std::string fused_decode_weight_problem(const QuantizedWeight& w) {
  return weight_problem(w, true);
}

std::int64_t fused_decode_scales_elems(std::int64_t n, std::int64_t k) {
  // Per row, two bf16 (a scale and a bias) a group of 64 codes.
  return n * k / 32;
}

void fused_decode_scales(CommandEncoder& enc, const QuantizedWeight& w, const Buffer& out) {
  if (const std::string why = weight_problem(w, false); !why.empty()) {
    throw Error(ErrorKind::QuantConfig, std::string(kOp) + ": " + why);
  }
  const std::int64_t n = w.scales.shape()[0], k = w.scales.shape()[1] * kGroup;
  if (!out.valid()) fail("out is an empty buffer");
  detail::require_same_dtype(kOp, "out", out, DType::BF16);
  detail::require_numel(kOp, "out", out, fused_decode_scales_elems(n, k));
  // The kernel writes out while it reads the scales; overlapping views would read its writes.
  if (detail::overlap(out, w.scales) || detail::overlap(out, w.biases)) {
    fail("out overlaps the scales or biases");
  }

  // One kernel for every weight: bf16 in and out, the shape in the params.
  const Kernel& kernel = enc.device().kernels().get(kOp, Specialization());
  FusedDecodeScalesParams p{};
  p.n = n;
  p.k = k;
  enc.dispatch(kernel, {Arg::in(w.scales), Arg::in(w.biases), Arg::out(out)}, p, kOp);
}

}  // namespace mlxn::ops
