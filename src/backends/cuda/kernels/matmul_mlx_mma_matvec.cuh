// The MLX affine 4-bit mat-vec on the tensor cores, for bf16 activations and weights in the
// DecodeTiles order (ops::QuantLayout, ops/quant_decode_tiles.h): batch-1 decode's hot kernel.
//
// Why: the register mat-vec (matmul_mlx_matvec.cuh) spends about four instructions a weight (a
// permute and an FMA a code, plus x's widening), which keeps it near 80% of the read ceiling at
// best (docs/perf.md, issue 7). Here one mma.sync m16n8k16 multiplies 16 rows x 16 codes, and a
// code costs ~1.6 instructions:
//  - a LOP3 (and one shift of four) turns two codes of a word into the bf16 pair 128 + q: bf16
//    has unit spacing in [128, 256), so OR-ing the 4-bit code into 0x4300's mantissa is exact;
//  - x goes in as the B operand, masked per column: column j of B holds x only where its k lies
//    in the step's scale group j, so C[row][j] is the row's sum over group j alone and the
//    scales apply after the mma, in f32 (x and the codes stay exact: no rounding of weights);
//  - a second mma against an A of ones gives each group's sum of x, X_j, for the affine terms:
//    sum over the group of x (s q + b) = s (C_j - 128 X_j) + b X_j.
// A warp owns a 16-row tile and a contiguous k slice, in steps of 128 codes (1 KB of weights):
// lane (g, t4) = (lane / 4, lane % 4) holds codes [32 t4, 32 t4 + 32) of rows g and g + 8 of the
// step. The A fragment of m16n8k16 gives lane (g, t4) k slots {2 t4, 2 t4 + 1, 2 t4 + 8, 2 t4 +
// 9}; the sum over k is order-free, so each mma maps those slots onto codes of the lane's own
// words, and x is permuted to match (two byte permutes an mma). The DecodeTiles order stores a
// step of a tile as the 32 lanes' pieces in lane order, so a warp reads one contiguous KB a step:
// on MLX's row order the same kernel read 16 rows 64 bytes at a time and decoded 310.5 tok/s
// against the register kernel's 323 (docs/perf.md, issue 7, step 22). Short rows of tiles split k
// over up to 8 warps of a block, which add their sums through shared memory.
#pragma once

#include <type_traits>

#include "backends/cuda/kernels/hopper_ptx.cuh"
#include "backends/cuda/kernels/matmul_mlx_matvec.cuh"
#include "ops/quant_decode_tiles.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "the MLX mma mat-vec needs bf16 mma.sync (sm_80 or newer); set MLXN_CUDA_ARCHS to 80+"
#endif

namespace mlxn::cuda::qmm {

inline constexpr int kMmaMvWarps = 8;
inline constexpr int kMmaMvThreads = 32 * kMmaMvWarps;
inline constexpr int kMmaMvChunk = static_cast<int>(ops::kDecodeStepCodes);  // codes of a step
inline constexpr int kMmaMvBatch = 2;  // steps whose weights a warp requests at once
// Blocks an SM the register allocation must allow: 4 (64 registers, a few bytes spilled, from
// 72 without the bound) measured +1.4% MLX 4-bit decode on the H100 (docs/perf.md, issue 7,
// step 23), through one more block an SM and the split that then fits in one wave.
inline constexpr int kMmaMvMinBlocks = 4;
// Warps that fit on the GPU at once: kMmaMvMinBlocks blocks of 8 warps on an H100's or H200's
// 132 SMs. A GPU with other SM counts gets a split sized for 132: still correct, tuned for ours.
inline constexpr long long kMmaMvResidentWarps = 132LL * kMmaMvMinBlocks * kMmaMvWarps;

/// Warps that share one 16-row tile, each over a contiguous k slice (1, 2, 4 or 8): the most
/// that still fit in one wave, with every slice a whole number of steps. Measured on the H100
/// (docs/perf.md, issue 7, step 22): this beat a fixed target of 16 warps an SM, which left a
/// nearly empty second wave at 4096 x 14336 (20.7 against 22.7 µs). Host and device agree on it, so
/// the kernel needs no extra parameter.
__host__ __device__ inline int mma_mv_split(long long n, long long k) {
  const long long tiles = (n + 15) / 16;
  int split = 1;
  while (split < kMmaMvWarps && tiles * split * 2 <= kMmaMvResidentWarps &&
         k % (static_cast<long long>(kMmaMvChunk) * 2 * split) == 0) {
    split *= 2;
  }
  return split;
}

__device__ __forceinline__ bool aligned4(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 3u) == 0;
}

