// Tests for SafetensorsModel: single files, directories with and without a shard index.
#include "mlxn/io/safetensors_model.h"

#include <gtest/gtest.h>

#include "io_test_util.h"
#include "mlxn/io/safetensors_writer.h"

namespace mlxn::io {
namespace {

using test::expect_error;
using test::TempDir;

// Writes a shard holding `names`, each a U8 tensor of `n` bytes equal to `fill`.
void write_shard(const std::filesystem::path& path, const std::vector<std::string>& names,
                 std::uint8_t fill = 1, std::int64_t n = 4) {
  SafetensorsWriter writer;
  for (const std::string& name : names) {
    writer.add(name, TensorDType::U8, {n}, std::vector<std::uint8_t>(n, fill));
  }
  writer.write(path);
}

const char* kIndex = R"({
  "metadata": {"total_size": 20},
  "weight_map": {
    "model.embed.weight": "model-00001-of-00002.safetensors",
    "model.layers.0.w": "model-00001-of-00002.safetensors",
    "model.layers.1.w": "model-00002-of-00002.safetensors",
    "lm_head.weight": "model-00002-of-00002.safetensors"
  }
})";

void write_sharded(const TempDir& dir) {
  write_shard(dir / "model-00001-of-00002.safetensors", {"model.embed.weight", "model.layers.0.w"},
              1, 8);
  write_shard(dir / "model-00002-of-00002.safetensors", {"model.layers.1.w", "lm_head.weight"}, 2);
  test::write_file(dir / "model.safetensors.index.json", kIndex);
}

TEST(SafetensorsModelTest, ShardedDirectoryWithIndex) {
  TempDir dir;
  write_sharded(dir);
  // Mistral-style repositories also ship a consolidated file with the same tensors; the index
  // decides which files belong to the model.
  write_shard(dir / "consolidated.safetensors", {"model.embed.weight"});

  const SafetensorsModel model = SafetensorsModel::open(dir.path());
  EXPECT_EQ(model.index_path(), dir / "model.safetensors.index.json");
  ASSERT_EQ(model.files().size(), 2u);
  ASSERT_EQ(model.size(), 4u);
  EXPECT_EQ(model.total_bytes(), 8u + 8u + 4u + 4u);
  // File by file, each in file order.
  std::vector<std::string> names;
  for (const TensorView& t : model.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"model.embed.weight", "model.layers.0.w",
                                             "model.layers.1.w", "lm_head.weight"}));
  EXPECT_EQ(model.file_of("lm_head.weight").path(), dir / "model-00002-of-00002.safetensors");
  EXPECT_EQ(model.file_of("model.embed.weight").path(), dir / "model-00001-of-00002.safetensors");
  EXPECT_EQ(tensor_to_f32(model.at("lm_head.weight")), std::vector<float>(4, 2.0f));
  // Views point into the shard's mapping.
  const SafetensorsFile& shard = model.file_of("model.layers.1.w");
  const TensorView& view = model.at("model.layers.1.w");
  EXPECT_GE(view.bytes.data(), shard.bytes().data());
  EXPECT_LE(view.bytes.data() + view.bytes.size(), shard.bytes().data() + shard.bytes().size());
  EXPECT_EQ(model.find("missing"), nullptr);
  expect_error([&] { model.at("missing"); }, ErrorKind::InvalidArgument, {"'missing'"});
  expect_error([&] { model.file_of("missing"); }, ErrorKind::InvalidArgument, {"'missing'"});

  // Opening the index itself gives the same model.
  const SafetensorsModel direct = SafetensorsModel::open(dir / "model.safetensors.index.json");
  EXPECT_EQ(direct.size(), 4u);
  EXPECT_EQ(direct.total_bytes(), model.total_bytes());
}

TEST(SafetensorsModelTest, SingleFileAndSingleFileDirectory) {
  TempDir dir;
  write_shard(dir / "model.safetensors", {"a", "b"});
  const SafetensorsModel from_dir = SafetensorsModel::open(dir.path());
  EXPECT_EQ(from_dir.size(), 2u);
  EXPECT_TRUE(from_dir.index_path().empty());
  EXPECT_EQ(from_dir.file_of("b").path(), dir / "model.safetensors");
  const SafetensorsModel from_file = SafetensorsModel::open(dir / "model.safetensors");
  EXPECT_EQ(from_file.size(), 2u);
  EXPECT_EQ(from_file.total_bytes(), 8u);
}

TEST(SafetensorsModelTest, SeveralFilesWithoutIndex) {
  TempDir dir;
  write_shard(dir / "b.safetensors", {"y"});
  write_shard(dir / "a.safetensors", {"x", "z"});
  test::write_file(dir / "config.json", "{}");  // other files are ignored
  const SafetensorsModel model = SafetensorsModel::open(dir.path());
  ASSERT_EQ(model.files().size(), 2u);
  EXPECT_EQ(model.files()[0].path(), dir / "a.safetensors");  // sorted by file name
  ASSERT_EQ(model.size(), 3u);
  EXPECT_EQ(model.tensors()[2].name, "y");
  EXPECT_EQ(model.file_of("y").path(), dir / "b.safetensors");
}

TEST(SafetensorsModelTest, MovingTheModelKeepsViews) {
  TempDir dir;
  write_sharded(dir);
  SafetensorsModel model = SafetensorsModel::open(dir.path());
  const std::byte* p = model.at("model.layers.0.w").bytes.data();
  SafetensorsModel moved = std::move(model);
  EXPECT_EQ(moved.at("model.layers.0.w").bytes.data(), p);
  EXPECT_EQ(tensor_to_f32(moved.at("model.layers.0.w")), std::vector<float>(8, 1.0f));
}

}  // namespace
}  // namespace mlxn::io
