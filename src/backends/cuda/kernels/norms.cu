// Row-normalization kernels of norms.h: RMSNorm with a weight offset (Gemma, qk-norm), L2 norm,
// residual add + RMSNorm, LayerNorm. f32 accumulation; a warp per row for short rows (qk-norm's
// head_dim), a block per row otherwise; 16-byte packs when rows are 16-byte aligned.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/norms_kernels.h"
#include "ops/norms_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kMaxThreads = 1024;
constexpr int kWarpRowsPerBlock = 8;         // rows per block in the warp-per-row layout
constexpr long long kMaxBlocks = 1ll << 20;  // further rows are strided over

// Reduction states: a plain sum of squares, and (count, mean, M2) moments for LayerNorm, merged
// with Chan's formula so the variance never suffers the cancellation of E[x^2] - E[x]^2.
struct SumSq {
  float s;
};
__device__ __forceinline__ SumSq combine(SumSq a, SumSq b) {
  return {a.s + b.s};
}
__device__ __forceinline__ SumSq shfl_xor(SumSq a, int off) {
  return {__shfl_xor_sync(0xffffffffu, a.s, off)};
}
__device__ __forceinline__ SumSq shfl(SumSq a, int lane) {
  return {__shfl_sync(0xffffffffu, a.s, lane)};
}

struct Moments {
  float n, mean, m2;
};
__device__ __forceinline__ Moments combine(Moments a, Moments b) {
  if (a.n == 0.0f) return b;
  if (b.n == 0.0f) return a;
  const float n = a.n + b.n;
  const float d = b.mean - a.mean;
  const float fb = b.n / n;
  return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
}
__device__ __forceinline__ Moments shfl_xor(Moments a, int off) {
  return {__shfl_xor_sync(0xffffffffu, a.n, off), __shfl_xor_sync(0xffffffffu, a.mean, off),
          __shfl_xor_sync(0xffffffffu, a.m2, off)};
}
__device__ __forceinline__ Moments shfl(Moments a, int lane) {
  return {__shfl_sync(0xffffffffu, a.n, lane), __shfl_sync(0xffffffffu, a.mean, lane),
          __shfl_sync(0xffffffffu, a.m2, lane)};
}

template <class S>
__device__ __forceinline__ S warp_reduce(S v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = combine(v, shfl_xor(v, off));
  // Lanes may differ in the last bit (Moments merges are order-dependent): take lane 0's.
  return shfl(v, 0);
}

/// Reduces `v` over the threads of one row and returns the total to each of them. A row is one
/// warp when blockDim.x == 32 (blockDim.y rows per block), else the whole block (blockDim.y == 1,
/// blockDim.x a multiple of 32). `scratch` holds 33 entries. Every thread of the row must call it.
template <class S>
__device__ __forceinline__ S row_reduce(S v, S* scratch) {
  v = warp_reduce(v);
  if (blockDim.x == 32) return v;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    S s = lane < static_cast<int>(blockDim.x >> 5) ? scratch[lane] : S{};
    s = warp_reduce(s);
    if (lane == 0) scratch[32] = s;
  }
  __syncthreads();
  const S total = scratch[32];
  __syncthreads();  // the next row's writes to scratch wait until everyone has read the total
  return total;
}

