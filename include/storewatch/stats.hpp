/// \file
/// Counters an operator needs: what was delivered, how far behind, what failed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace storewatch {

/// A copy of the counters at one moment.
struct stats_snapshot {
  std::uint64_t enqueued{};        ///< events the poller put into the stream
  std::uint64_t delivered{};       ///< events consumers took from the stream
  std::uint64_t duplicates{};      ///< events dropped because their id was already delivered
  std::uint64_t polls{};           ///< successful polls of the source
  std::uint64_t poll_errors{};     ///< failed polls (each also reported to the error handler)
  std::uint64_t retries{};         ///< polls made after a failure
  std::uint64_t gaps{};            ///< GAP events (lost ranges) seen
  std::uint64_t problems{};        ///< bad input the source skipped (each reported)
  std::uint64_t handler_errors{};  ///< exceptions thrown by listener handlers
  std::int64_t queue_depth{};      ///< events waiting in the stream: enqueued − delivered, never negative
  std::chrono::milliseconds lag{};                 ///< when the last event was delivered: then − its occurred_at
  std::chrono::microseconds last_poll_duration{};  ///< how long the last poll took
};

/// Live counters, shared by a stream's producer (poller) and consumer.
/// Every member is a relaxed atomic: updating one costs no lock, and
/// `snapshot()` may be called from any thread at any time.
class stream_stats {
 public:
  /// The counters now, each read on its own (relaxed), so they need not be
  /// mutually consistent.
  stats_snapshot snapshot() const noexcept {
    stats_snapshot s;
    s.enqueued = enqueued.load(std::memory_order_relaxed);
    s.delivered = delivered.load(std::memory_order_relaxed);
    s.duplicates = duplicates.load(std::memory_order_relaxed);
    s.polls = polls.load(std::memory_order_relaxed);
    s.poll_errors = poll_errors.load(std::memory_order_relaxed);
    s.retries = retries.load(std::memory_order_relaxed);
    s.gaps = gaps.load(std::memory_order_relaxed);
    s.problems = problems.load(std::memory_order_relaxed);
    s.handler_errors = handler_errors.load(std::memory_order_relaxed);
    const auto depth = static_cast<std::int64_t>(s.enqueued - s.delivered);
    s.queue_depth = depth > 0 ? depth : 0;
    s.lag = std::chrono::milliseconds{lag_ms.load(std::memory_order_relaxed)};
    s.last_poll_duration = std::chrono::microseconds{last_poll_us.load(std::memory_order_relaxed)};
    return s;
  }

  /// Adds `n` to `counter` (relaxed).
  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> enqueued{0};        ///< see `stats_snapshot::enqueued`
  std::atomic<std::uint64_t> delivered{0};       ///< see `stats_snapshot::delivered`
  std::atomic<std::uint64_t> duplicates{0};      ///< see `stats_snapshot::duplicates`
  std::atomic<std::uint64_t> polls{0};           ///< see `stats_snapshot::polls`
  std::atomic<std::uint64_t> poll_errors{0};     ///< see `stats_snapshot::poll_errors`
  std::atomic<std::uint64_t> retries{0};         ///< see `stats_snapshot::retries`
  std::atomic<std::uint64_t> gaps{0};            ///< see `stats_snapshot::gaps`
  std::atomic<std::uint64_t> problems{0};        ///< see `stats_snapshot::problems`
  std::atomic<std::uint64_t> handler_errors{0};  ///< see `stats_snapshot::handler_errors`
  std::atomic<std::int64_t> lag_ms{0};           ///< `stats_snapshot::lag`, in milliseconds
  std::atomic<std::int64_t> last_poll_us{0};     ///< `stats_snapshot::last_poll_duration`, in microseconds
};

}  // namespace storewatch
