// Host-side entry points of the CUDA KV-cache kernels (plain C++, no device code).
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}  // namespace mlxn

namespace mlxn::cuda {

/// kv_cache_append (ops::KvCacheAppendParams; bindings k_new, v_new, positions, k_cache,
/// v_cache) from new-K/V dtype `src` to cache dtype `dst`; nullptr for non-float dtypes.
ConfigureFn kv_cache_append_configure(DType src, DType dst);

/// Registers kv_cache_append (spec src, dst).
void register_kv_cache_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
