// The async contract of the S3 side (see ../contract_test.cpp for the local
// one): every operation of s3_store and of s3::client takes any completion
// token, has a default one (use_awaitable_t<>::as_default_on_t), completes
// after its initiating call on the handler's executor, and can be cancelled
// while it waits (before a retry, or on a request in flight), completing with
// operation_aborted and leaving the object working.
#include "common/contract.hpp"
#include "common/server.hpp"

#include <storewatch/store/s3_store.hpp>

#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace contract_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

/// How long an S3 operation may take: a loaded machine, sanitizers and s3rver.
constexpr std::chrono::seconds s3_limit{120};

/// Holds the next request made after `arm()`: its first attempt fails with a
/// refused connection, so the operation waits for its retry (an hour, with
/// `waiting_options`) until cancelled. Later attempts go through.
class held_request final : public s3::detail::request_fault_injector {
 public:
  held_request() { s3::detail::request_faults = this; }
  held_request(const held_request&) = delete;
  held_request& operator=(const held_request&) = delete;
  ~held_request() override { s3::detail::request_faults = nullptr; }

  void arm() {
    armed_ = true;
    held_.clear();
  }
  /// The request held since `arm()` ("PUT docs/a.txt"), empty before it came.
  const std::string& held() const { return held_; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    if (!armed_) return std::nullopt;
    armed_ = false;
    held_ = std::string(method) + ' ' + std::string(name);
    return outcome{s3::make_http_error(CURLE_COULDNT_CONNECT), {}};
  }

 private:
  bool armed_ = false;
  std::string held_;
};

/// Client options whose retry waits an hour: a test cancels it long before.
s3::client_options waiting_options() {
  s3::client_options options;
  options.retry = backoff_policy{1h, 1h, 1.0, 0.0};
  options.retry_budget = 0ms;  // no budget: the hour's wait is allowed
  return options;
}

/// Starts the operation `start(token)` while `hold` holds its first
/// request; cancels it once it waits for its retry and checks that it
/// completes with operation_aborted; then runs it again, unheld, and checks
/// that it succeeds.
template <class Start>
void cancel_while_waiting(asio::io_context& io, held_request& hold, Start start) {
  asio::cancellation_signal cancel;
  std::optional<std::error_code> cancelled;
  hold.arm();
  start(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, auto&&...) { cancelled = ec; }));
  REQUIRE(run_until(io, [&] { return !hold.held().empty() || cancelled.has_value(); }, s3_limit));
  INFO("held: " << hold.held());
  REQUIRE_FALSE(cancelled);  // waiting an hour for its retry
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return cancelled.has_value(); }, s3_limit));
  CHECK(*cancelled == asio::error::operation_aborted);

  std::optional<std::error_code> again;
  start([&](std::error_code ec, auto&&...) { again = ec; });
  REQUIRE(run_until(io, [&] { return again.has_value(); }, s3_limit));
  CHECK_FALSE(*again);
}

/// A local file holding `bytes`.
std::filesystem::path write_file(const temp_dir& dir, const std::string& name, const std::string& bytes) {
  const auto path = dir.path() / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace

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
  s3::config where;
  where.endpoint = s3::endpoint{"http", "127.0.0.1", server.port()};
  where.bucket = "bucket";
  where.credentials = s3::credentials{"AKIDEXAMPLE", "secret", ""};
  where.region = "us-east-1";
  s3::client client(io.get_executor(), where);
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

}  // namespace contract_test
