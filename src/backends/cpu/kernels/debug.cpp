// CPU kernel for assert_finite: fails the command buffer on the first NaN or infinity.
#include <cmath>
#include <string>

#include "backends/cpu/kernels/kernels.h"
#include "mlxn/core/error.h"
#include "ops/op_params.h"

namespace mlxn::cpu {
namespace {

template <class T>
void assert_finite(const KernelArgs& k) {
  const auto& p = k.params_as<ops::AssertFiniteParams>();
  const T* x = k.ptr<const T>(0);
  for (std::int64_t i = 0; i < p.n; ++i) {
    const float v = to_f32(x[i]);
    if (!std::isfinite(v)) {
      throw Error(ErrorKind::CommandBuffer, "assert_finite: element " + std::to_string(i) +
                                                " is " + (std::isnan(v) ? "NaN" : "infinite"));
    }
  }
}

}  // namespace

KernelFn assert_finite_kernel(DType dtype) {
  return dispatch_float<KernelFn>(dtype, [](auto tag) {
    return static_cast<KernelFn>(&assert_finite<typename decltype(tag)::type>);
  });
}

}  // namespace mlxn::cpu
