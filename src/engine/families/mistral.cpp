// Mistral: Llama's block; the sliding window (every layer when config.sliding_window is set)
// comes from ModelConfig::layer_types, which the config reader derives.
#include "engine/families/family_util.h"

namespace mlxn::engine {

BlockFeatures mistral_features(const io::ModelConfig& config) {
  return detail::pre_norm_features(config);
}

}  // namespace mlxn::engine
