// StopMatcher: finds stop strings in text that arrives piece by piece (one token's text at a
// time), holding back text that might still turn out to be the start of a stop string, so a
// stop string is never emitted -- not even in part -- while everything else eventually is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mlxn::engine {

class StopMatcher {
 public:
  /// `stops`: the stop strings (none empty; SamplingParams validation rejects empty ones).
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  /// Appends `piece` and returns the text now safe to emit. When a stop string completes,
  /// `stopped` is set and the returned text is what precedes its first occurrence; the stop
  /// string and anything after it are dropped. `stopped` is left alone otherwise.
  std::string push(std::string_view piece, bool& stopped);

  /// Releases the held-back text (for when the text ends without completing a stop string).
  std::string flush();

  /// Bytes currently held back.
  std::size_t held() const { return held_.size(); }

 private:
  // Length of the longest proper prefix of a stop string that the held text ends with.
  std::size_t held_tail() const;

  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace mlxn::engine
