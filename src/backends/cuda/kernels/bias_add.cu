// ops::bias_add on CUDA: out[r, :] = x[r, :] + bias over a flat grid-stride loop, with 16-byte
// loads when every row starts aligned (n a multiple of the pack and all three bases aligned).
#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/kernels.h"
#include "ops/bias_add_params.h"

namespace mlxn::cuda {
namespace {

// Computed in f32 and rounded once to T, as the CPU kernel does. No __restrict__: out may alias
// x (each element is read before the same thread writes it).
template <class T>
__global__ void __launch_bounds__(kElementwiseThreads)
    bias_add_rows_kernel(const __grid_constant__ DeviceArgs args) {
  const auto& p = params_as<ops::BiasAddParams>(args);
  const T* x = static_cast<const T*>(args.ptr[0]);
  const T* bias = static_cast<const T*>(args.ptr[1]);
  T* out = static_cast<T*>(args.ptr[2]);
  constexpr int V = 16 / sizeof(T);
  const long long total = p.rows * p.n;
  // Uniform over the launch. With n % V == 0 a pack never straddles two rows, and its bias
  // slice starts at a multiple of V, hence aligned too.
  if (p.n % V == 0 && aligned16(x) && aligned16(bias) && aligned16(out)) {
    const long long n_vec = total / V;
    for (long long i = global_thread(); i < n_vec; i += grid_stride()) {
      const Pack<T, V> xv = load_pack<T, V>(x + i * V);
      const Pack<T, V> bv = load_pack<T, V>(bias + (i * V) % p.n);
      Pack<T, V> r;
#pragma unroll
      for (int j = 0; j < V; ++j) r.v[j] = from_f32<T>(to_f32(xv.v[j]) + to_f32(bv.v[j]));
      store_pack<T, V>(out + i * V, r);
    }
  } else {
    for (long long i = global_thread(); i < total; i += grid_stride()) {
      out[i] = from_f32<T>(to_f32(x[i]) + to_f32(bias[i % p.n]));
    }
  }
}

template <class T>
LaunchConfig bias_add_rows_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::BiasAddParams>(args);
  constexpr int V = 16 / sizeof(T);
  const unsigned int blocks =
      blocks_for((p.rows * p.n + V - 1) / V, kElementwiseThreads, kMaxElementwiseBlocks);
  return {reinterpret_cast<const void*>(&bias_add_rows_kernel<T>), dim3(blocks),
          dim3(kElementwiseThreads), 0};
}

}  // namespace

ConfigureFn bias_add_rows_configure(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return &bias_add_rows_config<float>;
    case DType::F16:
      return &bias_add_rows_config<__half>;
    case DType::BF16:
      return &bias_add_rows_config<__nv_bfloat16>;
    default:
      return nullptr;
  }
}

}  // namespace mlxn::cuda
