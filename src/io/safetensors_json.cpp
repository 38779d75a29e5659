// Internal: strict JSON parsing (UTF-8, depth, duplicate keys) for safetensors headers and indexes.
#include "safetensors_json.h"

#include <cstdint>
#include <unordered_set>
#include <vector>

#include "mlxn/core/error.h"

namespace mlxn::io::detail {

namespace {

// nlohmann's messages quote the last token read, which a hostile file can make megabytes long.
constexpr std::size_t kMaxMessageDetail = 300;
constexpr std::size_t kMaxQuotedName = 160;

std::string shorten(std::string text) {
  if (text.size() > kMaxMessageDetail) {
    text.resize(kMaxMessageDetail);
    text += "...";
  }
  return text;
}

}  // namespace

std::size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, overlong lead (C0, C1) or lead past U+10FFFF
    }
    if (n - i < len) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    if (overlong || surrogate || cp > 0x10FFFF) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string quote_name(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (i == kMaxQuotedName) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  out += "'";
  return out;
}

nlohmann::json parse_json_strict(std::string_view text, const std::string& origin,
                                 std::string_view what) {
  const std::string prefix = origin + ": " + std::string(what);
  if (const std::size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error(ErrorKind::Format,
                prefix + " is not valid UTF-8 (byte " + std::to_string(bad) + " of the text)");
  }
  // One frame per open container; the stack size is the nesting depth. Objects remember their
  // keys so duplicates are caught at every level; arrays count their elements.
  struct Frame {
    bool array = false;
    std::size_t count = 0;
    std::unordered_set<std::string> keys;
  };
  std::vector<Frame> frames;
  const auto count_element = [&] {
    if (!frames.empty() && frames.back().array && ++frames.back().count > kMaxJsonArrayElements) {
      throw Error(ErrorKind::Format, prefix + " has an array longer than " +
                                         std::to_string(kMaxJsonArrayElements) + " elements");
    }
  };
  const auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event,
                            nlohmann::json& parsed) -> bool {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        count_element();
        if (frames.size() >= static_cast<std::size_t>(kMaxJsonDepth)) {
          throw Error(ErrorKind::Format,
                      prefix + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        }
        frames.emplace_back().array = event == Event::array_start;
        break;
      case Event::object_end:
      case Event::array_end:
        if (!frames.empty()) frames.pop_back();
        break;
      case Event::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!frames.empty() && !frames.back().keys.insert(key).second) {
          throw Error(ErrorKind::Format, prefix + " has duplicate key " + quote_name(key));
        }
        break;
      }
      case Event::value:
        count_element();
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                                 /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, prefix + " is not valid JSON: " + shorten(e.what()));
  }
}

}  // namespace mlxn::io::detail
