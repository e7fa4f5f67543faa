// End-to-end latency of an event_listener on an S3 journal, and what its
// polls cost in requests. The S3 journal has no change notification: a
// listener finds new events by polling, so its latency is set by the poll
// interval. Baseline: the interval itself. The poller waits the interval
// after each poll that found nothing, so polls start every interval + one
// idle poll's time; an event published at a random moment waits half of
// that on average, then for the poll that reads it (LIST + GET). So median
// latency / interval is about 0.5 when a poll is short next to the
// interval, and (interval + idle poll) / 2 + busy poll when it is not.
//
// One process, one io_context: alice222's s3_store publishes M events to
// bob123 at random gaps (uniform over 0.3-1.7 poll intervals, so that
// publishes do not keep step with the polls), and an event_listener on
// bob123's journal delivers them. Latency = from the publish's completion
// (its PUT acknowledged) to the handler running, both steady_clock. Each
// poll's requests are counted (LIST, GET): idle polls (nothing new), busy
// ones, and all requests of the run per event.
//
// Two runs, each under a fresh key prefix: a 100 ms poll interval, and the
// default (poller_options::poll_interval, 5 s). Few events at 5 s keep the
// run short (10 events take about a minute): the median is then the 5th or
// 6th of 10 values and "p99" is the largest.
//
// Usage: s3_latency [events at 100 ms (default 50) [events at the default interval (default 10; 0: skip)]]
// The store: STOREWATCH_S3_ENDPOINT, STOREWATCH_S3_BUCKET and AWS_* (as
// `scripts/s3-server.sh start` exports them), else the s3rver of the CTest
// fixture (STOREWATCH_S3_STATE_DIR).
#include "bench_common.hpp"

#include "support/s3_server.hpp"

#include <storewatch/s3/store.hpp>
#include <storewatch/storewatch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace storewatch::bench;
namespace s3 = storewatch::s3;

struct run_figures {
  std::chrono::milliseconds interval{};
  std::size_t events = 0;
  std::vector<double> latencies_ms;
  double seconds = 0;  // from the first publish to the last delivery
  std::size_t idle_polls = 0, busy_polls = 0;
  std::uint64_t idle_lists = 0, idle_gets = 0, busy_lists = 0, busy_gets = 0;
  double idle_poll_seconds = 0, busy_poll_seconds = 0;  // summed over the polls
  std::uint64_t retries = 0;
  std::size_t errors = 0;
};

/// Publishes `count` events ("0", "1", ...) to bob123, `gap` apart each,
/// and notes when each publish completed.
asio::awaitable<void> publish_events(s3::s3_store& alice, std::size_t count, std::function<double()> gap,
                                     std::vector<clock_type::time_point>& published, bool& done) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const std::vector<std::string> users{"bob123"};
  for (std::size_t i = 0; i < count; ++i) {
    timer.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(gap())));
    co_await timer.async_wait(asio::use_awaitable);
    co_await alice.async_publish_event("PING", std::to_string(i), users, asio::use_awaitable);
    published[i] = clock_type::now();
  }
  done = true;
}

