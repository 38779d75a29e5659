// Malformed config.json corpus: each input fails fast with the right error kind, naming the
// file and the field, without crashing or allocating from absurd values.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "io_test_util.h"
#include "mlxn/io/model_config.h"

namespace mlxn::io {
namespace {

// A valid small Llama config with one field replaced (or removed when value is empty).
std::string with_field(const std::string& key, const std::string& value) {
  const std::pair<const char*, const char*> base[] = {
      {"model_type", "\"llama\""},  {"hidden_size", "64"},        {"intermediate_size", "128"},
      {"num_attention_heads", "4"}, {"num_key_value_heads", "2"}, {"num_hidden_layers", "2"},
      {"vocab_size", "100"},        {"rms_norm_eps", "1e-5"}};
  std::string s = "{";
  bool replaced = false;
  for (const auto& [k, v] : base) {
    std::string val = v;
    if (key == k) {
      replaced = true;
      if (value.empty()) continue;
      val = value;
    }
    if (s.size() > 1) s += ", ";
    s += "\"" + std::string(k) + "\": " + val;
  }
  if (!replaced && !value.empty()) s += ", \"" + key + "\": " + value;
  return s + "}";
}

struct Case {
  const char* name;
  std::string text;
  ErrorKind kind;
  std::vector<std::string> needles;
};

std::vector<Case> corpus() {
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  return {
      {"layers 1e9",
       with_field("num_hidden_layers", "1000000000"),
       ErrorKind::Format,
       {"num_hidden_layers", "1000000000", "out of range"}},
      {"layers float 1e9",
       with_field("num_hidden_layers", "1e9"),
       ErrorKind::Format,
       {"num_hidden_layers"}},
      {"layers huge",
       with_field("num_hidden_layers", "18446744073709551615"),
       ErrorKind::Format,
       {"num_hidden_layers"}},
      {"layers 1e300",
       with_field("num_hidden_layers", "1e300"),
       ErrorKind::Format,
       {"num_hidden_layers", "expected an integer"}},
      {"zero vocab", with_field("vocab_size", "0"), ErrorKind::Format, {"vocab_size", "0"}},
      {"vocab 20M", with_field("vocab_size", "20000000"), ErrorKind::Format, {"vocab_size"}},
      {"negative hidden", with_field("hidden_size", "-64"), ErrorKind::Format, {"hidden_size"}},
      {"fractional hidden",
       with_field("hidden_size", "64.5"),
       ErrorKind::Format,
       {"hidden_size", "expected an integer"}},
      {"string hidden",
       with_field("hidden_size", "\"64\""),
       ErrorKind::Format,
       {"hidden_size", "expected an integer, got string"}},
      {"bool heads",
       with_field("num_attention_heads", "true"),
       ErrorKind::Format,
       {"num_attention_heads", "boolean"}},
      {"missing hidden",
       with_field("hidden_size", ""),
       ErrorKind::Format,
       {"config.json", "hidden_size", "required field is missing"}},
      {"missing layers",
       with_field("num_hidden_layers", ""),
       ErrorKind::Format,
       {"num_hidden_layers", "missing"}},
      {"heads do not divide hidden",
       with_field("num_attention_heads", "3"),
       ErrorKind::Format,
       {"num_attention_heads", "does not divide hidden_size"}},
      {"kv heads do not divide heads",
       with_field("num_key_value_heads", "3"),
       ErrorKind::Format,
       {"num_key_value_heads", "does not divide"}},
      {"kv heads above heads",
       with_field("num_key_value_heads", "8"),
       ErrorKind::Format,
       {"num_key_value_heads"}},
      {"zero head_dim", with_field("head_dim", "0"), ErrorKind::Format, {"head_dim"}},
      {"odd head_dim",
       with_field("head_dim", "15"),
       ErrorKind::Format,
       {"partial_rotary_factor", "even"}},
      {"zero eps", with_field("rms_norm_eps", "0"), ErrorKind::Format, {"rms_norm_eps"}},
      {"string eps",
       with_field("rms_norm_eps", "\"tiny\""),
       ErrorKind::Format,
       {"rms_norm_eps", "expected a number"}},
      {"tie not bool",
       with_field("tie_word_embeddings", "\"yes\""),
       ErrorKind::Format,
       {"tie_word_embeddings", "expected a boolean"}},
      {"eos string", with_field("eos_token_id", "\"</s>\""), ErrorKind::Format, {"eos_token_id"}},
      {"eos negative", with_field("eos_token_id", "[2, -1]"), ErrorKind::Format, {"eos_token_id"}},
      {"model_type number",
       with_field("model_type", "7"),
       ErrorKind::Format,
       {"model_type", "expected a string"}},
      {"architectures not array",
       with_field("architectures", "\"Llama\""),
       ErrorKind::Format,
       {"architectures", "expected an array"}},
      {"architectures of numbers",
       with_field("architectures", "[1]"),
       ErrorKind::Format,
       {"architectures"}},
      {"bad rope type",
       with_field("rope_scaling", R"({"rope_type": "wobbly", "factor": 2})"),
       ErrorKind::Format,
       {"rope_scaling.rope_type", "unsupported rope type 'wobbly'"}},
      {"rope_scaling string",
       with_field("rope_scaling", "\"linear\""),
       ErrorKind::Format,
       {"rope_scaling", "expected an object"}},
      {"llama3 without factor",
       with_field("rope_scaling",
                  R"({"rope_type": "llama3", "original_max_position_embeddings": 8})"),
       ErrorKind::Format,
       {"rope_scaling.factor", "required"}},
      {"llama3 without original",
       with_field("rope_scaling", R"({"rope_type": "llama3", "factor": 8})"),
       ErrorKind::Format,
       {"original_max_position_embeddings"}},
      {"negative factor",
       with_field("rope_scaling", R"({"type": "linear", "factor": -2})"),
       ErrorKind::Format,
       {"rope_scaling.factor"}},
      {"longrope wrong length",
       with_field("rope_scaling",
                  R"({"type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1],
                      "original_max_position_embeddings": 16})"),
       ErrorKind::Format,
       {"short_factor", "expected 8"}},
      {"longrope factors of strings",
       with_field("rope_scaling", R"({"type": "longrope", "short_factor": ["a"]})"),
       ErrorKind::Format,
       {"short_factor", "expected a number"}},
      {"zero theta", with_field("rope_theta", "0"), ErrorKind::Format, {"rope_theta"}},
      {"rope_parameters bad key",
       with_field("rope_parameters", R"({"full_attention": {}, "chunked": {}})"),
       ErrorKind::Format,
       {"rope_parameters", "chunked"}},
      {"layer_types wrong length",
       with_field("layer_types", R"(["full_attention"])"),
       ErrorKind::Format,
       {"layer_types", "expected num_hidden_layers = 2"}},
      {"layer_types unknown",
       with_field("layer_types", R"(["full_attention", "linear_attention"])"),
       ErrorKind::Format,
       {"layer_types", "linear_attention"}},
      {"sliding without window",
       with_field("layer_types", R"(["sliding_attention", "full_attention"])"),
       ErrorKind::Format,
       {"sliding_window"}},
      {"text_config not object",
       with_field("text_config", "[]"),
       ErrorKind::Format,
       {"text_config", "expected an object"}},
      {"text_config bad field",
       with_field("text_config", R"({"num_hidden_layers": -1})"),
       ErrorKind::Format,
       {"text_config.num_hidden_layers"}},
      {"experts per tok above experts",
       with_field("num_experts", "4, \"num_experts_per_tok\": 8"),
       ErrorKind::Format,
       {"num_experts_per_tok"}},
      {"mlp_only_layers out of range",
       with_field("num_experts", "4, \"num_experts_per_tok\": 2, \"mlp_only_layers\": [5]"),
       ErrorKind::Format,
       {"mlp_only_layers"}},
      {"dimensions multiply to an absurd model",
       R"({"model_type": "llama", "hidden_size": 1048576, "intermediate_size": 4194304,
           "num_attention_heads": 8192, "num_hidden_layers": 10000, "vocab_size": 10000000})",
       ErrorKind::Format,
       {"parameters", "1e13"}},
      {"experts x layers absurd",
       R"({"model_type": "qwen3_moe", "hidden_size": 8, "intermediate_size": 8,
           "num_attention_heads": 2, "num_hidden_layers": 10000, "vocab_size": 10,
           "num_experts": 65536, "num_experts_per_tok": 2, "moe_intermediate_size": 8})",
       ErrorKind::Format,
       {"num_experts", "absurd"}},
      {"quantization bits 7",
       with_field("quantization", R"({"bits": 7, "group_size": 64})"),
       ErrorKind::QuantConfig,
       {"config.json", "bits 7"}},
      {"quantization not object",
       with_field("quantization", "4"),
       ErrorKind::Format,
       {"quantization", "expected a JSON object"}},
      {"quantization mxfp4",
       with_field("quantization", R"({"bits": 4, "group_size": 32, "mode": "mxfp4"})"),
       ErrorKind::Unsupported,
       {"mxfp4"}},
      {"deep nesting", with_field("extra", deep), ErrorKind::Format, {"nests deeper"}},
      {"bad utf-8",
       with_field("model_type",
                  "\"ll\xff\xfe"
                  "ama\""),
       ErrorKind::Format,
       {"invalid JSON"}},
      {"truncated",
       with_field("hidden_size", "64").substr(0, 40),
       ErrorKind::Format,
       {"invalid JSON"}},
      {"empty", "", ErrorKind::Format, {"invalid JSON"}},
      {"top-level array", "[1, 2, 3]", ErrorKind::Format, {"expected a JSON object"}},
      {"top-level string", "\"config\"", ErrorKind::Format, {"expected a JSON object"}},
      {"trailing garbage",
       with_field("hidden_size", "64") + " }",
       ErrorKind::Format,
       {"invalid JSON"}},
      {"nul byte",
       std::string("{\"model_type\": \"lla\0ma\"}", 25),
       ErrorKind::Format,
       {"invalid JSON"}},
  };
}

