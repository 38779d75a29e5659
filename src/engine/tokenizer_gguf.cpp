// Tokenizers embedded in GGUF files (tokenizer.ggml.*), expressed as the equivalent Hugging Face
// pipeline so one encoder serves both sources:
//   "gpt2":  byte-level BPE with merges; tokenizer.ggml.pre picks the split regex (GPT-2, Llama 3
//            with ignore_merges, Qwen2 with its NFC normalizer).
//   "llama": SentencePiece BPE: spaces become U+2581 (with a prefix space unless
//            tokenizer.ggml.add_space_prefix is false), symbols merge by token score, characters
//            without a token fall back to <0xNN> byte tokens.
// Control, user-defined and unknown-type tokens are matched in the text first, as added tokens.
#include <string>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_unicode.h"
#include "mlxn/core/error.h"
#include "mlxn/io/gguf_metadata.h"

namespace mlxn::engine::tok {

namespace {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
constexpr std::int32_t kTypeUnknown = 2;
constexpr std::int32_t kTypeControl = 3;
constexpr std::int32_t kTypeUserDefined = 4;

struct PreInfo {
  const char* pattern;
  bool ignore_merges;
  bool nfc;
};

// tokenizer.ggml.pre -> the tokenizer.json pipeline it names.
std::optional<PreInfo> pre_info(const std::string& pre) {
  if (pre == "default" || pre == "gpt-2" || pre == "gpt2")
    return PreInfo{kGpt2Pattern, false, false};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe") {
    return PreInfo{kLlama3Pattern, true, false};
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return PreInfo{kQwen2Pattern, false, true};
  return std::nullopt;
}

Normalizer replace_spaces() {
  Normalizer n = make<Normalizer>(Normalizer::Kind::Replace);
  n.pattern.literal = " ";
  n.content = std::string(kMetaspace);
  return n;
}

}  // namespace

std::shared_ptr<TokenizerData> load_gguf_tokenizer(const io::GgufFile& file) {
  const io::GgufMetadata m(file);
  const std::string where = file.name();
  if (!m.has("tokenizer.ggml.model")) {
    throw Error(ErrorKind::Format,
                where + ": no embedded tokenizer (tokenizer.ggml.model is absent)");
  }
  const std::string kind = m.tokenizer_model();
  if (kind != "gpt2" && kind != "llama") {
    throw Error(ErrorKind::Unsupported, where + ": tokenizer.ggml.model '" + kind +
                                            "' is not supported (supported: gpt2, llama)");
  }
  const std::vector<std::string>& tokens = m.tokens();
  const std::vector<std::int32_t>* types = m.token_types();
  if (types != nullptr && types->size() != tokens.size()) {
    throw Error(ErrorKind::Format, where + ": tokenizer.ggml.token_type has " +
                                       std::to_string(types->size()) + " entries for " +
                                       std::to_string(tokens.size()) + " tokens");
  }

  // Token-id keys: absent, negative or out-of-range values (some files store -1 for "none")
  // mean no such token.
  auto id_key = [&](const char* key) -> std::optional<std::int32_t> {
    const io::GgufValue* v = m.find(key);
    if (v == nullptr) return std::nullopt;
    const std::int64_t id = v->to_int(file.key_context(key));
    if (id < 0 || static_cast<std::uint64_t>(id) >= tokens.size()) return std::nullopt;
    return static_cast<std::int32_t>(id);
  };

  auto t = std::make_shared<TokenizerData>();
  t->name = where;
  BpeModel& bpe = t->model;
  bpe.reserve(tokens.size());
  const std::string tokens_where = where + ": tokenizer.ggml.tokens";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    bpe.add_token(tokens[i], static_cast<std::int32_t>(i), tokens_where);
  }
  bpe.index_byte_tokens();

