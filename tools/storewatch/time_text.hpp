// Times on the command line: epoch milliseconds or ISO 8601, and ISO 8601 UTC output,
// read and written with Howard Hinnant's date library (date::parse, date::format).
#pragma once

#include <storewatch/event.hpp>

#include <date/date.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace storewatch::cli {

/// "2026-11-27T04:05:06.123Z"
inline std::string format_time(timestamp t) {
  // Years 0000-9999 only (what parse_time reads back); a time outside them,
  // which only a damaged or hostile record holds, is shown as its raw
  // milliseconds, without date arithmetic that would overflow or wrap.
  constexpr std::int64_t first_ms = -62167219200000;  // 0000-01-01T00:00:00Z
  constexpr std::int64_t last_ms = 253402300799999;   // 9999-12-31T23:59:59.999Z
  const auto ms = t.time_since_epoch().count();
  if (ms < first_ms || ms > last_ms) return std::to_string(ms) + "ms";
  return date::format("%FT%TZ", date::sys_time<std::chrono::milliseconds>(t.time_since_epoch()));
}

/// True when `text` has the characters of `shape`, where each 'D' in
/// `shape` stands for a decimal digit and each 'x' for any character.
/// date::parse alone accepts fewer digits ("1:2:3") and leading signs.
inline bool has_shape(std::string_view text, std::string_view shape) {
  if (text.size() != shape.size()) return false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (shape[i] == 'D' ? !digit : shape[i] != 'x' && shape[i] != text[i]) return false;
  }
  return true;
}

/// `text` parsed by date::parse with `format` to its very end, or nullopt.
inline std::optional<timestamp> parse_whole(const std::string& text, const char* format) {
  std::istringstream in(text);
  date::sys_time<std::chrono::milliseconds> t;
  in >> date::parse(format, t);
  if (in.fail() || in.peek() != std::istringstream::traits_type::eof()) return std::nullopt;
  return timestamp{t.time_since_epoch()};
}

/// Parses epoch milliseconds ("1761135341619") or ISO 8601
/// ("2025-10-22T12:15:41Z", "2025-10-22T12:15:41.619+02:00", "2025-10-22"
/// meaning midnight UTC; a space may stand for the T; digits of a second
/// past the millisecond are dropped). Returns nullopt for anything else,
/// and for a time without a zone, which is ambiguous.
inline std::optional<timestamp> parse_time(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t ms = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return timestamp{std::chrono::milliseconds{ms}};
  }
  if (has_shape(text, "DDDD-DD-DD")) return parse_whole(std::string(text), "%F");
  if (text.size() < 20 || !has_shape(text.substr(0, 19), "DDDD-DD-DDxDD:DD:DD") ||
      (text[10] != 'T' && text[10] != ' ')) {
    return std::nullopt;
  }
  // What date::parse reads: "YYYY-MM-DDTHH:MM:SS[.mmm]+HH:MM".
  std::string normalized = std::string(text.substr(0, 10)) + 'T' + std::string(text.substr(11, 8));
  auto rest = text.substr(19);
  if (rest.starts_with('.')) {
    const auto digits = std::min(rest.find_first_not_of("0123456789", 1), rest.size()) - 1;
    if (digits == 0) return std::nullopt;
    normalized += rest.substr(0, 1 + std::min<std::size_t>(digits, 3));
    rest.remove_prefix(1 + digits);
  }
  if (rest == "Z") {
    normalized += "+00:00";
  } else if (has_shape(rest, "xDD:DD") && (rest[0] == '+' || rest[0] == '-') && rest.substr(1, 2) < "24" &&
             rest.substr(4, 2) < "60") {
    normalized += rest;
  } else {
    return std::nullopt;
  }
  return parse_whole(normalized, "%FT%T%Ez");
}

}  // namespace storewatch::cli
