// memory_source: ids and timestamps, paging with cursors, retention and GAPs,
// malformed cursors, scripted failures, wake-ups and their cancellation.
#include "common/fixture.hpp"

#include <atomic>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace memory_source_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

static_assert(event_source<memory_source>);
static_assert(waitable_source<memory_source>);
static_assert(event_source<basic_memory_source<asio::io_context::executor_type>>);
static_assert(waitable_source<basic_memory_source<asio::io_context::executor_type>>);

namespace {

struct poll_outcome {
  std::error_code ec;
  poll_result result;
};

/// One async_poll with a callback, run to completion on `io`.
poll_outcome poll_once(asio::io_context& io, memory_source& source, const std::string& cursor, std::size_t max_events) {
  std::optional<poll_outcome> outcome;
  source.async_poll(cursor, max_events,
                    [&](std::error_code ec, poll_result result) { outcome = poll_outcome{ec, std::move(result)}; });
  REQUIRE(run_until(io, [&] { return outcome.has_value(); }));
  return std::move(*outcome);
}

std::vector<std::string> data_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

std::vector<std::string> names_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.name);
  return out;
}

std::string numbered(const char* prefix, int i) {
  std::string out = prefix;
  out += std::to_string(i);
  return out;
}

void publish_numbered(memory_source& source, const char* prefix, int first, int count) {
  for (int i = first; i < first + count; ++i) source.publish("CREATE", numbered(prefix, i));
}

std::vector<std::string> numbered_list(const char* prefix, int first, int count) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i) out.push_back(numbered(prefix, i));
  return out;
}

timestamp now_ms() { return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()); }

}  // namespace

// ---------------------------------------------------------------- publish

TEST_CASE("publish assigns <epoch>-<n> ids when empty, keeps given ids, and returns the id") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  CHECK(source.epoch() == "ep");
  CHECK(source.publish("CREATE", "a") == "ep-0");
  CHECK(source.publish("SHARE", "b", "alice") == "ep-1");
  CHECK(source.publish(make_event("DELETE", "c", "my-own-id")) == "my-own-id");
  CHECK(source.publish(make_event("CUSTOM", "d")) == "ep-3");

  const auto outcome = poll_once(io, source, "", 10);
  REQUIRE_FALSE(outcome.ec);
  REQUIRE(outcome.result.events.size() == 4);
  const auto& events = outcome.result.events;
  CHECK(events[0].id == "ep-0");
  CHECK(events[1].id == "ep-1");
  CHECK(events[2].id == "my-own-id");
  CHECK(events[3].id == "ep-3");
  CHECK(names_of(events) == std::vector<std::string>{"CREATE", "SHARE", "DELETE", "CUSTOM"});
  CHECK(data_of(events) == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(events[1].actor == "alice");
}

TEST_CASE("an empty epoch option becomes a random epoch") {
  asio::io_context io;
  memory_source a(io.get_executor());
  memory_source b(io.get_executor());
  CHECK_FALSE(a.epoch().empty());
  CHECK(a.epoch() != b.epoch());
  CHECK(a.publish("CREATE", "x") == a.epoch() + "-0");
}

TEST_CASE("publish sets occurred_at to now when unset and keeps it when set") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  const auto before = now_ms();
  source.publish("CREATE", "unset");
  const auto after = now_ms();
  auto given = make_event("CREATE", "set");
  given.occurred_at = timestamp{std::chrono::milliseconds{1761135341619}};
  source.publish(given);

  const auto outcome = poll_once(io, source, "", 10);
  REQUIRE(outcome.result.events.size() == 2);
  CHECK(outcome.result.events[0].occurred_at >= before);
  CHECK(outcome.result.events[0].occurred_at <= after);
  CHECK(outcome.result.events[1].occurred_at == timestamp{std::chrono::milliseconds{1761135341619}});
}

// ---------------------------------------------------------------- async_poll

TEST_CASE("async_poll pages from the empty cursor in order, at most max_events, continuing exactly where it stopped") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  publish_numbered(source, "f", 0, 10);

  std::vector<event> got;
  std::vector<std::size_t> sizes;
  std::string cursor;
  for (int round = 0; round < 3; ++round) {
    auto outcome = poll_once(io, source, cursor, 4);
    REQUIRE_FALSE(outcome.ec);
    CHECK(outcome.result.problems.empty());
    sizes.push_back(outcome.result.events.size());
    for (auto& e : outcome.result.events) got.push_back(std::move(e));
    cursor = outcome.result.next_cursor;
  }
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  CHECK(data_of(got) == numbered_list("f", 0, 10));
  CHECK(cursor == "ep:10");

  // The final cursor: nothing, and the same cursor back.
  auto last = poll_once(io, source, cursor, 4);
  CHECK_FALSE(last.ec);
  CHECK(last.result.events.empty());
  CHECK(last.result.problems.empty());
  CHECK(last.result.next_cursor == cursor);

  // Events published later continue from there.
  publish_numbered(source, "f", 10, 2);
  auto more = poll_once(io, source, cursor, 4);
  CHECK(data_of(more.result.events) == numbered_list("f", 10, 2));
  CHECK(more.result.next_cursor == "ep:12");
}

