// File created -> a watcher says so: storewatch's directory source against
// inotifywait (baseline) and python3-watchdog (peer), the same files in the
// same run. Each watcher watches a folder of its own:
//
//   inotifywait    `inotifywait -m -e create --format %f FOLDER`, a separate
//                  process; stamped when this program reads its line
//   watchdog       benchmarks/watchdog_created.py FOLDER: watchdog's inotify
//                  Observer in a separate python3 process, stamped in its
//                  on_created handler (time.monotonic_ns())
//   storewatch     an event_listener over a directory_source with the
//                  default options (settle 50 ms), in this process, on an
//                  io_context run by a thread of its own; stamped in the
//                  handler
//   settle 0       the same with directory_options::settle = 0
//   settle 0, synced after delivery
//                  the same with also directory_options::sync_before_delivery
//                  = false: the source's journal is fsynced right after the
//                  events are served instead of before
//
// The writer (this program's main thread) creates f0, f1, ... (open with
// O_CREAT, close), each name in every watcher's folder in turn, `gap` apart,
// and notes CLOCK_MONOTONIC (steady_clock here, time.monotonic_ns() in
// python: the same clock) just before each open. So every watcher sees the
// same names created the same way, interleaved, a slow phase of the machine
// hits them all alike, and one create wakes one watcher. Latency = stamp -
// that time. A file's events in one folder are 5 gaps apart: more than the
// 50 ms settle, so each file is its own rescan.
//
// Usage: directory_latency [--csv DIR] [files (default 200) [gap in us (default 20000)]]
//   --csv DIR (or STOREWATCH_BENCH_CSV=DIR): every sample, in file order, to
//   DIR/directory_<watcher>.csv (benchmarks/plot_latency.py draws them).
#include "bench_common.hpp"
#include "support/process.hpp"

#include <storewatch/storewatch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#ifndef STOREWATCH_BENCH_WATCHDOG_SCRIPT
#define STOREWATCH_BENCH_WATCHDOG_SCRIPT "benchmarks/watchdog_created.py"
#endif

namespace {

using namespace storewatch::bench;
using storewatch::test_support::process;
namespace fs = std::filesystem;

/// What every watcher keeps: when it saw each file (-1: not yet), written
/// by its own thread, read by the main thread after that thread ended.
struct watcher {
  std::string csv_name;
  std::string label;
  fs::path folder;
  std::vector<std::int64_t> seen;
  std::atomic<long> count{0};
  std::atomic<bool> done{false};
  std::thread thread;

  watcher(std::string csv, std::string what, fs::path where, long files)
      : csv_name(std::move(csv)), label(std::move(what)), folder(std::move(where)), seen(static_cast<std::size_t>(files), -1) {
    fs::create_directories(folder);
  }
  virtual ~watcher() = default;
  /// Ends the watcher and its thread (again: nothing); the derived class's
  /// destructor does, so that an exception leaves no thread running.
  virtual void stop() = 0;

  /// Notes file `name` ("f<k>") seen at `at`; other names are ignored.
  void note(std::string_view name, std::int64_t at) {
    if (name.size() < 2 || name[0] != 'f') return;
    const long k = std::atol(std::string(name.substr(1)).c_str());
    if (k < 0 || k >= static_cast<long>(seen.size()) || seen[static_cast<std::size_t>(k)] >= 0) return;
    seen[static_cast<std::size_t>(k)] = at;
    ++count;
  }
};

/// A separate process printing a line per created file: "<name>", stamped
/// when read here, or "<name> <ns>", stamped by the process.
struct process_watcher : watcher {
  std::unique_ptr<process> child;

  process_watcher(std::string csv, std::string what, fs::path where, long files, std::vector<std::string> argv,
                  const std::string& ready)
      : watcher(std::move(csv), std::move(what), std::move(where), files) {
    storewatch::test_support::spawn_options options;
    options.search_path = true;
    options.out = storewatch::test_support::child_stream::piped();
    options.err = storewatch::test_support::child_stream::piped();
    argv.push_back(folder.string());
    child = std::make_unique<process>(std::move(argv), options);
    const auto said_ready = [&] { return child->err().find(ready) != std::string::npos; };
    storewatch::test_support::wait_for([&] { return said_ready() || child->exited(); }, std::chrono::seconds(60),
                                       [&] { child->pump(); });
    child->pump(std::chrono::milliseconds(0));
    if (!said_ready()) throw std::runtime_error(label + " did not start watching: " + child->err());
    thread = std::thread([this] { read_lines(); });
  }

