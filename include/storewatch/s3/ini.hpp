/// \file
/// A reader for the AWS shared config and credentials files
/// (~/.aws/config, ~/.aws/credentials): INI sections of `key = value`
/// lines, with the nested blocks AWS adds (`s3 =` followed by indented
/// `addressing_style = path` lines).
//
// Written here because Debian has no INI parser that reads AWS's nested
// blocks; it follows what the AWS CLI's parser (Python's configparser, then
// botocore's nested-value split) accepts, and refuses the rest with an error
// naming the file and line:
// - a line whose first non-blank character is '#' or ';' is a comment; a
//   '#' or ';' after a value is part of the value, as in the AWS CLI;
// - `[name]` starts a section; the name is trimmed; a section named twice in
//   one file is an error (the AWS CLI refuses that file too);
// - `key = value` or `key: value` (the first '=' or ':' splits): the key is
//   trimmed and lower-cased, the value trimmed; a key twice in a section is
//   an error;
// - a key with an empty value followed by lines indented deeper than it is
//   a nested block: each such line is `subkey = value` (only '='); a value
//   continued on indented lines is an error (the AWS CLI would read it as
//   one multi-line string no setting accepts);
// - anything else (a line with no '=' or ':', a key before any section) is
//   an error.
// Messages name the file, the line and the section or key, never a value:
// values can be secrets.
#pragma once

#include <storewatch/detail/text.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace storewatch::s3 {

/// One `key = value` of an AWS config file, or of a nested block.
struct ini_entry {
  std::string key{};                ///< lower-cased ("aws_access_key_id")
  std::string value{};              ///< trimmed; empty for a nested block
  std::size_t line = 0;             ///< 1-based line number of the key
  bool nested = false;              ///< true for `key =` followed by indented sub-keys
  std::vector<ini_entry> entries{};  ///< a nested block's sub-keys, in file order
};

/// One `[section]` and its entries, in file order.
struct ini_section {
  std::string name{};               ///< trimmed: "default", "profile dev"
  std::size_t line = 0;             ///< 1-based line number of the header
  std::vector<ini_entry> entries{};  ///< in file order

  /// The entry `key` (lower case), or nullptr.
  const ini_entry* find(std::string_view key) const {
    for (const auto& e : entries) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }
};

/// A parsed file: where it came from and its sections in file order.
struct ini_file {
  std::string origin{};                ///< what messages name it by (its path)
  std::vector<ini_section> sections{};  ///< in file order

  /// The section `name`, or nullptr.
  const ini_section* find(std::string_view name) const {
    for (const auto& s : sections) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
};

/// Malformed content of a config file: the message is "<file>:<line>: what".
struct ini_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

namespace detail {

inline bool is_ini_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

inline std::string_view ini_trim(std::string_view text) noexcept {
  while (!text.empty() && (is_ini_blank(text.front()) || text.front() == '\r')) text.remove_prefix(1);
  while (!text.empty() && (is_ini_blank(text.back()) || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

inline std::string ini_lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace detail

/// Parses `text`, the content of the AWS config or credentials file named
/// `origin` in messages. Throws `ini_error` ("<origin>:<line>: ...") for
/// malformed content; never shows a value.
inline ini_file parse_ini(std::string_view text, std::string_view origin) {
  using storewatch::detail::quote;
  ini_file file;
  file.origin = std::string(origin);
  const auto fail = [&](std::size_t line, const std::string& what) {
    return ini_error(file.origin + ':' + std::to_string(line) + ": " + what);
  };

  ini_section* section = nullptr;
  ini_entry* open = nullptr;  // the last entry, while indented lines may continue it
  std::size_t open_indent = 0;
  std::size_t number = 0;
  std::size_t position = 0;
  while (position < text.size()) {
    const auto end = text.find('\n', position);
    const auto raw = text.substr(position, end == std::string_view::npos ? std::string_view::npos : end - position);
    position = end == std::string_view::npos ? text.size() : end + 1;
    ++number;
    if (raw.find('\0') != std::string_view::npos) throw fail(number, "has a NUL byte");
    const auto line = detail::ini_trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    std::size_t indent = 0;
    while (indent < raw.size() && detail::is_ini_blank(raw[indent])) ++indent;

    if (open != nullptr && indent > open_indent) {
      // A line of `open`'s nested block.
      if (!open->nested) {
        throw fail(number, "the value of " + quote(open->key) + " (line " + std::to_string(open->line) +
                               ") goes on over indented lines; only a key with nothing after '=' may have "
                               "indented sub-keys");
      }
      const auto equals = line.find('=');
      if (equals == std::string_view::npos) {
        throw fail(number, "expected 'name = value' in the block of " + quote(open->key) + " (line " +
                               std::to_string(open->line) + ")");
      }
      ini_entry sub;
      sub.key = detail::ini_lower(detail::ini_trim(line.substr(0, equals)));
      sub.value = std::string(detail::ini_trim(line.substr(equals + 1)));
      sub.line = number;
      if (sub.key.empty()) throw fail(number, "a name is missing before '='");
      for (const auto& e : open->entries) {
        if (e.key == sub.key) {
          throw fail(number, quote(sub.key) + " is set twice in the block of " + quote(open->key) + " (line " +
                                 std::to_string(e.line) + " first)");
        }
      }
      open->entries.push_back(std::move(sub));
      continue;
    }
    if (open != nullptr && open->nested && open->entries.empty()) open->nested = false;  // `key =` alone: empty
    open = nullptr;

    if (line.front() == '[') {
      if (line.back() != ']') throw fail(number, "a section header needs a closing ']'");
      ini_section next;
      next.name = std::string(detail::ini_trim(line.substr(1, line.size() - 2)));
      next.line = number;
      if (next.name.empty()) throw fail(number, "the section name is empty");
      if (const auto* before = file.find(next.name)) {
        throw fail(number, "section " + quote(next.name) + " appears twice (line " + std::to_string(before->line) +
                               " first)");
      }
      file.sections.push_back(std::move(next));
      section = &file.sections.back();
      continue;
    }

    const auto split = line.find_first_of("=:");
    if (split == std::string_view::npos) throw fail(number, "expected [section], 'name = value' or a comment");
    if (section == nullptr) throw fail(number, "a setting before the first [section]");
    ini_entry entry;
    entry.key = detail::ini_lower(detail::ini_trim(line.substr(0, split)));
    entry.value = std::string(detail::ini_trim(line.substr(split + 1)));
    entry.line = number;
    entry.nested = entry.value.empty();
    if (entry.key.empty()) throw fail(number, "a name is missing before '" + std::string(1, line[split]) + "'");
    if (const auto* before = section->find(entry.key)) {
      throw fail(number, quote(entry.key) + " is set twice in section " + quote(section->name) + " (line " +
                             std::to_string(before->line) + " first)");
    }
    section->entries.push_back(std::move(entry));
    open = &section->entries.back();
    open_indent = indent;
  }
  if (open != nullptr && open->nested && open->entries.empty()) open->nested = false;
  return file;
}

}  // namespace storewatch::s3
