// Small text helpers: UTF-8 validation and quoting untrusted text for messages.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace storewatch::detail {

/// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates,
/// nothing above U+10FFFF). NUL is well-formed; callers that forbid it check.
inline bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII, the common case, eight bytes at a time; on a little-endian
    // machine the ASCII bytes before the first other byte are skipped too.
    if (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, sizeof word);
      const auto high_bits = word & 0x8080808080808080u;
      if (high_bits == 0) {
        p += 8;
        continue;
      }
      if constexpr (std::endian::native == std::endian::little) p += std::countr_zero(high_bits) / 8;
    } else if (text.size() >= 8) {
      // Under eight bytes left: the last eight (those before `p` were
      // whole sequences already checked) settle it when they are ASCII.
      std::uint64_t word;
      std::memcpy(&word, end - 8, sizeof word);
      if ((word & 0x8080808080808080u) == 0) return true;
    }
    const unsigned char lead = *p;
    if (lead < 0x80) {
      ++p;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code = 0;
    std::uint32_t min_code = 0;
    if ((lead & 0xE0) == 0xC0) {
      length = 2, code = lead & 0x1F, min_code = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code = lead & 0x0F, min_code = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code = lead & 0x07, min_code = 0x10000;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < length) return false;
    for (std::size_t i = 1; i < length; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    if (code < min_code || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    p += length;
  }
  return true;
}

/// Takes the text up to the next `separator` (or all of it) off the front
/// of `text`, and the separator with it.
inline std::string_view take_field(std::string_view& text, char separator = ';') noexcept {
  const auto at = text.find(separator);
  const auto field = text.substr(0, at);
  text = at == std::string_view::npos ? std::string_view{} : text.substr(at + 1);
  return field;
}

/// Parses a non-empty run of decimal digits (leading zeros allowed) whose
/// value is at most `limit`.
inline bool parse_digits(std::string_view text, std::uint64_t limit, std::uint64_t& value) noexcept {
  if (text.empty()) return false;
  std::uint64_t result = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (result > (limit - digit) / 10) return false;
    result = result * 10 + digit;
  }
  value = result;
  return true;
}

/// Parses a non-empty run of at most 20 decimal digits that fits in 64 bits.
inline bool parse_decimal(std::string_view text, std::uint64_t& value) noexcept {
  return text.size() <= 20 && parse_digits(text, UINT64_MAX, value);
}

/// The code point of the UTF-8 sequence at the front of `text` and its
/// length in bytes; length 0 when it is not a well-formed sequence.
struct utf8_char {
  char32_t code = 0;
  std::size_t length = 0;
};
inline utf8_char decode_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  if (text.empty()) return {};
  if (p[0] < 0x80) return {p[0], 1};
  std::size_t length = (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (length == 0 || !is_valid_utf8(text.substr(0, length))) return {};
  char32_t code = p[0] & (0x7F >> length);
  for (std::size_t i = 1; i < length; ++i) code = (code << 6) | (p[i] & 0x3F);
  return {code, length};
}

/// The four (or more) hex digits of a code point, as in U+202E.
inline std::string code_point_hex(char32_t c) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string digits;
  for (int shift = c > 0xFFFF ? 20 : 12; shift >= 0; shift -= 4) digits += hex[(c >> shift) & 0xF];
  return digits;
}

/// Characters that change how the text around them looks while being
/// invisible themselves: zero-width characters and marks (U+200B-U+200F),
/// the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
/// U+2066-U+2069) of the "Trojan Source" attacks, and U+FEFF.
inline constexpr bool is_invisible_formatting(char32_t c) noexcept {
  return (c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
         c == 0xFEFF;
}

/// The line and paragraph separators (U+2028, U+2029): text viewers, some
/// terminals and JavaScript break the line there, so a name holding one
/// could pass for two lines of output.
inline constexpr bool is_line_separator(char32_t c) noexcept { return c == 0x2028 || c == 0x2029; }

/// C0 controls, DEL and the C1 controls (U+0080-U+009F): what a terminal
/// acts on instead of showing.
inline constexpr bool is_control(char32_t c) noexcept { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

/// Appends `text` to `out` with nothing a terminal would act on or hide:
/// control bytes and bytes of invalid UTF-8 as \xHH, C1 controls, line and
/// paragraph separators and invisible formatting characters as \uHHHH, and each character of
/// `backslashed` (say, the quote and the backslash) after a backslash.
/// With `bytes_only`, every byte outside ASCII is shown as \xHH.
inline void append_displayable(std::string& out, std::string_view text, std::string_view backslashed = {},
                               bool bytes_only = false) {
  static constexpr char hex[] = "0123456789abcdef";
  while (!text.empty()) {
    auto c = decode_utf8(text);
    if (bytes_only && c.length > 1) c = {};
    if (c.length == 0 || c.code < 0x20 || c.code == 0x7F) {
      const auto byte = static_cast<unsigned char>(text.front());
      out += "\\x";
      out += hex[byte >> 4];
      out += hex[byte & 0xF];
      text.remove_prefix(1);
      continue;
    }
    if (is_control(c.code) || is_line_separator(c.code) || is_invisible_formatting(c.code)) {
      out += "\\u" + code_point_hex(c.code);
    } else {
      if (c.length == 1 && backslashed.find(text.front()) != std::string_view::npos) out += '\\';
      out.append(text.substr(0, c.length));
    }
    text.remove_prefix(c.length);
  }
}

/// `text` in double quotes, escaped as by `append_displayable` (quotes and
/// backslashes too; all of a text that is not UTF-8 byte by byte), cut
/// after `limit` bytes: safe to put in an error message whatever the input
/// was.
inline std::string quote(std::string_view text, std::size_t limit = 200) {
  std::string out = "\"";
  const bool utf8 = is_valid_utf8(text);
  std::size_t shown = text.size() < limit ? text.size() : limit;
  while (utf8 && shown < text.size() && shown > 0 && (static_cast<unsigned char>(text[shown]) & 0xC0) == 0x80) {
    --shown;  // do not cut a character in two
  }
  append_displayable(out, text.substr(0, shown), "\"\\", !utf8);
  out += '"';
  if (shown < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

}  // namespace storewatch::detail
