// Helpers for the forward-pass tests: tiny random models of every supported family written to a
// temporary directory (config.json + model.safetensors, f32), and random token sequences.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "mlxn/io/model_config.h"
#include "mlxn/io/model_dir_tensors.h"
#include "mlxn/io/safetensors_writer.h"

namespace mlxn::test::forward {

using Json = nlohmann::json;

/// A family variant under test: a name for test listings and its config.json.
struct TinyFamily {
  std::string name;
  Json config;
};

inline void PrintTo(const TinyFamily& f, std::ostream* os) {
  *os << f.name;
}

/// Dimensions shared by every tiny model: head_dim 64 (the smallest the attention kernels
/// take), GQA with 2 query heads per KV head, 3 layers, and a sliding window of 5 so that a
/// 30-token sequence run in chunks of 7 wraps the ring buffers (capacity 5 + 7 - 1 = 11).
inline Json tiny_base(const std::string& model_type, const std::string& arch_class) {
  return Json{{"model_type", model_type},
              {"architectures", Json::array({arch_class})},
              {"vocab_size", 101},
              {"hidden_size", 64},
              {"intermediate_size", 96},
              {"num_hidden_layers", 3},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 1},
              {"head_dim", 64},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},
              {"max_position_embeddings", 128},
              {"tie_word_embeddings", false},
              {"torch_dtype", "float32"}};
}

/// One variant per family, each switching on that family's distinguishing features.
inline std::vector<TinyFamily> tiny_families() {
  std::vector<TinyFamily> out;
  out.push_back({"llama", tiny_base("llama", "LlamaForCausalLM")});
  {
    Json c = tiny_base("llama", "LlamaForCausalLM");
    c["tie_word_embeddings"] = true;
    c["attention_bias"] = true;  // q/k/v/o biases
    c["mlp_bias"] = true;
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
    out.push_back({"llama_tied_bias_linear_rope", c});
  }
  {
    Json c = tiny_base("mistral", "MistralForCausalLM");
    c["sliding_window"] = 5;
    out.push_back({"mistral", c});
  }
  {
    Json c = tiny_base("qwen2", "Qwen2ForCausalLM");
    c["use_sliding_window"] = true;
    c["sliding_window"] = 5;
    c["max_window_layers"] = 1;  // layer 0 full, layers 1 and 2 sliding
    out.push_back({"qwen2", c});
  }
  out.push_back({"qwen3", tiny_base("qwen3", "Qwen3ForCausalLM")});
  {
    Json c = tiny_base("qwen3_moe", "Qwen3MoeForCausalLM");
    c["num_experts"] = 4;
    c["num_experts_per_tok"] = 2;
    c["moe_intermediate_size"] = 32;
    c["norm_topk_prob"] = true;
    c["decoder_sparse_step"] = 1;
    c["mlp_only_layers"] = Json::array({1});  // layer 1 stays dense
    out.push_back({"qwen3_moe", c});
  }
  {
    Json c = tiny_base("gemma2", "Gemma2ForCausalLM");
    c["tie_word_embeddings"] = true;
    c["hidden_activation"] = "gelu_pytorch_tanh";
    c["sliding_window"] = 5;
    c["query_pre_attn_scalar"] = 48;
    // Small caps so that they actually bend the tiny model's logits.
    c["attn_logit_softcapping"] = 2.0;
    c["final_logit_softcapping"] = 3.0;
    out.push_back({"gemma2", c});
  }
  {
    Json c = tiny_base("gemma3_text", "Gemma3ForCausalLM");
    c["tie_word_embeddings"] = true;
    c["hidden_activation"] = "gelu_pytorch_tanh";
    c["sliding_window"] = 5;
    c["sliding_window_pattern"] = 2;  // layers 0 and 2 sliding, layer 1 full
    c["query_pre_attn_scalar"] = 64;
    c["rope_theta"] = 1000000.0;
    c["rope_local_base_freq"] = 10000.0;
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 4.0}};
    out.push_back({"gemma3", c});
  }
  {
    Json c = tiny_base("phi3", "Phi3ForCausalLM");
    c["sliding_window"] = 5;
    c["partial_rotary_factor"] = 0.5;  // rotary_dim 32
    c["max_position_embeddings"] = 8192;
    c["original_max_position_embeddings"] = 4096;
    std::vector<double> short_f, long_f;
    for (int i = 0; i < 16; ++i) {
      short_f.push_back(1.0 + 0.25 * i);
      long_f.push_back(2.0 + 0.5 * i);
    }
    c["rope_scaling"] = {{"type", "longrope"}, {"short_factor", short_f}, {"long_factor", long_f}};
    out.push_back({"phi3_longrope", c});
  }
  return out;
}

/// A fresh directory under the test temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("mlxn_forward_" + tag + "_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

/// Writes config.json and a model.safetensors of f32 random weights for every tensor the family
/// needs (Hugging Face names). Linear weights are uniform in +-1.5/sqrt(in) so activations stay
/// O(1); norm weights near 1 (near 0 for Gemma, which stores w - 1); biases small.
inline void write_tiny_model(const std::filesystem::path& dir, const Json& config,
                             std::uint32_t seed) {
  write_text(dir / "config.json", config.dump(2));
  const io::ModelConfig parsed = io::ModelConfig::from_json_string(config.dump(), "tiny config");
  const bool gemma =
      parsed.arch == io::Architecture::Gemma2 || parsed.arch == io::Architecture::Gemma3;
  std::mt19937 rng(seed);
  io::SafetensorsWriter writer;
  for (const io::ExpectedTensor& t : io::expected_tensors(parsed, io::TensorNaming{})) {
    const auto n = static_cast<std::size_t>(shape_numel(t.shape));
    const bool is_norm = t.name.find("norm.weight") != std::string::npos;
    float lo = -1.0f, hi = 1.0f;
    if (is_norm) {
      lo = gemma ? -0.3f : 0.7f;
      hi = gemma ? 0.3f : 1.3f;
    } else if (t.shape.size() == 1) {
      lo = -0.1f;
      hi = 0.1f;
    } else if (t.name.find("embed_tokens") == std::string::npos) {
      const float a = 1.5f / std::sqrt(static_cast<float>(t.shape.back()));
      lo = -a;
      hi = a;
    }
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> values(n);
    for (float& v : values) v = dist(rng);
    writer.add(t.name, io::TensorDType::F32, t.shape, values);
  }
  writer.write(dir / "model.safetensors");
}

/// n token ids uniform in [0, vocab).
inline std::vector<std::int32_t> random_tokens(std::mt19937& rng, std::size_t n,
                                               std::int64_t vocab) {
  std::uniform_int_distribution<std::int32_t> dist(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = dist(rng);
  return t;
}

/// Row r of a row-major [rows, cols] matrix.
template <class T>
std::vector<T> row_of(const std::vector<T>& m, std::size_t cols, std::size_t r) {
  return std::vector<T>(m.begin() + static_cast<std::ptrdiff_t>(r * cols),
                        m.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols));
}

/// Index of the largest value (lowest index on ties).
inline std::int32_t host_argmax(const std::vector<float>& v) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<std::int32_t>(best);
}

}  // namespace mlxn::test::forward
