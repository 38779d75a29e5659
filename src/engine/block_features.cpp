// block_features: dispatch from a ModelConfig's architecture to its family file, and the mapping
// of the config's RoPE settings to the rope op's.
#include "mlxn/engine/block_features.h"

#include <string>

#include "mlxn/core/error.h"

namespace mlxn::engine {

namespace {

ops::RopeScaling scaling_of(io::RopeType type) {
  switch (type) {
    case io::RopeType::Default:
      return ops::RopeScaling::Default;
    case io::RopeType::Linear:
      return ops::RopeScaling::Linear;
    case io::RopeType::Dynamic:
      return ops::RopeScaling::DynamicNtk;
    case io::RopeType::Yarn:
      return ops::RopeScaling::Yarn;
    case io::RopeType::Llama3:
      return ops::RopeScaling::Llama3;
    case io::RopeType::LongRope:
      return ops::RopeScaling::LongRope;
  }
  return ops::RopeScaling::Default;
}

}  // namespace

ops::RopeConfig rope_config_for(const io::RopeConfig& rope, const io::ModelConfig& config) {
  ops::RopeConfig r;
  r.scaling = scaling_of(rope.type);
  r.theta = rope.theta;
  // validate_model_config guarantees an even rotary dimension >= 2; truncation as transformers'
  // int(head_dim * partial_rotary_factor).
  r.rotary_dim =
      static_cast<std::int64_t>(static_cast<double>(config.head_dim) * rope.partial_rotary_factor);
  r.factor = rope.factor;
  r.max_position_embeddings = config.max_position_embeddings;
  r.original_max_position_embeddings = rope.original_max_position_embeddings;
  r.low_freq_factor = rope.low_freq_factor;
  r.high_freq_factor = rope.high_freq_factor;
  r.beta_fast = rope.beta_fast;
  r.beta_slow = rope.beta_slow;
  r.short_factor = rope.short_factor;
  r.long_factor = rope.long_factor;
  r.attention_factor = rope.attention_factor;
  return r;
}

BlockFeatures block_features(const io::ModelConfig& config) {
  switch (config.arch) {
    case io::Architecture::Llama:
      return llama_features(config);
    case io::Architecture::Mistral:
      return mistral_features(config);
    case io::Architecture::Qwen2:
      return qwen2_features(config);
    case io::Architecture::Qwen3:
      return qwen3_features(config);
    case io::Architecture::Qwen3Moe:
      return qwen3_moe_features(config);
    case io::Architecture::Gemma2:
      return gemma2_features(config);
    case io::Architecture::Gemma3:
      return gemma3_features(config);
    case io::Architecture::Phi3:
      return phi3_features(config);
    case io::Architecture::Unknown:
      break;
  }
  const std::string name = !config.model_type.empty()           ? config.model_type
                           : !config.architecture_class.empty() ? config.architecture_class
                                                                : std::string("(none given)");
  throw Error(ErrorKind::Unsupported, "architecture '" + name + "' is not supported (supported: " +
                                          io::supported_architectures() + ")");
}

}  // namespace mlxn::engine
