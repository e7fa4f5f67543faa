// Tests for storewatch/s3/config.hpp: endpoint and store URL parsing, the
// addressing style, request targets, the environment, and that no error
// shows a credential.
#include <storewatch/s3/config.hpp>
#include <storewatch/store/s3_store.hpp>

#include "s3/common/messages.hpp"
#include "s3/common/server.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace config_test {

namespace {

namespace s3 = storewatch::s3;

/// Clears the AWS variables for a test and restores them afterwards.
class environment_guard {
 public:
  environment_guard() {
    for (const char* name : names) {
      if (const char* value = std::getenv(name)) saved_[name] = value;
      ::unsetenv(name);
    }
  }
  ~environment_guard() {
    for (const char* name : names) {
      const auto it = saved_.find(name);
      if (it == saved_.end()) {
        ::unsetenv(name);
      } else {
        ::setenv(name, it->second.c_str(), 1);
      }
    }
  }
  environment_guard(const environment_guard&) = delete;
  environment_guard& operator=(const environment_guard&) = delete;

  void set(const char* name, const std::string& value) { REQUIRE(::setenv(name, value.c_str(), 1) == 0); }

 private:
  static constexpr const char* names[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                          "AWS_REGION",        "AWS_DEFAULT_REGION",    "AWS_ENDPOINT_URL",
                                          "AWS_ENDPOINT_URL_S3"};
  std::map<std::string, std::string> saved_;
};

using storewatch::s3::test::error_of;

s3::config local_config(std::string endpoint_url = "http://127.0.0.1:9000") {
  s3::config c;
  c.endpoint = s3::parse_endpoint(endpoint_url);
  c.bucket = "bucket";
  c.prefix = "logs";
  c.credentials = {"AKID", "secret", {}};
  return c;
}

}  // namespace

TEST_CASE("endpoint URLs are parsed") {
  struct expected {
    std::string url, scheme, host;
    int port;
    std::string authority;
  };
  const std::vector<expected> cases{
      {"https://s3.eu-west-1.amazonaws.com", "https", "s3.eu-west-1.amazonaws.com", 443, "s3.eu-west-1.amazonaws.com"},
      {"http://127.0.0.1:9000", "http", "127.0.0.1", 9000, "127.0.0.1:9000"},
      {"http://127.0.0.1:9000/", "http", "127.0.0.1", 9000, "127.0.0.1:9000"},
      {"http://[::1]:4568", "http", "::1", 4568, "[::1]:4568"},
      {"https://[2001:db8::7]", "https", "2001:db8::7", 443, "[2001:db8::7]"},
      {"HTTP://LocalHost", "http", "localhost", 80, "localhost"},
      {"http://minio.internal:80", "http", "minio.internal", 80, "minio.internal"},
      {"https://minio.internal:80", "https", "minio.internal", 80, "minio.internal:80"},
  };
  for (const auto& c : cases) {
    INFO(c.url);
    const auto e = s3::parse_endpoint(c.url);
    CHECK(e.scheme == c.scheme);
    CHECK(e.host == c.host);
    CHECK(e.port == c.port);
    CHECK(e.authority() == c.authority);
  }
}

TEST_CASE("bad endpoint URLs are rejected, naming the field") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"localhost:9000", "expected http://host"},
      {"ftp://example.com", "scheme"},
      {"http://", "host is empty"},
      {"http://:9000", "host is empty"},
      {"http://host:", "empty port"},
      {"http://host:0", "port"},
      {"http://host:65536", "port"},
      {"http://host:9x", "port"},
      {"http://host/bucket", "path"},
      {"http://host?x=1", "query"},
      {"http://ho st", "host name"},
      {"http://a..b", "host name"},
      {"http://[::1", "]"},
      {"http://[not-v6]:1", "IPv6"},
      {"http://[::1]x", "after ']'"},
  };
  for (const auto& [url, says] : cases) {
    INFO(url);
    const auto message = error_of([&] { s3::parse_endpoint(url, "AWS_ENDPOINT_URL"); });
    INFO(message);
    CHECK(message.starts_with("AWS_ENDPOINT_URL: "));
    CHECK(message.find(says) != std::string::npos);
  }
}

