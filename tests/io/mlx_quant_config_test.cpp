// QuantConfig: defaults, per-module overrides as mlx-lm writes them, unsupported modes, errors.
#include "mlxn/io/mlx_quant_config.h"

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace mlxn::io {
namespace {

using test::expect_error;

TEST(MlxQuantConfigTest, DefaultsAndPartialEntries) {
  const auto c = QuantConfig::from_json_string(R"({"group_size": 64, "bits": 4})", "config.json");
  EXPECT_EQ(c.defaults(), (QuantParams{4, 64}));
  EXPECT_EQ(c.mode(), "affine");
  EXPECT_TRUE(c.overrides().empty());
  EXPECT_EQ(c.for_module("model.layers.0.self_attn.q_proj"), (QuantParams{4, 64}));
  // MLX's own defaults (64, 4) fill in what an entry leaves out.
  EXPECT_EQ(QuantConfig::from_json_string(R"({"bits": 8})", "c").defaults(), (QuantParams{8, 64}));
  EXPECT_EQ(QuantConfig::from_json_string(R"({"group_size": 32})", "c").defaults(),
            (QuantParams{4, 32}));
  EXPECT_EQ(QuantConfig::from_json_string(R"({})", "c").defaults(), (QuantParams{4, 64}));
  EXPECT_EQ(
      QuantConfig::from_json_string(R"({"bits": 3, "group_size": 128, "mode": "affine"})", "c")
          .defaults(),
      (QuantParams{3, 128}));
}

TEST(MlxQuantConfigTest, MixedRecipeOverrides) {
  // As mlx-lm's mixed_3_6 / mixed_4_6 recipes write them.
  const auto c = QuantConfig::from_json_string(R"({
      "group_size": 64, "bits": 4,
      "model.embed_tokens": {"group_size": 64, "bits": 6},
      "model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 6},
      "model.layers.0.self_attn.v_proj": {"group_size": 32, "bits": 8},
      "model.layers.1.mlp.gate": false,
      "lm_head": true,
      "recipe": "mixed_4_6"
  })",
                                               "config.json");
  EXPECT_EQ(c.overrides().size(), 5u);
  EXPECT_EQ(c.for_module("model.embed_tokens"), (QuantParams{6, 64}));
  EXPECT_EQ(c.for_module("model.layers.0.mlp.down_proj"), (QuantParams{6, 64}));
  EXPECT_EQ(c.for_module("model.layers.0.self_attn.v_proj"), (QuantParams{8, 32}));
  EXPECT_EQ(c.for_module("model.layers.1.mlp.gate"), std::nullopt);
  EXPECT_EQ(c.for_module("lm_head"), (QuantParams{4, 64}));
  EXPECT_EQ(c.for_module("model.layers.1.mlp.down_proj"), (QuantParams{4, 64}));
  // Exact module paths only: a prefix is another module.
  EXPECT_EQ(c.for_module("model.layers.0.mlp.down_proj.weight"), (QuantParams{4, 64}));
}

TEST(MlxQuantConfigTest, SetOverrideAndAffine) {
  auto c = QuantConfig::affine({8, 32});
  c.set_override("lm_head", std::nullopt);
  c.set_override("model.embed_tokens", QuantParams{6, 128});
  EXPECT_EQ(c.for_module("lm_head"), std::nullopt);
  EXPECT_EQ(c.for_module("model.embed_tokens"), (QuantParams{6, 128}));
  expect_error(
      [&] {
        c.set_override("x", QuantParams{7, 64});
      },
      ErrorKind::QuantConfig, {"x", "bits 7"});
  expect_error(
      [] {
        (void)QuantConfig::affine({4, 16});
      },
      ErrorKind::QuantConfig, {"group_size 16"});
}

TEST(MlxQuantConfigTest, InvalidValuesNameTheModule) {
  expect_error([] { (void)QuantConfig::from_json_string(R"({"bits": 7})", "config.json"); },
               ErrorKind::QuantConfig, {"config.json", "bits 7"});
  expect_error([] { (void)QuantConfig::from_json_string(R"({"group_size": 48})", "cfg"); },
               ErrorKind::QuantConfig, {"group_size 48"});
  expect_error(
      [] {
        (void)QuantConfig::from_json_string(
            R"({"bits": 4, "group_size": 64, "model.layers.3.mlp.up_proj": {"bits": 9}})", "cfg");
      },
      ErrorKind::QuantConfig, {"model.layers.3.mlp.up_proj", "bits 9"});
  expect_error(
      [] { (void)QuantConfig::from_json_string(R"({"bits": 4, "m": {"group_size": 0}})", "cfg"); },
      ErrorKind::QuantConfig, {"m", "group_size 0"});
  expect_error([] { (void)QuantConfig::from_json_string(R"({"bits": -4})", "cfg"); },
               ErrorKind::QuantConfig, {"bits -4"});
  expect_error([] { (void)QuantConfig::from_json_string(R"({"bits": 1e300})", "cfg"); },
               ErrorKind::Format, {"bits"});
  expect_error([] { (void)QuantConfig::from_json_string(R"({"bits": "4"})", "cfg"); },
               ErrorKind::Format, {"bits", "expected an integer"});
  expect_error([] { (void)QuantConfig::from_json_string(R"([4, 64])", "cfg"); }, ErrorKind::Format,
               {"expected a JSON object"});
  expect_error([] { (void)QuantConfig::from_json_string(R"({"bits": 4,)", "cfg"); },
               ErrorKind::Format, {"invalid JSON"});
}

TEST(MlxQuantConfigTest, NonAffineModesAreRecognisedButUnsupported) {
  for (const char* mode : {"mxfp4", "nvfp4", "mxfp8"}) {
    const std::string text =
        std::string(R"({"group_size": 32, "bits": 4, "mode": ")") + mode + R"("})";
    expect_error([&] { (void)QuantConfig::from_json_string(text, "config.json"); },
                 ErrorKind::Unsupported, {"config.json", mode, "not supported yet", "affine"});
  }
  expect_error(
      [] {
        (void)QuantConfig::from_json_string(R"({"bits": 4, "x": {"bits": 4, "mode": "mxfp4"}})",
                                            "cfg");
      },
      ErrorKind::Unsupported, {"x", "mxfp4"});
  expect_error([] { (void)QuantConfig::from_json_string(R"({"mode": "fancy"})", "cfg"); },
               ErrorKind::QuantConfig, {"unknown quantization mode 'fancy'"});
  expect_error(
      [] { (void)QuantConfig::from_json_string(R"({"quant_method": "gptq", "bits": 4})", "cfg"); },
      ErrorKind::Unsupported, {"gptq"});
}

}  // namespace
}  // namespace mlxn::io
