// Gemma 2: sandwich norms ((1 + w) RMSNorm around attention and MLP), GeGLU, embeddings scaled by
// sqrt(hidden), attention scale query_pre_attn_scalar^-0.5, attention and final logit softcaps,
// sliding window on alternate layers (ModelConfig::layer_types).
#include <cmath>

#include "engine/families/family_util.h"

namespace mlxn::engine {

namespace {
// Gemma2Config's default when a config omits query_pre_attn_scalar.
constexpr double kDefaultQueryPreAttnScalar = 256.0;
}  // namespace

BlockFeatures gemma2_features(const io::ModelConfig& config) {
  BlockFeatures f = detail::pre_norm_features(config);
  f.sandwich_norms = true;
  // Model rounds this to the compute dtype, as transformers builds the normalizer in the
  // activations' dtype.
  f.embedding_scale = static_cast<float>(std::sqrt(static_cast<double>(config.hidden_size)));
  f.attn_scale = static_cast<float>(
      1.0 / std::sqrt(config.query_pre_attn_scalar.value_or(kDefaultQueryPreAttnScalar)));
  f.attn_softcap = static_cast<float>(config.attn_logit_softcapping.value_or(0.0));
  f.final_softcap = static_cast<float>(config.final_logit_softcapping.value_or(0.0));
  return f;
}

}  // namespace mlxn::engine
