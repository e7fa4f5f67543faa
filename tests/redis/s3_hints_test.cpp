// Hints between an s3_store and s3_journal_sources, on the s3rver and
// redis-server fixtures: a listener polling every 60 s gets an event at once
// thanks to a hint; a forged hint brings a poll, not an event; a Redis
// server killed mid-stream leaves polling at the interval, loses nothing,
// and hints work again once it is back.
#include <storewatch/poller.hpp>
#include <storewatch/redis/hints.hpp>
#include <storewatch/store/s3_store.hpp>
#include <storewatch/stream.hpp>

#include "redis/processes.hpp"
#include "redis/server.hpp"
#include "support/run.hpp"
#include "support/s3_server.hpp"

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace s3_hints_test {

using namespace storewatch;
using namespace std::chrono_literals;
using test_support::run_until;

namespace {

// A poller feeding its own stream, started at construction.
struct listening {
  listening(asio::io_context& io, s3::s3_journal_source& source, std::chrono::milliseconds interval)
      : stream(io, 64), loop(source, stream, {.poll_interval = interval, .on_error = [this](std::error_code, std::string_view m) {
                                               errors.emplace_back(m);
                                             }}) {
    loop.start();
  }
  ~listening() { loop.stop(); }

  std::uint64_t polls() const { return stream.stats().snapshot().polls; }
  // The data of the events taken so far.
  std::vector<std::string> taken() {
    event e;
    while (stream.try_next(e)) data.push_back(e.name == event_name::gap ? "GAP" : e.data);
    return data;
  }

  event_stream stream;
  poller<s3::s3_journal_source, asio::any_io_executor> loop;
  std::vector<std::string> errors;
  std::vector<std::string> data;
};

// Redis options with a channel prefix of the test's own and quick retries.
redis::hint_options test_hint_options(std::vector<std::string>& reports) {
  redis::hint_options options;
  options.channel_prefix = "test:" + test_support::random_prefix();
  options.backoff.initial = 20ms;
  options.backoff.max = 200ms;
  options.on_error = [&reports](std::error_code, std::string_view message) { reports.emplace_back(message); };
  return options;
}

// Alice's NOTE for bob, stored (and hinted) before this returns.
void note_for_bob(asio::io_context& io, s3::s3_store& alice, const std::string& data) {
  bool done = false;
  std::error_code failure;
  const std::string name = "NOTE";
  alice.async_publish_event(name, data, {"bob"}, [&](std::error_code ec, std::vector<std::string>) {
    failure = ec;
    done = true;
  });
  REQUIRE(run_until(io, [&] { return done; }));
  REQUIRE_FALSE(failure);
}

// A forger of hints for bob, a subscriber, and bob's store, on the fixtures.
struct forged_hints {
  asio::io_context io;
  std::vector<std::string> reports;
  redis::hint_options options = test_hint_options(reports);
  s3::config where = test_support::test_server_config();
  redis::hint_publisher forger{io.get_executor(), test_support::fixture_redis(), options};
  std::shared_ptr<redis::hint_subscriber> subscriber =
      std::make_shared<redis::hint_subscriber>(io.get_executor(), test_support::fixture_redis(), options);
  s3::s3_store bob{io.get_executor(), where, "bob"};
};

// A redis-server of the test's own (to kill), a publisher and a subscriber
// on it, and bob's store, on the s3rver fixture.
struct own_server_hints {
  asio::io_context io;
  test_support::own_redis server;
  std::vector<std::string> reports;
  redis::hint_options options = test_hint_options(reports);
  s3::config where = test_support::test_server_config();
  std::shared_ptr<redis::hint_publisher> publisher =
      std::make_shared<redis::hint_publisher>(io.get_executor(), server.url(), options);
  std::shared_ptr<redis::hint_subscriber> subscriber =
      std::make_shared<redis::hint_subscriber>(io.get_executor(), server.url(), options);
  s3::s3_store bob{io.get_executor(), where, "bob"};
};

}  // namespace

TEST_CASE("a hint brings an S3 listener polling every 60 s the event at once, and only the hinted listener", "[server]") {
  asio::io_context io;
  std::vector<std::string> reports;
  const auto options = test_hint_options(reports);
  const auto where = test_support::test_server_config();
  auto publisher = std::make_shared<redis::hint_publisher>(io.get_executor(), test_support::fixture_redis(), options);
  auto subscriber = std::make_shared<redis::hint_subscriber>(io.get_executor(), test_support::fixture_redis(), options);
  s3::s3_store alice(io.get_executor(), where, "alice", {.hints = publisher});
  s3::s3_store bob(io.get_executor(), where, "bob");
  auto hinted_source = bob.events({.hints = subscriber});
  auto unhinted_source = bob.events();
  listening hinted(io, hinted_source, 60s);
  listening unhinted(io, unhinted_source, 60s);
  // Both have polled once (nothing there yet) and now wait out their 60 s.
  REQUIRE(run_until(io, [&] {
    return publisher->ready() && subscriber->ready() && hinted.polls() == 1 && unhinted.polls() == 1;
  }));

  note_for_bob(io, alice, "hello");
  REQUIRE(run_until(io, [&] { return hinted.taken().size() == 1; }, test_support::generous));
  CHECK(hinted.data == std::vector<std::string>{"hello"});
  CHECK(hinted.polls() == 2);
  // The same journal, the same interval, no hint: still waiting.
  CHECK(unhinted.polls() == 1);
  CHECK(unhinted.taken().empty());
  CHECK(subscriber->received() == 1);
  CHECK(reports.empty());
  CHECK(hinted.errors.empty());
}

TEST_CASE("a forged hint makes an S3 source poll, and brings no event", "[server]") {
  forged_hints setup;
  auto& [io, reports, options, where, forger, subscriber, bob] = setup;
  auto source = bob.events({.hints = subscriber});
  listening listener(io, source, 60s);
  REQUIRE(run_until(io, [&] { return forger.ready() && subscriber->ready() && listener.polls() == 1; }));

  forger.publish("bob");
  REQUIRE(run_until(io, [&] { return listener.polls() == 2; }));
  CHECK(listener.taken().empty());
  forger.publish("carol");  // another user's channel: no poll for bob
  forger.publish("bob");
  REQUIRE(run_until(io, [&] { return listener.polls() == 3; }));
  CHECK(subscriber->received() == 2);
  CHECK(listener.taken().empty());
  CHECK(listener.errors.empty());
}

TEST_CASE("Redis killed mid-stream: reported once, polling goes on at the interval, nothing lost, hints resume",
          "[server]") {
  own_server_hints setup;
  auto& [io, server, reports, options, where, publisher, subscriber, bob] = setup;
  s3::s3_store alice(io.get_executor(), where, "alice", {.hints = publisher});
  auto source = bob.events({.hints = subscriber});
  listening listener(io, source, 2s);
  REQUIRE(run_until(io, [&] { return publisher->ready() && subscriber->ready() && listener.polls() >= 1; }));

  note_for_bob(io, alice, "before");
  REQUIRE(run_until(io, [&] { return listener.taken().size() == 1; }));

  server.kill();
  note_for_bob(io, alice, "during");  // its hint is dropped, or sent into the dying connection
  // Found by the interval's poll; the outage reported once by each side.
  REQUIRE(run_until(io, [&] { return listener.taken().size() == 2; }));
  const auto polls_in_outage = listener.polls();
  REQUIRE(run_until(io, [&] { return listener.polls() >= polls_in_outage + 1 && subscriber->failed_attempts() >= 3; }));
  CHECK(reports.size() == 2);
  CHECK(subscriber->outages() == 1);
  CHECK(publisher->outages() == 1);

  server.restart();
  REQUIRE(run_until(io, [&] { return publisher->ready() && subscriber->ready(); }));
  const auto received = subscriber->received();
  note_for_bob(io, alice, "after");
  REQUIRE(run_until(io, [&] { return listener.taken().size() == 3 && subscriber->received() == received + 1; }));
  CHECK(listener.data == std::vector<std::string>{"before", "during", "after"});
  CHECK(reports.size() == 2);
  CHECK(listener.errors.empty());
}

TEST_CASE("while its hints are live an S3 listener skips the interval's polls, and polls at it again once Redis is killed",
          "[server]") {
  own_server_hints setup;
  auto& [io, server, reports, options, where, forger, subscriber, bob] = setup;
  constexpr auto interval = 300ms;
  // Far longer than the test's bounds: only the fallback can bring polls at the interval.
  auto source = bob.events({.hints = subscriber, .hinted_poll_interval = 10min});
  listening listener(io, source, interval);
  REQUIRE(run_until(io, [&] { return forger->ready() && subscriber->ready() && listener.polls() >= 1; }));
  // A poll that starts with the hints live (one a hint brings) is followed by the long wait.
  const auto polls_live = listener.polls();
  forger->publish("bob");
  REQUIRE(run_until(io, [&] { return listener.polls() > polls_live; }));
  CHECK(source.poll_interval(interval) == 10min);
  const auto polls_quiet = listener.polls();
  const auto lists_quiet = source.client().counts().list;

  // Five of the poller's intervals without a hint: no poll, no LIST. (A
  // window in which nothing may happen; it measures the absence.)
  CHECK_FALSE(run_until(io, [&] { return listener.polls() > polls_quiet; }, 5 * interval));
  CHECK(source.client().counts().list == lists_quiet);

  // The subscription lost: the listener polls at once and then every
  // interval, the outage reported once (by each side).
  server.kill();
  REQUIRE(run_until(io, [&] { return listener.polls() >= polls_quiet + 3 && subscriber->failed_attempts() >= 1; }));
  CHECK(source.poll_interval(interval) == interval);
  CHECK(subscriber->outages() == 1);
  CHECK(reports.size() == 2);
  CHECK(listener.errors.empty());

  // Back: the long interval again after the poll the resubscription brings.
  server.restart();
  REQUIRE(run_until(io, [&] { return subscriber->ready() && source.poll_interval(interval) == 10min; }));
  CHECK(source.poll_interval(20min) == 20min);  // never shorter than the poller's own
}

TEST_CASE("closing the hint subscriber of an S3 listener in its long hinted wait: it polls at its own interval again, "
          "and no callback runs",
          "[server]") {
  forged_hints setup;
  auto& [io, reports, options, where, forger, subscriber, bob] = setup;
  constexpr auto interval = 300ms;
  // Far longer than the test's bounds: only the fallback can bring polls at the interval.
  auto source = bob.events({.hints = subscriber, .hinted_poll_interval = 10min});
  listening listener(io, source, interval);
  int called = 0;  // a listener of the test's own on the same subscriber
  const auto registration = subscriber->listen("bob", [&called] { ++called; });
  REQUIRE(run_until(io, [&] { return forger.ready() && subscriber->ready() && listener.polls() >= 1; }));
  // A poll that starts with the hints live (one a hint brings) is followed by the long wait.
  const auto polls_live = listener.polls();
  forger.publish("bob");
  REQUIRE(run_until(io, [&] { return listener.polls() > polls_live && called == 1; }));
  const auto polls_quiet = listener.polls();
  // Someone else asking the source changes nothing for the wait in progress.
  CHECK(source.poll_interval(0ms) == 10min);
  CHECK(source.poll_interval(20min) == 20min);

  // Closed while the poller waits its 10 minutes: within about a second it
  // polls, and then every interval.
  subscriber->close();
  REQUIRE(run_until(io, [&] { return listener.polls() >= polls_quiet + 3; }));
  CHECK(source.poll_interval(interval) == interval);
  forger.publish("bob");  // nothing listens any more
  CHECK(run_until(io, [&] { return listener.polls() >= polls_quiet + 5; }));
  CHECK(called == 1);
  CHECK(subscriber->received() == 1);
  CHECK(reports.empty());
  CHECK(listener.errors.empty());
}

TEST_CASE("a negative hinted_poll_interval is refused naming the setting") {
  asio::io_context io;
  s3::s3_store bob(io.get_executor(), test_support::test_server_config(), "bob");
  CHECK_THROWS_WITH(bob.events({.hinted_poll_interval = -1ms}),
                    Catch::Contains("s3_journal_options::hinted_poll_interval") && Catch::Contains("negative"));
}

#ifdef STOREWATCH_TOOL
namespace {

using test_support::s3_process_options;
using test_support::subscriber_count;

// The tool's global options naming the S3 store `where`, as `user`.
std::vector<std::string> tool_store(const s3::config& where, const std::string& user) {
  return {STOREWATCH_TOOL, "--store", test_support::store_url(where), "--endpoint", test_support::endpoint_url(where),
          "--user", user};
}

// `first` followed by `rest`.
std::vector<std::string> joined(std::vector<std::string> first, const std::vector<std::string>& rest) {
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

// What the tests of the tool with hints start from: the store (a fresh
// prefix), the Redis fixture, a listener's name of its own, and how the
// tool runs.
struct tool_setup {
  s3::config where = test_support::test_server_config();
  redis::url hints = test_support::fixture_redis();
  std::string bob = "bob" + std::to_string(std::random_device{}() % 1000000);
  test_support::temp_dir dir;
  test_support::spawn_options options = s3_process_options(where, dir);
};

// The number of lines `tail` printed so far.
std::size_t printed(test_support::process& tail) {
  return static_cast<std::size_t>(std::count(tail.out().begin(), tail.out().end(), '\n'));
}

// Alice's NOTE for `to`, stored without a hint before this returns.
void quiet_note(asio::io_context& io, const tool_setup& setup, const std::string& to, const std::string& data) {
  s3::s3_store quiet_alice(io.get_executor(), setup.where, "alice");
  const std::string name = "NOTE";
  bool done = false;
  quiet_alice.async_publish_event(name, data, {to}, [&](std::error_code ec, std::vector<std::string>) {
    REQUIRE_FALSE(ec);
    done = true;
  });
  REQUIRE(run_until(io, [&] { return done; }));
}

// `storewatch tail --hints` for `bob`, polling every 60 s (or as `intervals`
// say) until it printed 2 events, started once alice's NOTE "first" for him
// is stored; returned when it has printed that one (its first poll is done)
// and subscribed: from then on only a hint (or the 60 s interval) brings
// its next poll.
std::unique_ptr<test_support::process> hinted_tail(asio::io_context& io, const tool_setup& setup,
                                                   const std::vector<std::string>& intervals = {"--interval", "60"}) {
  quiet_note(io, setup, setup.bob, "first");
  auto tail = std::make_unique<test_support::process>(
      joined(tool_store(setup.where, setup.bob),
             joined({"tail", "--from-start", "--hints", setup.hints.text(), "--count", "2", "--format", "text"},
                    intervals)),
      setup.options);
  REQUIRE(test_support::wait_for([&] { return printed(*tail) >= 1; }, test_support::generous, [&] { tail->pump(); }));
  const auto channel = "storewatch:hints:" + setup.bob;
  REQUIRE(test_support::wait_for([&] { return subscriber_count(setup.hints, channel) == 1; }, test_support::generous,
                                 [&] { tail->pump(); }));
  return tail;
}

// Checks that `tail` (of `hinted_tail`) exits within the bound, well
// before its interval, having printed its second event, which says `what`.
void check_second_event(test_support::process& tail, const std::string& what) {
  REQUIRE(tail.wait(test_support::generous));
  INFO("tail's stdout: " << tail.out() << "\ntail's stderr: " << tail.err());
  CHECK(tail.succeeded());
  CHECK(printed(tail) == 2);
  CHECK(tail.out().find(what) != std::string::npos);
  CHECK(tail.err().empty());
}

// Alice's doc.txt, created (without hints) before this returns.
void alice_creates_doc(asio::io_context& io, const tool_setup& setup) {
  s3::s3_store alice(io.get_executor(), setup.where, "alice");
  bool done = false;
  alice.async_create_file("doc.txt", "hello", [&](std::error_code ec, versioned_path) {
    REQUIRE_FALSE(ec);
    done = true;
  });
  REQUIRE(run_until(io, [&] { return done; }));
}

}  // namespace

TEST_CASE("storewatch tail --hints on S3 prints an event long before its 60 s interval") {
  asio::io_context io;
  const tool_setup setup;
  const auto tail = hinted_tail(io, setup);
  redis::hint_options quick;
  auto publisher = std::make_shared<redis::hint_publisher>(io.get_executor(), setup.hints, quick);
  s3::s3_store alice(io.get_executor(), setup.where, "alice", {.hints = publisher});
  REQUIRE(run_until(io, [&] { return publisher->ready(); }));
  bool done = false;
  const std::string name = "NOTE";
  alice.async_publish_event(name, "second", {setup.bob}, [&](std::error_code ec, std::vector<std::string>) {
    REQUIRE_FALSE(ec);
    done = true;
  });
  // Running the publisher's connection meanwhile, until the tail has printed
  // the second event and exited.
  REQUIRE(run_until(io, [&] {
    tail->pump(1ms);
    return done && tail->exited();
  }));
  check_second_event(*tail, "second");
}

TEST_CASE("storewatch tail --hinted-interval: with its hints live the tail polls at it, and finds an unhinted event") {
  asio::io_context io;
  const tool_setup setup;
  // Polling every 0.05 s until the subscription is live (so its first poll
  // after that comes soon), then every 0.5 s instead of the default 60 s.
  const auto tail = hinted_tail(io, setup, {"--interval", "0.05", "--hinted-interval", "0.5"});
  quiet_note(io, setup, setup.bob, "second");
  // Within the bound (a third of the default), with no hint: the 0.5 s poll.
  check_second_event(*tail, "second");
}

TEST_CASE("storewatch share --hints: a tail polling every 60 s prints the SHARE of a process that exited at once") {
  asio::io_context io;
  const tool_setup setup;

  // Alice's file, then the tail.
  alice_creates_doc(io, setup);
  const auto tail = hinted_tail(io, setup);

  // A separate process: it shares, publishes its hint, and exits.
  test_support::process share(
      joined(tool_store(setup.where, "alice"), {"share", "doc.txt", "--with", setup.bob, "--hints", setup.hints.text()}),
      setup.options);
  REQUIRE(share.wait(test_support::generous));
  INFO("share's stdout: " << share.out() << "\nshare's stderr: " << share.err());
  CHECK(share.succeeded());
  CHECK(share.err().empty());
  // Within the bound (a third of the interval), the tail prints the SHARE and exits.
  check_second_event(*tail, "SHARE");
}

TEST_CASE("storewatch share --hints with Redis down: the share is done, and the tool says the hint is not delivered") {
  const tool_setup setup;
  asio::io_context io;
  alice_creates_doc(io, setup);
  // Port 1 on loopback: nothing listens there.
  test_support::process share(
      joined(tool_store(setup.where, "alice"), {"share", "doc.txt", "--with", setup.bob, "--hints", "redis://127.0.0.1:1/0"}),
      setup.options);
  REQUIRE(share.wait(test_support::generous));
  INFO("share's stderr: " << share.err());
  CHECK(share.succeeded());
  CHECK_THAT(share.err(), Catch::Contains("hints are not delivered") && Catch::Contains("at their next poll"));
  CHECK_THAT(share.err(), !Catch::Contains("reconnecting"));
}

TEST_CASE("the store commands refuse --hints on a folder store, as tail does") {
  test_support::temp_dir dir;
  auto options = s3_process_options(test_support::test_server_config(), dir);
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"create", "a.txt", "-"}, {"share", "a.txt", "--with", "bob"},
        {"unshare", "a.txt", "--with", "bob"}, {"delete", "a.txt"}, {"publish", "PING", "--to", "bob"}}) {
    test_support::process run(joined({STOREWATCH_TOOL, "--store", dir.path().string(), "--user", "alice"},
                                     joined(command, {"--hints", "redis://127.0.0.1:1/0"})),
                              options);
    REQUIRE(run.wait(test_support::generous));
    INFO(command.front() << ": " << run.err());
    CHECK(run.exit_code() == 2);
    CHECK_THAT(run.err(), Catch::Contains("option '--hints': hints are for s3:// stores"));
  }
}
#endif

