// The packed 6-bit scale/min pairs of GGML's Q4_K and Q5_K super-blocks, shared by the quantizer
// (which packs them and reads them back) and the dequantizer.
#pragma once

#include <cstdint>

namespace mlxn::io::detail {

/// Scale and min of sub-block j (0..7) from the 12 packed bytes `q`: sub-blocks 0-3 keep six bits
/// in bytes j and j+4; sub-blocks 4-7 take four bits from byte j+4 and two high bits from the
/// spare top bits of bytes j-4 (scale) and j (min).
inline void unpack_scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& sc, std::uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<std::uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace mlxn::io::detail
