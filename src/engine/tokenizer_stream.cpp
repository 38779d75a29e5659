// TokenStreamDecoder: prints generated tokens as they come. Each push decodes the ids of the
// last emitted piece (as context, since decoders such as Strip and Metaspace treat the first
// token specially and byte tokens combine across ids) plus the ids pushed since, and emits what
// extends the context's text -- unless that ends in U+FFFD, i.e. a character is still unfinished.
#include "engine/tokenizer_unicode.h"
#include "mlxn/engine/tokenizer.h"

namespace mlxn::engine {

namespace {

// Length of the common prefix of `a` and `b`, backed off to a character boundary of `b`.
std::size_t common_prefix(std::string_view a, std::string_view b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < b.size() && (static_cast<unsigned char>(b[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

TokenStreamDecoder::TokenStreamDecoder(Tokenizer tokenizer, bool skip_special_tokens)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

std::string TokenStreamDecoder::push(std::int32_t id) {
  pending_.push_back(id);
  std::vector<std::int32_t> window = context_;
  window.insert(window.end(), pending_.begin(), pending_.end());
  const std::string text = tokenizer_.decode(window, skip_special_);
  if (text.size() <= context_text_.size() || tok::ends_with_replacement_char(text)) return {};
  // Supported decoders only ever extend the context's text; the common prefix is a safeguard.
  const std::size_t from =
      text.starts_with(context_text_) ? context_text_.size() : common_prefix(context_text_, text);
  std::string out = text.substr(from);
  context_ = std::move(pending_);
  pending_.clear();
  context_text_ = tokenizer_.decode(context_, skip_special_);
  return out;
}

std::string TokenStreamDecoder::finish() {
  std::vector<std::int32_t> window = context_;
  window.insert(window.end(), pending_.begin(), pending_.end());
  const std::string text = tokenizer_.decode(window, skip_special_);
  std::string out;
  if (text.size() > context_text_.size()) {
    const std::size_t from =
        text.starts_with(context_text_) ? context_text_.size() : common_prefix(context_text_, text);
    out = text.substr(from);
  }
  reset();
  return out;
}

void TokenStreamDecoder::reset() {
  context_.clear();
  pending_.clear();
  context_text_.clear();
}

}  // namespace mlxn::engine
