// Tokenizer tests: small hand-made tokenizer.json files whose expected ids are worked out by hand
// in the comments (byte-level BPE, SentencePiece-style BPE with byte fallback, added-token flags,
// Metaspace), the pipeline stages on their own, and the real tokenizers of .testdata against the
// goldens of the reference implementation.
#include "mlxn/engine/tokenizer.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_regex.h"
#include "engine/tokenizer_test_util.h"
#include "engine/tokenizer_unicode.h"
#include "mlxn/core/error.h"

namespace mlxn::engine {
namespace {

using Ids = std::vector<std::int32_t>;
namespace fs = std::filesystem;
using test::Golden;

// ---- a byte-level BPE (GPT-2 style) ----

// Byte-level alphabet: ' ' is U+0120 "Ġ", '\n' U+010A "Ċ", byte 0xE4 stays U+00E4 "ä".
// Merges, by rank: h+e, l+l, he+ll, hell+o, Ġ+w, o+r, Ġw+or. (Added tokens take the ids after the
// vocabulary: the reference renumbers them otherwise.)
constexpr const char* kByteLevelJson = R"({
  "version": "1.0",
  "added_tokens": [{"id": 17, "content": "<|end|>", "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                    "use_regex": true},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|end|>", "type_id": 0}}],
    "pair": [],
    "special_tokens": {"<|end|>": {"id": "<|end|>", "ids": [17], "tokens": ["<|end|>"]}}},
  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
    "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "\u0120": 4, "w": 5, "r": 6, "d": 7, "he": 8,
              "ll": 9, "hell": 10, "hello": 11, "\u0120w": 12, "or": 13, "\u0120wor": 14,
              "\u010a": 15, "\u00e4": 16},
    "merges": ["h e", "l l", "he ll", "hell o", "\u0120 w", "o r", "\u0120w or"]}
})";

TEST(TokenizerByteLevelTest, EncodesByMergeRank) {
  const Tokenizer t = Tokenizer::from_json(kByteLevelJson);
  // "hello world" -> GPT-2 regex pieces "hello", " world" -> "hello", "Ġworld".
  // hello: h e l l o -> he l l o -> he ll o -> hell o -> hello (11).
  // Ġworld: Ġ w o r l d -> Ġw o r l d -> Ġw or l d -> Ġwor l d: 14, 2, 7.
  EXPECT_EQ(t.encode("hello world", false), (Ids{11, 14, 2, 7}));
  // The post-processor's template puts <|end|> after the sequence.
  EXPECT_EQ(t.encode("hello world", true), (Ids{11, 14, 2, 7, 17}));
  // Equal ranks merge leftmost first: l l l -> ll l.
  EXPECT_EQ(t.encode("lll", false), (Ids{9, 2}));
  // Special-token text is cut out before the model.
  EXPECT_EQ(t.encode("hello<|end|>hello", false), (Ids{11, 17, 11}));
  // '\n' is byte 0x0A, the byte-level character U+010A.
  EXPECT_EQ(t.encode("\n", false), (Ids{15}));
  // A byte with no token and no unk token is dropped, as the reference does.
  EXPECT_EQ(t.encode("hz", false), (Ids{0}));
  EXPECT_EQ(t.encode("", false), Ids{});
  EXPECT_EQ(t.encode("", true), (Ids{17}));
}

TEST(TokenizerByteLevelTest, DecodesBytes) {
  const Tokenizer t = Tokenizer::from_json(kByteLevelJson);
  EXPECT_EQ(t.decode(Ids{11, 14, 2, 7, 17}), "hello world<|end|>");
  EXPECT_EQ(t.decode(Ids{11, 14, 2, 7, 17}, true), "hello world");
  EXPECT_EQ(t.decode(Ids{15, 0}), "\nh");
  // Byte 0xE4 alone is an unfinished character: U+FFFD.
  EXPECT_EQ(t.decode(Ids{0, 16}), "h\xEF\xBF\xBD");
  // Ids outside the vocabulary are skipped.
  EXPECT_EQ(t.decode(Ids{0, 999, -1, 1}), "he");
}

