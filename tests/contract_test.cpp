// The async contract of the store, the sources and the poller: every
// initiating function takes any completion token (a plain callback,
// use_awaitable, deferred, use_future), has a default token (so
// use_awaitable_t<>::as_default_on_t works), and never completes inside the
// initiating call, also with a blocking executor; every operation that waits
// can be cancelled.
#include "common/contract.hpp"

#include <asio/experimental/deferred.hpp>

#include <algorithm>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace contract_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

using awaitable_store = asio::use_awaitable_t<>::as_default_on_t<local_store>;
using awaitable_journal = asio::use_awaitable_t<>::as_default_on_t<journal_source>;

/// A source that takes only use_awaitable: not an event_source.
struct awaitable_only_source {
  asio::awaitable<poll_result> async_poll(std::string_view, std::size_t, asio::use_awaitable_t<>);
};
static_assert(!event_source<awaitable_only_source>);
static_assert(waitable_source<memory_source> && waitable_source<directory_source> &&
              waitable_source<journal_source>);

bool has_data(const poll_result& result, const std::string& data) {
  return std::any_of(result.events.begin(), result.events.end(), [&](const event& e) { return e.data == data; });
}

/// Polls `source` from its start with a plain callback, deferred, use_future
/// and use_awaitable: each completes outside the call and finds `data`; then
/// through its as_default_on_t type (one made by `make`), with no token.
/// Returns the cursor after the events.
template <class Source, class Make>
std::string poll_with_every_token(asio::io_context& io, Source& source, const std::string& data, Make make) {
  std::optional<poll_result> by_callback;
  source.async_poll("", 100, [&](std::error_code ec, poll_result result) {
    CHECK_FALSE(ec);
    by_callback = std::move(result);
  });
  CHECK_FALSE(by_callback);  // not inside the initiating call
  REQUIRE(run_until(io, [&] { return by_callback.has_value(); }));
  CHECK(has_data(*by_callback, data));

  auto deferred = source.async_poll("", 100, asio::experimental::deferred);
  std::optional<poll_result> by_deferred;
  std::move(deferred)([&](std::error_code ec, poll_result result) {
    CHECK_FALSE(ec);
    by_deferred = std::move(result);
  });
  REQUIRE(run_until(io, [&] { return by_deferred.has_value(); }));
  CHECK(has_data(*by_deferred, data));

  auto future = source.async_poll("", 100, asio::use_future);
  REQUIRE(run_until(io, [&] { return future.wait_for(0s) == std::future_status::ready; }));
  CHECK(has_data(future.get(), data));

  std::optional<poll_result> by_coroutine, by_default;
  auto with_default = make();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const std::string start;
        by_coroutine = co_await source.async_poll(start, 100, asio::use_awaitable);
        by_default = co_await with_default->async_poll(start, 100);
      },
      rethrow);
  REQUIRE(run_until(io, [&] { return by_coroutine && by_default; }));
  CHECK(has_data(*by_coroutine, data));
  CHECK(has_data(*by_default, data));
  return by_callback->next_cursor;
}

/// A wait for change on `source` after `cursor` (nothing new there),
/// cancelled once it is pending, completes with operation_aborted.
template <class Source>
void cancel_wait(asio::io_context& io, Source& source, const std::string& cursor) {
  asio::cancellation_signal cancel;
  std::optional<std::error_code> result;
  source.async_wait_for_change(cursor,
                               asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) { result = ec; }));
  io.restart();
  io.poll();  // what is ready runs; the wait stays pending
  REQUIRE_FALSE(result);
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  CHECK(*result == asio::error::operation_aborted);
}

/// A store's surroundings: its folder and io_context, another io_context
/// for handlers, and a 2-thread pool, its blocking executor when `pool_on`.
struct store_setup {
  explicit store_setup(bool pool_on) {
    if (pool_on) options.blocking_executor = pool.get_executor();
  }
  temp_dir dir;
  asio::io_context io;
  asio::io_context handler_io;
  asio::thread_pool pool{2};
  local_store_options options;
};

}  // namespace

TEST_CASE("contract: local_store as use_awaitable_t<>::as_default_on_t - every operation without a token, errors "
          "thrown, also with a blocking executor") {
  const bool pool_on = GENERATE(false, true);
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  local_store_options options;
  if (pool_on) options.blocking_executor = pool.get_executor();
  awaitable_store store(io.get_executor(), dir.path(), "alice222", options);
  check_every_operation(io, store);
  pool.join();
}

