// Registers the CUDA kernels of the activations, norms, rope and embedding families: kernel name
// + specialization -> ConfigureFn.
#include "backends/cuda/kernels/pointwise_kernels.h"

#include <optional>
#include <string>

#include "backends/cuda/registry_helpers.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cuda {
namespace {

KernelFactory activation(ActivationOp op) {
  return by_float_dtype([op](DType d) { return activation_configure(op, d); });
}

KernelFactory norm(NormKind kind) {
  return by_float_dtype([kind](DType d) { return norm_configure(kind, d); });
}

}  // namespace

void register_activations_kernels(KernelRegistry& registry) {
  registry.register_factory("scalar_mul", activation(ActivationOp::ScalarMul));
  registry.register_factory("silu", activation(ActivationOp::Silu));
  registry.register_factory("gelu_tanh", activation(ActivationOp::GeluTanh));
  registry.register_factory("gelu_erf", activation(ActivationOp::GeluErf));
  registry.register_factory("softcap", activation(ActivationOp::Softcap));
  registry.register_factory("silu_mul", activation(ActivationOp::SiluMul));
  registry.register_factory("gelu_tanh_mul", activation(ActivationOp::GeluTanhMul));
  registry.register_factory("gelu_erf_mul", activation(ActivationOp::GeluErfMul));
  registry.register_factory("sigmoid_mul", activation(ActivationOp::SigmoidMul));
}

void register_norms_kernels(KernelRegistry& registry) {
  registry.register_factory("rms_norm_gemma", norm(NormKind::RmsOffset));
  registry.register_factory("qk_norm", norm(NormKind::RmsOffset));
  registry.register_factory("l2_norm", norm(NormKind::L2));
  registry.register_factory("add_rms_norm", norm(NormKind::AddRms));
  registry.register_factory("layer_norm", [](const Specialization& spec) -> const void* {
    const std::optional<DType> dtype = spec_float_dtype(spec, "dtype");
    if (!dtype || !spec.has("bias")) return nullptr;
    const NormKind kind = spec.get("bias") == "1" ? NormKind::LayerNormBias : NormKind::LayerNorm;
    return entry_of(norm_configure(kind, *dtype));
  });
}

void register_rope_kernels(KernelRegistry& registry) {
  registry.register_factory("rope", by_float_dtype([](DType d) { return rope_configure(d); }));
}

void register_embedding_kernels(KernelRegistry& registry) {
  registry.register_factory("embedding",
                            by_float_dtype([](DType d) { return embedding_configure(d); }));
  registry.register_factory("embedding_quantized", [](const Specialization& spec) -> const void* {
    const std::optional<DType> dtype = spec_float_dtype(spec, "dtype");
    const std::optional<DType> scale_dtype = spec_float_dtype(spec, "scale_dtype");
    return dtype && scale_dtype ? entry_of(embedding_quantized_configure(*dtype, *scale_dtype))
                                : nullptr;
  });
}

}  // namespace mlxn::cuda
