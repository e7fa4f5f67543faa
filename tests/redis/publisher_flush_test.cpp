// redis::hint_publisher::async_flush, what a writer that exits right after
// its store operation needs: hints published before the first connection is
// up wait for it; the flush completes once the server answered them, at
// once when Redis cannot be reached (not at its bound), and with
// operation_aborted when the publisher goes first.
#include <storewatch/redis/hints.hpp>

#include "redis/server.hpp"
#include "support/run.hpp"

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace publisher_flush_test {

using namespace storewatch;
using namespace std::chrono_literals;
using test_support::run_until;

namespace {

// Options with a channel prefix of the test's own, quick retries, and the
// reports counted.
redis::hint_options test_options(std::vector<std::string>& reports) {
  redis::hint_options options;
  options.channel_prefix = "flush:" + std::to_string(std::random_device{}()) + ':';
  options.backoff.initial = 20ms;
  options.backoff.max = 200ms;
  options.on_error = [&reports](std::error_code, std::string_view message) { reports.emplace_back(message); };
  return options;
}

}  // namespace

TEST_CASE("hints published as the publisher starts wait for its first connection, and async_flush waits for them",
          "[server]") {
  asio::io_context io;
  std::vector<std::string> reports;
  const auto options = test_options(reports);
  const auto where = test_support::fixture_redis();
  redis::hint_subscriber subscriber(io.get_executor(), where, options);
  int heard = 0;
  auto registration = subscriber.listen("bob", [&] { ++heard; });
  REQUIRE(run_until(io, [&] { return subscriber.ready(); }));

  // A writer that has just started: its connection is not made yet.
  redis::hint_publisher publisher(io.get_executor(), where, options);
  REQUIRE_FALSE(publisher.ready());
  publisher.publish("bob");
  publisher.publish("bob");
  std::optional<std::error_code> flushed;
  publisher.async_flush(60s, [&](std::error_code ec) { flushed = ec; });
  REQUIRE(run_until(io, [&] { return flushed.has_value(); }));
  CHECK_FALSE(*flushed);
  CHECK(publisher.sent() == 2);
  CHECK(publisher.dropped() == 0);
  REQUIRE(run_until(io, [&] { return heard == 2; }));

  // Connected: many hints, one flush after them.
  for (int i = 0; i < 100; ++i) publisher.publish("bob");
  flushed.reset();
  publisher.async_flush(60s, [&](std::error_code ec) { flushed = ec; });
  REQUIRE(run_until(io, [&] { return flushed.has_value(); }));
  CHECK_FALSE(*flushed);
  CHECK(publisher.sent() == 102);
  // Nothing to wait for: at once (not inside the call).
  flushed.reset();
  publisher.async_flush(60s, [&](std::error_code ec) { flushed = ec; });
  CHECK_FALSE(flushed.has_value());
  REQUIRE(run_until(io, [&] { return flushed.has_value(); }));
  CHECK_FALSE(*flushed);
  CHECK(reports.empty());
}

TEST_CASE("async_flush with no Redis server completes at the first failed attempt, saying the hints are lost",
          "[server]") {
  asio::io_context io;
  std::vector<std::string> reports;
  // A port of this test's own that refuses connections: bound, not
  // listening (a killed server's port could be taken by another's).
  asio::ip::tcp::socket held(io);
  held.open(asio::ip::tcp::v4());
  held.bind({asio::ip::address_v4::loopback(), 0});
  const auto where =
      redis::parse_url("redis://127.0.0.1:" + std::to_string(held.local_endpoint().port()) + "/0", nullptr);
  redis::hint_publisher publisher(io.get_executor(), where, test_options(reports));
  publisher.publish("bob");
  std::optional<std::error_code> flushed;
  const auto started = std::chrono::steady_clock::now();
  publisher.async_flush(60s, [&](std::error_code ec) { flushed = ec; });
  REQUIRE(run_until(io, [&] { return flushed.has_value(); }));
  CHECK(std::chrono::steady_clock::now() - started < 30s);  // not the 60 s bound
  CHECK(*flushed == std::errc::not_connected);
  CHECK(publisher.dropped() == 1);
  CHECK(publisher.sent() == 0);
  CHECK(reports.size() == 1);
}

TEST_CASE("async_flush ends with timed_out at its bound, and with operation_aborted when the publisher goes",
          "[server]") {
  asio::io_context io;
  std::vector<std::string> reports;
  const auto options = test_options(reports);
  // A server stopped with SIGSTOP: the kernel accepts the connection, and
  // nothing answers the PUBLISH.
  test_support::own_redis server;
  const auto where = server.url();
  server.pause();
  redis::hint_publisher publisher(io.get_executor(), where, options);
  publisher.publish("bob");
  std::optional<std::error_code> bounded;
  publisher.async_flush(200ms, [&](std::error_code ec) { bounded = ec; });
  REQUIRE(run_until(io, [&] { return bounded.has_value(); }));
  CHECK(*bounded == std::errc::timed_out);

  std::optional<std::error_code> aborted;
  {
    redis::hint_publisher going(io.get_executor(), where, options);
    going.publish("bob");
    going.async_flush(60s, [&](std::error_code ec) { aborted = ec; });
    io.poll();  // the flush registered
  }
  REQUIRE(run_until(io, [&] { return aborted.has_value(); }));
  CHECK(*aborted == asio::error::operation_aborted);
  server.resume();
}

}  // namespace publisher_flush_test
