// Registers the CPU backend's builtin kernels with its registry.
#include "backends/cpu/kernels/attention_kernels.h"
#include "backends/cpu/kernels/kernels.h"
#include "backends/cpu/kernels/kv_cache_kernels.h"
#include "backends/cpu/kernels/matmul_kernels.h"
#include "backends/cpu/kernels/pointwise_kernels.h"
#include "backends/cpu/kernels/sampling_kernels.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {
namespace {

// Wraps a dtype -> KernelFn lookup as a registry factory keyed by the spec's "dtype".
template <class Lookup>
KernelFactory by_dtype(Lookup lookup) {
  return [lookup](const Specialization& spec) -> const void* {
    KernelFn fn = lookup(dtype_from_name(spec.get("dtype")));
    return reinterpret_cast<const void*>(fn);
  };
}

}  // namespace

void register_kernels(KernelRegistry& registry) {
  register_attention_kernels(registry);
  register_kv_cache_kernels(registry);
  register_pointwise_kernels(registry);
  register_sampling_kernels(registry);
  registry.register_factory("add", by_dtype(add_kernel));
  register_matmul_kernels(registry);
  registry.register_factory("mul", by_dtype(mul_kernel));
  registry.register_factory("rms_norm", by_dtype(rms_norm_kernel));
  registry.register_factory("rms_norm_mul", by_dtype(rms_norm_mul_kernel));
  registry.register_factory("assert_finite", by_dtype(assert_finite_kernel));
  registry.register_factory("bias_add", by_dtype(bias_add_kernel));
  registry.register_factory("apply_penalties", by_dtype(penalties_kernel));
  registry.register_factory("fused_decode_scales", [](const Specialization&) -> const void* {
    return reinterpret_cast<const void*>(fused_decode_scales_kernel());
  });
  registry.register_factory("cast", [](const Specialization& spec) -> const void* {
    KernelFn fn = cast_kernel(dtype_from_name(spec.get("src")), dtype_from_name(spec.get("dst")));
    return reinterpret_cast<const void*>(fn);
  });
}

}  // namespace mlxn::cpu
