// Load: W writer processes publish to one user's journal while L listener
// processes follow it, each with its own event_listener. Reports the
// sustained write rate against a baseline run of the same writers with no
// listener (same command), each listener's delivery lag (from just before
// the publish to the handler; p50 and p99), the listeners' peak RSS, and
// checks that every listener got every event exactly once.
//
// Usage: load [writers (default 8) [listeners (default 4) [events per writer (default 5000)]]]
// (It runs itself as --write and --listen for the child processes.)
#include "bench_common.hpp"

#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

using namespace storewatch::bench;
namespace fs = std::filesystem;

/// A writer: `count` events "<name>:<sequence>:<ns before the publish>" to bob123.
int write_events(const fs::path& root, const std::string& name, long count) {
  asio::io_context io;
  storewatch::local_store alice(io.get_executor(), root, "alice222");
  const std::vector<std::string> bob{"bob123"};
  for (long i = 0; i < count; ++i) {
    alice.publish_event("LOAD", name + ":" + std::to_string(i) + ":" + std::to_string(now_ns()), bob);
  }
  return 0;
}

/// A listener: takes `expected` events, then prints "<received> <unique>
/// <p50 lag us> <p99 lag us> <peak RSS KiB>" and exits. Creates `ready`
/// once it has polled, so the parent starts the writers after that.
int listen(const fs::path& root, long expected, const fs::path& ready) {
  asio::io_context io;
  storewatch::local_store bob(io.get_executor(), root, "bob123");
  auto source = bob.events();
  storewatch::listener_options options;
  options.poller.poll_interval = std::chrono::seconds(1);
  storewatch::event_listener listener(io.get_executor(), source, options);
  std::vector<double> lags;
  std::set<std::string> unique;
  lags.reserve(static_cast<std::size_t>(expected));
  listener.add_event_listener([&](const storewatch::event& e) {
    const auto at = now_ns();
    const auto colon = e.data.rfind(':');
    if (colon == std::string::npos) return;
    lags.push_back(static_cast<double>(at - std::stoll(e.data.substr(colon + 1))) / 1000.0);
    unique.insert(e.data);
    if (static_cast<long>(lags.size()) >= expected) listener.stop();
  });
  listener.start();
  while (listener.stats().polls < 1) io.run_one();
  std::FILE* marker = std::fopen(ready.c_str(), "w");
  if (marker) std::fclose(marker);
  while (listener.running()) io.run_one();
  io.run();
  std::sort(lags.begin(), lags.end());
  const auto at = [&](double q) { return lags.empty() ? 0.0 : lags[std::min(lags.size() - 1, static_cast<std::size_t>(q * lags.size()))]; };
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  std::printf("%zu %zu %.0f %.0f %ld\n", lags.size(), unique.size(), at(0.5), at(0.99), usage.ru_maxrss);
  return 0;
}

struct child {
  pid_t pid = -1;
  int out = -1;
  explicit child(std::vector<std::string> argv) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int spawned = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    out = pipe_fds[0];
    if (spawned != 0) throw std::runtime_error("cannot run " + argv[0]);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    ::close(out);
  }
  /// Its whole output, then its exit status (0 = fine).
  std::pair<std::string, bool> finish() {
    std::string text;
    char buffer[4096];
    for (ssize_t got; (got = ::read(out, buffer, sizeof buffer)) != 0;) {
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) break;
      text.append(buffer, static_cast<std::size_t>(got));
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return {text, WIFEXITED(status) && WEXITSTATUS(status) == 0};
  }
};

/// Runs `writers` writer processes to completion; returns the seconds it took.
double run_writers(const char* self, const fs::path& root, int writers, long per_writer) {
  std::vector<std::unique_ptr<child>> children;
  const auto start = clock_type::now();
  for (int w = 0; w < writers; ++w) {
    children.push_back(std::make_unique<child>(std::vector<std::string>{
        self, "--write", root.string(), "w" + std::to_string(w), std::to_string(per_writer)}));
  }
  for (auto& c : children) {
    if (!c->finish().second) throw std::runtime_error("a writer failed");
  }
  return seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--write") return write_events(argv[2], argv[3], std::atol(argv[4]));
  if (argc == 5 && std::string(argv[1]) == "--listen") return listen(argv[2], std::atol(argv[3]), argv[4]);
  const int writers = argc > 1 ? std::atoi(argv[1]) : 8;
  const int listeners = argc > 2 ? std::atoi(argv[2]) : 4;
  const long per_writer = argc > 3 ? std::atol(argv[3]) : 5000;
  if (writers <= 0 || listeners < 0 || per_writer <= 0) {
    std::fprintf(stderr, "usage: load [writers [listeners [events per writer]]]\n");
    return 2;
  }
  const long total = writers * per_writer;
  try {
    double baseline = 0;
    {
      scratch_dir dir;
      baseline = run_writers(argv[0], dir.path, writers, per_writer);
    }
    scratch_dir dir;
    std::vector<std::unique_ptr<child>> followers;
    for (int l = 0; l < listeners; ++l) {
      const auto ready = dir.path / ("ready" + std::to_string(l));
      followers.push_back(std::make_unique<child>(
          std::vector<std::string>{argv[0], "--listen", dir.path.string(), std::to_string(total), ready.string()}));
      // Startup handshake (bounded): the listener has polled the journal.
      const auto deadline = clock_type::now() + std::chrono::seconds(60);
      while (!fs::exists(ready)) {
        if (clock_type::now() > deadline) throw std::runtime_error("a listener did not start");
        ::usleep(1000);
      }
    }
    const double loaded = run_writers(argv[0], dir.path, writers, per_writer);
    std::printf("%d writers x %ld events to one journal, %d listeners following it\n", writers, per_writer,
                listeners);
    std::printf("%-44s %12s %8s\n", "", "events/s", "ratio");
    std::printf("%-44s %12.0f %8.2f\n", "writers alone (baseline)", total / baseline, 1.0);
    std::printf("%-44s %12.0f %8.2f\n", "writers while the listeners follow", total / loaded, baseline / loaded);
    bool all_good = true;
    for (int l = 0; l < listeners; ++l) {
      const auto [text, ok] = followers[static_cast<std::size_t>(l)]->finish();
      std::istringstream fields(text);
      long received = 0, unique = 0, rss_kib = 0;
      double p50 = 0, p99 = 0;
      fields >> received >> unique >> p50 >> p99 >> rss_kib;
      const bool exact = ok && received == total && unique == total;
      all_good = all_good && exact;
      std::printf("listener %d: %ld events (%ld unique, %ld lost), lag p50 %.0f us, p99 %.0f us, peak RSS %ld KiB%s\n",
                  l, received, unique, total - unique, p50, p99, rss_kib, exact ? "" : "  <-- NOT EXACT");
    }
    return all_good ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "load: %s\n", error.what());
    return 1;
  }
}
