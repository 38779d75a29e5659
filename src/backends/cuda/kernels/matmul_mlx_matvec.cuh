// The MLX affine mat-vec for 4- and 8-bit weights: batch-1 decode's hot kernel. The generic
// quantized mat-vec (matmul_quant_matvec.cuh) ran at 31-40% of the H100's read bandwidth at the
// 8B shapes; its profile (docs/perf.md, issue 7) showed it bound by its instruction stream. This
// one executes about a third of the instructions:
//  - codes become floats with byte permutes, four codes a 32-bit word: 4 bits with bf16/f16
//    activations -- two masks per word, then one permute a code that reads as the float
//    0.5 + q/32 (the affine sum is corrected once per 16-byte chunk); 8 bits, and 4 bits with
//    f32 activations -- one permute to 2^23 + q and one add, exact;
//  - x stays in its storage format and is loaded 16 bytes at a time next to its use (an L1
//    hit), widened pair by pair and shared by the rows a warp owns;
//  - the scale dtype and the alignment are template parameters picked by a uniform branch
//    outside the loop, so the loop holds no branch and no duplicate predicated loads;
//  - weights stream with 16-byte non-allocating loads (L1 keeps x, which every warp rereads).
// Each warp computes kMlxMvRows outputs of one row of x with no block-wide barrier; its lanes
// stride over the rows' 16-byte chunks (32 codes at 4 bits, 16 at 8) and reduce with shuffles.
#pragma once

#include <type_traits>

#include "backends/cuda/kernels/matmul_quant_formats.cuh"
#include "backends/cuda/kernels/mlx4_codes.cuh"

