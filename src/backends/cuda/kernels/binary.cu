// Elementwise binary kernels (add, mul) for f32, f16 and bf16, with 16-byte vector loads.
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/kernels.h"
#include "ops/op_params.h"

namespace mlxn::cuda {
namespace {

struct AddOp {
  __device__ __forceinline__ static float apply(float a, float b) { return a + b; }
};
struct MulOp {
  __device__ __forceinline__ static float apply(float a, float b) { return a * b; }
};

// out[i] = a[i] (op) b[i]. Computed in f32 and rounded once to T, as the CPU kernel does.
// No __restrict__: out may alias a or b (each element is read before the same thread writes it).
template <class T, class Op>
__global__ void __launch_bounds__(kElementwiseThreads)
    binary_kernel(const __grid_constant__ DeviceArgs args) {
  pdl_enter();
  const auto& p = params_as<ops::BinaryParams>(args);
  const T* a = static_cast<const T*>(args.ptr[0]);
  const T* b = static_cast<const T*>(args.ptr[1]);
  T* out = static_cast<T*>(args.ptr[2]);
  const long long n = p.n;
  const long long tid = global_thread();
  const long long stride = grid_stride();
  // Uniform branch: the alignment is the same for every thread of the launch.
  if (aligned16(a) && aligned16(b) && aligned16(out)) {
    constexpr int V = 16 / sizeof(T);
    const long long n_vec = n / V;
    for (long long i = tid; i < n_vec; i += stride) {
      const Pack<T, V> va = load_pack<T, V>(a + i * V);
      const Pack<T, V> vb = load_pack<T, V>(b + i * V);
      Pack<T, V> r;
#pragma unroll
      for (int j = 0; j < V; ++j) r.v[j] = from_f32<T>(Op::apply(to_f32(va.v[j]), to_f32(vb.v[j])));
      store_pack<T, V>(out + i * V, r);
    }
    // Fewer than V elements remain; the stride is at least one block, so one pass covers them.
    const long long i = n_vec * V + tid;
    if (i < n) out[i] = from_f32<T>(Op::apply(to_f32(a[i]), to_f32(b[i])));
  } else {
    for (long long i = tid; i < n; i += stride) {
      out[i] = from_f32<T>(Op::apply(to_f32(a[i]), to_f32(b[i])));
    }
  }
}

template <class T, class Op>
LaunchConfig binary_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::BinaryParams>(args);
  constexpr int V = 16 / sizeof(T);
  const unsigned int blocks =
      blocks_for((p.n + V - 1) / V, kElementwiseThreads, kMaxElementwiseBlocks);
  return {reinterpret_cast<const void*>(&binary_kernel<T, Op>), dim3(blocks),
          dim3(kElementwiseThreads), 0, true};
}

template <class Op>
ConfigureFn binary_for(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &binary_config<float, Op>;
    case DType::F16:
      return &binary_config<__half, Op>;
    case DType::BF16:
      return &binary_config<__nv_bfloat16, Op>;
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn binary_configure(BinaryOp op, DType dtype) {
  switch (op) {
    case BinaryOp::Add:
      return binary_for<AddOp>(dtype);
    case BinaryOp::Mul:
      return binary_for<MulOp>(dtype);
  }
  return nullptr;
}

}  // namespace mlxn::cuda
