/// \file
/// `memory_source`: events published inside the process, for applications and tests.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/intercept.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/source.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

namespace storewatch {

/// Options of a memory source.
struct memory_source_options {
  /// Names this run of the source; cursors carry it. A cursor from another
  /// epoch (say, a checkpoint from before a restart of the process) makes
  /// the next poll start over with a GAP event. Empty: a random epoch.
  std::string epoch{};
  /// How many events to keep for late pollers; older ones are dropped and a
  /// cursor pointing to them gets a GAP event. 0 keeps everything.
  std::size_t retention = 0;
};

/// An in-process source: `publish()` events (from any thread); pollers read
/// them in order. Tests script it, including failures (`fail_next_polls`).
///
/// Cursor: `<epoch>:<sequence of the next event>`. Supports wake-ups.
/// `async_poll` and `async_wait_for_change` must be called from the
/// executor's thread (or strand); `publish`, `fail_next_polls`,
/// `poll_count` and `epoch` from anywhere. The source must outlive its
/// pending operations.
template <class Executor = asio::any_io_executor>
class basic_memory_source {
 public:
  /// The executor type; completions without an associated executor run on it.
  using executor_type = Executor;

  /// The source type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_memory_source<OtherExecutor>;  ///< the source on `OtherExecutor`
  };

