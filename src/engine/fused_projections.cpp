// Fused projections (fused_projections.h): the compatibility rule and the fused-or-separate load.
#include "fused_projections.h"

namespace mlxn::engine::detail {

bool can_fuse(std::span<const LinearFormat> formats) {
  if (formats.size() < 2) return false;
  const LinearFormat& first = formats.front();
  std::int64_t row0 = 0;
  for (const LinearFormat& f : formats) {
    if (f.kind != first.kind || f.in != first.in || f.dtype != first.dtype ||
        f.has_bias != first.has_bias || f.out <= 0) {
      return false;
    }
    switch (f.kind) {
      case WeightKind::Dense:
        break;
      case WeightKind::MlxQuant:
        if (f.bits != first.bits || f.group_size != first.group_size) return false;
        break;
      case WeightKind::Ggml:
        if (f.ggml_type != first.ggml_type || f.row_bytes != first.row_bytes) return false;
        if ((row0 * f.row_bytes) % 4 != 0) return false;
        break;
    }
    row0 += f.out;
  }
  return true;
}

Linear alloc_fused(Uploader& up, const LinearFormat& first, std::span<const LinearBinding> parts) {
  Linear l;
  l.kind = first.kind;
  l.in = first.in;
  l.ggml_type = first.ggml_type;
  for (const LinearBinding& p : parts) l.out += p.weight->expected.shape.front();
  switch (first.kind) {
    case WeightKind::MlxQuant:
      l.quant.bits = first.bits;
      l.quant.group_size = first.group_size;
      l.quant.packed = up.alloc(DType::U32, {l.out, l.in * first.bits / 32});
      l.quant.scales = up.alloc(first.dtype, {l.out, l.in / first.group_size});
      l.quant.biases = up.alloc(first.dtype, {l.out, l.in / first.group_size});
      break;
    case WeightKind::Ggml:
      l.ggml = up.alloc(DType::U8, {l.out, first.row_bytes});
      break;
    case WeightKind::Dense:
      l.dense = up.alloc(up.compute_dtype(), {l.out, l.in});
      break;
  }
  if (first.has_bias) l.bias = up.alloc(up.compute_dtype(), {l.out});
  return l;
}

FusedProjections load_projections(WeightSource& src, std::span<const LinearBinding> parts) {
  std::vector<LinearFormat> formats;
  formats.reserve(parts.size());
  for (const LinearBinding& b : parts) formats.push_back(src.linear_format(b));
  FusedProjections out;
  out.parts.reserve(parts.size());
  if (!can_fuse(formats)) {
    for (const LinearBinding& b : parts) out.parts.push_back(src.linear(*b.weight, b.bias));
    return out;
  }
  out.fused = src.fused_linear(parts);
  std::int64_t row0 = 0;
  for (const LinearFormat& f : formats) {
    out.parts.push_back(out.fused.rows(row0, f.out));
    row0 += f.out;
  }
  return out;
}

}  // namespace mlxn::engine::detail
