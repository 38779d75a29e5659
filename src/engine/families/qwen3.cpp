// Qwen3: Llama's block with a per-head RMSNorm of q and k (weights [head_dim]) before RoPE.
#include "engine/families/family_util.h"

namespace mlxn::engine {

BlockFeatures qwen3_features(const io::ModelConfig& config) {
  BlockFeatures f = detail::pre_norm_features(config);
  f.qk_norm = true;
  return f;
}

}  // namespace mlxn::engine
