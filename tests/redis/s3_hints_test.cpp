// Hints between an s3_store and s3_journal_sources, on the s3rver and
// redis-server fixtures: a listener polling every 60 s gets an event at once
// thanks to a hint; a forged hint brings a poll, not an event; a Redis
// server killed mid-stream leaves polling at the interval, loses nothing,
// and hints work again once it is back.
#include <storewatch/poller.hpp>
#include <storewatch/redis/hints.hpp>
#include <storewatch/store/s3_store.hpp>
#include <storewatch/stream.hpp>

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
  asio::io_context io;
  test_support::own_redis server;
  std::vector<std::string> reports;
  const auto options = test_hint_options(reports);
  const auto where = test_support::test_server_config();
  auto publisher = std::make_shared<redis::hint_publisher>(io.get_executor(), server.url(), options);
  auto subscriber = std::make_shared<redis::hint_subscriber>(io.get_executor(), server.url(), options);
  s3::s3_store alice(io.get_executor(), where, "alice", {.hints = publisher});
  s3::s3_store bob(io.get_executor(), where, "bob");
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

#ifdef STOREWATCH_TOOL
namespace {

// How many clients of the Redis server at `where` subscribe to `channel`.
long long subscribers(const redis::url& where, const std::string& channel) {
  redisContext* admin = redisConnect(where.host.c_str(), where.port);
  REQUIRE(admin != nullptr);
  REQUIRE(admin->err == 0);
  auto* reply = static_cast<redisReply*>(redisCommand(admin, "PUBSUB NUMSUB %s", channel.c_str()));
  REQUIRE(reply != nullptr);
  const long long count =
      reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 ? reply->element[1]->integer : -1;
  freeReplyObject(reply);
  redisFree(admin);
  return count;
}

}  // namespace

TEST_CASE("storewatch tail --hints on S3 prints an event long before its 60 s interval") {
  asio::io_context io;
  const auto where = test_support::test_server_config();
  const auto hints = test_support::fixture_redis();
  const auto bob = "bob" + std::to_string(std::random_device{}() % 1000000);
  auto prefix = where.prefix;
  prefix.pop_back();  // the trailing '/'
  test_support::temp_dir dir;
  test_support::spawn_options options;
  options.environment = test_support::environment_with(
      {"AWS_ACCESS_KEY_ID=" + where.credentials.access_key_id,
       "AWS_SECRET_ACCESS_KEY=" + where.credentials.secret_access_key, "AWS_REGION=" + where.region,
       "AWS_CONFIG_FILE=" + (dir.path() / "none").string(),
       "AWS_SHARED_CREDENTIALS_FILE=" + (dir.path() / "none").string()},
      {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STOREWATCH_STORE"});
  options.in = test_support::child_stream::null();
  options.out = test_support::child_stream::piped();
  options.err = test_support::child_stream::piped();

  // Written before the tail starts: its first poll prints it.
  s3::s3_store quiet_alice(io.get_executor(), where, "alice");
  const std::string name = "NOTE";
  bool done = false;
  quiet_alice.async_publish_event(name, "first", {bob}, [&](std::error_code ec, std::vector<std::string>) {
    REQUIRE_FALSE(ec);
    done = true;
  });
  REQUIRE(run_until(io, [&] { return done; }));

  test_support::process tail(
      {STOREWATCH_TOOL, "--store", "s3://" + where.bucket + '/' + prefix, "--endpoint",
       where.endpoint.scheme + "://" + where.endpoint.authority(), "--user", bob, "tail", "--from-start", "--hints",
       hints.text(), "--interval", "60", "--count", "2", "--format", "text"},
      options);
  const auto printed = [&] {
    return static_cast<std::size_t>(std::count(tail.out().begin(), tail.out().end(), '\n'));
  };
  REQUIRE(test_support::wait_for([&] { return printed() >= 1; }, test_support::generous, [&] { tail.pump(); }));
  // Its first poll is done and it is subscribed: from now on only a hint
  // (or the 60 s interval) brings the next poll.
  REQUIRE(test_support::wait_for([&] { return subscribers(hints, "storewatch:hints:" + bob) == 1; },
                                 test_support::generous, [&] { tail.pump(); }));
  redis::hint_options quick;
  auto publisher = std::make_shared<redis::hint_publisher>(io.get_executor(), hints, quick);
  s3::s3_store alice(io.get_executor(), where, "alice", {.hints = publisher});
  REQUIRE(run_until(io, [&] { return publisher->ready(); }));
  done = false;
  alice.async_publish_event(name, "second", {bob}, [&](std::error_code ec, std::vector<std::string>) {
    REQUIRE_FALSE(ec);
    done = true;
  });
  // Running the publisher's connection meanwhile, until the tail has printed
  // the second event and exited.
  REQUIRE(run_until(io, [&] {
    tail.pump(1ms);
    return done && tail.exited();
  }));
  REQUIRE(tail.wait(test_support::generous));
  INFO("stdout: " << tail.out() << "\nstderr: " << tail.err());
  CHECK(tail.succeeded());
  CHECK(printed() == 2);
  CHECK(tail.out().find("second") != std::string::npos);
  CHECK(tail.err().empty());
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
