// The Redis hints through storewatch::redis: a hint URL parsed and a hint
// publisher made (its connection code calls hiredis); nothing is sent.
#include <storewatch/redis/hints.hpp>

#include <cstdio>

int main() {
  asio::io_context io;
  const auto where = storewatch::redis::parse_url("redis://127.0.0.1:6399/1", nullptr);
  {
    storewatch::redis::hint_publisher publisher(io.get_executor(), where);
    publisher.publish("bob123");  // dropped: io.run() is never called, so it never connects
  }
  std::printf("storewatch::redis: hint publisher for %s\n", where.text().c_str());
  return where.port == 6399 && where.db == 1 ? 0 : 1;
}
