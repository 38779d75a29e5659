// One call registering the CUDA kernels of the activations, norms, rope and embedding families.
#pragma once

#include "backends/cuda/kernels/activations_kernels.h"
#include "backends/cuda/kernels/embedding_kernels.h"
#include "backends/cuda/kernels/norms_kernels.h"
#include "backends/cuda/kernels/rope_kernels.h"

namespace mlxn::cuda {

inline void register_pointwise_kernels(KernelRegistry& registry) {
  register_activations_kernels(registry);
  register_norms_kernels(registry);
  register_rope_kernels(registry);
  register_embedding_kernels(registry);
}

}  // namespace mlxn::cuda
