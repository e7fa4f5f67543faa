// The server's clock as the S3 client learns it (s3/client.hpp): HTTP Date
// headers parsed, and the offset narrowed down from responses whose Date has
// whole seconds, with no server.
#include <storewatch/s3/client.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace server_clock_test {

using namespace std::chrono_literals;
namespace sd = storewatch::s3::detail;

namespace {

std::chrono::sys_seconds at(int y, unsigned m, unsigned d, int hh, int mm, int ss) {
  return std::chrono::sys_days{std::chrono::year{y} / m / d} + std::chrono::hours{hh} + std::chrono::minutes{mm} +
         std::chrono::seconds{ss};
}

}  // namespace

TEST_CASE("HTTP Date headers: IMF-fixdate parsed, other date forms refused") {
  CHECK(sd::parse_server_time("Sun, 06 Nov 1994 08:49:37 GMT") == at(1994, 11, 6, 8, 49, 37));
  CHECK(sd::parse_server_time("Fri, 04 Dec 2026 17:34:40 GMT") == at(2026, 12, 4, 17, 34, 40));
  CHECK(sd::parse_server_time("Thu, 29 Feb 2024 23:59:59 GMT") == at(2024, 2, 29, 23, 59, 59));
  for (const std::string bad : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sunday, 06-Nov-94 08:49:37 GMT",
                                "Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 06 Xyz 1994 08:49:37 GMT",
                                "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
                                "Sun, 06 Nov 1994 08:49:3x GMT", "Sun, 06 ovN 1994 08:49:37 GMT"}) {
    INFO("date " << bad);
    CHECK_FALSE(sd::parse_server_time(bad));
  }
}

TEST_CASE("server clock: each response bounds the offset by its Date's second and the round trip, and they narrow it") {
  using std::chrono::system_clock;
  const system_clock::time_point local{at(2026, 12, 4, 12, 0, 0).time_since_epoch()};
  sd::clock_estimate clock;
  CHECK_FALSE(clock.known);
  // The server is 2.3 s ahead. Sent at 0.0, answered at 0.2: its Date says
  // 12:00:02 (it read 2.3 to 2.5).
  clock.add("Fri, 04 Dec 2026 12:00:02 GMT", local, local + 200ms);
  REQUIRE(clock.known);
  CHECK(clock.low == 1800ms);   // 2 - 0.2
  CHECK(clock.high == 3000ms);  // 3 - 0
  // Sent at 0.7, answered at 0.8: it read 3.0 to 3.1, Date 12:00:03.
  clock.add("Fri, 04 Dec 2026 12:00:03 GMT", local + 700ms, local + 800ms);
  CHECK(clock.low == 2200ms);   // 3 - 0.8
  CHECK(clock.high == 3000ms);  // min(3, 4 - 0.7)
  // Not a date, or answered before sent: ignored.
  clock.add("yesterday", local, local + 1ms);
  clock.add("Fri, 04 Dec 2026 12:00:03 GMT", local + 1s, local);
  CHECK(clock.low == 2200ms);
  CHECK(clock.high == 3000ms);
  // The local clock was set back 10 s (the server now reads 12.3 s ahead of
  // it, 13.3 at local 1.0): the bounds no longer overlap, and start afresh.
  clock.add("Fri, 04 Dec 2026 12:00:13 GMT", local + 1s, local + 1100ms);
  CHECK(clock.low == 11'900ms);
  CHECK(clock.high == 13'000ms);
}

}  // namespace server_clock_test
