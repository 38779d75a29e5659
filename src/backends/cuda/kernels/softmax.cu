// Row softmax kernel: one block per row, an online max/sum pass (f32) then a write pass, with
// 16-byte packs where the row allows; optional scale and broadcast additive mask.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/sampling_kernels.h"
#include "ops/softmax_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kMaxThreads = 1024;
constexpr long long kMaxRowBlocks = 1ll << 20;

// Running (max, sum of exp(v - max)) over a stream of values; -inf values add nothing.
struct Online {
  float m = -INFINITY;
  float s = 0.0f;
  __device__ __forceinline__ void add(float v) {
    if (v > m) {
      s = s * expf(m - v) + 1.0f;  // m = -inf: s is 0 and expf(-inf) is 0
      m = v;
    } else if (v != -INFINITY) {
      s += expf(v - m);
    }
  }
  __device__ __forceinline__ void merge(float m2, float s2) {
    const float mm = fmaxf(m, m2);
    if (mm == -INFINITY) return;
    const float a = m == -INFINITY ? 0.0f : s * expf(m - mm);
    const float b = m2 == -INFINITY ? 0.0f : s2 * expf(m2 - mm);
    m = mm;
    s = a + b;
  }
};

template <class Tin, class Tout, bool kMasked>
__global__ void __launch_bounds__(kMaxThreads)
    softmax_kernel(const __grid_constant__ DeviceArgs args) {
  __shared__ float sm_m[32], sm_s[32];
  const auto& p = params_as<ops::SoftmaxParams>(args);
  const Tin* x = static_cast<const Tin*>(args.ptr[0]);
  const Tin* mask = kMasked ? static_cast<const Tin*>(args.ptr[1]) : nullptr;
  Tout* out = static_cast<Tout*>(args.ptr[kMasked ? 2 : 1]);
  const long long cols = p.cols;
  const float scale = p.scale;
  constexpr int V = 16 / sizeof(Tin);
  // A row (and a mask row) starts on a 16-byte boundary only when cols is a multiple of V.
  const bool vec = cols % V == 0 && aligned16(x) && aligned16(out) && (!kMasked || aligned16(mask));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
  for (long long row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const Tin* xr = x + row * cols;
    const Tin* mr = kMasked ? mask + (row % p.mask_rows) * cols : nullptr;
    Tout* orow = out + row * cols;
    auto value = [&](float xv, const Tin* mp) {
      float v = xv * scale;
      if constexpr (kMasked) v += to_f32(*mp);
      return v;
    };
    Online acc;
    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const Pack<Tin, V> xv = load_pack<Tin, V>(xr + i * V);
        Pack<Tin, V> mv;
        if constexpr (kMasked) mv = load_pack<Tin, V>(mr + i * V);
#pragma unroll
        for (int j = 0; j < V; ++j) acc.add(value(to_f32(xv.v[j]), kMasked ? &mv.v[j] : nullptr));
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        acc.add(value(to_f32(xr[i]), kMasked ? mr + i : nullptr));
      }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, acc.m, off);
      const float s2 = __shfl_xor_sync(0xffffffffu, acc.s, off);
      acc.merge(m2, s2);
    }
    if (lane == 0) {
      sm_m[warp] = acc.m;
      sm_s[warp] = acc.s;
    }
    __syncthreads();
    Online all;
    for (int w = 0; w < n_warps; ++w) all.merge(sm_m[w], sm_s[w]);
    __syncthreads();  // sm_m/sm_s are rewritten by the next row
    const float m = all.m;
    // A fully masked row (max -inf) is written as zeros.
    const float inv = m == -INFINITY ? 0.0f : 1.0f / all.s;
    const float shift = m == -INFINITY ? 0.0f : m;
    auto prob = [&](float v) { return expf(v - shift) * inv; };
    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const Pack<Tin, V> xv = load_pack<Tin, V>(xr + i * V);
        Pack<Tin, V> mv;
        if constexpr (kMasked) mv = load_pack<Tin, V>(mr + i * V);
        Pack<Tout, V> o;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          o.v[j] = from_f32<Tout>(prob(value(to_f32(xv.v[j]), kMasked ? &mv.v[j] : nullptr)));
        }
        store_pack<Tout, V>(orow + i * V, o);
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        orow[i] = from_f32<Tout>(prob(value(to_f32(xr[i]), kMasked ? mr + i : nullptr)));
      }
    }
  }
}

template <class Tin, class Tout, bool kMasked>
LaunchConfig softmax_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::SoftmaxParams>(args);
  constexpr int V = 16 / sizeof(Tin);
  long long threads = (p.cols + V - 1) / V;
  threads = (threads + 31) / 32 * 32;
  if (threads < 32) threads = 32;
  if (threads > kMaxThreads) threads = kMaxThreads;
  long long blocks = p.rows < 1 ? 1 : p.rows;
  if (blocks > kMaxRowBlocks) blocks = kMaxRowBlocks;
  return {reinterpret_cast<const void*>(&softmax_kernel<Tin, Tout, kMasked>),
          dim3(static_cast<unsigned int>(blocks)), dim3(static_cast<unsigned int>(threads)), 0};
}

template <class Tin, class Tout>
ConfigureFn pick(bool masked) {
  return masked ? &softmax_config<Tin, Tout, true> : &softmax_config<Tin, Tout, false>;
}

}  // namespace

ConfigureFn softmax_configure(DType src, DType dst, bool masked) {
  if (dst != src && dst != DType::F32) return nullptr;
  const bool same = dst == src;
  switch (src) {
    case DType::F32:
      return pick<float, float>(masked);
    case DType::F16:
      return same ? pick<__half, __half>(masked) : pick<__half, float>(masked);
    case DType::BF16:
      return same ? pick<__nv_bfloat16, __nv_bfloat16>(masked) : pick<__nv_bfloat16, float>(masked);
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
