// Tests for storewatch/s3/client.hpp.
// Against the scripted HTTP server: the signed request on the wire, retries
// (503, Retry-After, 500 until the attempts run out, connection refused, the
// retry budget), cancellation, and the errors (403, malformed listings, keys
// outside the prefix), none showing a credential.
// Against s3rver (tag [s3rver]; the CTest fixture starts it): a round trip,
// missing keys, pagination with continuation tokens, start-after, delimiter,
// and a wrong secret.
#include <storewatch/s3/client.hpp>

#include "common/fixture.hpp"
#include "s3/common/server.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace client_test {

namespace {

namespace s3 = storewatch::s3;
using storewatch::errc;
using storewatch::test::run_until;
using s3::test::recorded_request;
using s3::test::scripted_http_server;
using s3::test::scripted_reply;

constexpr const char* access_key_id = "AKIDSCRIPTEDTEST";
constexpr const char* secret_access_key = "scripted/secret+never-shown";

/// A store on the scripted server at `port`: bucket "bucket", prefix "pre/fix".
s3::config scripted_config(std::uint16_t port) {
  s3::config c;
  c.endpoint = s3::endpoint{"http", "127.0.0.1", port};
  c.bucket = "bucket";
  c.prefix = "pre/fix";
  c.credentials = s3::credentials{access_key_id, secret_access_key, ""};
  return c;
}

/// Quick retries for tests.
s3::client_options quick_options(int max_attempts = 4) {
  s3::client_options options;
  options.retry = storewatch::backoff_policy{std::chrono::milliseconds(10), std::chrono::milliseconds(2'000), 2.0, 0.2};
  options.max_attempts = max_attempts;
  return options;
}

std::string error_body(std::string_view code, std::string_view message, std::string_view extra = {}) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + std::string(code) + "</Code><Message>" +
         std::string(message) + "</Message>" + std::string(extra) + "</Error>";
}

/// Runs `task` (an awaitable) on `io` to its end (within a generous
/// bound); returns its result or rethrows its exception.
template <class Task>
auto run(asio::io_context& io, Task task) {
  return storewatch::test::run_coroutine(io, std::move(task), std::chrono::seconds(60));
}

/// What `f()` threw (a std::system_error), or FAILs.
template <class F>
storewatch::test::failure failure_of(F&& f) {
  auto failure = storewatch::test::failure_of(std::forward<F>(f));
  INFO(failure.what);
  CHECK(failure.code);
  return failure;
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

/// Checks `message` shows no credential and no signing material.
void check_no_secrets(const std::string& message, const s3::credentials& who) {
  INFO(message);
  CHECK_FALSE(contains(message, who.secret_access_key));
  CHECK_FALSE(contains(message, who.access_key_id));
  CHECK_FALSE(contains(message, "Credential="));
  CHECK_FALSE(contains(message, "Signature="));
  CHECK_FALSE(contains(message, "AWS4-HMAC-SHA256"));
}

}  // namespace

TEST_CASE("the constructor checks the configuration") {
  asio::io_context io;
  auto c = scripted_config(9000);
  c.bucket = "Not_A_Bucket";
  try {
    s3::client client(io.get_executor(), c);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).starts_with("bucket: "));
  }
}

TEST_CASE("requests are signed, path-style, with the key under the prefix") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request& r, std::size_t) {
    if (r.method == "GET") return scripted_reply::respond(200, "content");
    return scripted_reply::respond(200);
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  CHECK(run(io, client.put("dir/a b.txt", "payload")));
  const auto got = run(io, client.get("dir/a b.txt"));
  REQUIRE(got);
  CHECK(*got == "content");
  REQUIRE(server.requests().size() == 2);
  const auto& put = server.requests()[0];
  CHECK(put.method == "PUT");
  CHECK(put.target == "/bucket/pre/fix/dir/a%20b.txt");
  CHECK(put.body == "payload");
  REQUIRE(put.header("x-amz-content-sha256") != nullptr);
  CHECK(*put.header("x-amz-content-sha256") == s3::sha256_hex("payload"));
  REQUIRE(put.header("authorization") != nullptr);
  CHECK(put.header("authorization")->starts_with(std::string("AWS4-HMAC-SHA256 Credential=") + access_key_id + '/'));
  REQUIRE(put.header("host") != nullptr);
  CHECK(*put.header("host") == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(put.header("x-amz-date") != nullptr);
  CHECK(put.header("if-none-match") == nullptr);
  CHECK(server.requests()[1].method == "GET");
  CHECK(*server.requests()[1].header("x-amz-content-sha256") == s3::empty_payload_sha256);
  const auto counts = client.counts();
  CHECK(counts.put == 1);
  CHECK(counts.get == 1);
  CHECK(counts.retries == 0);
  CHECK(counts.failures == 0);
}

TEST_CASE("retries on 503, then succeeds") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t index) {
    if (index < 2) return scripted_reply::respond(503, error_body("SlowDown", "Please reduce your request rate."));
    return scripted_reply::respond(200, "finally");
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  const auto got = run(io, client.get("k"));
  REQUIRE(got);
  CHECK(*got == "finally");
  CHECK(server.requests().size() == 3);
  const auto counts = client.counts();
  CHECK(counts.get == 3);
  CHECK(counts.retries == 2);
  CHECK(counts.failures == 0);
  // Each attempt carries its own signature.
  for (const auto& r : server.requests()) CHECK(r.header("authorization") != nullptr);
}

