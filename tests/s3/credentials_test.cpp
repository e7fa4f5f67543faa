// Tests for storewatch/s3/credentials.hpp and the client's use of it.
// Without I/O: ISO-8601 times, the JSON and STS documents, the refresh time.
// Against loopback stand-ins on the test's io_context: credential_process
// with small shell commands (good, bad JSON, failing, hanging, too talkative),
// container credentials, IMDSv2 (a token PUT first, then the role and its
// credentials), STS AssumeRoleWithWebIdentity. With the client: one fetch for
// many concurrent requests (one failure for all when it fails; a waiting
// request takes over from a cancelled one), credentials refreshed before they
// expire and the next request signed with the new ones, a 403 ExpiredToken
// answered by one refresh and a retry, a failed refresh riding on still-valid
// credentials until they expire. Against s3rver (tag [s3rver]): a listener that keeps
// delivering across refreshes of its credentials.
#include <storewatch/s3/client.hpp>
#include <storewatch/s3/credentials.hpp>

#include "common/fixture.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"
#include "s3/common/server.hpp"
#include "support/temp_dir.hpp"

#include <storewatch/store/s3_store.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <signal.h>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace credentials_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
using s3::test::recorded_request;
using s3::test::scripted_http_server;
using s3::test::scripted_reply;
using sys_clock = std::chrono::system_clock;

namespace {

/// `time` as ISO-8601 UTC with milliseconds: "2026-12-04T18:00:00.123Z".
std::string iso8601(sys_clock::time_point time) {
  const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(time);
  const auto days = std::chrono::floor<std::chrono::days>(ms);
  const std::chrono::year_month_day date(days);
  const std::chrono::hh_mm_ss clock(ms - days);
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return text;
}

/// A credential_process source running `command`.
s3::credential_source process_source(std::string command) {
  s3::credential_source source;
  source.what = s3::credential_source::kind::process;
  source.origin = "test profile";
  source.command = std::move(command);
  return source;
}

/// Fetches once from `source` with `options`; what it threw, if anything, in `error`.
std::optional<s3::temporary_credentials> fetch_once(asio::io_context& io, const s3::credential_source& source,
                                                     failure& error, s3::credential_options options = {}) {
  s3::credential_provider provider(io.get_executor(), source, options);
  std::optional<s3::temporary_credentials> got;
  error = failure_of([&] { got = run_coroutine(io, provider.fetch()); });
  return got;
}

/// What one fetch from `source` gives; fails the test if it throws.
s3::temporary_credentials fetch_ok(asio::io_context& io, const s3::credential_source& source) {
  failure error;
  auto got = fetch_once(io, source, error);
  INFO(error.what);
  REQUIRE(got);
  return *got;
}

/// A stand-in for a container credentials endpoint: each request that
/// carries `authorization` gets keys "KEY<n>"/"SECRET<n>"/"TOKEN<n>" (n
/// counting fetches from 1) that expire `life` from now; `failing_after`
/// fetches, it answers 500; a request without the authorization gets 403.
struct container_stand_in {
  explicit container_stand_in(asio::io_context& io, std::chrono::milliseconds life = 1h, std::string key = "KEY",
                              std::string secret = "SECRET")
      : server(io, [this, life, key, secret](const recorded_request& r, std::size_t) {
          const auto* auth = r.header("authorization");
          if (!auth || *auth != authorization) return scripted_reply::respond(403, "{\"message\":\"no\"}");
          if (fetches >= failing_after) return scripted_reply::respond(500, "down");
          ++fetches;
          const auto n = std::to_string(fetches);
          // To the millisecond, as it is sent.
          const sys_clock::time_point expires = std::chrono::floor<std::chrono::milliseconds>(sys_clock::now() + life);
          expirations.push_back(expires);
          return scripted_reply::respond(
              200, "{\"AccessKeyId\":\"" + key + (key == "S3RVER" ? "" : n) + "\",\"SecretAccessKey\":\"" + secret +
                       (secret == "S3RVER" ? "" : n) + "\",\"Token\":\"TOKEN" + n + "\",\"Expiration\":\"" +
                       iso8601(expires) + "\"}");
        }) {}

