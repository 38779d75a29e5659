// Host-side entry points of the CUDA attention kernels (plain C++, no device code), so that the
// registration in attention_registry.cpp can reach the .cu files.
#pragma once

#include <cstdint>

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}  // namespace mlxn

namespace mlxn::cuda {

// Each returns nullptr for a head dim (dtype) we do not instantiate. The q/out and K/V dtypes of
// prefill are run-time parameters (AttentionParams::io_dtype / kv_dtype): they only change the
// tile loads, not the f32 inner loops, so one instantiation per head dim serves all nine pairs.

/// attention_prefill (ops::AttentionParams; bindings q, k, v, out).
ConfigureFn attention_prefill_configure(std::int64_t head_dim);
/// attention_decode partial pass (bindings q, k, v, dst) for K/V dtype `kv`, each block serving
/// `heads_per_block` (1, 4 or 8) query heads of a KV group.
ConfigureFn attention_decode_configure(DType kv, std::int64_t head_dim, int heads_per_block);
/// attention_decode_merge (bindings workspace, out).
ConfigureFn attention_decode_merge_configure();

/// Registers attention_prefill, attention_decode, attention_decode_merge (spec io, kv, head_dim).
void register_attention_kernels(KernelRegistry& registry);

}  // namespace mlxn::cuda