namespace mlxn::cuda::qmm {

inline constexpr int kMlxMvThreads = 128;
// Rows a warp owns and chunks a lane requests at once. Measured on the H100 at the 8B shapes
// (docs/perf.md, issue 7): 2 x 2 beat 1 x 4 and 4 x 1 (fewer registers than 4 rows, and x
// loads and conversions shared by two rows).
inline constexpr int kMlxMvRows = 2;
inline constexpr int kMlxMvUnroll = 2;
// Blocks an SM the register allocation must allow (__launch_bounds__; 0 states no minimum, and
// nvcc then emits none). With bf16/f16 x, 8 (64 registers, from 56-71) measured on the H100
// (docs/perf.md, issue 7, step 21): MLX 8-bit decode +2.8% (8-bit 14336x4096 28.6 -> 26.5
// µs), 4-bit unchanged. f32 x keeps 0: at 64 registers its 4-bit kernel spills. An explicit 1
// lets ptxas take 111-148 registers, which cost 4-bit decode 4.6%.
template <class T>
inline constexpr int kMlxMvMinBlocks = sizeof(T) == 2 ? 8 : 0;

/// 16 bytes of weights that are read once: not kept in L1 (x, reread by every block, is).
__device__ __forceinline__ uint4 load_stream16(const unsigned char* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

/// x elements as 32-bit words of two (f32: one word per element, used as is).
template <class T>
struct XWords {
  static constexpr int kPerWord = sizeof(T) == 4 ? 1 : 2;
};

/// Element pair (2i, 2i + 1) of x words as two floats.
template <class T>
__device__ __forceinline__ float2 x_pair(const unsigned int* xw, int i) {
  if constexpr (sizeof(T) == 4) {
    return make_float2(__uint_as_float(xw[2 * i]), __uint_as_float(xw[2 * i + 1]));
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    // bf16 is the high half of an f32: widening is a shift or a mask.
    return make_float2(__uint_as_float(xw[i] << 16), __uint_as_float(xw[i] & 0xFFFF0000u));
  } else {
    return __half22float2(*reinterpret_cast<const __half2*>(&xw[i]));
  }
}

/// x words of 8 consecutive elements: 16 bytes (bf16/f16) or 32 (f32), with 16-byte loads when
/// x is aligned. Loaded next to their use: they hit L1, and holding a whole chunk's x (16-32
/// registers) next to four rows' weights would spill.
template <class T>
__device__ __forceinline__ void load_x8(const T* x, bool vec,
                                        unsigned int (&xw)[8 / XWords<T>::kPerWord]) {
  constexpr int N = 8 / XWords<T>::kPerWord;
  if (vec) {
    load_words<N>(reinterpret_cast<const unsigned char*>(x), true, xw);
  } else if constexpr (sizeof(T) == 4) {
#pragma unroll
    for (int i = 0; i < N; ++i) xw[i] = reinterpret_cast<const unsigned int*>(x)[i];
  } else {
    const auto* h = reinterpret_cast<const unsigned short*>(x);
#pragma unroll
    for (int i = 0; i < N; ++i) {
      xw[i] = static_cast<unsigned int>(h[2 * i]) | (static_cast<unsigned int>(h[2 * i + 1]) << 16);
    }
  }
}

/// The high bytes the permutes put above a code (see lane_code), held in registers. Both
/// operands of the permute being constants, ptxas would make the constant the immediate and
/// rematerialize the selector before every permute (two instructions a code, measured in the
/// SASS on the H100); `bits >> 8` is 0 for every valid bits but unknown to the compiler, which
/// keeps these in registers and the selectors immediate.
struct CodeBase {
  unsigned int four;   // 0x3F000000: 0.5f
  unsigned int eight;  // 0x4B000000: 2^23
};
__device__ __forceinline__ CodeBase code_base(int bits) {
  const unsigned int zero = static_cast<unsigned int>(bits) >> 8;
  return {0x3F000000u | zero, 0x4B000000u | zero};
}

/// Whether a chunk's codes are decoded exactly (8 bits, and 4 bits with f32 activations) or by
/// the shorter 4-bit form, whose rounding (about 2^-19 of the chunk's sum of |x|) sits far
/// below bf16/f16 activations' own but shows at f32 (docs/perf.md, issue 7).
template <class T, int Bits>
inline constexpr bool kExactCodes = Bits == 8 || sizeof(T) == 4;

/// Code j (0..3) of a word of byte-lane codes as a float.
///  exact: bytes (code, 0, 0, 0x4B) read as 2^23 + q; the subtraction leaves q exactly.
///  short (4 bits, codes pre-shifted to bits 3-6 of their byte): bytes (0, 0, 8q, 0x3F) read as
///  0.5 + q/32 exactly (0x3F000000 is 0.5, 8q lands in mantissa bits 19-22), one instruction a
///  code; the affine sum is corrected once per chunk: sum x q = 32 sum x f - 16 sum x.
template <bool kExact>
__device__ __forceinline__ float lane_code(unsigned int word, int j, const CodeBase& base) {
  if constexpr (kExact) {
    return __uint_as_float(__byte_perm(word, base.eight, 0x7440u | static_cast<unsigned>(j))) -
           8388608.0f;
  } else {
    return __uint_as_float(__byte_perm(word, base.four, 0x7044u | (static_cast<unsigned>(j) << 8)));
  }
}

/// d[r] += sum over the chunk of x_j * code_j (4 bits: the 0.5 + q/256 floats) for every row,
/// and xsum = sum of the chunk's x. The loops are unrolled, so word_of and the lanes fold.
template <class T, int Bits, int R, bool kVec>
__device__ __forceinline__ void chunk_dots(const uint4 (&q)[R], const T* x, const CodeBase& base,
                                           float (&d)[R], float& xsum) {
  constexpr int E = 128 / Bits;
  float s = 0.0f;
#pragma unroll
  for (int r = 0; r < R; ++r) d[r] = 0.0f;
#pragma unroll
  for (int g = 0; g < E / 8; ++g) {  // 8 elements at a time: one 4-bit word, two 8-bit words
    unsigned int xw[8 / XWords<T>::kPerWord];
    load_x8<T>(x + 8 * g, kVec, xw);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if constexpr (Bits == 4) {
        // Word g holds codes 8g..8g+7, code c at bits 4c: the masks leave the even codes in
        // byte lanes, the shifted masks the odd ones (at bits 0-3 of a byte for the exact
        // decode, 3-6 for the short one); x's pair i is (code 2i, code 2i + 1).
        constexpr bool kExact = kExactCodes<T, 4>;
        const unsigned int word = word_of(q[r], g);
        const unsigned int even = kExact ? word & 0x0F0F0F0Fu : (word << 3) & 0x78787878u;
        const unsigned int odd = kExact ? (word >> 4) & 0x0F0F0F0Fu : (word >> 1) & 0x78787878u;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float2 xv = x_pair<T>(xw, i);
          d[r] = fmaf(xv.x, lane_code<kExact>(even, i, base), d[r]);
          d[r] = fmaf(xv.y, lane_code<kExact>(odd, i, base), d[r]);
        }
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const unsigned int word = word_of(q[r], 2 * g + i / 2);
          const float2 xv = x_pair<T>(xw, i);
          d[r] = fmaf(xv.x, lane_code<true>(word, 2 * (i % 2), base), d[r]);
          d[r] = fmaf(xv.y, lane_code<true>(word, 2 * (i % 2) + 1, base), d[r]);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 xv = x_pair<T>(xw, i);
      s += xv.x + xv.y;
    }
  }
  xsum = s;
}

/// One 16-byte chunk of R rows with its scale and bias (as loaded, before any arithmetic).
template <int R>
struct RowChunks {
  uint4 q[R];
  float s[R], b[R];
};

/// Where R rows start: their weight words, scales and biases (scale dtype S). DecodeTiles
/// weights (4 bits) scatter a row's chunks over its tile: w is then the weight's base and the
/// chunks are found from the row index (ops/quant_decode_tiles.h).
template <class S, int R>
struct RowBases {
  const unsigned char* w[R];
  const S* s[R];
  const S* b[R];
  long long row[R];
  long long row_bytes;
};

/// Loads chunk c of every row; kVec: 16-byte non-allocating loads (else 4-byte ones).
template <class S, int R, bool kVec, bool kTiles>
__device__ __forceinline__ void load_chunks(const RowBases<S, R>& rb, long long c, int group_shift,
                                            RowChunks<R>& out) {
  const long long g = c >> group_shift;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const unsigned char* w =
        kTiles ? rb.w[r] + ops::decode_tile_offset(rb.row[r], c, rb.row_bytes) : rb.w[r] + c * 16;
    if constexpr (kVec) {
      out.q[r] = load_stream16(w);
    } else {
      unsigned int w4[4];
      load_words<4>(w, false, w4);
      out.q[r] = make_uint4(w4[0], w4[1], w4[2], w4[3]);
    }
    out.s[r] = to_f32(rb.s[r][g]);
    out.b[r] = to_f32(rb.b[r][g]);
  }
}

