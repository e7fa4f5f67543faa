// Fuzz target: journal cursors, "j1;<epoch>;<writer>=<offset>;..."
// (storewatch::detail::journal_cursor::decode in storewatch/journal/format.hpp).
//
// Properties checked (abort on violation):
// - decode does not throw; a rejection says why;
// - an accepted cursor has an epoch that is empty or a writer-style name,
//   and writer names of 1 to 128 of [A-Za-z0-9_-];
// - encode of an accepted cursor decodes to an equal cursor (epoch and
//   every writer's offset), and encoding that gives the same text: the
//   encoding is canonical.
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

namespace {

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_journal_cursor: property violated at line %u: %s\n",
               static_cast<unsigned>(where.line()), what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using storewatch::detail::journal_cursor;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  std::optional<journal_cursor> cursor;
  try {
    cursor = journal_cursor::decode(text, why);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fuzz_journal_cursor: decode threw %s\n", error.what());
    require(false, "decode threw");
  }
  if (!cursor) {
    require(!why.empty(), "decode rejected without saying why");
    return 0;
  }
  require(cursor->epoch.empty() || storewatch::detail::is_writer_name(cursor->epoch), "accepted a bad epoch");
  for (const auto& [writer, offset] : cursor->writers) {
    require(storewatch::detail::is_writer_name(writer), "accepted a bad writer name");
  }
  const std::string encoded = cursor->encode();
  std::string why_again;
  const auto again = journal_cursor::decode(encoded, why_again);
  if (!again) std::fprintf(stderr, "fuzz_journal_cursor: encoded cursor rejected: %s\n", why_again.c_str());
  require(again.has_value(), "an encoded cursor does not decode");
  require(again->epoch == cursor->epoch && again->writers == cursor->writers, "cursor round trip changed the cursor");
  require(again->encode() == encoded, "encoding a decoded cursor again gives a different text");
  return 0;
}
