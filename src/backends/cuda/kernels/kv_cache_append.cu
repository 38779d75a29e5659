// kv_cache_append: copies each new token's K/V rows into the head-major cache at its slot,
// converting dtypes, with 16-byte loads and stores where the rows allow them.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/kv_cache_kernels.h"
#include "ops/kv_cache_params.h"

namespace mlxn::cuda {
namespace {

constexpr int kThreads = 128;
constexpr long long kMaxBlocks = 1ll << 20;

// Eight elements of T widened to f32 / narrowed from f32. p is 16-byte aligned (for f32 the eight
// span two 16-byte words, both aligned because p is).
template <class T>
__device__ __forceinline__ void load8(const T* p, float* f) {
  if constexpr (sizeof(T) == 4) {
    const Pack<T, 4> a = load_pack<T, 4>(p), b = load_pack<T, 4>(p + 4);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      f[j] = to_f32(a.v[j]);
      f[j + 4] = to_f32(b.v[j]);
    }
  } else {
    const Pack<T, 8> a = load_pack<T, 8>(p);
#pragma unroll
    for (int j = 0; j < 8; ++j) f[j] = to_f32(a.v[j]);
  }
}

template <class T>
__device__ __forceinline__ void store8(T* p, const float* f) {
  if constexpr (sizeof(T) == 4) {
    Pack<T, 4> a, b;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      a.v[j] = from_f32<T>(f[j]);
      b.v[j] = from_f32<T>(f[j + 4]);
    }
    store_pack<T, 4>(p, a);
    store_pack<T, 4>(p + 4, b);
  } else {
    Pack<T, 8> a;
#pragma unroll
    for (int j = 0; j < 8; ++j) a.v[j] = from_f32<T>(f[j]);
    store_pack<T, 8>(p, a);
  }
}

// grid min(n_tokens, kMaxBlocks) striding over tokens, block kThreads. One block writes every
// head of one token, so the ring "greatest position wins" test runs once per token.
template <class Ts, class Td>
__global__ void __launch_bounds__(kThreads) append_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::KvCacheAppendParams>(args);
  const Ts* k_new = static_cast<const Ts*>(args.ptr[0]);
  const Ts* v_new = static_cast<const Ts*>(args.ptr[1]);
  const int* positions = static_cast<const int*>(args.ptr[2]);
  Td* k_cache = static_cast<Td*>(args.ptr[3]);
  Td* v_cache = static_cast<Td*>(args.ptr[4]);
  const long long row = p.head_dim;
  const long long n = p.n_kv_heads * row;  // elements of one token
  // Eight-element groups never straddle a row when row % 8 == 0; all bases aligned makes every
  // group's address aligned (token and head offsets are multiples of 8 elements too).
  const bool vec = row % 8 == 0 && aligned16(k_new) && aligned16(v_new) && aligned16(k_cache) &&
                   aligned16(v_cache);

  for (long long t = blockIdx.x; t < p.n_tokens; t += gridDim.x) {
    const long long pos = positions[t];  // the same for the whole block: branches are uniform
    if (pos < 0 || (!p.ring && pos >= p.capacity)) {
      if (threadIdx.x == 0) report_status(args, ops::kStatusKvPositionOutOfRange, t);
      continue;
    }
    const long long slot = p.ring ? pos % p.capacity : pos;
    if (p.ring && p.n_tokens > 1) {
      // Skip a token that a later position of this call overwrites anyway (and must win).
      bool superseded = false;
      for (long long i = threadIdx.x; i < p.n_tokens; i += kThreads) {
        const long long other = positions[i];
        superseded |= other > pos && other % p.capacity == slot;
      }
      if (__syncthreads_or(superseded)) continue;
    }
    const Ts* ks = k_new + t * n;
    const Ts* vs = v_new + t * n;
    if (vec) {
      for (long long i = threadIdx.x; i < n / 8; i += kThreads) {
        const long long e = i * 8, h = e / row, d = e % row;
        const long long dst = (h * p.capacity + slot) * row + d;
        float f[8];
        load8(ks + e, f);
        store8(k_cache + dst, f);
        load8(vs + e, f);
        store8(v_cache + dst, f);
      }
    } else {
      for (long long i = threadIdx.x; i < n; i += kThreads) {
        const long long h = i / row, d = i % row;
        const long long dst = (h * p.capacity + slot) * row + d;
        k_cache[dst] = from_f32<Td>(to_f32(ks[i]));
        v_cache[dst] = from_f32<Td>(to_f32(vs[i]));
      }
    }
  }
}

template <class Ts, class Td>
LaunchConfig append_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::KvCacheAppendParams>(args);
  long long blocks = p.n_tokens < 1 ? 1 : p.n_tokens;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  return {reinterpret_cast<const void*>(&append_kernel<Ts, Td>),
          dim3(static_cast<unsigned int>(blocks)), dim3(kThreads), 0, true};
}

template <class Ts>
ConfigureFn append_for(DType dst) {
  switch (dst) {
    case DType::F32:
      return &append_config<Ts, float>;
    case DType::F16:
      return &append_config<Ts, __half>;
    case DType::BF16:
      return &append_config<Ts, __nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn kv_cache_append_configure(DType src, DType dst) {
  switch (src) {
    case DType::F32:
      return append_for<float>(dst);
    case DType::F16:
      return append_for<__half>(dst);
    case DType::BF16:
      return append_for<__nv_bfloat16>(dst);
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
