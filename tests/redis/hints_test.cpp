// storewatch::redis: the URL, the Asio adapter under hiredis, hints from a
// publisher to a subscriber, and outages (a server killed with SIGKILL and
// restarted on its port). Tests tagged [server] run on the CTest fixture's
// redis-server, or start their own.
#include <storewatch/redis/adapter.hpp>
#include <storewatch/redis/hints.hpp>
#include <storewatch/redis/url.hpp>

#include "redis/server.hpp"
#include "support/run.hpp"

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace hints_test {

using namespace storewatch;
using test_support::run_until;

namespace {

// The message of the std::invalid_argument parsing `text` throws.
std::string refusal(const std::string& text) {
  try {
    (void)redis::parse_url(text, nullptr);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  FAIL("accepted " << text);
  return {};
}

// Options that retry quickly and count what is reported.
redis::hint_options counting(std::vector<std::string>& reports) {
  redis::hint_options options;
  options.backoff.initial = std::chrono::milliseconds(20);
  options.backoff.max = std::chrono::milliseconds(200);
  options.on_error = [&reports](std::error_code, std::string_view message) { reports.emplace_back(message); };
  return options;
}

// A subscriber and a publisher on the fixture's server, on a channel prefix
// of their own, counting reports.
struct pub_sub {
  asio::io_context io;
  std::vector<std::string> reports;
  redis::url where = test_support::fixture_redis();
  redis::hint_options options = [this] {
    auto made = counting(reports);
    made.channel_prefix = "test:" + std::to_string(std::random_device{}()) + ':';
    return made;
  }();
  redis::hint_subscriber subscriber{io.get_executor(), where, options};
  redis::hint_publisher publisher{io.get_executor(), where, options};
};

}  // namespace

TEST_CASE("a Redis URL gives host, port, database, user and password") {
  const auto plain = redis::parse_url("redis://cache.example:6380/2", nullptr);
  CHECK(plain.host == "cache.example");
  CHECK(plain.port == 6380);
  CHECK(plain.db == 2);
  CHECK(plain.password.empty());
  const auto defaults = redis::parse_url("redis://127.0.0.1", nullptr);
  CHECK(defaults.port == 6379);
  CHECK(defaults.db == 0);
  const auto login = redis::parse_url("redis://hints:p%40ss%3Aword@[::1]:7000/", nullptr);
  CHECK(login.host == "::1");
  CHECK(login.port == 7000);
  CHECK(login.user == "hints");
  CHECK(login.password == "p@ss:word");
  CHECK(login.text() == "redis://hints@[::1]:7000/0");  // never the password
  CHECK(redis::parse_url("redis://:secret@h", nullptr).password == "secret");
}

TEST_CASE("a bad Redis URL is refused naming the part at fault, never showing the password") {
  CHECK_THAT(refusal("rediss://h:6379"), Catch::Contains("hiredis 0.14 has no TLS"));
  CHECK_THAT(refusal("http://h"), Catch::Contains("the scheme 'http'"));
  CHECK_THAT(refusal("h:6379"), Catch::Contains("not a URL"));
  CHECK_THAT(refusal("redis://h:port"), Catch::Contains("the port 'port'"));
  CHECK_THAT(refusal("redis://h:70000"), Catch::Contains("the port '70000'"));
  CHECK_THAT(refusal("redis://h:"), Catch::Contains("the port after ':' is empty"));
  CHECK_THAT(refusal("redis://h/one"), Catch::Contains("the database 'one'"));
  CHECK_THAT(refusal("redis://:6379"), Catch::Contains("the host is empty"));
  CHECK_THAT(refusal("redis://[::1:6379"), Catch::Contains("no closing ']'"));
  CHECK_THAT(refusal("redis://h?db=1"), Catch::Contains("query or fragment"));
  CHECK_THAT(refusal("redis://someone@h"), Catch::Contains("the user 'someone' has no password"));
  CHECK_THAT(refusal("redis://:%zz@h"), Catch::Contains("the password has a '%'"));
  const auto bad_port_with_password = refusal("redis://u:hunter2@h:x");
  CHECK_THAT(bad_port_with_password, Catch::Contains("the port 'x'"));
  CHECK_THAT(bad_port_with_password, !Catch::Contains("hunter2"));
  // A password with '/', '?' or '#' unescaped (base64 passwords hold '/'):
  // still the password, and no message quotes a piece of it.
  CHECK(redis::parse_url("redis://u:hun/ter2@h:7000/1", nullptr).password == "hun/ter2");
  CHECK(redis::parse_url("redis://u:p?ss#1@h", nullptr).password == "p?ss#1");
  for (const std::string text : {"redis://u:se/cret@h:x", "redis://u:se?cret@h/one", "redis://u:12/cret@h?x",
                                 "redis://u:se#cret@:1"}) {
    const auto message = refusal(text);
    CHECK_THAT(message, !Catch::Contains("cret"));
    CHECK_THAT(message, !Catch::Contains("se/") && !Catch::Contains("se?") && !Catch::Contains("12/"));
  }
}

TEST_CASE("the Redis password comes from the environment when the URL has none") {
  ::setenv("STOREWATCH_TEST_REDIS_PASSWORD", "from-env", 1);
  CHECK(redis::parse_url("redis://h", "STOREWATCH_TEST_REDIS_PASSWORD").password == "from-env");
  CHECK(redis::parse_url("redis://:in-url@h", "STOREWATCH_TEST_REDIS_PASSWORD").password == "in-url");
  CHECK(redis::parse_url("redis://h", nullptr).password.empty());
  ::unsetenv("STOREWATCH_TEST_REDIS_PASSWORD");
  CHECK(redis::parse_url("redis://h", "STOREWATCH_TEST_REDIS_PASSWORD").password.empty());
}

TEST_CASE("reporting Redis outages: once per outage, again after it was back") {
  redis::detail::outage_state outage;
  CHECK(outage.failed());
  CHECK_FALSE(outage.failed());
  CHECK_FALSE(outage.failed());
  CHECK(outage.failures() == 3);
  outage.recovered();
  CHECK(outage.failures() == 0);
  CHECK(outage.failed());
  CHECK(outage.outages() == 2);
  CHECK(outage.failed_attempts() == 4);
}

TEST_CASE("the Asio adapter runs hiredis's async API on an io_context and leaves nothing behind", "[server]") {
  asio::io_context io;
  const auto where = test_support::fixture_redis();
  redisAsyncContext* context = redisAsyncConnect(where.host.c_str(), where.port);
  REQUIRE(context != nullptr);
  REQUIRE(context->err == 0);
  struct outcome {
    bool connected = false, disconnected = false;
    std::string pong;
  } seen;
  context->data = &seen;
  redis::attach(context, io.get_executor());
  redisAsyncSetConnectCallback(context, [](const redisAsyncContext* c, int status) {
    static_cast<outcome*>(c->data)->connected = status == REDIS_OK;
  });
  redisAsyncSetDisconnectCallback(context, [](const redisAsyncContext* c, int) {
    static_cast<outcome*>(c->data)->disconnected = true;
  });
  redisAsyncCommand(
      context,
      [](redisAsyncContext* c, void* reply, void*) {
        const auto* r = static_cast<const redisReply*>(reply);
        if (r != nullptr && r->type == REDIS_REPLY_STATUS) static_cast<outcome*>(c->data)->pong.assign(r->str, r->len);
        redisAsyncDisconnect(c);  // after this reply: hiredis frees the context, the adapter lets go
      },
      nullptr, "PING");
  // Runs until no work is left: the adapter holds none once hiredis let go.
  io.run_for(test_support::generous);
  CHECK(io.stopped());
  CHECK(seen.connected);
  CHECK(seen.pong == "PONG");
  CHECK(seen.disconnected);
}

TEST_CASE("a hint published for a user reaches that user's listeners, and only while registered", "[server]") {
  pub_sub setup;
  auto& [io, reports, where, options, subscriber, publisher] = setup;
  int alice = 0, alice_too = 0, bob = 0;
  auto first = subscriber.listen("alice", [&] { ++alice; });
  auto second = subscriber.listen("alice", [&] { ++alice_too; });
  auto third = subscriber.listen("bob", [&] { ++bob; });
  REQUIRE(run_until(io, [&] { return subscriber.ready() && publisher.ready(); }));

  publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return alice == 1 && alice_too == 1; }));
  first.reset();
  publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return alice_too == 2; }));
  publisher.publish("bob");
  REQUIRE(run_until(io, [&] { return bob == 1; }));
  CHECK(alice == 1);  // its registration had ended
  CHECK(subscriber.received() == 3);
  CHECK(publisher.sent() == 3);

  // The last registration for bob ends, and a new one starts: only the new
  // one hears the next hint.
  third.reset();
  int bob_again = 0;
  auto fourth = subscriber.listen("bob", [&] { ++bob_again; });
  REQUIRE(run_until(io, [&] { return subscriber.ready(); }));
  publisher.publish("bob");
  REQUIRE(run_until(io, [&] { return bob_again == 1; }));
  CHECK(bob == 1);
  CHECK(reports.empty());
}

