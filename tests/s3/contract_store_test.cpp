// The async contract of s3_store (see contract_client_test.cpp for
// s3::client's, ../contract_test.cpp for the local store's): every operation
// takes any completion token, has a default one
// (use_awaitable_t<>::as_default_on_t), completes after its initiating call on
// the handler's executor, and can be cancelled while it waits for a retry,
// completing with operation_aborted and leaving the store working.
#include "contract_support.hpp"

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace contract_store_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
using namespace s3_contract;

TEST_CASE("S3 contract: s3_store as use_awaitable_t<>::as_default_on_t - every operation without a token") {
  asio::io_context io;
  asio::use_awaitable_t<>::as_default_on_t<s3::s3_store> store(io.get_executor(), s3::test::test_server_config(),
                                                               "alice222");
  check_every_operation(io, store, s3_limit);
}

TEST_CASE("S3 contract: every s3_store operation with a callback, deferred, use_future, use_awaitable and a handler "
          "on a strand of a 4-thread pool") {
  asio::io_context io;
  temp_dir dir;
  s3::s3_store store(io.get_executor(), s3::test::test_server_config(), "alice222");
  std::string path = "docs/a.txt", bytes = "alpha", prefix = "docs/", name = "NOTE", data = "hi";
  const auto source = write_file(dir, "source", bytes);
  const auto copy = dir.path() / "copy";
  const selection docs{prefix, true};
  const std::vector<std::string> bob{"bob123"};
  diagnostics diag;
  const auto version = run_coroutine(
      io, [&]() { return store.async_create_file(path, bytes, asio::use_awaitable); }, s3_limit);
  // Each in an order that lets it run five times over: the delete last.
  complete_with_every_token(io, [&](auto&& token) { return store.async_create_file(path, bytes, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_create_file_from(path, source, token); },
                            s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_read_file(version, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_read_file_to(version, copy, diag, token); },
                            s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_share_files(docs, bob, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_list_files(prefix, true, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_publish_event(name, data, bob, token); },
                            s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_unshare_files(docs, bob, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_compact(3600s, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return store.async_delete_files(docs, token); }, s3_limit);
  CHECK(diag.message().empty());

  // A failure: its code to the handler, its account to its diagnostics.
  std::optional<std::error_code> failed;
  store.async_read_file(version, diag, [&](std::error_code ec, std::string) { failed = ec; });
  REQUIRE(run_until(io, [&] { return failed.has_value(); }, s3_limit));
  CHECK(*failed);
  CHECK_FALSE(diag.message().empty());
}

TEST_CASE("S3 contract: each s3_store operation cancelled while it waits for a retry completes with operation_aborted, "
          "and the store works on") {
  held_request hold;
  asio::io_context io;
  temp_dir dir;
  s3::s3_store_options options;
  options.client = waiting_options();
  s3::s3_store store(io.get_executor(), s3::test::test_server_config(), "alice222", options);
  std::string path = "docs/a.txt", bytes = "alpha", prefix = "docs/", name = "NOTE", data = "hi";
  const auto source = write_file(dir, "source", bytes);
  const auto copy = dir.path() / "copy";
  const selection docs{prefix, true};
  const std::vector<std::string> bob{"bob123"};
  const auto version = run_coroutine(
      io, [&]() { return store.async_create_file(path, bytes, asio::use_awaitable); }, s3_limit);
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_create_file(path, bytes, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_create_file_from(path, source, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_read_file(version, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_read_file_to(version, copy, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_share_files(docs, bob, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_list_files(prefix, true, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_publish_event(name, data, bob, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_unshare_files(docs, bob, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_compact(3600s, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return store.async_delete_files(docs, token); });
}

}  // namespace contract_store_test