TEST_CASE("a subscriber Redis refuses (NOAUTH): reported once, the S3 listener polls at its interval, gets every event",
          "[server]") {
  asio::io_context io;
  test_support::own_redis server;
  (void)server.require_password("s3cret");
  std::vector<std::string> reports;
  const auto options = test_hint_options(reports);
  const auto where = test_support::test_server_config();
  auto subscriber = std::make_shared<redis::hint_subscriber>(io.get_executor(), server.url(), options);
  s3::s3_store alice(io.get_executor(), where, "alice");
  s3::s3_store bob(io.get_executor(), where, "bob");
  auto source = bob.events({.hints = subscriber});
  listening listener(io, source, 300ms);
  for (const auto* data : {"one", "two", "three"}) note_for_bob(io, alice, data);
  REQUIRE(run_until(io, [&] { return listener.taken().size() == 3 && subscriber->failed_attempts() >= 3; }));
  CHECK(listener.data == std::vector<std::string>{"one", "two", "three"});
  REQUIRE(reports.size() == 1);
  CHECK_THAT(reports.front(), Catch::Contains("NOAUTH"));
  CHECK(listener.errors.empty());
}

TEST_CASE("a flood of hints brings about one S3 poll per min_hint_spacing, and an event sent in it arrives", "[server]") {
  asio::io_context io;
  std::vector<std::string> reports;
  const auto options = test_hint_options(reports);
  const auto where = test_support::test_server_config();
  const auto hints_at = test_support::fixture_redis();
  auto publisher = std::make_shared<redis::hint_publisher>(io.get_executor(), hints_at, options);
  auto subscriber = std::make_shared<redis::hint_subscriber>(io.get_executor(), hints_at, options);
  s3::s3_store alice(io.get_executor(), where, "alice", {.hints = publisher});
  s3::s3_store bob(io.get_executor(), where, "bob");
  constexpr auto spacing = 200ms;
  auto source = bob.events({.hints = subscriber, .min_hint_spacing = spacing});
  listening listener(io, source, 60s);
  REQUIRE(run_until(io, [&] { return publisher->ready() && subscriber->ready() && listener.polls() == 1; }));

  const auto lists_before = source.client().counts().list;
  const auto polls_before = listener.polls();
  const auto started = std::chrono::steady_clock::now();
  // Forged hints for bob from another thread, one PUBLISH after the other,
  // for at least 1.5 s and 2000 hints.
  std::atomic<long> flooded{0};
  std::atomic<bool> flood_over{false};
  std::string flood_failure;
  std::thread flood([&] {
    redisContext* context = redisConnect(hints_at.host.c_str(), hints_at.port);
    const std::string channel = options.channel_prefix + "bob";
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    while (context != nullptr && context->err == 0 &&
           (flooded.load() < 2000 || std::chrono::steady_clock::now() < until)) {
      auto* reply = static_cast<redisReply*>(redisCommand(context, "PUBLISH %b wake", channel.data(), channel.size()));
      if (reply == nullptr) break;
      freeReplyObject(reply);
      ++flooded;
    }
    if (context == nullptr || context->err != 0) flood_failure = context ? context->errstr : "no context";
    if (context != nullptr) redisFree(context);
    flood_over = true;
  });
  REQUIRE(run_until(io, [&] { return flooded.load() >= 1000 || flood_over.load(); }));
  note_for_bob(io, alice, "in the flood");
  const bool over = run_until(io, [&] { return flood_over.load(); });
  flood.join();
  REQUIRE(over);
  REQUIRE(flood_failure.empty());
  const auto published = flooded.load();
  // Every hint received (and the store's own), and the event delivered.
  REQUIRE(run_until(io, [&] {
    return subscriber->received() >= static_cast<std::uint64_t>(published) + 1 && listener.taken().size() == 1;
  }));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  const auto polls = listener.polls() - polls_before;
  const auto lists = source.client().counts().list - lists_before;
  const auto spacings = static_cast<std::uint64_t>(elapsed / spacing);
  INFO(published << " hints in " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                 << " ms: " << polls << " polls, " << lists << " LIST requests");
  CHECK(listener.data == std::vector<std::string>{"in the flood"});
  CHECK(polls >= 2);                   // the hints did bring polls
  CHECK(polls <= spacings + 3);        // at most one per spacing, one at once, one at the end, and spare
  CHECK(lists <= 2 * (spacings + 3));  // a poll lists once, twice when it lists the tail and then more
  CHECK(reports.empty());
  CHECK(listener.errors.empty());
}

