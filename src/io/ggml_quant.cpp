// GGML reference quantizers (Q4_0, Q8_0, Q4_K, Q6_K): the same search and rounding as ggml's
// quantize_row_*_ref, so files we write dequantize like files ggml writes.
#include "mlxn/io/ggml_quant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "io/ggml_k_scales.h"
#include "mlxn/core/error.h"
#include "mlxn/core/half.h"

namespace mlxn::io {
namespace {

using Byte = std::uint8_t;
constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, via the float mantissa trick ggml uses (|x| < 2^22).
int nearest_int(float fval) {
  float val = fval + 12582912.f;
  std::int32_t i;
  std::memcpy(&i, &val, 4);
  return (i & 0x007fffff) - 0x00400000;
}

void put_f16(Byte* p, float v) {
  std::uint16_t h = f32_to_f16_bits(v);
  std::memcpy(p, &h, 2);
}

float f16_round(float v) {
  return f16_bits_to_f32(f32_to_f16_bits(v));
}

// Q4_0: d = (signed value of largest magnitude) / -8, q = min(15, (int8)(x / d + 8.5)).
void block_q4_0(const float* x, Byte* b) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(b, d);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, static_cast<int>(static_cast<std::int8_t>(x[j] * id + 8.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<std::int8_t>(x[j + 16] * id + 8.5f)));
    b[2 + j] = static_cast<Byte>(q0 | (q1 << 4));
  }
}

// Q8_0: d = amax / 127, q = round(x / d).
void block_q8_0(const float* x, Byte* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(b, d);
  for (int j = 0; j < 32; ++j) {
    b[2 + j] = static_cast<Byte>(static_cast<std::int8_t>(std::round(x[j] * id)));
  }
}

// Weighted least-squares fit of scale and (non-positive) min for asymmetric codes 0..nmax,
// searching nstep perturbed inverse scales (ggml's make_qkx2_quants, use_mad = false).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, Byte* L,
                       float* the_min, Byte* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_mad = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<Byte>(std::max(0, std::min(nmax, l)));
    const float diff = scale * L[i] + min - x[i];
    best_mad += weights[i] * (diff * diff);  // ggml's association, for identical results
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<Byte>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float mad = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        mad += weights[i] * (diff * diff);
      }
      if (mad < best_mad) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_mad = mad;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric codes -nmax..nmax-1 with an x^2-weighted scale search (ggml's make_qx_quants,
// rmse_type 1, no importance weights). L receives codes offset by nmax.
float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<std::int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q4_K: 8 sub-blocks of 32, each with a 6-bit scale and min quantized against f16 d / dmin.
void block_q4_k(const float* x, Byte* b) {
  Byte L[256], Laux[32];
  float weights[32], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] =
        make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  Byte* packed = b + 4;
  std::memset(packed, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const Byte ls = static_cast<Byte>(std::min(63, nearest_int(inv_scale * scales[j])));
    const Byte lm = static_cast<Byte>(std::min(63, nearest_int(inv_min * mins[j])));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<Byte>((ls & 0x0F) | ((lm & 0x0F) << 4));
      packed[j - 4] |= static_cast<Byte>((ls >> 4) << 6);
      packed[j] |= static_cast<Byte>((lm >> 4) << 6);
    }
  }
  put_f16(b, max_scale / 63.f);
  put_f16(b + 2, max_min / 63.f);
  const float d_all = f16_round(max_scale / 63.f);
  const float dmin_all = f16_round(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    Byte sc, m;
    detail::unpack_scale_min_k4(j, packed, sc, m);
    const float d = d_all * sc;
    if (d == 0.0f) continue;
    const float dm = dmin_all * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<Byte>(std::max(0, std::min(15, l)));
    }
  }
  Byte* q = b + 16;
  for (int j = 0; j < 256; j += 64) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<Byte>(L[j + l] | (L[j + l + 32] << 4));
    q += 32;
  }
}

