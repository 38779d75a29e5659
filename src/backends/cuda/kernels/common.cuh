// Device helpers shared by the kernels: dtype conversions, 16-byte packs and launch-shape math.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/kernel_abi.h"

namespace mlxn::cuda {

// Elementwise kernels cap their grid and stride over the rest: a launch never exceeds the grid
// limits, and 65535 blocks of 256 threads are dozens of waves on any GPU we ship for.
inline constexpr int kElementwiseThreads = 256;
inline constexpr long long kMaxElementwiseBlocks = 65535;

/// Blocks of `threads` to cover `work` items, at least 1 and at most `cap`.
__host__ __device__ inline unsigned int blocks_for(long long work, int threads, long long cap) {
  long long blocks = (work + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > cap) blocks = cap;
  return static_cast<unsigned int>(blocks);
}

template <class T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

/// f32 -> T, round to nearest even (the only rounding our ops do).
template <class T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

/// V elements of T moved as whole 16-byte transactions (V * sizeof(T) is a multiple of 16).
template <class T, int V>
struct alignas(16) Pack {
  static_assert((V * sizeof(T)) % 16 == 0, "a pack is whole 16-byte words");
  T v[V];
};

template <class T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, V>*>(p);
}

template <class T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& pack) {
  *reinterpret_cast<Pack<T, V>*>(p) = pack;
}

__device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

/// Global thread index and grid stride as 64-bit values (tensors may exceed 2^31 elements).
__device__ __forceinline__ long long global_thread() {
  return static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ long long grid_stride() {
  return static_cast<long long>(gridDim.x) * blockDim.x;
}

/// Programmatic dependent launch (sm_90+). A kernel whose LaunchConfig sets `pdl` may start
/// while the previous kernel of its stream still runs: pdl_wait() blocks until that kernel has
/// finished and its writes are visible, so it must come before the first access to memory that
/// earlier work writes or reads. pdl_trigger() lets the next such kernel launch: called right
/// after the wait, the next kernel's blocks are scheduled onto free SM slots while this one runs,
/// and its launch latency is gone by the time it may proceed. (Prefetching a mat-vec's weights
/// into L2 before the wait measured slower on the H100: docs/perf.md, issue 7.) Both are no-ops
/// for a launch without the attribute and on older GPUs.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
/// The start of a kernel with nothing to do before its inputs are ready.
__device__ __forceinline__ void pdl_enter() {
  pdl_wait();
  pdl_trigger();
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

}  // namespace mlxn::cuda
