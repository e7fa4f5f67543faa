// poller: delivery, batching, wake-ups, backoff, backpressure, stop, checkpoints.
#include "common/fixture.hpp"
#include "common/recording_source.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace poller_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

/// Takes events from `stream` into `into` until the stream ends.
asio::awaitable<void> collect(event_stream& stream, std::vector<event>& into, std::error_code& end) {
  for (;;) {
    auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
    if (ec) {
      end = ec;
      co_return;
    }
    into.push_back(std::move(e));
  }
}

std::vector<std::string> data_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

std::vector<std::string> numbered(const std::string& prefix, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

/// A recording source that is also a `paced_source`: while `hinted`, it asks
/// a poller to wait `hinted_interval` for a wake-up, otherwise the poller's
/// own interval. Records what it was asked.
class pacing_source : public recording_source {
 public:
  using recording_source::recording_source;

  std::chrono::milliseconds poll_interval(std::chrono::milliseconds configured) const {
    asked.push_back(configured);
    return hinted ? hinted_interval : configured;
  }

  bool hinted = true;
  std::chrono::milliseconds hinted_interval{1h};
  mutable std::vector<std::chrono::milliseconds> asked;
};

static_assert(paced_source<pacing_source>);
static_assert(!paced_source<recording_source>);

}  // namespace

TEST_CASE("the poller delivers events published before and after it starts, in order") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 1h});
  for (int i = 0; i < 3; ++i) source.publish("CREATE", "before" + std::to_string(i));
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return got.size() == 3; }));
  // Wake-ups deliver these although the poll interval is an hour.
  for (int i = 0; i < 3; ++i) source.publish("SHARE", "after" + std::to_string(i));
  REQUIRE(run_until(io, [&] { return got.size() == 6; }));
  auto expected = numbered("before", 3);
  for (auto& s : numbered("after", 3)) expected.push_back(s);
  CHECK(data_of(got) == expected);
  poller.stop();
  run_to_idle(io);
  CHECK(end == errc::end_of_stream);
}

TEST_CASE("full batches are followed by another poll at once, the batch's last event carries the cursor") {
  asio::io_context io;
  recording_source source(io.get_executor());
  event_stream stream(io, 64);
  poller poller(source, stream, {.poll_interval = 1h, .wake_ups = false, .batch_size = 3});
  for (int i = 0; i < 10; ++i) source.inner.publish("CREATE", "f" + std::to_string(i));
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return got.size() == 10; }));
  CHECK(data_of(got) == numbered("f", 10));
  // Batches of 3, 3, 3, 1: the cursor rides on events 2, 5, 8 and 9.
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("event " << i);
    CHECK(got[i].cursor.empty() == !(i == 2 || i == 5 || i == 8 || i == 9));
  }
  CHECK(got[9].cursor == source.inner.epoch() + ":10");
  CHECK(stream.stats().snapshot().polls == 4);
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("idle intervals with wake-ups on: the timer keeps winning, polls go on, a late event arrives") {
  // Regression: the memory source completed a cancelled wait while holding
  // its lock; the poller resumed inside that completion and polled, taking
  // the same lock: the io_context hung after the first idle interval.
  asio::io_context io;
  memory_source source(io.get_executor());
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 5ms});
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return source.poll_count() >= 10; }));
  source.publish("CREATE", "late");
  REQUIRE(run_until(io, [&] { return got.size() == 1; }));
  poller.stop();
  run_to_idle(io);
  CHECK(end == errc::end_of_stream);
}

