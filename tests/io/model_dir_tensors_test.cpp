// Expected tensors per family and weight validation: dense, MLX-quantized (mixed bits,
// embeddings, stacked experts), prefixes, and errors naming tensor and shapes.
#include "mlxn/io/model_dir_tensors.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "mlxn/io/safetensors_model.h"
#include "model_dir_test_util.h"

namespace mlxn::io {
namespace {

ModelConfig cfg(const std::string& type, const std::string& extra = "") {
  return ModelConfig::from_json_string(test::tiny_config(type, extra), "config.json");
}

const ExpectedTensor* find(const std::vector<ExpectedTensor>& v, const std::string& name) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& e) { return e.name == name; });
  return it == v.end() ? nullptr : &*it;
}

TEST(ModelDirTensorsTest, LlamaExpectedNamesAndShapes) {
  const auto untied = expected_tensors(cfg("llama"), {});
  // embed + norm + lm_head + 2 layers x (2 norms + 4 attn + 3 mlp).
  EXPECT_EQ(untied.size(), 3u + 2 * 9);
  const auto* k = find(untied, "model.layers.1.self_attn.k_proj.weight");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->shape, (Shape{2 * 16, 64}));
  EXPECT_TRUE(k->quantizable);
  EXPECT_EQ(find(untied, "model.layers.0.mlp.down_proj.weight")->shape, (Shape{64, 128}));
  EXPECT_EQ(find(untied, "model.embed_tokens.weight")->shape, (Shape{96, 64}));
  EXPECT_FALSE(find(untied, "model.norm.weight")->quantizable);
  EXPECT_TRUE(find(untied, "lm_head.weight"));
  const auto tied = expected_tensors(cfg("llama", R"("tie_word_embeddings": true)"), {});
  EXPECT_FALSE(find(tied, "lm_head.weight"));
}

TEST(ModelDirTensorsTest, FamilyFeatures) {
  const auto qwen2 = expected_tensors(cfg("qwen2"), {});
  EXPECT_EQ(find(qwen2, "model.layers.0.self_attn.q_proj.bias")->shape, (Shape{64}));
  EXPECT_EQ(find(qwen2, "model.layers.0.self_attn.v_proj.bias")->shape, (Shape{32}));
  EXPECT_FALSE(find(qwen2, "model.layers.0.self_attn.o_proj.bias"));
  const auto qwen3 = expected_tensors(cfg("qwen3", R"("head_dim": 32)"), {});
  EXPECT_EQ(find(qwen3, "model.layers.0.self_attn.q_norm.weight")->shape, (Shape{32}));
  EXPECT_EQ(find(qwen3, "model.layers.0.self_attn.q_proj.weight")->shape, (Shape{128, 64}));
  const auto phi3 = expected_tensors(cfg("phi3"), {});
  EXPECT_EQ(find(phi3, "model.layers.0.self_attn.qkv_proj.weight")->shape,
            (Shape{64 + 2 * 32, 64}));
  EXPECT_EQ(find(phi3, "model.layers.0.mlp.gate_up_proj.weight")->shape, (Shape{256, 64}));
  EXPECT_FALSE(find(phi3, "model.layers.0.self_attn.q_proj.weight"));
  const auto gemma2 = expected_tensors(cfg("gemma2", R"("head_dim": 16, "sliding_window": 8)"), {});
  EXPECT_TRUE(find(gemma2, "model.layers.1.pre_feedforward_layernorm.weight"));
  EXPECT_TRUE(find(gemma2, "model.layers.1.post_feedforward_layernorm.weight"));
  EXPECT_FALSE(find(gemma2, "lm_head.weight"));  // tied by default
  const auto llama_bias =
      expected_tensors(cfg("llama", R"("attention_bias": true, "mlp_bias": true)"), {});
  EXPECT_TRUE(find(llama_bias, "model.layers.0.self_attn.o_proj.bias"));
  EXPECT_TRUE(find(llama_bias, "model.layers.0.mlp.up_proj.bias"));
}