TEST(TokenizerByteLevelTest, Vocabulary) {
  const Tokenizer t = Tokenizer::from_json(kByteLevelJson);
  EXPECT_EQ(t.vocab_size(), 18);
  EXPECT_EQ(t.token_to_id("hello"), 11);
  EXPECT_EQ(t.token_to_id("<|end|>"), 17);
  EXPECT_EQ(t.token_to_id("nope"), std::nullopt);
  EXPECT_EQ(t.id_to_token(12), "\xC4\xA0w");  // "Ġw"
  EXPECT_EQ(t.id_to_token(17), "<|end|>");
  EXPECT_EQ(t.id_to_token(18), std::nullopt);
  EXPECT_TRUE(t.is_special(17));
  EXPECT_FALSE(t.is_special(11));
}

TEST(TokenizerByteLevelTest, RejectsInvalidUtf8) {
  const Tokenizer t = Tokenizer::from_json(kByteLevelJson);
  try {
    t.encode("ok\xC3(");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
}

// ---- a SentencePiece-style BPE (Llama 2 / Mistral layout) ----

// Normalizer: prepend "▁", spaces -> "▁". Byte fallback for 中 (E4 B8 AD); é (C3 A9) has no byte
// tokens, so it becomes <unk> (runs fused). Merges: ▁+a, a+b, ▁a+b.
constexpr const char* kSentencePieceJson = R"({
  "added_tokens": [
    {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "fuse_unk": true,
    "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xE4>": 3, "<0xB8>": 4, "<0xAD>": 5,
              "\u2581": 6, "a": 7, "b": 8, "\u2581a": 9, "ab": 10, "\u2581ab": 11},
    "merges": [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"]]}
})";

TEST(TokenizerSentencePieceTest, ByteFallbackAndUnk) {
  const Tokenizer t = Tokenizer::from_json(kSentencePieceJson);
  // "ab 中" -> "▁ab▁中": ▁ a b ▁ E4 B8 AD; ▁+a (rank 0) -> ▁a b; ▁a+b (rank 2) -> ▁ab.
  EXPECT_EQ(t.encode("ab \xE4\xB8\xAD", false), (Ids{11, 6, 3, 4, 5}));
  EXPECT_EQ(t.encode("ab \xE4\xB8\xAD", true), (Ids{1, 11, 6, 3, 4, 5}));
  // "éé x" -> "▁éé▁x": é has no byte tokens -> <unk>, fused over the run; x -> <unk>.
  EXPECT_EQ(t.encode("\xC3\xA9\xC3\xA9 x", false), (Ids{6, 0, 6, 0}));
  EXPECT_EQ(t.encode("", true), (Ids{1}));
}

TEST(TokenizerSentencePieceTest, NormalizesEachStretchBetweenSpecialTokens) {
  const Tokenizer t = Tokenizer::from_json(kSentencePieceJson);
  // "a<s>b": "<s>" is cut out of the raw text first; "a" and "b" are then normalized on their
  // own, so both get the "▁" prefix: ▁a (9), <s> (1), ▁ b (6, 8).
  EXPECT_EQ(t.encode("a<s>b", false), (Ids{9, 1, 6, 8}));
}

TEST(TokenizerSentencePieceTest, DecodesWithStripAndByteFallback) {
  const Tokenizer t = Tokenizer::from_json(kSentencePieceJson);
  // "<s>", " ab", " ", then bytes E4 B8 AD -> "中"; Strip only cuts a leading space.
  EXPECT_EQ(t.decode(Ids{1, 11, 6, 3, 4, 5}), "<s> ab \xE4\xB8\xAD");
  EXPECT_EQ(t.decode(Ids{1, 11, 6, 3, 4, 5}, true), "ab \xE4\xB8\xAD");
  // Byte tokens that are not valid UTF-8 together: one U+FFFD per byte.
  EXPECT_EQ(t.decode(Ids{7, 3, 4, 7}),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "a");
}

TEST(TokenizerSentencePieceTest, StreamDecoderEmitsWholeCharacters) {
  const Tokenizer t = Tokenizer::from_json(kSentencePieceJson);
  TokenStreamDecoder s(t);
  EXPECT_EQ(s.push(11), "ab");  // "▁ab": the leading space is stripped
  EXPECT_EQ(s.push(6), " ");
  EXPECT_EQ(s.push(3), "");  // E4: unfinished
  EXPECT_EQ(s.push(4), "");  // E4 B8: unfinished
  EXPECT_EQ(s.push(5), "\xE4\xB8\xAD");
  EXPECT_EQ(s.finish(), "");
  // An unfinished character at the end comes out of finish() as U+FFFD.
  EXPECT_EQ(s.push(7), "a");
  EXPECT_EQ(s.push(3), "");
  EXPECT_EQ(s.finish(), "\xEF\xBF\xBD");
}

TEST(TokenizerSentencePieceTest, ConfigGivesSpecialTokens) {
  const Tokenizer t = Tokenizer::from_json(
      kSentencePieceJson,
      R"({"bos_token": "<s>", "eos_token": {"content": "</s>", "__type": "AddedToken"},
          "add_bos_token": true, "chat_template": "{{ bos_token }}"})");
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.bos_token(), "<s>");
  EXPECT_EQ(t.eos_token(), "</s>");
  EXPECT_EQ(t.stop_ids(), (Ids{2}));
  EXPECT_TRUE(t.add_bos_token());
  EXPECT_EQ(t.chat_template(), "{{ bos_token }}");
}

