// One journal record per line: "<crc32 of the JSON, 8 hex digits> <event JSON>\n".
//
// A line is self-checking, so a reader can tell a complete record from a torn
// or corrupted one and skip to the next newline; a text format keeps the
// journals readable with ordinary tools.
#pragma once

#include <storewatch/event.hpp>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace storewatch::detail {

inline std::uint32_t checksum(std::string_view bytes) noexcept {
  return static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

/// The record line for `e`, newline included.
inline std::string encode_record(const event& e) {
  const std::string json = nlohmann::json(e).dump();
  static constexpr char hex[] = "0123456789abcdef";
  std::string line(9, ' ');
  const auto sum = checksum(json);
  for (int i = 0; i < 8; ++i) line[static_cast<std::size_t>(i)] = hex[(sum >> (28 - 4 * i)) & 0xF];
  line += json;
  line += '\n';
  return line;
}

/// Decodes one line (without its newline). On failure returns nullopt and
/// sets `why`.
inline std::optional<event> decode_record(std::string_view line, std::string& why) {
  if (line.size() < 10 || line[8] != ' ') {
    why = "not a record (expected 8 hex digits, a space and JSON)";
    return std::nullopt;
  }
  std::uint32_t expected = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    const char c = line[i];
    std::uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint32_t>(c - 'a' + 10);
    } else {
      why = "not a record (bad checksum digits)";
      return std::nullopt;
    }
    expected = (expected << 4) | digit;
  }
  const auto json = line.substr(9);
  if (checksum(json) != expected) {
    why = "checksum mismatch (torn or corrupted record)";
    return std::nullopt;
  }
  try {
    return parse_event_json(json);
  } catch (const std::system_error& error) {
    why = error.what();
    return std::nullopt;
  }
}

}  // namespace storewatch::detail
