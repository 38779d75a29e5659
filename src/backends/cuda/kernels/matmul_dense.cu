// Dense matvec (m = 1 decode: y = x @ w^T + bias, streaming w once with 16-byte loads) and the
// bias-add kernel used after a cuBLASLt GEMM whose bias cannot go through its epilogue.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/matmul_kernels.h"
#include "ops/matmul_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kMatvecThreads = 256;  // 8 warps
constexpr long long kMaxGridY = 65535;

/// Weight rows per block: one warp per row when there are rows enough to fill the GPU, else
/// several warps split each row's k (more loads in flight for the narrow k/v projections).
__host__ __device__ inline int matvec_rows_per_block(long long n) {
  return n >= 4096 ? 8 : n >= 1024 ? 4 : 2;
}

// out[i, row] = x[i, :] . w[row, :] (+ bias[row]) for rows of this block, i over blockIdx.y.
template <class T>
__global__ void __launch_bounds__(kMatvecThreads)
    dense_matvec_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  __shared__ float partial[kMatvecThreads / 32];
  const auto& p = params_as<ops::MatmulParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const T* w = static_cast<const T*>(args.ptr[1]);
  T* out = static_cast<T*>(args.ptr[2]);
  const T* bias = p.has_bias ? static_cast<const T*>(args.ptr[3]) : nullptr;
  constexpr int V = 16 / sizeof(T);
  const int rows_per_block = matvec_rows_per_block(p.n);
  const int warps_per_row = (kMatvecThreads / 32) / rows_per_block;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const long long row = static_cast<long long>(blockIdx.x) * rows_per_block + warp / warps_per_row;
  const int part = warp % warps_per_row;  // which slice of k this warp takes
  const bool live = row < p.n;
  // Rows start 16-byte aligned when k is a multiple of V and both bases are aligned.
  const bool vec = p.k % V == 0 && aligned16(x) && aligned16(w);
  const T* wr = w + (live ? row : 0) * p.k;

  for (long long i = blockIdx.y; i < p.m; i += gridDim.y) {
    const T* xr = x + i * p.k;
    float acc = 0.0f;
    if (live) {
      if (vec) {
        const long long n_vec = p.k / V;
        const int stride = 32 * warps_per_row;
        long long c = static_cast<long long>(part) * 32 + lane;
        // Four independent 16-byte weight loads per lane per iteration keep enough bytes in
        // flight to stream w at memory speed.
        for (; c + 3 * stride < n_vec; c += 4 * stride) {
          Pack<T, V> wv[4], xv[4];
#pragma unroll
          for (int u = 0; u < 4; ++u) wv[u] = load_pack<T, V>(wr + (c + u * stride) * V);
#pragma unroll
          for (int u = 0; u < 4; ++u) xv[u] = load_pack<T, V>(xr + (c + u * stride) * V);
#pragma unroll
          for (int u = 0; u < 4; ++u) {
#pragma unroll
            for (int j = 0; j < V; ++j) acc = fmaf(to_f32(xv[u].v[j]), to_f32(wv[u].v[j]), acc);
          }
        }
        for (; c < n_vec; c += stride) {
          const Pack<T, V> wv = load_pack<T, V>(wr + c * V);
          const Pack<T, V> xv = load_pack<T, V>(xr + c * V);
#pragma unroll
          for (int j = 0; j < V; ++j) acc = fmaf(to_f32(xv.v[j]), to_f32(wv.v[j]), acc);
        }
      } else {
        for (long long c = static_cast<long long>(part) * 32 + lane; c < p.k;
             c += 32 * warps_per_row) {
          acc = fmaf(to_f32(xr[c]), to_f32(wr[c]), acc);
        }
      }
    }
    acc = warp_sum(acc);
    if (lane == 0) partial[warp] = acc;
    __syncthreads();
    if (threadIdx.x < rows_per_block) {
      const long long r = static_cast<long long>(blockIdx.x) * rows_per_block + threadIdx.x;
      if (r < p.n) {
        float s = 0.0f;
        for (int k = 0; k < warps_per_row; ++k) s += partial[threadIdx.x * warps_per_row + k];
        if (bias != nullptr) s += to_f32(bias[r]);
        out[i * p.n + r] = from_f32<T>(s);
      }
    }
    __syncthreads();  // partial is reused by the next row of x
  }
}

template <class T>
LaunchConfig dense_matvec_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::MatmulParams>(args);
  const int rpb = matvec_rows_per_block(p.n);
  long long bx = (p.n + rpb - 1) / rpb;
  long long by = p.m;
  if (bx < 1) bx = 1;
  if (by < 1) by = 1;
  if (by > kMaxGridY) by = kMaxGridY;
  return {reinterpret_cast<const void*>(&dense_matvec_kernel<T>),
          dim3(static_cast<unsigned int>(bx), static_cast<unsigned int>(by)), dim3(kMatvecThreads),
          0, true};
}

// out[i, j] = out[i, j] + bias[j], rounded once (out already holds the GEMM's rounded result).
template <class T>
__global__ void __launch_bounds__(kElementwiseThreads)
    bias_add_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::MatmulParams>(args);
  T* out = static_cast<T*>(args.ptr[0]);
  const T* bias = static_cast<const T*>(args.ptr[1]);
  const long long total = p.m * p.n;
  for (long long idx = global_thread(); idx < total; idx += grid_stride()) {
    out[idx] = from_f32<T>(to_f32(out[idx]) + to_f32(bias[idx % p.n]));
  }
}

template <class T>
LaunchConfig bias_add_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::MatmulParams>(args);
  return {reinterpret_cast<const void*>(&bias_add_kernel<T>),
          dim3(blocks_for(p.m * p.n, kElementwiseThreads, kMaxElementwiseBlocks)),
          dim3(kElementwiseThreads), 0, true};
}

template <template <class> class Config>
ConfigureFn for_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &Config<float>::get;
    case DType::F16:
      return &Config<__half>::get;
    case DType::BF16:
      return &Config<__nv_bfloat16>::get;
    default:
      return nullptr;
  }
}

template <class T>
struct MatvecConfig {
  static LaunchConfig get(const DeviceArgs& a) { return dense_matvec_config<T>(a); }
};
template <class T>
struct BiasAddConfig {
  static LaunchConfig get(const DeviceArgs& a) { return bias_add_config<T>(a); }
};

}  // namespace

ConfigureFn dense_matvec_configure(DType dtype) {
  return for_dtype<MatvecConfig>(dtype);
}

ConfigureFn bias_add_configure(DType dtype) {
  return for_dtype<BiasAddConfig>(dtype);
}

}  // namespace mlxn::cuda
