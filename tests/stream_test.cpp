// event_stream: completion tokens, ordering, close, backpressure, cancellation, stats.
#include "common/fixture.hpp"

#include <asio/experimental/deferred.hpp>
#include <asio/use_future.hpp>

#include <algorithm>
#include <future>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace stream_test {

using namespace storewatch;
using storewatch::test::counting_allocator;
using storewatch::test::make_event;
using storewatch::test::run_until;
using namespace std::chrono_literals;

namespace {

event numbered(int i) { return make_event("CREATE", "file-" + std::to_string(i) + ".txt", "id-" + std::to_string(i)); }

template <class Stream>
void push_all_into(Stream& stream, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    auto e = numbered(i);
    REQUIRE(stream.try_push(e));
  }
}

void push_all(event_stream& stream, int first, int count) { push_all_into(stream, first, count); }

}  // namespace

TEST_CASE("async_next with use_awaitable yields events in push order") {
  asio::io_context io;
  event_stream stream(io, 8);
  std::vector<std::string> ids;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 20; ++i) ids.push_back((co_await stream.async_next(asio::use_awaitable)).id);
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 20; ++i) co_await stream.async_push(numbered(i), asio::use_awaitable);
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return ids.size() == 20; }));
  for (int i = 0; i < 20; ++i) CHECK(ids[static_cast<std::size_t>(i)] == "id-" + std::to_string(i));
}

TEST_CASE("async_next with deferred runs when the deferred operation is started") {
  asio::io_context io;
  event_stream stream(io, 4);
  auto operation = stream.async_next(asio::experimental::deferred);
  push_all(stream, 0, 1);
  std::optional<event> got;
  std::move(operation)([&](std::error_code ec, event e) {
    REQUIRE_FALSE(ec);
    got = std::move(e);
  });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  CHECK(got->id == "id-0");
}

TEST_CASE("async_next with use_future delivers through the future") {
  asio::io_context io;
  event_stream stream(io, 4);
  std::future<event> future = stream.async_next(asio::use_future);
  push_all(stream, 7, 1);
  REQUIRE(run_until(io, [&] { return future.wait_for(0s) == std::future_status::ready; }));
  CHECK(future.get().id == "id-7");
}

TEST_CASE("async_next with a plain callback never completes inside the call") {
  asio::io_context io;
  event_stream stream(io, 4);
  push_all(stream, 0, 1);
  bool called = false;
  stream.async_next([&](std::error_code ec, event e) {
    CHECK_FALSE(ec);
    CHECK(e.id == "id-0");
    called = true;
  });
  CHECK_FALSE(called);  // an event was ready, yet the handler waits for the io_context
  REQUIRE(run_until(io, [&] { return called; }));
}

TEST_CASE("the handler runs on its associated executor") {
  asio::io_context io;
  event_stream stream(io, 4);
  auto strand = asio::make_strand(io);
  bool on_strand = false;
  bool called = false;
  stream.async_next(asio::bind_executor(strand, [&](std::error_code, event) {
    on_strand = strand.running_in_this_thread();
    called = true;
  }));
  push_all(stream, 0, 1);
  REQUIRE(run_until(io, [&] { return called; }));
  CHECK(on_strand);
}

