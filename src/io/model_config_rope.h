// Private: reads RoPE settings (4.x rope_theta/rope_scaling, 5.x rope_parameters including the
// per-layer-type form, Gemma 3's rope_local_base_freq) into a ModelConfig.
#pragma once

#include "io/model_config_json.h"
#include "mlxn/io/model_config.h"

namespace mlxn::io::detail {

/// Fills c.rope and c.rope_local. `text` holds the model's fields (text_config or the top
/// level), `top` the top level; `default_theta` applies when no base is given. Needs c.arch and
/// c.max_position_embeddings set. Throws Format naming the field.
void read_rope(ModelConfig& c, const JsonFields& text, const JsonFields& top, double default_theta);

}  // namespace mlxn::io::detail
