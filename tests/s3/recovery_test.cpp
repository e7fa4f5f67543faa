// Tests for what storewatch/s3/client.hpp recovers from, against the
// scripted HTTP server: a server whose clock is far ahead (RequestTimeTooSkewed
// and other 403s with a distant Date: the clock offset is corrected and the
// request sent again once); a conditional PUT, from memory or a file, whose
// response was lost (the retry meets 412 and finds its own write mark);
// DeleteObjects batches (body, Content-MD5, 1000 keys per request, per-key
// errors). Against s3rver (tag [s3rver]): DeleteObjects removes what it names.
#include <storewatch/s3/client.hpp>

#include "common/fixture.hpp"
#include "s3/common/server.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace recovery_test {

namespace {

namespace s3 = storewatch::s3;
using namespace std::chrono_literals;
using s3::test::recorded_request;
using s3::test::scripted_http_server;
using s3::test::scripted_reply;
using storewatch::errc;

s3::config scripted_config(std::uint16_t port) {
  s3::config c;
  c.endpoint = s3::endpoint{"http", "127.0.0.1", port};
  c.bucket = "bucket";
  c.prefix = "pre/fix";
  c.credentials = s3::credentials{"AKIDRECOVERYTEST", "recovery/secret", ""};
  return c;
}

s3::client_options quick_options() {
  s3::client_options options;
  options.retry = storewatch::backoff_policy{10ms, 200ms, 2.0, 0.2};
  options.max_attempts = 4;
  return options;
}

template <class Task>
auto run(asio::io_context& io, Task task) {
  return storewatch::test::run_coroutine(io, std::move(task), std::chrono::seconds(60));
}

using storewatch::test::failure_of;
using clock_type = std::chrono::system_clock;

/// `time` (UTC) in the strftime `format`.
std::string utc_text(clock_type::time_point time, const char* format) {
  const std::time_t seconds = clock_type::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::strftime(text, sizeof text, format, &utc);
  return text;
}

/// `time` as an HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string http_date(clock_type::time_point time) { return utc_text(time, "%a, %d %b %Y %H:%M:%S GMT"); }

/// `time` as ISO 8601 UTC ("1994-11-06T08:49:37Z").
std::string iso_time(clock_type::time_point time) { return utc_text(time, "%Y-%m-%dT%H:%M:%SZ"); }

/// The time an X-Amz-Date value ("20150830T123600Z") names.
clock_type::time_point amz_time(const std::string& text) {
  std::tm utc{};
  REQUIRE(strptime(text.c_str(), "%Y%m%dT%H%M%SZ", &utc) != nullptr);
  return clock_type::from_time_t(timegm(&utc));
}

/// An S3 stand-in whose clock is `ahead` of ours: like S3, it refuses a
/// request whose X-Amz-Date is more than 15 minutes off its clock with 403
/// RequestTimeTooSkewed (ServerTime in the body, its Date in a header), and
/// answers others 200. With `deny` it answers those 403 AccessDenied instead.
scripted_http_server::script_type skewed_server(std::chrono::seconds ahead, bool deny = false) {
  return [ahead, deny](const recorded_request& r, std::size_t) {
    const auto server_now = clock_type::now() + ahead;
    const std::vector<std::pair<std::string, std::string>> date{{"Date", http_date(server_now)}};
    const auto* signed_at = r.header("x-amz-date");
    REQUIRE(signed_at != nullptr);
    const auto off = amz_time(*signed_at) - server_now;
    if (off > 15min || off < -15min) {
      return scripted_reply::respond(
          403,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>RequestTimeTooSkewed</Code><Message>The "
          "difference between the request time and the current time is too large.</Message><RequestTime>" +
              *signed_at + "</RequestTime><ServerTime>" + iso_time(server_now) +
              "</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds><RequestId>4442587FB7D0A2F9"
              "</RequestId></Error>",
          date);
    }
    if (deny) {
      return scripted_reply::respond(403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                                     date);
    }
    return scripted_reply::respond(200, r.method == "GET" ? "content" : "", date);
  };
}

}  // namespace