TEST_CASE("a handler bound to another executor: the take is counted on the stream's executor before the handler's "
          "runs, waiting or buffered") {
  // The stream's counts belong to its executor; the handler's executor is
  // another io_context, run only at the end. What the stream's executor
  // sees once it has run its share: the take counted, the consumer no
  // longer waiting (try_next takes the next event), the handler not yet run.
  asio::io_context io;          // the stream's
  asio::io_context handler_io;  // the handler's
  event_stream stream(io, 4);
  std::optional<event> got;
  bool on_handler_io = false;
  const auto consume = [&] {
    stream.async_next(asio::bind_executor(handler_io, [&](std::error_code ec, event e) {
      CHECK_FALSE(ec);
      on_handler_io = handler_io.get_executor().running_in_this_thread();
      got = std::move(e);
    }));
  };
  SECTION("waiting in the channel, the event handed over by try_push") {
    consume();
    push_all(stream, 0, 1);
  }
  SECTION("buffered") {
    push_all(stream, 0, 1);
    consume();
  }
  io.poll();  // runs what the stream's executor has to do; never the handler
  CHECK_FALSE(got);
  CHECK(stream.stats().snapshot().delivered == 1);
  CHECK(stream.stats().snapshot().queue_depth == 0);
  push_all(stream, 1, 1);
  event next;
  REQUIRE(stream.try_next(next));  // id-0 is the handler's already: nothing pending comes first
  CHECK(next.id == "id-1");
  CHECK(stream.stats().snapshot().delivered == 2);
  CHECK_FALSE(got);
  REQUIRE(run_until(handler_io, [&] { return got.has_value(); }));
  CHECK(got->id == "id-0");
  CHECK(on_handler_io);
}

TEST_CASE("async_next allocates what it posts for a handler with the handler's associated allocator, on the "
          "stream's executor or another, waiting or buffered") {
  asio::io_context io;          // the stream's
  asio::io_context handler_io;  // the handler's, where the handler is bound to another executor
  // On io_context's own executor: Asio's post honours an allocator only on
  // an executor that supports the allocator property (any_io_executor does
  // not).
  basic_event_stream<asio::io_context::executor_type> stream(io.get_executor(), 4);
  std::size_t allocations = 0;
  std::optional<event> got;
  const auto handler = [&] {
    return asio::bind_allocator(counting_allocator<void>(&allocations), [&](std::error_code ec, event e) {
      CHECK_FALSE(ec);
      got = std::move(e);
    });
  };
  const bool other_executor = GENERATE(false, true);
  const bool buffered = GENERATE(false, true);
  INFO((other_executor ? "handler on another io_context" : "handler on the stream's executor")
       << (buffered ? ", event buffered" : ", waiting for the event"));
  if (buffered) push_all_into(stream, 0, 1);
  if (other_executor) {
    stream.async_next(asio::bind_executor(handler_io, handler()));
  } else {
    stream.async_next(handler());
  }
  if (!buffered) push_all_into(stream, 0, 1);
  if (other_executor) {
    io.run();  // the stream's share: the take, then the hand-over to handler_io
    REQUIRE(run_until(handler_io, [&] { return got.has_value(); }));
  } else {
    REQUIRE(run_until(io, [&] { return got.has_value(); }));
  }
  REQUIRE(got);
  CHECK(got->id == "id-0");
  // Each path allocates at least once (buffered: the posted take; waiting:
  // the channel's operation), and once more to hand the event to another
  // executor; before the allocator was passed on, 0 in three of the four.
  CHECK(allocations >= (other_executor ? 2u : 1u));
}

TEST_CASE("as_default_on_t makes use_awaitable the default token") {
  asio::io_context io;
  using awaitable_stream = asio::use_awaitable_t<>::as_default_on_t<event_stream>;
  awaitable_stream stream(io.get_executor(), 4);
  std::string id;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { id = (co_await stream.async_next()).id; }, asio::detached);
  auto e = numbered(3);
  REQUIRE(stream.try_push(e));
  REQUIRE(run_until(io, [&] { return !id.empty(); }));
  CHECK(id == "id-3");
}

TEST_CASE("close delivers buffered events, then end_of_stream, and keeps saying so") {
  asio::io_context io;
  event_stream stream(io, 8);
  push_all(stream, 0, 3);
  stream.close();
  CHECK_FALSE(stream.is_open());
  std::vector<std::string> ids;
  std::vector<std::error_code> ends;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
          if (ec) {
            ends.push_back(ec);
            if (ends.size() == 3) co_return;
            continue;
          }
          ids.push_back(e.id);
        }
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return ends.size() == 3; }));
  CHECK(ids == std::vector<std::string>{"id-0", "id-1", "id-2"});
  for (const auto& ec : ends) CHECK(ec == errc::end_of_stream);
}