TEST_CASE("an endpoint URL's user part is rejected without being shown") {
  const auto message = error_of([] { s3::parse_endpoint("http://admin:hunter2@127.0.0.1:9000", "AWS_ENDPOINT_URL"); });
  CHECK(message.starts_with("AWS_ENDPOINT_URL: "));
  CHECK(message.find("hunter2") == std::string::npos);
  CHECK(message.find("admin") == std::string::npos);
}

TEST_CASE("automatic addressing is virtual-hosted on AWS and path-style elsewhere") {
  const std::vector<std::pair<std::string, s3::addressing_style>> cases{
      {"http://127.0.0.1:9000", s3::addressing_style::path},
      {"http://[::1]:9000", s3::addressing_style::path},
      {"http://localhost:4568", s3::addressing_style::path},
      {"https://s3.eu-west-1.amazonaws.com", s3::addressing_style::virtual_hosted},
      {"https://S3.cn-north-1.AmazonAWS.com.cn", s3::addressing_style::virtual_hosted},
      {"http://minio.internal:9000", s3::addressing_style::path},
      {"http://minio:9000", s3::addressing_style::path},
      {"https://storage.googleapis.com", s3::addressing_style::path},
      {"https://amazonaws.com.example.org", s3::addressing_style::path},
  };
  for (const auto& [url, style] : cases) {
    INFO(url);
    CHECK(s3::effective_addressing(local_config(url)) == style);
  }
  auto c = local_config("https://s3.eu-west-1.amazonaws.com");
  c.addressing = s3::addressing_style::path;
  CHECK(s3::effective_addressing(c) == s3::addressing_style::path);
  c = local_config("http://127.0.0.1:9000");
  c.addressing = s3::addressing_style::virtual_hosted;
  CHECK(s3::effective_addressing(c) == s3::addressing_style::virtual_hosted);
  // A dotted bucket over https would not match the endpoint's wildcard certificate.
  c = local_config("https://s3.eu-west-1.amazonaws.com");
  c.bucket = "my.bucket";
  CHECK(s3::effective_addressing(c) == s3::addressing_style::path);
  c.endpoint.scheme = "http";
  c.endpoint.port = 80;
  CHECK(s3::effective_addressing(c) == s3::addressing_style::virtual_hosted);
}

TEST_CASE("request targets follow the addressing style") {
  auto c = local_config("http://127.0.0.1:9000");
  const auto key = s3::object_key(c, "a b.txt");
  CHECK(key == "logs/a b.txt");

  auto target = s3::object_target(c, key);
  CHECK(target.host == "127.0.0.1:9000");
  CHECK(target.path == "/bucket/logs/a b.txt");
  CHECK(s3::target_url(c, target) == "http://127.0.0.1:9000/bucket/logs/a%20b.txt");
  target = s3::bucket_target(c);
  CHECK(target.path == "/bucket");
  CHECK(s3::target_url(c, target, {{"prefix", s3::key_prefix(c)}, {"list-type", "2"}}) ==
        "http://127.0.0.1:9000/bucket?list-type=2&prefix=logs%2F");

  c = local_config("http://[::1]:9000");
  CHECK(s3::object_target(c, "k").host == "[::1]:9000");

  // No endpoint: AWS's for the region, virtual-hosted.
  c.endpoint = {};
  c.region = "eu-west-1";
  target = s3::object_target(c, key);
  CHECK(target.host == "bucket.s3.eu-west-1.amazonaws.com");
  CHECK(target.path == "/logs/a b.txt");
  CHECK(s3::target_url(c, target) == "https://bucket.s3.eu-west-1.amazonaws.com/logs/a%20b.txt");
  CHECK(s3::bucket_target(c).path == "/");

  c.addressing = s3::addressing_style::path;
  target = s3::object_target(c, key);
  CHECK(target.host == "s3.eu-west-1.amazonaws.com");
  CHECK(target.path == "/bucket/logs/a b.txt");

  c = local_config("http://minio.internal:9000");
  CHECK(s3::object_target(c, "k").host == "minio.internal:9000");
  c.addressing = s3::addressing_style::virtual_hosted;
  target = s3::object_target(c, "k");
  CHECK(target.host == "bucket.minio.internal:9000");
  CHECK(target.path == "/k");

  // Keys are used as they are: S3 does not normalize paths.
  CHECK(s3::object_target(c, "a//./b").path == "/a//./b");
  CHECK_THROWS_AS(s3::object_target(c, ""), std::invalid_argument);
}