// ---- added-token flags ----

// No pre-tokenizer; Lowercase normalizer. [M] strips spaces on both sides; "cat" must be a whole
// word; "ABC" is normalized, so it matches the lowercased text.
constexpr const char* kAddedJson = R"({
  "added_tokens": [
    {"id": 6, "content": "[M]", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": true},
    {"id": 7, "content": "cat", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false},
    {"id": 8, "content": "ABC", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": false}],
  "normalizer": {"type": "Lowercase"},
  "pre_tokenizer": null, "post_processor": null, "decoder": null,
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, " ": 3, "x": 4, "t": 5}, "merges": []}
})";

TEST(TokenizerAddedTokensTest, Flags) {
  const Tokenizer t = Tokenizer::from_json(kAddedJson);
  // [M] at bytes 2..5 takes the space on each side: "x", "[M]" (1..6), "x".
  EXPECT_EQ(t.encode("x [M] x", false), (Ids{4, 6, 4}));
  // "cat" inside a word is not the token; the text goes to the model letter by letter.
  EXPECT_EQ(t.encode("xcat x", false), (Ids{4, 2, 0, 5, 3, 4}));
  EXPECT_EQ(t.encode("x cat x", false), (Ids{4, 3, 7, 3, 4}));
  // "ABC" (normalized=true) matches after lowercasing, whatever the input's case.
  EXPECT_EQ(t.encode("xABCx", false), (Ids{4, 8, 4}));
  EXPECT_EQ(t.encode("xabcx", false), (Ids{4, 8, 4}));
  // No decoder: tokens are joined with spaces (the reference's default).
  EXPECT_EQ(t.decode(Ids{4, 6, 4}), "x [M] x");
  EXPECT_EQ(t.decode(Ids{4, 6, 4}, true), "x x");
}

// ---- Metaspace ----

std::string metaspace_json(const char* scheme) {
  return std::string(R"({
  "added_tokens": [{"id": 0, "content": "<sep>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": ")") +
         scheme + R"(", "split": true},
  "post_processor": null,
  "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": ")" +
         scheme + R"(", "split": true},
  "model": {"type": "BPE", "vocab": {"<sep>": 0, "\u2581hi": 1, "\u2581there": 2, "\u2581": 3,
    "h": 4, "i": 5, "t": 6, "e": 7, "r": 8, "\u2581h": 9, "th": 10, "the": 11, "ther": 12,
    "there": 13},
    "merges": ["\u2581 h", "\u2581h i", "t h", "th e", "the r", "ther e", "\u2581 there"]}
})";
}

