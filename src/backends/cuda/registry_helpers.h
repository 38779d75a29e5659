// Helpers for registering CUDA kernel factories keyed by float dtype (shared by every family).
#pragma once

#include <optional>
#include <string>

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cuda {

/// The float dtype named by spec value `key` ("f32", "f16", "bf16"); nullopt when the key is
/// absent or names anything else (the registry then reports the kernel as not found).
inline std::optional<DType> spec_float_dtype(const Specialization& spec, const char* key) {
  if (!spec.has(key)) return std::nullopt;
  const std::string& v = spec.get(key);
  if (v == "f32") return DType::F32;
  if (v == "f16") return DType::F16;
  if (v == "bf16") return DType::BF16;
  return std::nullopt;
}

/// A factory for kernels keyed by "dtype" alone: make(dtype) returns the ConfigureFn or nullptr.
template <class Make>
KernelFactory by_float_dtype(Make make) {
  return [make](const Specialization& spec) -> const void* {
    const std::optional<DType> dtype = spec_float_dtype(spec, "dtype");
    if (!dtype) return nullptr;
    const ConfigureFn fn = make(*dtype);
    return fn ? entry_of(fn) : nullptr;
  };
}

}  // namespace mlxn::cuda