  /// A source on `executor`; an empty `options.epoch` becomes a random one.
  explicit basic_memory_source(const executor_type& executor, memory_source_options options = {})
      : executor_(executor), change_(executor), options_(std::move(options)) {
    if (options_.epoch.empty()) {
      std::random_device random;
      options_.epoch = std::to_string((std::uint64_t{random()} << 32) | random());
    }
    change_.expires_at(asio::steady_timer::time_point::max());
  }

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }
  /// This run's epoch, the first part of every cursor.
  const std::string& epoch() const noexcept { return options_.epoch; }

  /// Appends `e`. An empty id becomes `<epoch>-<sequence>`; an unset
  /// occurred_at becomes now. Returns the event's id. Wakes the pending
  /// `async_wait_for_change` operations (through the executor). Thread-safe.
  std::string publish(event e) {
    if (e.occurred_at == timestamp{}) {
      e.occurred_at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    }
    bool wake = false;
    std::string id;
    {
      std::lock_guard lock(mutex_);
      if (e.id.empty()) e.id = options_.epoch + "-" + std::to_string(first_sequence_ + events_.size());
      id = e.id;
      events_.push_back(std::move(e));
      if (options_.retention != 0 && events_.size() > options_.retention) {
        events_.pop_front();
        ++first_sequence_;
      }
      wake = waiting_ > 0;
    }
    if (wake) asio::post(executor_, [this] { change_.cancel(); });
    return id;
  }

  /// Appends an event named `name` with `data`, done by `actor`; as above.
  std::string publish(std::string name, std::string data, std::string actor = {}) {
    event e;
    e.name = std::move(name);
    e.data = std::move(data);
    e.actor = std::move(actor);
    return publish(std::move(e));
  }

  /// The next `count` polls fail with `code` (for tests of retries).
  /// Thread-safe.
  void fail_next_polls(std::size_t count, std::error_code code = errc::source_unavailable) {
    std::lock_guard lock(mutex_);
    failures_left_ = count;
    failure_code_ = code;
  }

  /// How many times `async_poll` was called, failed polls included.
  /// Thread-safe.
  std::size_t poll_count() const noexcept { return polls_.load(std::memory_order_relaxed); }

  /// Reads up to `max_events` events from `cursor`.
  /// Completion signature: `void(std::error_code, poll_result)`.
  /// Errors: only what `fail_next_polls` scripted. A cursor this source
  /// cannot use is reported in `poll_result::problems` and answered with a
  /// GAP event, then reading starts at the oldest event kept. A cursor of
  /// another epoch, or of events retention dropped, gets the GAP event alone.
  /// The events are read in this call; the handler runs later, never inside
  /// it, on its associated executor (default: the source's).
  /// Cancellation: none (nothing to wait for).
  template <asio::completion_token_for<void(std::error_code, poll_result)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_poll(std::string_view cursor, std::size_t max_events,
                  CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code, poll_result)>(
        [this](auto handler, std::string cursor, std::size_t max_events) {
          std::error_code ec;
          auto result = poll(cursor, max_events, ec);
          detail::post_completion(executor_, std::move(handler), ec, std::move(result));
        },
        token, std::string(cursor), max_events);
  }

  /// Completes when events past `cursor` exist (at once if they already do,
  /// or if `cursor` is malformed or of another epoch).
  /// Completion signature: `void(std::error_code)`; `operation_aborted` when
  /// cancelled. The handler never runs inside this call; it runs on its
  /// associated executor (default: the source's). Several waits may be
  /// pending; `publish` wakes them all. Cancellation: terminal, partial,
  /// total.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_wait_for_change(std::string_view cursor,
                             CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    enum class step { start, check, woken };
    return asio::async_compose<CompletionToken, void(std::error_code)>(
        [this, cursor = std::string(cursor), at = step::start](auto& self, std::error_code = {}) mutable {
          if (at == step::start) {  // never complete inside the initiating call
            at = step::check;
            self.reset_cancellation_state(asio::enable_total_cancellation());
            asio::post(executor_, std::move(self));
            return;
          }
          bool ready = false;
          {
            std::lock_guard lock(mutex_);
            if (at == step::woken) --waiting_;
            ready = has_events_after(cursor);
            if (!ready) ++waiting_;
          }
          if (ready) {
            self.complete(std::error_code{});
          } else if (self.get_cancellation_state().cancelled() != asio::cancellation_type::none) {
            {
              std::lock_guard lock(mutex_);
              --waiting_;
            }
            // Not under the lock: the handler may run inside complete() and
            // poll this source.
            self.complete(asio::error::operation_aborted);
          } else {
            // Woken for someone else's cursor (publish wakes every waiter),
            // or not woken yet: wait on.
            at = step::woken;
            change_.async_wait(std::move(self));
          }
        },
        token, executor_);
  }

 private:
  // The sequence a cursor of this epoch points to, or nullopt for another
  // epoch; sets errc::invalid_cursor for text that is no cursor at all.
  std::optional<std::uint64_t> decode(std::string_view cursor, std::error_code& ec) const {
    if (cursor.empty()) return 0;
    const auto colon = cursor.rfind(':');
    std::uint64_t sequence = 0;
    if (colon == std::string_view::npos || !detail::parse_decimal(cursor.substr(colon + 1), sequence)) {
      ec = errc::invalid_cursor;
      return std::nullopt;
    }
    if (cursor.substr(0, colon) != options_.epoch) return std::nullopt;
    return sequence;
  }

  bool has_events_after(std::string_view cursor) const {
    std::error_code ec;
    const auto sequence = decode(cursor, ec);
    return ec || !sequence || *sequence != first_sequence_ + events_.size();
  }

  std::string encode(std::uint64_t sequence) const { return options_.epoch + ":" + std::to_string(sequence); }

  event make_gap(std::string what) const {
    event gap;
    gap.name = event_name::gap;
    gap.data = std::move(what);
    gap.id = options_.epoch + "-gap-" + std::to_string(first_sequence_);
    gap.occurred_at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    return gap;
  }

  poll_result poll(std::string_view cursor, std::size_t max_events, std::error_code& ec) {
    polls_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    if (failures_left_ > 0) {
      --failures_left_;
      ec = failure_code_;
      return {};
    }
    poll_result result;
    auto sequence = decode(cursor, ec);
    if (!ec && sequence && *sequence > first_sequence_ + events_.size()) ec = errc::invalid_cursor;
    if (ec) {
      // A bad cursor must not stall the stream: say so, and start over.
      result.problems.push_back({ec, "memory source: cursor " + detail::quote(cursor) +
                                         " is not a cursor of this source; starting from the oldest event kept"});
      result.events.push_back(make_gap("cursor " + detail::quote(cursor) + " was not understood"));
      ec = {};
      sequence = first_sequence_;
    } else if (!sequence) {
      result.events.push_back(make_gap("memory source epoch " + options_.epoch +
                                       " does not know the cursor's epoch; events before it are unknown"));
      sequence = first_sequence_;
    } else if (*sequence < first_sequence_) {
      result.events.push_back(make_gap("memory source dropped events " + std::to_string(*sequence) + " to " +
                                       std::to_string(first_sequence_ - 1) + " (retention)"));
      sequence = first_sequence_;
    }
    const auto end = first_sequence_ + events_.size();
    result.events.reserve(result.events.size() +
                          static_cast<std::size_t>(std::min<std::uint64_t>(max_events, end - *sequence)));
    while (*sequence < end && result.events.size() < max_events) {
      result.events.push_back(events_[*sequence - first_sequence_]);
      ++*sequence;
    }
    result.next_cursor = encode(*sequence);
    return result;
  }

  executor_type executor_;
  asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>
      change_;
  memory_source_options options_;
  mutable std::mutex mutex_;
  std::deque<event> events_;
  std::uint64_t first_sequence_ = 0;
  std::size_t waiting_ = 0;
  std::size_t failures_left_ = 0;
  std::error_code failure_code_;
  std::atomic<std::size_t> polls_{0};
};

/// The memory source on `asio::any_io_executor`.
using memory_source = basic_memory_source<>;

}  // namespace storewatch
