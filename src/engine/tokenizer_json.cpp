// Parsing of Hugging Face tokenizer files into TokenizerData: tokenizer.json (model, added tokens,
// normalizer, pre-tokenizer, post-processor, decoder), tokenizer_config.json (special tokens,
// add_bos_token, chat template), generation_config.json (stop ids), and the older GPT-2 layout of
// vocab.json + merges.txt. Unknown component types throw Unsupported naming them and the path.
#include <nlohmann/json.hpp>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_json_reader.h"
#include "mlxn/core/error.h"

namespace mlxn::engine::tok {

namespace {

using Json = nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::Format, where + ": " + what);
}

[[noreturn]] void unsupported(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::Unsupported, where + ": " + what);
}

Json parse_text(std::string_view text, const std::string& name) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    fail(name, std::string("invalid JSON (") + e.what() + ")");
  }
}

// Field accessors: absent or null fields give the fallback, fields of the wrong type throw
// Format naming the path.
bool get_bool(const Json& j, const char* key, bool fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(where + "." + key, "expected a boolean");
  return it->get<bool>();
}

std::optional<std::string> get_string(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) fail(where + "." + key, "expected a string");
  return it->get<std::string>();
}

std::int64_t as_int(const Json& v, const std::string& where) {
  if (!v.is_number_integer()) fail(where, "expected an integer");
  return v.get<std::int64_t>();
}

std::int32_t as_id(const Json& v, const std::string& where) {
  const std::int64_t i = as_int(v, where);
  if (i < 0 || i > INT32_MAX) fail(where, "token id " + std::to_string(i) + " is out of range");
  return static_cast<std::int32_t>(i);
}

const Json& get_array(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) fail(where + "." + key, "expected an array");
  return *it;
}

std::string type_of(const Json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "expected an object");
  auto t = get_string(j, "type", where);
  if (!t) fail(where, "missing \"type\"");
  return *t;
}

