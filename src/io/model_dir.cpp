// ModelDir: finds the config, weights and tokenizer files of a model directory or .gguf file.
#include "mlxn/io/model_dir.h"

#include <system_error>

#include "mlxn/core/error.h"
#include "mlxn/io/model_config_gguf.h"
#include "mlxn/io/model_dir_gguf.h"

namespace mlxn::io {

namespace fs = std::filesystem;

namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool has_extension(const fs::path& p, std::string_view ext) {
  return p.extension() == ext;
}

TokenizerFiles find_tokenizer_files(const fs::path& dir) {
  TokenizerFiles t;
  t.tokenizer_json = is_file(dir / "tokenizer.json");
  t.tokenizer_config_json = is_file(dir / "tokenizer_config.json");
  t.tokenizer_model = is_file(dir / "tokenizer.model");
  t.chat_template_jinja = is_file(dir / "chat_template.jinja");
  t.generation_config_json = is_file(dir / "generation_config.json");
  t.special_tokens_map_json = is_file(dir / "special_tokens_map.json");
  return t;
}

}  // namespace

std::string_view model_format_name(ModelFormat format) {
  return format == ModelFormat::Gguf ? "gguf" : "safetensors";
}

std::vector<std::string> TokenizerFiles::present() const {
  std::vector<std::string> names;
  if (tokenizer_json) names.emplace_back("tokenizer.json");
  if (tokenizer_config_json) names.emplace_back("tokenizer_config.json");
  if (tokenizer_model) names.emplace_back("tokenizer.model");
  if (chat_template_jinja) names.emplace_back("chat_template.jinja");
  if (generation_config_json) names.emplace_back("generation_config.json");
  if (special_tokens_map_json) names.emplace_back("special_tokens_map.json");
  return names;
}

ModelDir ModelDir::open(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    throw Error(ErrorKind::Io, path.string() + ": no such file or directory");
  }
  ModelDir m;
  m.path_ = path;
  fs::path gguf_path;
  if (fs::is_regular_file(status)) {
    if (!has_extension(path, ".gguf")) {
      throw Error(ErrorKind::Format, path.string() +
                                         ": not a model directory or .gguf file (a single "
                                         ".safetensors file has no config; open its directory)");
    }
    gguf_path = path;
  } else if (fs::is_directory(status)) {
    const fs::path config = path / "config.json";
    if (!is_file(config)) {
      std::vector<fs::path> ggufs;
      for (const auto& entry : fs::directory_iterator(path, ec)) {
        if (entry.is_regular_file(ec) && has_extension(entry.path(), ".gguf")) {
          ggufs.push_back(entry.path());
        }
      }
      if (ec) throw Error(ErrorKind::Io, path.string() + ": cannot list: " + ec.message());
      if (ggufs.size() != 1) {
        throw Error(ErrorKind::Format,
                    path.string() + ": no config.json" +
                        (ggufs.empty() ? std::string(" and no .gguf file")
                                       : ", and " + std::to_string(ggufs.size()) +
                                             " .gguf files (open one of them)"));
      }
      gguf_path = ggufs.front();
    } else {
      m.format_ = ModelFormat::Safetensors;
      // Parse the config first: it is small, and a bad one should fail before mapping GBs.
      m.config_ = ModelConfig::from_json_file(config.string());
      m.safetensors_.emplace(SafetensorsModel::open(path));
      m.tokenizer_files_ = find_tokenizer_files(path);
      return m;
    }
    m.tokenizer_files_ = find_tokenizer_files(path);
  } else {
    throw Error(ErrorKind::Format, path.string() + ": not a regular file or directory");
  }
  m.format_ = ModelFormat::Gguf;
  m.gguf_.emplace(GgufFile::open(gguf_path));
  m.config_ = model_config_from_gguf(*m.gguf_);
  return m;
}

WeightCheck ModelDir::check_weights() const {
  if (gguf_) return check_gguf_weights(config_, *gguf_);
  return io::check_weights(config_, safetensors_->tensors(), path_.string());
}

}  // namespace mlxn::io
