// The quantized tiled matmul kernel (any weight format policy): a 64x64 output tile per block;
// per 32-wide k step the block loads the x tile, dequantizes the weight tile into shared memory
// and multiplies. f16/bf16 use tensor cores (WMMA 16x16x16, f32 accumulators; the dequantized
// weights are rounded to x's dtype), f32 a register-tiled SIMT loop in exact f32.
#pragma once

#include <mma.h>

#include <type_traits>

#include "backends/cuda/kernels/matmul_quant_formats.cuh"

namespace mlxn::cuda::qmm {

inline constexpr int kTileM = 64;
inline constexpr int kTileN = 64;
inline constexpr int kTileK = 32;  // one segment: never straddles a scale group or sub-block
inline constexpr int kTiledThreads = 128;

/// Thread t loads x elements [16h, 16h + 16) of segment `seg` of tile row r = t / 2 (h = t % 2)
/// as f32; rows past m give zeros.
template <class T>
__device__ __forceinline__ void load_x16(const T* x, const ops::QuantMatmulParams& p, long long m0,
                                         long long seg, bool vec, float (&v)[16]) {
  const int r = threadIdx.x >> 1, h = threadIdx.x & 1;
  const long long row = m0 + r;
  if (row >= p.m) {
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = 0.0f;
    return;
  }
  const T* src = x + row * p.x_token_stride + seg * kTileK + 16 * h;
  constexpr int V = 16 / sizeof(T);
  if (vec) {
#pragma unroll
    for (int i = 0; i < 16 / V; ++i) {
      const Pack<T, V> pk = load_pack<T, V>(src + i * V);
#pragma unroll
      for (int j = 0; j < V; ++j) v[i * V + j] = to_f32(pk.v[j]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = to_f32(src[i]);
  }
}

/// Thread t dequantizes elements [16h, 16h + 16) of segment `seg` of weight row n0 + t / 2.
template <class P>
__device__ __forceinline__ void load_w16(const WeightView& wv, const ops::QuantMatmulParams& p,
                                         long long n0, long long seg, float (&v)[16]) {
  // Rows past n repeat the last row: in bounds, and only feed output columns never stored.
  const long long want = n0 + (threadIdx.x >> 1), last = p.n - 1;
  const long long row = want < last ? want : last;
  P::dequant16(wv, row, seg, threadIdx.x & 1, v);
}

// Tensor-core tile: 4 warps in 2x2, each 32x32 of the output as 2x2 WMMA fragments.
template <class T, class P>
__global__ void __launch_bounds__(kTiledThreads)
    quant_tiled_wmma_kernel(const __grid_constant__ DeviceArgs args) {
  using namespace nvcuda;
  constexpr int kLd = kTileK + 8;   // 80-byte rows: fragment pointers stay 32-byte aligned
  constexpr int kLdc = kTileN + 4;  // f32 staging of the accumulators
  __shared__ __align__(32) T xs[kTileM * kLd];
  __shared__ __align__(32) T ws[kTileN * kLd];
  __shared__ __align__(32) float cs[kTileM * kLdc];
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  T* out = static_cast<T*>(args.ptr[out_binding<P>()]);
  const WeightView wv = weight_view<P>(args, p, 0);
  const bool x_vec = aligned16(x);
  const long long n0 = static_cast<long long>(blockIdx.x) * kTileN;
  const long long n_segs = p.k / kTileK;
  const int warp = threadIdx.x >> 5;
  const int wm = warp >> 1, wn = warp & 1;
  const int tr = threadIdx.x >> 1, th = threadIdx.x & 1;

  for (long long m0 = static_cast<long long>(blockIdx.y) * kTileM; m0 < p.m;
       m0 += static_cast<long long>(gridDim.y) * kTileM) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    }
    for (long long seg = 0; seg < n_segs; ++seg) {
      float v[16];
      load_x16(x, p, m0, seg, x_vec, v);
#pragma unroll
      for (int i = 0; i < 16; ++i) xs[tr * kLd + 16 * th + i] = from_f32<T>(v[i]);
      load_w16<P>(wv, p, n0, seg, v);
#pragma unroll
      for (int i = 0; i < 16; ++i) ws[tr * kLd + 16 * th + i] = from_f32<T>(v[i]);
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kTileK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          wmma::load_matrix_sync(fa[i], xs + (wm * 32 + i * 16) * kLd + kk, kLd);
          // ws is [n][k] row-major, i.e. the k x n operand B in column-major order.
          wmma::load_matrix_sync(fb[i], ws + (wn * 32 + i * 16) * kLd + kk, kLd);
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
      }
      __syncthreads();  // xs / ws are overwritten by the next step
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::store_matrix_sync(cs + (wm * 32 + i * 16) * kLdc + wn * 32 + j * 16, acc[i][j], kLdc,
                                wmma::mem_row_major);
      }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < kTileM * kTileN; idx += kTiledThreads) {
      const int r = idx / kTileN, c = idx % kTileN;
      if (m0 + r < p.m && n0 + c < p.n)
        out[(m0 + r) * p.n + n0 + c] = from_f32<T>(cs[r * kLdc + c]);
    }
    __syncthreads();  // cs is rewritten by the next m tile
  }
}

