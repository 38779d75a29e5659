// Tokenizer: text <-> token ids for the supported model families, from a Hugging Face
// tokenizer.json (+ tokenizer_config.json) or from the vocabulary embedded in a GGUF file, with
// the same results as the reference implementation (the `tokenizers` library).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/io/gguf_file.h"

namespace mlxn::engine {

namespace tok {
struct TokenizerData;  // the loaded pipeline (src/engine/tokenizer_data.h)
}  // namespace tok

/// An immutable, thread-safe tokenizer. Copies share the same (read-only) tables.
///
/// encode() runs the pipeline of `tokenizers`: added/special tokens are cut out of the raw text
/// first, the rest is normalized, pre-tokenized and split by the BPE model, and the
/// post-processor adds BOS/EOS when `add_special_tokens`. decode() maps ids back to tokens and
/// runs the decoder chain. Supported: BPE models (merges, byte-level alphabet, byte fallback,
/// ignore_merges, continuing_subword_prefix / end_of_word_suffix), the normalizers, pre-tokenizers,
/// post-processors and decoders that Llama, Mistral, Qwen, Gemma and Phi use. Anything else in a
/// tokenizer.json throws Unsupported naming the component.
class Tokenizer {
 public:
  /// Loads `dir`/tokenizer.json (or, lacking it, a GPT-2 style vocab.json + merges.txt pair), plus
  /// tokenizer_config.json (bos/eos tokens, add_bos_token, chat template), chat_template.jinja
  /// and generation_config.json (extra stop ids) when present. Io / Format / Unsupported errors
  /// name the file.
  static Tokenizer from_directory(const std::filesystem::path& dir);
  /// A model directory or a .gguf file (what the CLI accepts as --model).
  static Tokenizer from_path(const std::filesystem::path& path);
  /// Parses tokenizer.json text (and optional tokenizer_config.json text); `name` stands for the
  /// file in messages.
  static Tokenizer from_json(std::string_view tokenizer_json,
                             std::string_view tokenizer_config_json = {},
                             const std::string& name = "tokenizer.json");
  /// The vocabulary embedded in a GGUF file: tokenizer.ggml.model "gpt2" (byte-level BPE with
  /// merges; the pre-tokenizer regex follows tokenizer.ggml.pre) or "llama" (SentencePiece BPE
  /// ranked by scores, with byte fallback). Throws Unsupported for other models.
  static Tokenizer from_gguf(const io::GgufFile& file);

  /// Token ids of `text` (valid UTF-8, else InvalidArgument). `add_special_tokens` applies the
  /// post-processor (BOS/EOS); special-token text such as "<|im_start|>" is always matched.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  /// Text of `ids` (always valid UTF-8; undecodable bytes become U+FFFD). Ids outside the
  /// vocabulary are skipped, as the reference does.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const;

  /// Id of a token string (added tokens first, then the model vocabulary).
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  /// Token string of an id (as stored: byte-level or "▁" forms), or nullopt.
  std::optional<std::string> id_to_token(std::int32_t id) const;
  /// One past the largest id (model vocabulary and added tokens).
  std::int32_t vocab_size() const;
  /// True for added tokens marked special (skipped by decode(..., true)).
  bool is_special(std::int32_t id) const;

  /// BOS / EOS ids and strings from tokenizer_config.json or GGUF metadata, when given.
  std::optional<std::int32_t> bos_id() const;
  std::optional<std::int32_t> eos_id() const;
  std::optional<std::string> bos_token() const;
  std::optional<std::string> eos_token() const;
  /// Ids that end generation: EOS plus generation_config.json's eos_token_id list (directory) or
  /// tokenizer.ggml.eot/eom_token_id (GGUF). Sorted, unique.
  const std::vector<std::int32_t>& stop_ids() const;
  /// add_bos_token of tokenizer_config.json / tokenizer.ggml.add_bos_token (what chat front ends
  /// consult; encode() itself follows the post-processor).
  bool add_bos_token() const;
  /// The Jinja chat template, or "" when none is given.
  const std::string& chat_template() const;
  /// Where the tokenizer came from (file or directory), for messages.
  const std::string& name() const;

 private:
  explicit Tokenizer(std::shared_ptr<const tok::TokenizerData> data) : data_(std::move(data)) {}
  std::shared_ptr<const tok::TokenizerData> data_;
};

/// Incremental detokenization for printing tokens as they are generated: push() returns the
/// text that the new id completes, holding back bytes of an unfinished UTF-8 character (and
/// anything the decoder could still change), so the concatenated output equals
/// decode(all ids) and every returned piece is complete UTF-8.
class TokenStreamDecoder {
 public:
  /// Keeps a copy of `tokenizer` (cheap: the tables are shared).
  explicit TokenStreamDecoder(Tokenizer tokenizer, bool skip_special_tokens = false);

  /// Adds one id; returns the newly completed text (often "", never a partial character).
  std::string push(std::int32_t id);
  /// Returns what is still held back (an unfinished character becomes U+FFFD) and resets.
  std::string finish();
  /// Forgets everything pushed so far.
  void reset();

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  std::vector<std::int32_t> context_;  // ids of the last emitted piece (decoder context)
  std::vector<std::int32_t> pending_;  // ids pushed since, not yet emitted
  std::string context_text_;           // decode(context_)
};

}  // namespace mlxn::engine
