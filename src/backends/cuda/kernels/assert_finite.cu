// assert_finite: fails the submission (status kStatusNonFinite, info = index) on a NaN or infinity.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/kernels.h"
#include "ops/op_params.h"

namespace mlxn::cuda {
namespace {

constexpr unsigned long long kNone = ~0ull;

// Exponent all ones = infinity or NaN; tested on the bits so no float compare can be fooled.
__device__ __forceinline__ bool non_finite(float v) {
  return (__float_as_uint(v) & 0x7f800000u) == 0x7f800000u;
}
__device__ __forceinline__ bool non_finite(__half v) {
  return (__half_as_ushort(v) & 0x7c00u) == 0x7c00u;
}
__device__ __forceinline__ bool non_finite(__nv_bfloat16 v) {
  return (__bfloat16_as_ushort(v) & 0x7f80u) == 0x7f80u;
}

__device__ __forceinline__ unsigned long long warp_min(unsigned long long v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o < v ? o : v;
  }
  return v;
}

template <class T>
__global__ void __launch_bounds__(kElementwiseThreads)
    assert_finite_kernel(const __grid_constant__ DeviceArgs args) {
  const auto& p = params_as<ops::AssertFiniteParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const long long n = p.n;
  const long long tid = global_thread();
  const long long stride = grid_stride();
  unsigned long long bad = kNone;  // smallest offending index this thread saw
  if (aligned16(x)) {
    constexpr int V = 16 / sizeof(T);
    const long long n_vec = n / V;
    for (long long i = tid; i < n_vec; i += stride) {
      const Pack<T, V> v = load_pack<T, V>(x + i * V);
      // Branch-free test of the whole pack first; indices only on the (rare) failing path.
      bool any = false;
#pragma unroll
      for (int j = 0; j < V; ++j) any |= non_finite(v.v[j]);
      if (any) {
        for (int j = 0; j < V; ++j) {
          if (non_finite(v.v[j]) && static_cast<unsigned long long>(i * V + j) < bad) {
            bad = i * V + j;
          }
        }
      }
    }
    const long long i = n_vec * V + tid;
    if (i < n && non_finite(x[i]) && static_cast<unsigned long long>(i) < bad) bad = i;
  } else {
    for (long long i = tid; i < n; i += stride) {
      if (non_finite(x[i]) && static_cast<unsigned long long>(i) < bad) bad = i;
    }
  }
  // Every lane reaches this point (no early exit), so a full-mask shuffle is valid. One report
  // per warp keeps host-memory atomics rare even when every element is bad.
  bad = warp_min(bad);
  if ((threadIdx.x & 31u) == 0 && bad != kNone) report_status(args, ops::kStatusNonFinite, bad);
}

template <class T>
LaunchConfig assert_finite_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::AssertFiniteParams>(args);
  constexpr int V = 16 / sizeof(T);
  const unsigned int blocks =
      blocks_for((p.n + V - 1) / V, kElementwiseThreads, kMaxElementwiseBlocks);
  return {reinterpret_cast<const void*>(&assert_finite_kernel<T>), dim3(blocks),
          dim3(kElementwiseThreads), 0};
}

}  // namespace

ConfigureFn assert_finite_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &assert_finite_config<float>;
    case DType::F16:
      return &assert_finite_config<__half>;
    case DType::BF16:
      return &assert_finite_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
