// Weight formats of the quantized matmul kernels: MLX affine (bits 2-8) and GGML blocks (Q4_0,
// Q8_0, Q4_K, Q5_K, Q6_K), each decoded in registers. A format policy offers two views of a row:
//  - matvec: the row as units of kSegs 32-element segments; unit_dot() dots one unit with the
//    matching x values, loading the unit's bytes once with the widest loads its alignment allows;
//  - tiled: dequant16() decodes 16 consecutive elements (half of a 32-element segment) to f32.
// Segments never straddle a scale group (MLX groups and GGML sub-blocks are multiples of 32).
#pragma once

#include "backends/cuda/kernels/common.cuh"
#include "ops/matmul_params.h"
#include "ops/quant_decode_tiles.h"

namespace mlxn::cuda::qmm {

/// One expert's weight matrix as the kernels see it.
struct WeightView {
  const unsigned char* w;  // first byte of row 0
  long long row_bytes;
  const unsigned char* scales;  // MLX: first scale / bias of row 0
  const unsigned char* biases;
  long long groups;  // MLX: scale groups per row
  int group_size;    // MLX
  int scale_type;    // MLX: ops::ScaleType
  bool vec;          // w's base is 16-byte aligned (rows are too, for the formats that use it)
};

__device__ __forceinline__ unsigned short ld_u16(const unsigned char* p) {
  return *reinterpret_cast<const unsigned short*>(p);
}
__device__ __forceinline__ unsigned int ld_u32(const unsigned char* p) {
  return *reinterpret_cast<const unsigned int*>(p);
}
__device__ __forceinline__ float half_bits_to_f32(unsigned short h) {
  return __half2float(__ushort_as_half(h));
}
/// Byte i of a little-endian word array.
__device__ __forceinline__ unsigned int byte_of(const unsigned int* w, int i) {
  return (w[i >> 2] >> (8 * (i & 3))) & 0xFFu;
}

/// n consecutive u32 words from `p` (4-byte aligned) with 16-byte loads where `vec` says the
/// address allows (n a multiple of 4), else 4-byte loads.
template <int N>
__device__ __forceinline__ void load_words(const unsigned char* p, bool vec, unsigned int (&w)[N]) {
  if constexpr (N % 4 == 0) {
    if (vec) {
#pragma unroll
      for (int i = 0; i < N / 4; ++i) {
        const uint4 v = reinterpret_cast<const uint4*>(p)[i];
        w[4 * i] = v.x;
        w[4 * i + 1] = v.y;
        w[4 * i + 2] = v.z;
        w[4 * i + 3] = v.w;
      }
      return;
    }
  } else if constexpr (N % 2 == 0) {
    if (vec) {
#pragma unroll
      for (int i = 0; i < N / 2; ++i) {
        const uint2 v = reinterpret_cast<const uint2*>(p)[i];
        w[2 * i] = v.x;
        w[2 * i + 1] = v.y;
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < N; ++i) w[i] = ld_u32(p + 4 * i);
}

/// n bytes (even, from a 2-byte aligned address) as little-endian words, with 2-byte loads: the
/// GGML formats whose blocks are not 4-byte multiples (Q4_0 18, Q8_0 34, Q6_K 210 bytes).
template <int NBytes>
__device__ __forceinline__ void load_bytes_u16(const unsigned char* p,
                                               unsigned int (&w)[NBytes / 4]) {
  static_assert(NBytes % 4 == 0, "whole words");
#pragma unroll
  for (int i = 0; i < NBytes / 4; ++i) {
    w[i] = static_cast<unsigned int>(ld_u16(p + 4 * i)) |
           (static_cast<unsigned int>(ld_u16(p + 4 * i + 2)) << 16);
  }
}

/// Code v (an unsigned integer below 2^23) minus kOffset, as f32, without the int-to-float
/// converter: 2^23 + v has v in its mantissa, so OR-ing v into 2^23's bits and subtracting
/// 2^23 + kOffset is exact -- two full-rate ALU ops where the converter runs at 16 results per
/// clock per SM on sm_90. Measured on the H100 (docs/perf.md, issue 7), this left the mat-vec
/// times unchanged (MLX 4-bit 4096x14336: 27.8 -> 28.0 us): the conversions were not what
/// bounds those kernels.
template <int kOffset = 0>
__device__ __forceinline__ float code_to_f32(unsigned int v) {
  return __int_as_float(0x4B000000u | v) - (8388608.0f + static_cast<float>(kOffset));
}
/// A byte holding a two's-complement int8 (low 8 bits of `byte`), as f32: byte ^ 0x80 is the
/// value plus 128.
__device__ __forceinline__ float int8_bits_to_f32(unsigned int byte) {
  return code_to_f32<128>((byte ^ 0x80u) & 0xFFu);
}

__device__ __forceinline__ float scale_value(const unsigned char* base, int type, long long i) {
  switch (type) {
    case ops::kScaleF16:
      return half_bits_to_f32(reinterpret_cast<const unsigned short*>(base)[i]);
    case ops::kScaleBF16:
      return __bfloat162float(
          __ushort_as_bfloat16(reinterpret_cast<const unsigned short*>(base)[i]));
    default:
      return reinterpret_cast<const float*>(base)[i];
  }
}

// ---------------------------------------------------------------------------------------------
// MLX affine: row = one LSB-first bit stream; a 32-element segment is exactly `Bits` words.

/// Code j of a segment's words. With j a compile-time constant (unrolled loops) the word index
/// and shifts fold away.
template <int Bits>
__device__ __forceinline__ unsigned int mlx_code(const unsigned int (&q)[Bits], int j) {
  const int bit = j * Bits;
  const int wi = bit >> 5;
  const int sh = bit & 31;
  unsigned int v = q[wi] >> sh;
  if (sh + Bits > 32) v |= q[wi + 1] << (32 - sh);
  return v & ((1u << Bits) - 1u);
}

/// kTiles: 4-bit codes in the DecodeTiles order (ops::QuantLayout, ops/quant_decode_tiles.h),
/// where a row's 16-byte segments are scattered over its tile; every other member is the same.
template <int Bits, bool kTiles = false>
struct MlxFormat {
  static_assert(!kTiles || Bits == 4, "DecodeTiles holds 4-bit codes");
  static constexpr bool kMlx = true;
  static constexpr int kSegs = 1;
  static constexpr int kUnitElems = 32;
  // 2-, 4-, 6- and 8-bit segments are 8-byte multiples at 8-byte aligned offsets (16-byte for
  // 4 and 8 bits); 3- and 5-bit ones use 4-byte loads.
  static constexpr bool kVecLoads = Bits % 2 == 0;

  __device__ static long long seg_offset(long long unit, int) { return unit * 32; }

  __device__ static void load(const WeightView& v, long long row, long long seg,
                              unsigned int (&q)[Bits]) {
    const unsigned char* p = kTiles ? v.w + ops::decode_tile_offset(row, seg, v.row_bytes)
                                    : v.w + row * v.row_bytes + seg * (4 * Bits);
    load_words<Bits>(p, kVecLoads && v.vec, q);
  }

  __device__ static void scale_bias(const WeightView& v, long long row, long long seg, float& s,
                                    float& b) {
    const long long g = row * v.groups + (seg * 32) / v.group_size;
    s = scale_value(v.scales, v.scale_type, g);
    b = scale_value(v.biases, v.scale_type, g);
  }

  // sum_j x_j (s q_j + b) = s * sum_j x_j q_j + b * sum_j x_j.
  __device__ static float unit_dot(const WeightView& v, long long row, long long unit,
                                   const float (&x)[kSegs][32], const float (&xsum)[kSegs]) {
    unsigned int q[Bits];
    load(v, row, unit, q);
    float s, b;
    scale_bias(v, row, unit, s, b);
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < 32; ++j) dot = fmaf(x[0][j], code_to_f32(mlx_code<Bits>(q, j)), dot);
    return fmaf(s, dot, b * xsum[0]);
  }

  __device__ static void dequant16(const WeightView& v, long long row, long long seg, int half,
                                   float (&out)[16]) {
    unsigned int q[Bits];
    load(v, row, seg, q);
    float s, b;
    scale_bias(v, row, seg, s, b);
    if (half == 0) {
#pragma unroll
      for (int i = 0; i < 16; ++i) out[i] = fmaf(s, code_to_f32(mlx_code<Bits>(q, i)), b);
    } else {
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        out[i] = fmaf(s, code_to_f32(mlx_code<Bits>(q, 16 + i)), b);
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// GGML 32-element blocks.

/// Q4_0 (18 bytes): f16 d, qs[16]; element j < 16 is the low nibble of qs[j], j >= 16 the high
/// nibble of qs[j - 16]; w = d * (q - 8).
struct Q4_0Format {
  static constexpr bool kMlx = false;
  static constexpr int kSegs = 1;
  static constexpr int kUnitElems = 32;
  static constexpr int kBlockBytes = 18;

  __device__ static long long seg_offset(long long unit, int) { return unit * 32; }

  __device__ static float unit_dot(const WeightView& v, long long row, long long unit,
                                   const float (&x)[kSegs][32], const float (&xsum)[kSegs]) {
    const unsigned char* b = v.w + row * v.row_bytes + unit * kBlockBytes;
    const float d = half_bits_to_f32(ld_u16(b));
    unsigned int qs[4];
    load_bytes_u16<16>(b + 2, qs);
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const unsigned int byte = byte_of(qs, j);
      dot = fmaf(x[0][j], code_to_f32(byte & 15u), dot);
      dot = fmaf(x[0][j + 16], code_to_f32(byte >> 4), dot);
    }
    return d * (dot - 8.0f * xsum[0]);
  }

  __device__ static void dequant16(const WeightView& v, long long row, long long seg, int half,
                                   float (&out)[16]) {
    const unsigned char* b = v.w + row * v.row_bytes + seg * kBlockBytes;
    const float d = half_bits_to_f32(ld_u16(b));
    unsigned int qs[4];
    load_bytes_u16<16>(b + 2, qs);
    const int shift = half * 4;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      out[i] = d * code_to_f32<8>((byte_of(qs, i) >> shift) & 15u);
    }
  }
};

/// Q8_0 (34 bytes): f16 d, int8 qs[32]; w = d * q.
struct Q8_0Format {
  static constexpr bool kMlx = false;
  static constexpr int kSegs = 1;
  static constexpr int kUnitElems = 32;
  static constexpr int kBlockBytes = 34;

  __device__ static long long seg_offset(long long unit, int) { return unit * 32; }

  __device__ static float unit_dot(const WeightView& v, long long row, long long unit,
                                   const float (&x)[kSegs][32], const float (&)[kSegs]) {
    const unsigned char* b = v.w + row * v.row_bytes + unit * kBlockBytes;
    const float d = half_bits_to_f32(ld_u16(b));
    unsigned int qs[8];
    load_bytes_u16<32>(b + 2, qs);
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      dot = fmaf(x[0][j], int8_bits_to_f32(byte_of(qs, j)), dot);
    }
    return d * dot;
  }

  __device__ static void dequant16(const WeightView& v, long long row, long long seg, int half,
                                   float (&out)[16]) {
    const unsigned char* b = v.w + row * v.row_bytes + seg * kBlockBytes;
    const float d = half_bits_to_f32(ld_u16(b));
    unsigned int qs[4];
    load_bytes_u16<16>(b + 2 + 16 * half, qs);
#pragma unroll
    for (int i = 0; i < 16; ++i) out[i] = d * int8_bits_to_f32(byte_of(qs, i));
  }
};

// ---------------------------------------------------------------------------------------------
// GGML 256-element super-blocks (K-quants).

/// Sub-block j's 6-bit (scale, min) from the 12 packed bytes of Q4_K / Q5_K (ggml's
/// get_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(const unsigned int (&s)[3], int j, float& sc,
                                             float& mn) {
  if (j < 4) {
    sc = static_cast<float>(byte_of(s, j) & 63u);
    mn = static_cast<float>(byte_of(s, j + 4) & 63u);
  } else {
    sc = static_cast<float>((byte_of(s, j + 4) & 15u) | ((byte_of(s, j - 4) >> 6) << 4));
    mn = static_cast<float>((byte_of(s, j + 4) >> 4) | ((byte_of(s, j) >> 6) << 4));
  }
}

/// Q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]. Per 64 elements (pair p): 32 low
/// nibbles of qs[32p..] (sub-block 2p) then the 32 high nibbles (sub-block 2p+1);
/// w = d * sc * q - dmin * m. Q5_K (176 bytes) adds qh[32] after the scales: bit j of qh[l] is
/// bit 4 of element 32j + l; its qs start at byte 48. A matvec unit is one pair (64 elements),
/// whose 32 qs bytes (and Q5_K's 32 qh bytes) are two 16-byte loads.
template <bool kFive>
struct QK45Format {
  static constexpr bool kMlx = false;
  static constexpr int kSegs = 2;
  static constexpr int kUnitElems = 64;
  static constexpr int kBlockBytes = kFive ? 176 : 144;
  static constexpr int kQsOffset = kFive ? 48 : 16;

