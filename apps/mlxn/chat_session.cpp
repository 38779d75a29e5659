// Multi-turn chat with KV-cache reuse: see chat_session.h.
#include "apps/mlxn/chat_session.h"

#include <algorithm>

#include "mlxn/core/error.h"

namespace mlxn::cli {

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
    // Special tokens other than the stop ids (which are never detokenized) stay out of the text.
    engine::TokenStreamDecoder decoder(tokenizer_, /*skip_special_tokens=*/true);
    engine::GenerateOptions options;
    options.cached = keep;
    options.first_draw = draws_;
    const engine::GenerationResult r = engine::Generator(model_).generate(
        prompt, params_, {}, [&](std::int32_t id) { return decoder.push(id); }, on_text, options);
    turn.text = r.text;
    turn.generated_tokens = static_cast<std::int64_t>(r.tokens.size());
    turn.stop_reason = r.stop_reason;
    turn.prefill_seconds = r.prefill_seconds;
    turn.decode_seconds = r.decode_seconds;
    draws_ += r.tokens.size();
    // The cache now holds the prompt and every generated token but the last (never fed).
    cached_ = std::move(prompt);
    if (!r.tokens.empty()) cached_.insert(cached_.end(), r.tokens.begin(), r.tokens.end() - 1);
    // Bytes of an unfinished character are still held by the decoder (U+FFFD when incomplete).
    if (r.stop_reason != engine::StopReason::StopString) {
      const std::string tail = decoder.finish();
      if (!tail.empty()) {
        turn.text += tail;
        if (on_text) on_text(tail);
      }
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
