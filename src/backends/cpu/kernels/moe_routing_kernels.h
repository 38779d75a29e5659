// CPU kernels of MoE routing: entry points by dtype for the registry.
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"

namespace mlxn::cpu {

KernelFn moe_route_kernel(DType dtype);
KernelFn moe_combine_kernel(DType dtype, bool shared, bool gate);

}  // namespace mlxn::cpu
