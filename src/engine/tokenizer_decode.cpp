// Decoders: turn the token strings of decode() back into text. Each works on the whole list of
// token strings (the reference's decode_chain), so that byte tokens can be fused across token
// boundaries: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, BPE, WordPiece and
// Sequence.
#include "engine/tokenizer_data.h"
#include "engine/tokenizer_unicode.h"

namespace mlxn::engine::tok {

namespace {

void byte_level(std::vector<std::string>& tokens) {
  std::string bytes;
  for (const std::string& t : tokens) {
    // Characters outside the byte-level alphabet (added tokens such as "<|im_start|>" are mostly
    // inside it) make the whole token count as its own UTF-8 bytes.
    std::string mapped;
    bool ok = true;
    std::size_t i = 0;
    while (ok && i < t.size()) {
      const int b = char_to_byte(next_code_point(t, i));
      ok = b >= 0;
      if (ok) mapped += static_cast<char>(b);
    }
    bytes += ok ? mapped : t;
  }
  tokens.assign(1, utf8_lossy(bytes));
}

// "<0xNN>" -> the byte, or -1.
int byte_token(std::string_view t) {
  if (t.size() != 6 || !t.starts_with("<0x") || t[5] != '>') return -1;
  int v = 0;
  for (char c : t.substr(3, 2)) {
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v |= c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v |= c - 'A' + 10;
    } else {
      return -1;
    }
  }
  return v;
}

void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  std::string pending;
  auto flush = [&] {
    if (pending.empty()) return;
    if (find_invalid_utf8(pending) == std::string::npos) {
      out.push_back(pending);
    } else {
      // Not valid UTF-8 as a whole: one U+FFFD per byte, as the reference does.
      for (std::size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
    }
    pending.clear();
  };
  for (std::string& t : tokens) {
    const int b = byte_token(t);
    if (b >= 0) {
      pending += static_cast<char>(b);
      continue;
    }
    flush();
    out.push_back(std::move(t));
  }
  flush();
  tokens = std::move(out);
}

void strip(const Decoder& d, std::vector<std::string>& tokens) {
  for (std::string& t : tokens) {
    // Cut up to strip_start leading and strip_stop trailing occurrences of the character.
    std::size_t begin = 0;
    for (std::size_t n = 0; n < d.strip_start && t.compare(begin, d.content.size(), d.content) == 0;
         ++n) {
      begin += d.content.size();
    }
    std::size_t end = t.size();
    for (std::size_t n = 0; n < d.strip_stop && end >= begin + d.content.size() &&
                            t.compare(end - d.content.size(), d.content.size(), d.content) == 0;
         ++n) {
      end -= d.content.size();
    }
    t = t.substr(begin, end - begin);
  }
}

std::string replace_matches(const Pattern& pattern, const std::string& with, const std::string& t) {
  const std::vector<Span> matches = pattern.find_all(t);
  if (matches.empty()) return t;
  std::string out;
  std::size_t last = 0;
  for (const Span& m : matches) {
    out.append(t, last, m.start - last);
    out += with;
    last = m.end;
  }
  out.append(t, last, std::string::npos);
  return out;
}

std::string replace_all_literal(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t last = 0, pos = 0;
  while (!from.empty() && (pos = s.find(from, last)) != std::string_view::npos) {
    out.append(s.substr(last, pos - last));
    out.append(to);
    last = pos + from.size();
  }
  out.append(s.substr(last));
  return out;
}

void metaspace(const Decoder& d, std::vector<std::string>& tokens) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    // The first token loses its replacement characters (the prefix space) unless no prefix was
    // ever added; every other occurrence becomes a space.
    const bool drop = i == 0 && d.prepend_scheme != PrependScheme::Never;
    tokens[i] = replace_all_literal(tokens[i], d.content, drop ? "" : " ");
  }
}

void word_piece(const Decoder& d, std::vector<std::string>& tokens) {
  static const std::pair<const char*, const char*> kCleanup[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
      {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
      {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string& t = tokens[i];
    if (i != 0) {
      if (t.starts_with(d.content)) {
        t.erase(0, d.content.size());
      } else {
        t = " " + t;  // (insert(0, ...) trips a GCC 12 -Wrestrict false positive)
      }
    }
    if (d.cleanup) {
      for (const auto& [from, to] : kCleanup) t = replace_all_literal(t, from, to);
    }
  }
}

}  // namespace

void decode_chain(const Decoder& d, std::vector<std::string>& tokens) {
  using K = Decoder::Kind;
  switch (d.kind) {
    case K::Sequence:
      for (const Decoder& c : d.children) decode_chain(c, tokens);
      return;
    case K::ByteLevel:
      byte_level(tokens);
      return;
    case K::ByteFallback:
      byte_fallback(tokens);
      return;
    case K::Fuse: {
      std::string all;
      for (const std::string& t : tokens) all += t;
      tokens.assign(1, std::move(all));
      return;
    }
    case K::Strip:
      strip(d, tokens);
      return;
    case K::Replace:
      for (std::string& t : tokens) t = replace_matches(d.pattern, d.content, t);
      return;
    case K::Metaspace:
      metaspace(d, tokens);
      return;
    case K::Bpe:
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = replace_all_literal(tokens[i], d.content, i + 1 == tokens.size() ? "" : " ");
      }
      return;
    case K::WordPiece:
      word_piece(d, tokens);
      return;
  }
}

}  // namespace mlxn::engine::tok