TEST_CASE("server times: HTTP-dates and ISO 8601, and nothing else") {
  const auto expected = std::chrono::sys_days(std::chrono::year(1994) / 11 / 6) + 8h + 49min + 37s;
  CHECK(s3::detail::parse_server_time("Sun, 06 Nov 1994 08:49:37 GMT") == expected);
  CHECK(s3::detail::parse_server_time("1994-11-06T08:49:37Z") == expected);
  CHECK(s3::detail::parse_server_time("1994-11-06T08:49:37.123Z") == expected);
  for (const char* bad : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Xyz 1994 08:49:37 GMT",
                          "Sun, 31 Feb 1994 08:49:37 GMT", "1994-11-06 08:49:37Z", "1994-13-06T08:49:37Z",
                          "1994-11-06T24:49:37Z", "Sunday, 06-Nov-94 08:49:37 GMT", "1994-11-06T08:49:37"}) {
    INFO(bad);
    CHECK_FALSE(s3::detail::parse_server_time(bad));
  }
}

TEST_CASE("the clock correction: from RequestTimeTooSkewed always, from another 403 only past 5 minutes") {
  const auto now = clock_type::now();
  const auto seconds = std::chrono::time_point_cast<std::chrono::seconds>(now);
  s3::http_response skewed;
  skewed.status = 403;
  skewed.body =
      "<Error><Code>RequestTimeTooSkewed</Code><ServerTime>" + iso_time(seconds + 2h) + "</ServerTime></Error>";
  skewed.headers.emplace_back("date", http_date(seconds + 3h));  // ServerTime wins
  CHECK(s3::detail::clock_correction(skewed, now, 0ms) ==
        std::chrono::duration_cast<std::chrono::milliseconds>(seconds + 2h - now));
  skewed.body = "<Error><Code>RequestTimeTooSkewed</Code></Error>";  // no ServerTime: the Date
  CHECK(s3::detail::clock_correction(skewed, now, 0ms) ==
        std::chrono::duration_cast<std::chrono::milliseconds>(seconds + 3h - now));
  skewed.headers.clear();  // no time at all: nothing to correct with
  CHECK_FALSE(s3::detail::clock_correction(skewed, now, 0ms));

  s3::http_response denied;
  denied.status = 403;
  denied.body = "<Error><Code>AccessDenied</Code></Error>";
  denied.headers.emplace_back("date", http_date(seconds + 4min));
  CHECK_FALSE(s3::detail::clock_correction(denied, now, 0ms));
  denied.headers.front().second = http_date(seconds - 6min);
  CHECK(s3::detail::clock_correction(denied, now, 0ms) ==
        std::chrono::duration_cast<std::chrono::milliseconds>(seconds - 6min - now));
  // Measured against the offset already in use.
  CHECK_FALSE(s3::detail::clock_correction(denied, now, -6min));
  denied.status = 404;
  CHECK_FALSE(s3::detail::clock_correction(denied, now, 0ms));
}

TEST_CASE("a server whose clock is 2 hours ahead: the first request is refused as skewed, corrected and sent again "
          "at once, and later requests are signed with its time") {
  asio::io_context io;
  scripted_http_server server(io, skewed_server(2h));
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  CHECK(client.clock_offset() == 0ms);
  CHECK(run(io, client.put("a.txt", "payload")));
  REQUIRE(server.requests().size() == 2);
  CHECK(client.clock_offset() > 2h - 5s);
  CHECK(client.clock_offset() < 2h + 5s);
  CHECK(client.counts().put == 2);
  CHECK(client.counts().retries == 1);
  // The retry went out at once, without a backoff wait.
  CHECK(server.requests()[1].arrived - server.requests()[0].arrived < 1s);
  CHECK(run(io, client.get("a.txt")) == std::optional<std::string>("content"));
  CHECK(server.requests().size() == 3);
  CHECK(client.counts().retries == 1);
}

TEST_CASE("a server that refuses as skewed whatever the time: one correction, then store_access_denied") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t) {
    return scripted_reply::respond(403, "<Error><Code>RequestTimeTooSkewed</Code><ServerTime>" +
                                            iso_time(clock_type::now() + 1h) + "</ServerTime></Error>");
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  const auto f = failure_of([&] { run(io, client.get("a.txt")); });
  CHECK(f.code == errc::store_access_denied);
  CHECK_THAT(f.what, Catch::Contains("RequestTimeTooSkewed"));
  CHECK(server.requests().size() == 2);  // never a loop
}

