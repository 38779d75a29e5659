// Pre-tokenizers of tokenizer.json: ByteLevel (optional GPT-2 regex split, then the byte-level
// alphabet), Split (pattern + delimiter behaviour), Metaspace, Digits, Whitespace,
// WhitespaceSplit, Punctuation and Sequence. Each cuts every piece that is not yet a token into
// smaller pieces; empty pieces are dropped, as the reference does.
#include <utility>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_unicode.h"

namespace mlxn::engine::tok {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::shared_ptr<const Regex>& gpt2_regex() {
  static const std::shared_ptr<const Regex> re =
      std::make_shared<const Regex>(kGpt2Pattern, "ByteLevel pre-tokenizer");
  return re;
}

namespace {

// A stretch of a piece and whether the pattern matched it.
struct Mark {
  Span span;
  bool match;
};

// The whole of `text` as alternating unmatched / matched stretches.
std::vector<Mark> cover(std::string_view text, const std::vector<Span>& matches) {
  std::vector<Mark> out;
  std::size_t prev = 0;
  for (const Span& m : matches) {
    if (prev != m.start) out.push_back({{prev, m.start}, false});
    out.push_back({m, true});
    prev = m.end;
  }
  if (prev != text.size()) out.push_back({{prev, text.size()}, false});
  return out;
}

// Every character satisfying `pred` as its own match.
template <class Pred>
std::vector<Span> char_matches(std::string_view text, Pred pred) {
  std::vector<Span> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t at = i;
    if (pred(next_code_point(text, i))) out.push_back({at, i});
  }
  return out;
}

// Applies a delimiter behaviour to the covered stretches (tokenizers' NormalizedString::split).
std::vector<Span> apply_behavior(std::vector<Mark> marks, SplitBehavior behavior, bool invert) {
  if (invert) {
    for (Mark& m : marks) m.match = !m.match;
  }
  std::vector<Span> out;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (const Mark& m : marks) {
        if (!m.match) out.push_back(m.span);
      }
      break;
    case SplitBehavior::Isolated:
      for (const Mark& m : marks) out.push_back(m.span);
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const Mark& m : marks) {
        if (m.match && !previous_match && !out.empty()) {
          out.back().end = m.span.end;
        } else {
          out.push_back(m.span);
        }
        previous_match = m.match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = marks.rbegin(); it != marks.rend(); ++it) {
        if (it->match && !previous_match && !out.empty()) {
          out.back().start = it->span.start;
        } else {
          out.push_back(it->span);
        }
        previous_match = it->match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (std::size_t i = 0; i < marks.size(); ++i) {
        if (i > 0 && marks[i].match == previous_match) {
          out.back().end = marks[i].span.end;
        } else {
          out.push_back(marks[i].span);
        }
        previous_match = marks[i].match;
      }
      break;
    }
  }
  return out;
}

// Replaces each text piece by the pieces `fn(piece)` cuts it into (spans of its text after
// `fn` may have rewritten it). Added-token pieces pass through.
template <class Fn>
void split_each(std::vector<Piece>& pieces, Fn fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (Piece& p : pieces) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    const std::vector<Span> spans = fn(p);
    for (const Span& s : spans) {
      if (s.end == s.start) continue;
      out.push_back({p.text.substr(s.start, s.end - s.start), -1, p.at_origin && s.start == 0});
    }
  }
  pieces = std::move(out);
}

std::vector<Span> whole(const Piece& p) {
  return {{0, p.text.size()}};
}

void byte_level(const PreTokenizer& pt, std::vector<Piece>& pieces) {
  split_each(pieces, [&](Piece& p) {
    if (pt.add_prefix_space && !p.text.starts_with(' ')) p.text = " " + p.text;
    if (!pt.use_regex) return whole(p);
    return apply_behavior(cover(p.text, gpt2_regex()->find_all(p.text)), SplitBehavior::Isolated,
                          false);
  });
  for (Piece& p : pieces) {
    if (p.id < 0) p.text = byte_level_encode(p.text);
  }
}

void metaspace(const PreTokenizer& pt, std::vector<Piece>& pieces) {
  split_each(pieces, [&](Piece& p) {
    std::string replaced;
    replaced.reserve(p.text.size() + pt.replacement.size());
    for (char c : p.text) {
      if (c == ' ') {
        replaced += pt.replacement;
      } else {
        replaced += c;
      }
    }
    p.text = std::move(replaced);
    const bool needs_prefix = !p.text.starts_with(pt.replacement);
    if (needs_prefix && (pt.prepend_scheme == PrependScheme::Always ||
                         (pt.prepend_scheme == PrependScheme::First && p.at_origin))) {
      p.text = pt.replacement + p.text;
    }
    if (!pt.split) return whole(p);
    std::vector<Span> matches;
    std::size_t pos = 0;
    while ((pos = p.text.find(pt.replacement, pos)) != std::string::npos) {
      matches.push_back({pos, pos + pt.replacement.size()});
      pos += pt.replacement.size();
    }
    return apply_behavior(cover(p.text, matches), SplitBehavior::MergedWithNext, false);
  });
}

}  // namespace

void pre_tokenize(const PreTokenizer& pt, std::vector<Piece>& pieces) {
  using K = PreTokenizer::Kind;
  switch (pt.kind) {
    case K::Sequence:
      for (const PreTokenizer& c : pt.children) pre_tokenize(c, pieces);
      return;
    case K::ByteLevel:
      byte_level(pt, pieces);
      return;
    case K::Split:
      split_each(pieces, [&](Piece& p) {
        return apply_behavior(cover(p.text, pt.pattern.find_all(p.text)), pt.behavior, pt.invert);
      });
      return;
    case K::Metaspace:
      metaspace(pt, pieces);
      return;
    case K::Digits:
      split_each(pieces, [&](Piece& p) {
        return apply_behavior(
            cover(p.text, char_matches(p.text, is_numeric)),
            pt.individual_digits ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false);
      });
      return;
    case K::Whitespace: {
      // \w+|[^\w\s]+ kept, everything else (whitespace) dropped.
      static const Regex re(R"(\w+|[^\w\s]+)", "Whitespace pre-tokenizer");
      split_each(pieces, [&](Piece& p) {
        return apply_behavior(cover(p.text, re.find_all(p.text)), SplitBehavior::Removed, true);
      });
      return;
    }
    case K::WhitespaceSplit:
      split_each(pieces, [&](Piece& p) {
        return apply_behavior(cover(p.text, char_matches(p.text, is_whitespace)),
                              SplitBehavior::Removed, false);
      });
      return;
    case K::Punctuation:
      split_each(pieces, [&](Piece& p) {
        return apply_behavior(cover(p.text, char_matches(p.text, is_punctuation)), pt.behavior,
                              false);
      });
      return;
  }
}

}  // namespace mlxn::engine::tok
