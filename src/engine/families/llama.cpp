// Llama: the plain pre-norm block -- RMSNorm, attention with RoPE, RMSNorm, SwiGLU MLP.
#include "engine/families/family_util.h"

namespace mlxn::engine {

BlockFeatures llama_features(const io::ModelConfig& config) {
  return detail::pre_norm_features(config);
}

}  // namespace mlxn::engine
