// Flat hash indexes of the BPE model: token string -> id and (left id, right id) -> merge.
// Open addressing over plain arrays, because node-based maps made loading a 262k-token
// vocabulary with 500k merges slow (every lookup of the 1.5M done while resolving merges missed
// the cache several times).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mlxn::engine::tok {

/// String -> id over a token table owned elsewhere (BpeModel::tokens): a slot keeps the
/// string's hash and id, the string itself is compared in the table.
class VocabIndex {
 public:
  /// Room for `n` entries without growing.
  void reserve(std::size_t n);
  /// Maps `s` to `id` (a repeated string takes the new id). tokens[id] is normally `s`; other
  /// strings (two strings sharing an id) are kept aside.
  void insert(std::string_view s, std::int32_t id, const std::vector<std::string>& tokens);
  std::optional<std::int32_t> find(std::string_view s,
                                   const std::vector<std::string>& tokens) const;
  std::size_t size() const { return size_ + aliases_.size(); }

 private:
  static std::uint32_t hash(std::string_view s);
  void grow(std::size_t capacity);

  std::vector<std::uint64_t> slots_;  // hash << 32 | (id + 1); 0 = empty
  std::size_t size_ = 0;
  std::unordered_map<std::string, std::int32_t> aliases_;
};

/// (left id, right id) -> (rank, merged id).
class MergeIndex {
 public:
  struct Merge {
    std::int32_t rank;
    std::int32_t id;
  };
  void reserve(std::size_t n);
  /// Sets the merge of (a, b) (a repeated pair takes the new value).
  void insert(std::int32_t a, std::int32_t b, Merge m);
  const Merge* find(std::int32_t a, std::int32_t b) const;
  std::size_t size() const { return size_; }

 private:
  static std::uint64_t key(std::int32_t a, std::int32_t b);
  static std::uint64_t mix(std::uint64_t k);
  void grow(std::size_t capacity);

  std::vector<std::uint64_t> keys_;  // kEmpty where free
  std::vector<Merge> values_;
  std::size_t size_ = 0;
};

}  // namespace mlxn::engine::tok