TEST_CASE("contract: local_store with a callback, deferred and use_future, no completion inside the call") {
  temp_dir dir;
  asio::io_context io;
  local_store store(io.get_executor(), dir.path(), "alice222");

  bool called = false;
  store.async_create_file("docs/a.txt", "alpha", [&](std::error_code ec, versioned_path) {
    CHECK_FALSE(ec);
    called = true;
  });
  CHECK_FALSE(called);  // not inside the initiating call
  REQUIRE(run_until(io, [&] { return called; }));

  auto deferred = store.async_list_files("docs/", true, asio::experimental::deferred);
  std::optional<std::size_t> listed;
  std::move(deferred)([&](std::error_code ec, std::vector<versioned_path> found) {
    CHECK_FALSE(ec);
    listed = found.size();
  });
  REQUIRE(run_until(io, [&] { return listed.has_value(); }));
  CHECK(*listed == 1);

  auto future = store.async_publish_event("NOTE", "hi", {"bob123"}, asio::use_future);
  REQUIRE(run_until(io, [&] { return future.wait_for(0s) == std::future_status::ready; }));
  CHECK(future.get().size() == 1);
  auto failing = store.async_create_file("../escape", "x", asio::use_future);
  REQUIRE(run_until(io, [&] { return failing.wait_for(0s) == std::future_status::ready; }));
  CHECK_THROWS_AS(failing.get(), std::system_error);

  // Every token once more, a handler bound to a strand of a 4-thread pool too.
  const std::string prefix = "docs/";
  complete_with_every_token(io, [&](auto&& token) { return store.async_list_files(prefix, true, token); });
}

TEST_CASE("contract: a store operation's completion is allocated with the handler's associated allocator, on a "
          "blocking executor too") {
  // On io_context's own executor: Asio's post honours an allocator only on
  // an executor that supports the allocator property (any_io_executor does
  // not). The handler bound to another io_context's executor: the hand-over
  // is allocated there too (a handler of the store's own executor, from the
  // pool, is called by the relay's read without any).
  const bool pool_on = GENERATE(false, true);
  const bool other_executor = GENERATE(false, true);
  INFO((pool_on ? "on a pool" : "on the io_context") << (other_executor ? ", handler on another io_context" : ""));
  if (pool_on && !other_executor) return;
  store_setup setup(pool_on);
  auto& [dir, io, handler_io, pool, options] = setup;
  basic_local_store<asio::io_context::executor_type> store(io.get_executor(), dir.path(), "alice222", options);
  std::size_t allocations = 0;
  bool listed = false;
  auto handler = asio::bind_allocator(counting_allocator<void>(&allocations),
                                      [&](std::error_code ec, std::vector<versioned_path>) {
                                        CHECK_FALSE(ec);
                                        listed = true;
                                      });
  if (other_executor) {
    store.async_list_files("", true, asio::bind_executor(handler_io, std::move(handler)));
    run_to_idle(io);
    REQUIRE(run_until(handler_io, [&] { return listed; }));
  } else {
    store.async_list_files("", true, std::move(handler));
    REQUIRE(run_until(io, [&] { return listed; }));
  }
  // Before, none: the completion was posted with the default allocator.
  CHECK(allocations >= 1);
  pool.join();
}

TEST_CASE("contract: a pending store operation keeps the io_context of its handler's executor busy, on a blocking "
          "executor too") {
  // As Asio's own operations do: handler_io.run() does not return while the
  // operation that will complete there is pending. Before, nothing counted
  // it there until the completion was posted, so handler_io ran out of work
  // at once.
  const bool pool_on = GENERATE(false, true);
  INFO((pool_on ? "on a pool" : "on the io_context"));
  store_setup setup(pool_on);
  auto& [dir, io, handler_io, pool, options] = setup;
  local_store store(io.get_executor(), dir.path(), "alice222", options);
  int completions = 0;
  store.async_list_files("", true, asio::bind_executor(handler_io, [&](std::error_code ec, std::vector<versioned_path>) {
                           CHECK_FALSE(ec);
                           ++completions;
                         }));
  handler_io.poll();  // nothing to run yet: the completion needs io
  CHECK_FALSE(handler_io.stopped());
  run_to_idle(io);
  run_to_idle(handler_io);
  CHECK(completions == 1);
  pool.join();
}

TEST_CASE("contract: journal_source as use_awaitable_t<>::as_default_on_t, on a blocking executor too") {
  const bool pool_on = GENERATE(false, true);
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  local_store alice(io.get_executor(), dir.path(), "alice222");
  alice.publish_event("NOTE", "one", {"bob123"});
  journal_source_options options;
  if (pool_on) options.blocking_executor = pool.get_executor();
  awaitable_journal source(io.get_executor(), dir.path() / "journals" / "bob123", options);
  std::optional<std::vector<std::string>> data;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const auto result = co_await source.async_poll("", 100);
        std::vector<std::string> out;
        for (const auto& e : result.events) out.push_back(e.data);
        data = std::move(out);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  REQUIRE(run_until(io, [&] { return data.has_value(); }));
  CHECK(*data == std::vector<std::string>{"one"});
  pool.join();
}

