/// \file
/// The journal's bytes: the record line, the void line, and the cursor. No I/O.
//
// One journal record per line:
//
//   <crc32, 8 hex digits> <id>\t<name>\t<actor>\t<occurred_at ms>\t<data>[\t<attributes JSON>]\n
//
// Fields escape '\\', tab and newline as "\\\\", "\\t" and "\\n", so a line
// holds exactly one record and a reader can resynchronise at the next
// newline. The checksum covers everything after the space: a torn or
// corrupted record is recognised and never delivered. A text format keeps
// journals readable with ordinary tools; it is parsed without a JSON parser
// (the attributes, when there are any, excepted), which makes catching up on
// a long journal several times faster than JSON lines would be.
//
// The records of an operation that failed are overwritten with a void line
// (dashes, then a newline) of the same length, which readers skip. The
// layout of a journal's folder is described in journal/layout.hpp.
#pragma once

#include <storewatch/detail/text.hpp>
#include <storewatch/event.hpp>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace storewatch::detail {

inline std::uint32_t checksum(std::string_view bytes) noexcept {
  return static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

inline void append_escaped(std::string& out, std::string_view field) {
  for (const char c : field) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

// Unescapes `field` into `out`; false for a dangling or unknown escape.
// The text between escapes is copied in runs (most fields have none).
inline bool unescape(std::string_view field, std::string& out) {
  out.clear();
  auto escape = field.find('\\');
  if (escape == std::string_view::npos) {
    out.assign(field);
    return true;
  }
  out.reserve(field.size());
  do {
    out.append(field.substr(0, escape));
    if (escape + 1 == field.size()) return false;
    switch (field[escape + 1]) {
      case '\\': out += '\\'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      default: return false;
    }
    field.remove_prefix(escape + 2);
    escape = field.find('\\');
  } while (escape != std::string_view::npos);
  out.append(field);
  return true;
}

// The checksum's 8 lowercase hex digits at the front of `line`, as
// `encode_record` writes them; false for anything else.
inline bool parse_checksum_digits(std::string_view line, std::uint32_t& value) noexcept {
  std::uint32_t result = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    const char c = line[i];
    std::uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint32_t>(c - 'a' + 10);
    } else {
      return false;
    }
    result = (result << 4) | digit;
  }
  value = result;
  return true;
}

// A base-10 integer as std::from_chars reads one (an optional '-', then one
// or more digits, nothing else) that fits in 64 bits signed.
inline bool parse_int64(std::string_view text, std::int64_t& value) noexcept {
  const bool negative = text.starts_with('-');
  if (negative) text.remove_prefix(1);
  const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
  std::uint64_t magnitude = 0;
  if (!parse_digits(text, limit, magnitude)) return false;
  value = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
  return true;
}