TEST_CASE("another 403 with a Date far off corrects the clock and is sent again once, near it is not") {
  asio::io_context io;
  SECTION("an hour ahead") {
    scripted_http_server server(io, skewed_server(1h, true));
    s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
    CHECK(failure_of([&] { run(io, client.get("a.txt")); }).code == errc::store_access_denied);
    CHECK(server.requests().size() == 2);
    CHECK(client.clock_offset() > 1h - 5s);
  }
  SECTION("a minute ahead") {
    scripted_http_server server(io, skewed_server(1min, true));
    s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
    CHECK(failure_of([&] { run(io, client.get("a.txt")); }).code == errc::store_access_denied);
    CHECK(server.requests().size() == 1);
    CHECK(client.clock_offset() == 0ms);
  }
}

namespace {

/// A bucket that honours If-None-Match: * and keeps each object's write
/// mark; with `lose_first_put`, it stores the first PUT and closes the
/// connection without answering (executed, response lost).
struct conditional_bucket {
  std::map<std::string, std::string> marks;  // target -> x-amz-meta-storewatch-write
  bool lose_first_put = false;
  std::size_t puts = 0;

  scripted_reply operator()(const recorded_request& r) {
    const auto* mark = r.header("x-amz-meta-storewatch-write");
    if (r.method == "PUT") {
      ++puts;
      const auto* condition = r.header("if-none-match");
      if (condition && *condition == "*" && marks.count(r.target) != 0) {
        return scripted_reply::respond(412, "<Error><Code>PreconditionFailed</Code></Error>");
      }
      marks[r.target] = mark ? *mark : "";
      if (lose_first_put && puts == 1) return scripted_reply::close_connection();
      return scripted_reply::respond(200);
    }
    if (r.method == "HEAD") {
      const auto found = marks.find(r.target);
      if (found == marks.end()) return scripted_reply::respond(404);
      return scripted_reply::respond(200, "", {{"x-amz-meta-storewatch-write", found->second}});
    }
    return scripted_reply::respond(400);
  }
};

}  // namespace

TEST_CASE("a conditional PUT whose response was lost meets 412 on its retry, finds its own write mark and succeeds") {
  asio::io_context io;
  conditional_bucket bucket;
  bucket.lose_first_put = true;
  scripted_http_server server(io, [&](const recorded_request& r, std::size_t) { return bucket(r); });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  CHECK(run(io, client.put("a.txt", "payload", true)));
  REQUIRE(server.requests().size() == 3);
  CHECK(server.requests()[0].method == "PUT");
  CHECK(server.requests()[1].method == "PUT");
  CHECK(server.requests()[2].method == "HEAD");
  const auto* mark = server.requests()[0].header("x-amz-meta-storewatch-write");
  REQUIRE(mark != nullptr);
  CHECK_THAT(*mark, Catch::EndsWith(s3::sha256_hex("payload")));
  CHECK(*server.requests()[1].header("x-amz-meta-storewatch-write") == *mark);  // the same call: the same mark

  // Another call's object: 412 is a real conflict.
  CHECK_FALSE(run(io, client.put("a.txt", "payload", true)));
  REQUIRE(server.requests().size() == 5);
  CHECK(*server.requests()[3].header("x-amz-meta-storewatch-write") != *mark);
  CHECK(server.requests()[4].method == "HEAD");
  // An unconditional PUT carries no mark.
  CHECK(run(io, client.put("b.txt", "payload")));
  CHECK(server.requests().back().header("x-amz-meta-storewatch-write") == nullptr);
}