// RMSNorm family. kResidual: h = x + residual is stored (rounded to T) and normalized; kWeight:
// multiply by (w + weight_offset); kMean: mean of squares (RMS) rather than the sum (L2).
// Pass 2 re-reads only elements this thread touched in pass 1 (same index mapping), so h, x and
// out may alias as norms.h allows without extra barriers. A thread's first pack (with its weight
// pack, requested in pass 1) stays in registers, so a row of up to V x blockDim elements (8,192
// bf16: a decode step's hidden state) needs no load after the reduction: the weight load was a
// round trip on the critical path of every add + norm of a decode step (MLX 4-bit decode on the
// H100: 321.5 / 322.4 tok/s against 319.7 / 319.7 re-reading them, docs/perf.md).
template <class T, bool kResidual, bool kWeight, bool kMean>
__global__ void __launch_bounds__(kMaxThreads) rms_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  __shared__ SumSq scratch[33];
  const auto& p = params_as<ops::RowNormParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const T* res = kResidual ? static_cast<const T*>(args.ptr[1]) : nullptr;
  const T* w = kWeight ? static_cast<const T*>(args.ptr[kResidual ? 2 : 1]) : nullptr;
  T* h = kResidual ? static_cast<T*>(args.ptr[3]) : nullptr;
  T* out = static_cast<T*>(args.ptr[kResidual ? 4 : (kWeight ? 2 : 1)]);
  const long long cols = p.cols;
  constexpr int V = 16 / sizeof(T);
  // Rows start on 16-byte boundaries only when cols is a multiple of V.
  const bool vec = cols % V == 0 && aligned16(x) && aligned16(out) && (!kWeight || aligned16(w)) &&
                   (!kResidual || (aligned16(res) && aligned16(h)));
  const long long row_step = static_cast<long long>(gridDim.x) * blockDim.y;
  for (long long row = static_cast<long long>(blockIdx.x) * blockDim.y + threadIdx.y; row < p.rows;
       row += row_step) {
    const long long base = row * cols;
    float ss = 0.0f;
    Pack<T, V> first_s, first_w;  // this thread's first pack of src (see below) and of w
    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const Pack<T, V> xv = load_pack<T, V>(x + base + i * V);
        const bool first = i == threadIdx.x;
        if constexpr (kWeight) {
          if (first) first_w = load_pack<T, V>(w + i * V);
        }
        if (first) first_s = xv;
        if constexpr (kResidual) {
          const Pack<T, V> rv = load_pack<T, V>(res + base + i * V);
          Pack<T, V> hv;
#pragma unroll
          for (int j = 0; j < V; ++j) {
            hv.v[j] = from_f32<T>(to_f32(xv.v[j]) + to_f32(rv.v[j]));
            const float f = to_f32(hv.v[j]);
            ss += f * f;
          }
          store_pack<T, V>(h + base + i * V, hv);
          if (first) first_s = hv;
        } else {
#pragma unroll
          for (int j = 0; j < V; ++j) {
            const float f = to_f32(xv.v[j]);
            ss += f * f;
          }
        }
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        float f = to_f32(x[base + i]);
        if constexpr (kResidual) {
          const T hv = from_f32<T>(f + to_f32(res[base + i]));
          h[base + i] = hv;
          f = to_f32(hv);
        }
        ss += f * f;
      }
    }
    ss = row_reduce(SumSq{ss}, scratch).s;
    const float inv = 1.0f / sqrtf((kMean ? ss / static_cast<float>(cols) : ss) + p.eps);

    const T* src = kResidual ? h : x;  // the normalized values: h as stored, or x
    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const bool first = i == threadIdx.x;
        const Pack<T, V> sv = first ? first_s : load_pack<T, V>(src + base + i * V);
        Pack<T, V> wv;
        if constexpr (kWeight) wv = first ? first_w : load_pack<T, V>(w + i * V);
        Pack<T, V> o;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          float f = to_f32(sv.v[j]) * inv;
          if constexpr (kWeight) f *= to_f32(wv.v[j]) + p.weight_offset;
          o.v[j] = from_f32<T>(f);
        }
        store_pack<T, V>(out + base + i * V, o);
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        float f = to_f32(src[base + i]) * inv;
        if constexpr (kWeight) f *= to_f32(w[i]) + p.weight_offset;
        out[base + i] = from_f32<T>(f);
      }
    }
  }
}

