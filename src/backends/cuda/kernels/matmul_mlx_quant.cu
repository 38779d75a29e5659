// Instantiations of the quantized matvec, tiled and dequantize kernels for MLX affine weights,
// bits 2-8, and the DecodeTiles layout of 4-bit weights.
#include <type_traits>

#include "backends/cuda/kernels/matmul_kernels.h"
#include "backends/cuda/kernels/matmul_mlx_matvec.cuh"
#include "backends/cuda/kernels/matmul_mlx_mma_matvec.cuh"
#include "backends/cuda/kernels/matmul_quant_dequant.cuh"
#include "backends/cuda/kernels/matmul_quant_matvec.cuh"
#include "backends/cuda/kernels/matmul_quant_tiled.cuh"

namespace mlxn::cuda {
namespace {

enum class Kind { Matvec, Tiled, Dequant };

bool decode_tiles(const DeviceArgs& args) {
  return params_as<ops::QuantMatmulParams>(args).layout == ops::kLayoutDecodeTiles;
}

// 4 bits, the one width with two code orders (ops::QuantLayout): each config picks its kernel by
// the weight's layout, which a graph update keeps, so a node never changes its function.
// Batch-1 bf16 decode over DecodeTiles is the tensor-core mat-vec; other mat-vecs over them the
// register one, and the tiled and dequantize kernels, with the tiled addressing.
template <class T>
LaunchConfig mlx4_matvec_config(const DeviceArgs& args) {
  using namespace qmm;
  if (!decode_tiles(args)) {
    return mlx_matvec_config<T, 4, kMlxMvRows, kMlxMvUnroll, kMlxMvMinBlocks<T>>(args);
  }
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (mlx_mma_matvec_eligible(params_as<ops::QuantMatmulParams>(args))) {
      return mlx_mma_matvec4_config(args);
    }
  }
  return mlx_matvec_config<T, 4, kMlxMvRows, kMlxMvUnroll, kMlxMvMinBlocks<T>, true>(args);
}

template <class T>
LaunchConfig mlx4_tiled_config(const DeviceArgs& args) {
  return decode_tiles(args) ? qmm::quant_tiled_config<T, qmm::MlxFormat<4, true>>(args)
                            : qmm::quant_tiled_config<T, qmm::MlxFormat<4>>(args);
}

template <class T>
LaunchConfig mlx4_dequant_config(const DeviceArgs& args) {
  return decode_tiles(args) ? qmm::quant_dequant_config<T, qmm::MlxFormat<4, true>>(args)
                            : qmm::quant_dequant_config<T, qmm::MlxFormat<4>>(args);
}

template <class T>
ConfigureFn matvec_for_bits(int bits) {
  using namespace qmm;
  // 4 and 8 bits, what MLX models ship in, have their own mat-vec (matmul_mlx_matvec.cuh).
  if (bits == 4) return &mlx4_matvec_config<T>;
  if (bits == 8) return &mlx_matvec_config<T, 8, kMlxMvRows, kMlxMvUnroll, kMlxMvMinBlocks<T>>;
  switch (bits) {
    case 2:
      return &quant_matvec_config<T, MlxFormat<2>>;
    case 3:
      return &quant_matvec_config<T, MlxFormat<3>>;
    case 5:
      return &quant_matvec_config<T, MlxFormat<5>>;
    case 6:
      return &quant_matvec_config<T, MlxFormat<6>>;
    default:
      return nullptr;
  }
}

template <class T, Kind kKind>
ConfigureFn for_bits(int bits) {
  using namespace qmm;
  if constexpr (kKind == Kind::Matvec) {
    return matvec_for_bits<T>(bits);
  } else {
    if (bits == 4) return kKind == Kind::Tiled ? &mlx4_tiled_config<T> : &mlx4_dequant_config<T>;
    switch (bits) {
#define MLXN_MLX_BITS(B)                                               \
  case B:                                                              \
    return kKind == Kind::Tiled ? &quant_tiled_config<T, MlxFormat<B>> \
                                : &quant_dequant_config<T, MlxFormat<B>>;
      MLXN_MLX_BITS(2)
      MLXN_MLX_BITS(3)
      MLXN_MLX_BITS(5)
      MLXN_MLX_BITS(6)
      MLXN_MLX_BITS(8)
#undef MLXN_MLX_BITS
      default:
        return nullptr;
    }
  }
}

template <Kind kKind>
ConfigureFn for_dtype(DType dtype, int bits) {
  switch (dtype) {
    case DType::F32:
      return for_bits<float, kKind>(bits);
    case DType::F16:
      return for_bits<__half, kKind>(bits);
    case DType::BF16:
      return for_bits<__nv_bfloat16, kKind>(bits);
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn mlx_quant_matvec_configure(DType dtype, int bits) {
  return for_dtype<Kind::Matvec>(dtype, bits);
}

ConfigureFn mlx_quant_tiled_configure(DType dtype, int bits) {
  return for_dtype<Kind::Tiled>(dtype, bits);
}

ConfigureFn mlx_quant_dequant_configure(DType dtype, int bits) {
  return for_dtype<Kind::Dequant>(dtype, bits);
}

ConfigureFn mlx_tile_decode_configure() {
  return &qmm::mlx_tile_decode_config;
}

}  // namespace mlxn::cuda