TEST_CASE("a Redis server killed and restarted: reported once, hints resume after reconnecting", "[server]") {
  asio::io_context io;
  test_support::own_redis server;
  std::vector<std::string> subscriber_reports, publisher_reports;
  redis::hint_subscriber subscriber(io.get_executor(), server.url(), counting(subscriber_reports));
  redis::hint_publisher publisher(io.get_executor(), server.url(), counting(publisher_reports));
  int hints = 0;
  auto registration = subscriber.listen("alice", [&] { ++hints; });
  REQUIRE(run_until(io, [&] { return subscriber.ready() && publisher.ready(); }));
  publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return hints == 1; }));

  server.kill();
  // Several failed attempts to reconnect, one report each side.
  REQUIRE(run_until(io, [&] { return subscriber.failed_attempts() >= 3 && publisher.failed_attempts() >= 3; }));
  CHECK(subscriber_reports.size() == 1);
  REQUIRE(publisher_reports.size() == 1);
  CHECK_THAT(publisher_reports.front(), Catch::Contains(server.url().text()));
  CHECK_THAT(publisher_reports.front(), Catch::Contains("reconnecting with backoff"));
  publisher.publish("alice");  // dropped: nobody to send it to
  REQUIRE(run_until(io, [&] { return publisher.dropped() == 1; }));

  server.restart();
  REQUIRE(run_until(io, [&] { return subscriber.ready() && publisher.ready(); }));
  // Resubscribed, it wakes its listeners once for the hints it may have missed.
  REQUIRE(run_until(io, [&] { return hints == 2; }));
  publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return hints == 3; }));
  CHECK(subscriber_reports.size() == 1);
  CHECK(publisher_reports.size() == 1);
  CHECK(subscriber.outages() == 1);
}