  s3::credential_source source() const {
    s3::credential_source s;
    s.what = s3::credential_source::kind::container;
    s.origin = "test stand-in";
    s.uri = server.url("/v2/credentials/abc");
    s.authorization = authorization;
    return s;
  }

  std::string authorization = "Bearer sekrit-auth";
  std::size_t fetches = 0;
  std::size_t failing_after = static_cast<std::size_t>(-1);
  std::vector<sys_clock::time_point> expirations{};
  scripted_http_server server;
};

/// A recording S3 stand-in: answers every request 200 "x" (or as `answer`
/// says), keeping each one's access key and session token.
struct s3_stand_in {
  struct seen {
    std::string key, token;
    sys_clock::time_point when;
  };
  explicit s3_stand_in(asio::io_context& io,
                       std::function<std::optional<scripted_reply>(const seen&)> answer = {})
      : server(io, [this, answer](const recorded_request& r, std::size_t) {
          seen s;
          if (const auto* auth = r.header("authorization")) {
            const auto at = auth->find("Credential=");
            if (at != std::string::npos) s.key = auth->substr(at + 11, auth->find('/', at) - at - 11);
          }
          if (const auto* token = r.header("x-amz-security-token")) s.token = *token;
          s.when = sys_clock::now();
          requests.push_back(s);
          if (answer) {
            if (auto reply = answer(s)) return *reply;
          }
          return scripted_reply::respond(200, "x");
        }) {}

  s3::config config(const s3::credential_source& source) const {
    s3::config c;
    c.endpoint = s3::endpoint{"http", "127.0.0.1", server.port()};
    c.bucket = "bucket";
    c.credentials_from = source;
    return c;
  }

  std::vector<seen> requests{};
  scripted_http_server server;
};

/// What `e` holds, as `failure_of` reports it.
failure thrown(std::exception_ptr e) {
  return failure_of([&] {
    if (e) std::rethrow_exception(e);
  });
}

s3::client_options quick(std::chrono::milliseconds margin) {
  s3::client_options options;
  options.retry = backoff_policy{10ms, 200ms, 2.0, 0.2};
  options.credentials.refresh_margin = margin;
  options.credentials.refresh_retry = 100ms;
  return options;
}

}  // namespace

TEST_CASE("credentials: ISO-8601 times as the sources give them, and what is not one") {
  using s3::detail::parse_iso8601;
  const auto base = sys_clock::time_point(std::chrono::sys_days(std::chrono::year{2026} / 12 / 4)) + 18h;
  CHECK(parse_iso8601("2026-12-04T18:00:00Z") == base);
  CHECK(parse_iso8601("2026-12-04T18:00:00.250Z") == base + 250ms);
  CHECK(parse_iso8601("2026-12-04T19:30:00+01:30") == base);
  CHECK(parse_iso8601("2026-12-04T16:00:00-02:00") == base);
  for (const char* bad : {"", "2026-12-04", "2026-12-04T18:00:00", "2026-13-04T18:00:00Z", "2026-02-30T18:00:00Z",
                          "2026-12-04T24:00:00Z", "2026-12-04T18:00:00Zjunk", "2026-12-04T18:00:00.Z", "yesterday"}) {
    INFO(bad);
    CHECK_FALSE(parse_iso8601(bad));
  }
}

