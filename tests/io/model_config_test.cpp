// ModelConfig from real-shaped config.json files of every supported family, in the
// transformers 4.x and 5.x forms, including Gemma 3's nested text_config and MLX quantization.
#include "mlxn/io/model_config.h"

#include <gtest/gtest.h>

#include <string>

#include "io_test_util.h"

namespace mlxn::io {
namespace {

ModelConfig parse(const std::string& text) {
  return ModelConfig::from_json_string(text, "config.json");
}

std::string factors(int n, double v) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v + 0.01 * i);
  return s + "]";
}

TEST(ModelConfigTest, Llama32WithLlama3RopeTiedAndQuantized) {
  const auto c = parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 2048, "intermediate_size": 8192, "max_position_embeddings": 131072,
    "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
    "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "vocab_size": 128256,
    "quantization": {"group_size": 64, "bits": 4, "model.embed_tokens": {"group_size": 64, "bits": 6}},
    "quantization_config": {"group_size": 64, "bits": 4}
  })");
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.architecture_class, "LlamaForCausalLM");
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.n_layers, 16);
  EXPECT_EQ(c.n_heads, 32);
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.layer_types, std::vector<AttentionKind>(16, AttentionKind::Full));
  ASSERT_TRUE(c.quantization);
  EXPECT_EQ(c.quantization->for_module("model.embed_tokens"), (QuantParams{6, 64}));
  EXPECT_EQ(c.quantization->for_module("lm_head"), (QuantParams{4, 64}));
  EXPECT_FALSE(c.is_moe_layer(0));
}

TEST(ModelConfigTest, Llama2DerivesHeadDimAndKvHeads) {
  const auto c = parse(R"({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
    "num_attention_heads": 32, "num_hidden_layers": 32, "vocab_size": 32000, "rms_norm_eps": 1e-06,
    "bos_token_id": 1, "eos_token_id": 2, "rope_scaling": null})");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.n_kv_heads, 32);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_FALSE(c.quantization);
}

TEST(ModelConfigTest, MistralSlidingWindowOnEveryLayer) {
  const auto c = parse(R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral",
    "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    "sliding_window": 4096, "rope_theta": 10000.0, "max_position_embeddings": 32768})");
  EXPECT_EQ(c.arch, Architecture::Mistral);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.layer_types, std::vector<AttentionKind>(32, AttentionKind::Sliding));
  const auto nemo = parse(R"({"model_type": "mistral", "hidden_size": 5120, "head_dim": 128,
    "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 40,
    "num_key_value_heads": 8, "vocab_size": 131072, "sliding_window": null})");
  EXPECT_EQ(nemo.head_dim, 128);
  EXPECT_EQ(nemo.layer_types, std::vector<AttentionKind>(40, AttentionKind::Full));
}

TEST(ModelConfigTest, Qwen2HasImplicitQkvBiasAndWindowOff) {
  const auto c = parse(R"({"architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "intermediate_size": 4864,
    "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
    "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
    "vocab_size": 151936})");
  EXPECT_EQ(c.arch, Architecture::Qwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_FALSE(c.sliding_window);
  EXPECT_EQ(c.layer_types, std::vector<AttentionKind>(24, AttentionKind::Full));
  // With the window on, layers from max_window_layers use it.
  const auto w = parse(R"({"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
    "num_attention_heads": 4, "num_hidden_layers": 4, "vocab_size": 100, "sliding_window": 16,
    "use_sliding_window": true, "max_window_layers": 2})");
  EXPECT_EQ(w.layer_types,
            (std::vector<AttentionKind>{AttentionKind::Full, AttentionKind::Full,
                                        AttentionKind::Sliding, AttentionKind::Sliding}));
}

TEST(ModelConfigTest, Qwen3QkNormAndFiveXYarn) {
  const auto c = parse(R"({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
    "attention_bias": false, "head_dim": 128, "hidden_size": 1024, "intermediate_size": 3072,
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "vocab_size": 151936, "sliding_window": null, "use_sliding_window": false,
    "max_position_embeddings": 40960, "tie_word_embeddings": true, "dtype": "bfloat16",
    "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0,
                        "original_max_position_embeddings": 32768}})");
  EXPECT_EQ(c.arch, Architecture::Qwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 128);  // explicit, not hidden / heads = 64
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_EQ(c.rope.type, RopeType::Yarn);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(c.rope.beta_fast, 32.0);
  EXPECT_EQ(c.rope_local.type, RopeType::Yarn);
}