TEST_CASE("hints published as the connection drops are dropped, never sent on the freed connection", "[server]") {
  asio::io_context io;
  test_support::own_redis server;
  std::vector<std::string> reports;
  redis::hint_publisher publisher(io.get_executor(), server.url(), counting(reports));
  REQUIRE(run_until(io, [&] { return publisher.ready(); }));
  server.kill();
  // Two hints always queued and one handler run at a time, so that the read
  // which finds the connection gone runs between a hint queued before it and
  // that hint's turn (hiredis has freed its context by then).
  for (int step = 0; step < 1000000 && reports.empty(); ++step) {
    publisher.publish("alice");
    publisher.publish("alice");
    io.run_one();
  }
  CHECK(reports.size() == 1);
  CHECK(publisher.dropped() > 0);
}

TEST_CASE("hints with an ACL user's password and a database, and a wrong password reported once", "[server]") {
  const auto where = test_support::fixture_redis();
  // An ACL user of the test's own (the fixture's default user stays open).
  const auto user = "hinter" + std::to_string(std::random_device{}());
  {
    redisContext* admin = redisConnect(where.host.c_str(), where.port);
    REQUIRE(admin != nullptr);
    REQUIRE(admin->err == 0);
    const std::string rule = ">s3cret";
    auto* reply = static_cast<redisReply*>(
        redisCommand(admin, "ACL SETUSER %s on %s ~* &* +@all", user.c_str(), rule.c_str()));
    REQUIRE(reply != nullptr);
    CHECK(reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(admin);
  }
  asio::io_context io;
  std::vector<std::string> reports;
  auto options = counting(reports);
  options.channel_prefix = "test:" + std::to_string(std::random_device{}()) + ':';
  ::setenv("STOREWATCH_TEST_REDIS_PASSWORD", "s3cret", 1);
  const auto login = redis::parse_url("redis://" + user + "@127.0.0.1:" + std::to_string(where.port) + "/3",
                                      "STOREWATCH_TEST_REDIS_PASSWORD");
  ::unsetenv("STOREWATCH_TEST_REDIS_PASSWORD");
  redis::hint_subscriber subscriber(io.get_executor(), login, options);
  redis::hint_publisher publisher(io.get_executor(), login, options);
  int hints = 0;
  auto registration = subscriber.listen("alice", [&] { ++hints; });
  REQUIRE(run_until(io, [&] { return subscriber.ready() && publisher.ready(); }));
  publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return hints == 1; }));
  CHECK(reports.empty());

  auto wrong = login;
  wrong.password = "guess";
  redis::hint_publisher refused(io.get_executor(), wrong, options);
  REQUIRE(run_until(io, [&] { return refused.failed_attempts() >= 3; }));
  REQUIRE(reports.size() == 1);
  CHECK_THAT(reports.front(), Catch::Contains("the server refused AUTH"));
  CHECK_THAT(reports.front(), !Catch::Contains("guess"));
  CHECK_FALSE(refused.ready());
}

