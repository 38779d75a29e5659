// VocabIndex and MergeIndex (see tokenizer_index.h): linear probing, load factor at most 1/2.
#include "engine/tokenizer_index.h"

#include <bit>
#include <functional>

namespace mlxn::engine::tok {

namespace {

constexpr std::uint64_t kEmpty = ~std::uint64_t{0};

std::size_t capacity_for(std::size_t n) {
  return std::bit_ceil(std::max<std::size_t>(16, n * 2));
}

}  // namespace

std::uint32_t VocabIndex::hash(std::string_view s) {
  const std::size_t h = std::hash<std::string_view>{}(s);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

void VocabIndex::reserve(std::size_t n) {
  if (capacity_for(n) > slots_.size()) grow(capacity_for(n));
}

void VocabIndex::grow(std::size_t capacity) {
  std::vector<std::uint64_t> old = std::move(slots_);
  slots_.assign(capacity, 0);
  const std::size_t mask = capacity - 1;
  for (std::uint64_t s : old) {
    if (s == 0) continue;
    std::size_t i = (s >> 32) & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void VocabIndex::insert(std::string_view s, std::int32_t id,
                        const std::vector<std::string>& tokens) {
  if (static_cast<std::size_t>(id) >= tokens.size() || tokens[id] != s) {
    aliases_[std::string(s)] = id;
    return;
  }
  if ((size_ + 1) * 2 > slots_.size()) grow(capacity_for(size_ + 1));
  const std::uint32_t h = hash(s);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = h & mask;
  while (slots_[i] != 0) {
    const std::uint64_t slot = slots_[i];
    const auto other = static_cast<std::int32_t>((slot & 0xFFFFFFFFu) - 1);
    if ((slot >> 32) == h && tokens[other] == s) {
      slots_[i] = (std::uint64_t{h} << 32) | static_cast<std::uint32_t>(id + 1);
      return;
    }
    i = (i + 1) & mask;
  }
  slots_[i] = (std::uint64_t{h} << 32) | static_cast<std::uint32_t>(id + 1);
  ++size_;
  if (!aliases_.empty()) aliases_.erase(std::string(s));
}

std::optional<std::int32_t> VocabIndex::find(std::string_view s,
                                             const std::vector<std::string>& tokens) const {
  if (!aliases_.empty()) {
    auto it = aliases_.find(std::string(s));
    if (it != aliases_.end()) return it->second;
  }
  if (slots_.empty()) return std::nullopt;
  const std::uint32_t h = hash(s);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask; slots_[i] != 0; i = (i + 1) & mask) {
    const std::uint64_t slot = slots_[i];
    if ((slot >> 32) != h) continue;
    const auto id = static_cast<std::int32_t>((slot & 0xFFFFFFFFu) - 1);
    if (tokens[id] == s) return id;
  }
  return std::nullopt;
}

std::uint64_t MergeIndex::key(std::int32_t a, std::int32_t b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
         static_cast<std::uint32_t>(b);
}

std::uint64_t MergeIndex::mix(std::uint64_t k) {
  // splitmix64's finalizer: ids are small and dense, so spread them over the table.
  k ^= k >> 30;
  k *= 0xBF58476D1CE4E5B9ull;
  k ^= k >> 27;
  k *= 0x94D049BB133111EBull;
  return k ^ (k >> 31);
}

void MergeIndex::reserve(std::size_t n) {
  if (capacity_for(n) > keys_.size()) grow(capacity_for(n));
}

void MergeIndex::grow(std::size_t capacity) {
  std::vector<std::uint64_t> old_keys = std::move(keys_);
  std::vector<Merge> old_values = std::move(values_);
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, Merge{0, 0});
  const std::size_t mask = capacity - 1;
  for (std::size_t j = 0; j < old_keys.size(); ++j) {
    if (old_keys[j] == kEmpty) continue;
    std::size_t i = mix(old_keys[j]) & mask;
    while (keys_[i] != kEmpty) i = (i + 1) & mask;
    keys_[i] = old_keys[j];
    values_[i] = old_values[j];
  }
}

void MergeIndex::insert(std::int32_t a, std::int32_t b, Merge m) {
  if ((size_ + 1) * 2 > keys_.size()) grow(capacity_for(size_ + 1));
  const std::uint64_t k = key(a, b);
  const std::size_t mask = keys_.size() - 1;
  std::size_t i = mix(k) & mask;
  while (keys_[i] != kEmpty && keys_[i] != k) i = (i + 1) & mask;
  if (keys_[i] == kEmpty) {
    keys_[i] = k;
    ++size_;
  }
  values_[i] = m;
}

const MergeIndex::Merge* MergeIndex::find(std::int32_t a, std::int32_t b) const {
  if (keys_.empty()) return nullptr;
  const std::uint64_t k = key(a, b);
  const std::size_t mask = keys_.size() - 1;
  for (std::size_t i = mix(k) & mask; keys_[i] != kEmpty; i = (i + 1) & mask) {
    if (keys_[i] == k) return &values_[i];
  }
  return nullptr;
}

}  // namespace mlxn::engine::tok
