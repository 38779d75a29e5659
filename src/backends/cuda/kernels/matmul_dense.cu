// Dense matvec (m = 1 decode: y = x @ w^T + bias, streaming w once with 16-byte loads) and the
// bias-add kernel used after a cuBLASLt GEMM whose bias cannot go through its epilogue.
#include "backends/cuda/kernels/activation_math.cuh"
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
// kGated (gate_act): w has 2n rows; the block's first half of rows are gate rows j0.., the
// second half the matching up rows n + j0.., and out[i, j] = act(gate) * up. kPreload
// (weights_static, one row of x): the first weights are requested before the wait for the
// previous kernel. Both are template parameters: either costs registers (fewer warps an SM) that
// the plain mat-vec should not pay.
template <class T, bool kPreload, bool kGated>
__global__ void __launch_bounds__(kMatvecThreads)
    dense_matvec_kernel(const __grid_constant__ DeviceArgs args) {
  __shared__ float partial[kMatvecThreads / 32];
  const auto& p = params_as<ops::MatmulParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const T* w = static_cast<const T*>(args.ptr[1]);
  T* out = static_cast<T*>(args.ptr[2]);
  const T* bias = p.has_bias ? static_cast<const T*>(args.ptr[3]) : nullptr;
  constexpr int V = 16 / sizeof(T);
  constexpr bool gated = kGated;
  // Sized by the outputs, gated or not: a gated row is then split over warps exactly as the
  // plain mat-vec of its half splits it, and sums in the same order (bit-identical results).
  const int rows_per_block = matvec_rows_per_block(p.n);
  const int outs_per_block = gated ? rows_per_block / 2 : rows_per_block;
  const int warps_per_row = (kMatvecThreads / 32) / rows_per_block;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int slot = warp / warps_per_row;  // which of the block's rows this warp works on
  const long long out0 = static_cast<long long>(blockIdx.x) * outs_per_block;
  const long long out_j = out0 + slot % outs_per_block;
  const long long row = gated ? (slot < outs_per_block ? out_j : p.n + out_j) : out_j;
  const int part = warp % warps_per_row;  // which slice of k this warp takes
  const bool live = out_j < p.n;
  // Rows start 16-byte aligned when k is a multiple of V and both bases are aligned.
  const bool vec = p.k % V == 0 && aligned16(x) && aligned16(w);
  const T* wr = w + (live ? row : 0) * p.k;
  const long long n_vec = p.k / V;
  const int stride = 32 * warps_per_row;
  // Immutable weights (MatmulParams::weights_static) are requested before waiting for the
  // previous kernel, which wrote x: their first round trip overlaps its end. The loads land in
  // the main loop's own weight registers (a separate copy would double the registers the loop
  // holds and halve the warps an SM keeps, measured slower for bf16 decode).
  Pack<T, V> wv[4];
  bool have_w = false;
  if (kPreload && vec && live && static_cast<long long>(part) * 32 + lane + 3 * stride < n_vec) {
    const long long c = static_cast<long long>(part) * 32 + lane;
#pragma unroll
    for (int u = 0; u < 4; ++u) wv[u] = load_pack<T, V>(wr + (c + u * stride) * V);
    have_w = true;
  }
  pdl_enter();

  for (long long i = blockIdx.y; i < p.m; i += gridDim.y) {
    const T* xr = x + i * p.k;
    float acc = 0.0f;
    if (live) {
      if (vec) {
        long long c = static_cast<long long>(part) * 32 + lane;
        // Four independent 16-byte weight loads per lane per iteration keep enough bytes in
        // flight to stream w at memory speed.
        for (; c + 3 * stride < n_vec; c += 4 * stride) {
          Pack<T, V> xv[4];
          if (!have_w) {
#pragma unroll
            for (int u = 0; u < 4; ++u) wv[u] = load_pack<T, V>(wr + (c + u * stride) * V);
          }
          have_w = false;
#pragma unroll
          for (int u = 0; u < 4; ++u) xv[u] = load_pack<T, V>(xr + (c + u * stride) * V);
#pragma unroll
          for (int u = 0; u < 4; ++u) {
#pragma unroll
            for (int j = 0; j < V; ++j) acc = fmaf(to_f32(xv[u].v[j]), to_f32(wv[u].v[j]), acc);
          }
        }
        for (; c < n_vec; c += stride) {
          const Pack<T, V> w1 = load_pack<T, V>(wr + c * V);
          const Pack<T, V> xv = load_pack<T, V>(xr + c * V);
#pragma unroll
          for (int j = 0; j < V; ++j) acc = fmaf(to_f32(xv.v[j]), to_f32(w1.v[j]), acc);
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
    if (threadIdx.x < outs_per_block) {
      const long long j = out0 + threadIdx.x;
      if (j < p.n) {
        // Row sums of slot t (and, gated, of its up row t + outs_per_block), rounded to T as
        // separate outputs would be before the activation.
        auto row_sum = [&](int t) {
          float s = 0.0f;
          for (int k = 0; k < warps_per_row; ++k) s += partial[t * warps_per_row + k];
          return s;
        };
        if constexpr (kGated) {
          const float g = to_f32(from_f32<T>(row_sum(threadIdx.x)));
          const float u = to_f32(from_f32<T>(row_sum(threadIdx.x + outs_per_block)));
          out[i * p.n + j] = from_f32<T>(gated_value(p.gate_act, g, u));
        } else {
          float s = row_sum(threadIdx.x);
          if (bias != nullptr) s += to_f32(bias[j]);
          out[i * p.n + j] = from_f32<T>(s);
        }
      }
    }
    __syncthreads();  // partial is reused by the next row of x
  }
}

template <class T>
LaunchConfig dense_matvec_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::MatmulParams>(args);
  const bool gated = p.gate_act != ops::kGateNone;
  const bool preload = p.weights_static != 0 && p.m == 1;
  const int rpb = matvec_rows_per_block(p.n);
  const int outs = gated ? rpb / 2 : rpb;
  long long bx = (p.n + outs - 1) / outs;
  long long by = p.m;
  if (bx < 1) bx = 1;
  if (by < 1) by = 1;
  if (by > kMaxGridY) by = kMaxGridY;
  const void* func =
      gated ? (preload ? reinterpret_cast<const void*>(&dense_matvec_kernel<T, true, true>)
                       : reinterpret_cast<const void*>(&dense_matvec_kernel<T, false, true>))
            : (preload ? reinterpret_cast<const void*>(&dense_matvec_kernel<T, true, false>)
                       : reinterpret_cast<const void*>(&dense_matvec_kernel<T, false, false>));
  return {func, dim3(static_cast<unsigned int>(bx), static_cast<unsigned int>(by)),
          dim3(kMatvecThreads), 0, true};
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
