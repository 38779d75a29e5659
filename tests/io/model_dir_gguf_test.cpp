// GGUF tensor validation: Hugging Face names map to llama.cpp's, shapes are checked, and a
// missing or misshapen tensor is named.
#include "mlxn/io/model_dir_gguf.h"

#include <gtest/gtest.h>

#include "io_test_util.h"
#include "mlxn/io/gguf_writer.h"
#include "mlxn/io/model_config_gguf.h"

namespace mlxn::io {
namespace {

TEST(ModelDirGgufTest, NameMapping) {
  EXPECT_EQ(gguf_tensor_name("model.embed_tokens.weight", Architecture::Llama),
            "token_embd.weight");
  EXPECT_EQ(gguf_tensor_name("lm_head.weight", Architecture::Llama), "output.weight");
  EXPECT_EQ(gguf_tensor_name("model.norm.weight", Architecture::Llama), "output_norm.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.12.self_attn.q_proj.bias", Architecture::Qwen2),
            "blk.12.attn_q.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.0.post_attention_layernorm.weight", Architecture::Llama),
            "blk.0.ffn_norm.weight");
  EXPECT_EQ(
      gguf_tensor_name("model.layers.0.post_attention_layernorm.weight", Architecture::Gemma3),
      "blk.0.post_attention_norm.weight");
  EXPECT_EQ(
      gguf_tensor_name("model.layers.0.pre_feedforward_layernorm.weight", Architecture::Gemma2),
      "blk.0.ffn_norm.weight");
  EXPECT_EQ(
      gguf_tensor_name("model.layers.1.mlp.switch_mlp.down_proj.weight", Architecture::Qwen3Moe),
      "blk.1.ffn_down_exps.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.mlp.gate.weight", Architecture::Qwen3Moe),
            "blk.1.ffn_gate_inp.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.mlp.gate_up_proj.weight", Architecture::Phi3),
            "blk.1.ffn_up.weight");
  EXPECT_EQ(gguf_tensor_name("vision_tower.x.weight", Architecture::Gemma3), "");
}

// A qwen3moe GGUF with every tensor the family needs (F32, dims innermost first).
GgufWriter moe_writer(const std::string& skip = "", std::uint64_t bad_dim = 0) {
  GgufWriter w;
  w.add("general.architecture", "qwen3moe");
  w.add("qwen3moe.block_count", std::uint32_t{2});
  w.add("qwen3moe.embedding_length", std::uint32_t{32});
  w.add("qwen3moe.feed_forward_length", std::uint32_t{64});
  w.add("qwen3moe.attention.head_count", std::uint32_t{4});
  w.add("qwen3moe.attention.head_count_kv", std::uint32_t{2});
  w.add("qwen3moe.expert_count", std::uint32_t{4});
  w.add("qwen3moe.expert_used_count", std::uint32_t{2});
  w.add("qwen3moe.expert_feed_forward_length", std::uint32_t{16});
  w.add("qwen3moe.vocab_size", std::uint32_t{40});
  const GgufFile meta = GgufFile::from_bytes("meta", w.to_bytes());
  ModelConfig c = model_config_from_gguf(meta);
  c.tie_word_embeddings = false;
  TensorNaming naming;
  naming.stacked_experts = true;
  for (const ExpectedTensor& e : expected_tensors(c, naming)) {
    const std::string name = gguf_tensor_name(e.name, c.arch);
    if (name == skip) continue;
    std::vector<std::uint64_t> dims(e.shape.rbegin(), e.shape.rend());
    if (bad_dim && name == "blk.1.ffn_up_exps.weight") dims[0] = bad_dim;
    std::uint64_t n = 1;
    for (auto d : dims) n *= d;
    std::vector<float> data(n, 0.25f);
    w.add_tensor(name, GgmlType::F32, dims, std::as_bytes(std::span<const float>(data)));
  }
  w.add_tensor("rope_freqs.weight", GgmlType::F32, {4},
               std::as_bytes(std::span<const float>(std::vector<float>(4, 1.0f))));
  return w;
}

TEST(ModelDirGgufTest, CompleteFileValidates) {
  const GgufFile f = GgufFile::from_bytes("moe.gguf", moe_writer().to_bytes());
  const ModelConfig c = model_config_from_gguf(f);
  EXPECT_FALSE(c.tie_word_embeddings);
  const WeightCheck check = check_gguf_weights(c, f);
  EXPECT_EQ(check.bindings.size(), f.tensors().size() - 1);
  EXPECT_EQ(check.unused, (std::vector<std::string>{"rope_freqs.weight"}));
  EXPECT_EQ(check.bindings.front().stored_name, "token_embd.weight");
  EXPECT_EQ(check.bindings.front().type_name, "f32");
}

TEST(ModelDirGgufTest, MissingAndMisshapenTensorsAreNamed) {
  const GgufFile missing =
      GgufFile::from_bytes("moe.gguf", moe_writer("blk.1.attn_k_norm.weight").to_bytes());
  test::expect_error([&] { (void)check_gguf_weights(model_config_from_gguf(missing), missing); },
                     ErrorKind::Format,
                     {"moe.gguf", "missing tensor 'blk.1.attn_k_norm.weight'", "[8]"});
  const GgufFile bad = GgufFile::from_bytes("moe.gguf", moe_writer("", 31).to_bytes());
  test::expect_error(
      [&] { (void)check_gguf_weights(model_config_from_gguf(bad), bad); }, ErrorKind::Format,
      {"tensor 'blk.1.ffn_up_exps.weight'", "expected shape [4, 16, 32]", "found [4, 16, 31]"});
}

}  // namespace
}  // namespace mlxn::io
