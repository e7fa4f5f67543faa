/// \file
/// `event_stream`: the bounded, awaitable queue between a poller and its consumer.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/intercept.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/stats.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <system_error>
#include <utility>

namespace storewatch {

/// A bounded queue of events that consumers `co_await` (or attach a callback
/// to), over `asio::experimental::channel<void(std::error_code, event)>`.
///
/// The producer (usually a poller) pushes; when the stream holds `capacity`
/// events it suspends the producer instead of dropping anything.
///
/// Not thread-safe, like any Asio I/O object: use it from one thread or
/// through a strand. `stats()` may be read from any thread.
template <class Executor = asio::any_io_executor>
class basic_event_stream {
 public:
  /// The executor type; handlers without an associated executor run on it.
  using executor_type = Executor;

  /// Rebinds the stream to another executor type, so
  /// `asio::use_awaitable_t<>::as_default_on_t<event_stream>` works.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_event_stream<OtherExecutor>;  ///< the stream on `OtherExecutor`
  };

  /// Default number of events the stream buffers.
  static constexpr std::size_t default_capacity = 1024;

  /// A stream on `executor` that buffers up to `capacity` events. With
  /// capacity 0 it buffers none: each push waits for a consumer.
  explicit basic_event_stream(const executor_type& executor, std::size_t capacity = default_capacity)
      : channel_(executor, capacity), capacity_(capacity) {}

  /// A stream on `context`'s executor.
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_event_stream(ExecutionContext& context, std::size_t capacity = default_capacity)
      : basic_event_stream(context.get_executor(), capacity) {}

  basic_event_stream(const basic_event_stream&) = delete;
  basic_event_stream& operator=(const basic_event_stream&) = delete;

  /// The executor given at construction.
  executor_type get_executor() noexcept { return channel_.get_executor(); }

  /// Most events buffered at once.
  std::size_t capacity() const noexcept { return capacity_; }
  /// False once `close()` was called, even while buffered events remain.
  bool is_open() const noexcept { return !closed_; }

  /// True when something is buffered for `async_next`: an event, or the end
  /// of the stream after `close()`. `async_next` then completes without
  /// waiting for a producer.
  bool ready() const noexcept { return channel_.ready(); }

  /// Counters for this stream and the poller feeding it; readable from any
  /// thread.
  stream_stats& stats() noexcept { return stats_; }
  /// \copydoc stats()
  const stream_stats& stats() const noexcept { return stats_; }