/// Whether the mma mat-vec computes this product: DecodeTiles weights (4 bits, n a multiple of
/// 16, k of 128), one row of x and no routing.
inline bool mlx_mma_matvec_eligible(const ops::QuantMatmulParams& p) {
  return p.layout == ops::kLayoutDecodeTiles && p.bits == 4 && p.m == 1 && p.top_k == 1 &&
         p.has_ids == 0 && p.n > 0 && p.k % kMmaMvChunk == 0 && p.n % 16 == 0 &&
         (p.group_size == 32 || p.group_size == 64 || p.group_size == 128);
}

/// The scales (or biases) of a lane's two C columns in one row, as loaded: 16-bit scales two to
/// a word (the second 0 where the step has one group), f32 ones as two floats. Packing halves the
/// registers a step in flight holds.
template <class S>
struct ColumnPair {
  unsigned int v;
  __device__ __forceinline__ float at(int j) const {
    if constexpr (std::is_same_v<S, __nv_bfloat16>) {
      return __uint_as_float(j == 0 ? v << 16 : v & 0xFFFF0000u);
    } else {
      return __half2float(__ushort_as_half(static_cast<unsigned short>(j == 0 ? v : v >> 16)));
    }
  }
};
template <>
struct ColumnPair<float> {
  float f[2];
  __device__ __forceinline__ float at(int j) const { return f[j]; }
};

/// One step of a lane: 32 codes of rows g and g + 8, and the scales and biases of the lane's two
/// C columns (groups 2 t4 and 2 t4 + 1 of the step; 0 where the lane has no such group).
template <class S>
struct MmaStep {
  uint4 qa, qb;
  ColumnPair<S> sa, ba, sb, bb;
};

/// Where the lane's data starts at its k slice: its 16-byte piece of row g in the slice's first
/// step, and its scales (row g + 8 and the biases as offsets, which keeps the pointers a lane
/// holds to two).
template <class S>
struct MmaRows {
  const unsigned char* w;  // codes of row g
  int w_b;                 // bytes from row g's piece to row g + 8's
  const S* s;              // scale of row g at the lane's first column of step 0
  long long bias;          // bytes from a scale to its bias
  int s_b;                 // elements from row g's scales to row g + 8's
};

/// Columns j = 0, 1 of a row at group index gi, or zeros (kGpc: groups a step holds).
template <class S, int kGpc, bool kVec>
__device__ __forceinline__ ColumnPair<S> load_columns(const S* p, bool has_cols) {
  ColumnPair<S> c;
  if constexpr (std::is_same_v<S, float>) {
    c.f[0] = has_cols ? p[0] : 0.0f;
    c.f[1] = has_cols && kGpc > 1 ? p[1] : 0.0f;
  } else {
    const auto* h = reinterpret_cast<const unsigned short*>(p);
    if constexpr (kGpc > 1 && kVec) {
      // The pair starts at an even group index (groups a row and a step holds are multiples of
      // kGpc), so one 4-byte load takes both where the buffers are 4-byte aligned.
      c.v = has_cols ? *reinterpret_cast<const unsigned int*>(h) : 0u;
    } else if constexpr (kGpc > 1) {
      c.v =
          has_cols ? static_cast<unsigned int>(h[0]) | (static_cast<unsigned int>(h[1]) << 16) : 0u;
    } else {
      c.v = has_cols ? static_cast<unsigned int>(h[0]) : 0u;
    }
  }
  return c;
}