TEST_CASE("contract: memory_source with a callback, deferred, use_future, use_awaitable and as_default_on_t, and a "
          "cancelled wait") {
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "e1"});
  source.publish("NOTE", "one");
  using awaitable_source = asio::use_awaitable_t<>::as_default_on_t<memory_source>;
  const auto end = poll_with_every_token(io, source, "one", [&] {
    auto other = std::make_unique<awaitable_source>(io.get_executor(), memory_source_options{.epoch = "e1"});
    other->publish("NOTE", "one");
    return other;
  });
  cancel_wait(io, source, end);
}

TEST_CASE("contract: directory_source with a callback, deferred, use_future, use_awaitable and as_default_on_t, on a "
          "4-thread pool too, and a cancelled wait") {
  const bool pool_on = GENERATE(false, true);
  temp_dir root, state, other_state;
  {
    std::ofstream file(root.path() / "a.txt");
    file << "alpha";
  }
  asio::io_context io;
  asio::thread_pool pool(4);
  directory_options options;
  options.report_existing = true;
  options.state_dir = state.path();
  if (pool_on) options.blocking_executor = pool.get_executor();
  directory_source source(io.get_executor(), root.path(), options);
  using awaitable_source = asio::use_awaitable_t<>::as_default_on_t<directory_source>;
  const auto end = poll_with_every_token(io, source, "a.txt", [&] {
    auto other_options = options;
    other_options.state_dir = other_state.path();
    return std::make_unique<awaitable_source>(io.get_executor(), root.path(), other_options);
  });
  cancel_wait(io, source, end);
  pool.join();
}

namespace {

/// Runs a poller over a memory source holding one event, started with
/// `start(poller)` (which returns a way to learn the run's result), until
/// the event is in the stream; then ends it with `end(poller)` and checks
/// that the run completed with errc::stopped.
template <class Stream, class Start, class End>
void run_poller(Start start, End end) {
  asio::io_context io;
  memory_source source(io.get_executor());
  source.publish("NOTE", "one");
  Stream stream(io.get_executor());
  poller p(source, stream, {.poll_interval = 1h});
  auto result = start(p);
  REQUIRE(run_until(io, [&] { return stream.ready(); }));
  CHECK_FALSE(result());
  end(p);
  REQUIRE(run_until(io, [&] { return result().has_value(); }));
  CHECK(*result() == errc::stopped);
}

}  // namespace

TEST_CASE("contract: poller::async_run with a callback, deferred, use_future, use_awaitable and as_default_on_t, "
          "ended by stop() or by a cancellation") {
  using memory_poller = poller<memory_source>;
  const auto stop = [](auto& p) { p.stop(); };
  auto code = std::make_shared<std::optional<std::error_code>>();
  const auto read_code = [code] { return [code] { return *code; }; };

  SECTION("a plain callback, cancelled through its slot") {
    asio::cancellation_signal cancel;
    run_poller<event_stream>(
        [&](memory_poller& p) {
          p.async_run({}, asio::bind_cancellation_slot(cancel.slot(), [code](std::error_code ec) { *code = ec; }));
          CHECK_FALSE(*code);  // not inside the initiating call
          return read_code();
        },
        [&](memory_poller&) { cancel.emit(asio::cancellation_type::terminal); });
  }
  SECTION("deferred") {
    run_poller<event_stream>(
        [&](memory_poller& p) {
          p.async_run({}, asio::experimental::deferred)([code](std::error_code ec) { *code = ec; });
          return read_code();
        },
        stop);
  }
  SECTION("use_future") {
    std::future<void> future;
    run_poller<event_stream>(
        [&](memory_poller& p) {
          future = p.async_run({}, asio::use_future);
          return [&future, code]() -> std::optional<std::error_code> {
            if (!*code && future.valid() && future.wait_for(0s) == std::future_status::ready) {
              try {
                future.get();
                *code = std::error_code();
              } catch (const std::system_error& error) {
                *code = error.code();
              }
            }
            return *code;
          };
        },
        stop);
  }
  SECTION("use_awaitable, and as_default_on_t with no token") {
    const bool by_default = GENERATE(false, true);
    const auto in_coroutine = [&](auto& p) {
      asio::co_spawn(
          p.get_executor(),
          [&p, code]() -> asio::awaitable<void> {
            try {
              const checkpoint_state from;  // a named variable: see every_operation
              if constexpr (std::is_same_v<std::decay_t<decltype(p)>, memory_poller>) {
                co_await p.async_run(from, asio::use_awaitable);
              } else {
                co_await p.async_run(from);
              }
              *code = std::error_code();
            } catch (const std::system_error& error) {
              *code = error.code();
            }
          },
          rethrow);
      return read_code();
    };
    if (by_default) {
      using awaitable_poller = asio::use_awaitable_t<>::as_default_on_t<memory_poller>;
      run_poller<awaitable_poller::stream_type>([&](awaitable_poller& p) { return in_coroutine(p); }, stop);
    } else {
      run_poller<event_stream>([&](memory_poller& p) { return in_coroutine(p); }, stop);
    }
  }
}

}  // namespace contract_test
