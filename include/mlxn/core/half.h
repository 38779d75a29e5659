// Conversions between f32 and the 16-bit float formats (IEEE half and bfloat16) on the host.
#pragma once

#include <cstdint>
#include <cstring>

namespace mlxn {

/// f32 -> IEEE binary16 bits, round to nearest even; overflow gives inf, NaN stays NaN.
std::uint16_t f32_to_f16_bits(float value);
/// IEEE binary16 bits -> f32 (exact).
float f16_bits_to_f32(std::uint16_t bits);

/// f32 -> bfloat16 bits, round to nearest even; NaN stays NaN.
inline std::uint16_t f32_to_bf16_bits(float value) {
  std::uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

/// bfloat16 bits -> f32 (exact).
inline float bf16_bits_to_f32(std::uint16_t bits) {
  std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace mlxn
