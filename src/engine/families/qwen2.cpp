// Qwen2: Llama's block with q/k/v biases (carried by the Linears) and an optional sliding window
// on layers past max_window_layers (ModelConfig::layer_types).
#include "engine/families/family_util.h"

namespace mlxn::engine {

BlockFeatures qwen2_features(const io::ModelConfig& config) {
  return detail::pre_norm_features(config);
}

}  // namespace mlxn::engine
