// End-to-end latency of the local store's wake-ups: an event appended by one
// process, delivered to an event_listener's handler in another. Baseline, in
// the same run: `inotifywait -m` on the same journal folder, fed by the same
// writer, i.e. how soon the kernel alone tells another process that the
// journal changed (no reading, no decoding, no delivery).
//
// The writer (this program, re-run with --write) publishes events to bob123
// one by one, a few milliseconds apart so each is its own wake-up, and
// records CLOCK_MONOTONIC (system-wide on Linux) just before each
// publish_event. Latency = when the handler (or inotifywait's line) saw it
// minus that time, so both include the writer's append and fsync.
//
// Usage: wakeup_latency [events (default 1000) [gap between events in us (default 3000)]]
#include "bench_common.hpp"
#include "support/process.hpp"

#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace storewatch::bench;
using storewatch::test_support::process;
namespace fs = std::filesystem;

/// The writer: `count` events to bob123, `gap_us` apart; prints
/// "<sequence> <ns before the publish>" per event to stdout.
int write_events(const fs::path& root, long count, long gap_us) {
  asio::io_context io;
  storewatch::local_store alice(io.get_executor(), root, "alice222");
  const std::vector<std::string> bob{"bob123"};
  std::vector<std::int64_t> started(static_cast<std::size_t>(count));
  for (long i = 0; i < count; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us));  // pacing, not a wait for a result
    started[static_cast<std::size_t>(i)] = now_ns();
    alice.publish_event("PING", std::to_string(i), bob);
  }
  for (long i = 0; i < count; ++i) std::printf("%ld %lld\n", i, static_cast<long long>(started[static_cast<std::size_t>(i)]));
  return 0;
}

/// Starts `argv` (argv[0] looked up on PATH when it has no '/') with its
/// stdout, and if `pipe_stderr` its stderr, piped to this process.
process start_child(std::vector<std::string> argv, bool pipe_stderr) {
  storewatch::test_support::spawn_options options;
  options.search_path = true;
  options.out = storewatch::test_support::child_stream::piped();
  if (pipe_stderr) options.err = storewatch::test_support::child_stream::piped();
  return process(std::move(argv), options);
}

/// Waits for `child` to exit, reading its output; throws unless it exited
/// with status 0.
void wait_ok(process& child, const char* what) {
  if (!child.wait(bench_limit) || !child.succeeded()) {
    throw std::runtime_error(std::string(what) + " failed: " + child.status_text());
  }
}

/// The writer's "<sequence> <ns>" lines, as start times by sequence.
std::vector<std::int64_t> parse_starts(const std::string& text, long count) {
  std::vector<std::int64_t> starts(static_cast<std::size_t>(count), -1);
  std::istringstream lines(text);
  long sequence = 0;
  long long ns = 0;
  while (lines >> sequence >> ns) {
    if (sequence >= 0 && sequence < count) starts[static_cast<std::size_t>(sequence)] = ns;
  }
  return starts;
}

struct summary {
  double median_us = 0;
  double p99_us = 0;
  std::size_t samples = 0;
};

summary summarize(std::vector<double> latencies_us) {
  summary s;
  s.samples = latencies_us.size();
  if (latencies_us.empty()) return s;
  std::sort(latencies_us.begin(), latencies_us.end());
  s.median_us = latencies_us[latencies_us.size() / 2];
  s.p99_us = latencies_us[std::min(latencies_us.size() - 1, latencies_us.size() * 99 / 100)];
  return s;
}

std::vector<std::string> writer_args(const char* self, const fs::path& root, long count, long gap_us) {
  return {self, "--write", root.string(), std::to_string(count), std::to_string(gap_us)};
}

/// storewatch: an event_listener with a 60 s poll interval on bob123's
/// journal, woken by inotify; the handler notes when each event arrived.
summary measure_storewatch(const char* self, long count, long gap_us) {
  scratch_dir dir;
  asio::io_context io;
  storewatch::local_store bob(io.get_executor(), dir.path, "bob123");
  auto source = bob.events();
  storewatch::listener_options options;
  options.poller.poll_interval = std::chrono::seconds(60);
  storewatch::event_listener listener(io.get_executor(), source, options);
  std::vector<std::int64_t> arrived(static_cast<std::size_t>(count), -1);
  long received = 0;
  listener.add_event_listener([&](const storewatch::event& e) {
    const long sequence = std::stol(e.data);
    if (sequence >= 0 && sequence < count && arrived[static_cast<std::size_t>(sequence)] < 0) {
      arrived[static_cast<std::size_t>(sequence)] = now_ns();
      ++received;
    }
    if (received == count) listener.stop();
  });
  listener.start();
  // Listening (the first polls done, the watches set) before the writer starts.
  while (listener.stats().polls < 2) io.run_one();

  auto writer = start_child(writer_args(self, dir.path, count, gap_us), false);
  // The writer's stdout is read after it exits; it prints only then.
  while (listener.running()) io.run_one();
  wait_ok(writer, "the writer");
  const auto starts = parse_starts(writer.out(), count);

  std::vector<double> latencies;
  for (long i = 0; i < count; ++i) {
    const auto start = starts[static_cast<std::size_t>(i)];
    const auto end = arrived[static_cast<std::size_t>(i)];
    if (start >= 0 && end >= 0) latencies.push_back(static_cast<double>(end - start) / 1000.0);
  }
  return summarize(std::move(latencies));
}

