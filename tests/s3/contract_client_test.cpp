// The async contract of s3::client (see contract_store_test.cpp for
// s3_store's): every operation takes any completion token, has a default one
// (use_awaitable_t<>::as_default_on_t), completes after its initiating call on
// the handler's executor, and can be cancelled while it waits (before a retry,
// or on a request in flight), completing with operation_aborted and leaving
// the client working.
#include "contract_support.hpp"

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace contract_client_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
using namespace s3_contract;

namespace {

using awaitable_client = asio::use_awaitable_t<>::as_default_on_t<s3::client>;

/// Every operation of an as_default_on_t client, with no token written;
/// what each gave, as text.
asio::awaitable<std::vector<std::string>> every_client_operation(awaitable_client& client, const temp_dir& dir) {
  std::vector<std::string> seen;
  std::string name = "a.txt", other = "b.txt", body = "alpha", prefix;
  const auto source = write_file(dir, "source", body);
  const auto copy = dir.path() / "copy";
  seen.push_back(std::to_string(co_await client.async_put(name, body, false)));
  seen.push_back(std::to_string(co_await client.async_put_file(other, source, true)));
  seen.push_back((co_await client.async_get(name)).value_or("none"));
  seen.push_back(std::to_string((co_await client.async_get_to_file(other, copy)).value_or(0)));
  seen.push_back(std::to_string(co_await client.async_exists(other)));
  s3::list_request request;
  seen.push_back(std::to_string((co_await client.async_list(request)).objects.size()));
  const std::string mark = client.new_write_mark(body);
  co_await client.async_remove_marked(name, mark);  // not its mark: a.txt stays
  co_await client.async_remove(other);
  seen.push_back(std::to_string((co_await client.async_list(request)).objects.size()));
  const std::vector<std::string> names{name};
  seen.push_back(std::to_string((co_await client.async_remove_many(names)).size()));
  seen.push_back(std::to_string(co_await client.async_exists(name)));
  co_return seen;
}

/// Where a client finds a scripted server on `port`.
s3::config scripted_server_config(std::uint16_t port) {
  s3::config where;
  where.endpoint = s3::endpoint{"http", "127.0.0.1", port};
  where.bucket = "bucket";
  where.credentials = s3::credentials{"AKIDEXAMPLE", "secret", ""};
  where.region = "us-east-1";
  return where;
}

}  // namespace

TEST_CASE("S3 contract: s3::client as use_awaitable_t<>::as_default_on_t - every operation without a token") {
  asio::io_context io;
  temp_dir dir;
  awaitable_client client(io.get_executor(), s3::test::test_server_config());
  const auto seen = run_coroutine(io, [&] { return every_client_operation(client, dir); }, s3_limit);
  CHECK(seen == std::vector<std::string>{"1", "1", "alpha", "5", "1", "2", "1", "0", "0"});
}