/// acc[r] += row r's affine dot with the chunk's x.
template <class T, int Bits, int R, bool kVec>
__device__ __forceinline__ void accumulate_chunks(const RowChunks<R>& ch, const T* x,
                                                  const CodeBase& base, float (&acc)[R]) {
  float d[R], xsum;
  chunk_dots<T, Bits, R, kVec>(ch.q, x, base, d, xsum);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if constexpr (!kExactCodes<T, Bits>) {
      // s sum x q + b sum x = 32 s sum x f + (b - 16 s) sum x (see lane_code).
      acc[r] = fmaf(32.0f * ch.s[r], d[r], fmaf(ch.b[r] - 16.0f * ch.s[r], xsum, acc[r]));
    } else {
      acc[r] = fmaf(ch.s[r], d[r], fmaf(ch.b[r], xsum, acc[r]));
    }
  }
}

/// acc[r] = dot of x with row row0 + r (rows past n repeat the last row: their results are
/// dropped, the loads stay in bounds). Lanes stride over the 16-byte chunks, U chunks a lane in
/// flight at once. S (the scale dtype) and kVec are template parameters so that the loop holds
/// no branch on them: a uniform switch outside picks the instantiation.
template <class T, class S, int Bits, int R, int U, bool kVec, bool kTiles>
__device__ __forceinline__ void rows_dot(const WeightView& wv, long long row0, long long n,
                                         const T* xr, long long n_chunks, int group_shift, int lane,
                                         const CodeBase& base, float (&acc)[R]) {
  constexpr int E = 128 / Bits;  // elements a 16-byte chunk holds
  static_assert(!kTiles || Bits == 4, "DecodeTiles holds 4-bit codes");
  RowBases<S, R> rb;
  rb.row_bytes = wv.row_bytes;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const long long row = row0 + r < n ? row0 + r : n - 1;
    rb.w[r] = kTiles ? wv.w : wv.w + row * wv.row_bytes;
    rb.row[r] = row;
    rb.s[r] = reinterpret_cast<const S*>(wv.scales) + row * wv.groups;
    rb.b[r] = reinterpret_cast<const S*>(wv.biases) + row * wv.groups;
  }
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  // All U chunks of every row are requested before any arithmetic. (A software-pipelined
  // variant that requests the next step's chunks first measured slower on the H100: ptxas sinks
  // those loads to the end of the loop body anyway.)
  long long c = lane;
  for (; c + 32 * (U - 1) < n_chunks; c += 32 * U) {
    RowChunks<R> ch[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      load_chunks<S, R, kVec, kTiles>(rb, c + 32 * u, group_shift, ch[u]);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      accumulate_chunks<T, Bits, R, kVec>(ch[u], xr + (c + 32 * u) * E, base, acc);
    }
  }
  for (; c < n_chunks; c += 32) {
    RowChunks<R> ch;
    load_chunks<S, R, kVec, kTiles>(rb, c, group_shift, ch);
    accumulate_chunks<T, Bits, R, kVec>(ch, xr + c * E, base, acc);
  }
}

