// Does storewatch stall its user's event loop? An io_context runs a 1 ms
// periodic timer while store work runs on the same io_context: N durable
// creates one after another, and (separately) one poll that catches up on a
// journal of M events. Each is run with the blocking work on the io_context
// (the default) and on a 2-thread pool (`blocking_executor`). Reported: the
// timer's p99 and worst lateness, against the same timer alone (the
// baseline, same run).
//
// Usage: loop_stall [creates (default 1000) [catch-up events (default 100000)]]
#include "bench_common.hpp"

#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace storewatch::bench;
using namespace std::chrono_literals;

/// A 1 ms periodic timer on `io` that notes how late each tick fires.
class ticker {
 public:
  explicit ticker(asio::io_context& io) : timer_(io) {}

  void start() {
    next_ = clock_type::now() + 1ms;
    arm();
  }
  void stop() {
    // A tick that is due but has not run yet was held up by the work: it
    // counts with the lateness it has now.
    if (const auto now = clock_type::now(); now > next_) {
      lateness_.push_back(std::chrono::duration<double, std::milli>(now - next_).count());
    }
    stopped_ = true;
    timer_.cancel();
  }
  const std::vector<double>& lateness_ms() const { return lateness_; }

 private:
  void arm() {
    timer_.expires_at(next_);
    timer_.async_wait([this](std::error_code ec) {
      if (ec || stopped_) return;
      const auto now = clock_type::now();
      lateness_.push_back(std::chrono::duration<double, std::milli>(now - next_).count());
      next_ += 1ms;
      if (next_ < now) next_ = now + 1ms;  // a missed tick is counted once, as the lateness above
      arm();
    });
  }

  asio::steady_timer timer_;
  clock_type::time_point next_;
  std::vector<double> lateness_;
  bool stopped_ = false;
};

struct result {
  double p99 = 0;
  double worst = 0;
  double seconds = 0;
};

/// Runs `work(done)` on `io` beside a ticker until `done` is called.
result measure(asio::io_context& io, const std::function<void(std::function<void()>)>& work) {
  ticker tick(io);
  tick.start();
  const auto started = clock_type::now();
  double seconds = 0;
  work([&] {
    seconds = seconds_since(started);
    tick.stop();
  });
  io.restart();
  io.run();
  const auto& late = tick.lateness_ms();
  return {percentile(late, 0.99), late.empty() ? 0 : *std::max_element(late.begin(), late.end()), seconds};
}

/// The ticker alone for `seconds`.
result alone(double seconds) {
  asio::io_context io;
  asio::steady_timer end(io);
  return measure(io, [&](std::function<void()> done) {
    end.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds)));
    end.async_wait([done](std::error_code) { done(); });
  });
}

/// `count` creates, each started when the previous completed.
result creates(std::size_t count, std::optional<asio::thread_pool::executor_type> pool) {
  scratch_dir dir;
  asio::io_context io;
  storewatch::local_store_options options;
  if (pool) options.blocking_executor = *pool;
  storewatch::local_store store(io.get_executor(), dir.path, "alice222", options);
  std::size_t made = 0;
  std::function<void()> finish;
  std::function<void()> next = [&] {
    store.async_create_file("docs/f" + std::to_string(made) + ".txt", "payload",
                            [&](std::error_code ec, storewatch::versioned_path) {
                              if (ec) std::fprintf(stderr, "loop_stall: create failed: %s\n", ec.message().c_str());
                              if (++made == count) {
                                finish();
                              } else {
                                next();
                              }
                            });
  };
  return measure(io, [&](std::function<void()> done) {
    finish = std::move(done);
    next();
  });
}

/// One poll of a journal of `events` events, all in one batch.
result catch_up(std::size_t events, std::optional<asio::thread_pool::executor_type> pool, bool& complete) {
  scratch_dir dir;
  {
    storewatch::journal_appender writer(dir.path);
    for (std::size_t i = 0; i < events; ++i) {
      storewatch::event e;
      e.name = "NOTE";
      e.data = "event " + std::to_string(i);
      e.id = "bench-writer-" + std::to_string(i);
      e.actor = "alice222";
      e.occurred_at = storewatch::timestamp{std::chrono::milliseconds{1761135341619}};
      writer.add("bob123", e);
    }
    writer.flush();
  }
  asio::io_context io;
  storewatch::journal_source_options options;
  if (pool) options.blocking_executor = *pool;
  storewatch::journal_source source(io.get_executor(), dir.path / "journals" / "bob123", options);
  return measure(io, [&](std::function<void()> done) {
    source.async_poll("", events, [&complete, events, done](std::error_code ec, storewatch::poll_result r) {
      complete = !ec && r.events.size() == events;
      done();
    });
  });
}

void row(const char* what, const result& r, const result& base) {
  std::printf("%-34s %8.2f %8.2f %8.1f %8.1f %8.2f\n", what, r.p99, r.worst, base.p99 > 0 ? r.p99 / base.p99 : 0.0,
              base.worst > 0 ? r.worst / base.worst : 0.0, r.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000;
  const std::size_t events = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100000;
  asio::thread_pool pool(2);

  const auto on_loop = creates(count, std::nullopt);
  const auto on_pool = creates(count, pool.get_executor());
  bool loop_complete = false, pool_complete = false;
  const auto poll_loop = catch_up(events, std::nullopt, loop_complete);
  const auto poll_pool = catch_up(events, pool.get_executor(), pool_complete);
  const auto base = alone(std::max({on_loop.seconds, on_pool.seconds, 1.0}));
  pool.join();

  std::printf("1 ms timer lateness (ms); ratio to the timer alone\n");
  std::printf("%-34s %8s %8s %8s %8s %8s\n", "", "p99", "worst", "p99 x", "worst x", "seconds");
  row("timer alone (baseline)", base, base);
  row((std::to_string(count) + " creates, on the io_context").c_str(), on_loop, base);
  row((std::to_string(count) + " creates, on a 2-thread pool").c_str(), on_pool, base);
  row((std::to_string(events) + "-event poll, on the io_context").c_str(), poll_loop, base);
  row((std::to_string(events) + "-event poll, on a 2-thread pool").c_str(), poll_pool, base);
  if (!loop_complete || !pool_complete) {
    std::fprintf(stderr, "loop_stall: a catch-up poll did not return every event\n");
    return 1;
  }
  return 0;
}