TEST_CASE("without wake-ups a new event waits for the poll interval") {
  asio::io_context io;
  recording_source source(io.get_executor());
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 30ms, .wake_ups = false});
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return source.poll_times.size() >= 2; }));
  source.inner.publish("CREATE", "late");
  REQUIRE(run_until(io, [&] { return got.size() == 1; }));
  CHECK(source.wake_waits == 0);
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("a source that fails 5 times then recovers: all delivered, 5 errors, retries spaced by the backoff") {
  asio::io_context io;
  recording_source source(io.get_executor());
  event_stream stream(io, 16);
  error_log errors;
  const backoff_policy backoff{.initial = 20ms, .max = 1s, .multiplier = 2.0, .jitter = 0.5};
  poller poller(source, stream, {.poll_interval = 1h, .backoff = backoff, .on_error = errors.handler()});
  for (int i = 0; i < 4; ++i) source.inner.publish("CREATE", "f" + std::to_string(i));
  source.inner.fail_next_polls(5);
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return got.size() == 4; }));
  CHECK(data_of(got) == numbered("f", 4));
  REQUIRE(errors.entries.size() == 5);
  for (const auto& [ec, message] : errors.entries) {
    CHECK(ec == errc::source_unavailable);
    CHECK_THAT(message, Catch::Contains("poll failed") && Catch::Contains("retrying in"));
  }
  const auto s = stream.stats().snapshot();
  CHECK(s.poll_errors == 5);
  CHECK(s.retries == 5);
  REQUIRE(source.poll_times.size() >= 6);
  for (unsigned failure = 1; failure <= 5; ++failure) {
    const auto gap = source.poll_times[failure] - source.poll_times[failure - 1];
    const auto lower_bound = detail::backoff_delay(backoff, failure, 1.0);  // the shortest jittered delay
    INFO("retry " << failure);
    CHECK(gap >= lower_bound);
  }
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("backpressure: a slow consumer suspends the poller, nothing is lost, the queue stays within capacity") {
  asio::io_context io;
  recording_source source(io.get_executor());
  constexpr std::size_t capacity = 8;
  constexpr std::size_t batch = 16;
  constexpr int total = 2000;
  event_stream stream(io, capacity);
  poller poller(source, stream, {.poll_interval = 1h, .batch_size = batch});
  for (int i = 0; i < total; ++i) source.inner.publish("CREATE", "f" + std::to_string(i));
  poller.start();
  std::vector<event> got;
  std::int64_t deepest = 0;
  std::size_t furthest_ahead = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer slow(io);
        while (got.size() < static_cast<std::size_t>(total)) {
          if (got.size() % 100 == 0) {  // now and then, let the poller run ahead as far as it can
            slow.expires_after(2ms);
            co_await slow.async_wait(asio::use_awaitable);
          }
          deepest = std::max(deepest, stream.stats().snapshot().queue_depth);
          furthest_ahead = std::max(furthest_ahead, source.handed_out - got.size());
          got.push_back(co_await stream.async_next(asio::use_awaitable));
        }
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return got.size() == static_cast<std::size_t>(total); }));
  CHECK(data_of(got) == numbered("f", total));
  CHECK(deepest == static_cast<std::int64_t>(capacity));  // it did fill up...
  // ...and the poller stopped taking events: at most the buffer, one batch
  // in hand and the event being pushed are ahead of the consumer.
  CHECK(furthest_ahead <= capacity + batch + 1);
  CHECK(source.poll_times.size() <= static_cast<std::size_t>(total) / batch + 2);
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("stop() with a 5 s interval returns the io_context to idle in well under a second") {
  asio::io_context io;
  recording_source source(io.get_executor());
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 5s});
  source.inner.publish("CREATE", "x");
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return got.size() == 1 && source.wake_waits == 1; }));  // idle, waiting
  const auto started = std::chrono::steady_clock::now();
  poller.stop();
  run_to_idle(io);
  CHECK(std::chrono::steady_clock::now() - started < 500ms);
  CHECK_FALSE(poller.running());
  CHECK(end == errc::end_of_stream);
}

TEST_CASE("stop() ends a poller suspended on a full stream") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_stream stream(io, 2);
  poller poller(source, stream, {.poll_interval = 5s});
  for (int i = 0; i < 10; ++i) source.publish("CREATE", "f" + std::to_string(i));
  poller.start();
  REQUIRE(run_until(io, [&] { return stream.stats().snapshot().queue_depth == 2; }));
  io.poll();
  poller.stop();
  run_to_idle(io);
  CHECK_FALSE(poller.running());
}

TEST_CASE("async_run completes with stopped when its cancellation slot fires") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 5s});
  asio::cancellation_signal cancel;
  std::optional<std::error_code> result;
  poller.async_run({}, asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) { result = ec; }));
  REQUIRE(run_until(io, [&] { return stream.stats().snapshot().polls == 1; }));
  io.poll();
  cancel.emit(asio::cancellation_type::terminal);
  const auto took = run_to_idle(io);
  CHECK(took < 500ms);
  REQUIRE(result);
  CHECK(*result == errc::stopped);
}

TEST_CASE("stop() is prompt for a run begun with async_run too, while it waits for a wake-up") {
  asio::io_context io;
  recording_source source(io.get_executor());
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 1h});
  std::optional<std::error_code> result;
  poller.async_run({}, [&](std::error_code ec) { result = ec; });
  REQUIRE(run_until(io, [&] { return source.wake_waits >= 1 && source.poll_times.size() >= 1; }));  // waiting
  io.poll();
  const auto started = std::chrono::steady_clock::now();
  poller.stop();
  run_to_idle(io);
  CHECK(std::chrono::steady_clock::now() - started < 500ms);
  REQUIRE(result);
  CHECK(*result == errc::stopped);
  CHECK_FALSE(poller.running());
}

