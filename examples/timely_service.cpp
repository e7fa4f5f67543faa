// A service whose event loop keeps a 1 ms timer on time while it writes to
// the store: the store's blocking file work (writes, fsyncs) runs on a
// thread pool the service owns, and every completion comes back to the loop.
//
// Usage: timely_service [STORE_DIR (default ./storewatch-demo)]
#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

namespace sw = storewatch;
using namespace std::chrono_literals;

// Ticks every millisecond and remembers the latest tick, until `running` is false.
asio::awaitable<void> tick(const bool& running, std::chrono::steady_clock::duration& worst) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto next = std::chrono::steady_clock::now();
  while (running) {
    next += 1ms;
    timer.expires_at(next);
    co_await timer.async_wait(asio::use_awaitable);
    worst = std::max(worst, std::chrono::steady_clock::now() - next);
  }
}

asio::awaitable<void> write(sw::local_store& store, bool& running) {
  for (int i = 0; i < 200; ++i) {
    std::string path = "timely/note-" + std::to_string(i) + ".txt";
    // Written and fsynced on the pool; this coroutine resumes on the loop.
    co_await store.async_create_file(std::move(path), std::string("text"), asio::use_awaitable);
  }
  running = false;
}

int main(int argc, char** argv) {
  asio::io_context loop;     // the service's event loop: timers, sockets, handlers
  asio::thread_pool pool(2);  // the store's blocking work

  sw::local_store store(loop.get_executor(), argc > 1 ? argv[1] : "storewatch-demo", "alice222",
                        {.blocking_executor = pool.get_executor()});
  bool running = true;
  std::chrono::steady_clock::duration worst{};
  const auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(loop, tick(running, worst), rethrow);
  asio::co_spawn(loop, write(store, running), rethrow);
  loop.run();
  pool.join();
  std::printf("200 durable creates done; the 1 ms timer was at most %.2f ms late\n",
              std::chrono::duration<double, std::milli>(worst).count());
}
