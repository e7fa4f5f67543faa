// A co_await loop over an event stream fed by a poller from an in-memory source.
//
// An application publishes file events into a memory_source; a poller moves
// them into an event_stream; a coroutine takes them one by one with
// co_await. Everything runs on one io_context, on this thread.
#include <storewatch/storewatch.hpp>

#include <cstdio>

namespace {

asio::awaitable<void> consume(storewatch::event_stream& stream, int expected) {
  for (int seen = 0; seen < expected;) {
    auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
    if (ec == storewatch::errc::end_of_stream) break;
    if (ec) throw std::system_error(ec);
    ++seen;
    if (const auto path = e.path()) {
      std::printf("%-7s %-24s version by %s at %lld\n", e.name.c_str(), path->path.c_str(), path->user.c_str(),
                  static_cast<long long>(path->timestamp_ms));
    } else {
      std::printf("%-7s %s\n", e.name.c_str(), e.data.c_str());
    }
  }
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  asio::io_context io;
  storewatch::memory_source source(io.get_executor());
  storewatch::event_stream stream(io.get_executor(), 64);
  storewatch::poller poller(source, stream, {.poll_interval = 1s});

  const storewatch::versioned_path report{"SharedEvents/report.txt", "alice222", 1761135341619};
  source.publish("CREATE", report.to_string(), "alice222");
  source.publish("SHARE", report.to_string(), "alice222");
  source.publish("BUILD_FINISHED", R"({"job": 42, "ok": true})", "ci");
  source.publish("DELETE", report.to_string(), "alice222");

  poller.start();
  asio::co_spawn(io, consume(stream, 4), [&](std::exception_ptr error) {
    poller.stop();
    if (error) std::rethrow_exception(error);
  });
  io.run();
  std::printf("delivered %llu events; the io_context ran out of work and returned\n",
              static_cast<unsigned long long>(stream.stats().snapshot().delivered));
}