/// Baseline: `inotifywait -m` on the same journal folder (made by one
/// publish first), the same writer; this process notes when each line of
/// inotifywait's output arrives and matches it to the first event started
/// before it and not yet matched.
summary measure_inotifywait(const char* self, long count, long gap_us) {
  scratch_dir dir;
  {
    asio::io_context io;
    storewatch::local_store alice(io.get_executor(), dir.path, "alice222");
    alice.publish_event("WARMUP", "", {"bob123"});
  }
  const auto journal = dir.path / "journals" / "bob123";
  auto watcher = start_child({"inotifywait", "-m", "-r", "-e", "modify", "--format", "%w%f", journal.string()}, true);
  // It says on stderr when its watches are in place.
  const auto watching = [&] { return watcher.err().find("Watches established") != std::string::npos; };
  storewatch::test_support::wait_for([&] { return watching() || watcher.exited(); }, bench_limit,
                                     [&] { watcher.pump(); });
  watcher.pump(std::chrono::milliseconds(0));  // what it said before it exited
  if (!watching()) throw std::runtime_error("inotifywait ended before it watched: " + watcher.err());

  auto writer = start_child(writer_args(self, dir.path, count, gap_us), false);
  std::vector<std::int64_t> seen;
  std::size_t scanned = 0;  // of watcher.out(), for newlines
  const auto deadline = clock_type::now() + std::chrono::seconds(60) +
                        std::chrono::microseconds(gap_us) * count * 4;
  while (static_cast<long>(seen.size()) < count && clock_type::now() < deadline) {
    const bool ended = watcher.exited();  // before the read, which then gets all it wrote
    watcher.pump(std::chrono::milliseconds(100));
    const auto at = now_ns();
    const auto& said = watcher.out();
    for (std::size_t newline; (newline = said.find('\n', scanned)) != std::string::npos;) {
      seen.push_back(at);
      scanned = newline + 1;
    }
    if (ended) break;
  }
  wait_ok(writer, "the writer");
  const auto starts = parse_starts(writer.out(), count);

  std::vector<double> latencies;
  std::size_t next = 0;  // next notification to match
  for (long i = 0; i < count; ++i) {
    const auto start = starts[static_cast<std::size_t>(i)];
    while (next < seen.size() && seen[next] < start) ++next;  // belonged to earlier events
    if (next == seen.size()) break;
    const auto limit = i + 1 < count ? starts[static_cast<std::size_t>(i + 1)] : INT64_MAX;
    if (seen[next] < limit) latencies.push_back(static_cast<double>(seen[next] - start) / 1000.0);
  }
  return summarize(std::move(latencies));
}

bool have_inotifywait() {
  try {
    auto probe = start_child({"inotifywait", "--help"}, true);
    probe.wait(bench_limit);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--write") {
    return write_events(argv[2], std::atol(argv[3]), std::atol(argv[4]));
  }
  const long count = argc > 1 ? std::atol(argv[1]) : 1000;
  const long gap_us = argc > 2 ? std::atol(argv[2]) : 3000;
  if (count <= 0 || gap_us < 0) {
    std::fprintf(stderr, "usage: wakeup_latency [events [gap between events in us]]\n");
    return 2;
  }
  try {
    const auto ours = measure_storewatch(argv[0], count, gap_us);
    std::printf("%-44s %8s %10s %10s\n", "append in one process -> seen in another", "samples", "median us",
                "p99 us");
    if (have_inotifywait()) {
      const auto base = measure_inotifywait(argv[0], count, gap_us);
      std::printf("%-44s %8zu %10.0f %10.0f\n", "inotifywait -m on the journal (baseline)", base.samples,
                  base.median_us, base.p99_us);
      std::printf("%-44s %8zu %10.0f %10.0f\n", "event_listener handler, 60 s poll interval", ours.samples,
                  ours.median_us, ours.p99_us);
      if (base.median_us > 0 && base.p99_us > 0) {
        std::printf("ratio to baseline: median %.2f, p99 %.2f\n", ours.median_us / base.median_us,
                    ours.p99_us / base.p99_us);
      }
    } else {
      std::printf("%-44s %8zu %10.0f %10.0f\n", "event_listener handler, 60 s poll interval", ours.samples,
                  ours.median_us, ours.p99_us);
      std::printf("(no baseline: inotifywait is not installed; Debian: inotify-tools)\n");
    }
    if (ours.samples != static_cast<std::size_t>(count)) {
      std::fprintf(stderr, "wakeup_latency: %zu of %ld events arrived\n", ours.samples, count);
      return 1;
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "wakeup_latency: %s\n", error.what());
    return 1;
  }
  return 0;
}
