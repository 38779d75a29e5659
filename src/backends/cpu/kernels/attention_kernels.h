// CPU attention kernels (prefill, decode partials, decode merge) and their registration.
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

/// Entry points by q/out dtype `io` and K/V dtype `kv` (f32/f16/bf16); nullptr otherwise.
KernelFn attention_prefill_kernel(DType io, DType kv);
KernelFn attention_decode_kernel(DType io, DType kv);
KernelFn attention_decode_merge_kernel(DType io);

/// Registers attention_prefill, attention_decode and attention_decode_merge (spec io, kv,
/// head_dim).
void register_attention_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
