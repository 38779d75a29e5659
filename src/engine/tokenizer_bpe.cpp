// The BPE model: splits one pre-tokenized word into characters (with the continuing-subword
// prefix / end-of-word suffix, byte fallback to <0xNN> tokens, or the unk token), then merges
// adjacent symbols, lowest merge rank first and leftmost among equals, until no merge applies.
// The SentencePiece mode of GGUF "llama" vocabularies merges by token score instead.
#include <algorithm>
#include <cstdio>
#include <queue>

#include "engine/tokenizer_data.h"
#include "engine/tokenizer_unicode.h"
#include "mlxn/core/error.h"

namespace mlxn::engine::tok {

namespace {

// A symbol of the word being merged: a token id (or -1: a character the SentencePiece mode has
// no token for yet) covering word[start, start + len), in a doubly linked list.
struct Symbol {
  std::int32_t id;
  std::uint32_t start;
  std::uint32_t len;
  std::int32_t prev;
  std::int32_t next;
};

// A candidate merge of symbol `left` with its right neighbour. Lower `key` merges first; ties go
// to the leftmost. `len` is the merged length when queued, to recognise stale candidates.
struct Candidate {
  double key;
  std::int32_t left;
  std::int32_t id;
  std::uint32_t len;
};

struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.key != b.key ? a.key > b.key : a.left > b.left;
  }
};

}  // namespace

void BpeModel::add_token(std::string token, std::int32_t id, std::string_view context) {
  if (id < 0) {
    throw Error(ErrorKind::Format, std::string(context) + ": token '" + token +
                                       "' has a negative id " + std::to_string(id));
  }
  const auto uid = static_cast<std::size_t>(id);
  if (uid >= tokens.size()) {
    tokens.resize(uid + 1);
    present.resize(uid + 1, false);
  }
  if (!present[uid]) {
    tokens[uid] = token;
    present[uid] = true;
  }
  // A repeated string keeps its last id (what llama.cpp's and serde's maps do).
  vocab.insert(token, id, tokens);
}

void BpeModel::reserve(std::size_t n) {
  tokens.reserve(n);
  present.reserve(n);
  vocab.reserve(n);
}

void BpeModel::add_merge(std::string_view left, std::string_view right, std::string_view source,
                         std::size_t index) {
  auto id_of = [&](std::string_view t) {
    auto id = token_to_id(t);
    if (!id) {
      throw Error(ErrorKind::Format, std::string(source) + "[" + std::to_string(index) +
                                         "]: merge '" + std::string(left) + " " +
                                         std::string(right) + "' uses '" + std::string(t) +
                                         "', which is not in the vocabulary");
    }
    return *id;
  };
  const std::int32_t a = id_of(left);
  const std::int32_t b = id_of(right);
  std::string merged(left);
  const std::size_t skip = std::min(continuing_subword_prefix.size(), right.size());
  merged.append(right.substr(skip));
  const std::int32_t m = id_of(merged);
  // The rank is the merge's position; a repeated pair keeps its last rank, as the reference's
  // map does.
  const auto rank = static_cast<std::int32_t>(n_merges++);
  merges.insert(a, b, MergeIndex::Merge{rank, m});
}

void BpeModel::index_byte_tokens() {
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    byte_ids[b] = token_to_id(buf).value_or(-1);
  }
}

std::optional<std::int32_t> BpeModel::token_to_id(std::string_view token) const {
  return vocab.find(token, tokens);
}

const std::string* BpeModel::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= tokens.size() || !present[id]) return nullptr;
  return &tokens[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }

  // 1. Characters -> symbols.
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  auto push = [&](std::int32_t id, std::size_t start, std::size_t len) {
    const auto n = static_cast<std::int32_t>(syms.size());
    syms.push_back(
        {id, static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(len), n - 1, n + 1});
  };
  std::optional<Symbol> unk;  // pending unknown run (fused when fuse_unk)
  auto flush_unk = [&] {
    if (unk) push(unk->id, unk->start, unk->len);
    unk.reset();
  };
  std::string buf;
  std::size_t i = 0;
  while (i < word.size()) {
    const std::size_t start = i;
    next_code_point(word, i);
    const std::size_t len = i - start;
    std::string_view piece = word.substr(start, len);
    if (score_merges) {
      auto id = token_to_id(piece);
      push(id ? *id : -1, start, len);
      continue;
    }
    std::string_view s = piece;
    const bool affixed = (start > 0 && !continuing_subword_prefix.empty()) ||
                         (i == word.size() && !end_of_word_suffix.empty());
    if (affixed) {
      buf.clear();
      if (start > 0) buf += continuing_subword_prefix;
      buf += piece;
      if (i == word.size()) buf += end_of_word_suffix;
      s = buf;
    }
    if (auto id = token_to_id(s)) {
      flush_unk();
      push(*id, start, len);
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (char c : s) all = all && byte_ids[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        // As in the reference, a pending unk run is not flushed before byte tokens.
        for (std::size_t k = 0; k < s.size(); ++k) {
          push(byte_ids[static_cast<unsigned char>(s[k])], start + std::min(k, len - 1), 1);
        }
        continue;
      }
    }
    if (unk_id) {
      if (unk && fuse_unk) {
        unk->len += static_cast<std::uint32_t>(len);
      } else {
        flush_unk();
        unk = Symbol{*unk_id, static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(len), 0,
                     0};
      }
    }
    // No unk token: the character is dropped, as the reference does.
  }
  flush_unk();
  if (syms.empty()) return;
  syms.back().next = -1;

  // 2. Merges.
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateAfter> queue;
  auto consider = [&](std::int32_t left) {
    if (left < 0) return;
    const Symbol& a = syms[left];
    if (a.next < 0) return;
    const Symbol& b = syms[a.next];
    if (score_merges) {
      auto id = token_to_id(word.substr(a.start, a.len + b.len));
      if (!id) return;
      const float score = static_cast<std::size_t>(*id) < scores.size() ? scores[*id] : 0.0f;
      queue.push({-static_cast<double>(score), left, *id, a.len + b.len});
      return;
    }
    if (a.id < 0 || b.id < 0) return;
    const MergeIndex::Merge* m = merges.find(a.id, b.id);
    if (m == nullptr) return;
    queue.push({static_cast<double>(m->rank), left, m->id, a.len + b.len});
  };
  for (std::int32_t k = 0; k + 1 < static_cast<std::int32_t>(syms.size()); ++k) consider(k);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& a = syms[c.left];
    if (a.len == 0 || a.next < 0) continue;  // merged away, or nothing to its right any more
    Symbol& b = syms[a.next];
    if (score_merges) {
      if (a.len + b.len != c.len) continue;  // a neighbour changed since it was queued
    } else {
      const MergeIndex::Merge* m = merges.find(a.id, b.id);
      if (m == nullptr || m->id != c.id) continue;
    }
    a.id = c.id;
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (b.next >= 0) syms[b.next].prev = c.left;
    consider(a.prev);
    consider(c.left);
  }

  // 3. Output. In SentencePiece mode a character without a token falls back to bytes.
  for (std::int32_t k = 0; k >= 0; k = syms[k].next) {
    const Symbol& s = syms[k];
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    for (std::size_t j = 0; j < s.len; ++j) {
      const std::int32_t b = byte_ids[static_cast<unsigned char>(word[s.start + j])];
      if (b >= 0) {
        out.push_back(b);
      } else if (unk_id) {
        out.push_back(*unk_id);
      }
    }
  }
}

}  // namespace mlxn::engine::tok