// Q6_K: 16 sub-blocks of 16 with int8 scales against one f16 d; 6-bit codes split 4 + 2 bits.
void block_q6_k(const float* x, Byte* b) {
  std::int8_t L[256];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    scales[ib] = scale;
    if (std::fabs(scale) > max_abs_scale) {
      max_abs_scale = std::fabs(scale);
      max_scale = scale;
    }
  }
  Byte* ql = b;
  Byte* qh = b + 128;
  auto* sc = reinterpret_cast<std::int8_t*>(b + 192);
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(b, 0, 210);
    return;
  }
  const float iscale = -128.f / max_scale;
  put_f16(b + 208, 1 / iscale);
  for (int ib = 0; ib < 16; ++ib) {
    sc[ib] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  const float d_all = f16_round(1 / iscale);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * sc[j];
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d)));
      L[16 * j + ii] = static_cast<std::int8_t>(l + 32);
    }
  }
  for (int j = 0; j < 256; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l] & 0x0F, q2 = L[j + l + 32] & 0x0F;
      const int q3 = L[j + l + 64] & 0x0F, q4 = L[j + l + 96] & 0x0F;
      ql[l] = static_cast<Byte>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<Byte>(q2 | (q4 << 4));
      qh[l] = static_cast<Byte>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

using BlockFn = void (*)(const float*, Byte*);

BlockFn block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return block_q4_0;
    case GgmlType::Q8_0:
      return block_q8_0;
    case GgmlType::Q4_K:
      return block_q4_k;
    case GgmlType::Q6_K:
      return block_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace

bool ggml_can_quantize(GgmlType type) {
  return block_fn(type) != nullptr || type == GgmlType::F32 || type == GgmlType::F16 ||
         type == GgmlType::BF16;
}

void ggml_quantize(GgmlType type, std::span<const float> src, std::span<std::byte> dst) {
  if (!ggml_can_quantize(type)) {
    throw Error(ErrorKind::Unsupported,
                "quantization to GGML type " + ggml_type_name(type) + " is not supported");
  }
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  std::optional<std::uint64_t> need = ggml_try_row_size(type, src.size());
  if (!need || *need != dst.size()) {
    throw Error(ErrorKind::InvalidArgument,
                "ggml_quantize(" + std::string(traits.name) + "): " + std::to_string(src.size()) +
                    " elements need " +
                    (need ? std::to_string(*need) + " bytes" : std::string("whole blocks")) +
                    ", got " + std::to_string(dst.size()) + " bytes");
  }
  auto* out = reinterpret_cast<Byte*>(dst.data());
  const std::size_t n = src.size();
  if (traits.quantized) {
    // The reference rounding casts float to int8; NaN or inf there is undefined behaviour.
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(src[i])) {
        throw Error(ErrorKind::InvalidArgument, "ggml_quantize(" + std::string(traits.name) +
                                                    "): element " + std::to_string(i) +
                                                    " is not finite");
      }
    }
  }
  if (type == GgmlType::F32) {
    if (n) std::memcpy(out, src.data(), n * 4);
    return;
  }
  if (type == GgmlType::F16 || type == GgmlType::BF16) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t h = type == GgmlType::F16 ? f32_to_f16_bits(src[i]) : f32_to_bf16_bits(src[i]);
      std::memcpy(out + 2 * i, &h, 2);
    }
    return;
  }
  BlockFn fn = block_fn(type);
  for (std::size_t i = 0; i < n / traits.block_size; ++i) {
    fn(src.data() + i * traits.block_size, out + i * traits.type_size);
  }
}

std::vector<std::byte> ggml_quantize(GgmlType type, std::span<const float> src) {
  std::optional<std::uint64_t> need =
      ggml_can_quantize(type) ? ggml_try_row_size(type, src.size()) : std::nullopt;
  std::vector<std::byte> out(need ? static_cast<std::size_t>(*need) : 0);
  ggml_quantize(type, src, out);
  return out;
}

}  // namespace mlxn::io
