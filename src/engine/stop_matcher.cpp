// StopMatcher: see stop_matcher.h. It holds back the longest tail of the text that is a prefix of
// some stop string -- no stop string can start before that tail, since the text from such a
// start onwards would then be a longer such prefix -- and releases the rest.
#include "mlxn/engine/stop_matcher.h"

#include <algorithm>

namespace mlxn::engine {

std::string StopMatcher::push(std::string_view piece, bool& stopped) {
  held_.append(piece);
  std::size_t first = std::string::npos;
  for (const std::string& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  const std::size_t keep = held_tail();
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

std::size_t StopMatcher::held_tail() const {
  std::size_t best = 0;
  for (const std::string& s : stops_) {
    if (s.empty()) continue;  // matched at once by push; never a prefix to wait for
    for (std::size_t k = std::min(s.size() - 1, held_.size()); k > best; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        best = k;
        break;
      }
    }
  }
  return best;
}

}  // namespace mlxn::engine
