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
// inotifywait prints one line per write to the journal (one per publish);
// the lines are matched to the events in order, each to the oldest event
// without one that started before the line arrived, so a line that arrives
// after the next publish started still counts for its own event (a late
// sample, not a fast one for the next). The program says how many lines
// came for how many events.
//
// Usage: wakeup_latency [--csv DIR] [events (default 1000) [gap between events in us (default 3000)]]
//   --csv DIR (or STOREWATCH_BENCH_CSV=DIR): every sample, in event order,
//   to DIR/wakeup_storewatch.csv and DIR/wakeup_inotifywait.csv
//   (benchmarks/plot_latency.py draws them).
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

std::vector<std::string> writer_args(const char* self, const fs::path& root, long count, long gap_us) {
  return {self, "--write", root.string(), std::to_string(count), std::to_string(gap_us)};
}

/// Latency in us of each event (by sequence; -1: never seen) from the
/// writer's start times and when each was seen (-1: never).
std::vector<double> latencies_us(const std::vector<std::int64_t>& starts, const std::vector<std::int64_t>& seen) {
  std::vector<double> out(starts.size(), -1);
  for (std::size_t i = 0; i < starts.size() && i < seen.size(); ++i) {
    if (starts[i] >= 0 && seen[i] >= 0) out[i] = static_cast<double>(seen[i] - starts[i]) / 1000.0;
  }
  return out;
}

/// storewatch: an event_listener with a 60 s poll interval on bob123's
/// journal, woken by inotify; the handler notes when each event arrived.
std::vector<double> measure_storewatch(const char* self, long count, long gap_us) {
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
  return latencies_us(parse_starts(writer.out(), count), arrived);
}

/// Baseline: `inotifywait -m` on the same journal folder (made by one
/// publish first), the same writer; this process notes when each line of
/// inotifywait's output arrives and matches it to the oldest event started
/// before it and not yet matched (see the file comment). `lines` is set to
/// the number of lines inotifywait printed.
std::vector<double> measure_inotifywait(const char* self, long count, long gap_us, std::size_t& lines) {
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
  lines = seen.size();

  // Event i takes the first line not yet taken that arrived after it
  // started; a line that arrived before (none should) is passed over. A
  // line is never given to a later event while an earlier one has none.
  std::vector<std::int64_t> matched(static_cast<std::size_t>(count), -1);
  std::size_t next = 0;  // next line to match
  for (std::size_t i = 0; i < matched.size() && next < seen.size(); ++i) {
    if (starts[i] < 0) continue;
    while (next < seen.size() && seen[next] < starts[i]) ++next;
    if (next < seen.size()) matched[i] = seen[next++];
  }
  return latencies_us(starts, matched);
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
  const auto csv = take_csv_option(argc, argv);
  const long count = argc > 1 ? std::atol(argv[1]) : 1000;
  const long gap_us = argc > 2 ? std::atol(argv[2]) : 3000;
  if (count <= 0 || gap_us < 0) {
    std::fprintf(stderr, "usage: wakeup_latency [--csv DIR] [events [gap between events in us]]\n");
    return 2;
  }
  try {
    const auto ours_us = measure_storewatch(argv[0], count, gap_us);
    const auto ours = summarize(ours_us);
    write_latency_csv(csv, "wakeup_storewatch", ours_us);
    std::printf("%ld events, %ld us apart\n", count, gap_us);
    std::printf("%-44s %8s %10s %10s %10s\n", "append in one process -> seen in another", "samples", "median us",
                "p99 us", "max us");
    const auto row = [](const char* what, const latency_summary& s) {
      std::printf("%-44s %8zu %10.0f %10s %10.0f\n", what, s.samples, s.median, p99_text(s).c_str(), s.max);
    };
    if (have_inotifywait()) {
      std::size_t lines = 0;
      const auto base_us = measure_inotifywait(argv[0], count, gap_us, lines);
      const auto base = summarize(base_us);
      write_latency_csv(csv, "wakeup_inotifywait", base_us);
      row("inotifywait -m on the journal (baseline)", base);
      row("event_listener handler, 60 s poll interval", ours);
      std::printf("(inotifywait printed %zu lines for %ld events)\n", lines, count);
      if (base.median > 0 && base.p99 > 0) {
        std::printf("ratio to baseline: median %.2f, p99 %.2f\n", ours.median / base.median, ours.p99 / base.p99);
      }
    } else {
      row("event_listener handler, 60 s poll interval", ours);
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