template <class S, int kGpc, bool kVec>
__device__ __forceinline__ void mma_load_step(const MmaRows<S>& r, int c, bool has_cols,
                                              MmaStep<S>& st) {
  const unsigned char* w = r.w + static_cast<long long>(c) * ops::kDecodeTileBytes;
  if constexpr (kVec) {
    st.qa = load_stream16(w);
    st.qb = load_stream16(w + r.w_b);
  } else {
    unsigned int a[4], b[4];
    load_words<4>(w, false, a);
    load_words<4>(w + r.w_b, false, b);
    st.qa = make_uint4(a[0], a[1], a[2], a[3]);
    st.qb = make_uint4(b[0], b[1], b[2], b[3]);
  }
  const S* s = r.s + static_cast<long long>(c) * kGpc;
  const S* b = reinterpret_cast<const S*>(reinterpret_cast<const unsigned char*>(s) + r.bias);
  st.sa = load_columns<S, kGpc, kVec>(s, has_cols);
  st.ba = load_columns<S, kGpc, kVec>(b, has_cols);
  st.sb = load_columns<S, kGpc, kVec>(s + r.s_b, has_cols);
  st.bb = load_columns<S, kGpc, kVec>(b + r.s_b, has_cols);
}

/// 8 elements of the lane's x for a step (words of two bf16), or zeros where its column is not
/// the group its k lies in. x is reread by every tile: plain loads, kept in L1.
template <bool kVec>
__device__ __forceinline__ uint4 mma_load_x8(const __nv_bfloat16* x, bool xcol) {
  if (!xcol) return make_uint4(0u, 0u, 0u, 0u);
  if constexpr (kVec) {
    return *reinterpret_cast<const uint4*>(x);
  } else {
    const auto* h = reinterpret_cast<const unsigned short*>(x);
    unsigned int w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      w[i] = static_cast<unsigned int>(h[2 * i]) | (static_cast<unsigned int>(h[2 * i + 1]) << 16);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
}

/// acc_a / acc_b (rows g / g + 8) += the step's affine dot over the lane's columns.
template <class S, bool kVec>
__device__ __forceinline__ void mma_step(const MmaStep<S>& st, const __nv_bfloat16* x, bool xcol,
                                         float& acc_a, float& acc_b) {
  constexpr unsigned int kOnes = 0x3F803F80u;  // bf16 pair (1, 1)
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float xs[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const unsigned int wa = word_of(st.qa, i), wb = word_of(st.qb, i);
    const uint4 xw = mma_load_x8<kVec>(x + 8 * i, xcol);  // x of codes 8i .. 8i + 7
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      // Slots 2 t4, 2 t4 + 1 take codes 2h and 2h + 4 of the word; slots + 8 codes 2h + 1 and
      // 2h + 5. x's matching pairs come from its words h and h + 2 (low halves, high halves).
      const unsigned int lo = h ? xw.y : xw.x, hi = h ? xw.w : xw.z;
      const unsigned int b0 = __byte_perm(lo, hi, 0x5410u), b1 = __byte_perm(lo, hi, 0x7632u);
      mma_bf16_16816(c, code_pair(wa, 8 * h), code_pair(wb, 8 * h), code_pair(wa, 8 * h + 4),
                     code_pair(wb, 8 * h + 4), b0, b1);
      mma_bf16_16816(xs, kOnes, kOnes, kOnes, kOnes, b0, b1);
    }
  }
  // c[0], c[1]: row g, columns 2 t4, 2 t4 + 1; c[2], c[3]: row g + 8. xs[0], xs[1]: X of those
  // columns (every row of the ones product is the same).
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    acc_a = fmaf(st.sa.at(j), fmaf(-128.0f, xs[j], c[j]), fmaf(st.ba.at(j), xs[j], acc_a));
    acc_b = fmaf(st.sb.at(j), fmaf(-128.0f, xs[j], c[2 + j]), fmaf(st.bb.at(j), xs[j], acc_b));
  }
}