TEST_CASE("close wakes a consumer waiting on an empty stream") {
  asio::io_context io;
  event_stream stream(io, 8);
  std::optional<std::error_code> result;
  stream.async_next([&](std::error_code ec, event) { result = ec; });
  io.poll();
  REQUIRE_FALSE(result);
  stream.close();
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  CHECK(*result == errc::end_of_stream);
}

TEST_CASE("close wakes every consumer waiting on an empty stream, not just one") {
  asio::io_context io;
  event_stream stream(io, 8);
  std::vector<std::error_code> results;
  for (int i = 0; i < 3; ++i) stream.async_next([&](std::error_code ec, event) { results.push_back(ec); });
  io.poll();
  REQUIRE(results.empty());
  stream.close();
  REQUIRE(run_until(io, [&] { return results.size() == 3; }));
  for (const auto& ec : results) CHECK(ec == errc::end_of_stream);
  // And one that comes later.
  std::optional<std::error_code> later;
  stream.async_next([&](std::error_code ec, event) { later = ec; });
  REQUIRE(run_until(io, [&] { return later.has_value(); }));
  CHECK(*later == errc::end_of_stream);
}

TEST_CASE("close ends a producer suspended on a full stream, keeping what was buffered") {
  asio::io_context io;
  event_stream stream(io, 2);
  push_all(stream, 0, 2);
  auto extra = numbered(2);
  CHECK_FALSE(stream.try_push(extra));  // full
  CHECK(extra.id == "id-2");            // and a refused event is left as it was
  std::optional<std::error_code> pushed;
  stream.async_push(numbered(2), [&](std::error_code ec) { pushed = ec; });
  io.poll();
  REQUIRE_FALSE(pushed);  // suspended: backpressure
  stream.close();
  REQUIRE(run_until(io, [&] { return pushed.has_value(); }));
  CHECK(*pushed == errc::end_of_stream);

  std::vector<std::string> ids;
  std::optional<std::error_code> end;
  std::function<void()> next = [&] {
    stream.async_next([&](std::error_code ec, event e) {
      if (ec) {
        end = ec;
        return;
      }
      ids.push_back(e.id);
      next();
    });
  };
  next();
  REQUIRE(run_until(io, [&] { return end.has_value(); }));
  CHECK(ids == std::vector<std::string>{"id-0", "id-1"});
  CHECK(*end == errc::end_of_stream);
}

TEST_CASE("pushing into a closed stream fails with end_of_stream") {
  asio::io_context io;
  event_stream stream(io, 2);
  stream.close();
  auto e = numbered(0);
  CHECK_FALSE(stream.try_push(e));
  std::optional<std::error_code> pushed;
  stream.async_push(numbered(1), [&](std::error_code ec) { pushed = ec; });
  CHECK_FALSE(pushed);  // not inline
  REQUIRE(run_until(io, [&] { return pushed.has_value(); }));
  CHECK(*pushed == errc::end_of_stream);
}

TEST_CASE("an unbuffered stream hands events over and closes") {
  asio::io_context io;
  event_stream stream(io, 0);
  std::vector<std::string> ids;
  std::optional<std::error_code> end;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
          if (ec) {
            end = ec;
            co_return;
          }
          ids.push_back(e.id);
        }
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 5; ++i) co_await stream.async_push(numbered(i), asio::use_awaitable);
        stream.close();
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return end.has_value(); }));
  CHECK(ids.size() == 5);
  CHECK(*end == errc::end_of_stream);
}

TEST_CASE("a cancelled async_next takes no event and leaves the stream usable") {
  asio::io_context io;
  event_stream stream(io, 4);
  asio::cancellation_signal cancel;
  std::optional<std::error_code> first;
  stream.async_next(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, event) { first = ec; }));
  io.poll();
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return first.has_value(); }));
  CHECK(*first == asio::error::operation_aborted);

  // Asio 1.22 leaves a buffered channel refusing try_send after a cancelled
  // receive; the producer's fallback to async_push must still get through.
  std::optional<std::error_code> pushed;
  auto e = numbered(1);
  if (!stream.try_push(e)) stream.async_push(std::move(e), [&](std::error_code ec) { pushed = ec; });
  std::optional<event> got;
  stream.async_next([&](std::error_code ec, event next) {
    REQUIRE_FALSE(ec);
    got = std::move(next);
  });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  CHECK(got->id == "id-1");
  // And afterwards the buffer works as before.
  push_all(stream, 2, 4);
}