TEST_CASE("the key prefix is a folder") {
  auto c = local_config();
  for (const std::string prefix : {"logs", "logs/"}) {
    c.prefix = prefix;
    CHECK(s3::key_prefix(c) == "logs/");
    CHECK(s3::object_key(c, "x") == "logs/x");
  }
  c.prefix.clear();
  CHECK(s3::key_prefix(c).empty());
  CHECK(s3::object_key(c, "x") == "x");
}

TEST_CASE("store URLs are parsed") {
  auto location = s3::parse_store_url("s3://my-bucket");
  CHECK(location.bucket == "my-bucket");
  CHECK(location.prefix.empty());
  location = s3::parse_store_url("s3://my-bucket/");
  CHECK(location.bucket == "my-bucket");
  CHECK(location.prefix.empty());
  location = s3::parse_store_url("s3://my.bucket.2/team a/logs/");
  CHECK(location.bucket == "my.bucket.2");
  CHECK(location.prefix == "team a/logs/");

  const std::vector<std::string> bad_urls{"my-bucket",       "s3:/my-bucket",   "http://my-bucket",
                                          "s3://",           "s3://ab",         "s3://My_Bucket",
                                          "s3://-bucket",    "s3://bucket-",    "s3://a..b",
                                          "s3://192.168.1.1", "s3://bucket//x", "s3://bucket/x\ny",
                                          std::string(64, 'a').insert(0, "s3://")};
  for (const auto& url : bad_urls) {
    INFO(url);
    const auto message = error_of([&] { s3::parse_store_url(url); });
    CHECK(message.starts_with("store URL: "));
  }
}

TEST_CASE("validate names the field at fault and never shows a credential") {
  const std::string secret = "wJalrXUtnFEMI-s3cr3t-must-not-leak";
  const std::string token = "session-t0k3n-must-not-leak";
  const auto good = [&] {
    auto c = local_config();
    c.credentials = {"AKIDEXAMPLE", secret, token};
    return c;
  };
  REQUIRE_NOTHROW(s3::validate(good()));

  const std::vector<std::pair<std::string, std::function<void(s3::config&)>>> cases{
      {"bucket: ", [](s3::config& c) { c.bucket = "Bad_Bucket"; }},
      {"bucket: ", [](s3::config& c) { c.bucket.clear(); }},
      {"prefix: ", [](s3::config& c) { c.prefix = "/logs"; }},
      {"prefix: ", [](s3::config& c) { c.prefix = "a//b"; }},
      {"region: ", [](s3::config& c) { c.region = "eu/west"; }},
      {"region: ", [](s3::config& c) { c.region.clear(); }},
      {"endpoint: ", [](s3::config& c) { c.endpoint.scheme = "ftp"; }},
      {"endpoint: ", [](s3::config& c) { c.endpoint.port = 0; }},
      {"endpoint: ", [](s3::config& c) { c.endpoint.host = "bad host"; }},
      {"addressing: ", [](s3::config& c) { c.addressing = s3::addressing_style::virtual_hosted; }},
      {"credentials.access_key_id: ", [](s3::config& c) { c.credentials.access_key_id.clear(); }},
      {"credentials.access_key_id: ", [](s3::config& c) { c.credentials.access_key_id = "AKID/x"; }},
      {"credentials.secret_access_key: ", [](s3::config& c) { c.credentials.secret_access_key.clear(); }},
      {"credentials.secret_access_key: ", [&](s3::config& c) { c.credentials.secret_access_key += "\n"; }},
      {"credentials.session_token: ", [&](s3::config& c) { c.credentials.session_token += "\r\nX: 1"; }},
  };
  for (const auto& [field, spoil] : cases) {
    INFO(field);
    auto c = good();
    spoil(c);
    const auto message = error_of([&] { s3::validate(c); });
    INFO(message);
    CHECK(message.starts_with(field));
    CHECK(message.find(secret) == std::string::npos);
    CHECK(message.find("s3cr3t") == std::string::npos);
    CHECK(message.find("t0k3n") == std::string::npos);
  }
}

