// Normalizers of tokenizer.json: Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip
// and StripAccents, applied to one piece of text at a time as the reference does.
#include <string>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_unicode.h"

namespace mlxn::engine::tok {

std::vector<Span> Pattern::find_all(std::string_view text) const {
  if (regex) return regex->find_all(text);
  std::vector<Span> out;
  if (literal.empty()) return out;
  std::size_t pos = 0;
  while ((pos = text.find(literal, pos)) != std::string_view::npos) {
    out.push_back({pos, pos + literal.size()});
    pos += literal.size();
  }
  return out;
}

namespace {

void replace_all(const Pattern& pattern, const std::string& with, std::string& text) {
  const std::vector<Span> matches = pattern.find_all(text);
  if (matches.empty()) return;
  std::string out;
  out.reserve(text.size());
  std::size_t last = 0;
  for (const Span& m : matches) {
    out.append(text, last, m.start - last);
    out += with;
    last = m.end;
  }
  out.append(text, last, std::string::npos);
  text = std::move(out);
}

void strip(std::string& text, bool left, bool right) {
  std::size_t begin = 0, end = text.size();
  if (left) {
    std::size_t i = 0;
    while (i < text.size()) {
      std::size_t next = i;
      if (!is_whitespace(next_code_point(text, next))) break;
      i = next;
    }
    begin = i;
  }
  if (right) {
    // Walk forward remembering where the trailing whitespace run starts.
    std::size_t i = begin, run = text.size();
    bool in_run = false;
    while (i < text.size()) {
      const std::size_t at = i;
      const bool ws = is_whitespace(next_code_point(text, i));
      if (ws && !in_run) run = at;
      in_run = ws;
    }
    end = in_run ? run : text.size();
  }
  text = text.substr(begin, end - begin);
}

void strip_marks(std::string& text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t at = i;
    if (!is_mark(next_code_point(text, i))) out.append(text, at, i - at);
  }
  text = std::move(out);
}

}  // namespace

void normalize(const Normalizer& n, std::string& text) {
  using K = Normalizer::Kind;
  switch (n.kind) {
    case K::Sequence:
      for (const Normalizer& c : n.children) normalize(c, text);
      return;
    case K::Prepend:
      if (!text.empty()) text = n.content + text;
      return;
    case K::Replace:
      replace_all(n.pattern, n.content, text);
      return;
    case K::Nfc:
      text = normalize_form(text, NormalForm::Nfc);
      return;
    case K::Nfd:
      text = normalize_form(text, NormalForm::Nfd);
      return;
    case K::Nfkc:
      text = normalize_form(text, NormalForm::Nfkc);
      return;
    case K::Nfkd:
      text = normalize_form(text, NormalForm::Nfkd);
      return;
    case K::Lowercase:
      text = to_lowercase(text);
      return;
    case K::Strip:
      strip(text, n.strip_left, n.strip_right);
      return;
    case K::StripAccents:
      strip_marks(text);
      return;
  }
}

}  // namespace mlxn::engine::tok
