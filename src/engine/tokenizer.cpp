// Tokenizer: loading (directory, GGUF, JSON text) and the encode/decode pipelines that run the
// stages of tokenizer_data.h in the reference's order.
#include "mlxn/engine/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_unicode.h"
#include "mlxn/core/error.h"
#include "mlxn/io/gguf_file.h"

namespace mlxn::engine {

namespace fs = std::filesystem;
using tok::Piece;
using tok::TokenizerData;

namespace {

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::Io, path.string() + ": read failed");
  return ss.str();
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

namespace tok {

void TokenizerData::finish() {
  std::int32_t n = static_cast<std::int32_t>(model.tokens.size());
  for (const AddedToken& a : added.tokens()) n = std::max(n, a.id + 1);
  vocab_size = n;
  auto lookup = [&](const std::string& s) -> std::optional<std::int32_t> {
    if (const AddedToken* a = added.find_content(s)) return a->id;
    return model.token_to_id(s);
  };
  if (bos_token) {
    if (auto id = lookup(*bos_token)) bos_id = id;
  }
  if (eos_token) {
    if (auto id = lookup(*eos_token)) eos_id = id;
  }
  if (eos_id) stop_ids.push_back(*eos_id);
  std::sort(stop_ids.begin(), stop_ids.end());
  stop_ids.erase(std::unique(stop_ids.begin(), stop_ids.end()), stop_ids.end());
}

}  // namespace tok

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json,
                               std::string_view tokenizer_config_json, const std::string& name) {
  std::shared_ptr<TokenizerData> t = tok::parse_tokenizer_json(tokenizer_json, name);
  if (!tokenizer_config_json.empty()) {
    tok::apply_tokenizer_config(*t, tokenizer_config_json, name + " (tokenizer_config.json)");
  }
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_directory(const fs::path& dir) {
  std::shared_ptr<TokenizerData> t;
  if (is_file(dir / "tokenizer.json")) {
    const fs::path p = dir / "tokenizer.json";
    t = tok::parse_tokenizer_json(read_text_file(p), p.string());
  } else if (is_file(dir / "vocab.json") && is_file(dir / "merges.txt")) {
    t = tok::parse_vocab_merges(read_text_file(dir / "vocab.json"),
                                read_text_file(dir / "merges.txt"), dir.string());
  } else {
    throw Error(ErrorKind::Io, dir.string() +
                                   ": no tokenizer.json (nor vocab.json + merges.txt) in this "
                                   "directory");
  }
  if (const fs::path p = dir / "tokenizer_config.json"; is_file(p)) {
    tok::apply_tokenizer_config(*t, read_text_file(p), p.string());
  }
  if (const fs::path p = dir / "chat_template.jinja"; is_file(p)) {
    t->chat_template = read_text_file(p);  // transformers >= 4.43 keeps the template here
  }
  if (const fs::path p = dir / "generation_config.json"; is_file(p)) {
    tok::apply_generation_config(*t, read_text_file(p), p.string());
  }
  t->name = dir.string();
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_gguf(const io::GgufFile& file) {
  return Tokenizer(tok::load_gguf_tokenizer(file));
}

Tokenizer Tokenizer::from_path(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (!is_file(path / "tokenizer.json") && !is_file(path / "vocab.json")) {
      // A directory holding one .gguf file stands for that file (as ModelDir::open has it).
      std::vector<fs::path> ggufs;
      for (const auto& e : fs::directory_iterator(path, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".gguf") ggufs.push_back(e.path());
      }
      if (ggufs.size() == 1) return from_gguf(io::GgufFile::open(ggufs[0]));
    }
    return from_directory(path);
  }
  if (!fs::exists(path, ec))
    throw Error(ErrorKind::Io, path.string() + ": no such file or directory");
  if (path.extension() == ".gguf") return from_gguf(io::GgufFile::open(path));
  if (path.filename() == "tokenizer.json") return from_directory(path.parent_path());
  throw Error(ErrorKind::InvalidArgument,
              path.string() + ": expected a directory with tokenizer.json or a .gguf file");
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const TokenizerData& t = *data_;
  if (const std::size_t bad = tok::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error(
        ErrorKind::InvalidArgument,
        t.name + ": encode: the text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  }
  std::vector<Piece> pieces;
  if (!text.empty()) pieces.push_back({std::string(text), -1, true});
  // 1. Tokens that match the raw text; 2. normalization of what is between them; 3. tokens that
  // match the normalized text. (So a normalizer such as Prepend runs once per stretch of text
  // between special tokens, as in the reference.)
  t.added.split(pieces, /*normalized_set=*/false);
  if (t.normalizer) {
    for (Piece& p : pieces) {
      if (p.id < 0) tok::normalize(*t.normalizer, p.text);
    }
    std::erase_if(pieces, [](const Piece& p) { return p.id < 0 && p.text.empty(); });
  }
  t.added.split(pieces, /*normalized_set=*/true);
  if (t.pre_tokenizer) tok::pre_tokenize(*t.pre_tokenizer, pieces);
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const Piece& p : pieces) {
    if (p.id >= 0) {
      ids.push_back(p.id);
    } else {
      t.model.tokenize(p.text, ids);
    }
  }
  if (add_special_tokens && t.post_processor) tok::post_process(*t.post_processor, ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
  const TokenizerData& t = *data_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (std::int32_t id : ids) {
    const std::string* s = nullptr;
    if (const tok::AddedToken* a = t.added.find_id(id)) {
      s = &a->content;
    } else {
      s = t.model.id_to_token(id);
    }
    if (s == nullptr) continue;  // not in the vocabulary: skipped, as the reference does
    if (skip_special_tokens) {
      const tok::AddedToken* a = t.added.find_content(*s);
      if (a != nullptr && a->special) continue;
    }
    tokens.push_back(*s);
  }
  std::string out;
  if (t.decoder) {
    tok::decode_chain(*t.decoder, tokens);
    for (const std::string& s : tokens) out += s;
  } else {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
  }
  // GGUF vocabularies may hold arbitrary bytes; the result is always valid UTF-8.
  if (tok::find_invalid_utf8(out) != std::string::npos) out = tok::utf8_lossy(out);
  return out;
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const tok::AddedToken* a = data_->added.find_content(token)) return a->id;
  return data_->model.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(std::int32_t id) const {
  if (const tok::AddedToken* a = data_->added.find_id(id)) return a->content;
  if (const std::string* s = data_->model.id_to_token(id)) return *s;
  return std::nullopt;
}

std::int32_t Tokenizer::vocab_size() const {
  return data_->vocab_size;
}

bool Tokenizer::is_special(std::int32_t id) const {
  const tok::AddedToken* a = data_->added.find_id(id);
  return a != nullptr && a->special;
}

std::optional<std::int32_t> Tokenizer::bos_id() const {
  return data_->bos_id;
}
std::optional<std::int32_t> Tokenizer::eos_id() const {
  return data_->eos_id;
}
std::optional<std::string> Tokenizer::bos_token() const {
  if (data_->bos_token) return data_->bos_token;
  return data_->bos_id ? id_to_token(*data_->bos_id) : std::nullopt;
}
std::optional<std::string> Tokenizer::eos_token() const {
  if (data_->eos_token) return data_->eos_token;
  return data_->eos_id ? id_to_token(*data_->eos_id) : std::nullopt;
}
const std::vector<std::int32_t>& Tokenizer::stop_ids() const {
  return data_->stop_ids;
}
bool Tokenizer::add_bos_token() const {
  return data_->add_bos_token;
}
const std::string& Tokenizer::chat_template() const {
  return data_->chat_template;
}
const std::string& Tokenizer::name() const {
  return data_->name;
}

}  // namespace mlxn::engine