TEST_CASE("async_run works with use_awaitable and ends when the stream is closed by its consumer") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_stream stream(io, 1);
  poller poller(source, stream, {.poll_interval = 5s});
  for (int i = 0; i < 5; ++i) source.publish("CREATE", "f" + std::to_string(i));
  std::optional<std::error_code> result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // A named start state: g++ 12 mishandles a `{}` temporary inside a co_await expression.
        checkpoint_state from_start;
        auto [ec] = co_await poller.async_run(std::move(from_start), asio::experimental::as_tuple(asio::use_awaitable));
        result = ec;
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return stream.stats().snapshot().queue_depth == 1; }));
  stream.close();  // the consumer has had enough
  run_to_idle(io);
  REQUIRE(result);
  CHECK(*result == errc::end_of_stream);
}

TEST_CASE("starting from a checkpoint skips events already delivered after its cursor") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "fixed"});
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 1h});
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(source.publish("CREATE", "f" + std::to_string(i)));
  // Delivered before: events 0 and 1 (cursor after 1), then 2 and 3 by id.
  poller.start({.cursor = "fixed:2", .delivered_ids = {ids[2], ids[3]}});
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return got.size() == 2; }));
  CHECK(data_of(got) == std::vector<std::string>{"f4", "f5"});
  CHECK(stream.stats().snapshot().duplicates == 2);
  poller.stop();
  run_to_idle(io);
  CHECK(got.size() == 2);
}

TEST_CASE("problems a source skipped are reported and counted, delivery goes on") {
  asio::io_context io;
  recording_source source(io.get_executor());
  event_stream stream(io, 16);
  error_log errors;
  poller poller(source, stream, {.poll_interval = 1h, .on_error = errors.handler()});
  source.problems_to_add.push_back({errc::invalid_event, "journal bob123/0001.log offset 4096: bad checksum"});
  source.inner.publish("CREATE", "a");
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return got.size() == 1; }));
  REQUIRE(errors.entries.size() == 1);
  CHECK(errors.entries[0].second == "journal bob123/0001.log offset 4096: bad checksum");
  CHECK(stream.stats().snapshot().problems == 1);
  source.inner.publish("CREATE", "b");
  REQUIRE(run_until(io, [&] { return got.size() == 2; }));
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("failing wake-ups are reported once and polling carries on at the interval") {
  asio::io_context io;
  recording_source source(io.get_executor());
  source.wake_error = make_error_code(std::errc::no_such_device);
  event_stream stream(io, 16);
  error_log errors;
  poller poller(source, stream, {.poll_interval = 20ms, .on_error = errors.handler()});
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  REQUIRE(run_until(io, [&] { return source.poll_times.size() >= 3; }));
  source.inner.publish("CREATE", "a");
  REQUIRE(run_until(io, [&] { return got.size() == 1; }));
  CHECK(source.wake_waits == 1);
  REQUIRE(errors.entries.size() == 1);
  CHECK(errors.entries[0].first == std::errc::no_such_device);
  CHECK_THAT(errors.entries[0].second, Catch::Contains("wake-ups failed, polling every 20 ms"));
  // Polls are spaced by the interval, not a busy loop.
  for (std::size_t i = 2; i < source.poll_times.size(); ++i) CHECK(source.poll_times[i] - source.poll_times[i - 1] >= 20ms);
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("the poller works on a strand executor") {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  memory_source source(strand);
  basic_event_stream<asio::strand<asio::io_context::executor_type>> stream(strand, 4);
  poller poller(source, stream, {.poll_interval = 1h});
  source.publish("CREATE", "a");
  asio::post(strand, [&] { poller.start(); });
  int got = 0;
  stream.async_next([&](std::error_code ec, event) {
    CHECK_FALSE(ec);
    ++got;
  });
  REQUIRE(run_until(io, [&] { return got == 1; }));
  asio::post(strand, [&] { poller.stop(); });
  run_to_idle(io);
}

TEST_CASE("an exception escaping the poll loop ends the run and the stream with its error: a waiting consumer hears it") {
  const bool system_error = GENERATE(false, true);
  asio::io_context io;
  recording_source source(io.get_executor());
  event_stream stream(io, 16);
  const auto give_up = [system_error](std::error_code, std::string_view) {
    if (system_error) throw std::system_error(make_error_code(errc::store_io_failed), "the handler gave up");
    throw std::runtime_error("the handler gave up");
  };
  poller poller(source, stream, {.poll_interval = 1h, .on_error = give_up});
  source.problems_to_add.push_back({errc::invalid_event, "journal bob123/0001.log offset 7: bad checksum"});
  std::vector<event> got;
  std::error_code end;
  bool ended = false;
  asio::co_spawn(io, collect(stream, got, end), [&](std::exception_ptr) { ended = true; });
  poller.start();
  std::string escaped;
  try {
    run_until(io, [&] { return ended; });
  } catch (const std::exception& e) {
    escaped = e.what();  // rethrown out of run(), as an exception from a handler is
  }
  CHECK(escaped.find("the handler gave up") != std::string::npos);
  REQUIRE(run_until(io, [&] { return ended; }));
  CHECK_FALSE(poller.running());
  CHECK(end == (system_error ? make_error_code(errc::store_io_failed) : make_error_code(errc::poller_failed)));
  CHECK(got.empty());
}

TEST_CASE("stop() right after start(), before the io_context has run anything: the run ends quietly, the stream "
          "too") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 1h});
  source.publish("CREATE", "a");
  poller.start();
  poller.stop();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  CHECK_NOTHROW(run_to_idle(io));
  CHECK_FALSE(poller.running());
  CHECK(end == errc::end_of_stream);
}