TEST_CASE("async_poll of an empty source returns nothing and a cursor that later sees the first event") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  auto empty = poll_once(io, source, "", 8);
  CHECK_FALSE(empty.ec);
  CHECK(empty.result.events.empty());
  CHECK(empty.result.problems.empty());
  CHECK(empty.result.next_cursor == "ep:0");
  source.publish("CREATE", "first");
  auto next = poll_once(io, source, empty.result.next_cursor, 8);
  CHECK(data_of(next.result.events) == std::vector<std::string>{"first"});
}

TEST_CASE("async_poll with use_awaitable") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  publish_numbered(source, "f", 0, 5);
  std::vector<event> got;
  std::string cursor;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    for (;;) {
      auto batch = co_await source.async_poll(cursor, 2, asio::use_awaitable);
      CHECK(batch.events.size() <= 2);
      if (batch.events.empty()) {
        CHECK(batch.next_cursor == cursor);
        co_return;
      }
      for (auto& e : batch.events) got.push_back(std::move(e));
      cursor = std::move(batch.next_cursor);
    }
  });
  CHECK(data_of(got) == numbered_list("f", 0, 5));
  CHECK(cursor == "ep:5");
}

TEST_CASE("the completion handler of async_poll never runs inside async_poll") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  source.publish("CREATE", "a");

  SECTION("called from outside the io_context") {
    bool called = false;
    source.async_poll("", 4, [&](std::error_code, poll_result) { called = true; });
    CHECK_FALSE(called);
    REQUIRE(run_until(io, [&] { return called; }));
  }
  SECTION("called from a handler running on the io_context") {
    bool called = false;
    bool called_inside = true;
    asio::post(io, [&] {
      source.async_poll("", 4, [&](std::error_code, poll_result) { called = true; });
      called_inside = called;
    });
    REQUIRE(run_until(io, [&] { return called; }));
    CHECK_FALSE(called_inside);
  }
  SECTION("a scripted failure") {
    source.fail_next_polls(1);
    std::optional<std::error_code> result;
    source.async_poll("", 4, [&](std::error_code ec, poll_result) { result = ec; });
    CHECK_FALSE(result.has_value());
    REQUIRE(run_until(io, [&] { return result.has_value(); }));
    CHECK(*result == errc::source_unavailable);
  }
}

// ---------------------------------------------------------------- retention and GAPs

TEST_CASE("retention: a poll from the start gets a GAP naming the dropped range, then the events kept") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep", .retention = 3});
  publish_numbered(source, "f", 0, 5);  // f0 and f1 are dropped

  auto outcome = poll_once(io, source, "", 10);
  REQUIRE_FALSE(outcome.ec);
  CHECK(outcome.result.problems.empty());
  REQUIRE(outcome.result.events.size() == 4);
  const auto& gap = outcome.result.events[0];
  CHECK(gap.name == "GAP");
  CHECK(gap.name == event_name::gap);
  CHECK_THAT(gap.data, Catch::Contains("0 to 1"));
  CHECK_FALSE(gap.id.empty());
  CHECK(gap.occurred_at != timestamp{});
  const std::vector<event> kept(outcome.result.events.begin() + 1, outcome.result.events.end());
  CHECK(data_of(kept) == numbered_list("f", 2, 3));
  CHECK(kept[0].id == "ep-2");
  CHECK(outcome.result.next_cursor == "ep:5");

  SECTION("a cursor pointing into the dropped range") {
    auto from_one = poll_once(io, source, "ep:1", 10);
    REQUIRE(from_one.result.events.size() == 4);
    CHECK(from_one.result.events[0].name == "GAP");
    CHECK_THAT(from_one.result.events[0].data, Catch::Contains("1 to 1"));
    CHECK(data_of({from_one.result.events.begin() + 1, from_one.result.events.end()}) == numbered_list("f", 2, 3));
    CHECK(from_one.result.problems.empty());
  }
  SECTION("a cursor at the oldest event kept gets no GAP") {
    auto from_two = poll_once(io, source, "ep:2", 10);
    CHECK(data_of(from_two.result.events) == numbered_list("f", 2, 3));
  }
  SECTION("the GAP counts against max_events and paging continues without repeats") {
    std::vector<event> got;
    std::string cursor;
    for (int round = 0; round < 4; ++round) {
      auto page = poll_once(io, source, cursor, 2);
      CHECK(page.result.events.size() <= 2);
      for (auto& e : page.result.events) got.push_back(std::move(e));
      cursor = page.result.next_cursor;
    }
    CHECK(names_of(got) == std::vector<std::string>{"GAP", "CREATE", "CREATE", "CREATE"});
    CHECK(data_of({got.begin() + 1, got.end()}) == numbered_list("f", 2, 3));
    CHECK(cursor == "ep:5");
  }
}

