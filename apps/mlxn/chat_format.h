// A model's chat format for the CLI: its Jinja chat template (from the tokenizer files), the
// conversation rendered and tokenized the way transformers' apply_chat_template does it, and the
// end-of-turn markers that stop an assistant reply.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mlxn/engine/jinja.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::cli {

/// One message of a conversation.
struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatFormat {
 public:
  /// Parses the tokenizer's chat template; throws Error(Unsupported) naming the tokenizer when
  /// it has none (the model is not a chat model, or its files lack the template).
  explicit ChatFormat(const engine::Tokenizer& tokenizer);

  /// The conversation as text, ending with the assistant's header when
  /// `add_generation_prompt`; bos_token / eos_token are passed to the template.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  /// render() tokenized without adding special tokens (the template writes BOS itself), as
  /// apply_chat_template(tokenize=True) does.
  std::vector<std::int32_t> tokenize(const std::vector<ChatMessage>& messages,
                                     bool add_generation_prompt) const;

  /// Ids that end an assistant turn: the tokenizer's stop ids (EOS, generation_config.json)
  /// plus the special token the template writes after an assistant message (<|im_end|>,
  /// <|eot_id|>, <end_of_turn>, ...). Sorted, unique.
  const std::vector<std::int32_t>& stop_ids() const { return stop_ids_; }
  /// Texts that end an assistant turn: the template's end-of-turn marker when it is plain text
  /// rather than a special token (empty otherwise).
  const std::vector<std::string>& stop_strings() const { return stop_strings_; }

 private:
  void find_end_of_turn();

  engine::Tokenizer tokenizer_;
  engine::jinja::Template template_;
  engine::jinja::Value extra_;  // bos_token, eos_token
  std::vector<std::int32_t> stop_ids_;
  std::vector<std::string> stop_strings_;
};

}  // namespace mlxn::cli
