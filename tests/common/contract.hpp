// The async contract, checked the same way for every I/O object
// (contract_test.cpp, s3/contract_store_test.cpp, s3/contract_client_test.cpp):
// an operation started with each kind of completion token completes once,
// never inside its initiating call, on its handler's executor; every
// operation of a store works through its use_awaitable_t<>::as_default_on_t
// type with no token.
#pragma once

#include "fixture.hpp"

#include <asio/experimental/deferred.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace storewatch::test {

/// Rethrows what a coroutine threw, out of io_context::run().
inline void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

/// Every operation of an as_default_on_t store, with no token written.
/// (Arguments are named variables: g++ 12 mishandles some temporaries
/// inside a co_await expression, see docs/known-limits.md.)
template <class Store>
asio::awaitable<std::vector<std::string>> every_operation(Store& store) {
  std::vector<std::string> seen;
  std::string path = "docs/a.txt", bytes = "alpha", name = "NOTE", data = "hi", prefix = "docs/";
  const selection docs{prefix, true};
  const std::vector<std::string> bob{"bob123"};
  // Each result awaited into a local: in a template, g++ 12 cannot type
  // `(co_await ...).size()`.
  const auto version = co_await store.async_create_file(path, bytes);
  seen.push_back(co_await store.async_read_file(version));
  const auto shared = co_await store.async_share_files(docs, bob);
  seen.push_back(std::to_string(shared.size()));
  const auto listed = co_await store.async_list_files(prefix, true);
  seen.push_back(std::to_string(listed.size()));
  const auto told = co_await store.async_publish_event(name, data, bob);
  seen.push_back(std::to_string(told.size()));
  const auto unshared = co_await store.async_unshare_files(docs, bob);
  seen.push_back(std::to_string(unshared.size()));
  const auto deleted = co_await store.async_delete_files(docs);
  seen.push_back(std::to_string(deleted.size()));
  const auto compacted = co_await store.async_compact(std::chrono::seconds(3600));
  seen.push_back(std::to_string(compacted));
  std::string refused = "refused: ";
  try {
    co_await store.async_read_file(version);  // deleted: the error is thrown
  } catch (const std::system_error& e) {
    refused += e.code().message();
  }
  seen.push_back(refused);
  co_return seen;
}

/// Runs `every_operation` on `store` (an as_default_on_t store on `io`)
/// and checks what each operation gave.
template <class Store>
void check_every_operation(asio::io_context& io, Store& store,
                           std::chrono::steady_clock::duration limit = generous) {
  std::optional<std::vector<std::string>> seen;
  asio::co_spawn(io, every_operation(store), [&](std::exception_ptr e, std::vector<std::string> result) {
    REQUIRE_FALSE(e);
    seen = std::move(result);
  });
  REQUIRE(run_until(io, [&] { return seen.has_value(); }, limit));
  REQUIRE(seen->size() == 8);
  CHECK(std::vector<std::string>(seen->begin(), seen->begin() + 7) ==
        std::vector<std::string>{"alpha", "1", "1", "1", "1", "1", "0"});
  CHECK(seen->back().size() > std::string_view("refused: ").size());  // it threw, with a reason
}

/// Starts an operation with `start(token)` (which returns what the
/// initiating function returns) once with each kind of token: a plain
/// callback, deferred, use_future, use_awaitable, and a callback bound to a
/// strand of a 4-thread pool. Each run must succeed and complete after the
/// call returned, its callback on the handler's executor: `io`'s for the
/// plain one, the strand for the bound one.
template <class Start>
void complete_with_every_token(asio::io_context& io, Start start,
                               std::chrono::steady_clock::duration limit = generous) {
  using namespace std::chrono_literals;
  const auto io_executor = io.get_executor();
  int callbacks = 0;
  start([&](std::error_code ec, auto&&...) {
    CHECK_FALSE(ec);
    CHECK(io_executor.running_in_this_thread());
    ++callbacks;
  });
  CHECK(callbacks == 0);  // not inside the initiating call
  REQUIRE(run_until(io, [&] { return callbacks == 1; }, limit));

  auto deferred = start(asio::experimental::deferred);
  std::move(deferred)([&](std::error_code ec, auto&&...) {
    CHECK_FALSE(ec);
    ++callbacks;
  });
  CHECK(callbacks == 1);
  REQUIRE(run_until(io, [&] { return callbacks == 2; }, limit));

  auto future = start(asio::use_future);
  REQUIRE(run_until(io, [&] { return future.wait_for(0s) == std::future_status::ready; }, limit));
  CHECK_NOTHROW(future.get());

  bool awaited = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await start(asio::use_awaitable);
        awaited = true;
      },
      rethrow);
  REQUIRE(run_until(io, [&] { return awaited; }, limit));

  // Checked here, not on the pool's thread: Catch is not thread-safe.
  asio::thread_pool pool(4);
  const auto strand = asio::make_strand(pool);
  std::atomic<bool> done{false}, failed{true}, on_strand{false};
  start(asio::bind_executor(strand, [&](std::error_code ec, auto&&...) {
    failed = static_cast<bool>(ec);
    on_strand = strand.running_in_this_thread();
    done = true;
  }));
  CHECK_FALSE(done.load());
  REQUIRE(run_until(io, [&] { return done.load(); }, limit));
  CHECK_FALSE(failed.load());
  CHECK(on_strand.load());
  pool.join();
}

}  // namespace storewatch::test
