// Softmax op entry points: validate, then dispatch the backend kernel.
#include "mlxn/ops/softmax.h"

#include <cmath>
#include <string>

#include "mlxn/core/device.h"
#include "ops/op_checks.h"
#include "ops/softmax_params.h"

namespace mlxn::ops {
namespace {

[[noreturn]] void fail(const std::string& msg) {
  throw Error(ErrorKind::InvalidArgument, "softmax: " + msg);
}

SoftmaxParams softmax_params(const Buffer& x, const Buffer& out, float scale) {
  detail::require_float("softmax", "x", x);
  detail::require_float("softmax", "out", out);
  if (out.dtype() != x.dtype() && out.dtype() != DType::F32) {
    fail("out must have x's dtype or f32, got " + std::string(dtype_name(out.dtype())));
  }
  if (x.shape().empty() || x.shape().back() <= 0) fail("x must have a non-empty last dim");
  const std::int64_t cols = x.shape().back();
  if (cols >= (std::int64_t{1} << 31)) fail("rows longer than 2^31 - 1 are not supported");
  const std::int64_t rows = x.numel() / cols;
  if (rows * cols != x.numel()) fail("x's shape " + shape_to_string(x.shape()) + " is invalid");
  detail::require_numel("softmax", "out", out, x.numel());
  if (!std::isfinite(scale)) fail("scale must be finite");
  return SoftmaxParams{rows, cols, 0, scale};
}

void dispatch(CommandEncoder& enc, const Buffer& x, const Buffer* mask, const Buffer& out,
              const SoftmaxParams& p) {
  if (p.rows == 0) return;
  const Kernel& k =
      enc.device().kernels().get("softmax", Specialization()
                                                .set("src", x.dtype())
                                                .set("dst", out.dtype())
                                                .set("masked", std::int64_t{mask != nullptr}));
  if (mask) {
    enc.dispatch(k, {Arg::in(x), Arg::in(*mask), Arg::out(out)}, p, "softmax");
  } else {
    enc.dispatch(k, {Arg::in(x), Arg::out(out)}, p, "softmax");
  }
}

}  // namespace

void softmax(CommandEncoder& enc, const Buffer& x, const Buffer& out, float scale) {
  const SoftmaxParams p = softmax_params(x, out, scale);
  dispatch(enc, x, nullptr, out, p);
}

void softmax_masked(CommandEncoder& enc, const Buffer& x, const Buffer& mask, const Buffer& out,
                    float scale) {
  SoftmaxParams p = softmax_params(x, out, scale);
  detail::require_float("softmax", "mask", mask);
  detail::require_same_dtype("softmax", "mask", mask, x.dtype());
  if (mask.numel() % p.cols != 0 || mask.numel() == 0) {
    fail("mask has " + std::to_string(mask.numel()) + " elements, not a multiple of cols " +
         std::to_string(p.cols));
  }
  p.mask_rows = mask.numel() / p.cols;
  if (p.rows % p.mask_rows != 0) {
    fail("mask rows " + std::to_string(p.mask_rows) + " do not divide x's rows " +
         std::to_string(p.rows));
  }
  dispatch(enc, x, &mask, out, p);
}

}  // namespace mlxn::ops
