// RMSNorm kernels: rms_norm (x, w -> out) and the fused rms_norm_mul (x, w, g -> out), one block
// per row with f32 accumulation.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/kernels.h"
#include "ops/op_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kMaxThreads = 1024;
// Rows per launch beyond this are strided over by the blocks.
constexpr long long kMaxRowBlocks = 1ll << 20;

/// Sum of `v` over the block, returned to every thread. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch, float* total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int n_warps = (blockDim.x + 31) >> 5;
    float s = lane < n_warps ? scratch[lane] : 0.0f;
    s = warp_sum(s);
    if (lane == 0) *total = s;
  }
  __syncthreads();
  // Safe to reuse scratch and total for the next row: warp 0 read scratch before the second
  // barrier, and every thread reads total before it reaches the next row's first barrier.
  return *total;
}

// out[r, c] = x[r, c] * inv_rms(r) * w[c] (* g[r, c] when kGated). The whole product is formed
// in f32 and rounded to T once, at the end: rms_norm_mul does NOT round the normalized value to T
// before multiplying by g (the CPU kernel does the same), so the fusion is slightly more precise
// than running rms_norm then mul. x and out may alias (each element is read before it is written
// by the same thread, and the second pass starts after the reduction's barrier).
template <class T, bool kGated>
__global__ void __launch_bounds__(kMaxThreads)
    rms_norm_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  __shared__ float scratch[32];
  __shared__ float total;
  const auto& p = params_as<ops::RmsNormParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const T* w = static_cast<const T*>(args.ptr[1]);
  const T* g = kGated ? static_cast<const T*>(args.ptr[2]) : nullptr;
  T* out = static_cast<T*>(args.ptr[kGated ? 3 : 2]);
  const long long cols = p.cols;
  constexpr int V = 16 / sizeof(T);
  // Rows start on 16-byte boundaries only when cols is a multiple of V.
  const bool vec =
      cols % V == 0 && aligned16(x) && aligned16(w) && aligned16(out) && (!kGated || aligned16(g));
  for (long long row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const T* xr = x + row * cols;
    const T* gr = kGated ? g + row * cols : nullptr;
    T* outr = out + row * cols;

    float ss = 0.0f;
    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const Pack<T, V> xv = load_pack<T, V>(xr + i * V);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float f = to_f32(xv.v[j]);
          ss += f * f;
        }
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        const float f = to_f32(xr[i]);
        ss += f * f;
      }
    }
    ss = block_sum(ss, scratch, &total);
    // 1/sqrt rather than rsqrtf: one per row, and it stays within an ulp of the CPU result.
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(cols) + p.eps);

    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const Pack<T, V> xv = load_pack<T, V>(xr + i * V);
        const Pack<T, V> wv = load_pack<T, V>(w + i * V);
        Pack<T, V> gv;
        if constexpr (kGated) gv = load_pack<T, V>(gr + i * V);
        Pack<T, V> o;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          float f = to_f32(xv.v[j]) * inv * to_f32(wv.v[j]);
          if constexpr (kGated) f *= to_f32(gv.v[j]);
          o.v[j] = from_f32<T>(f);
        }
        store_pack<T, V>(outr + i * V, o);
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        float f = to_f32(xr[i]) * inv * to_f32(w[i]);
        if constexpr (kGated) f *= to_f32(gr[i]);
        outr[i] = from_f32<T>(f);
      }
    }
  }
}

template <class T, bool kGated>
LaunchConfig rms_norm_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::RmsNormParams>(args);
  constexpr int V = 16 / sizeof(T);
  // One 16-byte pack per thread when the row fits in a block, else a full block striding over
  // the row; never less than a warp (the reduction works on whole warps).
  long long threads = (p.cols + V - 1) / V;
  threads = (threads + 31) / 32 * 32;
  if (threads < 32) threads = 32;
  if (threads > kMaxThreads) threads = kMaxThreads;
  long long blocks = p.rows < 1 ? 1 : p.rows;
  if (blocks > kMaxRowBlocks) blocks = kMaxRowBlocks;
  return {reinterpret_cast<const void*>(&rms_norm_kernel<T, kGated>),
          dim3(static_cast<unsigned int>(blocks)), dim3(static_cast<unsigned int>(threads)), 0,
          true};
}

template <bool kGated>
ConfigureFn rms_norm_for(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &rms_norm_config<float, kGated>;
    case DType::F16:
      return &rms_norm_config<__half, kGated>;
    case DType::BF16:
      return &rms_norm_config<__nv_bfloat16, kGated>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn rms_norm_configure(DType dtype, bool gated) {
  return gated ? rms_norm_for<true>(dtype) : rms_norm_for<false>(dtype);
}

}  // namespace mlxn::cuda
