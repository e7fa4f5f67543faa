// The async contract of the store and the journal source: every initiating
// function takes any completion token (a plain callback, use_awaitable,
// deferred, use_future), has a default token (so use_awaitable_t<>::
// as_default_on_t works), and never completes inside the initiating call;
// also with a blocking executor.
#include "common/fixture.hpp"

#include <asio/experimental/deferred.hpp>

#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

using awaitable_store = asio::use_awaitable_t<>::as_default_on_t<local_store>;
using awaitable_journal = asio::use_awaitable_t<>::as_default_on_t<journal_source>;

/// Every operation of an as_default_on_t store, with no token written.
/// (Arguments are named variables: g++ 12 mishandles some temporaries
/// inside a co_await expression, see docs/known-limits.md.)
asio::awaitable<std::vector<std::string>> every_operation(awaitable_store& store) {
  std::vector<std::string> seen;
  std::string path = "docs/a.txt", bytes = "alpha", name = "NOTE", data = "hi", prefix = "docs/";
  const selection docs{prefix, true};
  const std::vector<std::string> bob{"bob123"};
  const auto version = co_await store.async_create_file(path, bytes);
  seen.push_back(co_await store.async_read_file(version));
  seen.push_back(std::to_string((co_await store.async_share_files(docs, bob)).size()));
  seen.push_back(std::to_string((co_await store.async_list_files(prefix, true)).size()));
  seen.push_back(std::to_string((co_await store.async_publish_event(name, data, bob)).size()));
  seen.push_back(std::to_string((co_await store.async_unshare_files(docs, bob)).size()));
  seen.push_back(std::to_string((co_await store.async_delete_files(docs)).size()));
  seen.push_back(std::to_string(co_await store.async_compact(std::chrono::seconds(3600))));
  std::string refused = "refused: ";
  try {
    co_await store.async_read_file(version);  // deleted: the error is thrown
  } catch (const std::system_error& e) {
    refused += e.code().message();
  }
  seen.push_back(refused);
  co_return seen;
}

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
  std::optional<std::vector<std::string>> seen;
  asio::co_spawn(io, every_operation(store), [&](std::exception_ptr e, std::vector<std::string> result) {
    REQUIRE_FALSE(e);
    seen = std::move(result);
  });
  REQUIRE(run_until(io, [&] { return seen.has_value(); }));
  REQUIRE(seen->size() == 8);
  CHECK(std::vector<std::string>(seen->begin(), seen->begin() + 7) ==
        std::vector<std::string>{"alpha", "1", "1", "1", "1", "1", "0"});
  CHECK(seen->back().size() > std::string_view("refused: ").size());  // it threw, with a reason
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