TEST(TokenizerMetaspaceTest, PrependSchemes) {
  const Tokenizer first = Tokenizer::from_json(metaspace_json("first"));
  // "hi there" -> "▁hi▁there", split before each ▁: "▁hi", "▁there".
  EXPECT_EQ(first.encode("hi there", false), (Ids{1, 2}));
  // "first": only the stretch at the start of the input gets the prefix; "there" follows <sep>.
  EXPECT_EQ(first.encode("hi<sep>there", false), (Ids{1, 0, 13}));
  const Tokenizer always = Tokenizer::from_json(metaspace_json("always"));
  EXPECT_EQ(always.encode("hi<sep>there", false), (Ids{1, 0, 2}));
  const Tokenizer never = Tokenizer::from_json(metaspace_json("never"));
  // No prefix: h i -> no merge without ▁; "there" merges on its own.
  EXPECT_EQ(never.encode("hi<sep>there", false), (Ids{4, 5, 0, 13}));
  // The decoder drops the first token's ▁ (unless "never") and turns the others into spaces.
  EXPECT_EQ(first.decode(Ids{1, 2}), "hi there");
  EXPECT_EQ(never.decode(Ids{1, 2}), " hi there");
}

// ---- pipeline stages ----

std::vector<std::string> split_with(tok::SplitBehavior behavior, const std::string& text) {
  tok::PreTokenizer p = tok::make<tok::PreTokenizer>(tok::PreTokenizer::Kind::Split);
  p.pattern.literal = "-";
  p.behavior = behavior;
  std::vector<tok::Piece> pieces{{text, -1, true}};
  tok::pre_tokenize(p, pieces);
  std::vector<std::string> out;
  for (const auto& piece : pieces) out.push_back(piece.text);
  return out;
}

TEST(TokenizerStagesTest, SplitBehaviors) {
  // The examples of the reference's documentation of SplitDelimiterBehavior.
  using B = tok::SplitBehavior;
  using V = std::vector<std::string>;
  const std::string s = "the-final--countdown";
  EXPECT_EQ(split_with(B::Removed, s), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split_with(B::Isolated, s), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_with(B::MergedWithPrevious, s), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_with(B::MergedWithNext, s), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_with(B::Contiguous, s), (V{"the", "-", "final", "--", "countdown"}));
}

std::vector<std::string> regex_pieces(const tok::Regex& re, const std::string& text) {
  std::vector<std::string> out;
  for (const tok::Span& m : re.find_all(text)) out.push_back(text.substr(m.start, m.end - m.start));
  return out;
}