TEST_CASE("S3 error codes that mean 'try again' are retried whatever the status") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t index) {
    if (index == 0) return scripted_reply::respond(400, error_body("RequestTimeout", "Your socket connection timed out."));
    return scripted_reply::respond(200);
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  CHECK(run(io, client.put("k", "v")));
  CHECK(client.counts().retries == 1);
}

TEST_CASE("Retry-After in seconds is honoured") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t index) {
    if (index == 0) return scripted_reply::respond(503, error_body("SlowDown", "slow down"), {{"Retry-After", "1"}});
    return scripted_reply::respond(204);
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  run(io, client.remove("k"));
  REQUIRE(server.requests().size() == 2);
  const auto gap = server.requests()[1].arrived - server.requests()[0].arrived;
  INFO("gap " << std::chrono::duration_cast<std::chrono::milliseconds>(gap).count() << " ms");
  CHECK(gap >= std::chrono::milliseconds(950));
}

TEST_CASE("the retry decision, Retry-After and the retry delay") {
  using std::chrono::milliseconds;
  using s3::detail::attempt_verdict;
  const s3::credentials who{access_key_id, secret_access_key, ""};
  const auto verdict = [&](std::error_code ec, long status, std::string body = {},
                           std::vector<s3::header> headers = {}) {
    s3::http_response response;
    response.status = status;
    response.body = std::move(body);
    response.headers = std::move(headers);
    return s3::detail::classify_attempt(ec, response, who);
  };
  CHECK(verdict(s3::make_http_error(CURLE_COULDNT_CONNECT), 0).verdict == attempt_verdict::retry);
  CHECK(verdict(s3::make_http_error(CURLE_OPERATION_TIMEDOUT), 0).verdict == attempt_verdict::retry);
  CHECK(verdict(s3::make_http_error(CURLE_RECV_ERROR), 0).verdict == attempt_verdict::retry);
  CHECK(verdict(s3::make_http_error(CURLE_GOT_NOTHING), 0).verdict == attempt_verdict::retry);
  CHECK(verdict(s3::make_http_error(CURLE_COULDNT_RESOLVE_HOST), 0).verdict == attempt_verdict::fail);
  CHECK(verdict(s3::make_http_error(CURLE_PEER_FAILED_VERIFICATION), 0).verdict == attempt_verdict::fail);
  for (const long status : {429L, 500L, 502L, 503L, 504L}) {
    CHECK(verdict({}, status).verdict == attempt_verdict::retry);
  }
  for (const long status : {200L, 204L, 400L, 403L, 404L, 412L, 501L}) {
    CHECK(verdict({}, status).verdict == attempt_verdict::done);
  }
  CHECK(verdict({}, 400, error_body("RequestTimeout", "idle")).verdict == attempt_verdict::retry);
  CHECK(verdict({}, 400, error_body("InvalidArgument", "no")).verdict == attempt_verdict::done);
  const auto slow = verdict({}, 503, error_body("SlowDown", "slow"), {{"retry-after", "3"}});
  CHECK(slow.retry_after == milliseconds(3000));
  CHECK(slow.reason == "HTTP 503 SlowDown: \"slow\"");

  CHECK(s3::detail::parse_retry_after("1") == milliseconds(1000));
  CHECK(s3::detail::parse_retry_after(" 30 ") == milliseconds(30'000));
  CHECK_FALSE(s3::detail::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(s3::detail::parse_retry_after("-1"));
  CHECK_FALSE(s3::detail::parse_retry_after(""));
  const storewatch::backoff_policy policy{milliseconds(100), milliseconds(2'000), 2.0, 0.0};
  CHECK(s3::detail::retry_delay(policy, 1, 0.5, std::nullopt) == milliseconds(100));
  CHECK(s3::detail::retry_delay(policy, 1, 0.5, milliseconds(1'000)) == milliseconds(1'000));
  CHECK(s3::detail::retry_delay(policy, 1, 0.5, milliseconds(60'000)) == milliseconds(2'000));  // capped
  CHECK(s3::detail::retry_delay(policy, 3, 0.5, milliseconds(0)) == milliseconds(400));
}

TEST_CASE("500 on every attempt: store_io_failed naming the key, after max_attempts") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t) {
    return scripted_reply::respond(500, error_body("InternalError", "We encountered an internal error. Please try again."));
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options(3));
  const auto failure = failure_of([&] { run(io, client.put("some/key", "v")); });
  CHECK(failure.code == errc::store_io_failed);
  INFO(failure.what);
  CHECK(contains(failure.what, "S3 PUT s3://bucket/pre/fix/some/key: HTTP 500 InternalError: "
                               "\"We encountered an internal error. Please try again.\""));
  CHECK(contains(failure.what, "gave up after 3 attempts"));
  CHECK(server.requests().size() == 3);
  CHECK(client.counts().retries == 2);
  CHECK(client.counts().failures == 1);
  check_no_secrets(failure.what, client.configuration().credentials);
}

TEST_CASE("connection refused is retried, then fails") {
  asio::io_context io;
  s3::client client(io.get_executor(), scripted_config(s3::test::unused_port(io)), quick_options(3));
  const auto failure = failure_of([&] { run(io, client.get("k")); });
  CHECK(failure.code == errc::store_io_failed);
  INFO(failure.what);
  CHECK(contains(failure.what, "S3 GET s3://bucket/pre/fix/k: "));
  CHECK(contains(failure.what, "Connection refused"));
  CHECK(contains(failure.what, "gave up after 3 attempts"));
  CHECK(client.counts().get == 3);
  CHECK(client.counts().retries == 2);
}

TEST_CASE("the retry budget ends retries before max_attempts") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t) { return scripted_reply::respond(503); });
  auto options = quick_options(100);
  options.retry = storewatch::backoff_policy{std::chrono::milliseconds(50), std::chrono::milliseconds(50), 1.0, 0.0};
  // 100 attempts would take 5 s. (An attempt the budget's end cuts short
  // fails as timed out: the message then names the 503 as the last answer.)
  options.retry_budget = std::chrono::milliseconds(1'000);
  s3::client client(io.get_executor(), scripted_config(server.port()), options);
  const auto started = std::chrono::steady_clock::now();
  const auto failure = failure_of([&] { run(io, client.exists("k")); });
  INFO(failure.what);
  CHECK(failure.code == errc::store_io_failed);
  CHECK(contains(failure.what, "HTTP 503"));
  CHECK(contains(failure.what, "gave up after"));
  CHECK(server.requests().size() < 100);
  CHECK(server.requests().size() >= 2);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
}

TEST_CASE("an attempt the retry budget cuts short names the server's last answer") {
  asio::io_context io;
  // 503 SlowDown, then no answer at all: the second attempt gets what is
  // left of the budget and times out.
  scripted_http_server server(io, [](const recorded_request&, std::size_t index) {
    return index == 0 ? scripted_reply::respond(503, error_body("SlowDown", "Please reduce your request rate."))
                      : scripted_reply::stall();
  });
  auto options = quick_options(100);
  options.retry = storewatch::backoff_policy{std::chrono::milliseconds(50), std::chrono::milliseconds(50), 1.0, 0.0};
  options.retry_budget = std::chrono::milliseconds(1'000);
  s3::client client(io.get_executor(), scripted_config(server.port()), options);
  const auto failure = failure_of([&] { run(io, client.get("k")); });
  INFO(failure.what);
  CHECK(failure.code == errc::store_io_failed);
  CHECK(contains(failure.what, "S3 GET s3://bucket/pre/fix/k: "));
  CHECK(contains(failure.what, "timed out"));
  CHECK(contains(failure.what, "(the server's last answer: HTTP 503 SlowDown: \"Please reduce your request rate.\")"));
  CHECK(contains(failure.what, "gave up after 2 attempts"));
  CHECK(server.requests().size() == 2);
}

TEST_CASE("403: store_access_denied naming the bucket and key, without credentials") {
  asio::io_context io;
  // Like S3's and s3rver's SignatureDoesNotMatch: the key id, the string to
  // sign, and here the key id inside the message too.
  scripted_http_server server(io, [](const recorded_request&, std::size_t) {
    return scripted_reply::respond(
        403, error_body("SignatureDoesNotMatch",
                        std::string("The request signature we calculated does not match (key ") + access_key_id + ").",
                        std::string("<AWSAccessKeyId>") + access_key_id +
                            "</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20260101T000000Z</StringToSign>"
                            "<CanonicalRequest>GET /bucket</CanonicalRequest>"));
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  const auto failure = failure_of([&] { run(io, client.get("secret-plans.txt")); });
  CHECK(failure.code == errc::store_access_denied);
  INFO(failure.what);
  CHECK(contains(failure.what, "S3 GET s3://bucket/pre/fix/secret-plans.txt: HTTP 403 SignatureDoesNotMatch: "));
  CHECK(contains(failure.what, "<redacted>"));
  check_no_secrets(failure.what, client.configuration().credentials);
  CHECK(server.requests().size() == 1);  // not retried
  CHECK(client.counts().failures == 1);
}

TEST_CASE("missing objects: get gives nullopt, exists false, remove succeeds, a missing bucket is an error") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request& r, std::size_t) {
    if (r.target.find("no-bucket") != std::string::npos) {
      return scripted_reply::respond(404, error_body("NoSuchBucket", "The specified bucket does not exist"));
    }
    if (r.method == "HEAD") return scripted_reply::respond(404);
    return scripted_reply::respond(404, error_body("NoSuchKey", "The specified key does not exist."));
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  CHECK_FALSE(run(io, client.get("gone")));
  CHECK_FALSE(run(io, client.exists("gone")));
  run(io, client.remove("gone"));
  const auto failure = failure_of([&] { run(io, client.get("no-bucket")); });
  CHECK(failure.code == errc::store_io_failed);
  CHECK(contains(failure.what, "HTTP 404 NoSuchBucket"));
  CHECK(client.counts().retries == 0);
}

TEST_CASE("put if_absent sends If-None-Match: * and gives false on 412") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request& r, std::size_t) {
    if (r.header("if-none-match") != nullptr) {
      return scripted_reply::respond(412, error_body("PreconditionFailed", "At least one of the pre-conditions you specified did not hold"));
    }
    return scripted_reply::respond(200);
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  CHECK_FALSE(run(io, client.put("k", "v", true)));
  REQUIRE(server.requests().size() == 2);  // the PUT, and a HEAD: the object is not this call's own
  CHECK(*server.requests()[0].header("if-none-match") == "*");
  CHECK(server.requests()[1].method == "HEAD");
  CHECK(run(io, client.put("k", "v")));
  // Without if_absent, a 412 is an error.
  scripted_http_server always_412(io, [](const recorded_request&, std::size_t) { return scripted_reply::respond(412); });
  s3::client other(io.get_executor(), scripted_config(always_412.port()), quick_options());
  CHECK(failure_of([&] { run(io, other.put("k", "v")); }).code == errc::store_io_failed);
}

TEST_CASE("listing: the query as signed, names relative to the prefix") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t) {
    return scripted_reply::respond(
        200,
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bucket</Name>"
        "<Prefix>pre/fix/a/</Prefix><StartAfter>pre/fix/a/0</StartAfter><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>tok+/=</NextContinuationToken><MaxKeys>2</MaxKeys>"
        "<Contents><Key>pre/fix/a/1</Key><Size>3</Size></Contents>"
        "<CommonPrefixes><Prefix>pre/fix/a/b/</Prefix></CommonPrefixes></ListBucketResult>");
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  s3::list_request request;
  request.prefix = "a/";
  request.start_after = "a/0";
  request.delimiter = "/";
  request.max_keys = 2;
  request.continuation_token = "prev+/=";
  const auto page = run(io, client.list(request));
  REQUIRE(page.objects.size() == 1);
  CHECK(page.objects[0].key == "a/1");
  CHECK(page.objects[0].size == 3);
  CHECK(page.common_prefixes == std::vector<std::string>{"a/b/"});
  CHECK(page.prefix == "a/");
  CHECK(page.start_after == "a/0");
  CHECK(page.truncated);
  CHECK(page.next_continuation_token == "tok+/=");
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].method == "GET");
  CHECK(server.requests()[0].target ==
        "/bucket?continuation-token=prev%2B%2F%3D&delimiter=%2F&list-type=2&max-keys=2&prefix=pre%2Ffix%2Fa%2F"
        "&start-after=pre%2Ffix%2Fa%2F0");
  CHECK(client.counts().list == 1);
}

TEST_CASE("a malformed listing is store_io_failed naming the request") {
  asio::io_context io;
  const std::string body = GENERATE(std::string("<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>"),
                                    std::string("<html>not xml"),
                                    std::string("<ListBucketResult><IsTruncated>false</IsTruncated>"
                                                "<Contents><Key>elsewhere/k</Key><Size>1</Size></Contents>"
                                                "</ListBucketResult>"));
  scripted_http_server server(io, [&](const recorded_request&, std::size_t) { return scripted_reply::respond(200, body); });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  s3::list_request request;
  request.prefix = "logs/";
  const auto failure = failure_of([&] { run(io, client.list(request)); });
  CHECK(failure.code == errc::store_io_failed);
  INFO(failure.what);
  CHECK(contains(failure.what, "S3 LIST s3://bucket/pre/fix/logs/: "));
  CHECK((contains(failure.what, "ListObjectsV2 response") || contains(failure.what, "outside the key prefix")));
  CHECK(client.counts().failures == 1);
  CHECK(server.requests().size() == 1);  // not retried
}

TEST_CASE("cancelling a request in its retry wait ends it promptly with operation_aborted") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t) {
    return scripted_reply::respond(503, error_body("SlowDown", "slow down"), {{"Retry-After", "10"}});
  });
  auto options = quick_options();
  options.retry.max = std::chrono::seconds(15);
  s3::client client(io.get_executor(), scripted_config(server.port()), options);
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, client.get("k"),
                 asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::optional<std::string>) {
                   error = e;
                   done = true;
                 }));
  REQUIRE(run_until(io, [&] { return client.counts().retries == 1; }));
  const auto started = std::chrono::steady_clock::now();
  signal.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  REQUIRE(error);
  const auto failure = failure_of([&] { std::rethrow_exception(error); });
  CHECK(failure.code == asio::error::operation_aborted);
  CHECK(server.requests().size() == 1);
  CHECK(client.counts().failures == 0);
}

