// Helpers the benchmark programs share (with tests/support/, the tests'
// helpers: temp dirs, running an io_context, child processes).
#pragma once

#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <storewatch/source.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace storewatch::bench {

using clock_type = std::chrono::steady_clock;

/// Seconds from `start` until now.
inline double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes on Linux.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

/// A fresh folder under the temp directory, removed with everything in it.
struct scratch_dir {
  test_support::temp_dir dir{test_support::temp_dir::place::temp, "storewatch-bench-"};
  std::filesystem::path path = dir.path();
};

/// The bound on any one wait of a benchmark: a setup of hours against
/// s3rver is not unusual.
inline constexpr std::chrono::hours bench_limit{24};

/// Runs `io` until `done()` holds; throws if it runs out of work first (or
/// after `bench_limit`).
inline void run_until(asio::io_context& io, const std::function<bool()>& done) {
  if (!test_support::run_until(io, done, bench_limit, test_support::when_idle::give_up)) {
    throw std::runtime_error("internal: the io_context ran out of work");
  }
}

/// The smallest value with at least `fraction` (0..1) of `values` at or
/// below it (nearest rank: of 100 values, the p99 is the 99th, not the
/// largest); 0 for none.
inline double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(values.size())));
  return values[std::min(values.size(), std::max<std::size_t>(rank, 1)) - 1];
}

/// A latency distribution: of the samples at or above 0 (below 0: missing).
struct latency_summary {
  std::size_t samples = 0;
  double median = 0;
  double p99 = 0;  ///< nearest rank; printed only from 100 samples on
  double max = 0;
};

inline latency_summary summarize(const std::vector<double>& values) {
  std::vector<double> kept;
  for (const double v : values) {
    if (v >= 0) kept.push_back(v);
  }
  latency_summary s;
  s.samples = kept.size();
  if (kept.empty()) return s;
  s.median = percentile(kept, 0.5);
  s.p99 = percentile(kept, 0.99);
  s.max = *std::max_element(kept.begin(), kept.end());
  return s;
}

/// The p99 for a table, "-" below 100 samples (it would be the maximum).
inline std::string p99_text(const latency_summary& s, const char* format = "%.0f") {
  if (s.samples < 100) return "-";
  char text[32];
  std::snprintf(text, sizeof text, format, s.p99);
  return text;
}

/// Where a benchmark writes its samples as CSV: the folder after `--csv`
/// (both arguments are taken out of argv), else $STOREWATCH_BENCH_CSV,
/// else none (empty).
inline std::filesystem::path take_csv_option(int& argc, char** argv) {
  std::filesystem::path folder;
  if (const char* env = std::getenv("STOREWATCH_BENCH_CSV")) folder = env;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view(argv[i]) != "--csv") continue;
    folder = argv[i + 1];
    std::copy(argv + i + 2, argv + argc + 1, argv + i);  // argv[argc] is the null pointer
    argc -= 2;
    break;
  }
  return folder;
}

/// Writes `folder`/`name`.csv: a header "sample,latency_us", then one line
/// per sample in the order given (a missing one, below 0, left out). Does
/// nothing when `folder` is empty.
inline void write_latency_csv(const std::filesystem::path& folder, const std::string& name,
                              const std::vector<double>& latencies_us) {
  if (folder.empty()) return;
  std::filesystem::create_directories(folder);
  const auto file = folder / (name + ".csv");
  std::ofstream out(file);
  out << "sample,latency_us\n";
  for (std::size_t i = 0; i < latencies_us.size(); ++i) {
    if (latencies_us[i] >= 0) out << i << ',' << latencies_us[i] << '\n';
  }
  if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
}

/// What one poll cost: the requests the source's client sent for it.
struct poll_cost {
  std::uint64_t lists = 0;   ///< LIST requests (retries included)
  std::uint64_t gets = 0;    ///< GET requests (retries included)
  std::size_t events = 0;    ///< events it returned
  double seconds = 0;        ///< from the call to its completion
  bool failed = false;       ///< completed with an error
};

/// An event source that forwards `async_poll` (and `async_wait_for_change`)
/// to `inner`, a source whose `client().counts()` counts its requests (the
/// S3 journal source), and notes what each poll cost. Cancellation is
/// passed on to `inner`.
template <class Source>
class counting_source {
 public:
  explicit counting_source(Source& inner) : inner_(inner) {}

  /// As `Source::async_poll`; signature `void(std::error_code, poll_result)`.
  template <asio::completion_token_for<void(std::error_code, storewatch::poll_result)> CompletionToken>
  auto async_poll(std::string_view cursor, std::size_t max_events, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, storewatch::poll_result)>(
        [this](auto handler, std::string cursor, std::size_t max_events) {
          ++in_flight_;
          auto slot = asio::get_associated_cancellation_slot(handler);
          const auto before = inner_.client().counts();
          const auto started = clock_type::now();
          inner_.async_poll(cursor, max_events,
                            asio::bind_cancellation_slot(
                                slot, [this, before, started, h = std::move(handler)](
                                          std::error_code ec, storewatch::poll_result result) mutable {
                                  --in_flight_;
                                  const auto after = inner_.client().counts();
                                  polls_.push_back({after.list - before.list, after.get - before.get,
                                                    result.events.size(), seconds_since(started),
                                                    static_cast<bool>(ec)});
                                  std::move(h)(ec, std::move(result));
                                }));
        },
        token, std::string(cursor), max_events);
  }

  /// As `Source::async_wait_for_change`, when it has one: counted, a source
  /// woken by hints (an S3 journal's) stays woken by them.
  template <class CompletionToken>
    requires storewatch::waitable_source<Source>
  auto async_wait_for_change(std::string_view cursor, CompletionToken&& token) {
    return inner_.async_wait_for_change(cursor, std::forward<CompletionToken>(token));
  }

  /// As `Source::poll_interval`, when it has one: a source whose hints are
  /// live stretches the poller's interval through the counter too.
  std::chrono::milliseconds poll_interval(std::chrono::milliseconds configured) const
    requires storewatch::paced_source<Source>
  {
    return inner_.poll_interval(configured);
  }

  /// The inner source's account of its last failure.
  const std::string& last_error() const noexcept { return inner_.last_error(); }
  /// Every poll completed so far, oldest first.
  const std::vector<poll_cost>& polls() const noexcept { return polls_; }
  /// Polls started and not yet completed.
  std::size_t in_flight() const noexcept { return in_flight_; }

 private:
  Source& inner_;
  std::vector<poll_cost> polls_;
  std::size_t in_flight_ = 0;
};

}  // namespace storewatch::bench
