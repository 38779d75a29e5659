// CPU reference kernels for RMSNorm and RMSNorm fused with a multiply.
#include <cmath>

#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/thread_pool.h"
#include "ops/op_params.h"

namespace mlxn::cpu {
namespace {

// The oracle sums squares in double: exact enough that its own error never matters in tests.
template <class T>
float inv_rms(const T* row, std::int64_t cols, float eps) {
  double ss = 0.0;
  for (std::int64_t c = 0; c < cols; ++c) {
    const double v = to_f32(row[c]);
    ss += v * v;
  }
  return static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(cols) + eps));
}

template <class T, bool kMul>
void rms_norm(const KernelArgs& k) {
  const auto& p = k.params_as<ops::RmsNormParams>();
  const T* x = k.ptr<const T>(0);
  const T* w = k.ptr<const T>(1);
  const T* g = kMul ? k.ptr<const T>(2) : nullptr;
  T* out = k.ptr<T>(kMul ? 3 : 2);
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(1, p.cols));
  parallel_for(p.rows, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * p.cols;
      const float s = inv_rms(xr, p.cols, p.eps);
      for (std::int64_t c = 0; c < p.cols; ++c) {
        float v = to_f32(xr[c]) * s * to_f32(w[c]);
        if constexpr (kMul) v *= to_f32(g[r * p.cols + c]);
        out[r * p.cols + c] = from_f32<T>(v);
      }
    }
  });
}

}  // namespace

KernelFn rms_norm_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&rms_norm<typename decltype(tag)::type, false>);
  });
}

KernelFn rms_norm_mul_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&rms_norm<typename decltype(tag)::type, true>);
  });
}

}  // namespace mlxn::cpu