Pattern parse_pattern(const Json& j, const std::string& where) {
  Pattern p;
  if (!j.is_object()) fail(where, "expected {\"String\": ...} or {\"Regex\": ...}");
  if (auto s = get_string(j, "String", where)) {
    p.literal = *s;
  } else if (auto r = get_string(j, "Regex", where)) {
    p.regex = std::make_shared<const Regex>(*r, where);
  } else {
    fail(where, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  return p;
}

// A one-character string field (Metaspace replacement, Strip content), or `fallback`.
std::string get_char(const Json& j, const char* key, std::string fallback,
                     const std::string& where) {
  auto s = get_string(j, key, where);
  return s ? *s : fallback;
}

PrependScheme parse_prepend_scheme(const Json& j, const std::string& where) {
  PrependScheme scheme = PrependScheme::Always;
  if (auto s = get_string(j, "prepend_scheme", where)) {
    if (*s == "always") {
      scheme = PrependScheme::Always;
    } else if (*s == "first") {
      scheme = PrependScheme::First;
    } else if (*s == "never") {
      scheme = PrependScheme::Never;
    } else {
      fail(where + ".prepend_scheme", "unknown value '" + *s + "'");
    }
  }
  // Files from before prepend_scheme existed say add_prefix_space instead.
  if (!get_bool(j, "add_prefix_space", true, where)) scheme = PrependScheme::Never;
  return scheme;
}

SplitBehavior parse_behavior(const Json& j, SplitBehavior fallback, const std::string& where) {
  auto s = get_string(j, "behavior", where);
  if (!s) return fallback;
  if (*s == "Removed") return SplitBehavior::Removed;
  if (*s == "Isolated") return SplitBehavior::Isolated;
  if (*s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (*s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (*s == "Contiguous") return SplitBehavior::Contiguous;
  fail(where + ".behavior", "unknown value '" + *s + "'");
}

Normalizer parse_normalizer(const Json& j, const std::string& where) {
  using K = Normalizer::Kind;
  const std::string type = type_of(j, where);
  Normalizer n;
  if (type == "Sequence") {
    n.kind = K::Sequence;
    const Json& arr = get_array(j, "normalizers", where);
    for (std::size_t i = 0; i < arr.size(); ++i) {
      n.children.push_back(
          parse_normalizer(arr[i], where + ".normalizers[" + std::to_string(i) + "]"));
    }
  } else if (type == "Prepend") {
    n.kind = K::Prepend;
    n.content = get_string(j, "prepend", where).value_or("");
  } else if (type == "Replace") {
    n.kind = K::Replace;
    if (!j.contains("pattern")) fail(where, "Replace without a pattern");
    n.pattern = parse_pattern(j["pattern"], where + ".pattern");
    n.content = get_string(j, "content", where).value_or("");
  } else if (type == "NFC") {
    n.kind = K::Nfc;
  } else if (type == "NFD") {
    n.kind = K::Nfd;
  } else if (type == "NFKC") {
    n.kind = K::Nfkc;
  } else if (type == "NFKD") {
    n.kind = K::Nfkd;
  } else if (type == "Lowercase") {
    n.kind = K::Lowercase;
  } else if (type == "Strip") {
    n.kind = K::Strip;
    n.strip_left = get_bool(j, "strip_left", true, where);
    n.strip_right = get_bool(j, "strip_right", true, where);
  } else if (type == "StripAccents") {
    n.kind = K::StripAccents;
  } else {
    unsupported(where, "normalizer type '" + type + "' is not supported");
  }
  return n;
}

PreTokenizer parse_pre_tokenizer(const Json& j, const std::string& where) {
  using K = PreTokenizer::Kind;
  const std::string type = type_of(j, where);
  PreTokenizer p;
  if (type == "Sequence") {
    p.kind = K::Sequence;
    const Json& arr = get_array(j, "pretokenizers", where);
    for (std::size_t i = 0; i < arr.size(); ++i) {
      p.children.push_back(
          parse_pre_tokenizer(arr[i], where + ".pretokenizers[" + std::to_string(i) + "]"));
    }
  } else if (type == "ByteLevel") {
    p.kind = K::ByteLevel;
    p.add_prefix_space = get_bool(j, "add_prefix_space", true, where);
    p.use_regex = get_bool(j, "use_regex", true, where);
  } else if (type == "Split") {
    p.kind = K::Split;
    if (!j.contains("pattern")) fail(where, "Split without a pattern");
    p.pattern = parse_pattern(j["pattern"], where + ".pattern");
    p.behavior = parse_behavior(j, SplitBehavior::Isolated, where);
    p.invert = get_bool(j, "invert", false, where);
  } else if (type == "Metaspace") {
    p.kind = K::Metaspace;
    p.replacement = get_char(j, "replacement", "\xE2\x96\x81", where);
    p.prepend_scheme = parse_prepend_scheme(j, where);
    p.split = get_bool(j, "split", true, where);
  } else if (type == "Digits") {
    p.kind = K::Digits;
    p.individual_digits = get_bool(j, "individual_digits", false, where);
  } else if (type == "Whitespace") {
    p.kind = K::Whitespace;
  } else if (type == "WhitespaceSplit") {
    p.kind = K::WhitespaceSplit;
  } else if (type == "Punctuation") {
    p.kind = K::Punctuation;
    p.behavior = parse_behavior(j, SplitBehavior::Isolated, where);
  } else if (type == "BertPreTokenizer") {
    // Whitespace removed, punctuation isolated.
    p.kind = K::Sequence;
    p.children.push_back(make<PreTokenizer>(K::WhitespaceSplit));
    p.children.push_back(make<PreTokenizer>(K::Punctuation));
  } else if (type == "CharDelimiterSplit") {
    p.kind = K::Split;
    p.pattern.literal = get_string(j, "delimiter", where).value_or(" ");
    p.behavior = SplitBehavior::Removed;
  } else {
    unsupported(where, "pre-tokenizer type '" + type + "' is not supported");
  }
  return p;
}

// [token, id] of BertProcessing / RobertaProcessing.
std::int32_t processing_id(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2) {
    fail(where + "." + key, "expected [token, id]");
  }
  return as_id((*it)[1], where + "." + key + "[1]");
}

PostProcessor parse_post_processor(const Json& j, const std::string& where) {
  using K = PostProcessor::Kind;
  const std::string type = type_of(j, where);
  PostProcessor p;
  if (type == "Sequence") {
    p.kind = K::Sequence;
    const Json& arr = get_array(j, "processors", where);
    for (std::size_t i = 0; i < arr.size(); ++i) {
      p.children.push_back(
          parse_post_processor(arr[i], where + ".processors[" + std::to_string(i) + "]"));
    }
  } else if (type == "ByteLevel") {
    p.kind = K::ByteLevel;
  } else if (type == "TemplateProcessing") {
    p.kind = K::Template;
    const Json& single = get_array(j, "single", where);
    const Json& specials = j.contains("special_tokens") ? j["special_tokens"] : Json::object();
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const std::string at = where + ".single[" + std::to_string(i) + "]";
      const Json& piece = single[i];
      if (piece.contains("Sequence")) {
        if (seen_sequence) unsupported(at, "a single-sequence template with two sequences");
        seen_sequence = true;
        continue;
      }
      if (!piece.contains("SpecialToken")) fail(at, "expected SpecialToken or Sequence");
      auto name = get_string(piece["SpecialToken"], "id", at + ".SpecialToken");
      if (!name) fail(at, "SpecialToken without an id");
      auto sp = specials.find(*name);
      if (sp == specials.end()) fail(at, "special token '" + *name + "' is not in special_tokens");
      const Json& ids = get_array(*sp, "ids", where + ".special_tokens." + *name);
      for (const Json& id : ids) {
        (seen_sequence ? p.suffix : p.prefix).push_back(as_id(id, where + ".special_tokens"));
      }
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    p.kind = type == "BertProcessing" ? K::Bert : K::Roberta;
    p.prefix.push_back(processing_id(j, "cls", where));
    p.suffix.push_back(processing_id(j, "sep", where));
  } else {
    unsupported(where, "post-processor type '" + type + "' is not supported");
  }
  return p;
}

Decoder parse_decoder(const Json& j, const std::string& where) {
  using K = Decoder::Kind;
  const std::string type = type_of(j, where);
  Decoder d;
  if (type == "Sequence") {
    d.kind = K::Sequence;
    const Json& arr = get_array(j, "decoders", where);
    for (std::size_t i = 0; i < arr.size(); ++i) {
      d.children.push_back(parse_decoder(arr[i], where + ".decoders[" + std::to_string(i) + "]"));
    }
  } else if (type == "ByteLevel") {
    d.kind = K::ByteLevel;
  } else if (type == "ByteFallback") {
    d.kind = K::ByteFallback;
  } else if (type == "Fuse") {
    d.kind = K::Fuse;
  } else if (type == "Strip") {
    d.kind = K::Strip;
    d.content = get_char(j, "content", " ", where);
    d.strip_start =
        static_cast<std::size_t>(j.contains("start") ? as_int(j["start"], where + ".start") : 0);
    d.strip_stop =
        static_cast<std::size_t>(j.contains("stop") ? as_int(j["stop"], where + ".stop") : 0);
  } else if (type == "Replace") {
    d.kind = K::Replace;
    if (!j.contains("pattern")) fail(where, "Replace without a pattern");
    d.pattern = parse_pattern(j["pattern"], where + ".pattern");
    d.content = get_string(j, "content", where).value_or("");
  } else if (type == "Metaspace") {
    d.kind = K::Metaspace;
    d.content = get_char(j, "replacement", "\xE2\x96\x81", where);
    d.prepend_scheme = parse_prepend_scheme(j, where);
  } else if (type == "BPEDecoder") {
    d.kind = K::Bpe;
    d.content = get_string(j, "suffix", where).value_or("</w>");
  } else if (type == "WordPiece") {
    d.kind = K::WordPiece;
    d.content = get_string(j, "prefix", where).value_or("##");
    d.cleanup = get_bool(j, "cleanup", true, where);
  } else {
    unsupported(where, "decoder type '" + type + "' is not supported");
  }
  return d;
}

// The "model" object, read in place: the vocabulary and merges are too big for a DOM.
void parse_bpe(JsonReader& r, BpeModel& bpe, const std::string& where) {
  Json settings = Json::object();  // the small members
  std::vector<std::pair<std::string, std::string>> merges;
  bool vocab_seen = false;
  std::string value;
  r.object([&](const std::string& key) {
    if (key == "vocab") {
      if (r.peek() != '{') {  // Unigram and WordLevel vocabularies are not objects of ids
        settings["vocab_kind"] = "other";
        r.skip_value();
        return;
      }
      vocab_seen = true;
      r.object([&](const std::string& token) {
        const std::int64_t id = r.read_int();
        if (id < 0 || id > INT32_MAX) r.fail("token id " + std::to_string(id) + " is out of range");
        bpe.add_token(token, static_cast<std::int32_t>(id), where);
      });
    } else if (key == "merges") {
      r.array([&](std::size_t i) {
        if (r.peek() == '"') {
          r.read_string(value);
          const std::size_t sp = value.find(' ');
          if (sp == std::string::npos || value.find(' ', sp + 1) != std::string::npos) {
            fail(where + ".merges[" + std::to_string(i) + "]",
                 "expected \"left right\", found \"" + value + "\"");
          }
          merges.emplace_back(value.substr(0, sp), value.substr(sp + 1));
          return;
        }
        std::pair<std::string, std::string> m;
        r.array([&](std::size_t k) {
          if (k > 1) fail(where + ".merges[" + std::to_string(i) + "]", "expected [left, right]");
          r.read_string(k == 0 ? m.first : m.second);
        });
        merges.push_back(std::move(m));
      });
    } else {
      const std::string_view raw = r.skip_value();
      settings[key] = parse_text(raw, where + "." + key);
    }
  });
  const std::string type = get_string(settings, "type", where).value_or("BPE");
  if (type != "BPE") unsupported(where, "model type '" + type + "' is not supported (only BPE)");
  if (settings.contains("vocab_kind")) fail(where + ".vocab", "expected an object of ids");
  if (!vocab_seen) fail(where, "missing \"vocab\"");
  bpe.continuing_subword_prefix =
      get_string(settings, "continuing_subword_prefix", where).value_or("");
  bpe.end_of_word_suffix = get_string(settings, "end_of_word_suffix", where).value_or("");
  bpe.fuse_unk = get_bool(settings, "fuse_unk", false, where);
  bpe.byte_fallback = get_bool(settings, "byte_fallback", false, where);
  bpe.ignore_merges = get_bool(settings, "ignore_merges", false, where);
  // `dropout` only randomizes training-time segmentation; inference is deterministic without it.
  if (auto unk = get_string(settings, "unk_token", where)) {
    // An unk token missing from the vocabulary leaves unk_id unset: unknown characters are then
    // dropped, as when there is no unk token at all.
    bpe.unk_id = bpe.token_to_id(*unk);
  }
  bpe.merges.reserve(merges.size());
  const std::string merges_where = where + ".merges";
  for (std::size_t i = 0; i < merges.size(); ++i) {
    bpe.add_merge(merges[i].first, merges[i].second, merges_where, i);
  }
  bpe.index_byte_tokens();
}

std::vector<AddedToken> parse_added_tokens(const Json& arr, const std::string& where) {
  std::vector<AddedToken> out;
  if (arr.is_null()) return out;
  if (!arr.is_array()) fail(where, "expected an array");
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const Json& t = arr[i];
    if (!t.is_object() || !t.contains("id")) fail(at, "expected an object with an id");
    AddedToken a;
    a.id = as_id(t["id"], at + ".id");
    auto content = get_string(t, "content", at);
    if (!content) fail(at, "missing content");
    a.content = *content;
    a.single_word = get_bool(t, "single_word", false, at);
    a.lstrip = get_bool(t, "lstrip", false, at);
    a.rstrip = get_bool(t, "rstrip", false, at);
    a.special = get_bool(t, "special", false, at);
    a.normalized = get_bool(t, "normalized", !a.special, at);
    out.push_back(std::move(a));
  }
  return out;
}

// bos_token / eos_token of tokenizer_config.json: a string or an AddedToken object.
std::optional<std::string> special_token_text(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

std::shared_ptr<TokenizerData> parse_tokenizer_json(std::string_view json,
                                                    const std::string& name) {
  auto t = std::make_shared<TokenizerData>();
  t->name = name;
  JsonReader r(json, name);
  Json parts = Json::object();  // the small top-level members
  bool model_seen = false;
  r.object([&](const std::string& key) {
    if (key == "model") {
      model_seen = true;
      parse_bpe(r, t->model, name + ".model");
    } else if (key == "normalizer" || key == "pre_tokenizer" || key == "post_processor" ||
               key == "decoder" || key == "added_tokens") {
      parts[key] = parse_text(r.skip_value(), name + "." + key);
    } else {
      r.skip_value();  // version, truncation, padding: not used for inference
    }
  });
  if (r.peek() != '\0') r.fail("unexpected text after the JSON object");
  if (!model_seen) fail(name, "missing \"model\"");
  try {
    if (auto n = parts.find("normalizer"); n != parts.end() && !n->is_null()) {
      t->normalizer = parse_normalizer(*n, name + ".normalizer");
    }
    if (auto p = parts.find("pre_tokenizer"); p != parts.end() && !p->is_null()) {
      t->pre_tokenizer = parse_pre_tokenizer(*p, name + ".pre_tokenizer");
    }
    if (auto p = parts.find("post_processor"); p != parts.end() && !p->is_null()) {
      t->post_processor = parse_post_processor(*p, name + ".post_processor");
    }
    if (auto d = parts.find("decoder"); d != parts.end() && !d->is_null()) {
      t->decoder = parse_decoder(*d, name + ".decoder");
    }
    const Json added = parts.contains("added_tokens") ? parts["added_tokens"] : Json();
    t->added.build(parse_added_tokens(added, name + ".added_tokens"),
                   t->normalizer ? &*t->normalizer : nullptr);
  } catch (const Json::exception& e) {
    fail(name, std::string("unexpected structure (") + e.what() + ")");
  }
  t->finish();
  return t;
}

void apply_tokenizer_config(TokenizerData& t, std::string_view json, const std::string& name) {
  const Json j = parse_text(json, name);
  if (!j.is_object()) fail(name, "expected a JSON object");
  t.bos_token = special_token_text(j, "bos_token");
  t.eos_token = special_token_text(j, "eos_token");
  t.add_bos_token = get_bool(j, "add_bos_token", false, name);
  if (auto it = j.find("chat_template"); it != j.end()) {
    if (it->is_string()) {
      t.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // Named templates: take "default", else the first.
      for (const Json& e : *it) {
        if (e.is_object() && e.value("name", "") == "default") {
          t.chat_template = e.value("template", "");
        }
      }
      if (t.chat_template.empty() && !it->empty() && (*it)[0].is_object()) {
        t.chat_template = (*it)[0].value("template", "");
      }
    }
  }
  t.finish();
}

void apply_generation_config(TokenizerData& t, std::string_view json, const std::string& name) {
  const Json j = parse_text(json, name);
  auto it = j.find("eos_token_id");
  if (it == j.end() || it->is_null()) return;
  if (it->is_array()) {
    for (const Json& v : *it) t.stop_ids.push_back(as_id(v, name + ".eos_token_id"));
  } else {
    t.stop_ids.push_back(as_id(*it, name + ".eos_token_id"));
  }
  t.finish();
}

std::shared_ptr<TokenizerData> parse_vocab_merges(std::string_view vocab_json,
                                                  std::string_view merges_txt,
                                                  const std::string& name) {
  auto t = std::make_shared<TokenizerData>();
  t->name = name;
  BpeModel& bpe = t->model;
  const std::string vocab_where = name + "/vocab.json";
  JsonReader r(vocab_json, vocab_where);
  r.object([&](const std::string& token) {
    const std::int64_t id = r.read_int();
    if (id < 0 || id > INT32_MAX) r.fail("token id " + std::to_string(id) + " is out of range");
    bpe.add_token(token, static_cast<std::int32_t>(id), vocab_where);
  });
  std::size_t line_no = 0, pos = 0, n_merges = 0;
  while (pos < merges_txt.size()) {
    std::size_t end = merges_txt.find('\n', pos);
    if (end == std::string_view::npos) end = merges_txt.size();
    std::string_view line = merges_txt.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || line.starts_with("#version")) continue;
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos) {
      fail(name + "/merges.txt:" + std::to_string(line_no), "expected \"left right\"");
    }
    bpe.add_merge(line.substr(0, sp), line.substr(sp + 1), name + "/merges.txt", n_merges++);
  }
  bpe.index_byte_tokens();
  // What GPT2TokenizerFast builds from these files: byte-level pre-tokenizer without a prefix
  // space, byte-level decoder, and <|endoftext|> as the special token.
  PreTokenizer bytes = make<PreTokenizer>(PreTokenizer::Kind::ByteLevel);
  bytes.add_prefix_space = false;
  t->pre_tokenizer = std::move(bytes);
  t->post_processor = make<PostProcessor>(PostProcessor::Kind::ByteLevel);
  t->decoder = make<Decoder>(Decoder::Kind::ByteLevel);
  std::vector<AddedToken> added;
  if (auto eot = bpe.token_to_id("<|endoftext|>")) {
    AddedToken a;
    a.id = *eot;
    a.content = "<|endoftext|>";
    a.normalized = false;
    a.special = true;
    added.push_back(std::move(a));
    t->bos_token = t->eos_token = "<|endoftext|>";
  }
  t->added.build(std::move(added), nullptr);
  t->finish();
  return t;
}

}  // namespace mlxn::engine::tok