TEST_CASE("a paced source sets each wait: its long interval while hinted, the poller's own once it says so") {
  asio::io_context io;
  pacing_source source(io.get_executor());
  event_stream stream(io, 16);
  constexpr auto interval = 20ms;
  poller poller(source, stream, {.poll_interval = interval});
  poller.start();
  std::vector<event> got;
  std::error_code end;
  asio::co_spawn(io, collect(stream, got, end), asio::detached);
  // Polled once, asked, and now waits the source's hour.
  REQUIRE(run_until(io, [&] { return source.poll_times.size() == 1 && source.wake_waits == 1; }));
  REQUIRE(source.asked.size() == 1);
  CHECK(source.asked[0] == interval);  // the poller's own interval, for the source to stretch
  // Twenty-five of the poller's intervals: no poll. (A window in which
  // nothing may happen; a poller that ignored the source would poll about
  // every 20 ms in it.)
  CHECK_FALSE(run_until(io, [&] { return source.poll_times.size() > 1; }, 25 * interval));

  // The hints are gone: the source answers the poller's interval and, as
  // the concept asks, completes the pending wait (here with an event).
  source.hinted = false;
  source.inner.publish("CREATE", "after");
  REQUIRE(run_until(io, [&] { return got.size() == 1; }));
  // Asked again before the next wait, the poller's own interval now: polls
  // come at it, with no further wake-up.
  const auto polls = source.poll_times.size();
  REQUIRE(run_until(io, [&] { return source.poll_times.size() >= polls + 3; }));
  CHECK(source.asked.size() >= 4);
  CHECK(std::all_of(source.asked.begin(), source.asked.end(), [&](auto asked) { return asked == interval; }));
  CHECK(data_of(got) == std::vector<std::string>{"after"});
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("a paced source's interval is the wait, also one shorter than the poller's own") {
  asio::io_context io;
  pacing_source source(io.get_executor());
  source.hinted_interval = 10ms;  // not what a source would ask for, but it shows the answer is the wait
  event_stream stream(io, 16);
  poller poller(source, stream, {.poll_interval = 1h});
  poller.start();
  // With the poller's own hour, a second poll would not come within the bound.
  REQUIRE(run_until(io, [&] { return source.poll_times.size() >= 4; }));
  CHECK(source.asked.size() >= 3);
  CHECK(std::all_of(source.asked.begin(), source.asked.end(), [](auto asked) { return asked == 1h; }));
  for (std::size_t i = 1; i < source.poll_times.size(); ++i) CHECK(source.poll_times[i] - source.poll_times[i - 1] >= 10ms);
  poller.stop();
  run_to_idle(io);
}

TEST_CASE("a paced source is not asked by a poller without wake-ups, nor is a source without poll_interval") {
  asio::io_context io;
  constexpr auto interval = 20ms;
  pacing_source paced(io.get_executor());  // would ask for an hour
  recording_source plain(io.get_executor());
  event_stream paced_stream(io, 16);
  event_stream plain_stream(io, 16);
  poller paced_poller(paced, paced_stream, {.poll_interval = interval, .wake_ups = false});
  poller plain_poller(plain, plain_stream, {.poll_interval = interval});
  paced_poller.start();
  plain_poller.start();
  // Both poll at the poller's interval.
  REQUIRE(run_until(io, [&] { return paced.poll_times.size() >= 4 && plain.poll_times.size() >= 4; }));
  CHECK(paced.asked.empty());
  CHECK(paced.wake_waits == 0);
  CHECK(plain.wake_waits >= 3);
  for (const auto* times : {&paced.poll_times, &plain.poll_times}) {
    for (std::size_t i = 1; i < times->size(); ++i) CHECK((*times)[i] - (*times)[i - 1] >= interval);
  }
  paced_poller.stop();
  plain_poller.stop();
  run_to_idle(io);
}

}  // namespace poller_test
