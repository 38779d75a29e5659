// Registers the CUDA KV-cache kernels: maps spec (src, dst) to the ConfigureFn of the append
// kernel and of the fused rope + append kernel.
#include <string>

#include "backends/cuda/kernels/kv_cache_kernels.h"
#include "backends/cuda/kernels/rope_kv_append_kernels.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cuda {

void register_kv_cache_kernels(KernelRegistry& registry) {
  registry.register_factory("kv_cache_append", [](const Specialization& spec) -> const void* {
    if (!spec.has("src") || !spec.has("dst")) return nullptr;
    const ConfigureFn fn = kv_cache_append_configure(dtype_from_name(spec.get("src")),
                                                     dtype_from_name(spec.get("dst")));
    return fn ? entry_of(fn) : nullptr;
  });
  registry.register_factory("rope_kv_append", [](const Specialization& spec) -> const void* {
    if (!spec.has("src") || !spec.has("dst")) return nullptr;
    const ConfigureFn fn = rope_kv_append_configure(dtype_from_name(spec.get("src")),
                                                    dtype_from_name(spec.get("dst")));
    return fn ? entry_of(fn) : nullptr;
  });
}

}  // namespace mlxn::cuda
