// QuantConfig: MLX quantization settings from config.json (`quantization` / `quantization_config`),
// with the per-module overrides written by mlx-lm's mixed-precision recipes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mlxn::io {

/// Bits and group size of one affine-quantized module.
struct QuantParams {
  int bits = 4;
  int group_size = 64;

  friend bool operator==(const QuantParams&, const QuantParams&) = default;
};

/// True for the bit widths MLX affine packing supports here: 2, 3, 4, 5, 6, 8.
bool quant_bits_supported(int bits);
/// True for the group sizes MLX affine quantization supports: 32, 64, 128.
bool quant_group_size_supported(int group_size);

/// MLX quantization settings of a model. Only the "affine" mode is implemented; "mxfp4",
/// "nvfp4" and "mxfp8" are recognised and rejected with ErrorKind::Unsupported when parsed.
class QuantConfig {
 public:
  /// A config quantizing every quantizable module with `params`; throws QuantConfig if invalid.
  static QuantConfig affine(QuantParams params);

  /// Parses the JSON object text of a `quantization` entry. `source` (a file name) prefixes
  /// error messages. Throws Format (not an object, wrong types), QuantConfig (bits or group size
  /// out of range, naming the module), Unsupported (non-affine mode or a foreign quant_method).
  static QuantConfig from_json_string(std::string_view json_text, std::string_view source);

  /// Default parameters of modules without an override.
  const QuantParams& defaults() const { return defaults_; }
  /// Quantization mode name; always "affine" for a config that parsed.
  const std::string& mode() const { return mode_; }

  /// Parameters for a module path such as "model.layers.0.mlp.down_proj" (no ".weight"):
  /// its override if there is one, std::nullopt when the override is `false` (left
  /// unquantized), else the defaults. Whether a module is quantized at all is decided by the
  /// weights (a `.scales` tensor); this only says which parameters apply if it is.
  std::optional<QuantParams> for_module(std::string_view module_path) const;

  /// The per-module overrides by module path; std::nullopt marks "not quantized".
  const std::map<std::string, std::optional<QuantParams>, std::less<>>& overrides() const {
    return overrides_;
  }

  /// Adds or replaces an override (std::nullopt: not quantized); throws QuantConfig if invalid.
  void set_override(std::string module_path, std::optional<QuantParams> params);

 private:
  QuantParams defaults_;
  std::string mode_ = "affine";
  std::map<std::string, std::optional<QuantParams>, std::less<>> overrides_;
};

/// Throws Error(QuantConfig) naming `what` (a module path or "default") unless bits and
/// group size are supported.
void validate_quant_params(const QuantParams& params, std::string_view what);

}  // namespace mlxn::io
