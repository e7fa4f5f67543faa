// Tests for storewatch/event.hpp: versioned paths, events and their JSON form.
#include "common/fixture.hpp"

#include <storewatch/detail/names.hpp>
#include <storewatch/event.hpp>
#include <storewatch/text.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace event_test {

namespace {

using storewatch::errc;
using storewatch::event;
using storewatch::versioned_path;
using namespace std::string_literals;

const std::string star = "\xE2\x9C\xB9";  // U+2739

/// Matches a std::system_error with `code` whose what() contains every fragment.
class system_error_with : public Catch::MatcherBase<std::system_error> {
 public:
  system_error_with(errc code, std::vector<std::string> fragments) : code_(code), fragments_(std::move(fragments)) {}

  bool match(const std::system_error& error) const override {
    if (error.code() != code_) return false;
    const std::string what = error.what();
    for (const auto& fragment : fragments_) {
      if (what.find(fragment) == std::string::npos) return false;
    }
    return true;
  }

  std::string describe() const override {
    std::ostringstream out;
    out << "is a system_error with " << storewatch::make_error_code(code_).message() << " containing";
    for (const auto& fragment : fragments_) out << " [" << fragment << "]";
    return out.str();
  }

 private:
  errc code_;
  std::vector<std::string> fragments_;
};

/// Asserts `text` is rejected by try_parse with a reason containing `reason`,
/// and by parse() with errc::invalid_versioned_path and the same reason.
void require_rejected(const std::string& text, const std::string& reason) {
  INFO("input: " << storewatch::detail::quote(text));
  std::string why;
  const auto parsed = versioned_path::try_parse(text, &why);
  CHECK_FALSE(parsed.has_value());
  CHECK_THAT(why, Catch::Contains(reason));
  CHECK_THAT(why, Catch::StartsWith("invalid versioned path"));
  CHECK_FALSE(versioned_path::try_parse(text).has_value());  // no `why` given: still total
  CHECK_THROWS_MATCHES(versioned_path::parse(text), std::system_error,
                       system_error_with(errc::invalid_versioned_path, {reason}));
}

event sample_event() {
  event e;
  e.id = "alice-42";
  e.name = "SHARE";
  e.data = "SharedEvents/a.txt" + star + "alice222_1761135341619";
  e.actor = "alice";
  e.occurred_at = storewatch::timestamp{std::chrono::milliseconds{1761135341619}};
  return e;
}

nlohmann::json sample_json() {
  return nlohmann::json{{"id", "alice-42"},
                        {"name", "SHARE"},
                        {"data", "x" + star + "alice_1"},
                        {"actor", "alice"},
                        {"occurred_at", 1761135341619}};
}

std::string sample_json_without(const std::string& field) {
  auto j = sample_json();
  j.erase(field);
  return j.dump();
}

}  // namespace

// ---------------------------------------------------------------- versioned_path

TEST_CASE("versioned path parses the example") {
  const std::string text = "SharedEvents/a.txt" + star + "alice222_1761135341619";
  const auto parsed = versioned_path::try_parse(text);
  REQUIRE(parsed.has_value());
  CHECK(parsed->path == "SharedEvents/a.txt");
  CHECK(parsed->user == "alice222");
  CHECK(parsed->timestamp_ms == 1761135341619);
  CHECK(parsed->created_at().time_since_epoch().count() == 1761135341619);
  CHECK(parsed->to_string() == text);
  CHECK(versioned_path::parse(text) == *parsed);
}

TEST_CASE("versioned path formats and parses back") {
  const versioned_path original{"dir/sub dir/é file.txt", "bob", 0};
  const auto text = original.to_string();
  CHECK(text == "dir/sub dir/é file.txt" + star + "bob_0");
  CHECK(versioned_path::parse(text) == original);
}

TEST_CASE("versioned path user may contain underscores") {
  const std::string text = "a_b/c_d.txt" + star + "first_last_name_12345";
  const auto parsed = versioned_path::parse(text);
  CHECK(parsed.path == "a_b/c_d.txt");
  CHECK(parsed.user == "first_last_name");
  CHECK(parsed.timestamp_ms == 12345);
  CHECK(parsed.to_string() == text);
}

