// Registers the builtin CUDA kernels: maps kernel name + specialization to a ConfigureFn.
#include <optional>
#include <string>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/kernels/attention_kernels.h"
#include "backends/cuda/kernels/fused_decode_kernels.h"
#include "backends/cuda/kernels/kernels.h"
#include "backends/cuda/kernels/kv_cache_kernels.h"
#include "backends/cuda/kernels/matmul_kernels.h"
#include "backends/cuda/kernels/pointwise_kernels.h"
#include "backends/cuda/kernels/sampling_kernels.h"
#include "backends/cuda/registry_helpers.h"

namespace mlxn::cuda {

void register_cuda_kernels(KernelRegistry& registry) {
  register_matmul_kernels(registry);
  register_sampling_kernels(registry);
  register_pointwise_kernels(registry);
  register_attention_kernels(registry);
  register_kv_cache_kernels(registry);
  registry.register_factory(
      "add", by_float_dtype([](DType d) { return binary_configure(BinaryOp::Add, d); }));
  registry.register_factory(
      "mul", by_float_dtype([](DType d) { return binary_configure(BinaryOp::Mul, d); }));
  registry.register_factory("rms_norm",
                            by_float_dtype([](DType d) { return rms_norm_configure(d, false); }));
  registry.register_factory("rms_norm_mul",
                            by_float_dtype([](DType d) { return rms_norm_configure(d, true); }));
  registry.register_factory("assert_finite",
                            by_float_dtype([](DType d) { return assert_finite_configure(d); }));
  registry.register_factory("bias_add",
                            by_float_dtype([](DType d) { return bias_add_rows_configure(d); }));
  registry.register_factory("apply_penalties",
                            by_float_dtype([](DType d) { return penalties_configure(d); }));
  registry.register_factory("fused_decode_step", [](const Specialization& spec) -> const void* {
    // bf16 only; one kernel a count of int8 input planes (ops::FusedDecodeInputs).
    const std::string& planes = spec.get("planes");
    const ConfigureFn fn = fused_decode_configure(planes == "1" ? 1 : planes == "2" ? 2 : 0);
    return fn ? entry_of(fn) : nullptr;
  });
  registry.register_factory("cast", [](const Specialization& spec) -> const void* {
    const std::optional<DType> src = spec_float_dtype(spec, "src");
    const std::optional<DType> dst = spec_float_dtype(spec, "dst");
    return src && dst ? entry_of(cast_configure(*src, *dst)) : nullptr;
  });
}

}  // namespace mlxn::cuda
