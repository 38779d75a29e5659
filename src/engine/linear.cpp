// Linear / ExpertLinear: dispatch a projection to the matmul op of its storage kind, and split
// fused projections into zero-copy row ranges.
#include "mlxn/engine/linear.h"

#include <string>

#include "mlxn/core/device.h"
#include "mlxn/core/error.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/ggml_matmul.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/quantized_matmul.h"

namespace mlxn::engine {

namespace {

const char* kind_name(WeightKind kind) {
  switch (kind) {
    case WeightKind::Dense:
      return "dense";
    case WeightKind::MlxQuant:
      return "mlx-quantized";
    case WeightKind::Ggml:
      return "ggml";
  }
  return "?";
}

// Rows [row0, row0 + rows) of a buffer whose first dimension is the output row, as a view of the
// same storage. Bytes per row come from the shape, so padding past the shape is never included.
Buffer row_view(const Buffer& b, std::int64_t row0, std::int64_t rows, const char* what) {
  const Shape& s = b.shape();
  if (s.empty()) {
    throw Error(ErrorKind::InvalidArgument,
                std::string("Linear::rows: ") + what + " has no row dimension");
  }
  Shape tail(s.begin() + 1, s.end());
  const auto row_bytes = static_cast<std::size_t>(shape_numel(tail)) * dtype_size(b.dtype());
  Shape shape = s;
  shape[0] = rows;
  return b.view(static_cast<std::size_t>(row0) * row_bytes,
                static_cast<std::size_t>(rows) * row_bytes, b.dtype(), std::move(shape));
}

// y = x w^T (+ bias) by the dense op, which adds the bias in its epilogue.
void dense_matmul(CommandEncoder& encoder, const Buffer& x, const Buffer& w, const Buffer& bias,
                  const Buffer& y) {
  if (bias.valid()) {
    ops::matmul(encoder, x, w, bias, y);
  } else {
    ops::matmul(encoder, x, w, y);
  }
}

}  // namespace

void Linear::apply(CommandEncoder& encoder, const Buffer& x, const Buffer& y,
                   const Buffer& workspace) const {
  const std::int64_t m = x.shape().empty() ? 0 : x.numel() / x.shape().back();
  if (kind != WeightKind::Dense && workspace.valid() && m >= kDequantGemmMinRows &&
      encoder.device().backend() == Backend::Cuda && workspace.dtype() == x.dtype() &&
      workspace.numel() >= out * in) {
    const Buffer w = workspace.view(0, static_cast<std::size_t>(out * in) * dtype_size(x.dtype()),
                                    x.dtype(), {out, in});
    if (kind == WeightKind::MlxQuant) {
      ops::dequantize(encoder, quant, w);
    } else {
      ops::ggml_dequantize(encoder, ggml, ggml_type, w);
    }
    dense_matmul(encoder, x, w, bias, y);
    return;
  }
  switch (kind) {
    case WeightKind::Dense:
      dense_matmul(encoder, x, dense, bias, y);
      return;
    case WeightKind::MlxQuant:
      ops::quantized_matmul(encoder, x, quant, y);
      break;
    case WeightKind::Ggml:
      ops::ggml_matmul(encoder, x, ggml, ggml_type, y);
      break;
  }
  // The quantized kernels have no bias input; the add runs in place on the output.
  if (bias.valid()) ops::bias_add(encoder, y, bias, y);
}

Linear Linear::rows(std::int64_t row0, std::int64_t n_rows) const {
  if (row0 < 0 || n_rows <= 0 || row0 > out || n_rows > out - row0) {
    throw Error(ErrorKind::InvalidArgument,
                "Linear::rows: rows [" + std::to_string(row0) + ", " +
                    std::to_string(row0 + n_rows) + ") are not a non-empty range of the " +
                    std::to_string(out) + " output rows of a " + kind_name(kind) + " linear");
  }
  Linear r;
  r.kind = kind;
  r.in = in;
  r.out = n_rows;
  r.ggml_type = ggml_type;
  switch (kind) {
    case WeightKind::Dense:
      r.dense = row_view(dense, row0, n_rows, "dense weight");
      break;
    case WeightKind::MlxQuant:
      r.quant.packed = row_view(quant.packed, row0, n_rows, "packed weight");
      r.quant.scales = row_view(quant.scales, row0, n_rows, "scales");
      r.quant.biases = row_view(quant.biases, row0, n_rows, "biases");
      r.quant.bits = quant.bits;
      r.quant.group_size = quant.group_size;
      r.quant.layout = quant.layout;
      // DecodeTiles keep each 16 rows in one piece: only whole tiles are a row range.
      if (quant.layout == ops::QuantLayout::DecodeTiles &&
          (row0 % ops::kDecodeTileRows != 0 || n_rows % ops::kDecodeTileRows != 0)) {
        throw Error(ErrorKind::InvalidArgument,
                    "Linear::rows: rows [" + std::to_string(row0) + ", " +
                        std::to_string(row0 + n_rows) +
                        ") do not start and end on a 16-row tile of a DecodeTiles weight");
      }
      break;
    case WeightKind::Ggml:
      r.ggml = row_view(ggml, row0, n_rows, "ggml weight");
      break;
  }
  if (bias.valid()) r.bias = row_view(bias, row0, n_rows, "bias");
  return r;
}

void ExpertLinear::apply(CommandEncoder& encoder, const Buffer& x, const Buffer& ids,
                         const Buffer& y) const {
  switch (kind) {
    case WeightKind::Dense:
      ops::matmul_id(encoder, x, dense, ids, y);
      return;
    case WeightKind::MlxQuant:
      ops::quantized_matmul_id(encoder, x, quant, ids, y);
      return;
    case WeightKind::Ggml:
      ops::ggml_matmul_id(encoder, x, ggml, ggml_type, ids, y);
      return;
  }
}

}  // namespace mlxn::engine
