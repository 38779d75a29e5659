// Python string semantics on UTF-8 text for the Jinja engine: what templates see when they call
// str methods or string filters, and how values print.
#include "engine/jinja_strings.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace mlxn::engine::jinja::detail {

char32_t decode_utf8(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = 0;
  char32_t cp = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    ++i;  // stray continuation or invalid lead byte: one unit of its own
    return b0;
  }
  if (i + len > s.size()) {
    ++i;
    return b0;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return b0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<std::string_view> code_points(std::string_view s) {
  std::vector<std::string_view> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    decode_utf8(s, i);
    out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::size_t count_code_points(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n) decode_utf8(s, i);
  return n;
}

bool is_space(char32_t cp) {
  // The code points for which Python's str.isspace() is true.
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F)) return true;
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {

bool in_chars(char32_t cp, const std::optional<std::string>& chars) {
  if (!chars) return is_space(cp);
  for (std::size_t i = 0; i < chars->size();) {
    if (decode_utf8(*chars, i) == cp) return true;
  }
  return false;
}

// Byte offset just past the last code point of s[0, end) that is not stripped.
std::size_t rstrip_end(std::string_view s, const std::optional<std::string>& chars) {
  auto cps = code_points(s);
  std::size_t end = s.size();
  for (auto it = cps.rbegin(); it != cps.rend(); ++it) {
    std::size_t k = 0;
    if (!in_chars(decode_utf8(*it, k), chars)) break;
    end -= it->size();
  }
  return end;
}

}  // namespace

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right) {
  std::size_t begin = 0;
  if (left) {
    while (begin < s.size()) {
      std::size_t next = begin;
      if (!in_chars(decode_utf8(s, next), chars)) break;
      begin = next;
    }
  }
  std::string_view rest = s.substr(begin);
  if (right) rest = rest.substr(0, rstrip_end(rest, chars));
  return std::string(rest);
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               std::int64_t maxsplit, bool from_right) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) throw std::invalid_argument("empty separator");
    if (!from_right) {
      std::size_t pos = 0;
      while (maxsplit < 0 || static_cast<std::int64_t>(out.size()) < maxsplit) {
        const std::size_t hit = s.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        out.emplace_back(s.substr(pos, hit - pos));
        pos = hit + sep->size();
      }
      out.emplace_back(s.substr(pos));
    } else {
      std::size_t end = s.size();
      while (maxsplit < 0 || static_cast<std::int64_t>(out.size()) < maxsplit) {
        if (end < sep->size()) break;
        const std::size_t hit = s.rfind(*sep, end - sep->size());
        if (hit == std::string_view::npos) break;
        out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
        end = hit;
      }
      out.emplace_back(s.substr(0, end));
      std::reverse(out.begin(), out.end());
    }
    return out;
  }
  // Whitespace splitting: runs of whitespace separate, empty pieces are dropped.
  struct Piece {
    std::size_t begin, end;
  };
  std::vector<Piece> words;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t next = i;
    if (is_space(decode_utf8(s, next))) {
      i = next;
      continue;
    }
    const std::size_t begin = i;
    while (i < s.size()) {
      next = i;
      if (is_space(decode_utf8(s, next))) break;
      i = next;
    }
    words.push_back({begin, i});
  }
  const std::size_t n = words.size();
  if (maxsplit < 0 || static_cast<std::size_t>(maxsplit) >= n) {
    for (const Piece& w : words) out.emplace_back(s.substr(w.begin, w.end - w.begin));
    return out;
  }
  const auto k = static_cast<std::size_t>(maxsplit);
  if (!from_right) {
    for (std::size_t w = 0; w < k; ++w) {
      out.emplace_back(s.substr(words[w].begin, words[w].end - words[w].begin));
    }
    out.emplace_back(s.substr(words[k].begin));
  } else {
    const std::size_t first = n - k;  // words [first, n) are split off one by one
    out.emplace_back(s.substr(0, words[first - 1].end));
    for (std::size_t w = first; w < n; ++w) {
      out.emplace_back(s.substr(words[w].begin, words[w].end - words[w].begin));
    }
  }
  return out;
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      out.emplace_back(s.substr(begin, i - begin));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      begin = i + 1;
    }
  }
  if (begin < s.size()) out.emplace_back(s.substr(begin));
  return out;
}

std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                    std::int64_t count) {
  std::string out;
  std::int64_t done = 0;
  if (old_text.empty()) {
    // Python inserts the replacement before every code point and at the end.
    auto cps = code_points(s);
    for (std::string_view cp : cps) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      out += cp;
    }
    if (count < 0 || done < count) out += new_text;
    return out;
  }
  std::size_t pos = 0;
  while (count < 0 || done < count) {
    const std::size_t hit = s.find(old_text, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += new_text;
    pos = hit + old_text.size();
    ++done;
  }
  out += s.substr(pos);
  return out;
}

