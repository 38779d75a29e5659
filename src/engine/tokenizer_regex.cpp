// Regex on top of PCRE2 (8-bit, UTF + UCP, JIT when available); see tokenizer_regex.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/tokenizer_regex.h"

#include <pcre2.h>

#include <memory>

#include "mlxn/core/error.h"

namespace mlxn::engine::tok {

namespace {

pcre2_code* as_code(void* p) {
  return static_cast<pcre2_code*>(p);
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* p) const { pcre2_match_data_free(p); }
};

std::size_t utf8_char_len(std::string_view s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  const std::size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
  return std::min(n, s.size() - i);
}

}  // namespace

std::string oniguruma_compatible_pattern(std::string_view p) {
  // Oniguruma's \s is \t\n\v\f\r, U+0085 and the Z categories; PCRE2's UCP \s lacks U+0085.
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  std::size_t class_start = 0;  // index in `p` just after the class's '[' (and '^')
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 'Q') {  // \Q...\E quotes literally: copy it untouched
        const std::size_t end = p.find("\\E", i + 2);
        const std::size_t stop = end == std::string_view::npos ? p.size() : end + 2;
        out.append(p.substr(i, stop - i));
        i = stop - 1;
        continue;
      }
      if (e == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (e == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      class_start = i + 1;
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      const std::size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']' && i != class_start) in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view pattern, std::string_view context)
    : pattern_(pattern), context_(context) {
  const std::string compiled = oniguruma_compatible_pattern(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
  if (code == nullptr) {
    throw Error(ErrorKind::Format, context_ + ": regex '" + pattern_ + "' does not compile (" +
                                       pcre2_message(err) + " at offset " + std::to_string(offset) +
                                       ")");
  }
  // JIT is an optimisation only: without it (unsupported CPU, W^X policy) matching still works.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(as_code(code_));
}

std::vector<Span> Regex::find_all(std::string_view text) const {
  std::vector<Span> out;
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(as_code(code_), nullptr));
  if (!md) throw Error(ErrorKind::Allocation, context_ + ": out of memory matching a regex");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t pos = 0;
  bool have_prev = false;
  std::size_t prev_end = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(as_code(code_), subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(),
                         nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Very long runs can outgrow the JIT's default stack; the interpreter uses the heap.
      rc = pcre2_match(as_code(code_), subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       md.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      throw Error(ErrorKind::InvalidArgument,
                  context_ + ": matching regex '" + pattern_ + "' failed: " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const std::size_t s = ov[0], e = ov[1];
    if (s == e && have_prev && prev_end == e) {
      // An empty match where the last one ended: step over one character and search again.
      if (pos >= text.size()) break;
      pos += utf8_char_len(text, pos);
      continue;
    }
    out.push_back({s, e});
    have_prev = true;
    prev_end = e;
    pos = e;
  }
  return out;
}

}  // namespace mlxn::engine::tok