TEST_CASE("a file's conditional PUT whose response was lost also finds its own write mark") {
  asio::io_context io;
  conditional_bucket bucket;
  bucket.lose_first_put = true;
  scripted_http_server server(io, [&](const recorded_request& r, std::size_t) { return bucket(r); });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  storewatch::test::temp_dir files;
  const auto source = files.path() / "small.bin";
  std::ofstream(source) << "file payload";
  CHECK(run(io, client.put_file("f.bin", source, true)));
  REQUIRE(server.requests().size() == 3);
  CHECK(server.requests()[0].body == "file payload");
  CHECK(server.requests()[2].method == "HEAD");
  REQUIRE(server.requests()[0].header("x-amz-meta-storewatch-write") != nullptr);
  CHECK(*server.requests()[1].header("x-amz-meta-storewatch-write") ==
        *server.requests()[0].header("x-amz-meta-storewatch-write"));
}

TEST_CASE("DeleteObjects: 1000 keys per request, quiet, Content-MD5, keys escaped, per-key errors returned") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request& r, std::size_t index) {
    if (index == 0) {
      return scripted_reply::respond(
          200, "<DeleteResult><Deleted><Key>pre/fix/k0</Key></Deleted><Error><Key>pre/fix/k&amp;1</Key><Code>"
               "AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>");
    }
    (void)r;
    return scripted_reply::respond(200, "<DeleteResult/>");
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  std::vector<std::string> names{"k0", "k&1"};
  for (int i = 2; i < 2500; ++i) names.push_back("k" + std::to_string(i));
  const auto failed = run(io, client.remove_many(names));
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].key == "k&1");
  CHECK(failed[0].code == "AccessDenied");
  CHECK(failed[0].message == "Access Denied");
  REQUIRE(server.requests().size() == 3);
  CHECK(client.counts().remove_batches == 3);
  CHECK(client.counts().remove == 0);
  const auto& first = server.requests()[0];
  CHECK(first.method == "POST");
  CHECK(first.target == "/bucket?delete=");
  REQUIRE(first.header("content-md5") != nullptr);
  CHECK(*first.header("content-md5") == s3::detail::md5_base64(first.body));
  CHECK_THAT(first.body, Catch::Contains("<Quiet>true</Quiet>") &&
                             Catch::Contains("<Object><Key>pre/fix/k0</Key></Object>") &&
                             Catch::Contains("<Key>pre/fix/k&amp;1</Key>") && Catch::Contains("<Key>pre/fix/k999<") &&
                             !Catch::Contains("<Key>pre/fix/k1000<"));
  CHECK_THAT(server.requests()[1].body,
             Catch::Contains("<Key>pre/fix/k1000<") && Catch::Contains("<Key>pre/fix/k1999<"));
  CHECK_THAT(server.requests()[2].body, Catch::Contains("<Key>pre/fix/k2499<"));
  CHECK(s3::detail::md5_base64("") == "1B2M2Y8AsgTpgAmY7PhCfg==");

  // Nothing to delete: no request.
  CHECK(run(io, client.remove_many({})).empty());
  CHECK(server.requests().size() == 3);
}

TEST_CASE("DeleteObjects: a response that is not a DeleteResult is store_io_failed") {
  asio::io_context io;
  scripted_http_server server(io, [](const recorded_request&, std::size_t) {
    return scripted_reply::respond(200, "<ListBucketResult/>");
  });
  s3::client client(io.get_executor(), scripted_config(server.port()), quick_options());
  const auto f = failure_of([&] { run(io, client.remove_many({"a"})); });
  CHECK(f.code == errc::store_io_failed);
  CHECK_THAT(f.what, Catch::Contains("DeleteObjects") && Catch::Contains("DeleteResult"));
}

TEST_CASE("s3rver: DeleteObjects removes the objects it names, missing ones included, in one request", "[s3rver]") {
  asio::io_context io;
  s3::client client(io.get_executor(), s3::test::test_server_config());
  for (const char* name : {"d/a", "d/b & c", "d/keep"}) {
    const std::string key(name);
    const std::string body("x");
    CHECK(run(io, client.put(key, body)));
  }
  const auto failed = run(io, client.remove_many({"d/a", "d/b & c", "d/missing"}));
  CHECK(failed.empty());
  CHECK(client.counts().remove_batches == 1);
  s3::list_request request;
  request.prefix = "d/";
  const auto page = run(io, client.list(request));
  REQUIRE(page.objects.size() == 1);
  CHECK(page.objects[0].key == "d/keep");
}

}  // namespace recovery_test
