// Helpers shared by the family files (src/engine/families/*.cpp): the features every decoder
// family starts from, and the mapping of config activation names to FfnActivation.
#pragma once

#include <string>

#include "mlxn/core/error.h"
#include "mlxn/engine/block_features.h"
#include "mlxn/io/model_config.h"

namespace mlxn::engine::detail {

/// FFN activation named by config.hidden_act (hidden_activation for Gemma). Throws Unsupported
/// for names no kernel implements.
inline FfnActivation activation_from_config(const io::ModelConfig& config) {
  const std::string& a = config.hidden_act;
  if (a == "silu" || a == "swish") return FfnActivation::Silu;
  // transformers' gelu_pytorch_tanh, gelu_new and gelu_fast all use the tanh approximation.
  if (a == "gelu_pytorch_tanh" || a == "gelu_new" || a == "gelu_fast") {
    return FfnActivation::GeluTanh;
  }
  if (a == "gelu") return FfnActivation::GeluErf;
  throw Error(ErrorKind::Unsupported,
              std::string(io::architecture_name(config.arch)) + ": hidden activation '" + a +
                  "' is not supported (supported: silu, gelu, gelu_pytorch_tanh)");
}

/// The pre-norm decoder block of Llama and most of its descendants: RMSNorm before attention and
/// MLP, gated MLP, 1/sqrt(head_dim) attention scale, RoPE from the config (Neox order; Model
/// switches to Interleaved for GGUF weights).
inline BlockFeatures pre_norm_features(const io::ModelConfig& config) {
  BlockFeatures f;
  f.activation = activation_from_config(config);
  f.qk_norm = config.qk_norm;
  f.rope_global = rope_config_for(config.rope, config);
  f.rope_local = rope_config_for(config.rope_local, config);
  return f;
}

}  // namespace mlxn::engine::detail