TEST_CASE("versioned path accepts INT64_MAX") {
  const auto max = std::numeric_limits<std::int64_t>::max();
  const std::string text = "p" + star + "u_9223372036854775807";
  const auto parsed = versioned_path::parse(text);
  CHECK(parsed.timestamp_ms == max);
  CHECK(parsed.to_string() == text);
}

TEST_CASE("versioned path rejects a missing separator") {
  require_rejected("SharedEvents/a.txt_alice_1761135341619", "no version separator");
}

TEST_CASE("versioned path rejects two separators") {
  require_rejected("a" + star + "b" + star + "alice_1", "more than one version separator");
  require_rejected("a" + star + star + "alice_1", "more than one version separator");
}

TEST_CASE("versioned path rejects empty text") { require_rejected("", "no version separator"); }

TEST_CASE("versioned path rejects an empty path") { require_rejected(star + "alice_1", "empty path"); }

TEST_CASE("versioned path rejects an empty user") { require_rejected("a.txt" + star + "_1", "empty user"); }

TEST_CASE("versioned path rejects a missing underscore") {
  require_rejected("a.txt" + star + "alice1761135341619", "no '_'");
}

TEST_CASE("versioned path rejects an empty timestamp") {
  require_rejected("a.txt" + star + "alice_", "empty timestamp");
}

TEST_CASE("versioned path rejects non-numeric timestamps") {
  for (const std::string digits : {"12a", "-5", "+5", " 5", "5 ", "0x10", "1.5", "1e3"}) {
    require_rejected("a.txt" + star + "alice_" + digits, "timestamp is not a decimal number");
  }
}

TEST_CASE("versioned path rejects a timestamp beyond int64") {
  require_rejected("a.txt" + star + "alice_99999999999999999999", "does not fit in 64 bits");
  require_rejected("a.txt" + star + "alice_9223372036854775808", "does not fit in 64 bits");
}

TEST_CASE("versioned path rejects invalid UTF-8") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"lone continuation byte", "a\x80" + star + "u_1"},
      {"truncated sequence", "a\xE2\x9C" + star + "u_1"},
      {"truncated at end", "a" + star + "u_1\xF0\x9F\x98"},
      {"overlong slash", "a\xC0\xAF" + star + "u_1"},
      {"surrogate", "a\xED\xA0\x80" + star + "u_1"},
      {"above U+10FFFF", "a\xF4\x90\x80\x80" + star + "u_1"},
      {"invalid lead byte", "a\xFF" + star + "u_1"},
  };
  for (const auto& [name, text] : cases) {
    INFO(name);
    require_rejected(text, "not valid UTF-8");
  }
}

TEST_CASE("versioned path rejects a NUL byte") {
  require_rejected("a\0b"s + star + "u_1", "NUL");
  require_rejected("a" + star + "u\0v_1"s, "NUL");
  require_rejected("a" + star + "u_1\0"s, "NUL");
}

TEST_CASE("versioned path error quotes the input safely") {
  std::string why;
  REQUIRE_FALSE(versioned_path::try_parse("bad\x01text", &why));
  CHECK_THAT(why, Catch::Contains("\"bad\\x01text\""));
}

TEST_CASE("versioned path with leading zeros round trips or is rejected") {
  // Parsing is documented as the inverse of to_string: a non-canonical
  // timestamp must either be rejected or survive a round trip.
  for (const std::string& text : {"a" + star + "u_0123", "a" + star + "u_00", "a" + star + "u_01"}) {
    INFO(text);
    const auto parsed = versioned_path::try_parse(text);
    if (parsed) CHECK(parsed->to_string() == text);
  }
}

