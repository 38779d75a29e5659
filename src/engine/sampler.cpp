// Sampling settings validation, the counter-based uniform stream and the penalty window.
#include "mlxn/engine/sampler.h"

#include <cmath>
#include <string>

#include "mlxn/core/error.h"

namespace mlxn::engine {
namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorKind::InvalidArgument, "sampling: " + what);
}

// splitmix64's output function: a bijective 64-bit mixer with full avalanche.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

void validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    invalid("temperature must be finite and >= 0, got " + std::to_string(p.temperature));
  }
  if (p.top_k < 0) invalid("top_k must be >= 0, got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    invalid("top_p must be in (0, 1], got " + std::to_string(p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    invalid("min_p must be in [0, 1], got " + std::to_string(p.min_p));
  }
  if (!std::isfinite(p.repetition_penalty) || !(p.repetition_penalty > 0.0f)) {
    invalid("repetition_penalty must be finite and > 0, got " +
            std::to_string(p.repetition_penalty));
  }
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty)) {
    invalid("presence_penalty and frequency_penalty must be finite");
  }
  if (p.max_tokens < -1) invalid("max_tokens must be >= -1, got " + std::to_string(p.max_tokens));
  if (p.penalty_last_n < -1) {
    invalid("penalty_last_n must be >= -1, got " + std::to_string(p.penalty_last_n));
  }
  for (const std::string& s : p.stop_strings) {
    if (s.empty()) invalid("stop strings must not be empty");
  }
}

float sample_uniform(std::uint64_t seed, std::uint64_t step) {
  // The seed is mixed first so that nearby seeds give unrelated streams; the step then walks
  // splitmix64's Weyl sequence from there, which is what makes the generator counter-based.
  const std::uint64_t z = mix64(mix64(seed) + (step + 1) * 0x9e3779b97f4a7c15ull);
  return static_cast<float>(z >> 40) * 0x1.0p-24f;
}

PenaltyWindow::PenaltyWindow(std::int64_t last_n) : last_n_(last_n) {
  if (last_n < -1) invalid("penalty window " + std::to_string(last_n) + " must be >= -1");
}

void PenaltyWindow::clear() {
  ring_.clear();
  ring_next_ = 0;
  pairs_.clear();
  slot_.clear();
}

void PenaltyWindow::add(std::int32_t token, std::int32_t delta) {
  auto it = slot_.find(token);
  if (it == slot_.end()) {
    slot_.emplace(token, pairs_.size() / 2);
    pairs_.push_back(token);
    pairs_.push_back(delta);
    return;
  }
  const std::size_t i = it->second;
  pairs_[2 * i + 1] += delta;
  if (pairs_[2 * i + 1] > 0) return;
  // Count reached 0: move the last pair into this slot so the pairs stay dense.
  const std::size_t last = pairs_.size() / 2 - 1;
  if (i != last) {
    pairs_[2 * i] = pairs_[2 * last];
    pairs_[2 * i + 1] = pairs_[2 * last + 1];
    slot_[pairs_[2 * i]] = i;
  }
  pairs_.resize(2 * last);
  slot_.erase(it);
}

void PenaltyWindow::push(std::int32_t token) {
  if (last_n_ == 0) return;
  if (last_n_ > 0) {
    if (ring_.size() < static_cast<std::size_t>(last_n_)) {
      ring_.push_back(token);
    } else {
      add(ring_[ring_next_], -1);  // the oldest token leaves the window
      ring_[ring_next_] = token;
      ring_next_ = (ring_next_ + 1) % ring_.size();
    }
  }
  add(token, 1);
}

}  // namespace mlxn::engine