TEST(ModelConfigTest, Qwen3MoeExpertsAndSparseLayers) {
  const auto c = parse(R"({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
    "head_dim": 128, "hidden_size": 2048, "intermediate_size": 6144, "moe_intermediate_size": 768,
    "num_attention_heads": 32, "num_hidden_layers": 6, "num_key_value_heads": 4,
    "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": true,
    "decoder_sparse_step": 2, "mlp_only_layers": [3], "vocab_size": 151936,
    "rope_theta": 1000000.0})");
  EXPECT_EQ(c.arch, Architecture::Qwen3Moe);
  EXPECT_EQ(c.n_experts, 128);
  EXPECT_EQ(c.n_experts_per_tok, 8);
  EXPECT_EQ(c.moe_intermediate_size, 768);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_TRUE(c.qk_norm);
  // (layer + 1) % 2 == 0 and not in mlp_only_layers.
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_FALSE(c.is_moe_layer(3));
  EXPECT_TRUE(c.is_moe_layer(5));
  // 5.x spelling.
  const auto five =
      parse(R"({"model_type": "qwen3_moe", "hidden_size": 64, "intermediate_size": 128,
    "moe_intermediate_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_local_experts": 4, "num_experts_per_tok": 2, "vocab_size": 100})");
  EXPECT_EQ(five.n_experts, 4);
  EXPECT_TRUE(five.is_moe_layer(0));
}

TEST(ModelConfigTest, Gemma2SoftcapsAndAlternatingLayers) {
  const auto c = parse(R"({"architectures": ["Gemma2ForCausalLM"], "attn_logit_softcapping": 50.0,
    "bos_token_id": 2, "eos_token_id": [1, 107], "final_logit_softcapping": 30.0, "head_dim": 256,
    "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 2304, "intermediate_size": 9216, "max_position_embeddings": 8192,
    "model_type": "gemma2", "num_attention_heads": 8, "num_hidden_layers": 26,
    "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4096,
    "torch_dtype": "float32", "vocab_size": 256000})");
  EXPECT_EQ(c.arch, Architecture::Gemma2);
  EXPECT_EQ(c.attn_logit_softcapping, 50.0);
  EXPECT_EQ(c.final_logit_softcapping, 30.0);
  EXPECT_EQ(c.query_pre_attn_scalar, 256.0);
  EXPECT_TRUE(c.tie_word_embeddings);  // Gemma's default
  EXPECT_EQ(c.hidden_act, "gelu_pytorch_tanh");
  EXPECT_EQ(c.dtype, DType::F32);
  EXPECT_EQ(c.layer_type(0), AttentionKind::Sliding);
  EXPECT_EQ(c.layer_type(1), AttentionKind::Full);
  EXPECT_EQ(c.layer_type(24), AttentionKind::Sliding);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.pad_token_id, 0);
}

TEST(ModelConfigTest, Gemma3MultimodalNestsTextConfigWithClassDefaults) {
  // google/gemma-3-4b-it: text_config omits heads, head_dim, vocab and rope bases.
  const auto c = parse(R"({"architectures": ["Gemma3ForConditionalGeneration"],
    "eos_token_id": [1, 106], "model_type": "gemma3", "torch_dtype": "bfloat16",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"},
    "quantization": {"group_size": 64, "bits": 4}})");
  EXPECT_EQ(c.arch, Architecture::Gemma3);
  EXPECT_EQ(c.model_type, "gemma3_text");
  EXPECT_EQ(c.hidden_size, 2560);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.vocab_size, 262208);
  EXPECT_EQ(c.sliding_window, 1024);
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{1, 106}));  // from the top level
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.quantization);
  // Global layers: base 1e6 with linear scaling 8; local layers: base 1e4, unscaled.
  EXPECT_EQ(c.rope.type, RopeType::Linear);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope_local.type, RopeType::Default);
  EXPECT_DOUBLE_EQ(c.rope_local.theta, 1e4);
  // Pattern 6: every sixth layer is global.
  for (int i = 0; i < 34; ++i) {
    EXPECT_EQ(c.layer_type(i), (i + 1) % 6 == 0 ? AttentionKind::Full : AttentionKind::Sliding)
        << i;
  }
}

