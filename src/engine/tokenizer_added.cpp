// Added tokens: special and user-added tokens are cut out of the text before the model runs,
// leftmost-longest, with the single_word / lstrip / rstrip rules of the reference. Tokens with
// normalized=false match the raw text; the others match the normalized text.
#include <algorithm>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_unicode.h"

namespace mlxn::engine::tok {

namespace {

// The last / first character of a string (valid UTF-8).
char32_t last_char(std::string_view s) {
  std::size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return next_code_point(s, i);
}

char32_t first_char(std::string_view s) {
  std::size_t i = 0;
  return next_code_point(s, i);
}

// Start of the whitespace run that ends `s` (s.size() when none).
std::size_t trailing_space_start(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t i = end;
    while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
    if (i > 0) --i;
    std::size_t j = i;
    if (!is_whitespace(next_code_point(s, j))) break;
    end = i;
  }
  return end;
}

// Length of the whitespace run that starts `s`.
std::size_t leading_space_len(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t j = i;
    if (!is_whitespace(next_code_point(s, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

void AddedVocab::Trie::insert(std::string_view key, std::int32_t token) {
  std::int32_t n = 0;
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    auto& next = nodes[n].next;
    auto it = std::lower_bound(next.begin(), next.end(), c,
                               [](const auto& e, unsigned char v) { return e.first < v; });
    if (it != next.end() && it->first == c) {
      n = it->second;
      continue;
    }
    const auto child = static_cast<std::int32_t>(nodes.size());
    next.insert(it, {c, child});
    nodes.emplace_back();  // invalidates `next`, which is not used again
    n = child;
  }
  if (nodes[n].token < 0) nodes[n].token = token;  // the first token with this text wins
}

std::pair<std::int32_t, std::size_t> AddedVocab::Trie::longest_at(std::string_view text,
                                                                  std::size_t pos) const {
  std::pair<std::int32_t, std::size_t> best{-1, 0};
  std::int32_t n = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const auto& next = nodes[n].next;
    auto it = std::lower_bound(next.begin(), next.end(), c,
                               [](const auto& e, unsigned char v) { return e.first < v; });
    if (it == next.end() || it->first != c) break;
    n = it->second;
    if (nodes[n].token >= 0) best = {nodes[n].token, i + 1 - pos};
  }
  return best;
}

void AddedVocab::build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  by_id_.clear();
  by_content_.clear();
  raw_ = Trie{};
  normalized_ = Trie{};
  has_raw_ = has_normalized_ = false;
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    by_id_[tokens_[i].id] = i;  // a repeated id keeps its last definition
    by_content_.emplace(tokens_[i].content, i);
  }
  // Special tokens first, then the others, each in file order (the reference's trie order).
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const AddedToken& t = tokens_[i];
      if (t.content.empty() || t.special != (pass == 0)) continue;
      if (!t.normalized) {
        raw_.insert(t.content, static_cast<std::int32_t>(i));
        has_raw_ = true;
        continue;
      }
      std::string key = t.content;
      if (normalizer != nullptr) normalize(*normalizer, key);
      if (key.empty()) continue;
      normalized_.insert(key, static_cast<std::int32_t>(i));
      has_normalized_ = true;
    }
  }
}

void AddedVocab::split(std::vector<Piece>& pieces, bool normalized_set) const {
  const Trie& trie = normalized_set ? normalized_ : raw_;
  if (!(normalized_set ? has_normalized_ : has_raw_)) return;
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (Piece& p : pieces) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    const std::string_view text = p.text;
    auto emit_text = [&](std::size_t a, std::size_t b) {
      if (b > a) out.push_back({std::string(text.substr(a, b - a)), -1, p.at_origin && a == 0});
    };
    std::size_t start_offset = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto [index, len] = trie.longest_at(text, pos);
      if (index < 0) {
        ++pos;
        continue;
      }
      std::size_t start = pos;
      std::size_t stop = pos + len;
      pos = stop;  // the search goes on after the match, whatever is done with it
      const AddedToken& t = tokens_[index];
      if (t.single_word) {
        const bool start_ok = start == 0 || !is_word_char(last_char(text.substr(0, start)));
        const bool stop_ok = stop == text.size() || !is_word_char(first_char(text.substr(stop)));
        if (!start_ok || !stop_ok) continue;
      }
      if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
      if (t.rstrip) stop += leading_space_len(text.substr(stop));
      emit_text(start_offset, start);
      if (stop > start) {
        const std::size_t a = std::min(start, text.size()), b = std::min(stop, text.size());
        out.push_back({std::string(text.substr(a, b - a)), t.id, false});
      }
      start_offset = stop;
    }
    emit_text(start_offset, text.size());
  }
  pieces = std::move(out);
}

const AddedToken* AddedVocab::find_id(std::int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocab::find_content(std::string_view content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

}  // namespace mlxn::engine::tok
