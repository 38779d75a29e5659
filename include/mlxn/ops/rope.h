// Rotary position embeddings: frequency tables for every transformers rope_type (computed on the
// host) and one kernel that applies a table to [n_tokens, n_heads, head_dim] at given positions.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/command_encoder.h"

namespace mlxn::ops {

/// Which dims form a rotated pair.
enum class RopeLayout {
  Interleaved,  // GPT-J / Meta checkpoints: (2i, 2i + 1)
  Neox,         // GPT-NeoX / transformers' rotate_half: (i, i + rotary_dim / 2)
};

/// Frequency scheme, as transformers' rope_type.
enum class RopeScaling { Default, Linear, DynamicNtk, Yarn, LongRope, Llama3 };

/// What rope_inv_freq needs. The caller resolves config-file conventions (e.g. whether a YaRN
/// factor comes from the file or from max / original positions); this struct is explicit.
struct RopeConfig {
  RopeScaling scaling = RopeScaling::Default;
  double theta = 10000.0;
  std::int64_t rotary_dim = 0;  // rotated dims: head_dim * partial_rotary_factor, even, > 0
  double factor = 1.0;          // linear, dynamic, yarn, llama3; longrope when no original max
  std::int64_t max_position_embeddings = 0;           // dynamic; yarn/longrope fallback
  std::int64_t original_max_position_embeddings = 0;  // llama3; yarn, longrope (0 = max above)
  double low_freq_factor = 1.0;                       // llama3
  double high_freq_factor = 4.0;                      // llama3
  double beta_fast = 32.0;                            // yarn
  double beta_slow = 1.0;                             // yarn
  double mscale = 0.0;                                // yarn (DeepSeek); 0 = not given
  double mscale_all_dim = 0.0;                        // yarn (DeepSeek); 0 = not given
  bool truncate = true;                               // yarn: round the ramp bounds
  std::vector<double> short_factor;                   // longrope: [rotary_dim / 2]
  std::vector<double> long_factor;                    // longrope: [rotary_dim / 2]
  std::optional<double> attention_factor;             // yarn, longrope; nullopt = derive
};

/// A frequency table for the rope kernel.
struct RopeTable {
  std::vector<float> inv_freq;   // [rotary_dim / 2]
  float attention_scale = 1.0f;  // multiplies cos and sin (YaRN mscale, LongRoPE factor)
};

/// inv_freq and attention scaling of `config` for sequences of `seq_len` tokens (dynamic NTK grows
/// the base past max_position_embeddings; LongRoPE switches to long factors past the original
/// max). Follows transformers' rope init functions. Throws InvalidArgument on a bad config.
RopeTable rope_inv_freq(const RopeConfig& config, std::int64_t seq_len);

/// Rotates x: [n_tokens, n_heads, head_dim] (f32/f16/bf16) at positions: i32 [n_tokens] with
/// inv_freq: f32 [rotary_dim / 2] (rotary_dim <= head_dim); dims past rotary_dim are copied.
/// Rotated values are multiplied by attention_scale. out: like x; out may be x itself (in place).
void rope(CommandEncoder& encoder, const Buffer& x, const Buffer& positions, const Buffer& inv_freq,
          const Buffer& out, RopeLayout layout, float attention_scale = 1.0f);

}  // namespace mlxn::ops
