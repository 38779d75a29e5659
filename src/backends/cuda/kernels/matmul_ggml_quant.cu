// Instantiations of the quantized matvec, tiled and dequantize kernels for GGML blocks (Q4_0,
// Q8_0, Q4_K, Q5_K, Q6_K).
#include "backends/cuda/kernels/matmul_kernels.h"
#include "backends/cuda/kernels/matmul_quant_dequant.cuh"
#include "backends/cuda/kernels/matmul_quant_matvec.cuh"
#include "backends/cuda/kernels/matmul_quant_tiled.cuh"

namespace mlxn::cuda {
namespace {

enum class Kind { Matvec, Tiled, Dequant };

template <class T, Kind kKind>
ConfigureFn for_type(const std::string& type) {
  using namespace qmm;
#define MLXN_GGML_TYPE(NAME, F)                                   \
  if (type == NAME)                                               \
    return kKind == Kind::Tiled     ? &quant_tiled_config<T, F>   \
           : kKind == Kind::Dequant ? &quant_dequant_config<T, F> \
                                    : &quant_matvec_config<T, F>;
  MLXN_GGML_TYPE("q4_0", Q4_0Format)
  MLXN_GGML_TYPE("q8_0", Q8_0Format)
  MLXN_GGML_TYPE("q4_K", Q4_KFormat)
  MLXN_GGML_TYPE("q5_K", Q5_KFormat)
  MLXN_GGML_TYPE("q6_K", Q6_KFormat)
#undef MLXN_GGML_TYPE
  return nullptr;
}

template <Kind kKind>
ConfigureFn for_dtype(DType dtype, const std::string& type) {
  switch (dtype) {
    case DType::F32:
      return for_type<float, kKind>(type);
    case DType::F16:
      return for_type<__half, kKind>(type);
    case DType::BF16:
      return for_type<__nv_bfloat16, kKind>(type);
    default:
      return nullptr;
  }
}

}  // namespace

ConfigureFn ggml_quant_matvec_configure(DType dtype, const std::string& type) {
  return for_dtype<Kind::Matvec>(dtype, type);
}

ConfigureFn ggml_quant_tiled_configure(DType dtype, const std::string& type) {
  return for_dtype<Kind::Tiled>(dtype, type);
}

ConfigureFn ggml_quant_dequant_configure(DType dtype, const std::string& type) {
  return for_dtype<Kind::Dequant>(dtype, type);
}

}  // namespace mlxn::cuda