TEST_CASE("versioned path parsing survives random input") {
  std::mt19937 random(20240611);
  const std::vector<std::string> pieces{star, "_", "0", "1", "9", "a", "/", "\xE2", "\x9C", "\xB9", "\xC3\xA9",
                                        "\x80", "\xFF", "\xF0\x9F\x98\x80", std::string(1, '\0'), "-", " "};
  const auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(random); };
  std::size_t accepted = 0;
  std::size_t round_trip_failures = 0;
  std::size_t silent_rejections = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int length = pick(0, 24);
    for (int i = 0; i < length; ++i) {
      if (round % 2 == 0) {
        text += pieces[static_cast<std::size_t>(pick(0, static_cast<int>(pieces.size()) - 1))];
      } else {
        text += static_cast<char>(pick(0, 255));
      }
    }
    if (round % 4 == 1) {
      // Mostly the valid shape, with random bytes in the path.
      text.insert(0, 1, 'p');
      text += star;
      text += "user_";
      text += std::to_string(round);
    } else if (round % 4 == 3) {
      // The valid shape with a random digit string: overflow, leading zeros.
      text = "dir/f.txt" + star + "u_";
      const int digits = pick(1, 21);
      for (int i = 0; i < digits; ++i) text += static_cast<char>('0' + pick(0, 9));
    }
    std::string why;
    const auto parsed = versioned_path::try_parse(text, &why);
    if (parsed) {
      ++accepted;
      if (parsed->to_string() != text && round_trip_failures++ == 0) {
        FAIL_CHECK("round trip changed " << storewatch::detail::quote(text) << " into "
                                         << storewatch::detail::quote(parsed->to_string()));
      }
    } else if (why.empty() && silent_rejections++ == 0) {
      FAIL_CHECK("rejected without a reason: " << storewatch::detail::quote(text));
    }
  }
  CHECK(round_trip_failures == 0);
  CHECK(silent_rejections == 0);
  // The generator must reach the accepting branch, or the round-trip check proves nothing.
  CHECK(accepted > 1000);
}

// ------------------------------------------------------------------------ event

TEST_CASE("event path parses data") {
  const auto e = sample_event();
  const auto path = e.path();
  REQUIRE(path.has_value());
  CHECK(path->path == "SharedEvents/a.txt");
  CHECK(path->user == "alice222");
  CHECK(path->timestamp_ms == 1761135341619);
  CHECK_FALSE(storewatch::test::make_event("custom", "{\"not\":\"a path\"}").path().has_value());
}

TEST_CASE("event JSON round trip without attributes") {
  const auto e = sample_event();
  const nlohmann::json j = e;
  CHECK(j.at("id") == "alice-42");
  CHECK(j.at("name") == "SHARE");
  CHECK(j.at("data") == e.data);
  CHECK(j.at("actor") == "alice");
  CHECK(j.at("occurred_at") == 1761135341619);
  CHECK_FALSE(j.contains("attributes"));
  CHECK_FALSE(j.contains("cursor"));
  CHECK(j.get<event>() == e);
  CHECK(storewatch::parse_event_json(j.dump()) == e);
}

TEST_CASE("event JSON round trip with attributes") {
  auto e = sample_event();
  e.attributes = {{"size", 12}, {"tags", {"a", "b"}}, {"nested", {{"ok", true}}}};
  const nlohmann::json j = e;
  REQUIRE(j.contains("attributes"));
  CHECK(j.at("attributes") == e.attributes);
  const auto back = storewatch::parse_event_json(j.dump());
  CHECK(back == e);
  CHECK(back.attributes.at("size") == 12);
}

TEST_CASE("event JSON does not carry the cursor") {
  auto e = sample_event();
  e.cursor = "journal:17";
  const auto back = nlohmann::json(e).get<event>();
  CHECK(back.cursor.empty());
}

TEST_CASE("event JSON actor is optional") {
  auto j = sample_json();
  j.erase("actor");
  const auto e = j.get<event>();
  CHECK(e.actor.empty());
  CHECK(e.id == "alice-42");
  CHECK(e.attributes.is_null());
}

TEST_CASE("event JSON ignores unknown fields") {
  auto j = sample_json();
  j["future_field"] = {{"anything", 1}};
  j["version"] = 7;
  const auto e = storewatch::parse_event_json(j.dump());
  CHECK(e.id == "alice-42");
  CHECK(e.name == "SHARE");
  CHECK(e.occurred_at.time_since_epoch().count() == 1761135341619);
  CHECK(e.attributes.is_null());
}

