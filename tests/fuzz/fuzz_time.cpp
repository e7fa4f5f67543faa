// Fuzz target: times on the command line (storewatch::cli::parse_time in
// tools/time_text.hpp), and format_time, which prints the occurred_at of
// events read from journals and JSON, so any 64-bit value.
//
// Properties checked (abort on violation):
// - parse_time does not throw;
// - text of only digits is accepted exactly when it fits in 64 bits, as
//   that many milliseconds;
// - any accepted time in years 0000-9999 formats to 24 bytes of ISO 8601
//   that parse back to the same time;
// - an accepted text already in format_time's form
//   ("YYYY-MM-DDTHH:MM:SS.mmmZ", seconds below 60) formats back to itself;
// - format_time of the input's first 8 bytes as milliseconds (any value)
//   does not crash or hit undefined behaviour, ends in 'Z', and never
//   prints another time: if parse_time accepts its text, it is the same time.
#include "time_text.hpp"

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <system_error>

namespace {

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_time: property violated at line %u: %s\n", static_cast<unsigned>(where.line()), what);
  std::abort();
}

using storewatch::timestamp;
using std::chrono::milliseconds;

constexpr timestamp first_formattable{milliseconds{-62167219200000}};  // 0000-01-01T00:00:00.000Z
constexpr timestamp last_formattable{milliseconds{253402300799999}};   // 9999-12-31T23:59:59.999Z

bool in_format_time_form(std::string_view text) {
  return text.size() == 24 && text[4] == '-' && text[7] == '-' && text[10] == 'T' && text[13] == ':' &&
         text[16] == ':' && text[19] == '.' && text[23] == 'Z' && text.substr(17, 2) < "60";
}

void check_text(std::string_view text) {
  using storewatch::cli::format_time;
  using storewatch::cli::parse_time;
  std::optional<timestamp> parsed;
  try {
    parsed = parse_time(text);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fuzz_time: parse_time threw %s\n", error.what());
    require(false, "parse_time threw");
  }
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t ms = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    const bool fits = ec == std::errc{} && end == text.data() + text.size();
    require(parsed.has_value() == fits, "digits are accepted exactly when they fit in 64 bits");
    if (fits) require(*parsed == timestamp{milliseconds{ms}}, "digits are not taken as epoch milliseconds");
  }
  if (!parsed) return;
  if (*parsed >= first_formattable && *parsed <= last_formattable) {
    const std::string formatted = format_time(*parsed);
    require(formatted.size() == 24, "format_time of a time in years 0000-9999 is not 24 bytes");
    const auto again = parse_time(formatted);
    if (!again) std::fprintf(stderr, "fuzz_time: format_time gave %s\n", formatted.c_str());
    require(again.has_value() && *again == *parsed, "format_time's text does not parse back to the same time");
    if (in_format_time_form(text)) require(formatted == text, "a text in format_time's form does not format back to itself");
  }
}

void check_format(std::string_view bytes) {
  if (bytes.size() < 8) return;
  std::int64_t ms = 0;
  std::memcpy(&ms, bytes.data(), sizeof ms);
  const timestamp t{milliseconds{ms}};
  const std::string formatted = storewatch::cli::format_time(t);
  // An ISO 8601 UTC time, or (outside years 0000-9999) the raw milliseconds.
  require((!formatted.empty() && formatted.back() == 'Z') || formatted == std::to_string(ms) + "ms",
          "format_time's text is neither a UTC time nor the raw milliseconds");
  const auto back = storewatch::cli::parse_time(formatted);
  if (back && *back != t) {
    std::fprintf(stderr, "fuzz_time: format_time(%lld ms) = %s, which is %lld ms\n", static_cast<long long>(ms),
                 formatted.c_str(), static_cast<long long>(back->time_since_epoch().count()));
  }
  require(!back || *back == t, "format_time printed a different time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_text(bytes);
  check_format(bytes);
  return 0;
}