TEST(ModelConfigMalformedTest, CorpusFailsWithClearErrors) {
  for (const Case& c : corpus()) {
    SCOPED_TRACE(c.name);
    const auto start = std::chrono::steady_clock::now();
    const std::string msg = test::expect_error(
        [&] { (void)ModelConfig::from_json_string(c.text, "config.json"); }, c.kind);
    for (const auto& n : c.needles) {
      EXPECT_NE(msg.find(n), std::string::npos) << "message lacks \"" << n << "\": " << msg;
    }
    EXPECT_EQ(msg.rfind("config.json", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  }
}

TEST(ModelConfigMalformedTest, OversizeTextIsRejectedBeforeParsing) {
  std::string text = with_field("pad", "\"" + std::string(17u << 20, 'x') + "\"");
  test::expect_error([&] { (void)ModelConfig::from_json_string(text, "config.json"); },
                     ErrorKind::Format, {"exceeds"});
}

TEST(ModelConfigMalformedTest, DeepNestingInsideStringsIsFine) {
  // Brackets inside strings do not count towards the depth limit.
  const auto c = ModelConfig::from_json_string(
      with_field("note", "\"" + std::string(500, '[') + "\\\"" + std::string(500, '{') + "\""),
      "config.json");
  EXPECT_EQ(c.hidden_size, 64);
}

TEST(ModelConfigMalformedTest, BaseCaseIsValid) {
  const auto c = ModelConfig::from_json_string(with_field("", ""), "config.json");
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.head_dim, 16);
}

}  // namespace
}  // namespace mlxn::io