TEST_CASE("event JSON missing required field is named") {
  for (const std::string field : {"id", "name", "data", "occurred_at"}) {
    INFO(field);
    CHECK_THROWS_MATCHES(storewatch::parse_event_json(sample_json_without(field)), std::system_error,
                         system_error_with(errc::invalid_event, {"missing required field \"" + field + "\""}));
    CHECK_THROWS_MATCHES(nlohmann::json::parse(sample_json_without(field)).get<event>(), std::system_error,
                         system_error_with(errc::invalid_event, {"\"" + field + "\""}));
  }
}

TEST_CASE("event JSON occurred_at as string is named") {
  auto j = sample_json();
  j["occurred_at"] = "2025-10-22T12:00:00Z";
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(j.dump()), std::system_error,
                       system_error_with(errc::invalid_event, {"\"occurred_at\"", "string"}));
}

TEST_CASE("event JSON occurred_at as fraction is rejected") {
  auto j = sample_json();
  j["occurred_at"] = 1.5;
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(j.dump()), std::system_error,
                       system_error_with(errc::invalid_event, {"\"occurred_at\""}));
}

TEST_CASE("event JSON occurred_at beyond int64 is rejected") {
  // 2^64 - 1 is an unsigned JSON integer; it must not wrap to -1 ms.
  const std::string text =
      R"({"id":"i","name":"n","data":"d","occurred_at":18446744073709551615})";
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(text), std::system_error,
                       system_error_with(errc::invalid_event, {"\"occurred_at\""}));
}

TEST_CASE("event JSON name as number is named") {
  auto j = sample_json();
  j["name"] = 5;
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(j.dump()), std::system_error,
                       system_error_with(errc::invalid_event, {"\"name\"", "must be a string", "number"}));
}

TEST_CASE("event JSON other text fields of wrong type are named") {
  for (const std::string field : {"id", "data", "actor"}) {
    INFO(field);
    auto j = sample_json();
    j[field] = nlohmann::json::array({1});
    CHECK_THROWS_MATCHES(storewatch::parse_event_json(j.dump()), std::system_error,
                         system_error_with(errc::invalid_event, {"\"" + field + "\"", "must be a string"}));
  }
}

TEST_CASE("event JSON empty name is rejected") {
  auto j = sample_json();
  j["name"] = "";
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(j.dump()), std::system_error,
                       system_error_with(errc::invalid_event, {"\"name\"", "empty"}));
}

TEST_CASE("event JSON empty id is rejected") {
  auto j = sample_json();
  j["id"] = "";
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(j.dump()), std::system_error,
                       system_error_with(errc::invalid_event, {"\"id\"", "empty"}));
}

TEST_CASE("event JSON that is not an object is rejected") {
  for (const std::string text : {"[]", "42", "\"event\"", "null"}) {
    INFO(text);
    CHECK_THROWS_MATCHES(storewatch::parse_event_json(text), std::system_error,
                         system_error_with(errc::invalid_event, {"expected an object"}));
  }
}

TEST_CASE("event JSON syntax error names the byte offset") {
  // The stray 'x' is the 8th byte.
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(R"({"id": x})"), std::system_error,
                       system_error_with(errc::invalid_event, {"syntax error at byte 8"}));
  CHECK_THROWS_MATCHES(storewatch::parse_event_json(""), std::system_error,
                       system_error_with(errc::invalid_event, {"syntax error at byte"}));
  CHECK_THROWS_MATCHES(storewatch::parse_event_json("{\"id\":\"a\xFF\"}"), std::system_error,
                       system_error_with(errc::invalid_event, {"syntax error at byte"}));
}

// ------------------------------------------------------------------ detail text

