// Times on the command line: epoch milliseconds or ISO 8601, and ISO 8601 UTC output.
#pragma once

#include <storewatch/event.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace storewatch::cli {

/// "2026-11-27T04:05:06.123Z"
inline std::string format_time(timestamp t) {
  using namespace std::chrono;
  // Years 0000-9999 only (what parse_time reads back); a time outside them,
  // which only a damaged or hostile record holds, is shown as its raw
  // milliseconds, without date arithmetic that would overflow or wrap.
  constexpr std::int64_t first_ms = -62167219200000;  // 0000-01-01T00:00:00Z
  constexpr std::int64_t last_ms = 253402300799999;   // 9999-12-31T23:59:59.999Z
  const auto ms = t.time_since_epoch().count();
  if (ms < first_ms || ms > last_ms) return std::to_string(ms) + "ms";
  const auto day = floor<days>(t);
  const year_month_day date{day};
  const hh_mm_ss time{t - day};
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()), static_cast<int>(time.subseconds().count()));
  return text;
}

/// Parses epoch milliseconds ("1761135341619") or ISO 8601
/// ("2025-10-22T12:15:41Z", "2025-10-22T12:15:41.619+02:00", "2025-10-22"
/// meaning midnight UTC). Returns nullopt for anything else.
inline std::optional<timestamp> parse_time(std::string_view text) {
  using namespace std::chrono;
  if (text.empty()) return std::nullopt;
  std::size_t at = 0;
  const auto number = [&](std::size_t digits, int& out) {
    if (at + digits > text.size()) return false;
    const auto* first = text.data() + at;
    for (std::size_t i = 0; i < digits; ++i) {
      if (first[i] < '0' || first[i] > '9') return false;
    }
    std::from_chars(first, first + digits, out);
    at += digits;
    return true;
  };
  const auto literal = [&](char c) {
    if (at < text.size() && text[at] == c) {
      ++at;
      return true;
    }
    return false;
  };
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t ms = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return timestamp{milliseconds{ms}};
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!number(4, y) || !literal('-') || !number(2, mo) || !literal('-') || !number(2, d)) return std::nullopt;
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok()) return std::nullopt;
  milliseconds offset{0};
  milliseconds fraction{0};
  if (at < text.size()) {
    if (!literal('T') && !literal(' ')) return std::nullopt;
    if (!number(2, h) || !literal(':') || !number(2, mi) || !literal(':') || !number(2, s)) return std::nullopt;
    if (h > 23 || mi > 59 || s > 60) return std::nullopt;
    if (literal('.')) {
      int digits = 0;
      int value = 0;
      while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
        if (digits < 3) value = value * 10 + (text[at] - '0');
        ++digits;
        ++at;
      }
      if (digits == 0) return std::nullopt;
      for (int i = digits; i < 3; ++i) value *= 10;
      fraction = milliseconds{value};
    }
    if (literal('Z')) {
    } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
      const int sign = text[at++] == '+' ? 1 : -1;
      int oh = 0, om = 0;
      if (!number(2, oh) || !literal(':') || !number(2, om) || oh > 23 || om > 59) return std::nullopt;
      offset = sign * (hours{oh} + minutes{om});
    } else {
      return std::nullopt;  // a time without a zone is ambiguous
    }
  }
  if (at != text.size()) return std::nullopt;
  return time_point_cast<milliseconds>(sys_days{date} + hours{h} + minutes{mi} + seconds{s}) + fraction - offset;
}

}  // namespace storewatch::cli
