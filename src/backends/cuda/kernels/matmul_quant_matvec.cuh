// The quantized matvec kernel (any weight format policy of matmul_quant_formats.cuh): small m and
// the expert-routed variant. Each block computes kRows outputs of one row of x; its threads split
// the row's units (32 or 64 elements) and stream the weights once, decoding in registers.
#pragma once

#include <cstdlib>
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

// The MLX mat-vec with x staged in shared memory: a block stages its row of x once (16-byte
// loads, in the input dtype), then each thread takes 32-element units of kRows weight rows,
// issuing all their weight, scale and bias loads before it reads x, and reuses every x value for
// kRows rows from registers. More rows a block and the loads in flight together are what the
// plain kernel lacks (4 rows a block, ~110 registers a thread). Used when k * sizeof(T) fits the
// default 48 KB of shared memory.
inline constexpr int kSmemMatvecThreads = 128;
inline constexpr long long kSmemMatvecMaxBytes = 47 * 1024;  // 48 KB less the static part

template <int Bits>
constexpr int smem_matvec_rows() {
  return Bits <= 4 ? 8 : 4;  // keeps the weight words of all rows in at most 32 registers
}

template <class T, class P>
__global__ void __launch_bounds__(kSmemMatvecThreads)
    quant_matvec_smem_kernel(const __grid_constant__ DeviceArgs args) {
  constexpr int B = P::kBits;
  constexpr int R = smem_matvec_rows<B>();
  constexpr int kWarps = kSmemMatvecThreads / 32;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* xsh = reinterpret_cast<T*>(smem_raw);
  __shared__ float partial[kWarps][R];
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  T* out = static_cast<T*>(args.ptr[out_binding<P>()]);
  const int* ids = p.has_ids ? static_cast<const int*>(args.ptr[out_binding<P>() + 1]) : nullptr;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long row0 = static_cast<long long>(blockIdx.x) * R;
  const long long n_units = p.k / 32;
  const long long n_assign = p.m * p.top_k;
  const long long last = p.n - 1;

  for (long long a = blockIdx.y; a < n_assign; a += gridDim.y) {
    long long e = 0;
    if (ids != nullptr) {
      e = ids[a];
      if (e < 0 || e >= p.n_experts) {
        if (threadIdx.x == 0 && blockIdx.x == 0)
          report_status(args, ops::kStatusExpertIdOutOfRange, a);
        if (threadIdx.x < R && row0 + threadIdx.x < p.n) {
          out[a * p.n + row0 + threadIdx.x] = from_f32<T>(0.0f);
        }
        continue;
      }
    }
    const T* xr = x + (a / p.top_k) * p.x_token_stride + (a % p.top_k) * p.x_slot_stride;
    const WeightView wv = weight_view<P>(args, p, e);

    // The first unit's weights are requested before x is staged, so both are in flight at once.
    long long u = threadIdx.x;
    unsigned int q[R][B];
    float sc[R], bi[R];
    const auto fetch = [&](long long unit) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const long long row = row0 + r < last ? row0 + r : last;
        P::load(wv, row, unit, q[r]);
        P::scale_bias(wv, row, unit, sc[r], bi[r]);
      }
    };
    if (u < n_units) fetch(u);

    constexpr int V = 16 / sizeof(T);
    if (aligned16(xr)) {
      for (long long i = threadIdx.x; i < p.k / V; i += kSmemMatvecThreads) {
        store_pack<T, V>(xsh + i * V, load_pack<T, V>(xr + i * V));
      }
    } else {
      for (long long i = threadIdx.x; i < p.k; i += kSmemMatvecThreads) xsh[i] = xr[i];
    }
    __syncthreads();

    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0.0f;
    for (; u < n_units; u += kSmemMatvecThreads) {
      float dot[R];
#pragma unroll
      for (int r = 0; r < R; ++r) dot[r] = 0.0f;
      float xsum = 0.0f;
      const T* xu = xsh + u * 32;
#pragma unroll
      for (int c = 0; c < 32 / V; ++c) {
        const Pack<T, V> xp = load_pack<T, V>(xu + c * V);
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const float xv = to_f32(xp.v[i]);
          xsum += xv;
#pragma unroll
          for (int r = 0; r < R; ++r) {
            dot[r] = fmaf(xv, code_to_f32(mlx_code<B>(q[r], c * V + i)), dot[r]);
          }
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r] += fmaf(sc[r], dot[r], bi[r] * xsum);
      if (u + kSmemMatvecThreads < n_units) fetch(u + kSmemMatvecThreads);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float s = warp_sum(acc[r]);
      if (lane == 0) partial[warp][r] = s;
    }
    __syncthreads();
    if (threadIdx.x < R && row0 + threadIdx.x < p.n) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) s += partial[w][threadIdx.x];
      out[a * p.n + row0 + threadIdx.x] = from_f32<T>(s);
    }
    __syncthreads();  // xsh and partial are reused by the next a
  }
}

template <class T, class P>
bool smem_matvec_fits(const ops::QuantMatmulParams& p) {
  if constexpr (!P::kMlx) {
    return false;
  } else {
    return p.k * static_cast<long long>(sizeof(T)) <= kSmemMatvecMaxBytes;
  }
}

// 1 runs quant_matvec_smem_kernel for MLX formats wherever x fits shared memory, 0 (default)
// the plain kernel everywhere. MLXN_QMV_VARIANT picks one for comparing the two on a GPU (the
// bench/matmul_bench.cpp rows and the op tests, in one run); not a user setting.
inline int matvec_variant() {
  static const int v = [] {
    const char* e = std::getenv("MLXN_QMV_VARIANT");
    return e ? std::atoi(e) : 0;
  }();
  return v;
}

template <class T, class P>
LaunchConfig quant_matvec_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  if constexpr (P::kMlx) {
    if (matvec_variant() == 1 && smem_matvec_fits<T, P>(p)) {
      constexpr int R = smem_matvec_rows<P::kBits>();
      long long bx = (p.n + R - 1) / R;
      long long by = p.m * p.top_k;
      if (bx < 1) bx = 1;
      if (by < 1) by = 1;
      if (by > kMaxGridY) by = kMaxGridY;
      return {reinterpret_cast<const void*>(&quant_matvec_smem_kernel<T, P>),
              dim3(static_cast<unsigned int>(bx), static_cast<unsigned int>(by)),
              dim3(kSmemMatvecThreads), static_cast<unsigned int>(p.k * sizeof(T))};
    }
  }
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
