// Sampling settings of a generation request, the seeded uniform stream that drives the
// categorical draws (the same seed gives the same tokens on every backend), and the window of
// recent tokens whose counts feed the repetition/presence/frequency penalties.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace mlxn::engine {

/// How to pick each generated token and when to stop. The warpers run in transformers' order:
/// penalties, temperature, top-k, top-p, min-p, then the draw (see ops::sample).
struct SamplingParams {
  /// 0: greedy (argmax of the penalized logits); > 0 divides the logits before the draw.
  float temperature = 0.0f;
  /// Keep the k most likely tokens; 0 disables.
  int top_k = 0;
  /// Keep the smallest set of most likely tokens whose mass reaches top_p; 1 disables.
  float top_p = 1.0f;
  /// Drop tokens less likely than min_p times the most likely one; 0 disables.
  float min_p = 0.0f;
  /// Divides positive / multiplies negative logits of tokens seen in the window; 1 disables.
  float repetition_penalty = 1.0f;
  /// Subtracted once from the logit of every token seen in the window.
  float presence_penalty = 0.0f;
  /// Subtracted count times from the logit of every token seen in the window.
  float frequency_penalty = 0.0f;
  /// Seeds the uniform stream: the same seed, prompt and settings give the same tokens.
  std::uint64_t seed = 0;
  /// Most tokens to generate; -1: until a stop or a full context; 0: none.
  std::int64_t max_tokens = 256;
  /// Token ids that end generation (EOS); the id is returned but its text is not emitted.
  std::vector<std::int32_t> stop_ids;
  /// Texts that end generation; matched on the decoded text and never emitted.
  std::vector<std::string> stop_strings;
  /// Recent tokens (prompt included) the penalties look at; -1: all; 0: none.
  int penalty_last_n = 64;

  /// True when a penalty would change a logit.
  bool has_penalties() const {
    return penalty_last_n != 0 &&
           (repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f);
  }
};

/// Throws InvalidArgument naming the first setting out of range (temperature >= 0, top_k >= 0,
/// 0 < top_p <= 1, 0 <= min_p <= 1, repetition_penalty > 0, finite penalties, max_tokens >= -1,
/// penalty_last_n >= -1, no empty stop string).
void validate(const SamplingParams& params);

/// The uniform in [0, 1) of draw `step` under `seed`: a counter-based generator (splitmix64's
/// finalizer over seed and step), so each step's value depends on nothing else -- not on the
/// backend, on earlier draws or on how many draws were skipped. 24 bits, exact in f32.
float sample_uniform(std::uint64_t seed, std::uint64_t step);

/// Counts of the tokens among the last `last_n` pushed (all when -1, none when 0), as the
/// (token id, count) pairs ops::apply_penalties takes: ids distinct, counts > 0, in no
/// particular order. push() and pairs() cost O(1) amortized and O(distinct ids).
class PenaltyWindow {
 public:
  explicit PenaltyWindow(std::int64_t last_n = 64);

  void push(std::int32_t token);
  void clear();
  /// Interleaved (id, count) pairs: 2 x the number of distinct ids in the window.
  std::span<const std::int32_t> pairs() const { return pairs_; }

 private:
  void add(std::int32_t token, std::int32_t delta);

  std::int64_t last_n_;
  std::vector<std::int32_t> ring_;  // the window's tokens (last_n > 0 only)
  std::size_t ring_next_ = 0;       // where the next token goes once the ring is full
  std::vector<std::int32_t> pairs_;
  std::unordered_map<std::int32_t, std::size_t> slot_;  // id -> its pair index
};

}  // namespace mlxn::engine
