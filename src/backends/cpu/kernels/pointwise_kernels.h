// One call registering the CPU kernels of the activations, norms, rope and embedding families.
#pragma once

#include "backends/cpu/kernels/activations_kernels.h"
#include "backends/cpu/kernels/embedding_kernels.h"
#include "backends/cpu/kernels/norms_kernels.h"
#include "backends/cpu/kernels/rope_kernels.h"

namespace mlxn::cpu {

inline void register_pointwise_kernels(KernelRegistry& registry) {
  register_activations_kernels(registry);
  register_norms_kernels(registry);
  register_rope_kernels(registry);
  register_embedding_kernels(registry);
}

}  // namespace mlxn::cpu
