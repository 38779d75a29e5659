// apply_penalties entry point: validates, then dispatches the "apply_penalties" kernel.
#include "mlxn/ops/penalties.h"

#include <cmath>
#include <string>

#include "mlxn/core/device.h"
#include "ops/op_checks.h"
#include "ops/penalties_params.h"

namespace mlxn::ops {
namespace {

constexpr const char* kOp = "apply_penalties";

[[noreturn]] void fail(const std::string& msg) {
  throw Error(ErrorKind::InvalidArgument, std::string(kOp) + ": " + msg);
}

}  // namespace

void apply_penalties(CommandEncoder& enc, const Buffer& logits, const Buffer& token_counts,
                     std::int64_t n_valid, float repetition_penalty, float presence_penalty,
                     float frequency_penalty) {
  detail::require_float(kOp, "logits", logits);
  if (logits.shape().size() != 2 || logits.shape()[1] <= 0) {
    fail("logits must be [rows, vocab] with vocab > 0, got " + shape_to_string(logits.shape()));
  }
  const std::int64_t rows = logits.shape()[0];
  const std::int64_t vocab = logits.shape()[1];
  if (vocab >= (std::int64_t{1} << 31)) fail("vocab >= 2^31 is not supported");
  if (!token_counts.valid()) fail("token_counts is an empty buffer");
  detail::require_same_dtype(kOp, "token_counts", token_counts, DType::I32);
  const Shape& cs = token_counts.shape();
  if (cs.size() != 3 || cs[0] != rows || cs[2] != 2) {
    fail("token_counts must be [rows = " + std::to_string(rows) + ", n, 2], got " +
         shape_to_string(cs));
  }
  const std::int64_t n = cs[1];
  if (n_valid < 0 || n_valid > n) {
    fail("n_valid = " + std::to_string(n_valid) + " is outside [0, n = " + std::to_string(n) + "]");
  }
  if (!std::isfinite(repetition_penalty) || !(repetition_penalty > 0.0f)) {
    fail("repetition_penalty must be finite and > 0, got " + std::to_string(repetition_penalty));
  }
  if (!std::isfinite(presence_penalty) || !std::isfinite(frequency_penalty)) {
    fail("presence_penalty and frequency_penalty must be finite, got " +
         std::to_string(presence_penalty) + " and " + std::to_string(frequency_penalty));
  }
  const bool neutral =
      repetition_penalty == 1.0f && presence_penalty == 0.0f && frequency_penalty == 0.0f;
  if (neutral || n_valid == 0 || rows == 0) return;
  const PenaltiesParams p{
      rows, vocab, n, n_valid, repetition_penalty, presence_penalty, frequency_penalty};
  const Kernel& kernel = enc.device().kernels().get(kOp, logits.dtype());
  enc.dispatch(kernel, {Arg::inout(logits), Arg::in(token_counts)}, p, kOp);
}

}  // namespace mlxn::ops
