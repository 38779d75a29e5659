// libFuzzer harness: parses arbitrary bytes as config.json (ModelConfig) and as a quantization
// entry (QuantConfig); anything but mlxn::Error, or unbounded time/memory, is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mlxn/core/error.h"
#include "mlxn/io/mlx_quant_config.h"
#include "mlxn/io/model_config.h"
#include "mlxn/io/model_dir_tensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::uint64_t sum = 0;
  try {
    const mlxn::io::ModelConfig c = mlxn::io::ModelConfig::from_json_string(text, "fuzz");
    // A config that parsed is bounded: per-layer queries and the weight check must stay cheap.
    for (std::int64_t l = 0; l < c.n_layers; ++l) {
      sum += static_cast<std::uint64_t>(c.layer_type(l)) + (c.is_moe_layer(l) ? 1 : 0);
    }
    if (c.quantization) sum += c.quantization->overrides().size();
    // With no tensors the check fails at the first expected one (or on the architecture).
    (void)mlxn::io::check_weights(c, {}, "fuzz");
  } catch (const mlxn::Error&) {
    // Rejecting malformed input with an Error is the expected outcome.
  }
  try {
    const auto q = mlxn::io::QuantConfig::from_json_string(text, "fuzz");
    for (const auto& [path, params] : q.overrides()) {
      const auto p = q.for_module(path);
      sum += path.size() + (p ? static_cast<std::uint64_t>(p->bits) : 0);
    }
  } catch (const mlxn::Error&) {
  }
  volatile std::uint64_t sink = sum;
  (void)sink;
  return 0;
}