TEST(TokenizerStagesTest, Gpt2Regex) {
  using V = std::vector<std::string>;
  const tok::Regex& re = *tok::gpt2_regex();
  EXPECT_EQ(regex_pieces(re, "Hello world's  \n"), (V{"Hello", " world", "'s", "  \n"}));
  // \s+(?!\S) leaves the last space of a run to the word after it.
  EXPECT_EQ(regex_pieces(re, "a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(regex_pieces(re, "x123 4.5!?"), (V{"x", "123", " 4", ".", "5", "!?"}));
  // Oniguruma's \s includes U+0085 (NEL), so " " and NEL are whitespace pieces; were NEL not
  // whitespace, ` ?[^\s\p{L}\p{N}]+` would take " NEL" as one piece.
  EXPECT_EQ(regex_pieces(re,
                         "a \xC2\x85"
                         "b"),
            (V{"a", " ", "\xC2\x85", "b"}));
  EXPECT_EQ(tok::oniguruma_compatible_pattern(R"(\s+[^\s\p{L}]\S)"),
            R"([\s\x{85}]+[^\s\x{85}\p{L}][^\s\x{85}])");
}

TEST(TokenizerStagesTest, RegexErrorsNameThePattern) {
  try {
    tok::Regex re("(unclosed", "test.json.pre_tokenizer");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("test.json.pre_tokenizer"), std::string::npos);
  }
}

TEST(TokenizerStagesTest, ByteLevelAlphabet) {
  EXPECT_EQ(tok::byte_to_char(' '), 0x120u);
  EXPECT_EQ(tok::byte_to_char('\n'), 0x10Au);
  EXPECT_EQ(tok::byte_to_char('A'), static_cast<char32_t>('A'));
  EXPECT_EQ(tok::byte_to_char(0xAD), 0x143u);  // the last of the 68 non-printable bytes
  std::vector<bool> seen(0x144, false);
  for (int b = 0; b < 256; ++b) {
    const char32_t c = tok::byte_to_char(static_cast<std::uint8_t>(b));
    ASSERT_LT(c, 0x144u);
    EXPECT_FALSE(seen[c]) << "byte " << b;
    seen[c] = true;
    EXPECT_EQ(tok::char_to_byte(c), b);
  }
  EXPECT_EQ(tok::char_to_byte(0x144), -1);
}

TEST(TokenizerStagesTest, LossyUtf8MatchesMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(tok::utf8_lossy("ok"), "ok");
  EXPECT_EQ(tok::utf8_lossy("\xE4\xB8"), r);  // truncated 3-byte: one
  EXPECT_EQ(tok::utf8_lossy("\xF0\x9F\x98"
                            "A"),
            r + "A");  // truncated 4-byte: one
  EXPECT_EQ(tok::utf8_lossy("a\xFF"
                            "b"),
            "a" + r + "b");
  EXPECT_EQ(tok::utf8_lossy("\xC0\x80"), r + r);               // C0 is never valid
  EXPECT_EQ(tok::utf8_lossy("\xED\xA0\x80"), r + r + r);       // a surrogate: ED then A0 fails
  EXPECT_EQ(tok::utf8_lossy("\xE2\x82\xAC"), "\xE2\x82\xAC");  // €
  EXPECT_EQ(tok::find_invalid_utf8("ab\xE2\x82"), 2u);
}

TEST(TokenizerStagesTest, Normalizers) {
  auto run = [](tok::Normalizer::Kind kind, std::string s) {
    tok::normalize(tok::make<tok::Normalizer>(kind), s);
    return s;
  };
  using K = tok::Normalizer::Kind;
  EXPECT_EQ(run(K::Nfc, "e\xCC\x81"), "\xC3\xA9");     // e + U+0301 -> é
  EXPECT_EQ(run(K::Nfc, "\xE2\x84\xAB"), "\xC3\x85");  // Angstrom sign -> Å
  EXPECT_EQ(run(K::Nfd, "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(run(K::Nfkc, "\xEF\xAC\x81"), "fi");  // the fi ligature
  EXPECT_EQ(run(K::Lowercase, "AbC \xC3\x89"), "abc \xC3\xA9");
  EXPECT_EQ(run(K::StripAccents, "e\xCC\x81"), "e");
  tok::Normalizer strip = tok::make<tok::Normalizer>(K::Strip);
  strip.strip_left = strip.strip_right = true;
  std::string s = " \t a b \xE3\x80\x80";  // ends with U+3000 (ideographic space)
  tok::normalize(strip, s);
  EXPECT_EQ(s, "a b");
}

// ---- loading errors ----

TEST(TokenizerLoadTest, ErrorsNameTheProblem) {
  auto kind_of = [](const std::string& json) {
    try {
      Tokenizer::from_json(json, {}, "bad.json");
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
      return e.kind();
    }
    ADD_FAILURE() << "no error for " << json;
    return ErrorKind::Io;
  };
  EXPECT_EQ(kind_of("{"), ErrorKind::Format);
  EXPECT_EQ(kind_of(R"({"added_tokens": []})"), ErrorKind::Format);  // no model
  EXPECT_EQ(kind_of(R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})"),
            ErrorKind::Unsupported);
  EXPECT_EQ(kind_of(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})"),
            ErrorKind::Format);  // b is not in the vocabulary
  EXPECT_EQ(kind_of(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                        "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}})"),
            ErrorKind::Unsupported);
  EXPECT_EQ(kind_of(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(x"},
                                          "behavior": "Isolated", "invert": false}})"),
            ErrorKind::Format);
  EXPECT_EQ(kind_of(R"({"model": {"type": "BPE", "vocab": {"a": -3}, "merges": []}})"),
            ErrorKind::Format);
}