  /// Waits for the next event.
  ///
  /// Completion signature: `void(std::error_code, event)`.
  /// Errors: `errc::end_of_stream` (or the reason given to `close()`) once
  /// the stream is closed and every event buffered before has been taken; `asio::error::operation_aborted`
  /// when cancelled. The handler never runs inside this call; it runs on its
  /// associated executor (default: the stream's). Events are taken in the
  /// order they were pushed.
  /// Cancellation: terminal, partial and total; a cancelled wait takes no
  /// event. Do not race it against a timer with `||`: a completion that
  /// wins the race at the same moment is discarded with its event. Bound the
  /// wait some other way (close the stream, or stop the poller).
  /// Keep one `async_next` pending at a time: `close()` ends only one waiting
  /// call. A taken event counts in `stats().delivered` and sets
  /// `stats().lag_ms`.
  template <asio::completion_token_for<void(std::error_code, event)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code, event)>(
        [this](auto handler) { this->start_next(std::move(handler)); }, token);
  }

  /// Puts `e` into the stream if there is room, or hands it to a waiting
  /// consumer; never blocks. Returns false when the stream is full or
  /// closed, leaving `e` as it was. Counts in `stats().enqueued`.
  bool try_push(event& e) {
    if (closed_) return false;
    if (!channel_.try_send(std::error_code{}, std::move(e))) {
      if (capacity() == 0 || channel_.ready()) return false;  // full, or nobody to hand it to
      // Empty buffer, nobody waiting, and still refused: the state Asio 1.22
      // leaves a buffered channel in after a cancelled receive (#1241). With
      // no operation pending, close + reset restores buffering.
      channel_.close();
      channel_.reset();
      if (!channel_.try_send(std::error_code{}, std::move(e))) return false;
    }
    stats_.add(stats_.enqueued);
    return true;
  }

  /// Puts `e` into the stream, suspending while it is full (backpressure).
  ///
  /// Completion signature: `void(std::error_code)`; success means the event
  /// is buffered or taken (and counts in `stats().enqueued`).
  /// Errors: `errc::end_of_stream` if the stream is or becomes closed
  /// (the event is then not queued); `asio::error::operation_aborted` when
  /// cancelled. The handler never runs inside this call; it runs on its
  /// associated executor (default: the stream's).
  /// Cancellation: terminal, partial and total; a cancelled push queues
  /// nothing and the event is lost to the caller (it was moved in).
  template <asio::completion_token_for<void(std::error_code)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_push(event e, CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler, event e) { this->start_push(std::move(handler), std::move(e)); }, token, std::move(e));
  }

  /// Ends the stream. Consumers still take every event buffered so far, then
  /// get `reason` (by default `errc::end_of_stream`; a poller whose loop
  /// failed passes its error); a producer suspended in `async_push` and
  /// every later push complete with `errc::end_of_stream`. Only the first
  /// close counts.
  void close(std::error_code reason = errc::end_of_stream) {
    if (closed_) return;
    closed_ = true;
    end_reason_ = reason;
    // Wakes a consumer waiting on an empty stream. When the buffer is full
    // (the only case try_send fails), nobody waits to receive but producers
    // may wait to send: end them, since channel::close() would not (Asio
    // 1.22) and would also discard the buffered events.
    // One end marker per consumer waiting (at least one), so none is left
    // waiting.
    const auto markers = std::max<std::size_t>(receivers_waiting_, 1);
    for (std::size_t i = 0; i < markers; ++i) {
      if (!channel_.try_send(end_reason_, event{})) {
        channel_.cancel();
        break;
      }
    }
  }

 private:
  template <class Handler>
  void start_next(Handler&& handler) {
    if (closed_ && !channel_.ready()) {
      detail::post_completion(get_executor(), std::forward<Handler>(handler), end_reason_, event{});
      return;
    }
    ++receivers_waiting_;
    channel_.async_receive(detail::intercept(std::forward<Handler>(handler), [this](std::error_code& ec, event& e) {
      --receivers_waiting_;
      if (!ec) {
        stats_.add(stats_.delivered);
        const auto lag = std::chrono::system_clock::now() - e.occurred_at;
        stats_.lag_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(lag).count(),
                            std::memory_order_relaxed);
      } else if (ec == asio::experimental::channel_errc::channel_cancelled) {
        ec = asio::error::operation_aborted;
      }
    }));
  }

  template <class Handler>
  void start_push(Handler&& handler, event e) {
    if (closed_) {
      detail::post_completion(get_executor(), std::forward<Handler>(handler), make_error_code(errc::end_of_stream));
      return;
    }
    channel_.async_send(std::error_code{}, std::move(e),
                        detail::intercept(std::forward<Handler>(handler), [this](std::error_code& ec) {
                          if (!ec) {
                            stats_.add(stats_.enqueued);
                          } else if (closed_) {
                            ec = errc::end_of_stream;
                          } else if (ec == asio::experimental::channel_errc::channel_cancelled) {
                            ec = asio::error::operation_aborted;
                          }
                        }));
  }

  asio::experimental::channel<Executor, void(std::error_code, event)> channel_;
  std::size_t capacity_;
  stream_stats stats_;
  bool closed_ = false;
  std::error_code end_reason_;
  std::size_t receivers_waiting_ = 0;  // async_next operations in the channel
};

/// The stream on `asio::any_io_executor`.
using event_stream = basic_event_stream<>;

}  // namespace storewatch
