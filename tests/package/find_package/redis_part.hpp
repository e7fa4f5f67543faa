// What a program outside storewatch's tree does with an installed
// storewatch::redis: parses a hint URL and makes a hint publisher and a hint
// subscriber, whose connection code calls hiredis's async API, so a package
// that fails to pass hiredis on fails the link. It connects to nothing: the
// connections would start on io.run(), which is not called. Included by
// redis_consumer.cpp and, when the package has both components, by
// s3_consumer.cpp (one program to compile instead of two).
#pragma once

#include <storewatch/redis/hints.hpp>

#include <asio/io_context.hpp>

#include <iostream>
#include <memory>
#include <stdexcept>

/// True when it all went as expected; prints what it did.
inline bool redis_consumer_check() {
  namespace redis = storewatch::redis;
  asio::io_context io;

  const auto where = redis::parse_url("redis://:consumer-secret@127.0.0.1:6399/2", nullptr);
  bool tls_refused = false;
  try {
    (void)redis::parse_url("rediss://127.0.0.1:6399", nullptr);
  } catch (const std::invalid_argument&) {
    tls_refused = true;  // hiredis 0.14 has no TLS
  }
  {
    const auto publisher = std::make_shared<redis::hint_publisher>(io.get_executor(), where);
    const auto subscriber = std::make_shared<redis::hint_subscriber>(io.get_executor(), where);
    const auto registration = subscriber->listen("bob123", [] {});
    publisher->publish("bob123");  // dropped: never connected
  }
  const bool url_ok = where.host == "127.0.0.1" && where.port == 6399 && where.db == 2 &&
                      where.password == "consumer-secret";
  std::cout << "storewatch::redis: hint publisher and subscriber for " << where.host << ':' << where.port << " db "
            << where.db << "; URL " << (url_ok ? "ok" : "WRONG") << ", rediss:// "
            << (tls_refused ? "refused" : "ACCEPTED") << '\n';
  return url_ok && tls_refused;
}
