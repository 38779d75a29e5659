// ModelConfig from GGUF metadata: llama.cpp's keys for each family map to the same struct.
#include "mlxn/io/model_config_gguf.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io_test_util.h"
#include "mlxn/io/gguf_writer.h"

namespace mlxn::io {
namespace {

// Common keys of a small model of `arch`.
GgufWriter base_writer(const std::string& arch, std::uint32_t layers = 4) {
  GgufWriter w;
  w.add("general.architecture", arch);
  w.add(arch + ".block_count", layers);
  w.add(arch + ".embedding_length", std::uint32_t{256});
  w.add(arch + ".feed_forward_length", std::uint32_t{512});
  w.add(arch + ".attention.head_count", std::uint32_t{8});
  w.add(arch + ".attention.head_count_kv", std::uint32_t{2});
  w.add(arch + ".context_length", std::uint32_t{4096});
  w.add(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.add(arch + ".rope.freq_base", 500000.0f);
  w.add("tokenizer.ggml.tokens", std::vector<std::string>(300, "t"));
  w.add("tokenizer.ggml.bos_token_id", std::uint32_t{1});
  w.add("tokenizer.ggml.eos_token_id", std::uint32_t{2});
  return w;
}

ModelConfig read(const GgufWriter& w) {
  const GgufFile f = GgufFile::from_bytes("model.gguf", w.to_bytes());
  return model_config_from_gguf(f);
}

void add_f32(GgufWriter& w, const std::string& name, std::vector<std::uint64_t> dims) {
  std::uint64_t n = 1;
  for (auto d : dims) n *= d;
  std::vector<float> data(n, 1.0f);
  w.add_tensor(name, GgmlType::F32, dims, std::as_bytes(std::span<const float>(data)));
}

TEST(ModelConfigGgufTest, Llama) {
  GgufWriter w = base_writer("llama");
  add_f32(w, "output.weight", {256, 300});
  const auto c = read(w);
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.n_layers, 4);
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.intermediate_size, 512);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.vocab_size, 300);  // from the token list
  EXPECT_FLOAT_EQ(static_cast<float>(c.rms_norm_eps), 1e-5f);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_FALSE(c.tie_word_embeddings);  // output.weight present
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{2}));
}

TEST(ModelConfigGgufTest, QwenFamilies) {
  const auto q2 = read(base_writer("qwen2"));
  EXPECT_EQ(q2.arch, Architecture::Qwen2);
  EXPECT_TRUE(q2.attention_bias);
  EXPECT_TRUE(q2.tie_word_embeddings);
  GgufWriter w3 = base_writer("qwen3");
  w3.add("qwen3.attention.key_length", std::uint32_t{64});
  const auto q3 = read(w3);
  EXPECT_TRUE(q3.qk_norm);
  EXPECT_EQ(q3.head_dim, 64);
  GgufWriter moe = base_writer("qwen3moe");
  moe.add("qwen3moe.expert_count", std::uint32_t{16});
  moe.add("qwen3moe.expert_used_count", std::uint32_t{4});
  moe.add("qwen3moe.expert_feed_forward_length", std::uint32_t{128});
  const auto m = read(moe);
  EXPECT_EQ(m.arch, Architecture::Qwen3Moe);
  EXPECT_EQ(m.n_experts, 16);
  EXPECT_EQ(m.n_experts_per_tok, 4);
  EXPECT_EQ(m.moe_intermediate_size, 128);
  EXPECT_TRUE(m.norm_topk_prob);
  EXPECT_TRUE(m.is_moe_layer(0));
}

TEST(ModelConfigGgufTest, GemmaFamilies) {
  GgufWriter g2 = base_writer("gemma2");
  g2.add("gemma2.attention.sliding_window", std::uint32_t{4096});
  g2.add("gemma2.attn_logit_softcapping", 50.0f);
  g2.add("gemma2.final_logit_softcapping", 30.0f);
  const auto c2 = read(g2);
  EXPECT_EQ(c2.layer_type(0), AttentionKind::Sliding);
  EXPECT_EQ(c2.layer_type(1), AttentionKind::Full);
  EXPECT_EQ(c2.final_logit_softcapping, 30.0);
  EXPECT_EQ(c2.query_pre_attn_scalar, 32.0);
  EXPECT_EQ(c2.hidden_act, "gelu_pytorch_tanh");

  GgufWriter g3 = base_writer("gemma3", 12);
  g3.add("gemma3.attention.sliding_window", std::uint32_t{512});
  g3.add("gemma3.rope.scaling.type", "linear");
  g3.add("gemma3.rope.scaling.factor", 8.0f);
  const auto c3 = read(g3);
  EXPECT_TRUE(c3.qk_norm);
  EXPECT_EQ(c3.layer_type(4), AttentionKind::Sliding);
  EXPECT_EQ(c3.layer_type(5), AttentionKind::Full);
  EXPECT_EQ(c3.rope.type, RopeType::Linear);
  EXPECT_DOUBLE_EQ(c3.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c3.rope_local.theta, 10000.0);
  EXPECT_EQ(c3.rope_local.type, RopeType::Default);
}

TEST(ModelConfigGgufTest, Phi3LongRopeFactorsFromTensors) {
  GgufWriter w = base_writer("phi3");
  w.add("phi3.rope.scaling.original_context_length", std::uint32_t{1024});
  w.add("phi3.attention.sliding_window", std::uint32_t{2047});
  add_f32(w, "rope_factors_long.weight", {16});
  add_f32(w, "rope_factors_short.weight", {16});
  const auto c = read(w);
  EXPECT_EQ(c.arch, Architecture::Phi3);
  EXPECT_EQ(c.rope.type, RopeType::LongRope);
  EXPECT_EQ(c.rope.long_factor.size(), 16u);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 1024);
  EXPECT_EQ(c.layer_type(0), AttentionKind::Sliding);
}

TEST(ModelConfigGgufTest, Errors) {
  test::expect_error([] { (void)read(base_writer("mamba")); }, ErrorKind::Unsupported,
                     {"model.gguf", "mamba", "qwen3moe"});
  GgufWriter huge = base_writer("llama", 100000);
  test::expect_error([&] { (void)read(huge); }, ErrorKind::Format, {"llama.block_count", "100000"});
  GgufWriter missing;
  missing.add("general.architecture", "llama");
  test::expect_error([&] { (void)read(missing); }, ErrorKind::Format, {"model.gguf", "llama."});
  GgufWriter bad;
  bad.add("general.architecture", "qwen2");
  bad.add("qwen2.block_count", std::uint32_t{2});
  bad.add("qwen2.embedding_length", std::uint32_t{256});
  bad.add("qwen2.feed_forward_length", std::uint32_t{512});
  bad.add("qwen2.attention.head_count", std::uint32_t{8});
  bad.add("qwen2.attention.head_count_kv", std::uint32_t{3});
  bad.add("tokenizer.ggml.tokens", std::vector<std::string>(10, "t"));
  test::expect_error([&] { (void)read(bad); }, ErrorKind::Format, {"num_key_value_heads"});
}

}  // namespace
}  // namespace mlxn::io
