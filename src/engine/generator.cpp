// Generator: the prefill + decode loop over Model::forward_and_sample, the stop conditions
// (stop strings through StopMatcher), continuing from a cached prefix, and the timing statistics.
#include "mlxn/engine/generator.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "mlxn/core/error.h"
#include "mlxn/engine/stop_matcher.h"

namespace mlxn::engine {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Eos:
      return "eos";
    case StopReason::StopString:
      return "stop_string";
    case StopReason::MaxTokens:
      return "max_tokens";
    case StopReason::ContextFull:
      return "context_full";
    case StopReason::Callback:
      return "callback";
  }
  return "unknown";
}

GenerationResult Generator::generate(std::span<const std::int32_t> prompt,
                                     const SamplingParams& params, const OnToken& on_token,
                                     const Detokenize& detok, const OnText& on_text,
                                     const GenerateOptions& options) {
  const Clock::time_point t_start = Clock::now();
  validate(params);
  if (!params.stop_strings.empty() && !detok) {
    throw Error(ErrorKind::InvalidArgument,
                "generate: stop strings need a detokenizer (they are matched on the text)");
  }
  if (prompt.empty()) throw Error(ErrorKind::InvalidArgument, "generate: empty prompt");
  const auto n_prompt = static_cast<std::int64_t>(prompt.size());
  if (options.cached < 0 || options.cached >= n_prompt ||
      options.cached > model_.cache().length()) {
    throw Error(ErrorKind::InvalidArgument,
                "generate: cached prefix of " + std::to_string(options.cached) +
                    " tokens, but the prompt has " + std::to_string(n_prompt) +
                    " (at least one must be fed) and the cache holds " +
                    std::to_string(model_.cache().length()));
  }

  GenerationResult result;
  result.prompt_tokens = n_prompt - options.cached;
  model_.cache().set_length(options.cached);  // 0: a fresh sequence
  if (params.max_tokens == 0) return result;

  const std::int64_t context = model_.cache().options().context;
  const bool penalize = params.has_penalties();
  PenaltyWindow window(penalize ? params.penalty_last_n : 0);
  if (penalize) {
    // Only the last penalty_last_n prompt tokens can still be in the window.
    const std::size_t skip =
        params.penalty_last_n < 0
            ? 0
            : prompt.size() -
                  std::min(prompt.size(), static_cast<std::size_t>(params.penalty_last_n));
    for (std::size_t i = skip; i < prompt.size(); ++i) window.push(prompt[i]);
  }
  SampleStep step;
  step.temperature = params.temperature;
  step.top_k = params.top_k;
  step.top_p = params.top_p;
  step.min_p = params.min_p;
  step.repetition_penalty = params.repetition_penalty;
  step.presence_penalty = params.presence_penalty;
  step.frequency_penalty = params.frequency_penalty;
  const auto pick = [&](std::span<const std::int32_t> input) {
    step.u = sample_uniform(params.seed, options.first_draw + result.tokens.size());
    step.penalty_counts = window.pairs();
    return model_.forward_and_sample(input, step);
  };
  // Without penalties a step needs nothing from the host but the settings, so decode steps are
  // pipelined (Model::queue_sample): the step after the one being waited for is already
  // submitted. `queued` counts steps submitted and not yet taken; the token index a new step
  // produces is result.tokens.size() + queued, which also picks its draw.
  const bool pipelined = options.pipelined && !penalize;
  std::int64_t queued = 0;
  // `unrecorded`: tokens already picked but not yet in result.tokens (1 right after prefill,
  // whose pick is recorded at the top of the loop), so the first queued step is token 1 and
  // draws uniform 1, as the synchronous path does.
  const auto queue_next = [&](std::int64_t unrecorded) {
    const auto index = static_cast<std::int64_t>(result.tokens.size()) + unrecorded + queued;
    if (params.max_tokens > 0 && index >= params.max_tokens) return;
    if (model_.cache().length() >= context) return;
    step.u = sample_uniform(params.seed, options.first_draw + static_cast<std::uint64_t>(index));
    step.penalty_counts = {};
    model_.queue_sample(step);
    ++queued;
  };
  const auto is_stop_id = [&](std::int32_t t) {
    return std::find(params.stop_ids.begin(), params.stop_ids.end(), t) != params.stop_ids.end();
  };
  StopMatcher matcher(params.stop_strings);
  const auto emit = [&](const std::string& text) {
    if (text.empty()) return;
    result.text += text;
    if (on_text) on_text(text);
  };

  const Clock::time_point t_prefill = Clock::now();
  std::int32_t token = pick(prompt.subspan(static_cast<std::size_t>(options.cached)));
  const Clock::time_point t_first = Clock::now();
  result.prefill_seconds = seconds_between(t_prefill, t_first);
  result.time_to_first_token_seconds = seconds_between(t_start, t_first);
  if (pipelined) queue_next(1);

  bool done = false;
  while (!done) {
    result.tokens.push_back(token);
    if (penalize) window.push(token);
    const bool go_on = on_token ? on_token(token) : true;
    if (is_stop_id(token)) {
      result.stop_reason = StopReason::Eos;
      break;
    }
    if (detok) {
      bool stopped = false;
      emit(matcher.push(detok(token), stopped));
      if (stopped) {
        result.stop_reason = StopReason::StopString;
        break;
      }
    }
    if (!go_on) {
      result.stop_reason = StopReason::Callback;
      done = true;
    } else if (params.max_tokens > 0 &&
               static_cast<std::int64_t>(result.tokens.size()) >= params.max_tokens) {
      result.stop_reason = StopReason::MaxTokens;
      done = true;
    } else if (model_.cache().length() - queued >= context) {
      result.stop_reason = StopReason::ContextFull;
      done = true;
    } else {
      const Clock::time_point t0 = Clock::now();
      if (pipelined && queued > 0) {
        queue_next(0);  // the step after the next, submitted before waiting for the next
        token = model_.take_sample();
        --queued;
      } else {
        token = pick(std::span<const std::int32_t>(&token, 1));
      }
      result.decode_seconds += seconds_between(t0, Clock::now());
    }
  }
  if (queued > 0) model_.drop_queued();  // picked past the end: discarded, cache cut back
  if (result.stop_reason != StopReason::StopString) emit(matcher.flush());

  if (result.prefill_seconds > 0.0) {
    result.prefill_tokens_per_second =
        static_cast<double>(result.prompt_tokens) / result.prefill_seconds;
  }
  const auto steps = static_cast<double>(result.tokens.size() - 1);
  if (steps > 0 && result.decode_seconds > 0.0) {
    result.decode_tokens_per_second = steps / result.decode_seconds;
  }
  return result;
}

}  // namespace mlxn::engine