TEST_CASE("an S3 source keeps its hint subscriber: hints wake it when nobody else holds the subscriber", "[server]") {
  forged_hints setup;
  auto& [io, reports, options, where, forger, subscriber, bob] = setup;
  const std::weak_ptr<redis::hint_subscriber> watched = subscriber;
  auto source = bob.events({.hints = std::move(subscriber)});
  listening listener(io, source, 60s);
  REQUIRE(run_until(io, [&] {
    const auto kept = watched.lock();
    return kept && kept->ready() && forger.ready() && listener.polls() == 1;
  }));
  forger.publish("bob");
  REQUIRE(run_until(io, [&] { return listener.polls() == 2; }));
  CHECK(reports.empty());
}

TEST_CASE("an S3 source moved while it waits for a hint: the hint ends the wait, and so does destroying it",
          "[server]") {
  forged_hints setup;
  auto& [io, reports, options, where, forger, subscriber, bob] = setup;
  auto first = bob.events({.hints = subscriber});
  REQUIRE(run_until(io, [&] { return forger.ready() && subscriber->ready(); }));

  std::optional<std::error_code> outcome;
  first.async_wait_for_change("", [&](std::error_code ec) { outcome = ec; });
  auto moved = std::make_unique<s3::s3_journal_source>(std::move(first));
  forger.publish("bob");
  REQUIRE(run_until(io, [&] { return outcome.has_value(); }));
  CHECK(*outcome == std::error_code{});

  // Waiting again, with the wait under way; then the source goes.
  outcome.reset();
  moved->async_wait_for_change("", [&](std::error_code ec) { outcome = ec; });
  for (int i = 0; i < 10; ++i) io.poll();
  CHECK_FALSE(outcome.has_value());
  moved.reset();
  REQUIRE(run_until(io, [&] { return outcome.has_value(); }));
  CHECK(*outcome == asio::error::operation_aborted);
  CHECK(reports.empty());
}

TEST_CASE("a negative min_hint_spacing is refused naming the setting") {
  asio::io_context io;
  s3::s3_store bob(io.get_executor(), test_support::test_server_config(), "bob");
  CHECK_THROWS_WITH(bob.events({.min_hint_spacing = -1ms}), Catch::Contains("s3_journal_options::min_hint_spacing"));
}

}  // namespace s3_hints_test
