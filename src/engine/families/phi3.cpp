// Phi-3: Llama's block. The loader splits the fused qkv_proj and gate_up_proj into separate
// Linears; LongRoPE (short/long factors and the attention scale) is resolved by rope_inv_freq.
#include "engine/families/family_util.h"

namespace mlxn::engine {

BlockFeatures phi3_features(const io::ModelConfig& config) {
  return detail::pre_norm_features(config);
}

}  // namespace mlxn::engine
