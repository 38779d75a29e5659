// The CPU kernel ABI: what a CPU kernel receives, plus helpers for writing kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/backend.h"
#include "mlxn/core/half.h"

namespace mlxn::cpu {

/// Everything one dispatch passes to a CPU kernel: the resolved bindings and the inline params.
struct KernelArgs {
  const detail::BoundArg* args;
  std::size_t n_args;
  const void* params;
  std::size_t params_bytes;

  template <class T>
  T* ptr(std::size_t i) const {
    return static_cast<T*>(args[i].ptr);
  }
  template <class P>
  const P& params_as() const {
    return *static_cast<const P*>(params);
  }
};

/// A CPU kernel. It may use cpu::parallel_for and reports failures by throwing mlxn::Error.
using KernelFn = void (*)(const KernelArgs&);

/// Storage types of the float dtypes on the host and their conversions to/from f32.
struct F16 {
  std::uint16_t bits;
};
struct BF16 {
  std::uint16_t bits;
};
inline float to_f32(float v) { return v; }
inline float to_f32(F16 v) { return f16_bits_to_f32(v.bits); }
inline float to_f32(BF16 v) { return bf16_bits_to_f32(v.bits); }
template <class T>
T from_f32(float v);
template <>
inline float from_f32<float>(float v) {
  return v;
}
template <>
inline F16 from_f32<F16>(float v) {
  return F16{f32_to_f16_bits(v)};
}
template <>
inline BF16 from_f32<BF16>(float v) {
  return BF16{f32_to_bf16_bits(v)};
}

}  // namespace mlxn::cpu
