// Qwen3-MoE: Qwen3's attention; the MLP of layers where ModelConfig::is_moe_layer holds is a
// softmax top-k router over SwiGLU experts (renormalized when norm_topk_prob).
#include "engine/families/family_util.h"

namespace mlxn::engine {

BlockFeatures qwen3_moe_features(const io::ModelConfig& config) {
  BlockFeatures f = detail::pre_norm_features(config);
  f.qk_norm = true;
  f.moe = true;
  return f;
}

}  // namespace mlxn::engine
