// Host-side entry point of the CUDA fused rope + KV-cache append kernel (plain C++, no device
// code).
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn::cuda {

/// rope_kv_append (ops::RopeKvAppendParams; bindings q, k, v, positions, inv_freq, k_cache,
/// v_cache) from q/k/v dtype `src` to cache dtype `dst`; nullptr for non-float dtypes.
/// Registered by register_kv_cache_kernels (kv_cache_registry.cpp).
ConfigureFn rope_kv_append_configure(DType src, DType dst);

}  // namespace mlxn::cuda