TEST_CASE("is_valid_utf8 accepts valid text") {
  using storewatch::detail::is_valid_utf8;
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("\xC3\xA9"));                   // é
  CHECK(is_valid_utf8("\xE2\x9C\xB9"));               // ✹
  CHECK(is_valid_utf8("\xF0\x9F\x98\x80"));           // 😀
  CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));           // U+10FFFF
  CHECK(is_valid_utf8("\xEE\x80\x80"));               // U+E000, just past the surrogates
  CHECK(is_valid_utf8("a\0b"s));                      // NUL is well-formed
  CHECK(is_valid_utf8("caf\xC3\xA9 \xE2\x9C\xB9 \xF0\x9F\x98\x80!"));
}

TEST_CASE("is_valid_utf8 rejects malformed text") {
  using storewatch::detail::is_valid_utf8;
  CHECK_FALSE(is_valid_utf8("\x80"));
  CHECK_FALSE(is_valid_utf8("\xBF"));
  CHECK_FALSE(is_valid_utf8("\xC3"));
  CHECK_FALSE(is_valid_utf8("\xE2\x9C"));
  CHECK_FALSE(is_valid_utf8("\xF0\x9F\x98"));
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));
  CHECK_FALSE(is_valid_utf8("\xC1\xBF"));
  CHECK_FALSE(is_valid_utf8("\xE0\x80\xAF"));
  CHECK_FALSE(is_valid_utf8("\xF0\x80\x80\xAF"));
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));
  CHECK_FALSE(is_valid_utf8("\xED\xBF\xBF"));
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));
  CHECK_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(is_valid_utf8("\xF8\x88\x80\x80\x80"));
  CHECK_FALSE(is_valid_utf8("\xFE"));
  CHECK_FALSE(is_valid_utf8("\xFF"));
  CHECK_FALSE(is_valid_utf8("\xC3" "a"));
}

