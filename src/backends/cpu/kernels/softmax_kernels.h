// CPU kernels of the softmax family: entry points by dtype for the registry.
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"

namespace mlxn {
class KernelRegistry;
}

namespace mlxn::cpu {

/// softmax (ops::SoftmaxParams) for src in {f32, f16, bf16}, dst = src or f32; nullptr otherwise.
KernelFn softmax_kernel(DType src, DType dst, bool masked);

}  // namespace mlxn::cpu
