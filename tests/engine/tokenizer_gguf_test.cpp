// Tokenizers embedded in GGUF files: small hand-made vocabularies ("llama" SentencePiece with
// scores, "gpt2" with merges) whose expected ids are worked out in the comments, and GGUF
// vocabularies built from the real tokenizer files, checked against the reference goldens.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/tokenizer_test_util.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/tokenizer.h"
#include "mlxn/io/gguf_file.h"
#include "mlxn/io/gguf_writer.h"

namespace mlxn::engine {
namespace {

using Ids = std::vector<std::int32_t>;
namespace fs = std::filesystem;

// llama.cpp's token types.
constexpr std::int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

io::GgufFile to_gguf(io::GgufWriter& w, const std::string& name = "test.gguf") {
  return io::GgufFile::from_bytes(name, w.to_bytes());
}

// A SentencePiece vocabulary. Scores make "bc" (-3) merge before "ab" (-5): a rank-by-merge-list
// BPE would not see that, the score-driven one must.
io::GgufWriter spm_writer(bool space_prefix = true) {
  io::GgufWriter w;
  w.add("tokenizer.ggml.model", "llama");
  w.add("tokenizer.ggml.tokens", std::vector<std::string>{"<unk>", "<s>", "</s>", "\xE2\x96\x81",
                                                          "a", "b", "c", "ab", "bc", "abc",
                                                          "\xE2\x96\x81"
                                                          "a",
                                                          "<0xC3>", "<0xA9>",
                                                          "\xE2\x96\x81"
                                                          "abc"});
  w.add("tokenizer.ggml.scores",
        std::vector<float>{0, 0, 0, -1, -2, -2, -2, -5, -3, -4, -10, 0, 0, -6});
  w.add("tokenizer.ggml.token_type",
        std::vector<std::int32_t>{kUnknown, kControl, kControl, kNormal, kNormal, kNormal, kNormal,
                                  kNormal, kNormal, kNormal, kNormal, kByte, kByte, kNormal});
  w.add("tokenizer.ggml.bos_token_id", std::uint32_t{1});
  w.add("tokenizer.ggml.eos_token_id", std::uint32_t{2});
  w.add("tokenizer.ggml.unknown_token_id", std::uint32_t{0});
  if (!space_prefix) w.add("tokenizer.ggml.add_space_prefix", false);
  return w;
}

TEST(TokenizerGgufTest, SentencePieceMergesByScore) {
  io::GgufWriter w = spm_writer();
  const io::GgufFile f = to_gguf(w);
  const Tokenizer t = Tokenizer::from_gguf(f);
  // "abc" -> "▁abc": ▁ a b c. Best pair by score: bc (-3) -> ▁ a bc; then "abc" (-4) -> ▁ abc;
  // then "▁abc" (-6). (Merging ab (-5) first would have ended in ▁a bc.)
  EXPECT_EQ(t.encode("abc", false), (Ids{13}));
  // add_bos_token defaults to true for "llama" vocabularies.
  EXPECT_EQ(t.encode("abc", true), (Ids{1, 13}));
  // é has no token: its bytes C3 A9 have; "x" has neither, so it is <unk>.
  EXPECT_EQ(t.encode("\xC3\xA9", false), (Ids{3, 11, 12}));
  EXPECT_EQ(t.encode("x", false), (Ids{3, 0}));
  // Control tokens are matched in the text; the text after them gets its own "▁" prefix.
  EXPECT_EQ(t.encode("a</s>", false), (Ids{10, 2}));
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.stop_ids(), (Ids{2}));
  EXPECT_TRUE(t.add_bos_token());
}

TEST(TokenizerGgufTest, SentencePieceDecodes) {
  io::GgufWriter w = spm_writer();
  const io::GgufFile f = to_gguf(w);
  const Tokenizer t = Tokenizer::from_gguf(f);
  // "<s>", " abc", bytes C3 A9 -> "é"; the leading-space strip does not touch "<s>".
  EXPECT_EQ(t.decode(Ids{1, 13, 11, 12}), "<s> abc\xC3\xA9");
  EXPECT_EQ(t.decode(Ids{1, 13, 11, 12}, true), "abc\xC3\xA9");
}

TEST(TokenizerGgufTest, SentencePieceWithoutSpacePrefix) {
  io::GgufWriter w = spm_writer(/*space_prefix=*/false);
  const io::GgufFile f = to_gguf(w);
  const Tokenizer t = Tokenizer::from_gguf(f);
  // "abc": bc, then abc (9); no "▁" in front.
  EXPECT_EQ(t.encode("abc", false), (Ids{9}));
  // " abc" -> "▁abc" from the space itself.
  EXPECT_EQ(t.encode(" abc", false), (Ids{13}));
  EXPECT_EQ(t.decode(Ids{13}), " abc");
}

// A byte-level vocabulary: merges h+e, l+l, he+ll, hell+o, Ġ+w ("Ġ" is the space byte).
io::GgufWriter gpt2_writer(const std::string& pre) {
  io::GgufWriter w;
  w.add("tokenizer.ggml.model", "gpt2");
  w.add("tokenizer.ggml.pre", pre);
  w.add("tokenizer.ggml.tokens",
        std::vector<std::string>{"h", "e", "l", "o", "\xC4\xA0", "w", "he", "ll", "hell", "hello",
                                 "\xC4\xA0w", "<|eot|>", "<x>"});
  w.add("tokenizer.ggml.token_type",
        std::vector<std::int32_t>{kNormal, kNormal, kNormal, kNormal, kNormal, kNormal, kNormal,
                                  kNormal, kNormal, kNormal, kNormal, kControl, kUserDefined});
  w.add("tokenizer.ggml.merges",
        std::vector<std::string>{"h e", "l l", "he ll", "hell o", "\xC4\xA0 w"});
  w.add("tokenizer.ggml.eos_token_id", std::uint32_t{11});
  return w;
}

TEST(TokenizerGgufTest, Gpt2ByteLevel) {
  io::GgufWriter w = gpt2_writer("gpt-2");
  w.add("tokenizer.ggml.bos_token_id", std::uint32_t{11});
  w.add("tokenizer.ggml.add_bos_token", true);
  w.add("tokenizer.chat_template", "{{ messages }}");
  const io::GgufFile f = to_gguf(w);
  const Tokenizer t = Tokenizer::from_gguf(f);
  // "hello hello<|eot|>": pieces "hello", " hello" -> hello (9); Ġ h e l l o -> Ġ hello (4, 9),
  // since there is no Ġ+hello merge; then the control token.
  EXPECT_EQ(t.encode("hello hello<|eot|>", false), (Ids{9, 4, 9, 11}));
  EXPECT_EQ(t.encode("hello", true), (Ids{11, 9}));
  // User-defined tokens are matched too, but are not special.
  EXPECT_EQ(t.encode("<x>he", false), (Ids{12, 6}));
  EXPECT_EQ(t.decode(Ids{9, 4, 9, 11, 12}), "hello hello<|eot|><x>");
  EXPECT_EQ(t.decode(Ids{9, 4, 9, 11, 12}, true), "hello hello<x>");
  EXPECT_EQ(t.chat_template(), "{{ messages }}");
}

TEST(TokenizerGgufTest, UnsupportedVocabulariesAreRejected) {
  {
    io::GgufWriter w = gpt2_writer("some-future-pre");
    const io::GgufFile f = to_gguf(w);
    try {
      Tokenizer::from_gguf(f);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
      EXPECT_NE(std::string(e.what()).find("some-future-pre"), std::string::npos) << e.what();
    }
  }
  {
    io::GgufWriter w;
    w.add("tokenizer.ggml.model", "bert");
    w.add("tokenizer.ggml.tokens", std::vector<std::string>{"a"});
    const io::GgufFile f = to_gguf(w);
    EXPECT_THROW(Tokenizer::from_gguf(f), Error);
  }
  {
    io::GgufWriter w;
    w.add("general.architecture", "llama");
    const io::GgufFile f = to_gguf(w);
    try {
      Tokenizer::from_gguf(f);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Format);
      EXPECT_NE(std::string(e.what()).find("test.gguf"), std::string::npos) << e.what();
    }
  }
  {
    // A "llama" vocabulary needs scores.
    io::GgufWriter w;
    w.add("tokenizer.ggml.model", "llama");
    w.add("tokenizer.ggml.tokens", std::vector<std::string>{"a"});
    const io::GgufFile f = to_gguf(w);
    EXPECT_THROW(Tokenizer::from_gguf(f), Error);
  }
}