TEST_CASE("credentials: the JSON of credential_process and of container endpoints, and what is wrong with it") {
  using s3::detail::credentials_from_json;
  using s3::detail::json_credentials_format;
  const auto got = credentials_from_json(
      R"({"Version":1,"AccessKeyId":"AK","SecretAccessKey":"SK","SessionToken":"ST","Expiration":"2026-12-04T18:00:00Z"})",
      json_credentials_format::process);
  CHECK(got.keys.access_key_id == "AK");
  CHECK(got.keys.secret_access_key == "SK");
  CHECK(got.keys.session_token == "ST");
  CHECK(got.expiration == s3::detail::parse_iso8601("2026-12-04T18:00:00Z"));
  const auto forever = credentials_from_json(R"({"Version":1,"AccessKeyId":"AK","SecretAccessKey":"SK"})",
                                             json_credentials_format::process);
  CHECK_FALSE(forever.expiration);
  CHECK(forever.keys.session_token.empty());
  const auto container = credentials_from_json(
      R"({"Code":"Success","AccessKeyId":"AK","SecretAccessKey":"SK","Token":"TT","Expiration":"2026-12-04T18:00:00Z"})",
      json_credentials_format::container);
  CHECK(container.keys.session_token == "TT");

  const auto problem = [](const char* text, json_credentials_format format = json_credentials_format::process) {
    try {
      credentials_from_json(text, format);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(problem("not json") == "the output is not JSON");
  CHECK(problem("[1]") == "the JSON is not an object");
  CHECK_THAT(problem(R"({"AccessKeyId":"AK","SecretAccessKey":"SK"})"), Catch::Contains("no Version"));
  CHECK_THAT(problem(R"({"Version":2,"AccessKeyId":"AK","SecretAccessKey":"SK"})"), Catch::Contains("Version is 2"));
  CHECK_THAT(problem(R"({"Version":1,"AccessKeyId":"AK"})"), Catch::Contains("no SecretAccessKey"));
  CHECK_THAT(problem(R"({"Version":1,"AccessKeyId":"A K","SecretAccessKey":"hush"})"),
             Catch::Contains("AccessKeyId") && !Catch::Contains("hush"));
  CHECK_THAT(problem(R"({"Version":1,"AccessKeyId":"AK","SecretAccessKey":7})"), Catch::Contains("not a string"));
  CHECK_THAT(problem(R"({"Version":1,"AccessKeyId":"AK","SecretAccessKey":"hush","Expiration":"soon"})"),
             Catch::Contains("\"soon\" is not an ISO-8601 time") && !Catch::Contains("hush"));
  CHECK_THAT(problem(R"({"Code":"Failure","AccessKeyId":"AK","SecretAccessKey":"SK"})",
                     json_credentials_format::container),
             Catch::Contains("Failure"));
}

TEST_CASE("credentials: an STS AssumeRoleWithWebIdentity response, an STS error, and a response without credentials") {
  const auto got = s3::parse_sts_credentials(
      "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
      "<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>x</SubjectFromWebIdentityToken>"
      "<Credentials><SessionToken>ST</SessionToken><SecretAccessKey>SK</SecretAccessKey>"
      "<Expiration>2026-12-04T18:00:00Z</Expiration><AccessKeyId>AK</AccessKeyId></Credentials>"
      "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>");
  CHECK(got.access_key_id == "AK");
  CHECK(got.secret_access_key == "SK");
  CHECK(got.session_token == "ST");
  CHECK(got.expiration == "2026-12-04T18:00:00Z");
  const auto f = failure_of([] {
    s3::parse_sts_credentials(
        "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad token</Message></Error></ErrorResponse>");
  });
  CHECK_THAT(f.what, Catch::Contains("InvalidIdentityToken") && Catch::Contains("bad token"));
  CHECK_THAT(failure_of([] { s3::parse_sts_credentials("<R><RResult/></R>"); }).what, Catch::Contains("no Credentials"));
  CHECK_THAT(failure_of([] { s3::parse_sts_credentials("not xml"); }).what, Catch::Contains("not XML"));
}

TEST_CASE("credentials: refresh time is the margin before expiry, or half the life of short-lived credentials") {
  const auto now = sys_clock::now();
  CHECK(s3::detail::refresh_time(now, now + 1h, 5min) == now + 55min);
  CHECK(s3::detail::refresh_time(now, now + 4min, 5min) == now + 2min);
}

TEST_CASE("credential_process: the command's JSON, with its expiry") {
  asio::io_context io;
  const auto got = fetch_ok(io, process_source(R"(printf '{"Version": 1, "AccessKeyId": "AKPROC", )"
                                               R"("SecretAccessKey": "SKPROC", "SessionToken": "STPROC", )"
                                               R"("Expiration": "2099-01-01T00:00:00Z"}\n')"));
  CHECK(got.keys.access_key_id == "AKPROC");
  CHECK(got.keys.secret_access_key == "SKPROC");
  CHECK(got.keys.session_token == "STPROC");
  CHECK(got.expiration == s3::detail::parse_iso8601("2099-01-01T00:00:00Z"));
}

TEST_CASE("credential_process: in a program that ignores SIGCHLD (children reaped by the system) it still ends") {
  asio::io_context io;
  struct restore {
    void (*previous)(int) = std::signal(SIGCHLD, SIG_IGN);
    ~restore() { std::signal(SIGCHLD, previous); }
  } ignoring;
  const auto got = fetch_ok(io, process_source(R"(echo '{"Version":1,"AccessKeyId":"AKIGN","SecretAccessKey":"S"}')"));
  CHECK(got.keys.access_key_id == "AKIGN");
}

TEST_CASE("credential_process: bad JSON, a failing command, a hanging one and a talkative one are clear errors") {
  asio::io_context io;
  failure error;
  SECTION("bad JSON") {
    CHECK_FALSE(fetch_once(io, process_source("echo '{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": "
                                              "\"hush-hush\"'"),
                           error));
    CHECK(error.code == errc::store_access_denied);
    CHECK_THAT(error.what, Catch::Contains("credential_process (test profile)") && Catch::Contains("not JSON"));
    CHECK_THAT(error.what, !Catch::Contains("hush-hush"));
  }
  SECTION("non-zero exit") {
    CHECK_FALSE(fetch_once(io, process_source("echo '{\"Version\":1,\"AccessKeyId\":\"AK\",\"SecretAccessKey\":"
                                              "\"hush-hush\"}'; exit 3"),
                           error));
    CHECK(error.code == errc::store_access_denied);
    CHECK_THAT(error.what, Catch::Contains("exited with status 3") && !Catch::Contains("hush-hush"));
  }
  SECTION("a command that hangs is killed after the timeout, with what it started") {
    temp_dir dir;
    const auto pid_file = (dir.path() / "pid").string();
    s3::credential_options options;
    options.process_timeout = 300ms;
    const auto started = std::chrono::steady_clock::now();
    CHECK_FALSE(fetch_once(io, process_source("sleep 60 & echo $! > " + pid_file + "; wait"), error, options));
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    CHECK(error.code == errc::store_access_denied);
    CHECK_THAT(error.what, Catch::Contains("did not finish within 300 ms"));
    std::ifstream in(pid_file);
    pid_t sleeper = 0;
    REQUIRE(in >> sleeper);
    // Killed with its group; reaped by init once orphaned: gone or a zombie soon.
    CHECK(test_support::wait_for([&] {
      std::ifstream stat("/proc/" + std::to_string(sleeper) + "/stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const auto paren = text.rfind(')');
      return !stat || paren == std::string::npos || text.substr(paren + 2, 1) == "Z";
    }));
  }
  SECTION("huge output") {
    s3::credential_options options;
    options.max_process_output = 10'000;
    CHECK_FALSE(fetch_once(io, process_source("while :; do echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done"), error,
                           options));
    CHECK_THAT(error.what, Catch::Contains("more than 10000 bytes"));
  }
  SECTION("an empty command line is refused when the provider is made") {
    CHECK_THROWS_AS(s3::credential_provider(io.get_executor(), process_source("")), std::invalid_argument);
  }
}

TEST_CASE("container credentials: GET with the Authorization header, from the value or its file") {
  asio::io_context io;
  container_stand_in stand_in(io);
  failure error;
  auto source = stand_in.source();
  SECTION("value") {
    const auto got = fetch_ok(io, source);
    CHECK(got.keys.access_key_id == "KEY1");
    CHECK(got.keys.session_token == "TOKEN1");
    REQUIRE(got.expiration);
    CHECK(*got.expiration > sys_clock::now() + 50min);
  }
  SECTION("file, read again at each fetch") {
    temp_dir dir;
    const auto file = dir.path() / "token";
    std::ofstream(file) << "wrong\n";
    source.authorization.clear();
    source.authorization_file = file.string();
    CHECK_FALSE(fetch_once(io, source, error));
    CHECK(error.code == errc::store_access_denied);
    CHECK_THAT(error.what, Catch::Contains("container credentials (test stand-in)") && Catch::Contains("HTTP 403") &&
                               !Catch::Contains("wrong"));
    std::ofstream(file) << stand_in.authorization << '\n';
    REQUIRE(fetch_once(io, source, error));
    REQUIRE(stand_in.server.requests().size() == 2);
    CHECK(*stand_in.server.requests()[1].header("authorization") == stand_in.authorization);
    CHECK(stand_in.server.requests()[1].method == "GET");
  }
  SECTION("a failing endpoint is named, the authorization is not") {
    stand_in.failing_after = 0;
    CHECK_FALSE(fetch_once(io, source, error));
    CHECK_THAT(error.what, Catch::Contains(source.uri) && Catch::Contains("HTTP 500") && !Catch::Contains("sekrit"));
  }
}

TEST_CASE("instance metadata (IMDSv2): a session token first, then the role, then its expiring credentials") {
  asio::io_context io;
  const std::string token = "imds-session-token";
  std::size_t refused = 0;
  scripted_http_server imds(io, [&](const recorded_request& r, std::size_t) {
    if (r.method == "PUT" && r.target == "/latest/api/token") {
      const auto* ttl = r.header("x-aws-ec2-metadata-token-ttl-seconds");
      return ttl ? scripted_reply::respond(200, token) : scripted_reply::respond(400);
    }
    const auto* given = r.header("x-aws-ec2-metadata-token");
    if (r.method != "GET" || !given || *given != token) {
      ++refused;
      return scripted_reply::respond(401);
    }
    if (r.target == "/latest/meta-data/iam/security-credentials/") return scripted_reply::respond(200, "web-role\n");
    if (r.target == "/latest/meta-data/iam/security-credentials/web-role") {
      return scripted_reply::respond(200, R"({"Code":"Success","LastUpdated":"2026-12-04T17:00:00Z","Type":"AWS-HMAC",)"
                                          R"("AccessKeyId":"AKIMDS","SecretAccessKey":"SKIMDS","Token":"TKIMDS",)"
                                          R"("Expiration":")" +
                                              iso8601(sys_clock::now() + 6h) + "\"}");
    }
    return scripted_reply::respond(404);
  });
  s3::credential_source source;
  source.what = s3::credential_source::kind::instance_metadata;
  source.uri = imds.url("");
  const auto got = fetch_ok(io, source);
  CHECK(got.keys.access_key_id == "AKIMDS");
  CHECK(got.keys.session_token == "TKIMDS");
  CHECK(got.expiration);
  CHECK(refused == 0);
  REQUIRE(imds.requests().size() == 3);
  CHECK(imds.requests()[0].method == "PUT");

  // The stand-in holds to IMDSv2: a GET without the token is refused.
  s3::http_client http(io.get_executor());
  s3::http_request bare;
  bare.url = imds.url("/latest/meta-data/iam/security-credentials/");
  const auto response = run_coroutine(io, http.async_perform(bare, asio::use_awaitable));
  CHECK(response.status == 401);

  SECTION("no instance profile") {
    scripted_http_server no_role(io, [&](const recorded_request& r, std::size_t) {
      return r.method == "PUT" ? scripted_reply::respond(200, token) : scripted_reply::respond(404);
    });
    source.uri = no_role.url("");
    failure error;
    CHECK_FALSE(fetch_once(io, source, error));
    CHECK_THAT(error.what, Catch::Contains("instance metadata (IMDSv2)") && Catch::Contains("HTTP 404"));
  }
}

TEST_CASE("web identity: AssumeRoleWithWebIdentity with the token file's content at each fetch") {
  asio::io_context io;
  temp_dir dir;
  const auto token_file = dir.path() / "token";
  std::ofstream(token_file) << "oidc-token-1\n";
  scripted_http_server sts(io, [&](const recorded_request& r, std::size_t index) {
    if (r.method != "POST") return scripted_reply::respond(405);
    const auto n = std::to_string(index + 1);
    return scripted_reply::respond(
        200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
             "<AccessKeyId>AKSTS" + n + "</AccessKeyId><SecretAccessKey>SKSTS</SecretAccessKey>"
             "<SessionToken>STSTS</SessionToken><Expiration>" + iso8601(sys_clock::now() + 1h) +
             "</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>");
  });
  s3::credential_source source;
  source.what = s3::credential_source::kind::web_identity;
  source.role_arn = "arn:aws:iam::123456789012:role/reader";
  source.token_file = token_file.string();
  source.session_name = "tester";
  source.uri = sts.url("");
  const auto first = fetch_ok(io, source);
  CHECK(first.keys.access_key_id == "AKSTS1");
  CHECK(first.keys.session_token == "STSTS");
  std::ofstream(token_file) << "oidc-token-2\n";
  CHECK(fetch_ok(io, source).keys.access_key_id == "AKSTS2");
  REQUIRE(sts.requests().size() == 2);
  const auto& body = sts.requests()[0].body;
  CHECK_THAT(body, Catch::Contains("Action=AssumeRoleWithWebIdentity") && Catch::Contains("Version=2011-06-15") &&
                       Catch::Contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Freader") &&
                       Catch::Contains("RoleSessionName=tester") && Catch::Contains("WebIdentityToken=oidc-token-1"));
  CHECK_THAT(sts.requests()[1].body, Catch::Contains("WebIdentityToken=oidc-token-2"));
  CHECK(sts.requests()[0].header("authorization") == nullptr);

  SECTION("an STS error names its code, never the token") {
    scripted_http_server refusing(io, [](const recorded_request&, std::size_t) {
      return scripted_reply::respond(400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
                                          "<Message>expired</Message></Error></ErrorResponse>");
    });
    source.uri = refusing.url("");
    failure error;
    CHECK_FALSE(fetch_once(io, source, error));
    CHECK(error.code == errc::store_access_denied);
    CHECK_THAT(error.what, Catch::Contains("web identity") && Catch::Contains("HTTP 400") &&
                               !Catch::Contains("oidc-token"));
  }
  SECTION("a response without credentials") {
    scripted_http_server empty(io, [](const recorded_request&, std::size_t) {
      return scripted_reply::respond(200, "<AssumeRoleWithWebIdentityResponse/>");
    });
    source.uri = empty.url("");
    failure error;
    CHECK_FALSE(fetch_once(io, source, error));
    const auto parse_error = std::make_error_code(std::errc::bad_message).message();
    CHECK_THAT(error.what, Catch::Contains("no Credentials") && !Catch::Contains(parse_error));
  }
}

TEST_CASE("client credentials: concurrent requests wait for one fetch, and sign with its keys") {
  asio::io_context io;
  container_stand_in credentials(io);
  s3_stand_in store(io);
  s3::client client(io.get_executor(), store.config(credentials.source()), quick(5min));
  int done = 0;
  for (int i = 0; i < 8; ++i) {
    asio::co_spawn(io, client.get("k" + std::to_string(i)), [&](std::exception_ptr e, std::optional<std::string>) {
      if (!e) ++done;
    });
  }
  REQUIRE(run_until(io, [&] { return done == 8; }));
  CHECK(credentials.fetches == 1);
  REQUIRE(store.requests.size() == 8);
  for (const auto& r : store.requests) {
    CHECK(r.key == "KEY1");
    CHECK(r.token == "TOKEN1");
  }
}

TEST_CASE("client credentials: a failed fetch fails every request waiting for it, without fetching again") {
  asio::io_context io;
  container_stand_in credentials(io);
  credentials.failing_after = 0;
  s3_stand_in store(io);
  s3::client client(io.get_executor(), store.config(credentials.source()), quick(5min));
  std::vector<failure> failed;
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(io, client.get("k"), [&](std::exception_ptr e, std::optional<std::string>) {
      failed.push_back(thrown(e));
    });
  }
  REQUIRE(run_until(io, [&] { return failed.size() == 5; }));
  for (const auto& f : failed) {
    CHECK(f.code == errc::store_access_denied);
    CHECK_THAT(f.what, Catch::Contains("GET s3://bucket/k") && Catch::Contains("HTTP 500"));
    const std::string meaning = f.code.message();
    CHECK(f.what.find(meaning) == f.what.rfind(meaning));  // said once, at the end
  }
  CHECK(credentials.server.requests().size() == 1);
  CHECK(store.requests.empty());
}

TEST_CASE("client credentials: when the request fetching them is cancelled, a waiting one fetches instead") {
  asio::io_context io;
  std::size_t answered = 0;
  scripted_http_server endpoint(io, [&](const recorded_request&, std::size_t index) {
    if (index == 0) return scripted_reply::stall();
    ++answered;
    return scripted_reply::respond(200, R"({"AccessKeyId":"AKLATE","SecretAccessKey":"SK","Token":"T"})");
  });
  s3::credential_source source;
  source.what = s3::credential_source::kind::container;
  source.uri = endpoint.url("/creds");
  s3_stand_in store(io);
  s3::client client(io.get_executor(), store.config(source), quick(5min));
  asio::cancellation_signal cancel;
  std::optional<failure> first;
  std::optional<std::string> second;
  asio::co_spawn(io, client.get("a"),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, std::optional<std::string>) {
                   first = thrown(e);
                 }));
  asio::co_spawn(io, client.get("b"), [&](std::exception_ptr e, std::optional<std::string> body) {
    if (!e) second = body.value_or("<none>");
  });
  REQUIRE(run_until(io, [&] { return endpoint.requests().size() == 1; }));
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return first && second; }));
  CHECK(first->code == asio::error::operation_aborted);
  CHECK(*second == "x");
  CHECK(answered == 1);
  REQUIRE(store.requests.size() == 1);
  CHECK(store.requests[0].key == "AKLATE");
}