std::size_t count_occurrences(std::string_view s, std::string_view needle) {
  if (needle.empty()) return count_code_points(s) + 1;
  std::size_t n = 0;
  for (std::size_t pos = s.find(needle); pos != std::string_view::npos;
       pos = s.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

char32_t to_upper(char32_t cp) {
  if (cp >= 'a' && cp <= 'z') return cp - 32;
  if (cp < 0xB5) return cp;
  if (cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) return cp - 0x20;
  if (cp == 0xFF) return 0x178;
  if (cp >= 0x100 && cp <= 0x17F) {
    const bool even_upper = (cp <= 0x137) || (cp >= 0x14A && cp <= 0x177);
    const bool odd_upper = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
    if (even_upper && (cp & 1)) return cp - 1;
    if (odd_upper && !(cp & 1)) return cp - 1;
    return cp;
  }
  if (cp >= 0x3B1 && cp <= 0x3C9) return cp == 0x3C2 ? 0x3A3 : cp - 0x20;
  if (cp >= 0x430 && cp <= 0x44F) return cp - 0x20;
  if (cp >= 0x450 && cp <= 0x45F) return cp - 0x50;
  return cp;
}

char32_t to_lower(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp < 0xC0) return cp;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;
  if (cp == 0x178) return 0xFF;
  if (cp >= 0x100 && cp <= 0x17F) {
    const bool even_upper = (cp <= 0x137) || (cp >= 0x14A && cp <= 0x177);
    const bool odd_upper = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
    if (even_upper && !(cp & 1)) return cp + 1;
    if (odd_upper && (cp & 1)) return cp + 1;
    return cp;
  }
  if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 0x20;
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
  return cp;
}

bool is_cased_letter(char32_t cp) {
  return to_upper(cp) != cp || to_lower(cp) != cp || cp == 0xDF;
}

namespace {

template <typename F>
std::string map_code_points(std::string_view s, F&& f) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) append_utf8(out, f(decode_utf8(s, i)));
  return out;
}

}  // namespace

std::string upper(std::string_view s) {
  return map_code_points(s, to_upper);
}
std::string lower(std::string_view s) {
  return map_code_points(s, to_lower);
}

std::string title_method(std::string_view s) {
  bool previous_cased = false;
  return map_code_points(s, [&](char32_t cp) {
    const bool cased = is_cased_letter(cp);
    const char32_t mapped = !cased ? cp : previous_cased ? to_lower(cp) : to_upper(cp);
    previous_cased = cased;
    return mapped;
  });
}

std::string title_filter(std::string_view s) {
  bool word_start = true;
  return map_code_points(s, [&](char32_t cp) {
    if (is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<') {
      word_start = true;
      return cp;
    }
    const char32_t mapped = word_start ? to_upper(cp) : to_lower(cp);
    word_start = false;
    return mapped;
  });
}

std::string capitalize(std::string_view s) {
  bool first = true;
  return map_code_points(s, [&](char32_t cp) {
    const char32_t mapped = first ? to_upper(cp) : to_lower(cp);
    first = false;
    return mapped;
  });
}

namespace {

void append_hex(std::string& out, const char* prefix, unsigned value, int digits) {
  static const char* kHex = "0123456789abcdef";
  out += prefix;
  for (int d = digits - 1; d >= 0; --d) out += kHex[(value >> (4 * d)) & 0xF];
}

}  // namespace

std::string repr_string(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const char32_t cp = decode_utf8(s, i);
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) {
      append_hex(out, "\\x", cp, 2);
    } else if (cp == 0x2028 || cp == 0x2029) {
      append_hex(out, "\\u", cp, 4);
    } else {
      out += s.substr(start, i - start);
    }
  }
  out += quote;
  return out;
}

std::string repr_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: positional when the decimal exponent
  // lies in [-4, 16), scientific otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const std::size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  const int decpt = exponent + 1;  // digits are 0.d1d2... * 10^decpt
  const int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= n) {
      out += digits;
      out.append(static_cast<std::size_t>(decpt - n), '0');
      out += ".0";
    } else {
      out += digits.substr(0, decpt);
      out += '.';
      out += digits.substr(decpt);
    }
  } else {
    out += digits.substr(0, 1);
    if (n > 1) {
      out += '.';
      out += digits.substr(1);
    }
    const int e = decpt - 1;
    out += e < 0 ? "e-" : "e+";
    const int ae = e < 0 ? -e : e;
    if (ae < 10) out += '0';
    out += std::to_string(ae);
  }
  return out;
}

std::string json_quote(std::string_view s, bool ensure_ascii) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const char32_t cp = decode_utf8(s, i);
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
          if (cp >= 0x10000) {
            const char32_t v = cp - 0x10000;
            append_hex(out, "\\u", 0xD800 + (v >> 10), 4);
            append_hex(out, "\\u", 0xDC00 + (v & 0x3FF), 4);
          } else {
            append_hex(out, "\\u", cp, 4);
          }
        } else {
          out += s.substr(start, i - start);
        }
    }
  }
  out += '"';
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double round_half_even(double x, int ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits == 0) return std::nearbyint(x);  // the default rounding mode ties to even
  if (ndigits > 0) {
    // printf rounds the exact binary value correctly, as Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", ndigits > 300 ? 300 : ndigits, x);
    return std::strtod(buf, nullptr);
  }
  const double scale = std::pow(10.0, -ndigits);
  return std::nearbyint(x / scale) * scale;
}

}  // namespace mlxn::engine::jinja::detail