// ---- real vocabularies as GGUF files ----

// The GGUF metadata convert_hf_to_gguf.py writes for a byte-level BPE tokenizer.json: tokens by
// id (added tokens included), merges as "left right", added special tokens as control tokens and
// the other added tokens as user-defined.
io::GgufWriter gguf_from_tokenizer_json(const fs::path& path, const std::string& pre) {
  const auto j = nlohmann::json::parse(test::read_file(path));
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  auto put = [&](std::int32_t id, const std::string& s, std::int32_t type) {
    if (static_cast<std::size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      types.resize(id + 1, kNormal);
    }
    tokens[id] = s;
    types[id] = type;
  };
  for (const auto& [s, id] : j["model"]["vocab"].items()) put(id.get<std::int32_t>(), s, kNormal);
  for (const auto& a : j["added_tokens"]) {
    put(a["id"].get<std::int32_t>(), a["content"].get<std::string>(),
        a["special"].get<bool>() ? kControl : kUserDefined);
  }
  std::vector<std::string> merges;
  for (const auto& m : j["model"]["merges"]) {
    merges.push_back(m.is_string() ? m.get<std::string>()
                                   : m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  io::GgufWriter w;
  w.add("tokenizer.ggml.model", "gpt2");
  w.add("tokenizer.ggml.pre", pre);
  w.add("tokenizer.ggml.tokens", tokens);
  w.add("tokenizer.ggml.token_type", types);
  w.add("tokenizer.ggml.merges", merges);
  w.add("tokenizer.ggml.add_bos_token", false);
  return w;
}

// GPT-2's vocab.json + merges.txt as GGUF metadata.
io::GgufWriter gguf_from_vocab_merges(const fs::path& dir) {
  const auto vocab = nlohmann::json::parse(test::read_file(dir / "vocab.json"));
  std::vector<std::string> tokens(vocab.size());
  std::vector<std::int32_t> types(vocab.size(), kNormal);
  for (const auto& [s, id] : vocab.items()) tokens.at(id.get<std::size_t>()) = s;
  const std::size_t eot = vocab["<|endoftext|>"].get<std::size_t>();
  types[eot] = kControl;
  std::vector<std::string> merges;
  std::istringstream in(test::read_file(dir / "merges.txt"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && !line.starts_with("#version")) merges.push_back(line);
  }
  io::GgufWriter w;
  w.add("tokenizer.ggml.model", "gpt2");
  w.add("tokenizer.ggml.pre", "gpt-2");
  w.add("tokenizer.ggml.tokens", tokens);
  w.add("tokenizer.ggml.token_type", types);
  w.add("tokenizer.ggml.merges", merges);
  return w;
}

struct RealGguf {
  std::string name;
  std::string pre;
};

void PrintTo(const RealGguf& p, std::ostream* os) {
  *os << p.name << " (" << p.pre << ")";
}

class RealGgufTokenizerTest : public ::testing::TestWithParam<RealGguf> {};

TEST_P(RealGgufTokenizerTest, MatchesReferenceGoldens) {
  const RealGguf& p = GetParam();
  const std::optional<fs::path> dir = test::real_tokenizer_dir(p.name);
  const std::optional<test::Golden> g = test::load_golden(p.name);
  if (!dir || !g) return;  // the helpers recorded why
  io::GgufWriter w = p.name == "gpt2" ? gguf_from_vocab_merges(*dir)
                                      : gguf_from_tokenizer_json(*dir / "tokenizer.json", p.pre);
  const io::GgufFile f = to_gguf(w, p.name + ".gguf");
  const Tokenizer t = Tokenizer::from_gguf(f);
  int failures = 0;
  for (std::size_t i = 0; i < g->text.size() && failures < 10; ++i) {
    const std::string what =
        "text #" + std::to_string(i) + " \"" + test::printable(g->text[i]) + "\"";
    const Ids ids = t.encode(g->text[i], false);
    EXPECT_EQ(ids, g->ids_plain[i]) << what;
    failures += ids != g->ids_plain[i];
    // These tokenizer.json files add no special tokens, so decoded is decode(ids_plain).
    EXPECT_EQ(g->ids_special[i], g->ids_plain[i]) << what;
    EXPECT_EQ(t.decode(g->ids_plain[i]), g->decoded[i]) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(All, RealGgufTokenizerTest,
                         ::testing::Values(RealGguf{"gpt2", "gpt-2"},
                                           RealGguf{"llama3", "llama-bpe"},
                                           RealGguf{"qwen3", "qwen2"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace mlxn::engine