TEST_CASE("stats count what was queued and taken, and the lag of the last event") {
  asio::io_context io;
  event_stream stream(io, 8);
  auto old = numbered(0);
  old.occurred_at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()) - 5s;
  REQUIRE(stream.try_push(old));
  push_all(stream, 1, 4);
  CHECK(stream.stats().snapshot().queue_depth == 5);
  CHECK(stream.stats().snapshot().enqueued == 5);
  int taken = 0;
  stream.async_next([&](std::error_code, event) { ++taken; });
  REQUIRE(run_until(io, [&] { return taken == 1; }));
  const auto s = stream.stats().snapshot();
  CHECK(s.delivered == 1);
  CHECK(s.queue_depth == 4);
  CHECK(s.lag >= 5s);
  CHECK(s.lag < 5s + storewatch::test::generous);
}

TEST_CASE("a producer suspended on a full stream resumes once consumers took it down to half, in order") {
  asio::io_context io;
  event_stream stream(io, 4);
  push_all(stream, 0, 4);
  std::optional<std::error_code> pushed;
  stream.async_push(numbered(4), [&](std::error_code ec) { pushed = ec; });
  std::vector<std::string> ids;
  const auto take_one = [&] {
    const auto before = ids.size();
    stream.async_next([&](std::error_code ec, event e) {
      REQUIRE_FALSE(ec);
      ids.push_back(e.id);
    });
    REQUIRE(run_until(io, [&] { return ids.size() == before + 1; }));
  };
  take_one();  // 3 left: more than half
  io.poll();
  CHECK_FALSE(pushed);
  auto refused = numbered(9);
  CHECK_FALSE(stream.try_push(refused));  // the room taken is the suspended producer's, not a newcomer's
  take_one();  // 2 left: half, the producer's event goes in
  REQUIRE(run_until(io, [&] { return pushed.has_value(); }));
  CHECK_FALSE(*pushed);
  CHECK(stream.stats().snapshot().enqueued == 5);
  auto next = numbered(5);
  CHECK(stream.try_push(next));  // the producer fills the other half
  auto beyond = numbered(6);
  CHECK_FALSE(stream.try_push(beyond));  // never more than capacity
  while (ids.size() < 6) take_one();
  CHECK(ids == std::vector<std::string>{"id-0", "id-1", "id-2", "id-3", "id-4", "id-5"});
  CHECK_FALSE(stream.ready());
}