/// The record line for `e`, newline included.
inline std::string encode_record(const event& e) {
  std::string line(9, ' ');
  line.reserve(9 + e.id.size() + e.name.size() + e.actor.size() + e.data.size() + 32);
  append_escaped(line, e.id);
  line += '\t';
  append_escaped(line, e.name);
  line += '\t';
  append_escaped(line, e.actor);
  line += '\t';
  line += std::to_string(e.occurred_at.time_since_epoch().count());
  line += '\t';
  append_escaped(line, e.data);
  if (!e.attributes.is_null()) {
    line += '\t';
    // Never throws: bytes that are not UTF-8 become U+FFFD.
    append_escaped(line, e.attributes.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  static constexpr char hex[] = "0123456789abcdef";
  const auto sum = checksum(std::string_view(line).substr(9));
  for (int i = 0; i < 8; ++i) line[static_cast<std::size_t>(i)] = hex[(sum >> (28 - 4 * i)) & 0xF];
  line += '\n';
  return line;
}

/// Decodes one line (without its newline) into `e`, a default-constructed
/// event. On failure returns false and sets `why`; `e` is then unspecified.
/// The scanner decodes into the vector it keeps, with no event moved.
inline bool decode_record(std::string_view line, event& e, std::string& why) {
  if (line.size() < 10 || line[8] != ' ') {
    why = "not a record (expected 8 hex digits, a space and tab-separated fields)";
    return false;
  }
  std::uint32_t expected = 0;
  if (!parse_checksum_digits(line, expected)) {
    why = "not a record (bad checksum digits)";
    return false;
  }
  std::string_view rest = line.substr(9);
  if (checksum(rest) != expected) {
    why = "checksum mismatch (torn or corrupted record)";
    return false;
  }
  std::string_view fields[6];
  std::size_t count = 0;
  for (;;) {
    const auto tab = rest.find('\t');
    if (count == 6) {
      why = "too many fields";
      return false;
    }
    fields[count++] = rest.substr(0, tab);
    if (tab == std::string_view::npos) break;
    rest.remove_prefix(tab + 1);
  }
  if (count < 5) {
    why = "expected at least 5 fields (id, name, actor, occurred_at, data), found " + std::to_string(count);
    return false;
  }
  std::int64_t milliseconds = 0;
  if (!parse_int64(fields[3], milliseconds)) {
    why = "field occurred_at is not an integer";
    return false;
  }
  e.occurred_at = timestamp{std::chrono::milliseconds{milliseconds}};
  if (!unescape(fields[0], e.id) || !unescape(fields[1], e.name) || !unescape(fields[2], e.actor) ||
      !unescape(fields[4], e.data)) {
    why = "bad escape sequence";
    return false;
  }
  if (e.id.empty() || e.name.empty()) {
    why = e.id.empty() ? "field id is empty" : "field name is empty";
    return false;
  }
  // Every writer writes UTF-8 (ids and names are checked ASCII, data is
  // checked on publish); other bytes would break every JSON form of the
  // event (checkpoints, output), so such a record is corrupt. Checked once
  // over the escaped text from id to data: escapes and separators are
  // ASCII, which neither makes nor breaks a UTF-8 sequence, so that text is
  // UTF-8 exactly when each unescaped field is.
  const auto from = fields[0].data();
  if (!is_valid_utf8(std::string_view(from, static_cast<std::size_t>(fields[4].data() + fields[4].size() - from)))) {
    why = "a field is not UTF-8";
    return false;
  }
  if (count == 6) {
    std::string attributes;
    if (!unescape(fields[5], attributes)) {
      why = "bad escape sequence";
      return false;
    }
    e.attributes = nlohmann::json::parse(attributes, nullptr, false);
    if (e.attributes.is_discarded()) {
      why = "field attributes is not JSON";
      return false;
    }
  }
  return true;
}

/// Decodes one line (without its newline). On failure returns nullopt and
/// sets `why`.
inline std::optional<event> decode_record(std::string_view line, std::string& why) {
  event e;
  if (!decode_record(line, e, why)) return std::nullopt;
  return e;
}

/// True for a name a writer folder, a writer or an epoch may have: 1 to 128
/// of A-Z a-z 0-9 '-' '_'.
inline bool is_writer_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

/// A decoded journal cursor: the journal's epoch and, per writer, the byte
/// offset (across its segments) up to which it was read.
struct journal_cursor {
  std::string epoch;
  std::map<std::string, std::uint64_t> writers;

  std::string encode() const {
    std::string out = "j1;" + epoch;
    for (const auto& [writer, offset] : writers) {
      out += ';';
      out += writer;
      out += '=';
      out += std::to_string(offset);
    }
    return out;
  }

  /// Decodes `text`; nullopt (with `why`) when it is not a journal cursor.
  static std::optional<journal_cursor> decode(std::string_view text, std::string& why) {
    journal_cursor cursor;
    if (text.empty()) return cursor;
    if (!text.starts_with("j1;")) {
      why = "does not start with \"j1;\"";
      return std::nullopt;
    }
    text.remove_prefix(3);
    const auto next_field = [&text] { return take_field(text); };
    cursor.epoch = next_field();
    if (!cursor.epoch.empty() && !is_writer_name(cursor.epoch)) {
      why = "has a bad epoch " + quote(cursor.epoch);
      return std::nullopt;
    }
    while (!text.empty()) {
      const auto field = next_field();
      const auto equals = field.find('=');
      std::uint64_t offset = 0;
      if (equals == std::string_view::npos || !is_writer_name(field.substr(0, equals)) ||
          !parse_decimal(field.substr(equals + 1), offset)) {
        why = "has a bad writer entry " + quote(field);
        return std::nullopt;
      }
      cursor.writers[std::string(field.substr(0, equals))] = offset;
    }
    return cursor;
  }
};

/// A void line over `size` bytes (at least 1) that ends the bytes it covers
/// with a newline: dashes, then '\n'. A reader skips it without a report.
/// Any tail of it is void too, so a reader positioned inside it
/// resynchronises at its end. Covering one byte takes two ("-\n"): the
/// bytes voided are always the last of their file, so it may grow by one.
inline std::string void_line(std::size_t size) {
  std::string line(std::max<std::size_t>(size, 2), '-');
  line.back() = '\n';
  return line;
}

/// True for a line (without its newline) that `void_line` wrote.
inline bool is_void_line(std::string_view line) noexcept {
  return !line.empty() && line.find_first_not_of('-') == std::string_view::npos;
}

}  // namespace storewatch::detail