TEST(ModelDirTensorsTest, MoeExpertsStackedOrPerExpert) {
  const auto c = cfg("qwen3_moe", R"("num_experts": 4, "num_experts_per_tok": 2,
      "moe_intermediate_size": 32, "mlp_only_layers": [1])");
  TensorNaming stacked;
  stacked.stacked_experts = true;
  const auto s = expected_tensors(c, stacked);
  EXPECT_EQ(find(s, "model.layers.0.mlp.switch_mlp.gate_proj.weight")->shape, (Shape{4, 32, 64}));
  EXPECT_EQ(find(s, "model.layers.0.mlp.switch_mlp.down_proj.weight")->shape, (Shape{4, 64, 32}));
  EXPECT_EQ(find(s, "model.layers.0.mlp.gate.weight")->shape, (Shape{4, 64}));
  EXPECT_TRUE(find(s, "model.layers.1.mlp.gate_proj.weight"));  // dense layer
  const auto hf = expected_tensors(c, {});
  EXPECT_EQ(find(hf, "model.layers.0.mlp.experts.3.up_proj.weight")->shape, (Shape{32, 64}));
  EXPECT_FALSE(find(hf, "model.layers.0.mlp.switch_mlp.up_proj.weight"));
}

TEST(ModelDirTensorsTest, UnknownArchitectureListsSupported) {
  const auto c = cfg("starcoder2");
  test::expect_error([&] { (void)expected_tensors(c, {}); }, ErrorKind::Unsupported,
                     {"starcoder2", "llama", "qwen3_moe", "phi3"});
}

// Writes `config`'s weights, reopens them and runs check_weights.
WeightCheck roundtrip(const ModelConfig& c, const test::WeightOptions& opt = {}) {
  test::TempDir dir;
  test::write_weights(dir / "model.safetensors", c, opt);
  const auto model = SafetensorsModel::open(dir.path());
  return check_weights(c, model.tensors(), "tiny");
}

TEST(ModelDirTensorsTest, DenseWeightsValidate) {
  const auto c = cfg("qwen3", R"("head_dim": 32)");
  const auto check = roundtrip(c, {.extra = {"model.rotary_emb.inv_freq"}});
  EXPECT_EQ(check.bindings.size(), expected_tensors(c, {}).size());
  EXPECT_FALSE(check.bindings.front().quant);
  EXPECT_EQ(check.bindings.front().dtype, TensorDType::BF16);
  EXPECT_EQ(check.unused, (std::vector<std::string>{"model.rotary_emb.inv_freq"}));
}

TEST(ModelDirTensorsTest, MixedQuantizedWeightsValidate) {
  const auto c = cfg("llama", R"("quantization": {"group_size": 32, "bits": 4,
      "model.embed_tokens": {"group_size": 64, "bits": 6},
      "model.layers.0.mlp.down_proj": {"group_size": 128, "bits": 8},
      "model.layers.1.self_attn.q_proj": {"group_size": 32, "bits": 3},
      "lm_head": false})");
  const auto check = roundtrip(c);
  std::map<std::string, std::optional<QuantParams>> q;
  for (const auto& b : check.bindings) q[b.expected.name] = b.quant;
  EXPECT_EQ(q["model.embed_tokens.weight"], (QuantParams{6, 64}));
  EXPECT_EQ(q["model.layers.0.mlp.down_proj.weight"], (QuantParams{8, 128}));
  EXPECT_EQ(q["model.layers.1.self_attn.q_proj.weight"], (QuantParams{3, 32}));
  EXPECT_EQ(q["model.layers.0.self_attn.q_proj.weight"], (QuantParams{4, 32}));
  EXPECT_EQ(q["lm_head.weight"], std::nullopt);
  EXPECT_EQ(q["model.norm.weight"], std::nullopt);
  EXPECT_TRUE(check.unused.empty());
}