  __device__ static long long seg_offset(long long unit, int s) { return unit * 64 + s * 32; }

  __device__ static void header(const unsigned char* b, float& d, float& dmin,
                                unsigned int (&s)[3]) {
    const unsigned int dd = ld_u32(b);
    d = half_bits_to_f32(static_cast<unsigned short>(dd & 0xFFFFu));
    dmin = half_bits_to_f32(static_cast<unsigned short>(dd >> 16));
    s[0] = ld_u32(b + 4);
    s[1] = ld_u32(b + 8);
    s[2] = ld_u32(b + 12);
  }

  __device__ static float unit_dot(const WeightView& v, long long row, long long unit,
                                   const float (&x)[kSegs][32], const float (&xsum)[kSegs]) {
    const unsigned char* b = v.w + row * v.row_bytes + (unit >> 2) * kBlockBytes;
    const int pair = static_cast<int>(unit & 3);
    float d, dmin;
    unsigned int s[3];
    header(b, d, dmin, s);
    unsigned int qs[8];
    load_words<8>(b + kQsOffset + 32 * pair, v.vec, qs);
    unsigned int qh[8];
    if constexpr (kFive) load_words<8>(b + 16, v.vec, qh);
    float r = 0.0f;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int sub = 2 * pair + half;
      float dot = 0.0f;
#pragma unroll
      for (int l = 0; l < 32; ++l) {
        unsigned int q = (byte_of(qs, l) >> (4 * half)) & 15u;
        if constexpr (kFive) q |= ((byte_of(qh, l) >> sub) & 1u) << 4;
        dot = fmaf(x[half][l], code_to_f32(q), dot);
      }
      float sc, mn;
      scale_min_k4(s, sub, sc, mn);
      r += d * sc * dot - dmin * mn * xsum[half];
    }
    return r;
  }

