// Private: builds a QuantConfig from an already-parsed JSON value (shared with ModelConfig).
#pragma once

#include <string_view>

#include "io/model_config_json.h"
#include "mlxn/io/mlx_quant_config.h"

namespace mlxn::io::detail {

/// Parses a `quantization` / `quantization_config` object; `key` names it in errors.
QuantConfig quant_config_from_json(const Json& value, std::string_view source,
                                   std::string_view key);

}  // namespace mlxn::io::detail
