// Fuzz target: journal record lines (storewatch::detail::decode_record).
//
// Each input is decoded twice: as it is (which mostly exercises the framing:
// checksum digits, space, checksum), and as the part after the checksum with
// a correct checksum put in front (so the field decoding behind the CRC is
// reached too).
//
// Properties checked (abort on violation):
// - decode_record does not throw; a rejection says why;
// - an accepted record has a non-empty id and name;
// - re-encoding: encode_record of the event is one line (a single '\n', at
//   its end) that decodes to an equal event, and encoding that again gives
//   the same line (the encoding is canonical);
// - a line accepted as it is starts with the lowercase hex CRC-32 of the
//   rest, as encode_record writes it;
// - an accepted event can be written as JSON: a listener's checkpoint
//   lists its id (encode_checkpoint), and `storewatch tail` prints it as a
//   JSON object (nlohmann::json(e).dump(), as tools/storewatch.cpp's
//   event_json does); neither may throw.
#include <storewatch/checkpoint.hpp>
#include <storewatch/journal/format.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <source_location>
#include <string>
#include <string_view>

namespace {

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_journal_record: property violated at line %u: %s\n",
               static_cast<unsigned>(where.line()), what);
  std::abort();
}

std::string hex8(std::uint32_t value) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = hex[(value >> (28 - 4 * i)) & 0xF];
  return out;
}

void check_line(std::string_view line) {
  using storewatch::detail::decode_record;
  using storewatch::detail::encode_record;
  std::string why;
  std::optional<storewatch::event> decoded;
  try {
    decoded = decode_record(line, why);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fuzz_journal_record: decode_record threw %s\n", error.what());
    require(false, "decode_record threw");
  }
  if (!decoded) {
    require(!why.empty(), "decode_record rejected without saying why");
    return;
  }
  require(!decoded->id.empty() && !decoded->name.empty(), "accepted a record with an empty id or name");
  require(line.size() > 9 && line.substr(0, 8) == hex8(storewatch::detail::checksum(line.substr(9))),
          "accepted a line whose first 8 bytes are not the lowercase hex CRC-32 of the rest");

  const std::string encoded = encode_record(*decoded);
  require(!encoded.empty() && encoded.find('\n') == encoded.size() - 1, "an encoded record is not one line");
  std::string why_again;
  const auto again = decode_record(std::string_view(encoded).substr(0, encoded.size() - 1), why_again);
  if (!again) std::fprintf(stderr, "fuzz_journal_record: re-encoded record rejected: %s\n", why_again.c_str());
  require(again.has_value() && *again == *decoded, "record round trip changed the event");
  require(encode_record(*again) == encoded, "encoding a decoded record again gives a different line");

  try {
    (void)nlohmann::json(*decoded).dump();
    (void)storewatch::encode_checkpoint({"", {decoded->id}});
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fuzz_journal_record: writing an accepted record's event as JSON threw %s\n", error.what());
    require(false, "an accepted record's event cannot be written as JSON");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_line(bytes);
  check_line(hex8(storewatch::detail::checksum(bytes)) + ' ' + std::string(bytes));
  return 0;
}