  __device__ static void dequant16(const WeightView& v, long long row, long long seg, int half,
                                   float (&out)[16]) {
    const unsigned char* b = v.w + row * v.row_bytes + (seg >> 3) * kBlockBytes;
    const int sub = static_cast<int>(seg & 7);
    float d, dmin;
    unsigned int s[3];
    header(b, d, dmin, s);
    float sc, mn;
    scale_min_k4(s, sub, sc, mn);
    const float dl = d * sc, ml = dmin * mn;
    unsigned int qs[4];
    load_words<4>(b + kQsOffset + 32 * (sub >> 1) + 16 * half, v.vec, qs);
    unsigned int qh[4];
    if constexpr (kFive) load_words<4>(b + 16 + 16 * half, v.vec, qh);
    const int shift = 4 * (sub & 1);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      unsigned int q = (byte_of(qs, i) >> shift) & 15u;
      if constexpr (kFive) q |= ((byte_of(qh, i) >> sub) & 1u) << 4;
      out[i] = dl * code_to_f32(q) - ml;
    }
  }
};
using Q4_KFormat = QK45Format<false>;
using Q5_KFormat = QK45Format<true>;

/// Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], f16 d. Element e = 128h + 32j + l
/// (h half, j 0..3, l 0..31): low 4 bits from ql[64h + 32(j&1) + l] (low nibble for j < 2, high
/// for j >= 2), high 2 bits from qh[32h + l] >> 2j, scale scales[8h + 2j + l/16];
/// w = d * scale * (q - 32). A matvec unit is (h, p): segments j = p and j = p + 2, which share
/// their ql and qh bytes. Blocks are only 2-byte aligned: 2-byte loads.
struct Q6_KFormat {
  static constexpr bool kMlx = false;
  static constexpr int kSegs = 2;
  static constexpr int kUnitElems = 64;
  static constexpr int kBlockBytes = 210;

