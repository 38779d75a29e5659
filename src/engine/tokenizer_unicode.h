// Unicode helpers of the tokenizer: UTF-8 walking and validation, lossy decoding as the
// reference does it, the character classes its components test (whitespace, numeric, word),
// normalization forms (through utf8proc) and GPT-2's byte-level alphabet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mlxn::engine::tok {

inline constexpr char32_t kReplacementChar = 0xFFFD;
/// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's stand-in for a space.
inline constexpr std::string_view kMetaspace = "\xE2\x96\x81";

/// Byte offset of the first invalid UTF-8 sequence in `s`, or std::string_view::npos.
std::size_t find_invalid_utf8(std::string_view s);
/// The code point starting at s[i] (s must be valid UTF-8); moves i past it.
char32_t next_code_point(std::string_view s, std::size_t& i);
/// Appends the UTF-8 encoding of `c`.
void append_utf8(std::string& out, char32_t c);
/// The UTF-8 encoding of `c`.
std::string utf8_of(char32_t c);
/// `bytes` as valid UTF-8: every maximal invalid subsequence (an unfinished or ill-formed
/// character) becomes one U+FFFD, exactly like Rust's String::from_utf8_lossy.
std::string utf8_lossy(std::string_view bytes);
/// True when `s` ends with U+FFFD.
bool ends_with_replacement_char(std::string_view s);

/// Unicode White_Space (Rust's char::is_whitespace).
bool is_whitespace(char32_t c);
/// General category N* (Rust's char::is_numeric).
bool is_numeric(char32_t c);
/// Letters or numbers (Rust's char::is_alphanumeric, close enough for L* / N*).
bool is_alphanumeric(char32_t c);
/// A regex word character (\w): letters, marks, decimal digits, connector punctuation, ZWJ/ZWNJ.
bool is_word_char(char32_t c);
/// General category M* (combining marks).
bool is_mark(char32_t c);
/// General category P* or ASCII punctuation symbols (for the Punctuation pre-tokenizer).
bool is_punctuation(char32_t c);

enum class NormalForm { Nfc, Nfd, Nfkc, Nfkd };
/// `s` (valid UTF-8) in the given normalization form.
std::string normalize_form(std::string_view s, NormalForm form);
/// `s` with every character lowercased (full mappings where they differ from simple ones).
std::string to_lowercase(std::string_view s);

/// GPT-2's byte-level alphabet: each byte maps to a printable code point (printable Latin-1
/// bytes to themselves, the rest to U+0100 and up, in order).
char32_t byte_to_char(std::uint8_t b);
/// The byte a byte-level code point stands for, or -1 when `c` is not in the alphabet.
int char_to_byte(char32_t c);
/// Every byte of `bytes` mapped through byte_to_char, as UTF-8.
std::string byte_level_encode(std::string_view bytes);

}  // namespace mlxn::engine::tok