TEST_CASE("the configuration is read from the environment") {
  environment_guard environment;
  environment.set("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
  environment.set("AWS_SECRET_ACCESS_KEY", "secret/key+1");

  SECTION("defaults: us-east-1 on AWS, no session token") {
    const auto c = s3::config_from_environment("s3://bucket/logs");
    CHECK(c.bucket == "bucket");
    CHECK(c.prefix == "logs");
    CHECK(c.region == "us-east-1");
    CHECK(c.endpoint.host.empty());
    CHECK(s3::effective_endpoint(c).host == "s3.us-east-1.amazonaws.com");
    CHECK(c.addressing == s3::addressing_style::automatic);
    CHECK(c.credentials.access_key_id == "AKIDEXAMPLE");
    CHECK(c.credentials.secret_access_key == "secret/key+1");
    CHECK(c.credentials.session_token.empty());
  }
  SECTION("every variable") {
    environment.set("AWS_SESSION_TOKEN", "token");
    environment.set("AWS_REGION", "eu-central-1");
    environment.set("AWS_DEFAULT_REGION", "ignored-1");
    environment.set("AWS_ENDPOINT_URL", "http://localhost:4568");
    const auto c = s3::config_from_environment("s3://bucket");
    CHECK(c.credentials.session_token == "token");
    CHECK(c.region == "eu-central-1");
    CHECK(c.endpoint.host == "localhost");
    CHECK(c.endpoint.port == 4568);
    CHECK(s3::object_target(c, "k").path == "/bucket/k");
  }
  SECTION("AWS_DEFAULT_REGION when AWS_REGION is unset; AWS_ENDPOINT_URL_S3 first") {
    environment.set("AWS_DEFAULT_REGION", "ap-south-1");
    environment.set("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
    environment.set("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2");
    const auto c = s3::config_from_environment("s3://bucket");
    CHECK(c.region == "ap-south-1");
    CHECK(c.endpoint.port == 2);
  }
  SECTION("empty variables count as unset") {
    environment.set("AWS_REGION", "");
    environment.set("AWS_ENDPOINT_URL", "");
    environment.set("AWS_SESSION_TOKEN", "");
    const auto c = s3::config_from_environment("s3://bucket");
    CHECK(c.region == "us-east-1");
    CHECK(c.endpoint.host.empty());
    CHECK(c.credentials.session_token.empty());
  }
  SECTION("credentials alone") {
    const auto who = s3::credentials_from_environment();
    CHECK(who.access_key_id == "AKIDEXAMPLE");
    CHECK(who.secret_access_key == "secret/key+1");
  }
}

TEST_CASE("environment errors name the variable and never show a credential") {
  const std::string secret = "wJalrXUtnFEMI-s3cr3t-must-not-leak";
  const std::vector<std::pair<std::string, std::function<void(environment_guard&)>>> cases{
      {"AWS_ACCESS_KEY_ID: ", [](environment_guard& e) { ::unsetenv("AWS_ACCESS_KEY_ID"); (void)e; }},
      {"AWS_ACCESS_KEY_ID: ", [](environment_guard& e) { e.set("AWS_ACCESS_KEY_ID", "AKID,x"); }},
      {"AWS_SECRET_ACCESS_KEY: ", [](environment_guard& e) { ::unsetenv("AWS_SECRET_ACCESS_KEY"); (void)e; }},
      {"AWS_SECRET_ACCESS_KEY: ", [&](environment_guard& e) { e.set("AWS_SECRET_ACCESS_KEY", secret + "\n"); }},
      {"AWS_SESSION_TOKEN: ", [&](environment_guard& e) { e.set("AWS_SESSION_TOKEN", secret + "\x01"); }},
      {"AWS_REGION: ", [](environment_guard& e) { e.set("AWS_REGION", "eu west"); }},
      {"AWS_DEFAULT_REGION: ", [](environment_guard& e) { e.set("AWS_DEFAULT_REGION", "eu/west"); }},
      {"AWS_ENDPOINT_URL: ", [](environment_guard& e) { e.set("AWS_ENDPOINT_URL", "localhost:9000"); }},
      {"AWS_ENDPOINT_URL_S3: ", [](environment_guard& e) { e.set("AWS_ENDPOINT_URL_S3", "http://h/path"); }},
      {"AWS_ENDPOINT_URL: ",
       [&](environment_guard& e) { e.set("AWS_ENDPOINT_URL", "http://user:" + secret + "@127.0.0.1"); }},
  };
  for (const auto& [variable, spoil] : cases) {
    INFO(variable);
    environment_guard environment;
    environment.set("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    environment.set("AWS_SECRET_ACCESS_KEY", secret);
    spoil(environment);
    const auto message = error_of([] { s3::config_from_environment("s3://bucket"); });
    INFO(message);
    CHECK(message.starts_with(variable));
    CHECK(message.find(secret) == std::string::npos);
    CHECK(message.find("s3cr3t") == std::string::npos);
  }
  // A bad store URL is reported as such, whatever the environment holds.
  environment_guard environment;
  CHECK(error_of([] { s3::config_from_environment("s3://Bad_Bucket"); }).starts_with("store URL: "));
}

TEST_CASE("keys over S3's 1,024 bytes: refused by object_target, and by s3_store at create naming the path") {
  auto c = local_config();
  CHECK_NOTHROW(s3::object_target(c, std::string(s3::max_key_bytes, 'k')));
  CHECK(error_of([&] { s3::object_target(c, std::string(s3::max_key_bytes + 1, 'k')); })
            .find("is 1025 bytes; S3 allows at most 1024") != std::string::npos);

  asio::io_context io;
  s3::test::scripted_http_server server(io, [](const auto&, std::size_t) {
    return s3::test::scripted_reply::respond(500);
  });
  c = local_config(server.url(""));
  c.prefix = std::string(100, 'p');
  s3::s3_store_options options;
  options.client.max_attempts = 1;
  s3::s3_store store(io.get_executor(), c, "alice", options);
  // prefix/ + shares/<64-byte grantee>/alice/<path>✹alice_<13 digits>: 1024 bytes with a path of 823.
  const auto path_of = [](std::size_t bytes) {
    std::string path;
    while (path.size() + 151 < bytes) path += std::string(150, 'd') + '/';
    return path + std::string(bytes - path.size(), 'f');
  };
  const auto create = [&](const std::string& path) {
    std::error_code result;
    bool done = false;
    store.async_create_file(path, "x", [&](std::error_code ec, storewatch::versioned_path) {
      result = ec;
      done = true;
    });
    io.restart();
    while (!done && io.run_one() > 0) {
    }
    REQUIRE(done);
    return result;
  };
  CHECK(create(path_of(824)) == storewatch::errc::invalid_path);
  CHECK(store.last_error().starts_with("invalid path \"" + path_of(824).substr(0, 20)));
  CHECK(store.last_error().find("would be up to 1025 bytes under the key prefix") != std::string::npos);
  CHECK(server.requests().empty());
  // One byte shorter fits: the store goes on to the server (which fails it).
  CHECK(create(path_of(823)) == storewatch::errc::store_io_failed);
  CHECK(!server.requests().empty());
}

}  // namespace config_test