TEST_CASE("a cursor from another epoch gets a GAP, then everything kept, and no problem report") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep", .retention = 3});
  publish_numbered(source, "f", 0, 5);
  for (const std::string cursor : {"other:2", "other:0", "ep2:5", "e:1"}) {
    INFO("cursor " << cursor);
    auto outcome = poll_once(io, source, cursor, 10);
    CHECK_FALSE(outcome.ec);
    CHECK(outcome.result.problems.empty());
    REQUIRE(outcome.result.events.size() == 4);
    CHECK(outcome.result.events[0].name == "GAP");
    CHECK_FALSE(outcome.result.events[0].data.empty());
    CHECK(data_of({outcome.result.events.begin() + 1, outcome.result.events.end()}) == numbered_list("f", 2, 3));
    CHECK(outcome.result.next_cursor == "ep:5");
  }
}

TEST_CASE("a malformed cursor is reported as a problem quoting it, answered with a GAP, and reading goes on") {
  asio::io_context io;
  const auto retention = GENERATE(std::size_t{0}, std::size_t{3});
  memory_source source(io.get_executor(), {.epoch = "ep", .retention = retention});
  publish_numbered(source, "f", 0, 5);
  const int oldest = retention == 0 ? 0 : 2;

  const std::string cursor = GENERATE(as<std::string>{}, "garbage", "ep:", "ep:12x", "ep:6", "ep:1000", "ep:-1",
                                      "other:x", ":");
  INFO("retention " << retention << ", cursor " << cursor);
  auto outcome = poll_once(io, source, cursor, 10);
  CHECK_FALSE(outcome.ec);  // not an error of the poll: the stream must go on
  REQUIRE(outcome.result.problems.size() == 1);
  CHECK(outcome.result.problems[0].code == errc::invalid_cursor);
  CHECK_THAT(outcome.result.problems[0].message, Catch::Contains("\"" + cursor + "\""));
  REQUIRE(outcome.result.events.size() == static_cast<std::size_t>(1 + 5 - oldest));
  CHECK(outcome.result.events[0].name == "GAP");
  CHECK_FALSE(outcome.result.events[0].data.empty());
  CHECK(data_of({outcome.result.events.begin() + 1, outcome.result.events.end()}) ==
        numbered_list("f", oldest, 5 - oldest));
  CHECK(outcome.result.next_cursor == "ep:5");

  // The cursor it handed back is a good one.
  auto next = poll_once(io, source, outcome.result.next_cursor, 10);
  CHECK(next.result.events.empty());
  CHECK(next.result.problems.empty());
}

TEST_CASE("a cursor whose sequence overflows 64 bits is malformed, not the start") {
  // std::from_chars reports result_out_of_range with ptr at the end of the
  // digits, so checking ptr alone accepts this cursor as sequence 0.
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  publish_numbered(source, "f", 0, 3);
  const std::string cursor = "ep:99999999999999999999999";
  auto outcome = poll_once(io, source, cursor, 10);
  CHECK_FALSE(outcome.ec);
  REQUIRE(outcome.result.problems.size() == 1);
  CHECK(outcome.result.problems[0].code == errc::invalid_cursor);
  CHECK_THAT(outcome.result.problems[0].message, Catch::Contains("\"" + cursor + "\""));
  REQUIRE_FALSE(outcome.result.events.empty());
  CHECK(outcome.result.events[0].name == "GAP");
  CHECK(outcome.result.next_cursor == "ep:3");
}

// ---------------------------------------------------------------- scripted failures

