// Host-side entry points of the CUDA kernels of the sampling family (softmax, argmax, top-k,
// sample, MoE routing), and their registration. Plain C++, no device code.
#pragma once

#include "backends/cuda/kernel_abi.h"
#include "mlxn/core/dtype.h"

namespace mlxn::cuda {

// Each returns nullptr when the dtype (combination) is not one we instantiate.

/// softmax (ops::SoftmaxParams) for src f32/f16/bf16 and dst = src or f32.
ConfigureFn softmax_configure(DType src, DType dst, bool masked);
/// argmax (ops::ArgmaxParams; bindings x, idx, val).
ConfigureFn argmax_configure(DType dtype);
/// top_k (ops::TopKParams; bindings x, values, indices).
ConfigureFn top_k_configure(DType dtype);
/// sample (ops::SampleParams; bindings logits, temperature, top_k, top_p, min_p, u, tokens).
ConfigureFn sample_configure(DType dtype);
/// moe_route (ops::MoeRouteParams; bindings logits, ids, weights).
ConfigureFn moe_route_configure(DType dtype);
/// moe_combine (ops::MoeCombineParams); `gate` requires `shared`.
ConfigureFn moe_combine_configure(DType dtype, bool shared, bool gate);

}  // namespace mlxn::cuda

#ifndef __CUDACC__
#include <string>

#include "mlxn/core/kernel_registry.h"

namespace mlxn::cuda {

/// Registers softmax, argmax, top_k, sample, moe_route and moe_combine (host code, so it lives
/// here rather than in a .cu file; cuda_kernels.cpp calls it).
inline void register_sampling_kernels(KernelRegistry& registry) {
  // The float dtype of spec value `key`; DType::U8 (instantiated by nobody) when absent/other.
  auto dt = [](const Specialization& spec, const char* key) {
    if (!spec.has(key)) return DType::U8;
    const std::string& v = spec.get(key);
    return v == "f32"    ? DType::F32
           : v == "f16"  ? DType::F16
           : v == "bf16" ? DType::BF16
                         : DType::U8;
  };
  auto flag = [](const Specialization& spec, const char* key) {
    return spec.has(key) && spec.get(key) == "1";
  };
  auto by_dtype = [dt](ConfigureFn (*make)(DType)) -> KernelFactory {
    return [dt, make](const Specialization& spec) -> const void* {
      const ConfigureFn fn = make(dt(spec, "dtype"));
      return fn ? entry_of(fn) : nullptr;
    };
  };
  registry.register_factory("argmax", by_dtype(&argmax_configure));
  registry.register_factory("top_k", by_dtype(&top_k_configure));
  registry.register_factory("sample", by_dtype(&sample_configure));
  registry.register_factory("moe_route", by_dtype(&moe_route_configure));
  registry.register_factory("softmax", [dt, flag](const Specialization& spec) -> const void* {
    const ConfigureFn fn =
        softmax_configure(dt(spec, "src"), dt(spec, "dst"), flag(spec, "masked"));
    return fn ? entry_of(fn) : nullptr;
  });
  registry.register_factory("moe_combine", [dt, flag](const Specialization& spec) -> const void* {
    const ConfigureFn fn =
        moe_combine_configure(dt(spec, "dtype"), flag(spec, "shared"), flag(spec, "gate"));
    return fn ? entry_of(fn) : nullptr;
  });
}

}  // namespace mlxn::cuda
#endif
