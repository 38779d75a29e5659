// BlockFeatures: what distinguishes one model family's decoder block from another's. Each family
// file (src/engine/families/<family>.cpp) turns a ModelConfig into these; one shared block
// builder (transformer.h) runs them all.
#pragma once

#include <cstdint>
#include <optional>

#include "mlxn/io/model_config.h"
#include "mlxn/ops/activations.h"
#include "mlxn/ops/rope.h"

namespace mlxn::engine {

enum class FfnActivation { Silu, GeluTanh, GeluErf };

struct BlockFeatures {
  bool sandwich_norms = false;  // Gemma 2/3: post-attention and post-FFN norms
  bool qk_norm = false;         // Qwen3, Gemma 3
  FfnActivation activation = FfnActivation::Silu;
  float embedding_scale = 1.0f;  // Gemma: sqrt(hidden) rounded to the model dtype
  float attn_scale = 0.0f;       // 0: 1/sqrt(head_dim); Gemma: query_pre_attn_scalar^-0.5
  float attn_softcap = 0.0f;     // Gemma 2
  float final_softcap = 0.0f;    // Gemma 2
  ops::RopeLayout rope_layout = ops::RopeLayout::Neox;
  ops::RopeConfig rope_global;  // Full layers
  ops::RopeConfig rope_local;   // Sliding layers (Gemma 3: its own base)
  bool moe = false;             // Qwen3-MoE routed experts
};

/// The features of config's family (dispatches to the family files). Throws Unsupported for
/// Architecture::Unknown, listing the supported families.
BlockFeatures block_features(const io::ModelConfig& config);

/// Maps the config's RoPE settings to the op's for head_dim; shared by the family files.
ops::RopeConfig rope_config_for(const io::RopeConfig& rope, const io::ModelConfig& config);

// One function per family, each in src/engine/families/<name>.cpp.
BlockFeatures llama_features(const io::ModelConfig& config);
BlockFeatures mistral_features(const io::ModelConfig& config);
BlockFeatures qwen2_features(const io::ModelConfig& config);
BlockFeatures qwen3_features(const io::ModelConfig& config);
BlockFeatures qwen3_moe_features(const io::ModelConfig& config);
BlockFeatures gemma2_features(const io::ModelConfig& config);
BlockFeatures gemma3_features(const io::ModelConfig& config);
BlockFeatures phi3_features(const io::ModelConfig& config);

}  // namespace mlxn::engine