TEST_CASE("cancelling a request in flight ends it with operation_aborted") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t) { return scripted_reply::stall(); });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, client.put("k", "v"), asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, bool) {
                   error = e;
                   done = true;
                 }));
  REQUIRE(run_until(io, [&] { return server.requests().size() == 1; }));
  signal.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return done; }, std::chrono::seconds(5)));
  REQUIRE(error);
  CHECK(failure_of([&] { std::rethrow_exception(error); }).code == asio::error::operation_aborted);
  CHECK(client.counts().retries == 0);
}

// --- against s3rver (or the store named by STOREWATCH_S3_ENDPOINT) ---

namespace {

/// Removes `names` from the store, ignoring errors (cleanup on a real bucket).
asio::awaitable<void> remove_all(s3::client& client, std::vector<std::string> names) {
  for (auto& name : names) {
    try {
      co_await client.remove(name);
    } catch (const std::system_error&) {
    }
  }
}

}  // namespace

TEST_CASE("s3rver: put, get, exists and remove round trip", "[s3rver]") {
  asio::io_context io;
  s3::client client(io.get_executor(), s3::test::test_server_config());
  const std::string body = std::string("binary\0data\xff", 12) + std::string(100'000, 'x');
  CHECK(run(io, client.put("dir/object one", body)));
  CHECK(run(io, client.exists("dir/object one")));
  const auto got = run(io, client.get("dir/object one"));
  REQUIRE(got);
  CHECK(*got == body);
  CHECK(run(io, client.put("dir/object one", "second")));
  CHECK(run(io, client.get("dir/object one")) == std::optional<std::string>("second"));
  run(io, client.remove("dir/object one"));
  CHECK_FALSE(run(io, client.exists("dir/object one")));
  CHECK_FALSE(run(io, client.get("dir/object one")));
  CHECK(client.counts().failures == 0);
  CHECK(client.counts().retries == 0);
}

TEST_CASE("s3rver: a missing key: get gives nullopt, exists false, remove succeeds", "[s3rver]") {
  asio::io_context io;
  s3::client client(io.get_executor(), s3::test::test_server_config());
  CHECK_FALSE(run(io, client.get("never/written")));
  CHECK_FALSE(run(io, client.exists("never/written")));
  run(io, client.remove("never/written"));
}

TEST_CASE("s3rver: put if_absent (s3rver ignores If-None-Match and overwrites)", "[s3rver]") {
  asio::io_context io;
  s3::client client(io.get_executor(), s3::test::test_server_config());
  CHECK(run(io, client.put("once", "first", true)));
  const bool second = run(io, client.put("once", "second", true));
  if (s3::test::using_s3rver()) {
    CHECK(second);  // documented: s3rver does not support conditional writes
    CHECK(run(io, client.get("once")) == std::optional<std::string>("second"));
  } else {
    CHECK_FALSE(second);  // AWS, MinIO
    CHECK(run(io, client.get("once")) == std::optional<std::string>("first"));
  }
  run(io, client.remove("once"));
}

TEST_CASE("s3rver: listing pages through continuation tokens, start-after and delimiter", "[s3rver]") {
  asio::io_context io;
  s3::client client(io.get_executor(), s3::test::test_server_config());
  std::vector<std::string> keys;
  for (int i = 1; i <= 25; ++i) {
    std::string number = std::to_string(i);
    keys.push_back("k/" + std::string(3 - number.size(), '0') + number);
  }
  const std::vector<std::string> others = {"d/a/1", "d/a/2", "d/b/1", "d/c"};
  run(io, [&]() -> asio::awaitable<void> {
    for (const auto& key : keys) co_await client.put(key, "v " + key);
    for (const auto& key : others) co_await client.put(key, key);
  }());

  SECTION("25 keys, 10 per page") {
    std::vector<std::string> listed;
    std::vector<std::size_t> page_sizes;
    s3::list_request request;
    request.prefix = "k/";
    request.max_keys = 10;
    for (int pages = 0; pages < 10; ++pages) {
      const auto page = run(io, client.list(request));
      page_sizes.push_back(page.objects.size());
      for (const auto& object : page.objects) listed.push_back(object.key);
      if (!page.truncated) break;
      CHECK_FALSE(page.next_continuation_token.empty());
      request.continuation_token = page.next_continuation_token;
    }
    CHECK(page_sizes == std::vector<std::size_t>{10, 10, 5});
    CHECK(listed == keys);
    CHECK(client.counts().list == 3);
  }
  SECTION("start-after") {
    s3::list_request request;
    request.prefix = "k/";
    request.start_after = "k/020";
    const auto page = run(io, client.list(request));
    std::vector<std::string> listed;
    for (const auto& object : page.objects) listed.push_back(object.key);
    CHECK(listed == std::vector<std::string>(keys.begin() + 20, keys.end()));
    CHECK_FALSE(page.truncated);
  }
  SECTION("delimiter") {
    s3::list_request request;
    request.prefix = "d/";
    request.delimiter = "/";
    const auto page = run(io, client.list(request));
    REQUIRE(page.objects.size() == 1);
    CHECK(page.objects[0].key == "d/c");
    CHECK(page.objects[0].size == 3);
    CHECK(page.common_prefixes == std::vector<std::string>{"d/a/", "d/b/"});
  }
  SECTION("the whole store") {
    s3::list_request request;
    const auto page = run(io, client.list(request));
    CHECK(page.objects.size() == keys.size() + others.size());
    for (const auto& object : page.objects) CHECK_FALSE(object.key.starts_with("t-"));
  }
  std::vector<std::string> all = keys;
  all.insert(all.end(), others.begin(), others.end());
  run(io, remove_all(client, all));
}

TEST_CASE("s3rver: a wrong secret gives store_access_denied naming bucket and key, without the secret", "[s3rver]") {
  asio::io_context io;
  auto c = s3::test::test_server_config();
  c.credentials.secret_access_key = "wrong-secret-never-shown";
  s3::client client(io.get_executor(), c);
  const auto failure = failure_of([&] { run(io, client.get("private/object")); });
  CHECK(failure.code == errc::store_access_denied);
  INFO(failure.what);
  CHECK(contains(failure.what, "S3 GET s3://" + c.bucket + '/' + c.prefix + "private/object: HTTP 403"));
  CHECK(contains(failure.what, "SignatureDoesNotMatch"));
  check_no_secrets(failure.what, c.credentials);
  CHECK(client.counts().retries == 0);
}

}  // namespace client_test
