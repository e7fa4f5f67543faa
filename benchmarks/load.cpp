// Load: W writer processes publish to one user's journal while L listener
// processes follow it, each with its own event_listener. Reports the
// sustained write rate against a baseline run of the same writers with no
// listener (same command), each listener's delivery lag (from just before
// the publish to the handler; p50 and p99), the listeners' peak RSS, and
// checks that every listener got every event exactly once.
//
// Usage: load [writers (default 8) [listeners (default 4) [events per writer (default 5000)]]]
// (It runs itself as `load write ...` and `load listen ...` for the child
// processes.)
#include "bench_common.hpp"

#include "support/process.hpp"

#include <storewatch/storewatch.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/resource.h>

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
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  std::printf("%zu %zu %.0f %.0f %ld\n", lags.size(), unique.size(), percentile(lags, 0.5), percentile(lags, 0.99),
              usage.ru_maxrss);
  return 0;
}

using storewatch::test_support::child_stream;
using storewatch::test_support::process;

/// This program run again as a child, its stdout read by this one.
std::unique_ptr<process> start_child(std::vector<std::string> argv) {
  storewatch::test_support::spawn_options options;
  options.out = child_stream::piped();
  return std::make_unique<process>(std::move(argv), options);
}

/// Runs `writers` writer processes to completion; returns the seconds it took.
double run_writers(const std::string& self, const fs::path& root, int writers, long per_writer) {
  std::vector<std::unique_ptr<process>> children;
  const auto start = clock_type::now();
  for (int w = 0; w < writers; ++w) {
    children.push_back(
        start_child({self, "write", root.string(), "w" + std::to_string(w), std::to_string(per_writer)}));
  }
  for (auto& c : children) {
    if (!c->wait(bench_limit) || !c->succeeded()) throw std::runtime_error("a writer failed: " + c->status_text());
  }
  return seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writer processes publish to one journal while listener processes follow it."};
  int writers = 8;
  int listeners = 4;
  long per_writer = 5000;
  constexpr int most = std::numeric_limits<int>::max();
  app.add_option("writers", writers, "writer processes")->check(CLI::Range(1, most))->capture_default_str();
  app.add_option("listeners", listeners, "listener processes")->check(CLI::Range(0, most))->capture_default_str();
  app.add_option("events", per_writer, "events per writer")
      ->check(CLI::Range(1L, 1'000'000'000L))
      ->capture_default_str();

  // The child processes: this program again, with a (hidden) subcommand.
  std::string root, name, ready;
  long count = 0;
  auto* as_writer = app.add_subcommand("write", "(a writer process)")->group("");
  as_writer->add_option("root", root)->required();
  as_writer->add_option("name", name)->required();
  as_writer->add_option("count", count)->required();
  auto* as_listener = app.add_subcommand("listen", "(a listener process)")->group("");
  as_listener->add_option("root", root)->required();
  as_listener->add_option("expected", count)->required();
  as_listener->add_option("ready", ready)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);  // prints the help, or the error
    return status == 0 ? 0 : 2;
  }
  if (*as_writer) return write_events(root, name, count);
  if (*as_listener) return listen(root, count, ready);

  const long total = writers * per_writer;
  try {
    double baseline = 0;
    {
      scratch_dir dir;
      baseline = run_writers(argv[0], dir.path, writers, per_writer);
    }
    scratch_dir dir;
    std::vector<std::unique_ptr<process>> followers;
    for (int l = 0; l < listeners; ++l) {
      const auto ready = dir.path / ("ready" + std::to_string(l));
      followers.push_back(start_child({argv[0], "listen", dir.path.string(), std::to_string(total), ready.string()}));
      // Startup handshake (bounded): the listener has polled the journal.
      if (!storewatch::test_support::wait_for([&] { return fs::exists(ready); }, std::chrono::seconds(60))) {
        throw std::runtime_error("a listener did not start");
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
      auto& follower = *followers[static_cast<std::size_t>(l)];
      const bool ok = follower.wait(bench_limit) && follower.succeeded();
      std::istringstream fields(follower.out());
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
