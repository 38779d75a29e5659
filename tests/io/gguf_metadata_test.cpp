// Tests of GgufMetadata: architecture-prefixed hyper-parameters, conversions, tokenizer arrays.
#include "mlxn/io/gguf_metadata.h"

#include <gtest/gtest.h>

#include <functional>

#include "mlxn/core/error.h"
#include "mlxn/io/gguf_writer.h"

namespace mlxn::io {
namespace {

GgufFile llama_like(bool with_optional) {
  GgufWriter w;
  w.add("general.architecture", std::string("llama"));
  w.add("llama.context_length", std::uint32_t{4096});
  w.add("llama.embedding_length", std::uint64_t{2048});  // some converters write u64
  w.add("llama.block_count", std::int32_t{3});
  w.add("llama.feed_forward_length", std::vector<std::int32_t>{100, 200, 300});
  w.add("llama.attention.head_count", std::uint32_t{16});
  w.add("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  if (with_optional) {
    w.add("llama.attention.head_count_kv", std::uint32_t{4});
    w.add("llama.rope.freq_base", 500000.0f);
    w.add("llama.rope.dimension_count", std::uint32_t{128});
    w.add("llama.rope.scaling.type", std::string("yarn"));
    w.add("llama.rope.scaling.factor", 4.0f);
    w.add("llama.rope.scaling.original_context_length", std::uint32_t{8192});
    w.add("llama.expert_count", std::uint32_t{8});
    w.add("llama.expert_used_count", std::uint32_t{2});
    w.add("llama.attention.sliding_window", std::uint32_t{1024});
    w.add("tokenizer.ggml.scores", std::vector<float>{0.0f, -1.0f, -2.0f});
    w.add("tokenizer.ggml.token_type", std::vector<std::int32_t>{3, 1, 1});
    w.add("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
    w.add("tokenizer.ggml.bos_token_id", std::uint32_t{1});
    w.add("tokenizer.ggml.eos_token_id", std::uint32_t{2});
    w.add("tokenizer.chat_template", std::string("{{ messages }}"));
  }
  w.add("tokenizer.ggml.model", std::string("gpt2"));
  w.add("tokenizer.ggml.tokens", std::vector<std::string>{"<s>", "a", "b"});
  w.add("bad.negative", std::int32_t{-1});
  w.add("bad.string", std::string("x"));
  return GgufFile::from_bytes(with_optional ? "full.gguf" : "min.gguf", w.to_bytes());
}

TEST(GgufMetadata, HyperParametersWithConversions) {
  GgufFile f = llama_like(true);
  GgufMetadata m(f);
  EXPECT_EQ(m.architecture(), "llama");
  EXPECT_EQ(m.arch_key("block_count"), "llama.block_count");
  EXPECT_EQ(m.context_length(), 4096u);
  EXPECT_EQ(m.embedding_length(), 2048u);
  EXPECT_EQ(m.block_count(), 3u);
  EXPECT_EQ(m.head_count(), 16u);
  EXPECT_EQ(m.head_count_kv(), 4u);
  EXPECT_FLOAT_EQ(*m.rms_norm_eps(), 1e-5f);
  EXPECT_FALSE(m.layer_norm_eps());
  EXPECT_EQ(m.rope_freq_base(), 500000.0f);
  EXPECT_EQ(m.rope_dimension_count(), 128u);
  EXPECT_EQ(m.rope_scaling_type(), "yarn");
  EXPECT_EQ(m.rope_scaling_factor(), 4.0f);
  EXPECT_EQ(m.rope_scaling_original_context_length(), 8192u);
  EXPECT_EQ(m.expert_count(), 8u);
  EXPECT_EQ(m.expert_used_count(), 2u);
  EXPECT_EQ(m.sliding_window(), 1024u);
  EXPECT_EQ(m.per_layer("feed_forward_length"), (std::vector<std::uint32_t>{100, 200, 300}));
  EXPECT_EQ(m.per_layer("attention.head_count"), (std::vector<std::uint32_t>{16, 16, 16}));
  EXPECT_EQ(m.get<std::int64_t>("llama.context_length"), 4096);
  EXPECT_EQ(m.get<double>("llama.context_length"), 4096.0);
  EXPECT_EQ(m.get_or<std::uint32_t>("llama.absent", 7), 7u);
  EXPECT_TRUE(m.has("llama.block_count"));
  EXPECT_TRUE(m.arch_has("rope.freq_base"));
  EXPECT_FALSE(m.arch_has("rope.nope"));
}

TEST(GgufMetadata, DefaultsWhenOptionalKeysAreAbsent) {
  GgufFile f = llama_like(false);
  GgufMetadata m(f);
  EXPECT_EQ(m.head_count_kv(), 16u);  // no GQA
  EXPECT_EQ(m.rope_freq_base(), 10000.0f);
  EXPECT_FALSE(m.rope_dimension_count());
  EXPECT_FALSE(m.rope_scaling_type());
  EXPECT_EQ(m.expert_count(), 0u);
  EXPECT_FALSE(m.sliding_window());
  EXPECT_EQ(m.scores(), nullptr);
  EXPECT_EQ(m.merges(), nullptr);
  EXPECT_FALSE(m.bos_token_id());
  EXPECT_FALSE(m.chat_template());
}

TEST(GgufMetadata, TokenizerArraysAreReturnedWithoutCopies) {
  GgufFile f = llama_like(true);
  GgufMetadata m(f);
  EXPECT_EQ(m.tokenizer_model(), "gpt2");
  const std::vector<std::string>& tokens = m.tokens();
  EXPECT_EQ(tokens, (std::vector<std::string>{"<s>", "a", "b"}));
  EXPECT_EQ(&tokens, &f.at("tokenizer.ggml.tokens").array<std::string>());
  ASSERT_NE(m.scores(), nullptr);
  EXPECT_EQ((*m.scores())[2], -2.0f);
  EXPECT_EQ(*m.token_types(), (std::vector<std::int32_t>{3, 1, 1}));
  EXPECT_EQ(*m.merges(), (std::vector<std::string>{"a b"}));
  EXPECT_EQ(m.bos_token_id(), 1u);
  EXPECT_EQ(m.eos_token_id(), 2u);
  EXPECT_EQ(m.chat_template(), "{{ messages }}");
}

void expect_format_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    FAIL() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(".gguf"), std::string::npos) << e.what();
  }
}

