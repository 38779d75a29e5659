// Registers the CUDA KV-cache kernels: maps spec (src, dst) to the append kernel's ConfigureFn.
#include <string>

#include "backends/cuda/kernels/kv_cache_kernels.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cuda {

void register_kv_cache_kernels(KernelRegistry& registry) {
  registry.register_factory("kv_cache_append", [](const Specialization& spec) -> const void* {
    if (!spec.has("src") || !spec.has("dst")) return nullptr;
    const ConfigureFn fn = kv_cache_append_configure(dtype_from_name(spec.get("src")),
                                                     dtype_from_name(spec.get("dst")));
    return fn ? entry_of(fn) : nullptr;
  });
}

}  // namespace mlxn::cuda
