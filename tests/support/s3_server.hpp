// The S3 store that tests and benchmarks run against: the user's
// (STOREWATCH_S3_ENDPOINT, AWS_*, STOREWATCH_S3_BUCKET) or the s3rver the
// CTest fixture started (STOREWATCH_S3_STATE_DIR), with a fresh key prefix
// per call. Throws when there is neither: never a silent skip.
#pragma once

#include <storewatch/s3/config.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

namespace storewatch::test_support {

/// The value of environment variable `name`; unset and empty are the same.
inline std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

/// A fresh key prefix, "t-<16 hex digits>/", so that tests (and parallel
/// runs) never see each other's objects.
inline std::string random_prefix() {
  static constexpr char digits[] = "0123456789abcdef";
  std::random_device random;
  std::string prefix = "t-";
  for (int i = 0; i < 16; ++i) prefix += digits[random() % 16];
  return prefix + '/';
}

/// True when the tests run against the fixture's s3rver (not a store the
/// user named with STOREWATCH_S3_ENDPOINT).
inline bool using_s3rver() {
  return environment("STOREWATCH_S3_ENDPOINT").empty() || !environment("STOREWATCH_S3_LOCAL_SERVER").empty();
}

/// The store for the server tests, under a fresh `random_prefix()`:
/// - when STOREWATCH_S3_ENDPOINT is set: that endpoint, the bucket in
///   STOREWATCH_S3_BUCKET, credentials from AWS_ACCESS_KEY_ID,
///   AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), region AWS_REGION or
///   us-east-1;
/// - else the s3rver of the CTest fixture: http://127.0.0.1:PORT with PORT from
///   $STOREWATCH_S3_STATE_DIR/s3rver.port, the bucket from s3rver.bucket,
///   S3RVER/S3RVER, us-east-1.
/// Throws std::runtime_error when neither is available.
inline s3::config test_server_config() {
  s3::config c;
  const auto endpoint = environment("STOREWATCH_S3_ENDPOINT");
  if (!endpoint.empty()) {
    c.endpoint = s3::parse_endpoint(endpoint, "STOREWATCH_S3_ENDPOINT");
    c.bucket = environment("STOREWATCH_S3_BUCKET");
    if (c.bucket.empty()) throw std::runtime_error("STOREWATCH_S3_ENDPOINT is set but STOREWATCH_S3_BUCKET is not");
    c.credentials = s3::credentials_from_environment();
    const auto region = environment("AWS_REGION");
    c.region = region.empty() ? "us-east-1" : region;
  } else {
    const auto state_dir = environment("STOREWATCH_S3_STATE_DIR");
    if (state_dir.empty()) {
      throw std::runtime_error(
          "no S3 server for this test: run it through ctest (its s3rver_start fixture starts s3rver and sets "
          "STOREWATCH_S3_STATE_DIR), or set STOREWATCH_S3_ENDPOINT, STOREWATCH_S3_BUCKET and AWS_ACCESS_KEY_ID/"
          "AWS_SECRET_ACCESS_KEY for a store of your own");
    }
    const auto read = [&](const char* name) {
      std::ifstream in(state_dir + '/' + name);
      std::string text;
      if (!in || !std::getline(in, text) || text.empty()) {
        throw std::runtime_error(state_dir + '/' + name +
                                 " is missing or empty: is s3rver running (scripts/s3-server.sh start, or the "
                                 "s3rver_start CTest fixture)?");
      }
      return text;
    };
    const auto port = std::stoul(read("s3rver.port"));
    if (port == 0 || port > 65535) throw std::runtime_error("bad port in " + state_dir + "/s3rver.port");
    c.endpoint = s3::endpoint{"http", "127.0.0.1", static_cast<std::uint16_t>(port)};
    c.bucket = read("s3rver.bucket");
    c.credentials = s3::credentials{"S3RVER", "S3RVER", ""};
    c.region = "us-east-1";
  }
  c.prefix = random_prefix();
  s3::validate(c);
  return c;
}

}  // namespace storewatch::test_support