TEST(TokenizerLoadTest, MissingDirectoryFilesAreIoErrors) {
  const fs::path dir = fs::temp_directory_path() / "mlxn_tokenizer_empty_dir";
  fs::create_directories(dir);
  try {
    Tokenizer::from_directory(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
  }
  fs::remove_all(dir);
}

// ---- the real tokenizers against the reference ----

class RealTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealTokenizerTest, MatchesReferenceGoldens) {
  const Tokenizer* t = test::real_tokenizer(GetParam());
  const std::optional<Golden> g = test::load_golden(GetParam());
  if (t == nullptr || !g) return;  // the helpers recorded why
  int failures = 0;
  for (std::size_t i = 0; i < g->text.size() && failures < 10; ++i) {
    const std::string& text = g->text[i];
    const std::string what = "text #" + std::to_string(i) + " \"" + test::printable(text) + "\"";
    const Ids special = t->encode(text, true);
    const Ids plain = t->encode(text, false);
    EXPECT_EQ(special, g->ids_special[i]) << what;
    EXPECT_EQ(plain, g->ids_plain[i]) << what;
    EXPECT_EQ(t->decode(g->ids_special[i]), g->decoded[i]) << what;
    EXPECT_EQ(t->decode(g->ids_special[i], true), g->decoded_skip_special[i]) << what;
    failures += special != g->ids_special[i] || plain != g->ids_plain[i];
  }
}

TEST_P(RealTokenizerTest, StreamDecodingEqualsDecode) {
  const Tokenizer* t = test::real_tokenizer(GetParam());
  if (t == nullptr) return;
  const std::string texts = test::read_file(test::repo_root() / "tools" / "tokenizer_texts.json");
  for (const std::string& text : nlohmann::json::parse(texts).get<std::vector<std::string>>()) {
    const Ids ids = t->encode(text, true);
    for (bool skip : {false, true}) {
      TokenStreamDecoder s(*t, skip);
      std::string streamed;
      for (std::int32_t id : ids) {
        const std::string piece = s.push(id);
        EXPECT_EQ(tok::find_invalid_utf8(piece), std::string::npos);
        streamed += piece;
      }
      streamed += s.finish();
      EXPECT_EQ(streamed, t->decode(ids, skip)) << "\"" << test::printable(text) << "\"";
    }
  }
}

TEST_P(RealTokenizerTest, RandomIdsDecodeToValidUtf8) {
  const Tokenizer* t = test::real_tokenizer(GetParam());
  if (t == nullptr) return;
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::int32_t> id(0, t->vocab_size() - 1);
  for (int round = 0; round < 50; ++round) {
    Ids ids(1 + round % 13);
    for (auto& v : ids) v = id(rng);
    const std::string text = t->decode(ids);
    EXPECT_EQ(tok::find_invalid_utf8(text), std::string::npos);
    TokenStreamDecoder s(*t);
    std::string streamed;
    for (std::int32_t v : ids) streamed += s.push(v);
    EXPECT_EQ(streamed + s.finish(), text);
  }
}

TEST(RealTokenizerConfigTest, SpecialTokensFromTheFiles) {
  // The ids are looked up in the files themselves, not taken from the tokenizer under test.
  for (const std::string& name : {std::string("qwen3"), std::string("gemma3")}) {
    const Tokenizer* t = test::real_tokenizer(name);
    if (t == nullptr) return;
    const fs::path dir = test::tokenizer_testdata_dir() / name;
    const auto config = nlohmann::json::parse(test::read_file(dir / "tokenizer_config.json"));
    const auto tj = nlohmann::json::parse(test::read_file(dir / "tokenizer.json"));
    auto id_in_file = [&](const std::string& content) -> std::optional<std::int32_t> {
      for (const auto& a : tj["added_tokens"]) {
        if (a["content"] == content) return a["id"].get<std::int32_t>();
      }
      return std::nullopt;
    };
    const std::string eos = config["eos_token"].get<std::string>();
    EXPECT_EQ(t->eos_id(), id_in_file(eos)) << name;
    EXPECT_EQ(t->eos_token(), eos) << name;
    if (config["bos_token"].is_string()) {
      EXPECT_EQ(t->bos_id(), id_in_file(config["bos_token"].get<std::string>())) << name;
    } else {
      EXPECT_EQ(t->bos_id(), std::nullopt) << name;
    }
    EXPECT_EQ(t->chat_template(), config["chat_template"].get<std::string>()) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(All, RealTokenizerTest, ::testing::ValuesIn(test::real_tokenizer_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mlxn::engine
