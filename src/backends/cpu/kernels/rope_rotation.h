// The CPU reference's RoPE arithmetic, shared by rope and rope_kv_append: a token's angles in
// double, and the rotation of one head's pairs.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/cpu/kernels/kernels.h"

namespace mlxn::cpu {

/// cos and sin of pos * inv_freq[i] for i < half, times `scale`.
inline void rope_angles(std::int32_t pos, const float* inv_freq, std::int64_t half, float scale,
                        std::vector<double>& cos_a, std::vector<double>& sin_a) {
  for (std::int64_t i = 0; i < half; ++i) {
    const double a = static_cast<double>(pos) * static_cast<double>(inv_freq[i]);
    cos_a[i] = std::cos(a) * scale;
    sin_a[i] = std::sin(a) * scale;
  }
}

/// Rotates the rotary pairs of head `src` into `dst` (interleaved (2i, 2i + 1) or NeoX (i,
/// i + half)); dst may be src. Dims past the rotary ones are not touched.
template <class T>
void rotate_head(const T* src, T* dst, std::int64_t half, bool neox,
                 const std::vector<double>& cos_a, const std::vector<double>& sin_a) {
  for (std::int64_t i = 0; i < half; ++i) {
    const std::int64_t u = neox ? i : 2 * i;
    const std::int64_t v = neox ? i + half : 2 * i + 1;
    const double xu = to_f32(src[u]), xv = to_f32(src[v]);  // both read before either write
    dst[u] = from_f32<T>(static_cast<float>(xu * cos_a[i] - xv * sin_a[i]));
    dst[v] = from_f32<T>(static_cast<float>(xv * cos_a[i] + xu * sin_a[i]));
  }
}

}  // namespace mlxn::cpu