/// acc_a / acc_b = the lane's share of rows g and g + 8 over steps [0, steps) of its slice.
template <class S, int kGpc, bool kVec, int kBatch = kMmaMvBatch>
__device__ __forceinline__ void mma_slice_dot(const MmaRows<S>& r, const __nv_bfloat16* xt,
                                              int steps, bool xcol, bool has_cols, float& acc_a,
                                              float& acc_b) {
  int c = 0;
  for (; c + kBatch <= steps; c += kBatch) {
    MmaStep<S> st[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) mma_load_step<S, kGpc, kVec>(r, c + u, has_cols, st[u]);
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      mma_step<S, kVec>(st[u], xt + static_cast<long long>(c + u) * kMmaMvChunk, xcol, acc_a,
                        acc_b);
    }
  }
  for (; c < steps; ++c) {
    MmaStep<S> st;
    mma_load_step<S, kGpc, kVec>(r, c, has_cols, st);
    mma_step<S, kVec>(st, xt + static_cast<long long>(c) * kMmaMvChunk, xcol, acc_a, acc_b);
  }
}

// out[row] = dot(x, row) for one row of bf16 x. Block: kMmaMvWarps warps = kMmaMvWarps / split
// tiles of 16 rows, `split` warps a tile. kGpc: scale groups in a step of 128 codes (4, 2, 1).
template <class S, int kGpc>
__global__ void __launch_bounds__(kMmaMvThreads, kMmaMvMinBlocks)
    mlx_mma_matvec4_kernel(const __grid_constant__ DeviceArgs args) {
  __shared__ float partial[kMmaMvWarps][16];
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const auto* x = static_cast<const __nv_bfloat16*>(args.ptr[0]);
  auto* out = static_cast<__nv_bfloat16*>(args.ptr[4]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int split = mma_mv_split(p.n, p.k);
  const int tiles_per_block = kMmaMvWarps / split;
  const long long tiles = p.n / 16;
  const long long tile = static_cast<long long>(blockIdx.x) * tiles_per_block + warp / split;
  const int slice = warp % split;
  pdl_enter();

  const WeightView wv = weight_view<MlxFormat<4, true>>(args, p, 0);
  // A block's tiles past the last one reread the last (results dropped): loads stay in bounds,
  // and every warp reaches the block barrier below.
  const long long t = tile < tiles ? tile : tiles - 1;
  const long long steps_all = p.k / kMmaMvChunk;
  const long long kslice = p.k / split, kbeg = slice * kslice;
  const int steps = static_cast<int>(kslice / kMmaMvChunk);
  constexpr int kGroup = kMmaMvChunk / kGpc;
  const long long ra = t * 16 + g, rb = ra + 8;
  const long long col0 = kbeg / kGroup + 2 * t4;
  MmaRows<S> r;
  r.w = wv.w + (t * steps_all + kbeg / kMmaMvChunk) * ops::kDecodeTileBytes + 16 * lane;
  r.w_b = 512;
  r.s = reinterpret_cast<const S*>(wv.scales) + ra * wv.groups + col0;
  r.bias = static_cast<long long>(reinterpret_cast<std::uintptr_t>(wv.biases) -
                                  reinterpret_cast<std::uintptr_t>(wv.scales));
  r.s_b = static_cast<int>((rb - ra) * wv.groups);
  // Lane (g, t4) feeds B column g; its k (32 t4 .. 32 t4 + 31 of a step) lies in group
  // 32 t4 / kGroup, so its x is live only in that column. It owns C columns 2 t4 and 2 t4 + 1.
  const bool xcol = g == (32 * t4) / kGroup;
  const bool has_cols = 2 * t4 < kGpc;
  const __nv_bfloat16* xt = x + kbeg + 32 * t4;

  float acc_a = 0.0f, acc_b = 0.0f;
  // Steps are 1 KB: an aligned base gives aligned pieces, and 4-byte aligned scales and biases
  // give aligned column pairs (see load_columns).
  if (wv.vec && aligned16(x) && aligned4(wv.scales) && aligned4(wv.biases)) {
    mma_slice_dot<S, kGpc, true>(r, xt, steps, xcol, has_cols, acc_a, acc_b);
  } else {
    mma_slice_dot<S, kGpc, false>(r, xt, steps, xcol, has_cols, acc_a, acc_b);
  }
  // The four lanes of a row hold different groups: add them.
  acc_a += __shfl_xor_sync(0xffffffffu, acc_a, 1);
  acc_a += __shfl_xor_sync(0xffffffffu, acc_a, 2);
  acc_b += __shfl_xor_sync(0xffffffffu, acc_b, 1);
  acc_b += __shfl_xor_sync(0xffffffffu, acc_b, 2);
  if (split == 1) {
    if (t4 == 0 && tile < tiles) {
      out[tile * 16 + g] = from_f32<__nv_bfloat16>(acc_a);
      out[tile * 16 + g + 8] = from_f32<__nv_bfloat16>(acc_b);
    }
    return;
  }
  if (t4 == 0) {
    partial[warp][g] = acc_a;
    partial[warp][g + 8] = acc_b;
  }
  __syncthreads();
  if (threadIdx.x < tiles_per_block * 16) {
    const int tl = threadIdx.x / 16, row = threadIdx.x % 16;
    const long long out_tile = static_cast<long long>(blockIdx.x) * tiles_per_block + tl;
    if (out_tile < tiles) {
      float s = 0.0f;
      for (int w = 0; w < split; ++w) s += partial[tl * split + w][row];
      out[out_tile * 16 + row] = from_f32<__nv_bfloat16>(s);
    }
  }
}

template <class S>
const void* mlx_mma_matvec4_for_group(int group_size) {
  switch (group_size) {
    case 32:
      return reinterpret_cast<const void*>(&mlx_mma_matvec4_kernel<S, 4>);
    case 64:
      return reinterpret_cast<const void*>(&mlx_mma_matvec4_kernel<S, 2>);
    default:
      return reinterpret_cast<const void*>(&mlx_mma_matvec4_kernel<S, 1>);
  }
}

/// Launch shape of the mma mat-vec (call only where mlx_mma_matvec_eligible holds).
inline LaunchConfig mlx_mma_matvec4_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const int split = mma_mv_split(p.n, p.k);
  const long long tiles = p.n / 16;
  const long long per_block = kMmaMvWarps / split;
  const long long blocks = (tiles + per_block - 1) / per_block;
  const void* func =
      p.scale_type == ops::kScaleF16    ? mlx_mma_matvec4_for_group<__half>(p.group_size)
      : p.scale_type == ops::kScaleBF16 ? mlx_mma_matvec4_for_group<__nv_bfloat16>(p.group_size)
                                        : mlx_mma_matvec4_for_group<float>(p.group_size);
  return {func, dim3(static_cast<unsigned int>(blocks)), dim3(kMmaMvThreads), 0, true};
}