TEST_CASE("try_push_some pushes a batch in place as far as it fits, in order with single pushes, never past a "
          "waiting producer") {
  asio::io_context io;
  event_stream stream(io, 6);
  push_all(stream, 0, 1);
  auto batch = std::make_shared<std::vector<event>>();
  for (int i = 1; i <= 8; ++i) batch->push_back(numbered(i));
  std::size_t next = 0;
  stream.try_push_some(batch, next);
  CHECK(next == 5);  // 1 + 5 = capacity
  CHECK(stream.stats().snapshot().enqueued == 6);
  CHECK((*batch)[5].id == "id-6");  // not pushed: left as it was
  std::optional<std::error_code> pushed;
  stream.async_push(std::move((*batch)[next++]), [&](std::error_code ec) { pushed = ec; });
  std::vector<std::string> ids;
  event e;
  for (int i = 0; i < 2; ++i) {
    REQUIRE(stream.try_next(e));
    ids.push_back(e.id);
  }
  // 4 held, a producer waits: the batch does not go ahead of it.
  stream.try_push_some(batch, next);
  CHECK(next == 6);
  REQUIRE(stream.try_next(e));  // 3 held: half, the waiting producer's event goes in
  ids.push_back(e.id);
  REQUIRE(run_until(io, [&] { return pushed.has_value(); }));
  CHECK_FALSE(*pushed);
  stream.try_push_some(batch, next);  // room for 2
  CHECK(next == 8);
  auto last = numbered(9);
  CHECK_FALSE(stream.try_push(last));  // full
  while (stream.try_next(e)) ids.push_back(e.id);
  CHECK(ids == std::vector<std::string>{"id-0", "id-1", "id-2", "id-3", "id-4", "id-5", "id-6", "id-7", "id-8"});
  CHECK(stream.stats().snapshot().delivered == 9);

  // A consumer waiting on the empty stream is handed the first event; the
  // rest are buffered behind it.
  std::optional<event> waited;
  stream.async_next([&](std::error_code ec, event taken) {
    REQUIRE_FALSE(ec);
    waited = std::move(taken);
  });
  io.poll();
  auto more = std::make_shared<std::vector<event>>();
  for (int i = 10; i <= 12; ++i) more->push_back(numbered(i));
  next = 0;
  stream.try_push_some(more, next);
  CHECK(next == 3);
  REQUIRE(run_until(io, [&] { return waited.has_value(); }));
  CHECK(waited->id == "id-10");
  REQUIRE(stream.try_next(e));
  CHECK(e.id == "id-11");
  stream.close();
  auto after = std::make_shared<std::vector<event>>(1, numbered(13));
  next = 0;
  stream.try_push_some(after, next);
  CHECK(next == 0);  // closed: nothing pushed
  REQUIRE(stream.try_next(e));  // what was buffered before the close is still taken
  CHECK(e.id == "id-12");
}

TEST_CASE("try_next takes buffered events in order without a completion, never ahead of a pending async_next") {
  asio::io_context io;
  event_stream stream(io, 8);
  event e;
  CHECK_FALSE(stream.try_next(e));  // nothing buffered
  push_all(stream, 0, 3);
  REQUIRE(stream.try_next(e));
  CHECK(e.id == "id-0");
  std::optional<event> pending;
  stream.async_next([&](std::error_code ec, event next) {
    REQUIRE_FALSE(ec);
    pending = std::move(next);
  });
  CHECK_FALSE(stream.try_next(e));  // id-1 is the pending call's
  CHECK(e.id == "id-0");            // and e is left as it was
  REQUIRE(run_until(io, [&] { return pending.has_value(); }));
  CHECK(pending->id == "id-1");
  REQUIRE(stream.try_next(e));
  CHECK(e.id == "id-2");
  CHECK_FALSE(stream.try_next(e));
  CHECK(stream.stats().snapshot().delivered == 3);
}

TEST_CASE("try_next on an unbuffered stream takes a suspended producer's event and completes its push") {
  asio::io_context io;
  event_stream stream(io, 0);
  std::optional<std::error_code> pushed;
  stream.async_push(numbered(7), [&](std::error_code ec) { pushed = ec; });
  io.poll();
  REQUIRE_FALSE(pushed);
  event e;
  REQUIRE(stream.try_next(e));
  CHECK(e.id == "id-7");
  REQUIRE(run_until(io, [&] { return pushed.has_value(); }));
  CHECK_FALSE(*pushed);
}

// co_await async_next(use_awaitable) on a buffered event: no scheduler round.

// Co_awaits `count` events from `stream` with `token` and records, for each,
// whether a handler posted before the first co_await had run by then.
template <class Stream, class Token>
asio::awaitable<void> take_noting_posted(Stream& stream, Token token, int count, std::vector<std::string>& ids,
                                         std::vector<bool>& posted_ran) {
  auto ran = std::make_shared<bool>(false);
  asio::post(co_await asio::this_coro::executor, [ran] { *ran = true; });
  for (int i = 0; i < count; ++i) {
    auto e = co_await stream.async_next(token);
    ids.push_back(e.id);
    posted_ran.push_back(*ran);
  }
}

