// CPU KV-cache append kernels (plain and fused with rope) and their registration.
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

/// Entry point by new-K/V dtype `src` and cache dtype `dst` (f32/f16/bf16); nullptr otherwise.
KernelFn kv_cache_append_kernel(DType src, DType dst);

/// The fused rope + append (rope_kv_append.cpp) by q/k/v dtype `src` and cache dtype `dst`.
KernelFn rope_kv_append_kernel(DType src, DType dst);

/// Registers kv_cache_append and rope_kv_append (spec src, dst).
void register_kv_cache_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
