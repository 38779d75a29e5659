// Entry points of the CPU kernels by dtype, for the registry's factories.
#pragma once

#include "backends/cpu/cpu_kernel.h"
#include "mlxn/core/dtype.h"

namespace mlxn::cpu {

template <class T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<host type>) for f32/f16/bf16; returns R{} (nullptr) for other dtypes.
template <class R, class F>
R dispatch_float(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32: return f(TypeTag<float>{});
    case DType::F16: return f(TypeTag<F16>{});
    case DType::BF16: return f(TypeTag<BF16>{});
    default: return R{};
  }
}

KernelFn add_kernel(DType dtype);
KernelFn mul_kernel(DType dtype);
KernelFn cast_kernel(DType src, DType dst);
KernelFn rms_norm_kernel(DType dtype);
KernelFn rms_norm_mul_kernel(DType dtype);
KernelFn assert_finite_kernel(DType dtype);
KernelFn bias_add_kernel(DType dtype);
KernelFn penalties_kernel(DType dtype);
KernelFn fused_decode_scales_kernel();  // bf16 only: no dtype to pick by

}  // namespace mlxn::cpu
