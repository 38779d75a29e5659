// Row helpers shared by the CPU matmul kernels (dense and expert-routed): the oracle's dot
// product and the widening of a row to f32.
#pragma once

#include <cstdint>

#include "backends/cpu/cpu_kernel.h"

namespace mlxn::cpu {

// The oracle accumulates in double (four partial sums so the loop still pipelines): its own
// rounding never matters next to the tolerances the tests apply to the kernels.
inline double dot(const float* a, const float* b, std::int64_t k) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  std::int64_t i = 0;
  for (; i + 4 <= k; i += 4) {
    s0 += static_cast<double>(a[i]) * b[i];
    s1 += static_cast<double>(a[i + 1]) * b[i + 1];
    s2 += static_cast<double>(a[i + 2]) * b[i + 2];
    s3 += static_cast<double>(a[i + 3]) * b[i + 3];
  }
  for (; i < k; ++i) s0 += static_cast<double>(a[i]) * b[i];
  return (s0 + s1) + (s2 + s3);
}

template <class T>
void to_f32_row(const T* src, std::int64_t n, float* dst) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = to_f32(src[i]);
}

}  // namespace mlxn::cpu
