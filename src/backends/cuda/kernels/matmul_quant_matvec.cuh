// The quantized matvec kernel (any weight format policy of matmul_quant_formats.cuh): small m and
// the expert-routed variant. Each block computes kRows outputs of one row of x; its threads split
// the row's units (32 or 64 elements) and stream the weights once, decoding in registers.
#pragma once

#include <type_traits>

#include "backends/cuda/kernels/matmul_quant_formats.cuh"

namespace mlxn::cuda::qmm {

inline constexpr int kMatvecThreads = 128;
inline constexpr int kMatvecRows = 4;  // weight rows per block: x is loaded once for all of them
inline constexpr long long kMaxGridY = 65535;

/// x[0 .. 32) of a segment as f32, with 16-byte loads when the row is aligned.
template <class T>
__device__ __forceinline__ void load_x32(const T* x, bool vec, float (&out)[32], float& sum) {
  constexpr int V = 16 / sizeof(T);
  if (vec) {
#pragma unroll
    for (int i = 0; i < 32 / V; ++i) {
      const Pack<T, V> p = load_pack<T, V>(x + i * V);
#pragma unroll
      for (int j = 0; j < V; ++j) out[i * V + j] = to_f32(p.v[j]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 32; ++i) out[i] = to_f32(x[i]);
  }
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 32; ++i) s += out[i];
  sum = s;
}

// out[a, row] for a in blockIdx.y (strided), rows [blockIdx.x * kRows, +kRows).
template <class T, class P>
__global__ void __launch_bounds__(kMatvecThreads)
    quant_matvec_kernel(const __grid_constant__ DeviceArgs args) {
  __shared__ float partial[kMatvecThreads / 32][kMatvecRows];
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  T* out = static_cast<T*>(args.ptr[out_binding<P>()]);
  const int* ids = p.has_ids ? static_cast<const int*>(args.ptr[out_binding<P>() + 1]) : nullptr;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long row0 = static_cast<long long>(blockIdx.x) * kMatvecRows;
  const long long n_units = p.k / P::kUnitElems;
  const long long n_assign = p.m * p.top_k;
  // Rows of x start 16-byte aligned when x does: k and the strides are multiples of 32.
  const bool x_vec = aligned16(x);

  for (long long a = blockIdx.y; a < n_assign; a += gridDim.y) {
    long long e = 0;
    if (ids != nullptr) {
      e = ids[a];
      if (e < 0 || e >= p.n_experts) {
        // Uniform over the block (one a per block iteration): no barrier is skipped unevenly.
        if (threadIdx.x == 0 && blockIdx.x == 0)
          report_status(args, ops::kStatusExpertIdOutOfRange, a);
        if (threadIdx.x < kMatvecRows && row0 + threadIdx.x < p.n) {
          out[a * p.n + row0 + threadIdx.x] = from_f32<T>(0.0f);
        }
        continue;
      }
    }
    const T* xr = x + (a / p.top_k) * p.x_token_stride + (a % p.top_k) * p.x_slot_stride;
    const WeightView wv = weight_view<P>(args, p, e);
    float acc[kMatvecRows];
#pragma unroll
    for (int r = 0; r < kMatvecRows; ++r) acc[r] = 0.0f;
    for (long long u = threadIdx.x; u < n_units; u += kMatvecThreads) {
      float xs[P::kSegs][32];
      float xsum[P::kSegs];
#pragma unroll
      for (int s = 0; s < P::kSegs; ++s) load_x32(xr + P::seg_offset(u, s), x_vec, xs[s], xsum[s]);
#pragma unroll
      for (int r = 0; r < kMatvecRows; ++r) {
        // Rows past n repeat the last row (their results are dropped) so loads stay in bounds.
        const long long last = p.n - 1;
        const long long row = row0 + r < last ? row0 + r : last;
        acc[r] += P::unit_dot(wv, row, u, xs, xsum);
      }
    }
#pragma unroll
    for (int r = 0; r < kMatvecRows; ++r) {
      const float s = warp_sum(acc[r]);
      if (lane == 0) partial[warp][r] = s;
    }
    __syncthreads();
    if (threadIdx.x < kMatvecRows && row0 + threadIdx.x < p.n) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < kMatvecThreads / 32; ++w) s += partial[w][threadIdx.x];
      out[a * p.n + row0 + threadIdx.x] = from_f32<T>(s);
    }
    __syncthreads();  // partial is reused by the next a
  }
}

template <class T, class P>
LaunchConfig quant_matvec_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  long long bx = (p.n + kMatvecRows - 1) / kMatvecRows;
  long long by = p.m * p.top_k;
  if (bx < 1) bx = 1;
  if (by < 1) by = 1;
  if (by > kMaxGridY) by = kMaxGridY;
  return {reinterpret_cast<const void*>(&quant_matvec_kernel<T, P>),
          dim3(static_cast<unsigned int>(bx), static_cast<unsigned int>(by)), dim3(kMatvecThreads),
          0};
}

}  // namespace mlxn::cuda::qmm
