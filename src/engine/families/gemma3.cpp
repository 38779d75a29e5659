// Gemma 3: Gemma 2's sandwich block plus a (1 + w) qk-norm before RoPE; sliding layers rotate
// with rope_local (their own base, unscaled), full layers with the scaled global RoPE. Softcaps
// apply only when the config gives them (Gemma 3 configs normally do not).
#include <cmath>

#include "engine/families/family_util.h"

namespace mlxn::engine {

BlockFeatures gemma3_features(const io::ModelConfig& config) {
  BlockFeatures f = detail::pre_norm_features(config);
  f.sandwich_norms = true;
  f.qk_norm = true;
  // Model rounds this to the compute dtype (transformers scales in the weights' dtype).
  f.embedding_scale = static_cast<float>(std::sqrt(static_cast<double>(config.hidden_size)));
  // The config reader fills Gemma3TextConfig's default (256) when the field is absent.
  if (config.query_pre_attn_scalar) {
    f.attn_scale = static_cast<float>(1.0 / std::sqrt(*config.query_pre_attn_scalar));
  }
  f.attn_softcap = static_cast<float>(config.attn_logit_softcapping.value_or(0.0));
  f.final_softcap = static_cast<float>(config.final_logit_softcapping.value_or(0.0));
  return f;
}

}  // namespace mlxn::engine
