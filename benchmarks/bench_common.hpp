// Helpers the benchmark programs share (with tests/support/, the tests'
// helpers: temp dirs, running an io_context, child processes).
#pragma once

#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <storewatch/source.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
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

/// The value below which `fraction` (0..1) of `values` lie (nearest rank);
/// 0 for none.
inline double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(fraction * static_cast<double>(values.size()));
  return values[std::min(values.size() - 1, rank)];
}

/// What one poll cost: the requests the source's client sent for it.
struct poll_cost {
  std::uint64_t lists = 0;   ///< LIST requests (retries included)
  std::uint64_t gets = 0;    ///< GET requests (retries included)
  std::size_t events = 0;    ///< events it returned
  double seconds = 0;        ///< from the call to its completion
  bool failed = false;       ///< completed with an error
};

/// An event source that forwards `async_poll` to `inner`, a source whose
/// `client().counts()` counts its requests (the S3 journal source), and
/// notes what each poll cost. Cancellation is passed on to `inner`.
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