  __device__ static long long seg_offset(long long unit, int s) {
    const long long half = (unit >> 1) & 1, p = unit & 1;
    return (unit >> 2) * 256 + half * 128 + (p + 2 * s) * 32;
  }

  __device__ static float unit_dot(const WeightView& v, long long row, long long unit,
                                   const float (&x)[kSegs][32], const float (&)[kSegs]) {
    const unsigned char* b = v.w + row * v.row_bytes + (unit >> 2) * kBlockBytes;
    const int half = static_cast<int>((unit >> 1) & 1), p = static_cast<int>(unit & 1);
    const float d = half_bits_to_f32(ld_u16(b + 208));
    unsigned int ql[8], qh[8];
    load_bytes_u16<32>(b + 64 * half + 32 * p, ql);
    load_bytes_u16<32>(b + 128 + 32 * half, qh);
    float r = 0.0f;
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int j = p + 2 * s;
      const unsigned short sc2 = ld_u16(b + 192 + 8 * half + 2 * j);
      const float sc[2] = {static_cast<float>(static_cast<signed char>(sc2 & 0xFF)),
                           static_cast<float>(static_cast<signed char>(sc2 >> 8))};
#pragma unroll
      for (int h16 = 0; h16 < 2; ++h16) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          const int l = 16 * h16 + i;
          const unsigned int q =
              ((byte_of(ql, l) >> (4 * s)) & 15u) | (((byte_of(qh, l) >> (2 * j)) & 3u) << 4);
          dot = fmaf(x[s][l], code_to_f32<32>(q), dot);
        }
        r = fmaf(d * sc[h16], dot, r);
      }
    }
    return r;
  }

  __device__ static void dequant16(const WeightView& v, long long row, long long seg, int h16,
                                   float (&out)[16]) {
    const unsigned char* b = v.w + row * v.row_bytes + (seg >> 3) * kBlockBytes;
    const int sub = static_cast<int>(seg & 7);
    const int half = sub >> 2, j = sub & 3;
    const float d = half_bits_to_f32(ld_u16(b + 208));
    const float dl =
        d * static_cast<float>(static_cast<signed char>(b[192 + 8 * half + 2 * j + h16]));
    unsigned int ql[4], qh[4];
    load_bytes_u16<16>(b + 64 * half + 32 * (j & 1) + 16 * h16, ql);
    load_bytes_u16<16>(b + 128 + 32 * half + 16 * h16, qh);
    const int lo_shift = j >= 2 ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const unsigned int q =
          ((byte_of(ql, i) >> lo_shift) & 15u) | (((byte_of(qh, i) >> (2 * j)) & 3u) << 4);
      out[i] = dl * code_to_f32<32>(q);
    }
  }
};