// LayerNorm: out = (x - mean) / sqrt(var + eps) * w (+ b), biased variance. Pass 1 merges
// per-pack moments (exact two-pass within the registers of a pack) into per-thread moments.
template <class T, bool kBias>
__global__ void __launch_bounds__(kMaxThreads)
    layer_norm_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  __shared__ Moments scratch[33];
  const auto& p = params_as<ops::RowNormParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const T* w = static_cast<const T*>(args.ptr[1]);
  const T* b = kBias ? static_cast<const T*>(args.ptr[2]) : nullptr;
  T* out = static_cast<T*>(args.ptr[kBias ? 3 : 2]);
  const long long cols = p.cols;
  constexpr int V = 16 / sizeof(T);
  const bool vec =
      cols % V == 0 && aligned16(x) && aligned16(w) && aligned16(out) && (!kBias || aligned16(b));
  const long long row_step = static_cast<long long>(gridDim.x) * blockDim.y;
  for (long long row = static_cast<long long>(blockIdx.x) * blockDim.y + threadIdx.y; row < p.rows;
       row += row_step) {
    const long long base = row * cols;
    Moments m{0.0f, 0.0f, 0.0f};
    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const Pack<T, V> xv = load_pack<T, V>(x + base + i * V);
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < V; ++j) sum += to_f32(xv.v[j]);
        const float mean = sum / static_cast<float>(V);
        float m2 = 0.0f;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float d = to_f32(xv.v[j]) - mean;
          m2 += d * d;
        }
        m = combine(m, Moments{static_cast<float>(V), mean, m2});
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        m = combine(m, Moments{1.0f, to_f32(x[base + i]), 0.0f});
      }
    }
    m = row_reduce(m, scratch);
    const float mean = m.mean;
    const float inv = 1.0f / sqrtf(m.m2 / static_cast<float>(cols) + p.eps);

    if (vec) {
      for (long long i = threadIdx.x; i < cols / V; i += blockDim.x) {
        const Pack<T, V> xv = load_pack<T, V>(x + base + i * V);
        const Pack<T, V> wv = load_pack<T, V>(w + i * V);
        Pack<T, V> bv;
        if constexpr (kBias) bv = load_pack<T, V>(b + i * V);
        Pack<T, V> o;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          float f = (to_f32(xv.v[j]) - mean) * inv * to_f32(wv.v[j]);
          if constexpr (kBias) f += to_f32(bv.v[j]);
          o.v[j] = from_f32<T>(f);
        }
        store_pack<T, V>(out + base + i * V, o);
      }
    } else {
      for (long long i = threadIdx.x; i < cols; i += blockDim.x) {
        float f = (to_f32(x[base + i]) - mean) * inv * to_f32(w[i]);
        if constexpr (kBias) f += to_f32(b[i]);
        out[base + i] = from_f32<T>(f);
      }
    }
  }
}

// A warp per row when the row is at most 32 packs (qk-norm's head_dim), else one block per row
// with one pack per thread up to 1024 threads (wider rows stride).
template <class T>
LaunchConfig row_config(const void* func, const DeviceArgs& args) {
  const auto& p = params_as<ops::RowNormParams>(args);
  constexpr int V = 16 / sizeof(T);
  const long long packs = (p.cols + V - 1) / V;
  if (packs <= 32) {
    long long blocks = (p.rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock;
    blocks = blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks);
    return {func, dim3(static_cast<unsigned int>(blocks)), dim3(32, kWarpRowsPerBlock), 0, true};
  }
  long long threads = (packs + 31) / 32 * 32;
  if (threads > kMaxThreads) threads = kMaxThreads;
  long long blocks = p.rows < 1 ? 1 : (p.rows > kMaxBlocks ? kMaxBlocks : p.rows);
  return {func, dim3(static_cast<unsigned int>(blocks)), dim3(static_cast<unsigned int>(threads)),
          0, true};
}

template <class T, NormKind kKind>
LaunchConfig norm_config(const DeviceArgs& args) {
  const void* func = nullptr;
  if constexpr (kKind == NormKind::RmsOffset) {
    func = reinterpret_cast<const void*>(&rms_kernel<T, false, true, true>);
  } else if constexpr (kKind == NormKind::L2) {
    func = reinterpret_cast<const void*>(&rms_kernel<T, false, false, false>);
  } else if constexpr (kKind == NormKind::AddRms) {
    func = reinterpret_cast<const void*>(&rms_kernel<T, true, true, true>);
  } else if constexpr (kKind == NormKind::LayerNorm) {
    func = reinterpret_cast<const void*>(&layer_norm_kernel<T, false>);
  } else {
    func = reinterpret_cast<const void*>(&layer_norm_kernel<T, true>);
  }
  return row_config<T>(func, args);
}

template <NormKind kKind>
ConfigureFn for_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &norm_config<float, kKind>;
    case DType::F16:
      return &norm_config<__half, kKind>;
    case DType::BF16:
      return &norm_config<__nv_bfloat16, kKind>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn norm_configure(NormKind kind, DType dtype) {
  switch (kind) {
    case NormKind::RmsOffset:
      return for_dtype<NormKind::RmsOffset>(dtype);
    case NormKind::L2:
      return for_dtype<NormKind::L2>(dtype);
    case NormKind::AddRms:
      return for_dtype<NormKind::AddRms>(dtype);
    case NormKind::LayerNorm:
      return for_dtype<NormKind::LayerNorm>(dtype);
    case NormKind::LayerNormBias:
      return for_dtype<NormKind::LayerNormBias>(dtype);
  }
  return nullptr;
}

}  // namespace mlxn::cuda