namespace {

// Options with the normal backoff (100 ms, doubling) that count reports.
redis::hint_options normal_backoff(std::vector<std::string>& reports) {
  redis::hint_options options;
  options.on_error = [&reports](std::error_code, std::string_view message) { reports.emplace_back(message); };
  return options;
}

// The window the refusal tests watch a refused connection for, and the
// most connections it may make in it: with the normal backoff about 6
// (0.1 + 0.2 + 0.4 + 0.8 + 1.6 s), and 12 leaves room for a loaded machine;
// reconnecting every 100 ms, as before the fix, makes about 30.
constexpr auto refusal_window = std::chrono::seconds(3);
constexpr long long most_connections_in_window = 12;

// Runs `io` for the refusal window, whatever happens meanwhile.
void watch(asio::io_context& io) {
  (void)run_until(io, [] { return false; }, refusal_window);
}

// A subscriber at `where`, whose SUBSCRIBE the server refuses with
// `refusal`: one report naming the server (never the password) and the
// server's reason, and a reconnection with growing backoff, not a storm.
void check_refused_subscriber(const redis::url& where, const redis::url& admin, const std::string& refusal) {
  asio::io_context io;
  std::vector<std::string> reports;
  redis::hint_subscriber subscriber(io.get_executor(), where, normal_backoff(reports));
  int hints = 0;
  auto registration = subscriber.listen("alice", [&] { ++hints; });
  const auto before = test_support::redis_connections_received(admin);
  watch(io);
  const auto made = test_support::redis_connections_received(admin) - before - 1;
  INFO("connections made in " << refusal_window.count() << " s: " << made << ", reports: " << reports.size());
  CHECK(made >= 2);  // it did try again
  CHECK(made <= most_connections_in_window);
  CHECK(subscriber.failed_attempts() <= static_cast<std::uint64_t>(most_connections_in_window));
  CHECK_FALSE(subscriber.ready());
  REQUIRE(reports.size() == 1);
  CHECK(subscriber.outages() == 1);
  CHECK_THAT(reports.front(), Catch::Contains(refusal));
  CHECK_THAT(reports.front(), Catch::Contains(where.text()));
  if (!where.password.empty()) CHECK_THAT(reports.front(), !Catch::Contains(where.password));
  CHECK(hints == 0);
}

}  // namespace

TEST_CASE("a subscriber refused by a server with a password (NOAUTH) reports once and backs off", "[server]") {
  test_support::own_redis server;
  const auto admin = server.require_password("s3cret");
  check_refused_subscriber(server.url(), admin, "NOAUTH");
}

TEST_CASE("a subscriber whose ACL user may not use the channel (NOPERM) reports once and backs off", "[server]") {
  test_support::own_redis server;
  // A user who may run every command, but only on other channels.
  REQUIRE(test_support::redis_command(server.url(), {"ACL", "SETUSER", "narrow", "on", ">n4rrow", "~*",
                                                     "resetchannels", "&elsewhere:*", "+@all"}) == "OK");
  auto narrow = server.url();
  narrow.user = "narrow";
  narrow.password = "n4rrow";
  check_refused_subscriber(narrow, server.url(), "NOPERM");
}