TEST(ModelConfigTest, Gemma3TextFourXAndFiveXAgree) {
  const std::string common = R"("architectures": ["Gemma3ForCausalLM"], "head_dim": 256,
    "hidden_size": 1152, "intermediate_size": 6912, "max_position_embeddings": 32768,
    "model_type": "gemma3_text", "num_attention_heads": 4, "num_hidden_layers": 8,
    "num_key_value_heads": 1, "query_pre_attn_scalar": 256, "sliding_window": 512,
    "vocab_size": 262144, "attn_logit_softcapping": null, "final_logit_softcapping": null,)";
  const auto four = parse("{" + common + R"("rope_local_base_freq": 10000, "rope_scaling": null,
    "rope_theta": 1000000, "sliding_window_pattern": 4, "torch_dtype": "bfloat16"})");
  const auto five = parse("{" + common + R"("dtype": "bfloat16",
    "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
                    "sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
    "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}})");
  for (const auto* c : {&four, &five}) {
    EXPECT_EQ(c->layer_types, five.layer_types);
    EXPECT_EQ(c->layer_type(3), AttentionKind::Full);
    EXPECT_DOUBLE_EQ(c->rope.theta, 1e6);
    EXPECT_DOUBLE_EQ(c->rope_local.theta, 1e4);
    EXPECT_EQ(c->dtype, DType::BF16);
    EXPECT_FALSE(c->attn_logit_softcapping);
  }
}

TEST(ModelConfigTest, Phi3LongRope) {
  const auto c = parse(R"({"architectures": ["Phi3ForCausalLM"], "bos_token_id": 1,
    "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "intermediate_size": 8192,
    "max_position_embeddings": 131072, "model_type": "phi3", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 32, "original_max_position_embeddings": 4096,
    "rms_norm_eps": 1e-05, "rope_scaling": {"long_factor": )" +
                       factors(48, 1.0) + R"(, "short_factor": )" + factors(48, 1.5) +
                       R"(, "type": "longrope"}, "rope_theta": 10000.0, "sliding_window": 262144,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32064})");
  EXPECT_EQ(c.arch, Architecture::Phi3);
  EXPECT_EQ(c.head_dim, 96);
  EXPECT_EQ(c.rope.type, RopeType::LongRope);
  EXPECT_EQ(c.rope.long_factor.size(), 48u);
  EXPECT_DOUBLE_EQ(c.rope.short_factor[1], 1.51);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);  // 131072 / 4096
  EXPECT_EQ(c.layer_type(0), AttentionKind::Sliding);
  // Phi-4-mini style partial rotary: 3/4 of head_dim 128 rotates -> 48 factors.
  const auto partial =
      parse(R"({"model_type": "phi3", "hidden_size": 3072,
    "intermediate_size": 8192, "num_attention_heads": 24, "num_hidden_layers": 2,
    "num_key_value_heads": 8, "vocab_size": 200064, "partial_rotary_factor": 0.75,
    "original_max_position_embeddings": 4096, "max_position_embeddings": 131072,
    "rope_scaling": {"type": "longrope", "long_factor": )" +
            factors(48, 1.0) + R"(, "short_factor": )" + factors(48, 1.0) + R"(}})");
  EXPECT_DOUBLE_EQ(partial.rope.partial_rotary_factor, 0.75);
}

TEST(ModelConfigTest, UnknownArchitectureParses) {
  const auto c = parse(R"({"model_type": "starcoder2", "architectures": ["Starcoder2ForCausalLM"],
    "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
    "num_hidden_layers": 2, "vocab_size": 100})");
  EXPECT_EQ(c.arch, Architecture::Unknown);
  EXPECT_EQ(c.model_type, "starcoder2");
  EXPECT_NE(supported_architectures().find("qwen3_moe"), std::string::npos);
}

TEST(ModelConfigTest, ArchitectureFromClassWhenModelTypeMissing) {
  const auto c = parse(R"({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64,
    "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
    "vocab_size": 100})");
  EXPECT_EQ(c.arch, Architecture::Qwen2);
}

TEST(ModelConfigTest, FromJsonFile) {
  test::TempDir dir;
  test::write_file(dir / "config.json", R"({"model_type": "llama", "hidden_size": 64,
    "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 100})");
  const auto c = ModelConfig::from_json_file((dir / "config.json").string());
  EXPECT_EQ(c.n_layers, 2);
  const std::string missing = (dir / "nope.json").string();
  test::expect_error([&] { (void)ModelConfig::from_json_file(missing); }, ErrorKind::Io,
                     {"nope.json"});
  test::write_file(dir / "bad.json", R"({"model_type": "llama", "hidden_size": 0,
    "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 100})");
  test::expect_error([&] { (void)ModelConfig::from_json_file((dir / "bad.json").string()); },
                     ErrorKind::Format, {"bad.json", "hidden_size"});
}

}  // namespace
}  // namespace mlxn::io
