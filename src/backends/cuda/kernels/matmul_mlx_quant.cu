// Instantiations of the quantized matvec and tiled kernels for MLX affine weights, bits 2-8.
#include "backends/cuda/kernels/matmul_kernels.h"
#include "backends/cuda/kernels/matmul_quant_matvec.cuh"
#include "backends/cuda/kernels/matmul_quant_tiled.cuh"

namespace mlxn::cuda {
namespace {

template <class T, bool kTiled>
ConfigureFn for_bits(int bits) {
  using namespace qmm;
  switch (bits) {
#define MLXN_MLX_BITS(B) \
  case B:                \
    return kTiled ? &quant_tiled_config<T, MlxFormat<B>> : &quant_matvec_config<T, MlxFormat<B>>;
    MLXN_MLX_BITS(2)
    MLXN_MLX_BITS(3)
    MLXN_MLX_BITS(4)
    MLXN_MLX_BITS(5)
    MLXN_MLX_BITS(6)
    MLXN_MLX_BITS(8)
#undef MLXN_MLX_BITS
    default:
      return nullptr;
  }
}

template <bool kTiled>
ConfigureFn for_dtype(DType dtype, int bits) {
  switch (dtype) {
    case DType::F32:
      return for_bits<float, kTiled>(bits);
    case DType::F16:
      return for_bits<__half, kTiled>(bits);
    case DType::BF16:
      return for_bits<__nv_bfloat16, kTiled>(bits);
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn mlx_quant_matvec_configure(DType dtype, int bits) {
  return for_dtype<false>(dtype, bits);
}

ConfigureFn mlx_quant_tiled_configure(DType dtype, int bits) {
  return for_dtype<true>(dtype, bits);
}

}  // namespace mlxn::cuda
