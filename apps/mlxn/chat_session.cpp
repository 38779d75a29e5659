// Multi-turn chat with KV-cache reuse: see chat_session.h.
#include "apps/mlxn/chat_session.h"

#include <algorithm>
#include <chrono>
#include <span>

#include "mlxn/core/error.h"

namespace mlxn::cli {

namespace {

// Stop strings on streamed text: holds back the longest tail that could still begin a stop
// string, releases the rest, and reports a completed stop string (which is never released).
class StopMatcher {
 public:
  explicit StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {}

  std::string push(std::string_view piece, bool& stopped) {
    held_.append(piece);
    std::size_t first = std::string::npos;
    for (const std::string& s : stops_) first = std::min(first, held_.find(s));
    if (first != std::string::npos) {
      stopped = true;
      std::string out = held_.substr(0, first);
      held_.clear();
      return out;
    }
    std::size_t keep = 0;
    for (const std::string& s : stops_) {
      for (std::size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k) {
        if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
      }
    }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }

  std::string flush() {
    std::string out;
    out.swap(held_);
    return out;
  }

 private:
  const std::vector<std::string>& stops_;
  std::string held_;
};

}  // namespace

ChatSession::ChatSession(engine::Model& model, const engine::Tokenizer& tokenizer,
                         ChatFormat format, engine::SamplingParams params, std::string system,
                         bool reuse_cache)
    : model_(model),
      tokenizer_(tokenizer),
      format_(std::move(format)),
      params_(std::move(params)),
      reuse_cache_(reuse_cache) {
  for (const std::int32_t id : format_.stop_ids()) {
    if (std::find(params_.stop_ids.begin(), params_.stop_ids.end(), id) == params_.stop_ids.end()) {
      params_.stop_ids.push_back(id);
    }
  }
  for (const std::string& s : format_.stop_strings()) params_.stop_strings.push_back(s);
  engine::validate(params_);
  if (!system.empty()) {
    messages_.push_back({"system", std::move(system)});
    n_fixed_ = 1;
  }
  model_.reset();
}

void ChatSession::reset() {
  messages_.resize(n_fixed_);
  cached_.clear();
  draws_ = 0;
  model_.reset();
}

std::vector<std::int32_t> ChatSession::fit_prompt(std::int64_t& dropped) {
  const auto context = static_cast<std::size_t>(model_.cache().options().context);
  while (true) {
    std::vector<std::int32_t> prompt = format_.tokenize(messages_, true);
    if (prompt.empty()) {
      throw Error(ErrorKind::InvalidArgument, "chat: the chat template rendered no tokens");
    }
    if (prompt.size() < context) return prompt;  // room for at least one generated token
    if (messages_.size() - n_fixed_ <= 1) {
      throw Error(ErrorKind::InvalidArgument,
                  "chat: the message takes " + std::to_string(prompt.size()) +
                      " tokens with the chat template, but the context holds " +
                      std::to_string(context) + " (shorten it, or load with a larger --context)");
    }
    // Drop the oldest exchange: its user message and the assistant reply after it, so the
    // conversation still starts with a user turn (some templates insist on alternation).
    messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(n_fixed_));
    ++dropped;
    if (messages_.size() - n_fixed_ > 1 && messages_[n_fixed_].role == "assistant") {
      messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(n_fixed_));
      ++dropped;
    }
  }
}

std::int64_t ChatSession::reusable_prefix(const std::vector<std::int32_t>& prompt) const {
  if (!reuse_cache_) return 0;
  const auto mismatch = std::mismatch(cached_.begin(), cached_.end(), prompt.begin(), prompt.end());
  auto keep = static_cast<std::int64_t>(mismatch.first - cached_.begin());
  // At least one token must be fed: the next token is picked from the last fed position.
  keep = std::min(keep, static_cast<std::int64_t>(prompt.size()) - 1);
  // Rewinding a sliding-window ring is only safe while the positions the new tokens attend to
  // (back to keep - window) have not been overwritten by the positions being discarded.
  const auto rewind = static_cast<std::int64_t>(cached_.size()) - keep;
  const auto& window = model_.config().sliding_window;
  const engine::KvCache& cache = model_.cache();
  for (std::int64_t i = 0; i < cache.n_layers() && rewind > 0 && window; ++i) {
    const engine::LayerCache& l = cache.layer(i);
    if (l.ring && l.capacity < cache.options().context && rewind > l.capacity - *window) return 0;
  }
  return keep;
}