// The eight-bytes-at-a-time paths of is_valid_utf8 and
// hidden_character_problem must say what a byte-by-byte reading says,
// wherever the interesting bytes fall in a word.
namespace {

bool utf8_byte_by_byte(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto length = storewatch::detail::decode_utf8(text.substr(i, 4)).length;
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string hidden_byte_by_byte(std::string_view text) {
  using namespace storewatch::detail;
  while (!text.empty()) {
    const auto c = decode_utf8(text.substr(0, 4));
    if (c.length == 0) return "is not valid UTF-8";
    if (is_control(c.code) || is_invisible_formatting(c.code)) return "U+" + code_point_hex(c.code);
    text.remove_prefix(c.length);
  }
  return {};
}

}  // namespace

TEST_CASE("is_valid_utf8 and hidden_character_problem agree with a byte-by-byte reading at every offset") {
  using storewatch::detail::hidden_character_problem;
  using storewatch::detail::is_valid_utf8;
  const std::vector<std::string> middles = {
      "", "\xC3\xA9", "\xE2\x9C\xB9", "\xF0\x9F\x98\x80", "\xC3", "\xE2\x9C", "\x80", "\xFF", "\xED\xA0\x80",
      "\xC0\xAF", "\x01", "\x1F", "\x7F", "\x00"s, "\xC2\x85", "\xE2\x80\xAE", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xEF\xBB\xBF",
      " ", "~", "\xE2\x9C\xB9\x7F", "\x20\x7E\x1F"};
  for (const auto& middle : middles) {
    for (std::size_t before = 0; before <= 17; ++before) {
      for (std::size_t after = 0; after <= 17; ++after) {
        const auto text = std::string(before, 'a') + middle + std::string(after, 'z');
        INFO(storewatch::detail::quote(text));
        REQUIRE(is_valid_utf8(text) == utf8_byte_by_byte(text));
        const auto expected = hidden_byte_by_byte(text);
        const auto problem = hidden_character_problem(text);
        REQUIRE(problem.empty() == expected.empty());
        if (!expected.empty() && expected.starts_with("U+")) CHECK(problem.find(expected) != std::string::npos);
      }
    }
  }
  std::mt19937 random(18);
  for (int round = 0; round < 20000; ++round) {
    std::string text(random() % 40, ' ');
    for (auto& c : text) c = static_cast<char>(random() % 4 == 0 ? random() % 256 : 0x20 + random() % 0x5F);
    INFO(storewatch::detail::quote(text));
    REQUIRE(is_valid_utf8(text) == utf8_byte_by_byte(text));
    REQUIRE(hidden_character_problem(text).empty() == hidden_byte_by_byte(text).empty());
  }
}

TEST_CASE("quote escapes control bytes quotes and backslashes") {
  using storewatch::detail::quote;
  CHECK(quote("abc") == "\"abc\"");
  CHECK(quote("") == "\"\"");
  CHECK(quote("a\nb\tc\x01\x7F") == R"("a\x0ab\x09c\x01\x7f")");
  CHECK(quote("a\0b"s) == R"("a\x00b")");
  CHECK(quote("say \"hi\" \\ bye") == R"("say \"hi\" \\ bye")");
}

TEST_CASE("the line and paragraph separators are escaped in output") {
  using storewatch::detail::quote;
  // U+2028 and U+2029 break the line in text viewers and some terminals: a
  // name holding one could pass for two lines of output.
  CHECK(quote("a\xE2\x80\xA8" "b\xE2\x80\xA9" "c") == R"("a\u2028b\u2029c")");
  CHECK(storewatch::displayable("notes\xE2\x80\xA8" "fake line.txt") == R"(notes\u2028fake line.txt)");
  // Their neighbour is ordinary punctuation.
  CHECK(quote("a\xE2\x80\xA7" "b") == "\"a\xE2\x80\xA7" "b\"");
  // Names may hold them (files stored under such names stay readable): only
  // what is printed is escaped.
  CHECK(storewatch::detail::path_problem("notes\xE2\x80\xA8" "fake line.txt").empty());
}

TEST_CASE("quote keeps valid UTF-8 and escapes invalid UTF-8") {
  using storewatch::detail::quote;
  CHECK(quote("caf\xC3\xA9 \xE2\x9C\xB9") == "\"caf\xC3\xA9 \xE2\x9C\xB9\"");
  CHECK(quote("a\xFF" "b") == R"("a\xffb")");
  CHECK(quote("\xC3\xA9\x80") == R"("\xc3\xa9\x80")");
  const auto quoted = quote("x\xED\xA0\x80y");
  CHECK(quoted == R"("x\xed\xa0\x80y")");
  CHECK(storewatch::detail::is_valid_utf8(quoted));
}

TEST_CASE("quote truncates long text") {
  using storewatch::detail::quote;
  const std::string long_text(1000, 'a');
  const auto quoted = quote(long_text);
  CHECK(quoted == "\"" + std::string(200, 'a') + "\"... (1000 bytes)");
  CHECK(quote("abcdef", 3) == "\"abc\"... (6 bytes)");
  CHECK(quote("abc", 3) == "\"abc\"");
}

TEST_CASE("quote does not cut a character in two") {
  using storewatch::detail::quote;
  // "éé" is 4 bytes; cutting after 3 would split the second é.
  const auto quoted = quote("\xC3\xA9\xC3\xA9", 3);
  CHECK(quoted == "\"\xC3\xA9\"... (4 bytes)");
  CHECK(storewatch::detail::is_valid_utf8(quoted));
  const std::string stars = star + star + star;
  for (std::size_t limit = 0; limit <= stars.size(); ++limit) {
    INFO(limit);
    CHECK(storewatch::detail::is_valid_utf8(quote(stars, limit)));
  }
}

TEST_CASE("quote output is always valid UTF-8 without control bytes") {
  std::mt19937 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const int length = std::uniform_int_distribution<int>(0, 40)(random);
    for (int i = 0; i < length; ++i) text += static_cast<char>(std::uniform_int_distribution<int>(0, 255)(random));
    const auto quoted = storewatch::detail::quote(text, 16);
    INFO(storewatch::detail::quote(text));
    REQUIRE(storewatch::detail::is_valid_utf8(quoted));
    for (const char c : quoted) REQUIRE(static_cast<unsigned char>(c) >= 0x20);
  }
}

}  // namespace event_test