TEST(GgufMetadata, MismatchesAndRangeErrorsNameTheKey) {
  GgufFile f = llama_like(true);
  GgufMetadata m(f);
  expect_format_error([&] { m.get<std::uint32_t>("bad.negative"); }, "bad.negative");
  expect_format_error([&] { m.get<std::uint8_t>("llama.context_length"); }, "out of range");
  expect_format_error([&] { m.get<float>("bad.string"); }, "bad.string");
  expect_format_error([&] { m.get<bool>("llama.block_count"); }, "expected bool");
  expect_format_error([&] { m.get<std::uint32_t>("llama.nope"); }, "llama.nope");
  expect_format_error([&] { m.array<float>("tokenizer.ggml.tokens"); }, "array of string");
  expect_format_error([&] { m.get_or<std::uint32_t>("bad.string", 1); }, "bad.string");
}

TEST(GgufMetadata, MissingArchitectureAndAbsurdLayerCounts) {
  GgufWriter w;
  w.add("x.block_count", std::uint32_t{4000000000u});
  GgufFile none = GgufFile::from_bytes("noarch.gguf", w.to_bytes());
  expect_format_error([&] { GgufMetadata(none).architecture(); }, "general.architecture");
  w.add("general.architecture", std::string("x"));
  w.add("x.feed_forward_length", std::uint32_t{1});
  GgufFile huge = GgufFile::from_bytes("huge.gguf", w.to_bytes());
  expect_format_error([&] { GgufMetadata(huge).per_layer("feed_forward_length"); }, "implausible");
}

}  // namespace
}  // namespace mlxn::io
