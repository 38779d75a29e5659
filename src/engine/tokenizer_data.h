// The tokenizer's pipeline as data: normalizer, pre-tokenizer, BPE model, added vocabulary,
// post-processor and decoder, plus the special-token facts of tokenizer_config.json. Loaded by
// tokenizer_json.cpp / tokenizer_gguf.cpp, run by tokenizer.cpp; each stage's behaviour lives
// in its own tokenizer_<stage>.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer_index.h"
#include "engine/tokenizer_regex.h"

namespace mlxn::io {
class GgufFile;
}  // namespace mlxn::io

namespace mlxn::engine::tok {

/// One piece of text moving through encode(): either text still to tokenize or an added token
/// already recognised.
struct Piece {
  std::string text;
  std::int32_t id = -1;    // >= 0: an added token (text is what it matched)
  bool at_origin = false;  // starts at byte 0 of the input (Metaspace prepend_scheme "first")
};

/// Transparent hashing, so a map keyed by std::string can be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// A pattern of tokenizer.json: {"String": s} (matched literally) or {"Regex": r}.
struct Pattern {
  std::string literal;
  std::shared_ptr<const Regex> regex;  // set for {"Regex": ...}
  /// Non-overlapping matches in `text`, left to right.
  std::vector<Span> find_all(std::string_view text) const;
};

// ---- normalizers (tokenizer_normalize.cpp) ----

struct Normalizer {
  enum class Kind {
    Sequence,
    Prepend,
    Replace,
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
    Lowercase,
    Strip,
    StripAccents
  };
  Kind kind = Kind::Sequence;
  std::vector<Normalizer> children;  // Sequence
  std::string content;               // Prepend: the prefix; Replace: the replacement
  Pattern pattern;                   // Replace
  bool strip_left = false;           // Strip
  bool strip_right = false;
};

/// Applies `n` to `text` (valid UTF-8) in place.
void normalize(const Normalizer& n, std::string& text);

// ---- pre-tokenizers (tokenizer_pretokenize.cpp) ----

/// How Split treats the pieces its pattern matches (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
enum class PrependScheme { Always, First, Never };

struct PreTokenizer {
  enum class Kind {
    Sequence,
    ByteLevel,
    Split,
    Metaspace,
    Digits,
    Whitespace,
    WhitespaceSplit,
    Punctuation
  };
  Kind kind = Kind::Sequence;
  std::vector<PreTokenizer> children;                // Sequence
  bool add_prefix_space = false;                     // ByteLevel
  bool use_regex = true;                             // ByteLevel: split with GPT-2's pattern first
  Pattern pattern;                                   // Split
  SplitBehavior behavior = SplitBehavior::Isolated;  // Split, Punctuation
  bool invert = false;                               // Split
  std::string replacement{"\xE2\x96\x81"};           // Metaspace
  PrependScheme prepend_scheme = PrependScheme::Always;
  bool split = true;               // Metaspace
  bool individual_digits = false;  // Digits
};

/// Splits every piece of `pieces` that is not yet a token.
void pre_tokenize(const PreTokenizer& p, std::vector<Piece>& pieces);
/// GPT-2's pre-tokenizer pattern (ByteLevel use_regex), and the Llama 3 / Qwen2 ones that GGUF
/// files name through tokenizer.ggml.pre.
extern const char* const kGpt2Pattern;
extern const char* const kLlama3Pattern;
extern const char* const kQwen2Pattern;
/// The compiled GPT-2 pattern (shared).
const std::shared_ptr<const Regex>& gpt2_regex();

// ---- the BPE model (tokenizer_bpe.cpp) ----

struct BpeModel {
  std::vector<std::string> tokens;  // by id; "" where the vocabulary has a hole
  std::vector<bool> present;        // by id: whether tokens[id] is a real entry
  VocabIndex vocab;                 // token -> id, over `tokens`
  /// (left id, right id) -> rank (lower merges first) and the merged token's id.
  MergeIndex merges;
  std::size_t n_merges = 0;  // merges added (the next rank)
  std::optional<std::int32_t> unk_id;
  bool fuse_unk = false;
  bool byte_fallback = false;
  std::array<std::int32_t, 256> byte_ids{};  // <0xNN> tokens, -1 where absent
  bool ignore_merges = false;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  /// SentencePiece mode (GGUF "llama"): no merge table; two adjacent symbols merge when their
  /// concatenation is a token, the highest-scoring such token first (llama.cpp's algorithm).
  bool score_merges = false;
  std::vector<float> scores;  // by id, score_merges only

