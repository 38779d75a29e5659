// The dequantize kernel (any weight format policy of matmul_quant_formats.cuh): w decoded into a
// dense [n, k] matrix in T, so that many rows of x can go through the cuBLASLt GEMM instead of
// the SIMT tiled kernel. One thread decodes 16 consecutive elements of a row with the format's
// dequant16 (what the tiled kernel uses) and writes them with 16-byte stores where aligned.
#pragma once

#include "backends/cuda/kernels/matmul_quant_formats.cuh"

namespace mlxn::cuda::qmm {

// Bindings: out (in x's place), then the weight's (MLX: packed, scales, biases; GGML: blocks).
template <class T, class P>
__global__ void __launch_bounds__(kElementwiseThreads)
    quant_dequant_kernel(const __grid_constant__ DeviceArgs args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  T* out = static_cast<T*>(args.ptr[0]);
  const WeightView wv = weight_view<P>(args, p, 0);
  const long long pieces = p.k / 16;  // 16-element pieces of a row (k is a multiple of 32)
  const long long total = p.n * pieces;
  // Rows of out start 16-byte aligned when out does: k * sizeof(T) is a multiple of 64.
  const bool vec = aligned16(out);
  for (long long i = global_thread(); i < total; i += grid_stride()) {
    const long long row = i / pieces, piece = i % pieces;
    float v[16];
    P::dequant16(wv, row, piece / 2, static_cast<int>(piece % 2), v);
    T* o = out + row * p.k + piece * 16;
    constexpr int V = 16 / sizeof(T);
    if (vec) {
#pragma unroll
      for (int c = 0; c < 16 / V; ++c) {
        Pack<T, V> pk;
#pragma unroll
        for (int j = 0; j < V; ++j) pk.v[j] = from_f32<T>(v[c * V + j]);
        store_pack<T, V>(o + c * V, pk);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 16; ++j) o[j] = from_f32<T>(v[j]);
    }
  }
}

template <class T, class P>
LaunchConfig quant_dequant_config(const DeviceArgs& args) {
  const auto& p = params_as<ops::QuantMatmulParams>(args);
  const unsigned int blocks =
      blocks_for(p.n * (p.k / 16), kElementwiseThreads, kMaxElementwiseBlocks);
  return {reinterpret_cast<const void*>(&quant_dequant_kernel<T, P>), dim3(blocks),
          dim3(kElementwiseThreads), 0};
}

}  // namespace mlxn::cuda::qmm
