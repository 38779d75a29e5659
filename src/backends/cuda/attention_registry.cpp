// Registers the CUDA attention kernels: maps spec (io, kv, head_dim) to their ConfigureFns.
#include <optional>
#include <string>

#include "backends/cuda/kernels/attention_kernels.h"
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cuda {
namespace {

bool is_float_name(const Specialization& spec, const char* key) {
  if (!spec.has(key)) return false;
  const std::string& v = spec.get(key);
  return v == "f32" || v == "f16" || v == "bf16";
}

std::int64_t head_dim_of(const Specialization& spec) {
  return spec.has("head_dim") ? std::stoll(spec.get("head_dim")) : 0;
}

}  // namespace

void register_attention_kernels(KernelRegistry& registry) {
  // q/out and K/V dtypes are run-time parameters of these kernels (AttentionParams::io_dtype,
  // kv_dtype); the spec still names them so that unsupported pairs are rejected here.
  registry.register_factory("attention_prefill", [](const Specialization& spec) -> const void* {
    if (!is_float_name(spec, "io") || !is_float_name(spec, "kv")) return nullptr;
    const ConfigureFn fn = attention_prefill_configure(head_dim_of(spec));
    return fn ? entry_of(fn) : nullptr;
  });
  registry.register_factory("attention_decode", [](const Specialization& spec) -> const void* {
    if (!is_float_name(spec, "io") || !is_float_name(spec, "kv")) return nullptr;
    if (!spec.has("group")) return nullptr;
    const ConfigureFn fn = attention_decode_configure(
        dtype_from_name(spec.get("kv")), head_dim_of(spec), std::stoi(spec.get("group")));
    return fn ? entry_of(fn) : nullptr;
  });
  registry.register_factory("attention_decode_merge",
                            [](const Specialization& spec) -> const void* {
                              if (!is_float_name(spec, "io")) return nullptr;
                              return entry_of(attention_decode_merge_configure());
                            });
}

}  // namespace mlxn::cuda