TEST_CASE("co_await async_next with use_awaitable takes buffered events without yielding to the executor") {
  asio::io_context io;
  event_stream stream(io, 8);
  push_all(stream, 0, 5);
  std::vector<std::string> ids;
  std::vector<bool> posted_ran;
  bool done = false;
  asio::co_spawn(io, take_noting_posted(stream, asio::use_awaitable, 6, ids, posted_ran), [&](std::exception_ptr e) {
    REQUIRE_FALSE(e);
    done = true;
  });
  io.poll();
  // The five buffered events came without a suspension: the handler posted
  // before the first co_await had not run. The sixth waits, and the
  // executor runs other work meanwhile.
  REQUIRE(ids.size() == 5);
  CHECK(posted_ran == std::vector<bool>(5, false));
  push_all(stream, 5, 1);
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(posted_ran.back());
  for (int i = 0; i < 6; ++i) CHECK(ids[static_cast<std::size_t>(i)] == "id-" + std::to_string(i));
  CHECK(stream.stats().snapshot().delivered == 6);
}

TEST_CASE("co_await async_next takes buffered events inline through as_default_on_t and as_tuple too") {
  asio::io_context io;
  using awaitable_stream = asio::use_awaitable_t<>::as_default_on_t<event_stream>;
  static_assert(std::is_same_v<decltype(std::declval<awaitable_stream&>().async_next()),
                               asio::awaitable<event>>);  // the type it always had
  static_assert(std::is_same_v<decltype(std::declval<event_stream&>().async_next(
                                   asio::experimental::as_tuple(asio::use_awaitable))),
                               asio::awaitable<std::tuple<std::error_code, event>>>);
  awaitable_stream stream(io.get_executor(), 4);
  push_all_into(stream, 0, 3);
  stream.close();
  std::vector<std::string> ids;
  std::vector<bool> posted_ran;
  std::optional<std::error_code> end;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto ran = std::make_shared<bool>(false);
        asio::post(co_await asio::this_coro::executor, [ran] { *ran = true; });
        ids.push_back((co_await stream.async_next()).id);
        posted_ran.push_back(*ran);
        for (;;) {
          auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable_t<>{}));
          if (ec) {
            end = ec;
            break;
          }
          ids.push_back(e.id);
          posted_ran.push_back(*ran);
        }
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return end.has_value(); }));
  CHECK(ids == std::vector<std::string>{"id-0", "id-1", "id-2"});
  CHECK(posted_ran == std::vector<bool>(3, false));
  CHECK(*end == make_error_code(errc::end_of_stream));
}

TEST_CASE("co_await async_next throws end_of_stream after the buffered events, in order") {
  asio::io_context io;
  event_stream stream(io, 8);
  push_all(stream, 0, 3);
  stream.close();
  std::vector<std::string> ids;
  std::optional<std::error_code> thrown;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          for (;;) ids.push_back((co_await stream.async_next(asio::use_awaitable)).id);
        } catch (const std::system_error& error) {
          thrown = error.code();
        }
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return thrown.has_value(); }));
  CHECK(ids == std::vector<std::string>{"id-0", "id-1", "id-2"});
  CHECK(*thrown == make_error_code(errc::end_of_stream));
}

TEST_CASE("co_await async_next in a cancelled coroutine takes no buffered event, unless throw_if_cancelled is off") {
  asio::io_context io;
  event_stream stream(io, 8);
  push_all(stream, 0, 2);
  asio::cancellation_signal cancel;
  std::optional<std::error_code> thrown;
  bool suspended = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        suspended = true;
        co_await asio::post(io, asio::use_awaitable);  // the cancellation comes meanwhile
        try {
          co_await stream.async_next(asio::use_awaitable);
        } catch (const std::system_error& error) {
          thrown = error.code();
        }
      },
      asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  REQUIRE(run_until(io, [&] { return suspended; }));
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return thrown.has_value(); }));
  CHECK(*thrown == asio::error::operation_aborted);
  CHECK(stream.stats().snapshot().delivered == 0);

  // With throw_if_cancelled(false) a cancellation that came before does not
  // stop the take, as for any operation started after it.
  std::optional<std::string> id;
  suspended = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await asio::this_coro::throw_if_cancelled(false);
        suspended = true;
        co_await asio::post(io, asio::use_awaitable);
        id = (co_await stream.async_next(asio::use_awaitable)).id;
      },
      asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  REQUIRE(run_until(io, [&] { return suspended; }));
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return id.has_value(); }));
  CHECK(*id == "id-0");  // the first coroutine took none
}

