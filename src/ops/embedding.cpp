// Embedding lookup entry points (dense and MLX-quantized): validate, then dispatch.
#include "mlxn/ops/embedding.h"

#include <cmath>
#include <string>

#include "mlxn/core/device.h"
#include "ops/embedding_params.h"
#include "ops/op_checks.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, std::string(op) + ": " + what);
}

void require_ids(const char* op, const Buffer& ids) {
  if (!ids.valid() || ids.dtype() != DType::I32) fail(op, "ids must be an i32 buffer");
}

void require_2d(const char* op, const char* name, const Buffer& b) {
  if (!b.valid() || b.shape().size() != 2) {
    fail(op, std::string(name) + " must be 2-D, got " +
                 (b.valid() ? shape_to_string(b.shape()) : std::string("an empty buffer")));
  }
}

void require_scale(const char* op, float scale) {
  if (!std::isfinite(scale)) fail(op, "scale must be finite");
}

}  // namespace

void embedding(CommandEncoder& enc, const Buffer& table, const Buffer& ids, const Buffer& out,
               float scale) {
  const char* op = "embedding";
  detail::require_float(op, "table", table);
  require_2d(op, "table", table);
  require_ids(op, ids);
  detail::require_same_dtype(op, "out", out, table.dtype());
  require_scale(op, scale);
  const std::int64_t vocab = table.shape()[0], hidden = table.shape()[1];
  const std::int64_t n_tokens = ids.numel();
  detail::require_numel(op, "out", out, n_tokens * hidden);
  if (n_tokens == 0 || hidden == 0) return;
  const Kernel& k = enc.device().kernels().get(op, table.dtype());
  const EmbeddingParams p{n_tokens, vocab, hidden, scale};
  enc.dispatch(k, {Arg::in(table), Arg::in(ids), Arg::out(out)}, p, op);
}

void embedding_quantized(CommandEncoder& enc, const QuantizedEmbedding& t, const Buffer& ids,
                         const Buffer& out, float scale) {
  const char* op = "embedding_quantized";
  if (t.bits != 2 && t.bits != 3 && t.bits != 4 && t.bits != 5 && t.bits != 6 && t.bits != 8) {
    fail(op, "bits must be 2, 3, 4, 5, 6 or 8, got " + std::to_string(t.bits));
  }
  if (t.group_size != 32 && t.group_size != 64 && t.group_size != 128) {
    fail(op, "group_size must be 32, 64 or 128, got " + std::to_string(t.group_size));
  }
  require_2d(op, "packed", t.packed);
  if (t.packed.dtype() != DType::U32) fail(op, "packed must be u32");
  const std::int64_t vocab = t.packed.shape()[0];
  const std::int64_t hidden = t.packed.shape()[1] * 32 / t.bits;
  if (hidden <= 0 || hidden * t.bits != t.packed.shape()[1] * 32 || hidden % t.group_size != 0) {
    fail(op, "packed row of " + std::to_string(t.packed.shape()[1]) +
                 " words does not hold a whole number of groups of " +
                 std::to_string(t.group_size) + " " + std::to_string(t.bits) + "-bit codes");
  }
  detail::require_float(op, "scales", t.scales);
  detail::require_same_dtype(op, "biases", t.biases, t.scales.dtype());
  const Shape groups{vocab, hidden / t.group_size};
  if (t.scales.shape() != groups || t.biases.shape() != groups) {
    fail(op, "scales and biases must be " + shape_to_string(groups) + ", got " +
                 shape_to_string(t.scales.shape()) + " and " + shape_to_string(t.biases.shape()));
  }
  require_ids(op, ids);
  detail::require_float(op, "out", out);
  require_scale(op, scale);
  const std::int64_t n_tokens = ids.numel();
  detail::require_numel(op, "out", out, n_tokens * hidden);
  if (n_tokens == 0) return;
  const Kernel& k = enc.device().kernels().get(
      op, Specialization().set("dtype", out.dtype()).set("scale_dtype", t.scales.dtype()));
  const EmbeddingQuantizedParams p{n_tokens, vocab, hidden, t.bits, t.group_size, scale};
  enc.dispatch(
      k, {Arg::in(t.packed), Arg::in(t.scales), Arg::in(t.biases), Arg::in(ids), Arg::out(out)}, p,
      op);
}

}  // namespace mlxn::ops