// ---------------------------------------------------------------------------------------------

/// The weight view of expert `e` from a dispatch's bindings (MLX: x, w, scales, biases, out;
/// GGML: x, w, out).
template <class P>
__device__ __forceinline__ WeightView weight_view(const DeviceArgs& a,
                                                  const ops::QuantMatmulParams& p, long long e) {
  WeightView v{};
  const auto* w = static_cast<const unsigned char*>(a.ptr[1]);
  v.vec = aligned16(w);
  if constexpr (P::kMlx) {
    v.row_bytes = p.k * p.bits / 8;
    v.groups = p.k / p.group_size;
    v.group_size = p.group_size;
    v.scale_type = p.scale_type;
    const long long ssize = p.scale_type == ops::kScaleF32 ? 4 : 2;
    const long long expert_groups = p.n * v.groups;
    v.scales = static_cast<const unsigned char*>(a.ptr[2]) + e * expert_groups * ssize;
    v.biases = static_cast<const unsigned char*>(a.ptr[3]) + e * expert_groups * ssize;
  } else {
    v.row_bytes = p.k / (P::kSegs == 1 ? 32 : 256) * P::kBlockBytes;
  }
  v.w = w + e * p.n * v.row_bytes;
  return v;
}

/// Binding index of out (the ids follow it).
template <class P>
constexpr int out_binding() {
  return P::kMlx ? 4 : 2;
}

}  // namespace mlxn::cuda::qmm
