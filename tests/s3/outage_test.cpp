// S3 outages: a listener whose requests go through a TCP proxy that is cut
// and restored keeps its stream open, retries with backoff, and delivers
// every event written meanwhile once the server is reachable again; a
// store operation during an outage fails with a clear error and leaves
// nothing behind.
#include "common/fixture.hpp"
#include "common/proxy.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"

#include <storewatch/store/s3_store.hpp>

#include <set>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace outage_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

/// `config` with its requests sent to the proxy.
s3::config through(const s3::config& config, const s3::test::tcp_proxy& proxy) {
  auto via = config;
  via.endpoint.port = proxy.port();
  return via;
}

asio::ip::tcp::endpoint server_of(const s3::config& config) {
  return {asio::ip::make_address(config.endpoint.host), config.endpoint.port};
}

/// Quick to give up, so that an outage shows as failed polls within a test.
s3::client_options impatient() {
  s3::client_options options;
  options.max_attempts = 3;
  options.retry.initial = 20ms;
  options.retry.max = 100ms;
  options.retry_budget = 1s;
  options.http.connect_timeout = 1s;
  options.http.request_timeout = 2s;
  return options;
}

}  // namespace

TEST_CASE("S3 outage: the listener keeps its stream open, retries with backoff, and delivers everything afterwards") {
  s3_kind kind;
  auto alice = kind.open("alice");  // straight to the server: writes go on during the outage
  s3::test::tcp_proxy proxy(kind.io, server_of(kind.config));
  s3::s3_store bob(kind.io.get_executor(), through(kind.config, proxy), "bob");
  s3::s3_journal_options journal_options;
  journal_options.client = impatient();
  auto source = bob.events(journal_options);

  listener_options options;
  options.poller.poll_interval = 20ms;
  options.poller.backoff.initial = 50ms;
  options.poller.backoff.max = 200ms;
  std::vector<std::string> errors;
  options.on_error = [&](std::error_code, std::string_view message) { errors.emplace_back(message); };
  event_listener listener(kind.io.get_executor(), source, options);
  std::vector<event> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e); });
  listener.start();

  for (int i = 0; i < 5; ++i) alice.publish_event("note", "before-" + std::to_string(i), {"bob"});
  REQUIRE(run_until(kind.io, [&] { return got.size() >= 5; }));

  proxy.down();
  for (int i = 0; i < 20; ++i) alice.publish_event("note", "during-" + std::to_string(i), {"bob"});
  // The outage is noticed: polls fail and are retried, the stream stays open.
  REQUIRE(run_until(kind.io, [&] { return listener.stats().poll_errors >= 3; }));
  CHECK(listener.running());
  CHECK(got.size() == 5);
  CHECK(listener.stats().retries >= 2);
  REQUIRE_FALSE(errors.empty());
  CHECK_THAT(errors.front(), Catch::Contains("port " + std::to_string(proxy.port())));  // curl names the address

  proxy.up();
  for (int i = 0; i < 5; ++i) alice.publish_event("note", "after-" + std::to_string(i), {"bob"});
  REQUIRE(run_until(kind.io, [&] { return got.size() >= 30; }));
  const auto polls = listener.stats().polls;
  REQUIRE(run_until(kind.io, [&] { return listener.stats().polls >= polls + 5; }));  // a repeat would arrive now

  std::vector<std::string> expected;
  for (int i = 0; i < 5; ++i) expected.push_back("before-" + std::to_string(i));
  for (int i = 0; i < 20; ++i) expected.push_back("during-" + std::to_string(i));
  for (int i = 0; i < 5; ++i) expected.push_back("after-" + std::to_string(i));
  CHECK(data_of(got) == expected);
  std::set<std::string> ids;
  for (const auto& e : got) ids.insert(e.id);
  CHECK(ids.size() == got.size());
  CHECK(listener.running());
  listener.stop();
  REQUIRE(run_until(kind.io, [&] { return !listener.running(); }));
}

TEST_CASE("S3 outage: an operation that cannot reach the server fails naming the request, and writes nothing") {
  s3_kind kind;
  s3::test::tcp_proxy proxy(kind.io, server_of(kind.config));
  s3::s3_store_options store_options;
  store_options.client = impatient();
  test_store<s3::s3_store> alice(kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(),
                                                                          through(kind.config, proxy), "alice",
                                                                          store_options));
  alice.create_file("kept.txt", "x");
  const auto before = kind.snapshot();
  proxy.down();
  const auto f = failure_of([&] { alice.create_file("lost.txt", "y"); });
  CHECK(f.code == errc::store_io_failed);
  CHECK_THAT(f.what, Catch::Contains("PUT") && Catch::Contains("lost.txt"));
  CHECK(kind.snapshot() == before);
  proxy.up();
  CHECK(alice.create_file("again.txt", "z").path == "again.txt");
}

}  // namespace outage_test
