// ModelConfig: one normalized description of a transformer's hyper-parameters, read from
// config.json (transformers 4.x and 5.x forms, Gemma 3's text_config nesting); GGUF metadata
// maps to it in model_config_gguf.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/io/mlx_quant_config.h"

namespace mlxn::io {

/// Model families the engine supports; Unknown parses but cannot be loaded.
enum class Architecture { Unknown, Llama, Mistral, Qwen2, Qwen3, Qwen3Moe, Gemma2, Gemma3, Phi3 };

/// Short name: "llama", "qwen3_moe", "gemma3", ...
std::string_view architecture_name(Architecture arch);
/// Comma-separated list of the supported families, for error messages.
std::string supported_architectures();

/// Attention span of one layer.
enum class AttentionKind { Full, Sliding };

/// RoPE frequency scaling scheme (transformers' rope_type).
enum class RopeType { Default, Linear, Dynamic, Yarn, Llama3, LongRope };

/// Name as transformers spells it: "default", "linear", "llama3", "longrope", ...
std::string_view rope_type_name(RopeType type);

/// RoPE settings of one attention kind (Gemma 3 has separate local and global ones).
struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  double factor = 1.0;                                // linear, dynamic, yarn, llama3
  double low_freq_factor = 1.0;                       // llama3
  double high_freq_factor = 4.0;                      // llama3
  std::int64_t original_max_position_embeddings = 0;  // llama3, yarn, longrope; 0 = not given
  std::vector<double> short_factor;                   // longrope: [rotary_dim / 2]
  std::vector<double> long_factor;                    // longrope: [rotary_dim / 2]
  std::optional<double> attention_factor;             // yarn, longrope (mscale); nullopt = derive
  double beta_fast = 32.0;                            // yarn
  double beta_slow = 1.0;                             // yarn
  double partial_rotary_factor = 1.0;                 // fraction of head_dim that is rotated
};

/// Normalized hyper-parameters. Counts are validated: positive, bounded, and consistent.
struct ModelConfig {
  Architecture arch = Architecture::Unknown;
  std::string model_type;          // as written ("gemma3_text" for a nested text model)
  std::string architecture_class;  // architectures[0], e.g. "LlamaForCausalLM"; may be empty

  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t moe_intermediate_size = 0;  // 0 when not MoE
  std::int64_t n_layers = 0;
  std::int64_t n_heads = 0;
  std::int64_t n_kv_heads = 0;  // defaults to n_heads
  std::int64_t head_dim = 0;    // explicit or hidden_size / n_heads
  double rms_norm_eps = 1e-6;
  std::int64_t max_position_embeddings = 0;  // 0 = not given
  bool tie_word_embeddings = false;
  std::string dtype_name;      // torch_dtype / dtype as written ("bfloat16"); may be empty
  std::optional<DType> dtype;  // dtype_name when it is f32/f16/bf16
  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_ids;  // eos_token_id may be one id or a list
  std::optional<std::int64_t> pad_token_id;
  std::string hidden_act;  // hidden_activation, else hidden_act: "silu", "gelu_pytorch_tanh"

  // Attention.
  std::optional<std::int64_t> sliding_window;  // window of Sliding layers
  std::vector<AttentionKind> layer_types;      // [n_layers]
  bool attention_bias = false;                 // q/k/v projections have biases
  bool attention_out_bias = false;  // o_proj has a bias (Llama/Qwen3/Gemma attention_bias)
  bool mlp_bias = false;
  bool qk_norm = false;                           // per-head RMSNorm of q and k (Qwen3, Gemma 3)
  std::optional<double> attn_logit_softcapping;   // Gemma 2
  std::optional<double> final_logit_softcapping;  // Gemma 2
  std::optional<double> query_pre_attn_scalar;    // Gemma: scores scale = scalar^-0.5

  // RoPE: `rope` for Full layers, `rope_local` for Sliding layers (equal unless the config
  // gives a local base, as Gemma 3 does).
  RopeConfig rope;
  RopeConfig rope_local;

  // Mixture of experts (Qwen3-MoE); n_experts == 0 means dense.
  std::int64_t n_experts = 0;
  std::int64_t n_experts_per_tok = 0;
  bool norm_topk_prob = false;
  std::int64_t decoder_sparse_step = 1;
  std::vector<std::int64_t> mlp_only_layers;

  std::optional<QuantConfig> quantization;  // MLX affine quantization, when present

  /// Attention kind of layer i (0-based); throws InvalidArgument when out of range.
  AttentionKind layer_type(std::int64_t layer) const;
  /// True when layer i uses routed experts instead of a dense MLP.
  bool is_moe_layer(std::int64_t layer) const;

  /// Parses config.json text. `source` (a file name) prefixes error messages. Throws Format
  /// naming the field for malformed or absurd values, QuantConfig / Unsupported for the
  /// quantization entry. An unrecognised architecture parses as Architecture::Unknown.
  static ModelConfig from_json_string(std::string_view json_text, std::string_view source);
  /// Reads and parses a config.json file; Io on read failure, Format as above.
  static ModelConfig from_json_file(const std::string& path);
};

/// Limits beyond which a config is rejected as absurd before anything is sized from it.
struct ModelConfigLimits {
  static constexpr std::int64_t kMaxLayers = 10000;
  static constexpr std::int64_t kMaxVocab = 10'000'000;
  static constexpr std::int64_t kMaxHidden = 1 << 20;
  static constexpr std::int64_t kMaxIntermediate = 1 << 22;
  static constexpr std::int64_t kMaxHeads = 1 << 14;
  static constexpr std::int64_t kMaxHeadDim = 1 << 14;
  static constexpr std::int64_t kMaxExperts = 1 << 16;
  static constexpr std::int64_t kMaxPositions = std::int64_t{1} << 40;
  static constexpr std::int64_t kMaxExpertLayers = 1 << 20;  // n_experts * n_layers
  static constexpr double kMaxParameters = 1e13;             // estimated from the dimensions
};

/// Checks internal consistency (dims positive and bounded, heads divide, kv heads divide heads,
/// layer_types sized n_layers, ...); throws Format "<source>: <field>: <what>".
void validate_model_config(const ModelConfig& config, std::string_view source);

}  // namespace mlxn::io
