// Regression tests for the bugs the libFuzzer targets (tests/fuzz/) found.
// Each input here is also in the target's corpus under tests/fuzz/corpus/,
// so tests/fuzz/run.sh replays it too; these tests say what must hold
// without a fuzzing build.
#include "common/fixture.hpp"

#include "../tools/storewatch/time_text.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace fuzz_regression_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

/// The std::system_error that `f` throws, or nullopt when it throws nothing.
/// Any other exception escapes, and Catch reports it with its message.
template <class F>
std::optional<std::system_error> system_error_from(F&& f) {
  try {
    f();
  } catch (const std::system_error& error) {
    return error;
  }
  return std::nullopt;
}

/// `body` as a journal record line with a correct checksum, without its newline.
std::string record_line(std::string_view body) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto sum = detail::checksum(body);
  std::string line(8, '0');
  for (int i = 0; i < 8; ++i) line[static_cast<std::size_t>(i)] = hex[(sum >> (28 - 4 * i)) & 0xF];
  return line + ' ' + std::string(body);
}

}  // namespace

// fuzz_event_json, corpus regression_number_overflow*: nlohmann throws
// json::out_of_range (406, "number overflow"), not a parse_error, for a
// number beyond a double's range, and parse_event_json let it escape.
TEST_CASE("fuzz regression: event JSON with a number too large for a double is an invalid_event error") {
  for (const std::string text : {"9E999", R"({"id":"x","name":"N","data":"","occurred_at":1e999})",
                                 R"({"id":"x","name":"N","data":"","occurred_at":1,"attributes":[-1e400]})"}) {
    INFO(text);
    const auto error = system_error_from([&] { (void)parse_event_json(text); });
    REQUIRE(error);
    CHECK(error->code() == make_error_code(errc::invalid_event));
    CHECK_THAT(std::string(error->what()), Catch::StartsWith("event JSON: "));
  }
}

// fuzz_checkpoint, corpus regression_number_overflow*: the same
// json::out_of_range escaped decode_checkpoint, and so the constructor of
// `checkpoint` (a listener's, or `storewatch tail --checkpoint FILE`'s).
TEST_CASE("fuzz regression: a checkpoint with a number too large for a double is an invalid_cursor error naming the origin") {
  for (const std::string text : {"4E400", R"({"format":1,"cursor":"","delivered_after_cursor":[],"x":-1e400})"}) {
    INFO(text);
    const auto error = system_error_from([&] { (void)decode_checkpoint(text, "bob.checkpoint"); });
    REQUIRE(error);
    CHECK(error->code() == make_error_code(errc::invalid_cursor));
    CHECK_THAT(std::string(error->what()), Catch::StartsWith("bob.checkpoint: "));
  }

  temp_dir dir;
  const auto file = dir.path() / "bob.checkpoint";
  std::ofstream(file) << "4E400";
  const auto error = system_error_from([&] { checkpoint loaded(file); });
  REQUIRE(error);
  CHECK(error->code() == make_error_code(errc::invalid_cursor));
  CHECK_THAT(std::string(error->what()), Catch::Contains(file.string()));
}

// fuzz_journal_record, corpus regression_invalid_utf8_id*: decode_record
// accepts fields that are not UTF-8, and nlohmann refuses to dump such
// strings (type_error 316): `storewatch tail --format json` and a
// checkpoint listing the event's id then throw.
TEST_CASE("fuzz regression: a journal record whose text is not UTF-8 never makes JSON output throw") {
  for (const std::string& body : {std::string("\xF4\t7\t\t7\t"), std::string("id-1\tNOTE\talice222\t7\tbad \xFF data"),
                                 std::string("id-1\tNOTE\t\xC3\x28\t7\tdata")}) {
    INFO(detail::quote(body));
    std::string why;
    const auto decoded = detail::decode_record(record_line(body), why);
    if (!decoded) {
      CHECK_FALSE(why.empty());  // rejected, and said why: nothing reaches JSON
      continue;
    }
    CHECK_NOTHROW(nlohmann::json(*decoded).dump());
    CHECK_NOTHROW(encode_checkpoint({"", {decoded->id}}));
  }
}

// The same bug through a listener: its checkpoint listed the id, saving it
// threw json::type_error, which listener.hpp's save_checkpoint does not
// catch (it catches std::system_error), so the exception left io.run().
TEST_CASE("fuzz regression: a listener with a checkpoint survives a journal record whose id is not UTF-8") {
  temp_dir dir;
  asio::io_context io;
  const auto journals = dir.path() / "journals";
  detail::journal_writer writer(journals, "writer-1", 1 << 20);
  event crafted;
  crafted.id = "\xF4";
  crafted.name = "NOTE";
  crafted.data = "crafted";
  crafted.occurred_at = timestamp{7ms};
  writer.append("bob123", detail::encode_record(crafted));
  writer.append("bob123", detail::encode_record(make_event("NOTE", "after", "writer-1-1")));
  writer.sync();

  journal_source source(io.get_executor(), journals / "bob123");
  listener_options options;
  options.poller.poll_interval = 1h;
  options.checkpoint = dir.path() / "bob.checkpoint";
  options.checkpoint_every = 1;  // saves while the crafted id is listed
  std::vector<std::string> errors;
  options.on_error = [&](std::error_code, std::string_view message) { errors.emplace_back(message); };
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> delivered;
  listener.add_event_listener([&](const event& e) { delivered.push_back(e.data); });
  listener.start();
  REQUIRE(run_until(io, [&] { return !delivered.empty() && delivered.back() == "after"; }));
  listener.stop();
  run_to_idle(io);
  CHECK_NOTHROW(load_checkpoint(dir.path() / "bob.checkpoint"));
}

// fuzz_time, corpus regression_format_time_*: format_time (which prints
// every event's occurred_at, any 64-bit value from a journal or JSON)
// printed a year modulo 2^16 (std::chrono::year holds a short), so 67561
// came out as 2025, and for times below -9223372036828800000 ms its
// `t - floor<days>(t)` overflowed (undefined behaviour, caught when this
// runs under UBSan).
TEST_CASE("fuzz regression: format_time never prints another time than the one it is given") {
  using ms = std::chrono::milliseconds;
  constexpr auto min = std::numeric_limits<std::int64_t>::min();
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  for (const std::int64_t value : {std::int64_t{2069852054400000}, std::int64_t{-5028268183484629191}, min, min + 1,
                                   std::int64_t{-9223372036828800001}, max, std::int64_t{0},
                                   std::int64_t{253402300799999}}) {
    const timestamp t{ms{value}};
    const auto text = cli::format_time(t);
    INFO(value << " ms printed as " << text);
    CHECK_FALSE(text.empty());
    const auto back = cli::parse_time(text);
    CHECK((!back || *back == t));
  }
  CHECK(cli::format_time(timestamp{ms{253402300799999}}) == "9999-12-31T23:59:59.999Z");
}

}  // namespace fuzz_regression_test
