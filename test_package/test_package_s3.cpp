// The S3 store through storewatch::s3: a store object (libcurl) and a
// request signature's hash (libcrypto); nothing is sent. With
// STOREWATCH_TEST_PACKAGE_REDIS (both options), also test_package_redis.hpp.
#include <storewatch/s3/sigv4.hpp>
#include <storewatch/store/s3_store.hpp>

#ifdef STOREWATCH_TEST_PACKAGE_REDIS
#include "test_package_redis.hpp"
#endif

#ifndef STOREWATCH_WITH_S3
#error "storewatch::s3 defines STOREWATCH_WITH_S3"
#endif

#include <cstdio>

int main() {
  asio::io_context io;
  storewatch::s3::config where;
  where.endpoint = storewatch::s3::parse_endpoint("http://127.0.0.1:9000");
  where.bucket = "test-package";
  where.credentials = {"AKIDTESTPACKAGE", "test-package-secret", ""};
  storewatch::s3::s3_store store(io.get_executor(), where, "alice123");
  const auto empty_hash = storewatch::s3::sha256_hex("");
  std::printf("storewatch::s3: store for %s, SHA-256 of nothing %s\n", store.user().c_str(), empty_hash.c_str());
  bool redis_ok = true;
#ifdef STOREWATCH_TEST_PACKAGE_REDIS
  redis_ok = check_redis();
#endif
  return redis_ok && empty_hash == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" ? 0 : 1;
}