TEST_CASE("client credentials: refreshed before they expire, the next request signed with the new ones") {
  asio::io_context io;
  // Valid for 3 s, refreshed 2 s before: the first request after 1.5 s fetches.
  container_stand_in credentials(io, 3s);
  s3_stand_in store(io);
  s3::client client(io.get_executor(), store.config(credentials.source()), quick(2s));
  const auto started = sys_clock::now();
  // Requests one after another until one is signed with the second keys.
  for (;;) {
    run_coroutine(io, client.get("k"));
    if (store.requests.back().key == "KEY2") break;
    REQUIRE(sys_clock::now() - started < generous);
  }
  REQUIRE(credentials.expirations.size() == 2);
  const auto first_expiry = credentials.expirations[0];
  for (const auto& r : store.requests) {
    CHECK(r.token == (r.key == "KEY1" ? "TOKEN1" : "TOKEN2"));
    // Never signed with keys past their expiry.
    if (r.key == "KEY1") CHECK(r.when < first_expiry);
  }
  CHECK(store.requests.back().when < first_expiry);  // the refresh came before the expiry
  CHECK(store.requests.size() >= 2);
  CHECK(client.counts().failures == 0);
}

TEST_CASE("client credentials: a 403 ExpiredToken fetches new ones once and retries") {
  asio::io_context io;
  container_stand_in credentials(io);
  SECTION("the retry succeeds") {
    s3_stand_in store(io, [](const s3_stand_in::seen& s) -> std::optional<scripted_reply> {
      if (s.token != "TOKEN1") return std::nullopt;
      return scripted_reply::respond(403, "<Error><Code>ExpiredToken</Code><Message>The provided token has expired."
                                          "</Message></Error>");
    });
    s3::client client(io.get_executor(), store.config(credentials.source()), quick(5min));
    CHECK(run_coroutine(io, client.get("k")) == "x");
    CHECK(credentials.fetches == 2);
    REQUIRE(store.requests.size() == 2);
    CHECK(store.requests[1].key == "KEY2");
  }
  SECTION("a server that keeps saying so gets one refresh, then the error") {
    // Its message shows the token, as some servers' do: the client's does not.
    s3_stand_in store(io, [](const s3_stand_in::seen& s) -> std::optional<scripted_reply> {
      return scripted_reply::respond(403, "<Error><Code>InvalidToken</Code><Message>token " + s.token +
                                              " of " + s.key + " is invalid</Message></Error>");
    });
    s3::client client(io.get_executor(), store.config(credentials.source()), quick(5min));
    const auto f = failure_of([&] { run_coroutine(io, client.get("k")); });
    CHECK(f.code == errc::store_access_denied);
    CHECK_THAT(f.what, Catch::Contains("InvalidToken") && Catch::Contains("token <redacted> of <redacted>") &&
                           !Catch::Contains("TOKEN") && !Catch::Contains("SECRET"));
    CHECK(credentials.fetches == 2);
    CHECK(store.requests.size() == 2);
  }
}