TEST_CASE("co_await async_next waiting on an empty stream is cancelled with operation_aborted") {
  asio::io_context io;
  event_stream stream(io, 8);
  asio::cancellation_signal cancel;
  std::optional<std::error_code> thrown;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await stream.async_next(asio::use_awaitable);
        } catch (const std::system_error& error) {
          thrown = error.code();
        }
      },
      asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  io.poll();
  REQUIRE_FALSE(thrown);
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return thrown.has_value(); }));
  CHECK(*thrown == asio::error::operation_aborted);
  // The stream still works: a later push reaches a later co_await.
  std::optional<std::string> id;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { id = (co_await stream.async_next(asio::use_awaitable)).id; },
      asio::detached);
  std::optional<std::error_code> pushed;
  auto e = numbered(4);
  if (!stream.try_push(e)) stream.async_push(std::move(e), [&](std::error_code ec) { pushed = ec; });
  REQUIRE(run_until(io, [&] { return id.has_value(); }));
  CHECK(*id == "id-4");
}

// Between two turns of its producer a consumer takes the event it waited for,
// then inline what is buffered: at most the capacity, and one more that a
// suspended producer's push joins when the buffer is down to half.
TEST_CASE("a co_await async_next consumer takes at most capacity + 2 events between its producer's turns, in order") {
  asio::io_context io;
  constexpr std::size_t capacity = 8;
  constexpr int total = 200;
  event_stream stream(io, capacity);
  int producer_turns = 0;  // times the producer coroutine ran
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < total; ++i) {
          ++producer_turns;
          auto e = numbered(i);
          if (!stream.try_push(e)) co_await stream.async_push(std::move(e), asio::use_awaitable);
        }
      },
      asio::detached);
  std::vector<std::string> ids;
  std::size_t longest_run = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::size_t run = 0;
        int turns_seen = producer_turns;
        while (ids.size() < total) {
          ids.push_back((co_await stream.async_next(asio::use_awaitable)).id);
          if (producer_turns != turns_seen) {
            turns_seen = producer_turns;
            run = 0;
          }
          longest_run = std::max(longest_run, ++run);
        }
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return ids.size() == total; }));
  for (int i = 0; i < total; ++i) CHECK(ids[static_cast<std::size_t>(i)] == "id-" + std::to_string(i));
  CHECK(longest_run <= capacity + 2);
  CHECK(longest_run > 1);  // and it did take runs of buffered events inline
}

TEST_CASE("co_await async_next on an empty stream honours a cancellation during its first round, throw_if_cancelled "
          "off too") {
  asio::io_context io;
  event_stream stream(io, 8);
  for (const bool throw_if_cancelled : {true, false}) {
    asio::cancellation_signal cancel;
    std::optional<std::error_code> result;
    bool started = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
          started = true;  // and on, in the same turn, to the co_await: it suspends for a round
          auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
          result = ec;
        },
        asio::bind_cancellation_slot(cancel.slot(), asio::detached));
    REQUIRE(run_until(io, [&] { return started; }));
    REQUIRE_FALSE(result);
    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(io, [&] { return result.has_value(); }));
    CHECK(*result == asio::error::operation_aborted);
  }
  // Nothing was taken and the stream works on.
  push_all(stream, 0, 1);
  event e;
  REQUIRE(stream.try_next(e));
  CHECK(e.id == "id-0");
  CHECK(stream.stats().snapshot().delivered == 1);
}

}  // namespace stream_test
