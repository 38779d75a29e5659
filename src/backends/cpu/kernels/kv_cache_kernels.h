// CPU KV-cache append kernel and its registration.
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

/// Entry point by new-K/V dtype `src` and cache dtype `dst` (f32/f16/bf16); nullptr otherwise.
KernelFn kv_cache_append_kernel(DType src, DType dst);

/// Registers kv_cache_append (spec src, dst).
void register_kv_cache_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
