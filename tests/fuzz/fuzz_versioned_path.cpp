// Fuzz target: versioned paths (storewatch::versioned_path::try_parse / parse).
//
// Properties checked (abort on violation):
// - parse and try_parse agree: parse returns what try_parse returns, or
//   throws std::system_error with errc::invalid_versioned_path exactly when
//   try_parse returns nullopt (and then `why` is set);
// - whatever try_parse accepts formats back to exactly the input text (as
//   its documentation promises), and that text parses to the same value;
//   event::path() on the text gives the same value;
// - built the other way round, from a path, a user and a timestamp taken
//   from the input: the text of a versioned_path parses back to it if and
//   only if path and user are non-empty valid UTF-8 without NUL or U+2739 and
//   the timestamp is not negative.
#include <storewatch/event.hpp>

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
  std::fprintf(stderr, "fuzz_versioned_path: property violated at line %u: %s\n",
               static_cast<unsigned>(where.line()), what);
  std::abort();
}

bool fits_a_part(std::string_view part) {
  return !part.empty() && storewatch::detail::is_valid_utf8(part) && part.find('\0') == std::string_view::npos &&
         part.find(storewatch::version_separator) == std::string_view::npos;
}

void check_text(std::string_view text) {
  using storewatch::versioned_path;
  std::string why;
  const auto parsed = versioned_path::try_parse(text, &why);
  try {
    const auto thrown_or_parsed = versioned_path::parse(text);
    require(parsed.has_value(), "parse accepted what try_parse rejected");
    require(thrown_or_parsed == *parsed, "parse and try_parse disagree on the value");
  } catch (const std::system_error& error) {
    require(!parsed.has_value(), "parse threw for what try_parse accepted");
    require(error.code() == storewatch::errc::invalid_versioned_path, "parse threw an error code other than invalid_versioned_path");
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_versioned_path: parse threw %s\n", other.what());
    require(false, "parse threw something other than std::system_error");
  }
  if (!parsed) {
    require(!why.empty(), "try_parse rejected without saying why");
    return;
  }
  require(!parsed->path.empty() && !parsed->user.empty() && parsed->timestamp_ms >= 0,
          "try_parse accepted an empty path or user or a negative timestamp");
  const auto text_again = parsed->to_string();
  require(text_again == text, "an accepted versioned path does not format back to its text");
  const auto again = versioned_path::try_parse(text_again);
  require(again.has_value() && *again == *parsed, "the formatted text does not parse to the same value");
  storewatch::event e;
  e.data = std::string(text);
  require(e.path() == parsed, "event::path() disagrees with try_parse");
}

// The input as (8 bytes of timestamp, path, NUL, user).
void check_built(std::string_view bytes) {
  using storewatch::versioned_path;
  if (bytes.size() < 8) return;
  versioned_path built;
  std::memcpy(&built.timestamp_ms, bytes.data(), sizeof built.timestamp_ms);
  bytes.remove_prefix(8);
  const auto nul = bytes.find('\0');
  built.path = std::string(bytes.substr(0, nul));
  built.user = nul == std::string_view::npos ? std::string("u") : std::string(bytes.substr(nul + 1));
  const bool should_parse = fits_a_part(built.path) && fits_a_part(built.user) && built.timestamp_ms >= 0;
  const auto parsed = versioned_path::try_parse(built.to_string());
  require(parsed.has_value() == should_parse, "a built versioned path's text parses iff its parts are valid");
  if (parsed) require(*parsed == built, "a built versioned path's text parses to something else");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_text(bytes);
  check_built(bytes);
  return 0;
}
