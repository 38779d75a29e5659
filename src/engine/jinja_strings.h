// Private to the Jinja engine: UTF-8 helpers and Python's string operations (strip, split,
// case mapping, repr, float repr, JSON quoting, %-formatting) on UTF-8 std::strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlxn::engine::jinja::detail {

/// Decodes the code point at s[i] and advances i; an invalid byte decodes as itself.
char32_t decode_utf8(std::string_view s, std::size_t& i);
void append_utf8(std::string& out, char32_t cp);
/// The string split into code points (each a view into s), as Python indexes strings.
std::vector<std::string_view> code_points(std::string_view s);
std::size_t count_code_points(std::string_view s);

/// Python's str.isspace() for one code point.
bool is_space(char32_t cp);
/// str.strip/lstrip/rstrip: whitespace when `chars` is unset, else any code point of `chars`.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right);
/// str.split (from the left) or str.rsplit: on runs of whitespace when `sep` is unset.
/// maxsplit < 0 means no limit. Throws std::invalid_argument for an empty separator.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               std::int64_t maxsplit, bool from_right);
/// str.splitlines() without keepends, on \n, \r\n and \r.
std::vector<std::string> split_lines(std::string_view s);
/// str.replace; count < 0 replaces all.
std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                    std::int64_t count);
/// Number of non-overlapping occurrences (str.count); an empty needle counts code points + 1.
std::size_t count_occurrences(std::string_view s, std::string_view needle);

/// Case mapping of ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic letters.
char32_t to_upper(char32_t cp);
char32_t to_lower(char32_t cp);
bool is_cased_letter(char32_t cp);
std::string upper(std::string_view s);
std::string lower(std::string_view s);
/// str.title(): a letter after a non-letter is upper-cased, every other letter lower-cased.
std::string title_method(std::string_view s);
/// Jinja's title filter: words start after whitespace, '-', '(', '{', '[' or '<'.
std::string title_filter(std::string_view s);
/// str.capitalize(): first code point upper-cased, the rest lower-cased.
std::string capitalize(std::string_view s);

/// Python repr() of a string: single quotes unless it holds ' and no ", escapes inside.
std::string repr_string(std::string_view s);
/// Python repr() of a float: shortest round-trip digits, "1.0", "1e-05", "1e+16", "inf", "nan".
std::string repr_float(double d);
/// A JSON string literal as json.dumps writes it.
std::string json_quote(std::string_view s, bool ensure_ascii);
/// HTML escaping as markupsafe does: & < > " '.
std::string html_escape(std::string_view s);

/// Python's round(x, ndigits): correctly rounded, ties to even.
double round_half_even(double x, int ndigits);

}  // namespace mlxn::engine::jinja::detail
