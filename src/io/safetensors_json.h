// Internal: bounded, strict JSON parsing shared by the safetensors header and index readers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace mlxn::io::detail {

/// Deepest container nesting accepted. Safetensors headers need 3 levels and indexes 2-3;
/// the cap keeps hostile inputs (100k '[') from costing memory or time.
inline constexpr int kMaxJsonDepth = 64;

/// Longest array accepted. Shapes and offsets are short; the cap keeps a hostile header from
/// growing a DOM many times its own size out of one huge array.
inline constexpr std::size_t kMaxJsonArrayElements = 4096;

/// Parses `text` as JSON, rejecting invalid UTF-8, nesting deeper than kMaxJsonDepth, arrays longer
/// than kMaxJsonArrayElements and duplicate keys in any object (nlohmann would silently keep the
/// last one). Throws Error(Format) "<origin>: <what> ..." describing the first problem.
nlohmann::json parse_json_strict(std::string_view text, const std::string& origin,
                                 std::string_view what);

/// `name` quoted for an error message: control and non-ASCII bytes escaped as \xNN, long names
/// cut short, so that hostile names cannot flood or garble messages.
std::string quote_name(std::string_view name);

/// Offset of the first byte that is not part of valid UTF-8 (no overlongs, surrogates or code
/// points past U+10FFFF), or npos when all of `text` is valid.
std::size_t find_invalid_utf8(std::string_view text);

}  // namespace mlxn::io::detail