  void read_lines() {
    std::size_t scanned = 0;
    while (!done) {
      child->pump(std::chrono::milliseconds(100));
      const auto at = now_ns();
      const auto& said = child->out();
      for (std::size_t newline; (newline = said.find('\n', scanned)) != std::string::npos;) {
        std::istringstream line(said.substr(scanned, newline - scanned));
        std::string name;
        long long stamped = -1;
        line >> name >> stamped;
        note(name, stamped >= 0 ? stamped : at);
        scanned = newline + 1;
      }
    }
  }

  ~process_watcher() override { stop(); }

  void stop() override {
    if (!thread.joinable()) return;
    done = true;
    thread.join();
    child->signal(SIGTERM);
    child->wait(std::chrono::seconds(30));
  }
};

/// storewatch in this process: an event_listener over a directory_source.
struct storewatch_watcher : watcher {
  asio::io_context io;
  std::unique_ptr<storewatch::directory_source> source;
  std::unique_ptr<storewatch::event_listener> listener;

  storewatch_watcher(std::string csv, std::string what, fs::path where, long files,
                     const storewatch::directory_options& options)
      : watcher(std::move(csv), std::move(what), std::move(where), files) {
    source = std::make_unique<storewatch::directory_source>(io.get_executor(), folder, options);
    listener = std::make_unique<storewatch::event_listener>(io.get_executor(), *source);
    listener->add_event_listener([this](const storewatch::event& e) {
      if (e.name == "CREATE") note(e.data, now_ns());
    });
    listener->start();
    // Listening (the first scan done, the watches set) before any create.
    while (listener->stats().polls < 1) io.run_one();
    thread = std::thread([this] {
      while (listener->running()) io.run_one();
    });
  }

  ~storewatch_watcher() override { stop(); }

  void stop() override {
    if (!thread.joinable()) return;
    asio::post(io, [this] { listener->stop(); });
    thread.join();
  }
};

void create_file(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  ::close(fd);
}

bool have(const std::string& probe) { return std::system((probe + " >/dev/null 2>&1").c_str()) == 0; }

}  // namespace