// Exact-f32 tile: thread (ty, tx) = (t / 16, t % 16) owns rows ty + 8i, columns tx + 16j.
template <class P>
__global__ void __launch_bounds__(kTiledThreads)
    quant_tiled_f32_kernel(const __grid_constant__ DeviceArgs args) {
  constexpr int kLd = kTileK + 1;  // odd stride: the 16 rows a warp reads hit distinct banks
  __shared__ float xs[kTileM * kLd];
  __shared__ float ws[kTileN * kLd];
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const float* x = static_cast<const float*>(args.ptr[0]);
  float* out = static_cast<float*>(args.ptr[out_binding<P>()]);
  const WeightView wv = weight_view<P>(args, p, 0);
  const bool x_vec = aligned16(x);
  const long long n0 = static_cast<long long>(blockIdx.x) * kTileN;
  const long long n_segs = p.k / kTileK;
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  const int tr = threadIdx.x >> 1, th = threadIdx.x & 1;

  for (long long m0 = static_cast<long long>(blockIdx.y) * kTileM; m0 < p.m;
       m0 += static_cast<long long>(gridDim.y) * kTileM) {
    float acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    }
    for (long long seg = 0; seg < n_segs; ++seg) {
      float v[16];
      load_x16(x, p, m0, seg, x_vec, v);
#pragma unroll
      for (int i = 0; i < 16; ++i) xs[tr * kLd + 16 * th + i] = v[i];
      load_w16<P>(wv, p, n0, seg, v);
#pragma unroll
      for (int i = 0; i < 16; ++i) ws[tr * kLd + 16 * th + i] = v[i];
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < kTileK; ++kk) {
        float a[8], b[4];
#pragma unroll
        for (int i = 0; i < 8; ++i) a[i] = xs[(ty + 8 * i) * kLd + kk];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = ws[(tx + 16 * j) * kLd + kk];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const long long r = m0 + ty + 8 * i;
      if (r >= p.m) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const long long c = n0 + tx + 16 * j;
        if (c < p.n) out[r * p.n + c] = acc[i][j];
      }
    }
  }
}

template <class T, class P>
LaunchConfig quant_tiled_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  long long bx = (p.n + kTileN - 1) / kTileN;
  long long by = (p.m + kTileM - 1) / kTileM;
  if (bx < 1) bx = 1;
  if (by < 1) by = 1;
  if (by > 65535) by = 65535;
  const void* func;
  if constexpr (std::is_same_v<T, float>) {
    func = reinterpret_cast<const void*>(&quant_tiled_f32_kernel<P>);
  } else {
    func = reinterpret_cast<const void*>(&quant_tiled_wmma_kernel<T, P>);
  }
  return {func, dim3(static_cast<unsigned int>(bx), static_cast<unsigned int>(by)),
          dim3(kTiledThreads), 0};
}

}  // namespace mlxn::cuda::qmm