/// DecodeTiles from MLX's row order (ops::tile_for_decode): bindings out, packed. One thread
/// moves one 16-byte piece (32 codes); reads are coalesced along rows.
__global__ void __launch_bounds__(kElementwiseThreads)
    mlx_tile_decode_kernel(const __grid_constant__ DeviceArgs args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  auto* out = static_cast<unsigned char*>(args.ptr[0]);
  const auto* in = static_cast<const unsigned char*>(args.ptr[1]);
  pdl_enter();
  const long long row_bytes = p.k / 2, segs = p.k / 32, total = p.n * segs;
  const bool vec = aligned16(out) && aligned16(in);
  for (long long i = global_thread(); i < total; i += grid_stride()) {
    const long long row = i / segs, seg = i % segs;
    const unsigned char* src = in + row * row_bytes + 16 * seg;
    unsigned char* dst = out + ops::decode_tile_offset(row, seg, row_bytes);
    if (vec) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        reinterpret_cast<unsigned int*>(dst)[j] = reinterpret_cast<const unsigned int*>(src)[j];
      }
    }
  }
}

inline LaunchConfig mlx_tile_decode_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  return {reinterpret_cast<const void*>(&mlx_tile_decode_kernel),
          dim3(blocks_for(p.n * (p.k / 32), kElementwiseThreads, kMaxElementwiseBlocks)),
          dim3(kElementwiseThreads), 0, true};
}

}  // namespace mlxn::cuda::qmm
