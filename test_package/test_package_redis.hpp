// The Redis hints through storewatch::redis: a hint URL parsed and a hint
// publisher made (its connection code calls hiredis); nothing is sent.
// Included by test_package_redis.cpp and, when the package has both options,
// by test_package_s3.cpp (one program to compile instead of two).
#pragma once

#include <storewatch/redis/hints.hpp>

#include <cstdio>

inline bool check_redis() {
  asio::io_context io;
  const auto where = storewatch::redis::parse_url("redis://127.0.0.1:6399/1", nullptr);
  {
    storewatch::redis::hint_publisher publisher(io.get_executor(), where);
    publisher.publish("bob123");  // dropped: io.run() is never called, so it never connects
  }
  std::printf("storewatch::redis: hint publisher for %s\n", where.text().c_str());
  return where.port == 6399 && where.db == 1;
}