TEST_CASE("a subscriber refused until the server lets it in: hints flow once it is let in", "[server]") {
  test_support::own_redis server;
  const auto admin = server.require_password("s3cret");
  asio::io_context io;
  std::vector<std::string> reports;
  auto options = normal_backoff(reports);
  options.backoff.max = std::chrono::milliseconds(500);
  redis::hint_subscriber subscriber(io.get_executor(), server.url(), options);
  int hints = 0;
  auto registration = subscriber.listen("alice", [&] { ++hints; });
  REQUIRE(run_until(io, [&] { return subscriber.failed_attempts() >= 3; }));
  REQUIRE(test_support::redis_command(admin, {"CONFIG", "SET", "requirepass", ""}) == "OK");
  REQUIRE(run_until(io, [&] { return subscriber.ready(); }));
  REQUIRE(test_support::redis_command(server.url(), {"PUBLISH", "storewatch:hints:alice", "wake"}) == "1");
  REQUIRE(run_until(io, [&] { return hints == 1; }));
  CHECK(reports.size() == 1);
  CHECK(subscriber.outages() == 1);
}

TEST_CASE("a publisher refused PUBLISH (NOAUTH) reports once and keeps its one connection", "[server]") {
  test_support::own_redis server;
  const auto admin = server.require_password("s3cret");
  asio::io_context io;
  std::vector<std::string> reports;
  const auto before = test_support::redis_connections_received(admin);
  redis::hint_publisher publisher(io.get_executor(), server.url(), normal_backoff(reports));
  REQUIRE(run_until(io, [&] { return publisher.ready(); }));
  for (int i = 0; i < 50; ++i) publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return publisher.sent() == 50 && !reports.empty(); }));
  watch(io);
  CHECK(test_support::redis_connections_received(admin) - before - 1 == 1);
  REQUIRE(reports.size() == 1);
  CHECK_THAT(reports.front(), Catch::Contains("the server refused PUBLISH: NOAUTH"));
  CHECK_THAT(reports.front(), Catch::Contains(server.url().text()));
}

TEST_CASE("a publisher refused AUTH reports once and reconnects with growing backoff", "[server]") {
  test_support::own_redis server;
  const auto admin = server.require_password("s3cret");
  auto wrong = server.url();
  wrong.password = "guess";
  asio::io_context io;
  std::vector<std::string> reports;
  const auto before = test_support::redis_connections_received(admin);
  redis::hint_publisher publisher(io.get_executor(), wrong, normal_backoff(reports));
  watch(io);
  const auto made = test_support::redis_connections_received(admin) - before - 1;
  INFO("connections made in " << refusal_window.count() << " s: " << made);
  CHECK(made >= 2);
  CHECK(made <= most_connections_in_window);
  REQUIRE(reports.size() == 1);
  CHECK_THAT(reports.front(), Catch::Contains("the server refused AUTH"));
  CHECK_THAT(reports.front(), !Catch::Contains("guess"));
  CHECK_FALSE(publisher.ready());
}

TEST_CASE("a hint callback may end its own registration and others", "[server]") {
  pub_sub setup;
  auto& [io, reports, where, options, subscriber, publisher] = setup;
  struct {
    std::string seen;
    int other = 0;
  } calls;
  // Captures too large for std::function's own buffer: on the heap, freed
  // with the callback (ASan sees a use after that).
  const std::string words(200, 'w');
  hint_registration mine, other;
  mine = subscriber.listen("alice", [&calls, &mine, &other, words] {
    mine.reset();
    other.reset();
    calls.seen += words;  // the callback's own captures, after its registration ended
  });
  other = subscriber.listen("alice", [&calls] { ++calls.other; });
  REQUIRE(run_until(io, [&] { return subscriber.ready() && publisher.ready(); }));
  publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return !calls.seen.empty(); }));
  publisher.publish("alice");
  REQUIRE(run_until(io, [&] { return subscriber.received() == 2; }));
  // The first callback ran once and ended the second before its turn.
  CHECK(calls.seen == words);
  CHECK(calls.other == 0);
  CHECK(reports.empty());
}

}  // namespace hints_test
