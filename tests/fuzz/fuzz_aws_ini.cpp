// Fuzz target: the AWS shared config and credentials file reader
// (storewatch::s3::parse_ini), which reads files users and tools write by
// hand, with AWS's nested `s3 =` blocks.
//
// Properties checked (abort on violation):
// - parse_ini either returns or throws s3::ini_error whose message starts
//   "<origin>:<line>: " with a line number within the input; nothing else
//   escapes;
// - it is deterministic: a second parse gives the same file or message;
// - a file's invariants hold: section names are non-empty, trimmed and
//   unique; keys are non-empty, lower case, trimmed and unique in their
//   section or block; values are trimmed; line numbers grow; only a nested
//   entry has sub-keys, and a nested entry has some;
// - round trip: the file written back in the plain form (`[name]`,
//   `key = value`, `key =` then `  sub = value` lines) parses to an equal file.
#include <storewatch/s3/ini.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <source_location>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

namespace s3 = storewatch::s3;

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_aws_ini: property violated at line %u: %s\n", static_cast<unsigned>(where.line()), what);
  std::abort();
}

constexpr std::string_view origin = "fuzz.ini";

std::variant<s3::ini_file, std::string> parse(std::string_view text) {
  try {
    return s3::parse_ini(text, origin);
  } catch (const s3::ini_error& error) {
    const std::string message = error.what();
    require(message.starts_with(std::string(origin) + ':'), "the message does not start with the origin");
    const auto rest = std::string_view(message).substr(origin.size() + 1);
    const auto colon = rest.find(": ");
    require(colon != std::string_view::npos && colon > 0, "no line number in the message");
    std::size_t line = 0;
    for (const char c : rest.substr(0, colon)) {
      require(c >= '0' && c <= '9', "the line number is not a number");
      line = line * 10 + static_cast<std::size_t>(c - '0');
    }
    const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    require(line >= 1 && line <= lines, "the line number is outside the input");
    return message;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_aws_ini: threw %s\n", other.what());
    require(false, "threw something other than s3::ini_error");
  }
  return std::string();
}

bool trimmed(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; };
  return text.empty() || (!blank(text.front()) && !blank(text.back()));
}

void check_entries(const std::vector<s3::ini_entry>& entries, std::size_t after) {
  std::size_t last = after;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    require(!e.key.empty() && trimmed(e.key) && trimmed(e.value), "a key is empty or a key or value untrimmed");
    require(std::none_of(e.key.begin(), e.key.end(), [](char c) { return c >= 'A' && c <= 'Z'; }),
            "a key is not lower case");
    require(e.line > last, "line numbers do not grow");
    last = e.line;
    for (std::size_t j = 0; j < i; ++j) require(entries[j].key != e.key, "a key appears twice");
    require(e.nested == !e.entries.empty(), "a nested entry without sub-keys, or sub-keys without nesting");
    require(!e.nested || e.value.empty(), "a nested entry has a value");
    for (const auto& sub : e.entries) require(!sub.nested, "a sub-key is nested");
    check_entries(e.entries, e.line);
    if (!e.entries.empty()) last = e.entries.back().line;
  }
}

std::string write(const s3::ini_file& file) {
  std::string out;
  for (const auto& section : file.sections) {
    out += '[' + section.name + "]\n";
    for (const auto& e : section.entries) {
      out += e.key + " = " + e.value + '\n';
      for (const auto& sub : e.entries) out += "  " + sub.key + " = " + sub.value + '\n';
    }
  }
  return out;
}

bool same(const std::vector<s3::ini_entry>& a, const std::vector<s3::ini_entry>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].key != b[i].key || a[i].value != b[i].value || a[i].nested != b[i].nested ||
        !same(a[i].entries, b[i].entries)) {
      return false;
    }
  }
  return true;
}

bool same(const s3::ini_file& a, const s3::ini_file& b) {
  if (a.sections.size() != b.sections.size()) return false;
  for (std::size_t i = 0; i < a.sections.size(); ++i) {
    if (a.sections[i].name != b.sections[i].name || !same(a.sections[i].entries, b.sections[i].entries)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto first = parse(text);
  const auto second = parse(text);
  if (const auto* message = std::get_if<std::string>(&first)) {
    require(std::holds_alternative<std::string>(second) && std::get<std::string>(second) == *message,
            "a second parse gave another outcome");
    return 0;
  }
  const auto& file = std::get<s3::ini_file>(first);
  require(std::holds_alternative<s3::ini_file>(second) && same(file, std::get<s3::ini_file>(second)),
          "a second parse gave another outcome");
  std::size_t last = 0;
  for (std::size_t i = 0; i < file.sections.size(); ++i) {
    const auto& section = file.sections[i];
    require(!section.name.empty() && trimmed(section.name), "a section name is empty or untrimmed");
    require(section.line > last, "section line numbers do not grow");
    for (std::size_t j = 0; j < i; ++j) require(file.sections[j].name != section.name, "a section appears twice");
    check_entries(section.entries, section.line);
    last = section.entries.empty() ? section.line : section.entries.back().line;
    if (!section.entries.empty() && !section.entries.back().entries.empty()) {
      last = section.entries.back().entries.back().line;
    }
  }
  const auto again = parse(write(file));
  require(std::holds_alternative<s3::ini_file>(again), "the file written back does not parse");
  require(same(file, std::get<s3::ini_file>(again)), "the file written back parses to another file");
  return 0;
}
