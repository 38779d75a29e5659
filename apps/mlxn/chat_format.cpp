// Chat format of a model: see chat_format.h.
#include "apps/mlxn/chat_format.h"

#include <algorithm>

#include "mlxn/core/error.h"

namespace mlxn::cli {

namespace {

using engine::jinja::Value;

engine::jinja::Template parse_template(const engine::Tokenizer& tokenizer) {
  if (tokenizer.chat_template().empty()) {
    throw Error(ErrorKind::Unsupported,
                tokenizer.name() +
                    ": the tokenizer has no chat template (tokenizer_config.json "
                    "chat_template or chat_template.jinja), so the conversation cannot be "
                    "formatted; use `mlxn generate` without --chat for plain text");
  }
  return engine::jinja::parse_chat_template(tokenizer.chat_template(),
                                            tokenizer.name() + " chat_template");
}

Value messages_value(const std::vector<ChatMessage>& messages) {
  Value list = Value::array();
  for (const ChatMessage& m : messages) {
    Value item = Value::object();
    item.set("role", m.role);
    item.set("content", m.content);
    list.push_back(item);
  }
  return list;
}

}  // namespace

ChatFormat::ChatFormat(const engine::Tokenizer& tokenizer)
    : tokenizer_(tokenizer), template_(parse_template(tokenizer)), extra_(Value::object()) {
  // Templates print bos_token themselves (and some compare against eos_token); undefined would
  // print as "" and silently drop BOS.
  extra_.set("bos_token", tokenizer.bos_token().value_or(""));
  extra_.set("eos_token", tokenizer.eos_token().value_or(""));
  stop_ids_ = tokenizer.stop_ids();
  find_end_of_turn();
  std::sort(stop_ids_.begin(), stop_ids_.end());
  stop_ids_.erase(std::unique(stop_ids_.begin(), stop_ids_.end()), stop_ids_.end());
}

std::string ChatFormat::render(const std::vector<ChatMessage>& messages,
                               bool add_generation_prompt) const {
  return engine::jinja::render_chat_template(template_, messages_value(messages),
                                             add_generation_prompt, extra_);
}

std::vector<std::int32_t> ChatFormat::tokenize(const std::vector<ChatMessage>& messages,
                                               bool add_generation_prompt) const {
  return tokenizer_.encode(render(messages, add_generation_prompt), false);
}

// Templates do not declare their end-of-turn marker, so it is observed: render a conversation
// whose assistant reply is a sentinel and look at what the template writes right after it, up
// to the end of that line. The first special token there (<|im_end|>, <|eot_id|>,
// <end_of_turn>, </s>, ...) is what a model trained on the template emits to end its turn; a
// template without special tokens gets its marker text as a stop string instead.
void ChatFormat::find_end_of_turn() {
  constexpr const char* kSentinel = "mlxn-end-of-turn-probe";
  std::string text;
  try {
    text = render({{"user", "Hi"}, {"assistant", kSentinel}}, false);
  } catch (const Error&) {
    return;  // a template that refuses this conversation: EOS alone ends the turn
  }
  const std::size_t at = text.rfind(kSentinel);
  if (at == std::string::npos) return;
  std::string suffix = text.substr(at + std::string(kSentinel).size());
  suffix = suffix.substr(0, suffix.find('\n'));
  for (const std::int32_t id : tokenizer_.encode(suffix, false)) {
    if (tokenizer_.is_special(id)) {
      stop_ids_.push_back(id);
      return;
    }
  }
  const auto first = suffix.find_first_not_of(" \t\r");
  if (first == std::string::npos) return;
  const auto last = suffix.find_last_not_of(" \t\r");
  stop_strings_.push_back(suffix.substr(first, last - first + 1));
}

}  // namespace mlxn::cli
