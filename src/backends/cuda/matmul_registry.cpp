// Registers the matmul family's CUDA kernels: dense matvec/matmul (cuBLASLt), MLX and GGML
// quantized matvec/matmul, each keyed by dtype plus bits (MLX) or type (GGML).
#include <optional>
#include <string>

#include "backends/cuda/kernels/fused_decode_scales_kernels.h"
#include "backends/cuda/kernels/matmul_kernels.h"
#include "backends/cuda/registry_helpers.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cuda {
namespace {

template <class Make>
KernelFactory factory(Make make) {
  return [make](const Specialization& spec) -> const void* {
    const std::optional<DType> dtype = spec_float_dtype(spec, "dtype");
    if (!dtype) return nullptr;
    const ConfigureFn fn = make(*dtype, spec);
    return fn ? entry_of(fn) : nullptr;
  };
}

// 0 (no kernel) when absent or not one of the supported widths.
int bits_of(const Specialization& spec) {
  if (!spec.has("bits")) return 0;
  const std::string& v = spec.get("bits");
  return v.size() == 1 && v[0] >= '2' && v[0] <= '8' ? v[0] - '0' : 0;
}

std::string type_of(const Specialization& spec) {
  return spec.has("type") ? spec.get("type") : std::string();
}

}  // namespace

void register_matmul_kernels(KernelRegistry& registry) {
  registry.register_factory(
      "matvec", factory([](DType d, const Specialization&) { return dense_matvec_configure(d); }));
  registry.register_factory(
      "matmul", factory([](DType d, const Specialization&) { return dense_matmul_configure(d); }));
  registry.register_factory("matmul_id", factory([](DType d, const Specialization&) {
                              return dense_matmul_id_configure(d);
                            }));
  registry.register_factory("quantized_matvec", factory([](DType d, const Specialization& s) {
                              return mlx_quant_matvec_configure(d, bits_of(s));
                            }));
  registry.register_factory("quantized_matmul", factory([](DType d, const Specialization& s) {
                              return mlx_quant_tiled_configure(d, bits_of(s));
                            }));
  registry.register_factory("quantized_dequant", factory([](DType d, const Specialization& s) {
                              return mlx_quant_dequant_configure(d, bits_of(s));
                            }));
  registry.register_factory("quantized_tile_decode", [](const Specialization&) -> const void* {
    return entry_of(mlx_tile_decode_configure());
  });
  registry.register_factory("fused_decode_scales", [](const Specialization&) -> const void* {
    return entry_of(fused_decode_scales_configure());
  });
  registry.register_factory("ggml_dequant", factory([](DType d, const Specialization& s) {
                              return ggml_quant_dequant_configure(d, type_of(s));
                            }));
  registry.register_factory("ggml_matvec", factory([](DType d, const Specialization& s) {
                              return ggml_quant_matvec_configure(d, type_of(s));
                            }));
  registry.register_factory("ggml_matmul", factory([](DType d, const Specialization& s) {
                              return ggml_quant_tiled_configure(d, type_of(s));
                            }));
}

}  // namespace mlxn::cuda
