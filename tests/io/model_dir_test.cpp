// ModelDir: directories (single and sharded safetensors, tokenizer files), .gguf files, and
// the errors for missing configs, shards and tensors.
#include "mlxn/io/model_dir.h"

#include <gtest/gtest.h>

#include "mlxn/io/gguf_writer.h"
#include "model_dir_test_util.h"

namespace mlxn::io {
namespace {

namespace fs = std::filesystem;

TEST(ModelDirTest, OpensSingleFileDirectoryAndRecordsTokenizerFiles) {
  test::TempDir dir;
  const std::string text = test::tiny_config("qwen2", R"("tie_word_embeddings": true)");
  test::write_file(dir / "config.json", text);
  test::write_file(dir / "tokenizer.json", "{}");
  test::write_file(dir / "chat_template.jinja", "{{ messages }}");
  test::write_file(dir / "generation_config.json", "{}");
  test::write_weights(dir / "model.safetensors", ModelConfig::from_json_string(text, "c"));
  const ModelDir m = ModelDir::open(dir.path());
  EXPECT_EQ(m.format(), ModelFormat::Safetensors);
  EXPECT_EQ(m.config().arch, Architecture::Qwen2);
  ASSERT_TRUE(m.safetensors());
  EXPECT_FALSE(m.gguf());
  EXPECT_EQ(m.tokenizer_files().present(),
            (std::vector<std::string>{"tokenizer.json", "chat_template.jinja",
                                      "generation_config.json"}));
  const auto check = m.check_weights();
  EXPECT_TRUE(check.unused.empty());
  EXPECT_EQ(check.bindings.size(), m.safetensors()->size());
}

// Splits a single-file model into two shards with an index, as Hugging Face writes them.
void shard(const test::TempDir& dir, const ModelConfig& c, bool drop_second) {
  test::write_weights(dir / "all.safetensors", c);
  const auto whole = SafetensorsFile::open(dir / "all.safetensors");
  SafetensorsWriter a, b;
  std::string map;
  std::size_t i = 0;
  for (const TensorView& t : whole.tensors()) {
    const bool first = i++ % 2 == 0;
    (first ? a : b).add(t.name, t.dtype, t.shape, t.bytes);
    const char* shard =
        first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    map += std::string(map.empty() ? "" : ", ") + "\"" + t.name + "\": \"" + shard + "\"";
  }
  a.write(dir / "model-00001-of-00002.safetensors");
  if (!drop_second) b.write(dir / "model-00002-of-00002.safetensors");
  fs::remove(dir / "all.safetensors");
  test::write_file(dir / "model.safetensors.index.json",
                   R"({"metadata": {"total_size": 1}, "weight_map": {)" + map + "}}");
}

TEST(ModelDirTest, OpensShardedQuantizedDirectory) {
  test::TempDir dir;
  const std::string text =
      test::tiny_config("llama", R"("quantization": {"group_size": 64, "bits": 4})");
  test::write_file(dir / "config.json", text);
  shard(dir, ModelConfig::from_json_string(text, "c"), false);
  const ModelDir m = ModelDir::open(dir.path());
  EXPECT_EQ(m.safetensors()->files().size(), 2u);
  const auto check = m.check_weights();
  EXPECT_EQ(check.bindings.front().quant, (QuantParams{4, 64}));
}

TEST(ModelDirTest, MissingShardIsNamed) {
  test::TempDir dir;
  const std::string text = test::tiny_config("llama");
  test::write_file(dir / "config.json", text);
  shard(dir, ModelConfig::from_json_string(text, "c"), true);
  test::expect_error([&] { (void)ModelDir::open(dir.path()); }, ErrorKind::Io,
                     {"model-00002-of-00002.safetensors", "missing"});
}

TEST(ModelDirTest, MissingTensorAndWrongShapeAreNamed) {
  test::TempDir dir;
  const std::string text = test::tiny_config("mistral");
  test::write_file(dir / "config.json", text);
  const auto c = ModelConfig::from_json_string(text, "c");
  test::write_weights(dir / "model.safetensors", c, {.drop = {"lm_head.weight"}});
  const ModelDir m = ModelDir::open(dir.path());
  test::expect_error([&] { (void)m.check_weights(); }, ErrorKind::Format,
                     {dir.path().string(), "missing tensor 'lm_head.weight'", "[96, 64]"});
  test::write_weights(dir / "model.safetensors", c,
                      {.reshape = {{"model.layers.1.self_attn.o_proj.weight", {64, 32}}}});
  const ModelDir m2 = ModelDir::open(dir.path());
  test::expect_error(
      [&] { (void)m2.check_weights(); }, ErrorKind::Format,
      {"model.layers.1.self_attn.o_proj.weight", "expected shape [64, 64]", "found [64, 32]"});
}

TEST(ModelDirTest, BadConfigFailsBeforeWeights) {
  test::TempDir dir;
  test::write_file(dir / "config.json", test::tiny_config("llama", R"("num_hidden_layers": 1e9)"));
  test::expect_error([&] { (void)ModelDir::open(dir.path()); }, ErrorKind::Format,
                     {"config.json", "num_hidden_layers"});
}

TEST(ModelDirTest, PathErrors) {
  test::TempDir dir;
  test::expect_error([&] { (void)ModelDir::open(dir / "nope"); }, ErrorKind::Io, {"nope"});
  test::expect_error([&] { (void)ModelDir::open(dir.path()); }, ErrorKind::Format,
                     {"no config.json and no .gguf file"});
  test::write_file(dir / "config.json", test::tiny_config("llama"));
  test::expect_error([&] { (void)ModelDir::open(dir.path()); }, ErrorKind::Io,
                     {"no .safetensors files"});
  test::write_file(dir / "weights.bin", "x");
  test::expect_error([&] { (void)ModelDir::open(dir / "weights.bin"); }, ErrorKind::Format,
                     {"not a model directory or .gguf file"});
}

TEST(ModelDirTest, OpensGgufFileAndDirectory) {
  test::TempDir dir;
  GgufWriter w;
  w.add("general.architecture", "qwen3");
  w.add("qwen3.block_count", std::uint32_t{2});
  w.add("qwen3.embedding_length", std::uint32_t{64});
  w.add("qwen3.feed_forward_length", std::uint32_t{128});
  w.add("qwen3.attention.head_count", std::uint32_t{4});
  w.add("qwen3.attention.head_count_kv", std::uint32_t{2});
  w.add("qwen3.vocab_size", std::uint32_t{96});
  w.write(dir / "tiny.gguf");
  const ModelDir file = ModelDir::open(dir / "tiny.gguf");
  EXPECT_EQ(file.format(), ModelFormat::Gguf);
  EXPECT_EQ(file.config().arch, Architecture::Qwen3);
  ASSERT_TRUE(file.gguf());
  test::expect_error([&] { (void)file.check_weights(); }, ErrorKind::Format,
                     {"tiny.gguf", "missing tensor 'token_embd.weight'", "[96, 64]"});
  const ModelDir d = ModelDir::open(dir.path());  // a directory holding one .gguf
  EXPECT_EQ(d.format(), ModelFormat::Gguf);
  w.write(dir / "copy.gguf");
  test::expect_error([&] { (void)ModelDir::open(dir.path()); }, ErrorKind::Format,
                     {"2 .gguf files"});
}

}  // namespace
}  // namespace mlxn::io