  /// Room for `n` tokens.
  void reserve(std::size_t n);
  /// Adds a vocabulary entry (an id given twice keeps its first string, a string given twice its
  /// last id); Format error naming `context` on a negative id.
  void add_token(std::string token, std::int32_t id, std::string_view context);
  /// Adds merge `left right` with the next rank; Format error "<source>[index]: ..." when a part
  /// or the merged token is not in the vocabulary.
  void add_merge(std::string_view left, std::string_view right, std::string_view source,
                 std::size_t index);
  /// Fills byte_ids from the <0xNN> tokens of the vocabulary.
  void index_byte_tokens();
  /// Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<std::int32_t>& out) const;
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(std::int32_t id) const;
};

// ---- added tokens (tokenizer_added.cpp) ----

struct AddedToken {
  std::int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

/// Tokens matched in the text before the model sees it (special tokens, user additions).
class AddedVocab {
 public:
  /// Takes the tokens and builds the two matchers: raw contents for tokens with
  /// normalized=false, normalized contents (through `normalizer`) for the others.
  void build(std::vector<AddedToken> tokens, const Normalizer* normalizer);
  /// Splits the non-token pieces of `pieces` around matches of the raw (normalized=false) or
  /// the normalized token set, leftmost-longest, honouring single_word/lstrip/rstrip.
  void split(std::vector<Piece>& pieces, bool normalized_set) const;
  const AddedToken* find_id(std::int32_t id) const;
  const AddedToken* find_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

  /// A byte trie of token contents for leftmost-longest matching.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, std::int32_t>> next;  // sorted by byte
      std::int32_t token = -1;                                   // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    void insert(std::string_view key, std::int32_t token);
    /// Longest token starting at text[pos] (its index and length), or {-1, 0}.
    std::pair<std::int32_t, std::size_t> longest_at(std::string_view text, std::size_t pos) const;
  };

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<std::int32_t, std::size_t> by_id_;
  std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> by_content_;
  Trie raw_;
  Trie normalized_;
  bool has_raw_ = false;
  bool has_normalized_ = false;
};

// ---- post-processors (tokenizer_post.cpp) ----

struct PostProcessor {
  enum class Kind { Sequence, Template, ByteLevel, Bert, Roberta };
  Kind kind = Kind::Sequence;
  std::vector<PostProcessor> children;  // Sequence
  std::vector<std::int32_t> prefix;     // ids before the sequence (Template, Bert, Roberta)
  std::vector<std::int32_t> suffix;     // ids after it
};

/// Adds the special tokens of a single sequence around `ids`.
void post_process(const PostProcessor& p, std::vector<std::int32_t>& ids);

// ---- decoders (tokenizer_decode.cpp) ----

struct Decoder {
  enum class Kind {
    Sequence,
    ByteLevel,
    ByteFallback,
    Fuse,
    Strip,
    Replace,
    Metaspace,
    Bpe,
    WordPiece
  };
  Kind kind = Kind::Sequence;
  std::vector<Decoder> children;  // Sequence
  std::string content;            // Strip: the character; Replace: the replacement;
                                  // Metaspace: the replacement character; Bpe: the suffix;
                                  // WordPiece: the prefix
  Pattern pattern;                // Replace
  std::size_t strip_start = 0;    // Strip
  std::size_t strip_stop = 0;
  PrependScheme prepend_scheme = PrependScheme::Always;  // Metaspace
  bool cleanup = false;                                  // WordPiece
};

/// Runs `d` over the token strings, as the reference's decode_chain does.
void decode_chain(const Decoder& d, std::vector<std::string>& tokens);

/// A component (Normalizer, PreTokenizer, PostProcessor, Decoder) of `kind` with defaults.
template <class T>
T make(typename T::Kind kind) {
  T t;
  t.kind = kind;
  return t;
}

// ---- the whole tokenizer ----

struct TokenizerData {
  std::string name;  // file or directory, for messages
  std::optional<Normalizer> normalizer;
  std::optional<PreTokenizer> pre_tokenizer;
  BpeModel model;
  AddedVocab added;
  std::optional<PostProcessor> post_processor;
  std::optional<Decoder> decoder;

  std::optional<std::int32_t> bos_id;
  std::optional<std::int32_t> eos_id;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::vector<std::int32_t> stop_ids;
  bool add_bos_token = false;
  std::string chat_template;
  std::int32_t vocab_size = 0;  // one past the largest id

  /// Sets vocab_size from the model and the added tokens, and bos/eos ids from their strings.
  void finish();
};

/// Parses tokenizer.json (tokenizer_json.cpp).
std::shared_ptr<TokenizerData> parse_tokenizer_json(std::string_view json, const std::string& name);
/// Applies tokenizer_config.json: bos/eos tokens, add_bos_token, chat_template.
void apply_tokenizer_config(TokenizerData& t, std::string_view json, const std::string& name);
/// Applies generation_config.json: eos_token_id (int or list) joins stop_ids.
void apply_generation_config(TokenizerData& t, std::string_view json, const std::string& name);
/// A GPT-2 style vocab.json + merges.txt pair as the byte-level BPE tokenizer GPT-2 uses.
std::shared_ptr<TokenizerData> parse_vocab_merges(std::string_view vocab_json,
                                                  std::string_view merges_txt,
                                                  const std::string& name);
/// The vocabulary embedded in a GGUF file (tokenizer_gguf.cpp).
std::shared_ptr<TokenizerData> load_gguf_tokenizer(const io::GgufFile& file);

}  // namespace mlxn::engine::tok
