// The bundled default model (models/default) against the run that trained it: its
// training_log.json records, from PyTorch on the same 4-bit weights, the mean next-token loss of
// 128 validation tokens and the greedy samples of the model card with their prompt ids. mlxn's
// tokenizer, chat template, forward pass and greedy decoding must reproduce them -- on the CPU
// in f32 (the reference's own precision) and on CUDA in f32 and bf16.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mlxn/core/device.h"
#include "mlxn/engine/jinja.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/tokenizer.h"
#include "test_backends.h"

namespace mlxn::engine {
namespace {

namespace fs = std::filesystem;

const fs::path kModel = MLXN_DEFAULT_MODEL_DIR;

const nlohmann::json& training_log() {
  static const nlohmann::json log = [] {
    std::ifstream in(kModel / "training_log.json");
    if (!in) return nlohmann::json();
    return nlohmann::json::parse(in);
  }();
  return log;
}

std::vector<std::int32_t> ids_of(const nlohmann::json& j) {
  return j.get<std::vector<std::int32_t>>();
}

// Mean over i >= 1 of -log softmax(logits[i-1])[tokens[i]] (what training_log's mlxn_check
// states), in double.
double mean_nll(const std::vector<float>& logits, const std::vector<std::int32_t>& tokens) {
  const std::size_t vocab = logits.size() / tokens.size();
  double total = 0.0;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const float* row = logits.data() + (i - 1) * vocab;
    double hi = row[0];
    for (std::size_t v = 1; v < vocab; ++v) hi = std::max(hi, static_cast<double>(row[v]));
    double sum = 0.0;
    for (std::size_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - hi);
    total += hi + std::log(sum) - row[tokens[i]];
  }
  return total / static_cast<double>(tokens.size() - 1);
}

class DefaultModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kModel / "model.safetensors"))
        << "the bundled default model is missing: " << kModel
        << " (train it with tools/train_default_model.py)";
    ASSERT_TRUE(training_log().is_object()) << kModel / "training_log.json"
                                            << " is unreadable";
  }

  static Model load(Backend backend, DType dtype) {
    ModelOptions o;
    o.backend = backend;
    o.compute_dtype = dtype;
    o.context = 512;
    return Model::load(kModel, o);
  }

  // Every greedy sample of the card, from its logged prompt ids: the same new ids.
  static void expect_samples(Model& model) {
    for (const auto& s : training_log().at("samples")) {
      const std::vector<std::int32_t> prompt = ids_of(s.at("prompt_ids"));
      const std::vector<std::int32_t> want = ids_of(s.at("output_ids"));
      std::vector<std::int32_t> got =
          model.generate_greedy(prompt, static_cast<std::int64_t>(want.size()));
      EXPECT_EQ(got, want) << "greedy sample for \"" << s.at("prompt").get<std::string>() << "\"";
    }
  }
};

TEST_F(DefaultModelTest, TokenizerAndChatTemplateGiveTheLoggedPromptIds) {
  const Tokenizer tok = Tokenizer::from_directory(kModel);
  std::ifstream in(kModel / "chat_template.jinja");
  const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const jinja::Template chat = jinja::parse_chat_template(source);
  for (const auto& s : training_log().at("samples")) {
    const std::string prompt = s.at("prompt").get<std::string>();
    std::vector<std::int32_t> ids;
    if (s.at("chat").get<bool>()) {
      const jinja::Value messages = jinja::Value::from_json_text(
          nlohmann::json::array({{{"role", "user"}, {"content", prompt}}}).dump());
      const jinja::Value extra =
          jinja::Value::from_json_text(R"({"bos_token": "<|bos|>", "eos_token": "<|eos|>"})");
      ids = tok.encode(jinja::render_chat_template(chat, messages, true, extra), false);
    } else {
      ids = tok.encode(prompt, true);
    }
    EXPECT_EQ(ids, ids_of(s.at("prompt_ids"))) << "prompt \"" << prompt << "\"";
    // The card's text: the prompt (plain samples only) and the decoded new ids.
    const std::string text =
        (s.at("chat").get<bool>() ? "" : prompt) + tok.decode(ids_of(s.at("output_ids")), true);
    EXPECT_EQ(text, s.at("text").get<std::string>())
        << "decoded sample text for \"" << prompt << "\"";
  }
}

TEST_F(DefaultModelTest, CpuLossMatchesPyTorch) {
  const auto& check = training_log().at("mlxn_check");
  const std::vector<std::int32_t> tokens = ids_of(check.at("tokens"));
  Model model = load(Backend::Cpu, DType::F32);
  const double want = check.at("mean_nll_mlx4").get<double>();
  const double got = mean_nll(model.score(tokens), tokens);
  EXPECT_NEAR(got, want, 1e-4) << "mean next-token loss of the logged validation tokens";
}

TEST_F(DefaultModelTest, CpuGreedySamplesMatchPyTorch) {
  Model model = load(Backend::Cpu, DType::F32);
  expect_samples(model);
}

TEST_F(DefaultModelTest, CudaLossMatchesPyTorch) {
  if (!Device::cuda_available()) {
    GTEST_SKIP() << "no CUDA device: " << test::cuda_unavailable_reason();
  }
  const auto& check = training_log().at("mlxn_check");
  const std::vector<std::int32_t> tokens = ids_of(check.at("tokens"));
  const double want = check.at("mean_nll_mlx4").get<double>();
  Model f32 = load(Backend::Cuda, DType::F32);
  EXPECT_NEAR(mean_nll(f32.score(tokens), tokens), want, 1e-3) << "CUDA, f32";
  // bf16 activations: the loss moves by about a percent of itself, not more.
  Model bf16 = load(Backend::Cuda, DType::BF16);
  EXPECT_NEAR(mean_nll(bf16.score(tokens), tokens), want, 0.02 * want) << "CUDA, bf16";
}

TEST_F(DefaultModelTest, CudaF32GreedySamplesMatchPyTorch) {
  if (!Device::cuda_available()) {
    GTEST_SKIP() << "no CUDA device: " << test::cuda_unavailable_reason();
  }
  Model model = load(Backend::Cuda, DType::F32);
  expect_samples(model);
}

}  // namespace
}  // namespace mlxn::engine
