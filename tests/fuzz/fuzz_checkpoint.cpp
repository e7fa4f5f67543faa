// Fuzz target: checkpoint files (storewatch::decode_checkpoint).
//
// Properties checked (abort on violation):
// - decode_checkpoint either returns a state or throws std::system_error
//   with errc::invalid_cursor whose message starts with the origin it was
//   given, as documented; nothing else escapes;
// - encode_checkpoint of an accepted state decodes to an equal state, and
//   encoding that gives the same text (the encoding is canonical).
// The cursor inside an accepted checkpoint is also given to the journal
// cursor decoder, as a listener on a local_store would.
#include <storewatch/checkpoint.hpp>
#include <storewatch/journal/format.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <system_error>

namespace {

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_checkpoint: property violated at line %u: %s\n", static_cast<unsigned>(where.line()),
               what);
  std::abort();
}

constexpr std::string_view origin = "fuzz input";

std::optional<storewatch::checkpoint_state> documented(std::string_view text) {
  try {
    return storewatch::decode_checkpoint(text, origin);
  } catch (const std::system_error& error) {
    const std::string_view what = error.what();
    if (error.code() != storewatch::errc::invalid_cursor || !what.starts_with(std::string(origin) + ": ")) {
      std::fprintf(stderr, "fuzz_checkpoint: decode_checkpoint threw %s\n", error.what());
      require(false, "threw a std::system_error other than errc::invalid_cursor naming the origin");
    }
    return std::nullopt;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_checkpoint: decode_checkpoint threw %s\n", other.what());
    require(false, "threw something other than std::system_error (documented: errc::invalid_cursor)");
  }
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto state = documented(text);
  if (!state) return 0;
  const std::string encoded = storewatch::encode_checkpoint(*state);
  const auto again = documented(encoded);
  require(again.has_value(), "an encoded checkpoint does not decode");
  require(*again == *state, "checkpoint round trip changed the state");
  require(storewatch::encode_checkpoint(*again) == encoded, "encoding a decoded checkpoint again gives a different text");
  std::string why;
  (void)storewatch::detail::journal_cursor::decode(state->cursor, why);
  return 0;
}