/// rows_dot for the scale dtype of the weights (a uniform branch).
template <class T, int Bits, int R, int U, bool kVec, bool kTiles>
__device__ __forceinline__ void rows_dot_any_scale(const WeightView& wv, long long row0,
                                                   long long n, const T* xr, long long n_chunks,
                                                   int group_shift, int lane, const CodeBase& base,
                                                   float (&acc)[R]) {
  switch (wv.scale_type) {
    case ops::kScaleF16:
      rows_dot<T, __half, Bits, R, U, kVec, kTiles>(wv, row0, n, xr, n_chunks, group_shift, lane,
                                                    base, acc);
      return;
    case ops::kScaleBF16:
      rows_dot<T, __nv_bfloat16, Bits, R, U, kVec, kTiles>(wv, row0, n, xr, n_chunks, group_shift,
                                                           lane, base, acc);
      return;
    default:
      rows_dot<T, float, Bits, R, U, kVec, kTiles>(wv, row0, n, xr, n_chunks, group_shift, lane,
                                                   base, acc);
      return;
  }
}

// out[a, row] for a in blockIdx.y (strided). Each warp owns R rows (the dense mat-vec's
// pattern, which streams bf16 weights at 91% of the copy ceiling): there is no block-wide
// barrier, so a warp that has its data computes while the others still wait for theirs.
// kTiles: 4-bit weights in the DecodeTiles order (ops::QuantLayout), for what the tensor-core
// mat-vec does not take over them (f16/f32 x, 2-8 rows of x).
template <class T, int Bits, int R, int U, int kMinBlocks = 0, bool kTiles = false>
__global__ void __launch_bounds__(kMlxMvThreads, kMinBlocks)
    mlx_matvec_kernel(const __grid_constant__ DeviceArgs args) {
  static_assert(Bits == 4 || Bits == 8, "4- and 8-bit only");
  constexpr int E = 128 / Bits;
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  T* out = static_cast<T*>(args.ptr[4]);
  const int* ids = p.has_ids ? static_cast<const int*>(args.ptr[5]) : nullptr;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long row0 = (static_cast<long long>(blockIdx.x) * (kMlxMvThreads / 32) + warp) * R;
  pdl_enter();
  if (row0 >= p.n) return;  // whole warps only: nothing below synchronizes the block
  const long long n_chunks = p.k / E;
  const long long n_assign = p.m * p.top_k;
  // Chunks a scale group spans (1 to 8, a power of two: group sizes are 32, 64 or 128).
  const int group_shift = __ffs(p.group_size / E) - 1;
  const CodeBase base = code_base(p.bits);

  for (long long a = blockIdx.y; a < n_assign; a += gridDim.y) {
    long long e = 0;
    if (ids != nullptr) {
      e = ids[a];
      if (e < 0 || e >= p.n_experts) {
        if (lane == 0 && warp == 0 && blockIdx.x == 0)
          report_status(args, ops::kStatusExpertIdOutOfRange, a);
        if (lane < R && row0 + lane < p.n) out[a * p.n + row0 + lane] = from_f32<T>(0.0f);
        continue;
      }
    }
    const T* xr = x + (a / p.top_k) * p.x_token_stride + (a % p.top_k) * p.x_slot_stride;
    const WeightView wv = weight_view<MlxFormat<Bits, kTiles>>(args, p, e);
    float acc[R];
    // Rows of x start 16-byte aligned when x does (k and the strides are multiples of 32).
    if (wv.vec && aligned16(x)) {
      rows_dot_any_scale<T, Bits, R, U, true, kTiles>(wv, row0, p.n, xr, n_chunks, group_shift,
                                                      lane, base, acc);
    } else {
      rows_dot_any_scale<T, Bits, R, U, false, kTiles>(wv, row0, p.n, xr, n_chunks, group_shift,
                                                       lane, base, acc);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float s = warp_sum(acc[r]);
      if (lane == r && row0 + r < p.n) out[a * p.n + row0 + r] = from_f32<T>(s);
    }
  }
}

template <class T, int Bits, int R, int U, int kMinBlocks = 0, bool kTiles = false>
LaunchConfig mlx_matvec_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  constexpr int rows_per_block = (kMlxMvThreads / 32) * R;
  long long bx = (p.n + rows_per_block - 1) / rows_per_block;
  long long by = p.m * p.top_k;
  if (bx < 1) bx = 1;
  if (by < 1) by = 1;
  if (by > 65535) by = 65535;
  return {reinterpret_cast<const void*>(&mlx_matvec_kernel<T, Bits, R, U, kMinBlocks, kTiles>),
          dim3(static_cast<unsigned int>(bx), static_cast<unsigned int>(by)), dim3(kMlxMvThreads),
          0, true};
}

}  // namespace mlxn::cuda::qmm
