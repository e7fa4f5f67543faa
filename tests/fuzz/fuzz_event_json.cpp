// Fuzz target: event JSON (storewatch::parse_event_json and the nlohmann
// from_json for storewatch::event).
//
// Properties checked (abort on violation):
// - parse_event_json either returns an event or throws std::system_error
//   with errc::invalid_event, as documented; nothing else escapes;
// - it agrees with the two-step path: nlohmann parses the text (without
//   exceptions) and `get<event>()` converts the DOM, throwing only
//   std::system_error with errc::invalid_event;
// - an accepted event has a non-empty id and name;
// - JSON round trip: to_json of the event, dumped and parsed again, gives
//   an equal event, and dumping that one gives the same text;
// - journal round trip: the event encoded as a journal record line decodes
//   to an equal event.
#include <storewatch/journal/format.hpp>
#include <storewatch/event.hpp>

#include <nlohmann/json.hpp>

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
  std::fprintf(stderr, "fuzz_event_json: property violated at line %u: %s\n", static_cast<unsigned>(where.line()),
               what);
  std::abort();
}

// Calls `parse`; returns its event, or nullopt when it threw the documented
// error. Anything else thrown is a violation.
template <class Parse>
std::optional<storewatch::event> documented(const char* what, Parse parse) {
  try {
    return parse();
  } catch (const std::system_error& error) {
    if (error.code() != storewatch::errc::invalid_event) {
      std::fprintf(stderr, "fuzz_event_json: %s threw %s\n", what, error.what());
      require(false, "threw a std::system_error other than errc::invalid_event");
    }
    return std::nullopt;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_event_json: %s threw %s\n", what, other.what());
    require(false, "threw something other than std::system_error (documented: errc::invalid_event)");
  }
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using storewatch::event;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto parsed = documented("parse_event_json", [&] { return storewatch::parse_event_json(text); });

  const auto dom = nlohmann::json::parse(text, nullptr, false);
  std::optional<event> converted;
  if (!dom.is_discarded()) converted = documented("get<event>()", [&] { return dom.get<event>(); });
  require(parsed.has_value() == converted.has_value(), "parse_event_json and parse + get<event>() disagree");
  if (!parsed) return 0;
  require(*parsed == *converted, "parse_event_json and parse + get<event>() give different events");
  require(!parsed->id.empty() && !parsed->name.empty(), "accepted an event with an empty id or name");

  const std::string dumped = nlohmann::json(*parsed).dump();
  const auto again = documented("parse_event_json of to_json", [&] { return storewatch::parse_event_json(dumped); });
  require(again.has_value(), "to_json of an accepted event is rejected");
  require(*again == *parsed, "JSON round trip changed the event");
  require(nlohmann::json(*again).dump() == dumped, "JSON round trip changed the text");

  const std::string line = storewatch::detail::encode_record(*parsed);
  std::string why;
  const auto decoded = storewatch::detail::decode_record(std::string_view(line).substr(0, line.size() - 1), why);
  if (!decoded) std::fprintf(stderr, "fuzz_event_json: decode_record: %s\n", why.c_str());
  require(decoded.has_value() && *decoded == *parsed, "journal record round trip changed the event");
  return 0;
}