TEST_CASE("fail_next_polls(n, code): the next n polls fail with code, then polls succeed, poll_count counts all") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  publish_numbered(source, "f", 0, 2);
  CHECK(source.poll_count() == 0);
  CHECK_FALSE(poll_once(io, source, "", 10).ec);
  CHECK(source.poll_count() == 1);

  const std::error_code code = GENERATE(make_error_code(errc::source_unavailable),
                                        make_error_code(asio::error::connection_refused));
  source.fail_next_polls(3, code);
  for (int i = 0; i < 3; ++i) {
    INFO("poll " << i);
    auto failed = poll_once(io, source, "", 10);
    CHECK(failed.ec == code);
    CHECK(failed.result.events.empty());
  }
  CHECK(source.poll_count() == 4);
  auto ok = poll_once(io, source, "", 10);
  CHECK_FALSE(ok.ec);
  CHECK(data_of(ok.result.events) == numbered_list("f", 0, 2));
  CHECK(source.poll_count() == 5);

  // The default code is source_unavailable; a later call replaces the count.
  source.fail_next_polls(5);
  source.fail_next_polls(1);
  CHECK(poll_once(io, source, "", 10).ec == errc::source_unavailable);
  CHECK_FALSE(poll_once(io, source, "", 10).ec);
  CHECK(source.poll_count() == 7);
}

TEST_CASE("a scripted failure throws std::system_error through use_awaitable") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  source.publish("CREATE", "a");
  source.fail_next_polls(1, asio::error::timed_out);
  std::error_code thrown;
  std::size_t after = 0;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    const std::string cursor;
    try {
      co_await source.async_poll(cursor, 4, asio::use_awaitable);
    } catch (const std::system_error& error) {
      thrown = error.code();
    }
    auto batch = co_await source.async_poll(cursor, 4, asio::use_awaitable);
    after = batch.events.size();
  });
  CHECK(thrown == asio::error::timed_out);
  CHECK(after == 1);
  CHECK(source.poll_count() == 2);
}

// ---------------------------------------------------------------- async_wait_for_change

TEST_CASE("async_wait_for_change completes at once, but not inline, when events past the cursor exist") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  publish_numbered(source, "f", 0, 2);
  const std::string cursor = GENERATE(as<std::string>{}, "", "ep:0", "ep:1", "other:7");
  INFO("cursor " << cursor);
  std::optional<std::error_code> result;
  source.async_wait_for_change(cursor, [&](std::error_code ec) { result = ec; });
  CHECK_FALSE(result.has_value());
  REQUIRE(run_until(io, [&] { return result.has_value(); }, 2s));
  CHECK(*result == std::error_code{});
}

TEST_CASE("async_wait_for_change from inside a handler does not complete inline either") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  source.publish("CREATE", "a");
  std::optional<std::error_code> result;
  bool completed_inside = true;
  asio::post(io, [&] {
    source.async_wait_for_change("", [&](std::error_code ec) { result = ec; });
    completed_inside = result.has_value();
  });
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  CHECK_FALSE(completed_inside);
  CHECK(*result == std::error_code{});
}

TEST_CASE("async_wait_for_change waits while nothing is past the cursor, and completes after a publish") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  publish_numbered(source, "f", 0, 2);
  std::optional<std::error_code> first, second;
  const std::string at_end = "ep:2";
  source.async_wait_for_change(at_end, [&](std::error_code ec) { first = ec; });
  source.async_wait_for_change(at_end, [&](std::error_code ec) { second = ec; });
  run_until(io, [&] { return first.has_value() || second.has_value(); }, 50ms);
  CHECK_FALSE(first.has_value());
  CHECK_FALSE(second.has_value());

  source.publish("CREATE", "f2");
  REQUIRE(run_until(io, [&] { return first.has_value() && second.has_value(); }));
  CHECK(*first == std::error_code{});
  CHECK(*second == std::error_code{});

  // And the next wait, from the new end, waits again.
  std::optional<std::error_code> third;
  source.async_wait_for_change("ep:3", [&](std::error_code ec) { third = ec; });
  run_until(io, [&] { return third.has_value(); }, 50ms);
  CHECK_FALSE(third.has_value());
  source.publish("CREATE", "f3");
  REQUIRE(run_until(io, [&] { return third.has_value(); }));
  CHECK(*third == std::error_code{});
}

TEST_CASE("async_wait_for_change on an empty source waits for the first publish") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  std::optional<std::error_code> result;
  source.async_wait_for_change("", [&](std::error_code ec) { result = ec; });
  run_until(io, [&] { return result.has_value(); }, 50ms);
  CHECK_FALSE(result.has_value());
  source.publish("CREATE", "a");
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  CHECK(*result == std::error_code{});
}