run_figures measure(std::chrono::milliseconds interval, std::size_t count) {
  const auto where = storewatch::test_support::test_server_config();  // a fresh key prefix
  asio::io_context io;
  s3::s3_store alice(io.get_executor(), where, "alice222");
  s3::s3_store bob(io.get_executor(), where, "bob123");
  auto source = bob.events();
  counting_source counted(source);

  run_figures out;
  out.interval = interval;
  out.events = count;
  storewatch::listener_options options;
  options.poller.poll_interval = interval;
  options.on_error = [&](std::error_code, std::string_view message) {
    std::fprintf(stderr, "s3_latency: listener: %.*s\n", static_cast<int>(message.size()), message.data());
    ++out.errors;
  };
  storewatch::event_listener listener(io.get_executor(), counted, options);
  std::vector<clock_type::time_point> published(count), arrived(count);
  std::vector<bool> seen(count, false);
  std::size_t received = 0;
  clock_type::time_point last_arrival;
  listener.add_event_listener([&](const storewatch::event& e) {
    const auto at = clock_type::now();
    std::size_t i = count;
    try {
      i = std::stoul(e.data);
    } catch (const std::exception&) {
    }
    if (e.name != "PING" || i >= count || seen[i]) {
      std::fprintf(stderr, "s3_latency: unexpected or repeated event %s %s\n", e.name.c_str(), e.data.c_str());
      ++out.errors;
      return;
    }
    seen[i] = true;
    arrived[i] = at;
    last_arrival = at;
    if (++received == count) listener.stop();
  });
  listener.start();
  // Listening (one poll done) before the first publish.
  run_until(io, [&] { return !counted.polls().empty(); });
  const auto polls_before = counted.polls().size();

  std::minstd_rand random{std::random_device{}()};
  std::uniform_real_distribution<double> spread{0.3, 1.7};
  const double interval_s = std::chrono::duration<double>(interval).count();
  bool written = false;
  std::exception_ptr failure;
  const auto start = clock_type::now();
  asio::co_spawn(io, publish_events(alice, count, [&] { return interval_s * spread(random); }, published, written),
                 [&](std::exception_ptr e) {
                   failure = e;
                   if (e) {
                     written = true;
                     listener.stop();
                   }
                 });
  run_until(io, [&] { return written; });
  // Every event should arrive within a few intervals of its publish; if
  // some never do, stop and report them missing.
  const auto deadline = clock_type::now() + 3 * interval + std::chrono::seconds(30);
  const auto finished = [&] { return !listener.running() && counted.in_flight() == 0; };
  while (!finished() && clock_type::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
  listener.stop();
  run_until(io, finished);
  io.restart();
  io.run_for(std::chrono::seconds(30));  // the stopped loop's last steps
  if (failure) std::rethrow_exception(failure);
  out.seconds = std::chrono::duration<double>(last_arrival - start).count();

  for (std::size_t i = 0; i < count; ++i) {
    if (seen[i]) {
      out.latencies_ms.push_back(std::chrono::duration<double, std::milli>(arrived[i] - published[i]).count());
    }
  }
  const auto& polls = counted.polls();
  for (std::size_t p = polls_before; p < polls.size(); ++p) {
    if (polls[p].events == 0) {
      ++out.idle_polls;
      out.idle_lists += polls[p].lists;
      out.idle_gets += polls[p].gets;
      out.idle_poll_seconds += polls[p].seconds;
    } else {
      ++out.busy_polls;
      out.busy_lists += polls[p].lists;
      out.busy_gets += polls[p].gets;
      out.busy_poll_seconds += polls[p].seconds;
    }
  }
  out.retries = source.client().counts().retries;
  return out;
}

void print(const run_figures& r) {
  const double interval_ms = static_cast<double>(r.interval.count());
  const double median = percentile(r.latencies_ms, 0.5);
  const double p99 = percentile(r.latencies_ms, 0.99);
  const auto per = [](std::uint64_t n, std::size_t d) { return d == 0 ? 0.0 : static_cast<double>(n) / d; };
  std::printf("poll interval %.0f ms (baseline), %zu events over %.1f s:\n", interval_ms, r.latencies_ms.size(),
              r.seconds);
  std::printf("  latency median %8.1f ms  p99 %8.1f ms   latency/interval: median %.2f, p99 %.2f\n", median, p99,
              median / interval_ms, p99 / interval_ms);
  const auto mean_ms = [](double seconds, std::size_t n) { return n == 0 ? 0.0 : seconds * 1000 / n; };
  std::printf("  idle polls %4zu: LIST %.2f GET %.2f per poll, %6.1f ms each\n", r.idle_polls,
              per(r.idle_lists, r.idle_polls), per(r.idle_gets, r.idle_polls),
              mean_ms(r.idle_poll_seconds, r.idle_polls));
  std::printf("  busy polls %4zu: LIST %.2f GET %.2f per poll, %6.1f ms each\n", r.busy_polls,
              per(r.busy_lists, r.busy_polls), per(r.busy_gets, r.busy_polls),
              mean_ms(r.busy_poll_seconds, r.busy_polls));
  const auto requests = r.idle_lists + r.idle_gets + r.busy_lists + r.busy_gets;
  std::printf("  requests per event: %.2f (LIST %.2f, GET %.2f)%s\n", per(requests, r.events),
              per(r.idle_lists + r.busy_lists, r.events), per(r.idle_gets + r.busy_gets, r.events),
              r.retries != 0 ? "  (with retries)" : "");
}

}  // namespace

int main(int argc, char** argv) {
  const long fast_events = argc > 1 ? std::atol(argv[1]) : 50;
  const long slow_events = argc > 2 ? std::atol(argv[2]) : 10;
  if (fast_events <= 0 || slow_events < 0) {
    std::fprintf(stderr, "usage: %s [events at 100 ms [events at the default interval (0: skip)]]\n", argv[0]);
    return 2;
  }
  try {
    std::printf("end-to-end latency: s3_store publish completed -> event_listener handler, one process\n");
    std::vector<run_figures> runs;
    runs.push_back(measure(std::chrono::milliseconds(100), static_cast<std::size_t>(fast_events)));
    print(runs.back());
    if (slow_events > 0) {
      runs.push_back(measure(storewatch::poller_options{}.poll_interval, static_cast<std::size_t>(slow_events)));
      print(runs.back());
    }
    for (const auto& r : runs) {
      if (r.latencies_ms.size() != r.events || r.errors != 0) {
        std::fprintf(stderr, "s3_latency: %zu of %zu events arrived, %zu errors\n", r.latencies_ms.size(), r.events,
                     r.errors);
        return 1;
      }
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "s3_latency: %s\n", error.what());
    return 1;
  }
  return 0;
}