int main(int argc, char** argv) {
  const auto csv = take_csv_option(argc, argv);
  const long files = argc > 1 ? std::atol(argv[1]) : 200;
  const long gap_us = argc > 2 ? std::atol(argv[2]) : 20000;
  if (files <= 0 || gap_us < 0) {
    std::fprintf(stderr, "usage: directory_latency [--csv DIR] [files [gap in us]]\n");
    return 2;
  }
  try {
    scratch_dir dir;
    std::vector<std::unique_ptr<watcher>> watchers;
    if (have("command -v inotifywait")) {
      watchers.push_back(std::make_unique<process_watcher>(
          "directory_inotifywait", "inotifywait -m -e create (baseline; process)", dir.path / "inotifywait", files,
          std::vector<std::string>{"inotifywait", "-m", "-e", "create", "--format", "%f"}, "Watches established"));
    } else {
      std::printf("(no baseline: inotifywait is not installed; Debian: inotify-tools)\n");
    }
    if (have("/usr/bin/python3 -c 'import watchdog'")) {
      watchers.push_back(std::make_unique<process_watcher>(
          "directory_watchdog", "python3-watchdog InotifyObserver (peer; process)", dir.path / "watchdog", files,
          std::vector<std::string>{"/usr/bin/python3", STOREWATCH_BENCH_WATCHDOG_SCRIPT}, "ready"));
    } else {
      std::printf("(no peer: python3-watchdog is not installed)\n");
    }
    watchers.push_back(std::make_unique<storewatch_watcher>("directory_storewatch",
                                                            "storewatch listener, defaults (settle 50 ms; in-process)",
                                                            dir.path / "storewatch", files,
                                                            storewatch::directory_options{}));
    storewatch::directory_options settle0;
    settle0.settle = std::chrono::milliseconds(0);
    watchers.push_back(std::make_unique<storewatch_watcher>("directory_storewatch_settle0",
                                                            "storewatch listener, settle 0 (in-process)",
                                                            dir.path / "storewatch-settle0", files, settle0));
    storewatch::directory_options settle0_unsynced = settle0;
    settle0_unsynced.sync_before_delivery = false;
    watchers.push_back(std::make_unique<storewatch_watcher>(
        "directory_storewatch_settle0_sync_after", "storewatch listener, settle 0, synced after delivery",
        dir.path / "storewatch-settle0-sync-after", files, settle0_unsynced));

    std::vector<std::vector<std::int64_t>> started(watchers.size(), std::vector<std::int64_t>(files, -1));
    for (long k = 0; k < files; ++k) {
      const auto name = "f" + std::to_string(k);
      for (std::size_t w = 0; w < watchers.size(); ++w) {
        std::this_thread::sleep_for(std::chrono::microseconds(gap_us));  // pacing, not a wait for a result
        started[w][static_cast<std::size_t>(k)] = now_ns();
        create_file(watchers[w]->folder / name);
      }
    }
    // Everyone should have seen every file well within a second of the last;
    // the bound is generous for a loaded machine or a sanitizer build (the
    // smoke test under ASan): the wait ends as soon as all are seen.
    const auto all_seen = [&] {
      for (const auto& w : watchers) {
        if (w->count < files) return false;
      }
      return true;
    };
    storewatch::test_support::wait_for(all_seen, std::chrono::seconds(60), [] {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the watchers' threads note what they see
    });
    for (auto& w : watchers) w->stop();

    std::printf("%ld files, each created in the %zu watchers' folders in turn, %ld us apart\n", files,
                watchers.size(), gap_us);
    std::printf("%-58s %8s %10s %10s %10s %8s %8s %8s\n", "file created -> seen", "samples", "median us", "p99 us",
                "max us", "ratio", "p99 rt", "/wdog");
    std::vector<latency_summary> summaries;
    for (std::size_t w = 0; w < watchers.size(); ++w) {
      std::vector<double> latencies(static_cast<std::size_t>(files), -1);
      for (std::size_t k = 0; k < latencies.size(); ++k) {
        const auto seen = watchers[w]->seen[k];
        if (seen >= 0) latencies[k] = static_cast<double>(seen - started[w][k]) / 1000.0;
      }
      write_latency_csv(csv, watchers[w]->csv_name, latencies);
      summaries.push_back(summarize(latencies));
    }
    // The baseline and the peer, where they ran.
    const auto find = [&](const char* csv_name) -> const latency_summary* {
      for (std::size_t w = 0; w < watchers.size(); ++w) {
        if (watchers[w]->csv_name == csv_name) return &summaries[w];
      }
      return nullptr;
    };
    const auto* baseline = find("directory_inotifywait");
    const auto* peer = find("directory_watchdog");
    const auto ratio_text = [](double value, double over, bool shown) {
      char text[32] = "-";
      if (shown && over > 0) std::snprintf(text, sizeof text, "%.2f", value / over);
      return std::string(text);
    };
    bool complete = true;
    for (std::size_t w = 0; w < watchers.size(); ++w) {
      const auto& s = summaries[w];
      std::printf("%-58s %8zu %10.0f %10s %10.0f %8s %8s %8s\n", watchers[w]->label.c_str(), s.samples, s.median,
                  p99_text(s).c_str(), s.max, ratio_text(s.median, baseline ? baseline->median : 0, baseline).c_str(),
                  ratio_text(s.p99, baseline ? baseline->p99 : 0,
                             baseline && s.samples >= 100 && baseline->samples >= 100)
                      .c_str(),
                  ratio_text(s.median, peer ? peer->median : 0, peer).c_str());
      complete = complete && s.samples == static_cast<std::size_t>(files);
    }
    std::printf(
        "(ratio: median latency over inotifywait's; p99 rt: p99 over inotifywait's (at 100 samples or more); "
        "/wdog: median over watchdog's; lower is faster)\n");
    if (!complete) {
      std::fprintf(stderr, "directory_latency: a watcher missed files\n");
      return 1;
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "directory_latency: %s\n", error.what());
    return 1;
  }
  return 0;
}