TEST_CASE("async_wait_for_change is woken by a publish from another thread while the io_context runs here") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  source.publish("CREATE", "a");
  std::optional<std::error_code> result;
  source.async_wait_for_change("ep:1", [&](std::error_code ec) { result = ec; });
  std::atomic<bool> running{false};
  asio::post(io, [&] { running = true; });
  std::thread publisher([&] {
    while (!running) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);  // the io_context is blocked waiting by now
    source.publish("CREATE", "b");
  });
  const bool woke = run_until(io, [&] { return result.has_value(); });
  publisher.join();
  REQUIRE(woke);
  CHECK(*result == std::error_code{});
  CHECK(data_of(poll_once(io, source, "ep:1", 10).result.events) == std::vector<std::string>{"b"});
}

TEST_CASE("async_wait_for_change then async_poll with use_awaitable") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  std::vector<std::string> got;
  bool waiting = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::string cursor;
        auto first = co_await source.async_poll(cursor, 8, asio::use_awaitable);
        cursor = first.next_cursor;
        waiting = true;
        co_await source.async_wait_for_change(cursor, asio::use_awaitable);
        auto second = co_await source.async_poll(cursor, 8, asio::use_awaitable);
        for (const auto& e : second.events) got.push_back(e.data);
      },
      [](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
      });
  REQUIRE(run_until(io, [&] { return waiting; }));
  io.poll();
  source.publish("CREATE", "late");
  REQUIRE(run_until(io, [&] { return !got.empty(); }));
  CHECK(got == std::vector<std::string>{"late"});
}

TEST_CASE("a per-operation cancellation completes async_wait_for_change with operation_aborted") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  INFO("cancellation type " << static_cast<int>(type));
  asio::cancellation_signal cancel;
  std::optional<std::error_code> cancelled, other;
  source.async_wait_for_change("ep:0", asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) {
                                 cancelled = ec;
                               }));
  source.async_wait_for_change("ep:0", [&](std::error_code ec) { other = ec; });
  run_until(io, [&] { return cancelled.has_value(); }, 20ms);
  REQUIRE_FALSE(cancelled.has_value());
  cancel.emit(type);
  REQUIRE(run_until(io, [&] { return cancelled.has_value(); }));
  CHECK(*cancelled == asio::error::operation_aborted);
  // The other wait is not affected, and still completes on a publish.
  run_until(io, [&] { return other.has_value(); }, 20ms);
  CHECK_FALSE(other.has_value());
  source.publish("CREATE", "a");
  REQUIRE(run_until(io, [&] { return other.has_value(); }));
  CHECK(*other == std::error_code{});

  // A wait started after the cancellation works normally.
  std::optional<std::error_code> again;
  source.async_wait_for_change("ep:1", [&](std::error_code ec) { again = ec; });
  source.publish("CREATE", "b");
  REQUIRE(run_until(io, [&] { return again.has_value(); }));
  CHECK(*again == std::error_code{});
}

TEST_CASE("a cancelled async_wait_for_change with use_awaitable throws operation_aborted") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  asio::cancellation_signal cancel;
  std::optional<std::error_code> thrown;
  bool started = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        started = true;
        const std::string cursor;
        try {
          co_await source.async_wait_for_change(cursor, asio::use_awaitable);
          thrown = std::error_code{};
        } catch (const std::system_error& error) {
          thrown = error.code();
        }
      },
      asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
      }));
  REQUIRE(run_until(io, [&] { return started; }));
  io.poll();
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return thrown.has_value(); }));
  CHECK(*thrown == asio::error::operation_aborted);
}

TEST_CASE("a wake-up meant for an earlier waiter does not abort a later waiter that nobody cancelled") {
  // What a poller does: wait at cursor ep:0; an event is published (the
  // source schedules a wake-up); the poller reads it by another path and
  // waits again at ep:1 before that wake-up has run. The stale wake-up must
  // not complete the new wait with operation_aborted: nobody cancelled it,
  // and a poller treats the aborted wait as "no wake-up" and sleeps for its
  // whole poll interval.
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "ep"});
  std::optional<std::error_code> first, second;
  source.async_wait_for_change("ep:0", [&](std::error_code ec) { first = ec; });
  source.publish("CREATE", "a");
  source.async_wait_for_change("ep:1", [&](std::error_code ec) { second = ec; });
  REQUIRE(run_until(io, [&] { return first.has_value(); }));
  CHECK(*first == std::error_code{});
  run_until(io, [&] { return second.has_value(); }, 50ms);
  CHECK_FALSE(second.has_value());
  source.publish("CREATE", "b");
  REQUIRE(run_until(io, [&] { return second.has_value(); }));
  CHECK(*second == std::error_code{});
}

}  // namespace memory_source_test
