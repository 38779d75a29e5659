// QuantConfig: parsing and validation of MLX quantization settings and per-module lookup.
#include "mlxn/io/mlx_quant_config.h"

#include <string>

#include "io/mlx_quant_config_json.h"
#include "mlxn/core/error.h"

namespace mlxn::io {

namespace {

// MLX's non-affine modes: recognised so users get "not supported yet" instead of "malformed".
bool is_known_fp_mode(std::string_view mode) {
  return mode == "mxfp4" || mode == "nvfp4" || mode == "mxfp8" || mode == "mxfp6";
}

void check_mode(const std::string& mode, std::string_view source, std::string_view where) {
  if (mode == "affine") return;
  if (is_known_fp_mode(mode)) {
    throw Error(ErrorKind::Unsupported, std::string(source) + ": " + std::string(where) +
                                            ": quantization mode '" + mode +
                                            "' is recognised but not supported yet (mlxn "
                                            "implements MLX's 'affine' mode)");
  }
  throw Error(ErrorKind::QuantConfig, std::string(source) + ": " + std::string(where) +
                                          ": unknown quantization mode '" + mode +
                                          "' (expected affine, mxfp4, nvfp4 or mxfp8)");
}

// Reads group_size / bits / mode from an object, falling back to MLX's own defaults (64, 4)
// for missing keys: MLX passes an override dict straight to to_quantized(), whose defaults
// apply, not the top-level entry's.
QuantParams params_from_object(const detail::Json& obj, std::string_view source,
                               const std::string& prefix, std::string_view what) {
  detail::JsonFields f(obj, std::string(source), prefix);
  if (auto m = f.get_string("mode")) check_mode(*m, source, prefix + "mode");
  // Wide bounds here only reject absurd JSON; the supported sets are checked below so the error
  // is a QuantConfig one naming the module and the value.
  const std::int64_t group = f.get_int("group_size", -(1LL << 40), 1LL << 40).value_or(64);
  const std::int64_t bits = f.get_int("bits", -(1LL << 40), 1LL << 40).value_or(4);
  const std::string where = std::string(source) + ": " + std::string(what);
  if (bits < 0 || bits > 64 || !quant_bits_supported(static_cast<int>(bits))) {
    throw Error(ErrorKind::QuantConfig, where + ": bits " + std::to_string(bits) +
                                            " is not supported (expected 2, 3, 4, 5, 6 or 8)");
  }
  if (group < 0 || group > 1024 || !quant_group_size_supported(static_cast<int>(group))) {
    throw Error(ErrorKind::QuantConfig, where + ": group_size " + std::to_string(group) +
                                            " is not supported (expected 32, 64 or 128)");
  }
  QuantParams p;
  p.bits = static_cast<int>(bits);
  p.group_size = static_cast<int>(group);
  return p;
}

}  // namespace

bool quant_bits_supported(int bits) {
  return bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
}

bool quant_group_size_supported(int group_size) {
  return group_size == 32 || group_size == 64 || group_size == 128;
}

void validate_quant_params(const QuantParams& params, std::string_view what) {
  if (!quant_bits_supported(params.bits)) {
    throw Error(ErrorKind::QuantConfig, std::string(what) + ": bits " +
                                            std::to_string(params.bits) +
                                            " is not supported (expected 2, 3, 4, 5, 6 or 8)");
  }
  if (!quant_group_size_supported(params.group_size)) {
    throw Error(ErrorKind::QuantConfig, std::string(what) + ": group_size " +
                                            std::to_string(params.group_size) +
                                            " is not supported (expected 32, 64 or 128)");
  }
}

QuantConfig QuantConfig::affine(QuantParams params) {
  validate_quant_params(params, "default");
  QuantConfig c;
  c.defaults_ = params;
  return c;
}

void QuantConfig::set_override(std::string module_path, std::optional<QuantParams> params) {
  if (params) validate_quant_params(*params, module_path);
  overrides_[std::move(module_path)] = params;
}

std::optional<QuantParams> QuantConfig::for_module(std::string_view module_path) const {
  auto it = overrides_.find(module_path);
  if (it != overrides_.end()) return it->second;
  return defaults_;
}

QuantConfig QuantConfig::from_json_string(std::string_view json_text, std::string_view source) {
  const detail::Json j = detail::parse_json_text(json_text, source);
  return detail::quant_config_from_json(j, source, "quantization");
}

namespace detail {

QuantConfig quant_config_from_json(const Json& value, std::string_view source,
                                   std::string_view key) {
  const std::string prefix = std::string(key) + ".";
  JsonFields f(value, std::string(source), prefix);
  // Hugging Face quantizers (GPTQ, AWQ, bitsandbytes, FP8, ...) write quant_method; MLX never
  // does, so any value there means weights in a layout we cannot read.
  if (auto method = f.get_string("quant_method")) {
    if (*method != "mlx" && *method != "affine") {
      throw Error(ErrorKind::Unsupported,
                  std::string(source) + ": " + prefix + "quant_method: '" + *method +
                      "' quantization is not supported (mlxn reads MLX affine quantization)");
    }
  }
  QuantConfig c = QuantConfig::affine(
      params_from_object(value, source, prefix, std::string(key) + " (default)"));
  for (const auto& [name, v] : value.items()) {
    if (name == "group_size" || name == "bits" || name == "mode" || name == "quant_method") {
      continue;
    }
    if (v.is_boolean()) {
      if (name.empty() || name.size() > 1024) f.fail(name, "bad module path");
      // `true` asks MLX to quantize the module with the defaults; `false` leaves it in float.
      c.set_override(name, v.get<bool>() ? std::optional<QuantParams>(c.defaults())
                                         : std::optional<QuantParams>());
    } else if (v.is_object()) {
      if (name.empty() || name.size() > 1024) f.fail(name, "bad module path");
      c.set_override(
          name, params_from_object(v, source, prefix + name + ".", std::string(key) + "." + name));
    }
    // Other scalars are settings of tools we do not need (e.g. a recipe name): ignore them.
  }
  return c;
}

}  // namespace detail

}  // namespace mlxn::io