TEST_CASE("S3 contract: every s3::client operation with a callback, deferred, use_future, use_awaitable and a "
          "handler on a strand of a 4-thread pool") {
  asio::io_context io;
  temp_dir dir;
  s3::client client(io.get_executor(), s3::test::test_server_config());
  std::string name = "a.txt", body = "alpha";
  const auto source = write_file(dir, "source", body);
  const auto copy = dir.path() / "copy";
  const s3::list_request request;
  const std::vector<std::string> names{name};
  diagnostics diag;
  complete_with_every_token(io, [&](auto&& token) { return client.async_put(name, body, false, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_put_file(name, source, false, diag, token); },
                            s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_get(name, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_get_to_file(name, copy, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_exists(name, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_list(request, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_remove_marked(name, body, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_remove(name, token); }, s3_limit);
  complete_with_every_token(io, [&](auto&& token) { return client.async_remove_many(names, token); }, s3_limit);
  CHECK(diag.message().empty());

  // A failure: its code to the handler, its account to its diagnostics.
  s3::list_request bad;
  bad.max_keys = -1;
  std::optional<std::error_code> failed;
  client.async_list(bad, diag, [&](std::error_code ec, s3::list_page) { failed = ec; });
  CHECK_FALSE(failed);
  REQUIRE(run_until(io, [&] { return failed.has_value(); }, s3_limit));
  CHECK(*failed == errc::store_io_failed);
  CHECK(diag.message().find("max_keys") != std::string::npos);
}

TEST_CASE("S3 contract: each s3::client operation cancelled while it waits for a retry completes with "
          "operation_aborted, and the client works on") {
  held_request hold;
  asio::io_context io;
  temp_dir dir;
  s3::client client(io.get_executor(), s3::test::test_server_config(), waiting_options());
  std::string name = "a.txt", body = "alpha";
  const auto source = write_file(dir, "source", body);
  const auto copy = dir.path() / "copy";
  const s3::list_request request;
  const std::vector<std::string> names{name};
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_put(name, body, false, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_put_file(name, source, false, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_get(name, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_get_to_file(name, copy, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_exists(name, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_list(request, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_remove_marked(name, body, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_remove(name, token); });
  cancel_while_waiting(io, hold, [&](auto&& token) { return client.async_remove_many(names, token); });
  CHECK_FALSE(std::filesystem::exists(copy.string() + ".storewatch-part"));  // a cancelled download leaves none
}

TEST_CASE("S3 contract: an s3::client request in flight, cancelled, completes with operation_aborted, and the client "
          "works on") {
  asio::io_context io;
  s3::test::scripted_http_server server(io, [](const s3::test::recorded_request&, std::size_t index) {
    return index == 0 ? s3::test::scripted_reply::stall() : s3::test::scripted_reply::respond(404);
  });
  s3::client client(io.get_executor(), scripted_server_config(server.port()));
  const std::string name = "a.txt";
  asio::cancellation_signal cancel;
  std::optional<std::error_code> cancelled;
  client.async_get(name, asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, auto) { cancelled = ec; }));
  REQUIRE(run_until(io, [&] { return !server.requests().empty(); }, s3_limit));
  REQUIRE_FALSE(cancelled);  // the server never answers
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return cancelled.has_value(); }, s3_limit));
  CHECK(*cancelled == asio::error::operation_aborted);

  std::optional<std::optional<std::string>> got;
  client.async_get(name, [&](std::error_code ec, std::optional<std::string> body) {
    CHECK_FALSE(ec);
    got = std::move(body);
  });
  REQUIRE(run_until(io, [&] { return got.has_value(); }, s3_limit));
  CHECK_FALSE(got->has_value());  // the 404: no such object
  CHECK(server.requests().size() == 2);
}

TEST_CASE("S3 contract: a pending s3::client operation keeps the io_context of its handler's executor busy") {
  // As Asio's own operations do: handler_io.run() does not return while the
  // operation that will complete there is pending. Before, nothing counted
  // it there until the completion was posted.
  asio::io_context io;
  asio::io_context handler_io;
  s3::test::scripted_http_server server(
      io, [](const s3::test::recorded_request&, std::size_t) { return s3::test::scripted_reply::respond(404); });
  s3::client client(io.get_executor(), scripted_server_config(server.port()));
  const std::string name = "a.txt";
  int completions = 0;
  client.async_get(name, asio::bind_executor(handler_io, [&](std::error_code ec, std::optional<std::string> body) {
                     CHECK_FALSE(ec);
                     CHECK_FALSE(body.has_value());
                     ++completions;
                   }));
  handler_io.poll();  // nothing to run yet: the request needs io
  CHECK_FALSE(handler_io.stopped());
  REQUIRE(run_until(io, [&] {
    if (handler_io.stopped()) handler_io.restart();
    handler_io.poll();
    return completions > 0;
  }, s3_limit));
  CHECK(completions == 1);
}

}  // namespace contract_client_test
