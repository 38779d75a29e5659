// Registers the builtin CUDA kernels: maps kernel name + specialization to a ConfigureFn.
#include <optional>
#include <string>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/kernels/kernels.h"
#include "backends/cuda/kernels/matmul_kernels.h"
#include "backends/cuda/kernels/sampling_kernels.h"
#include "backends/cuda/kernels/pointwise_kernels.h"
#include "backends/cuda/kernels/attention_kernels.h"
#include "backends/cuda/kernels/kv_cache_kernels.h"

namespace mlxn::cuda {
namespace {

/// The float dtype named by spec value `key` ("f32", "f16", "bf16"); nullopt when the key is
/// absent or names anything else (the registry then reports the kernel as not found).
std::optional<DType> float_dtype(const Specialization& spec, const char* key) {
  if (!spec.has(key)) return std::nullopt;
  const std::string& v = spec.get(key);
  if (v == "f32") return DType::F32;
  if (v == "f16") return DType::F16;
  if (v == "bf16") return DType::BF16;
  return std::nullopt;
}

template <class Make>
KernelFactory by_dtype(Make make) {
  return [make](const Specialization& spec) -> const void* {
    const std::optional<DType> dtype = float_dtype(spec, "dtype");
    return dtype ? entry_of(make(*dtype)) : nullptr;
  };
}

}  // namespace

void register_cuda_kernels(KernelRegistry& registry) {
  register_matmul_kernels(registry);
  register_sampling_kernels(registry);
  register_pointwise_kernels(registry);
  register_attention_kernels(registry);
  register_kv_cache_kernels(registry);
  registry.register_factory("add",
                            by_dtype([](DType d) { return binary_configure(BinaryOp::Add, d); }));
  registry.register_factory("mul",
                            by_dtype([](DType d) { return binary_configure(BinaryOp::Mul, d); }));
  registry.register_factory("rms_norm",
                            by_dtype([](DType d) { return rms_norm_configure(d, false); }));
  registry.register_factory("rms_norm_mul",
                            by_dtype([](DType d) { return rms_norm_configure(d, true); }));
  registry.register_factory("assert_finite",
                            by_dtype([](DType d) { return assert_finite_configure(d); }));
  registry.register_factory("cast", [](const Specialization& spec) -> const void* {
    const std::optional<DType> src = float_dtype(spec, "src");
    const std::optional<DType> dst = float_dtype(spec, "dst");
    return src && dst ? entry_of(cast_configure(*src, *dst)) : nullptr;
  });
}

}  // namespace mlxn::cuda