TEST(ModelDirTensorsTest, QuantizedStackedExpertsAndInferredParams) {
  auto c = cfg("qwen3_moe", R"("num_experts": 4, "num_experts_per_tok": 2,
      "moe_intermediate_size": 64, "quantization": {"group_size": 64, "bits": 4})");
  test::WeightOptions opt;
  opt.naming.stacked_experts = true;
  test::TempDir dir;
  test::write_weights(dir / "model.safetensors", c, opt);
  const auto model = SafetensorsModel::open(dir.path());
  const auto check = check_weights(c, model.tensors(), "moe");
  EXPECT_TRUE(check.naming.stacked_experts);
  const auto& sw = model.at("model.layers.0.mlp.switch_mlp.gate_proj.weight");
  EXPECT_EQ(sw.shape, (Shape{4, 64, 8}));
  // Without a quantization entry, bits and group size are inferred from the shapes.
  c.quantization.reset();
  const auto inferred = check_weights(c, model.tensors(), "moe");
  EXPECT_EQ(inferred.bindings.front().quant, (QuantParams{4, 64}));
}

TEST(ModelDirTensorsTest, Gemma3MultimodalPrefixAndVisionTowerUnused) {
  const auto c = ModelConfig::from_json_string(
      R"({"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"],
          "text_config": {"model_type": "gemma3_text", "hidden_size": 64, "intermediate_size": 128,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "head_dim": 16, "vocab_size": 96, "sliding_window": 8}})",
      "config.json");
  test::WeightOptions opt;
  opt.naming.body = "language_model.model.";
  opt.extra = {"vision_tower.vision_model.embeddings.patch_embedding.bias"};
  const auto check = roundtrip(c, opt);
  EXPECT_EQ(check.naming.body, "language_model.model.");
  EXPECT_EQ(check.unused.size(), 1u);
}

TEST(ModelDirTensorsTest, ErrorsNameTensorAndShapes) {
  const auto c = cfg("llama", R"("quantization": {"group_size": 32, "bits": 4})");
  test::expect_error([&] { roundtrip(c, {.drop = {"model.layers.1.mlp.up_proj.weight"}}); },
                     ErrorKind::Format,
                     {"tiny", "missing tensor 'model.layers.1.mlp.up_proj.weight'", "[128, 64]"});
  test::expect_error([&] { roundtrip(c, {.drop = {"model.layers.0.self_attn.k_proj.biases"}}); },
                     ErrorKind::Format,
                     {"missing tensor 'model.layers.0.self_attn.k_proj.biases'"});
  // A 4-bit g32 [32, 64] weight packs to [32, 8]; [32, 16] is 8-bit packing.
  test::expect_error(
      [&] {
        roundtrip(c, {.reshape = {{"model.layers.0.self_attn.k_proj.weight", {32, 16}}}});
      },
      ErrorKind::Format,
      {"tensor 'model.layers.0.self_attn.k_proj.weight'", "expected shape [32, 8]",
       "4-bit, group 32 packing of [32, 64]", "found [32, 16]"});
  test::expect_error(
      [&] {
        roundtrip(c, {.reshape = {{"model.norm.weight", {63}}}});
      },
      ErrorKind::Format, {"tensor 'model.norm.weight'", "expected shape [64]", "found [63]"});
  test::expect_error(
      [&] {
        roundtrip(c, {.reshape = {{"model.layers.1.mlp.down_proj.scales", {64, 3}}}});
      },
      ErrorKind::Format, {"model.layers.1.mlp.down_proj.scales", "expected shape [64, 4]"});
  // A module the config leaves unquantized must not carry scales.
  auto off = cfg("llama", R"("quantization": {"group_size": 32, "bits": 4, "lm_head": false})");
  auto on = cfg("llama", R"("quantization": {"group_size": 32, "bits": 4})");
  test::TempDir dir;
  test::write_weights(dir / "model.safetensors", on);
  const auto model = SafetensorsModel::open(dir.path());
  test::expect_error([&] { (void)check_weights(off, model.tensors(), "tiny"); },
                     ErrorKind::QuantConfig, {"lm_head", "unquantized"});
  test::expect_error([&] { (void)check_weights(cfg("gpt_neox"), model.tensors(), "tiny"); },
                     ErrorKind::Unsupported, {"gpt_neox", "supported:"});
}

}  // namespace
}  // namespace mlxn::io