ChatTurn ChatSession::reply(const std::string& user,
                            const std::function<void(std::string_view)>& on_text) {
  if (params_.max_tokens == 0) {
    throw Error(ErrorKind::InvalidArgument, "chat: max_tokens is 0, so there is no reply");
  }
  const std::vector<ChatMessage> saved = messages_;
  messages_.push_back({"user", user});
  ChatTurn turn;
  std::vector<std::int32_t> prompt;
  try {
    prompt = fit_prompt(turn.dropped_messages);
  } catch (...) {
    messages_ = saved;
    throw;
  }
  const std::int64_t keep = reusable_prefix(prompt);
  turn.prompt_tokens = static_cast<std::int64_t>(prompt.size());
  turn.reused_tokens = keep;

  try {
    model_.cache().set_length(keep);
    cached_.resize(static_cast<std::size_t>(keep));
    const std::int64_t context = model_.cache().options().context;

    const bool penalize = params_.has_penalties();
    engine::PenaltyWindow window(penalize ? params_.penalty_last_n : 0);
    if (penalize) {
      const std::size_t n =
          params_.penalty_last_n < 0
              ? prompt.size()
              : std::min(prompt.size(), static_cast<std::size_t>(params_.penalty_last_n));
      for (std::size_t i = prompt.size() - n; i < prompt.size(); ++i) window.push(prompt[i]);
    }
    engine::SampleStep step;
    step.temperature = params_.temperature;
    step.top_k = params_.top_k;
    step.top_p = params_.top_p;
    step.min_p = params_.min_p;
    step.repetition_penalty = params_.repetition_penalty;
    step.presence_penalty = params_.presence_penalty;
    step.frequency_penalty = params_.frequency_penalty;
    auto pick = [&](std::span<const std::int32_t> input) {
      step.u = engine::sample_uniform(params_.seed, draws_++);
      step.penalty_counts = window.pairs();
      const std::int32_t t = model_.forward_and_sample(input, step);
      cached_.insert(cached_.end(), input.begin(), input.end());
      return t;
    };

    engine::TokenStreamDecoder decoder(tokenizer_, /*skip_special_tokens=*/true);
    StopMatcher matcher(params_.stop_strings);
    auto emit = [&](const std::string& text) {
      if (text.empty()) return;
      turn.text += text;
      if (on_text) on_text(text);
    };

    using Clock = std::chrono::steady_clock;
    const auto seconds_since = [](Clock::time_point t) {
      return std::chrono::duration<double>(Clock::now() - t).count();
    };
    const Clock::time_point t_prefill = Clock::now();
    std::int32_t token =
        pick(std::span<const std::int32_t>(prompt).subspan(static_cast<std::size_t>(keep)));
    turn.prefill_seconds = seconds_since(t_prefill);
    while (true) {
      ++turn.generated_tokens;
      if (penalize) window.push(token);
      if (std::find(params_.stop_ids.begin(), params_.stop_ids.end(), token) !=
          params_.stop_ids.end()) {
        turn.stop_reason = engine::StopReason::Eos;
        break;
      }
      bool stopped = false;
      emit(matcher.push(decoder.push(token), stopped));
      if (stopped) {
        turn.stop_reason = engine::StopReason::StopString;
        break;
      }
      if (params_.max_tokens >= 0 && turn.generated_tokens >= params_.max_tokens) {
        turn.stop_reason = engine::StopReason::MaxTokens;
        break;
      }
      if (model_.cache().length() >= context) {
        turn.stop_reason = engine::StopReason::ContextFull;
        break;
      }
      const Clock::time_point t_step = Clock::now();
      token = pick(std::span<const std::int32_t>(&token, 1));
      turn.decode_seconds += seconds_since(t_step);
    }
    if (turn.stop_reason != engine::StopReason::StopString) {
      bool stopped = false;
      emit(matcher.push(decoder.finish(), stopped));
      if (!stopped) emit(matcher.flush());
    }
  } catch (...) {
    // The cache may hold part of a step: forget it rather than trust it next turn.
    messages_ = saved;
    cached_.clear();
    model_.reset();
    throw;
  }
  messages_.push_back({"assistant", turn.text});
  return turn;
}

}  // namespace mlxn::cli
