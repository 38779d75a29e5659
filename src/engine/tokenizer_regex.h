// Regex: the Unicode regular expressions of tokenizer.json (pre-tokenizer and normalizer
// patterns such as GPT-2's `\p{L}+|\s+(?!\S)`), compiled with PCRE2 in UTF + UCP mode and
// JIT-compiled when the platform allows. The reference evaluates them with Oniguruma; the one
// difference that matters for these patterns (\s also matching U+0085) is patched at compile time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mlxn::engine::tok {

/// A match: the byte range [start, end) of the subject.
struct Span {
  std::size_t start = 0;
  std::size_t end = 0;
};

/// A compiled pattern. Immutable after construction; safe to use from several threads.
class Regex {
 public:
  /// Compiles `pattern`; throws Format naming `context` and the error position when it does
  /// not compile.
  Regex(std::string_view pattern, std::string_view context);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  /// All non-overlapping matches in `text` (valid UTF-8), left to right. An empty match right
  /// where the previous match ended is skipped, as Oniguruma's iterator does.
  std::vector<Span> find_all(std::string_view text) const;
  /// The pattern as given.
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::string context_;
  void* code_ = nullptr;  // pcre2_code_8*
};

/// `pattern` with \s widened to Oniguruma's set (adds U+0085); exposed for tests.
std::string oniguruma_compatible_pattern(std::string_view pattern);

}  // namespace mlxn::engine::tok
