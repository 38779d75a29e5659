// CPU kernels of argmax, top-k and sampling, and the registration of the whole sampling family
// (softmax, sampling, MoE routing).
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cpu {

KernelFn argmax_kernel(DType dtype);
KernelFn top_k_kernel(DType dtype);
KernelFn sample_kernel(DType dtype);

/// Registers softmax, argmax, top_k, sample, moe_route and moe_combine.
void register_sampling_kernels(KernelRegistry& registry);

}  // namespace mlxn::cpu