TEST_CASE("client credentials: a failed refresh keeps the valid keys, after their expiry the error names the source") {
  asio::io_context io;
  // Valid for 4 s, due for refresh after 2 s; every refresh fails.
  container_stand_in credentials(io, 4s);
  credentials.failing_after = 1;
  s3_stand_in store(io);
  s3::client client(io.get_executor(), store.config(credentials.source()), quick(3s));
  failure f;
  for (;;) {
    f = failure_of([&] { run_coroutine(io, client.get("k")); });
    if (f.code) break;
    REQUIRE(store.requests.size() < 100'000);
  }
  REQUIRE(credentials.expirations.size() == 1);
  const auto expiry = credentials.expirations[0];
  CHECK(sys_clock::now() >= expiry);
  CHECK(f.code == errc::store_access_denied);
  CHECK_THAT(f.what, Catch::Contains("GET s3://bucket/k") && Catch::Contains("container credentials (test stand-in)") &&
                         Catch::Contains("HTTP 500"));
  // Retried now and then (every refresh_retry), not before every request.
  CHECK(credentials.server.requests().size() >= 3);
  CHECK(credentials.server.requests().size() < store.requests.size());
  // Signed before the expiry (a request signed just before may arrive just after).
  for (const auto& r : store.requests) CHECK(r.when < expiry + 500ms);
}

TEST_CASE("client credentials: fixed keys need no provider and sign as before") {
  asio::io_context io;
  s3_stand_in store(io);
  auto config = store.config({});
  config.credentials = s3::credentials{"AKFIXED", "SKFIXED", ""};
  s3::client client(io.get_executor(), config, quick(5min));
  CHECK(run_coroutine(io, client.get("k")) == "x");
  REQUIRE(store.requests.size() == 1);
  CHECK(store.requests[0].key == "AKFIXED");
  CHECK(store.requests[0].token.empty());
}

TEST_CASE("credentials refreshed during a running listener: every event arrives, across refreshes", "[s3rver]") {
  s3_kind kind;
  auto alice = kind.open("alice");
  // s3rver checks the key and signature and ignores the session token: the
  // stand-in hands out its keys with a new token each time, valid for 3 s.
  container_stand_in credentials(kind.io, 3s, "S3RVER", "S3RVER");
  auto config = kind.config;
  config.credentials = {};
  config.credentials_from = credentials.source();
  s3::s3_store bob(kind.io.get_executor(), config, "bob");
  s3::s3_journal_options journal_options;
  journal_options.client.credentials.refresh_margin = 2s;
  auto source = bob.events(journal_options);

  std::vector<event> got;
  std::vector<std::string> errors;
  listener_options options;
  options.on_error = [&](std::error_code, std::string_view message) { errors.emplace_back(message); };
  options.poller.poll_interval = 50ms;
  event_listener listener(kind.io.get_executor(), source, options);
  listener.add_event_listener([&](const event& e) { got.push_back(e); });
  listener.start();

  std::vector<std::string> expected;
  for (int round = 0; round < 3; ++round) {
    // Published with the listener's credentials as they are, then waited
    // for across the next refresh.
    const auto fetched = credentials.fetches;
    for (int i = 0; i < 3; ++i) {
      expected.push_back("r" + std::to_string(round) + "-" + std::to_string(i));
      alice.publish_event("note", expected.back(), {"bob"});
    }
    REQUIRE(run_until(kind.io, [&] { return got.size() == expected.size() && credentials.fetches > fetched; }));
  }
  const auto polls = listener.stats().polls;
  REQUIRE(run_until(kind.io, [&] { return listener.stats().polls >= polls + 5; }));  // a repeat would arrive now
  CHECK(data_of(got) == expected);
  CHECK(credentials.fetches >= 3);
  CHECK(errors.empty());
  CHECK(listener.stats().poll_errors == 0);
  listener.stop();
  REQUIRE(run_until(kind.io, [&] { return !listener.running(); }));
}

}  // namespace credentials_test
