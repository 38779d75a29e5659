// libFuzzer harness for the tokenizer: arbitrary bytes as tokenizer.json (anything but
// mlxn::Error is a bug; a file that loads must encode and decode), and as text for two fixed
// tokenizers, where decode must give valid UTF-8 and streaming must agree with decode.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/error.h"
#include "mlxn/engine/tokenizer.h"

namespace {

using mlxn::engine::Tokenizer;
using mlxn::engine::TokenStreamDecoder;

// Byte-level BPE with a Split regex, NFC, added tokens with strip flags and a template.
constexpr const char* kByteLevel = R"({
  "added_tokens": [
    {"id": 8, "content": "<|s|>", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": true},
    {"id": 9, "content": "ab", "single_word": true, "lstrip": false, "rstrip": false, "normalized": true, "special": false}],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<|s|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<|s|>": {"id": "<|s|>", "ids": [8], "tokens": ["<|s|>"]}}},
  "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
  "model": {"type": "BPE", "ignore_merges": true,
    "vocab": {"a": 0, "b": 1, "\u0120": 2, "\u0120a": 3, "\u00c3": 4, "\u00a9": 5, "\u00c3\u00a9": 6, "ba": 7},
    "merges": ["\u0120 a", "\u00c3 \u00a9", "b a"]}
})";

// SentencePiece-style BPE with byte fallback, unk fusing and a Metaspace pre-tokenizer.
constexpr const char* kSentencePiece = R"({
  "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true},
  "post_processor": null,
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
    "vocab": {"<unk>": 0, "<0xC3>": 1, "<0xA9>": 2, "<0xE4>": 3, "\u2581": 4, "a": 5, "\u2581a": 6},
    "merges": ["\u2581 a"]}
})";

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void exercise(const Tokenizer& t, std::string_view text) {
  std::vector<std::int32_t> ids;
  try {
    ids = t.encode(text);
  } catch (const mlxn::Error&) {
    return;  // invalid UTF-8 is rejected
  }
  const std::string decoded = t.decode(ids);
  TokenStreamDecoder s(t);
  std::string streamed;
  for (std::int32_t id : ids) streamed += s.push(id);
  check(streamed + s.finish() == decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Tokenizer byte_level = Tokenizer::from_json(kByteLevel);
  static const Tokenizer sentence_piece = Tokenizer::from_json(kSentencePiece);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  exercise(byte_level, text);
  exercise(sentence_piece, text);
  try {
    const Tokenizer t = Tokenizer::from_json(text, {}, "fuzz.json");
    exercise(t, "Hello, world! 123 \xE4\xB8\xAD\xE6\x96\x87 <s> \n\t x");
    std::vector<std::int32_t> ids;
    for (std::int32_t i = -1; i < 40; ++i) ids.push_back(i);
    (void)t.decode(ids, true);
  } catch (const mlxn::Error&) {
    // Rejecting malformed input with an Error is the expected outcome.
  }
  return 0;
}