  std::vector<AddedToken> added;
  if (types != nullptr) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::int32_t type = (*types)[i];
      if (tokens[i].empty() ||
          (type != kTypeUnknown && type != kTypeControl && type != kTypeUserDefined)) {
        continue;
      }
      AddedToken a;
      a.id = static_cast<std::int32_t>(i);
      a.content = tokens[i];
      a.normalized = false;
      a.special = type != kTypeUserDefined;
      added.push_back(std::move(a));
    }
  }

  const bool spm = kind == "llama";
  bool add_bos = m.get_or<bool>("tokenizer.ggml.add_bos_token", spm);
  const bool add_eos = m.get_or<bool>("tokenizer.ggml.add_eos_token", false);
  if (spm) {
    const std::vector<float>* scores = m.scores();
    if (scores == nullptr || scores->size() != tokens.size()) {
      throw Error(ErrorKind::Format, where +
                                         ": a \"llama\" tokenizer needs tokenizer.ggml.scores "
                                         "with one score per token");
    }
    bpe.score_merges = true;
    bpe.scores = *scores;
    bpe.byte_fallback = true;
    bpe.unk_id = id_key("tokenizer.ggml.unknown_token_id");
    if (!bpe.unk_id) bpe.unk_id = bpe.token_to_id("<unk>");
    const bool space_prefix = m.get_or<bool>("tokenizer.ggml.add_space_prefix", true);
    Normalizer norm = make<Normalizer>(Normalizer::Kind::Sequence);
    if (space_prefix) {
      Normalizer prepend = make<Normalizer>(Normalizer::Kind::Prepend);
      prepend.content = std::string(kMetaspace);
      norm.children.push_back(std::move(prepend));
    }
    norm.children.push_back(replace_spaces());
    t->normalizer = std::move(norm);
    Decoder dec = make<Decoder>(Decoder::Kind::Sequence);
    Decoder to_space = make<Decoder>(Decoder::Kind::Replace);
    to_space.content = " ";
    to_space.pattern.literal = std::string(kMetaspace);
    dec.children.push_back(std::move(to_space));
    dec.children.push_back(make<Decoder>(Decoder::Kind::ByteFallback));
    dec.children.push_back(make<Decoder>(Decoder::Kind::Fuse));
    if (space_prefix) {
      Decoder strip = make<Decoder>(Decoder::Kind::Strip);
      strip.content = " ";
      strip.strip_start = 1;
      dec.children.push_back(std::move(strip));
    }
    t->decoder = std::move(dec);
  } else {
    const std::vector<std::string>* merges = m.merges();
    if (merges == nullptr) {
      throw Error(ErrorKind::Format, where + ": a \"gpt2\" tokenizer needs tokenizer.ggml.merges");
    }
    const std::string pre = m.get_or<std::string>("tokenizer.ggml.pre", "default");
    const std::optional<PreInfo> info = pre_info(pre);
    if (!info) {
      throw Error(ErrorKind::Unsupported,
                  where + ": tokenizer.ggml.pre '" + pre +
                      "' is not supported (supported: default, gpt-2, llama-bpe, llama3, "
                      "smaug-bpe, qwen2, deepseek-r1-qwen)");
    }
    bpe.merges.reserve(merges->size());
    for (std::size_t i = 0; i < merges->size(); ++i) {
      const std::string& s = (*merges)[i];
      const std::size_t sp = s.find(' ');
      if (sp == std::string::npos) {
        throw Error(ErrorKind::Format, where + ": tokenizer.ggml.merges[" + std::to_string(i) +
                                           "]: expected \"left right\", found \"" + s + "\"");
      }
      bpe.add_merge(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1),
                    where + ": tokenizer.ggml.merges", i);
    }
    bpe.ignore_merges = info->ignore_merges;
    if (info->nfc) t->normalizer = make<Normalizer>(Normalizer::Kind::Nfc);
    PreTokenizer split = make<PreTokenizer>(PreTokenizer::Kind::Split);
    split.pattern.regex =
        std::make_shared<const Regex>(info->pattern, where + ": tokenizer.ggml.pre '" + pre + "'");
    split.behavior = SplitBehavior::Isolated;
    PreTokenizer seq = make<PreTokenizer>(PreTokenizer::Kind::Sequence);
    seq.children.push_back(std::move(split));
    PreTokenizer bytes = make<PreTokenizer>(PreTokenizer::Kind::ByteLevel);
    bytes.add_prefix_space = false;
    bytes.use_regex = false;
    seq.children.push_back(std::move(bytes));
    t->pre_tokenizer = std::move(seq);
    t->decoder = make<Decoder>(Decoder::Kind::ByteLevel);
  }

  t->added.build(std::move(added), t->normalizer ? &*t->normalizer : nullptr);

  t->bos_id = id_key("tokenizer.ggml.bos_token_id");
  t->eos_id = id_key("tokenizer.ggml.eos_token_id");
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (auto id = id_key(key)) t->stop_ids.push_back(*id);
  }
  if (add_bos && !t->bos_id) add_bos = false;
  PostProcessor post = make<PostProcessor>(PostProcessor::Kind::Template);
  if (add_bos) post.prefix.push_back(*t->bos_id);
  if (add_eos && t->eos_id) post.suffix.push_back(*t->eos_id);
  t->post_processor = std::move(post);
  t->add_bos_token = add_bos;
  t->chat_template = m.chat_template().value_or("");
  t->finish();
  return t;
}

}  // namespace mlxn::engine::tok
