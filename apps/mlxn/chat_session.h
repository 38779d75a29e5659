// A multi-turn conversation on one model: the history, rendered through the chat template every
// turn, with the KV cache kept between turns so only the part of the conversation that is new
// (the user's message, and whatever re-rendering changed) is prefilled again.
// Each turn is one Generator request that continues from the cached common prefix.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apps/mlxn/chat_format.h"
#include "mlxn/engine/generator.h"
#include "mlxn/engine/model.h"
#include "mlxn/engine/sampler.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::cli {

/// What one assistant turn did.
struct ChatTurn {
  std::string text;  // the reply as printed (no end-of-turn marker)
  std::int64_t generated_tokens = 0;
  engine::StopReason stop_reason = engine::StopReason::MaxTokens;
  std::int64_t prompt_tokens = 0;     // the whole rendered conversation
  std::int64_t reused_tokens = 0;     // of those, already in the KV cache
  std::int64_t dropped_messages = 0;  // old messages left out to fit the context
  double prefill_seconds = 0.0;       // the new prompt tokens and the first pick
  double decode_seconds = 0.0;        // the picks after the first
};

class ChatSession {
 public:
  /// `params`: sampling settings; their stop ids/strings are extended with the format's.
  /// `reuse_cache`: false prefills the whole conversation every turn (for comparisons).
  ChatSession(engine::Model& model, const engine::Tokenizer& tokenizer, ChatFormat format,
              engine::SamplingParams params, std::string system, bool reuse_cache = true);

  /// Adds the user message, generates the assistant's reply (text goes to `on_text` as it is
  /// produced) and adds the reply to the history. When the conversation no longer fits the
  /// context, the oldest exchanges are dropped (the system message stays); a message that does
  /// not fit on its own throws InvalidArgument and leaves the history as it was.
  ChatTurn reply(const std::string& user, const std::function<void(std::string_view)>& on_text);

  /// Forgets the conversation (the system message stays) and empties the KV cache.
  void reset();

  const std::vector<ChatMessage>& history() const { return messages_; }

 private:
  // The tokens of `messages_` + the assistant header, dropping the oldest exchanges until the
  // prompt leaves room for at least one generated token. Counts drops in `dropped`.
  std::vector<std::int32_t> fit_prompt(std::int64_t& dropped);
  // How many leading tokens of `prompt` can stay in the cache.
  std::int64_t reusable_prefix(const std::vector<std::int32_t>& prompt) const;

  engine::Model& model_;
  engine::Tokenizer tokenizer_;
  ChatFormat format_;
  engine::SamplingParams params_;
  std::vector<ChatMessage> messages_;  // system message (when given) first
  std::size_t n_fixed_ = 0;            // leading messages never dropped (the system message)
  // The token at every position the KV cache holds: cached_.size() == cache().length().
  std::vector<std::int32_t> cached_;
  bool reuse_cache_ = true;
  std::uint64_t draws_ = 0;  // sampling steps so far: each turn draws fresh uniforms
};

}  // namespace mlxn::cli
