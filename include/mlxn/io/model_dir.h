// ModelDir: opens what users point mlxn at -- a model directory (config.json + safetensors,
// single or sharded, + tokenizer files) or a .gguf file -- lazily and memory-mapped.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mlxn/io/gguf_file.h"
#include "mlxn/io/model_config.h"
#include "mlxn/io/model_dir_tensors.h"
#include "mlxn/io/safetensors_model.h"

namespace mlxn::io {

/// How the weights are stored.
enum class ModelFormat { Safetensors, Gguf };

/// "safetensors" or "gguf".
std::string_view model_format_name(ModelFormat format);

/// Which tokenizer-related files sit next to the weights (only recorded, not parsed here).
struct TokenizerFiles {
  bool tokenizer_json = false;           // tokenizer.json (HF fast tokenizer)
  bool tokenizer_config_json = false;    // tokenizer_config.json (special tokens, chat template)
  bool tokenizer_model = false;          // tokenizer.model (SentencePiece)
  bool chat_template_jinja = false;      // chat_template.jinja (transformers >= 4.43 layout)
  bool generation_config_json = false;   // generation_config.json (eos ids, sampling defaults)
  bool special_tokens_map_json = false;  // special_tokens_map.json

  /// The file names present, in the order above.
  std::vector<std::string> present() const;
};

/// An opened model. Move-only; tensor views stay valid while it lives.
class ModelDir {
 public:
  /// Opens `path`: a directory with config.json and safetensors weights (a
  /// model.safetensors.index.json when sharded, else every *.safetensors), a directory with no
  /// config.json holding exactly one .gguf file, or a .gguf file. The config is parsed and
  /// validated; weights are mapped, not read. Throws Io (missing paths or shards), Format
  /// (malformed files, naming them), QuantConfig / Unsupported (quantization settings).
  static ModelDir open(const std::filesystem::path& path);

  ModelDir(ModelDir&&) noexcept = default;
  ModelDir& operator=(ModelDir&&) noexcept = default;

  /// The path given to open().
  const std::filesystem::path& path() const { return path_; }
  ModelFormat format() const { return format_; }
  const ModelConfig& config() const { return config_; }
  /// The safetensors weights, or nullptr for GGUF.
  const SafetensorsModel* safetensors() const { return safetensors_ ? &*safetensors_ : nullptr; }
  /// The GGUF file, or nullptr for safetensors.
  const GgufFile* gguf() const { return gguf_ ? &*gguf_ : nullptr; }
  /// Tokenizer files found in the directory (all false for a bare .gguf file).
  const TokenizerFiles& tokenizer_files() const { return tokenizer_files_; }

  /// Validates the weights against the architecture (check_weights in model_dir_tensors.h,
  /// check_gguf_weights in model_dir_gguf.h): errors name the tensor, the expected and the
  /// found shape; Unsupported for an unknown architecture.
  WeightCheck check_weights() const;

 private:
  ModelDir() = default;

  std::filesystem::path path_;
  ModelFormat format_ = ModelFormat::Safetensors;
  ModelConfig config_;
  std::optional<SafetensorsModel> safetensors_;
  std::optional<GgufFile> gguf_;
  TokenizerFiles tokenizer_files_;
};

}  // namespace mlxn::io
