/// \file
/// The poll loop: reads a source, feeds a stream, retries, waits, stops.
#pragma once

#include <storewatch/checkpoint.hpp>
#include <storewatch/backoff.hpp>
#include <storewatch/detail/config.hpp>
#include <storewatch/detail/dedup.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/source.hpp>
#include <storewatch/stream.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch {

/// Receives what went wrong: a failed poll, bad input a source skipped, a
/// handler that threw, a checkpoint that could not be saved. `message` says
/// what and where. Called on the executor of the reporting object. It
/// should not throw: an exception from it ends the loop that called it and
/// propagates out of that executor's `run()`.
using error_handler = std::function<void(std::error_code code, std::string_view message)>;

/// The default error handler: one line on stderr, `storewatch: ` and the
/// message.
inline void print_error(std::error_code, std::string_view message) {
  std::fprintf(stderr, "storewatch: %.*s\n", static_cast<int>(message.size()), message.data());
}

/// Options of a poller.
struct poller_options {
  /// How long to wait between polls that found nothing new. With wake-ups
  /// this is the safety net; without them, the latency bound. A
  /// `paced_source` may ask for a longer one while its wake-ups are live
  /// (an S3 journal source with hints: `s3_journal_options::hinted_poll_interval`).
  std::chrono::milliseconds poll_interval{5000};
  /// Also wait for the source's change notification (when it has one). If
  /// that wait fails, the failure is reported and the poller polls only.
  bool wake_ups = true;
  /// Delays between retries of failing polls.
  backoff_policy backoff{};
  /// Most events taken from the source per poll.
  std::size_t batch_size = 256;
  /// Where failures are reported; empty means `print_error`.
  error_handler on_error{};
};

/// Reads events from a source and pushes them into a stream, forever:
/// poll, push each event (suspending while the stream is full: backpressure,
/// never a drop), then wait for `poll_interval` or the source's wake-up.
/// A failed poll is reported and retried after an exponential backoff with
/// jitter; the stream does not end on a transient error.
///
/// The last event of each poll carries the cursor after it (`event::cursor`)
/// so consumers can checkpoint. Events whose ids the start state lists as
/// delivered are dropped (counted as duplicates).
///
/// When the loop ends it closes the stream: consumers take what is buffered,
/// then get `errc::end_of_stream`. The stream stays closed, so a poller and
/// its stream serve one run; start one run at a time. Not thread-safe: call
/// `start`, `stop` and `async_run` on the stream's executor, where the loop
/// and `on_error` run. Source, stream and poller must outlive the run.
template <event_source Source, class Executor = asio::any_io_executor>
class poller {
 public:
  /// The stream's executor type.
  using executor_type = Executor;
  /// The stream this poller feeds.
  using stream_type = basic_event_stream<Executor>;

  /// The poller type on another executor type (for
  /// `use_awaitable_t<>::as_default_on_t`).
  template <class OtherExecutor>
  struct rebind_executor {
    using other = poller<Source, OtherExecutor>;  ///< the poller of a stream on `OtherExecutor`
  };

  /// A poller that reads `source` into `stream`. An empty `on_error` becomes
  /// `print_error`; a `batch_size` of 0 becomes 1.
  poller(Source& source, stream_type& stream, poller_options options = {})
      : source_(source), stream_(stream), options_(std::move(options)), timer_(stream.get_executor()) {
    if (!options_.on_error) options_.on_error = print_error;
    if (options_.batch_size == 0) options_.batch_size = 1;
  }

  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;

  /// The stream's executor, on which the loop runs.
  executor_type get_executor() noexcept { return stream_.get_executor(); }

  /// The options in effect (with the defaults filled in).
  const poller_options& options() const noexcept { return options_; }

  /// Runs the poll loop from `from` (a cursor, and ids already delivered
  /// after it) until stopped.
  ///
  /// Completion signature: `void(std::error_code)`: `errc::stopped` after
  /// `stop()` or cancellation, `errc::end_of_stream` when somebody else
  /// closed the stream (noticed when the loop next pushes an event). Failed
  /// polls do not end it. The loop runs on the stream's executor; the handler
  /// never runs inside this call and runs on its associated executor
  /// (default: the stream's). An exception escaping the loop (from `on_error`,
  /// or one a source throws that is not a `std::system_error`) still ends the
  /// run (`running()` turns false) and closes the stream with its error code
  /// (`errc::poller_failed` for an exception that is not a
  /// `std::system_error`), so the consumer's `async_next` completes with it;
  /// then it is rethrown from the completion, out of the executor's `run()`.
  /// Cancellation: terminal only (partial and total are ignored): cancels
  /// the wait or push in progress (and the poll, if the source supports it)
  /// and completes with `errc::stopped`.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_run(checkpoint_state from, CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler, checkpoint_state from) {
          // The loop listens to stop_signal_, which stop() emits and the
          // handler's own cancellation slot (if any) forwards to.
          auto slot = asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected()) {
            slot.assign([this](asio::cancellation_type type) {
              if (begun_) {
                stop_signal_.emit(type);
              } else if ((type & asio::cancellation_type::terminal) != asio::cancellation_type::none) {
                stopping_ = true;  // not begun: the loop sees it (see stop())
              }
            });
          }
          auto handler_executor = asio::get_associated_executor(handler, get_executor());
          running_ = true;
          stopping_ = false;
          begun_ = false;
          asio::co_spawn(get_executor(), run(std::move(from)),
                         asio::bind_cancellation_slot(
                             stop_signal_.slot(),
                             asio::bind_executor(std::move(handler_executor),
                                                 [h = std::move(handler)](std::exception_ptr error,
                                                                          std::error_code ec) mutable {
                                                   auto user_slot = asio::get_associated_cancellation_slot(h);
                                                   if (user_slot.is_connected()) user_slot.clear();
                                                   if (error) std::rethrow_exception(error);
                                                   std::move(h)(ec);
                                                 })));
        },
        token, std::move(from));
  }

  /// Starts the loop in the background (`async_run` with a handler that
  /// ignores the result); `stop()` ends it.
  void start(checkpoint_state from = {}) {
    async_run(std::move(from), [](std::error_code) {});
  }

  /// Ends the loop promptly: cancels the wait in progress (and the poll, if
  /// the source's `async_poll` supports cancellation), ends a push suspended
  /// on a full stream, and closes the stream. Returns at once; the loop ends
  /// shortly after, on the stream's executor. Does nothing when no run is in
  /// progress or it is already stopping.
  /// The same for a run begun with `start()` or with `async_run`.
  void stop() {
    if (!running_ || stopping_) return;
    stopping_ = true;
    // Before the coroutine has begun, a cancellation would make co_spawn
    // throw at its first await, out of run(): the loop sees stopping_.
    if (begun_) stop_signal_.emit(asio::cancellation_type::terminal);
    timer_.cancel();
    stream_.close();
  }

  /// True from the start of a run until its loop has ended.
  bool running() const noexcept { return running_; }

 private:
  // Whatever ends the loop, also an exception, ends the run and the stream:
  // a consumer waiting in `async_next` learns of it.
  asio::awaitable<std::error_code> run(checkpoint_state from) {
    co_await asio::this_coro::throw_if_cancelled(false);
    begun_ = true;
    std::error_code result;
    std::exception_ptr failure;
    try {
      result = co_await loop(std::move(from));
    } catch (const std::system_error& error) {
      result = error.code();
      failure = std::current_exception();
    } catch (...) {
      result = errc::poller_failed;
      failure = std::current_exception();
    }
    running_ = false;
    stream_.close(failure ? result : make_error_code(errc::end_of_stream));
    if (failure) std::rethrow_exception(failure);
    co_return result;
  }

  asio::awaitable<bool> cancelled() {
    const auto state = co_await asio::this_coro::cancellation_state;
    co_return stopping_ || state.cancelled() != asio::cancellation_type::none;
  }

  asio::awaitable<std::error_code> loop(checkpoint_state from) {
    using asio::experimental::as_tuple;
    // Stop is checked explicitly after each await, so that cleanup is ours.
    co_await asio::this_coro::throw_if_cancelled(false);
    auto& stats = stream_.stats();
    std::string cursor = std::move(from.cursor);
    detail::repeat_filter repeats(from.delivered_ids);
    std::minstd_rand random{std::random_device{}()};
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    bool wake_ups = options_.wake_ups;
    unsigned failures = 0;

    for (;;) {
      const auto started = std::chrono::steady_clock::now();
      std::error_code ec;
      poll_result batch;
      try {
        batch = co_await source_.async_poll(cursor, options_.batch_size, asio::use_awaitable);
      } catch (const std::system_error& error) {
        ec = error.code();
      }
      if (co_await cancelled()) co_return errc::stopped;

      if (ec) {
        ++failures;
        stream_stats::add(stats.poll_errors);
        const auto delay = detail::backoff_delay(options_.backoff, failures, unit(random));
        options_.on_error(ec, "poll failed (" + std::to_string(failures) + " in a row): " + reason(ec) +
                                  "; retrying in " + std::to_string(delay.count()) + " ms");
        timer_.expires_after(delay);
        co_await timer_.async_wait(as_tuple(asio::use_awaitable));
        if (co_await cancelled()) co_return errc::stopped;
        stream_stats::add(stats.retries);
        continue;
      }
      failures = 0;
      stream_stats::add(stats.polls);
      stats.last_poll_us.store(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - started)
                                   .count(),
                               std::memory_order_relaxed);
      for (const auto& problem : batch.problems) {
        stream_stats::add(stats.problems);
        options_.on_error(problem.code, problem.message);
      }

      const bool full_batch = batch.events.size() >= options_.batch_size;
      auto& events = batch.events;
      if (const auto dropped = repeats.drop_repeats(events)) stream_stats::add(stats.duplicates, dropped);
      repeats.close_batch(events, batch.next_cursor);
      for (const auto& e : events) {
        if (e.name == event_name::gap) stream_stats::add(stats.gaps);
      }
      // The batch joins the stream in place, as much as fits at a time; the
      // event that does not fit waits in async_push (backpressure).
      const auto shared = std::make_shared<std::vector<event>>(std::move(events));
      for (std::size_t next = 0;;) {
        stream_.try_push_some(shared, next);
        if (next == shared->size()) break;
        auto& e = (*shared)[next++];
        auto [push_error] = co_await stream_.async_push(std::move(e), as_tuple(asio::use_awaitable));
        if (co_await cancelled()) co_return errc::stopped;
        if (push_error) co_return push_error;
      }
      cursor = std::move(batch.next_cursor);
      if (full_batch) continue;  // more may be waiting: poll again at once

      if constexpr (waitable_source<Source>) {
        if (wake_ups) {
          // A source whose wake-ups are live may stretch the interval.
          if constexpr (paced_source<Source>) {
            timer_.expires_after(source_.poll_interval(options_.poll_interval));
          } else {
            timer_.expires_after(options_.poll_interval);
          }
          using namespace asio::experimental::awaitable_operators;
          std::error_code wake_error;
          try {
            co_await (timer_.async_wait(asio::use_awaitable) || wait_for_change(cursor, wake_error));
          } catch (const asio::multiple_exceptions&) {
            // Both waits were cancelled: a stop, checked below.
          } catch (const std::system_error&) {
          }
          if (co_await cancelled()) co_return errc::stopped;
          if (wake_error && wake_error != asio::error::operation_aborted) {
            // A broken notifier must not turn into a busy loop: poll only.
            wake_ups = false;
            options_.on_error(wake_error, "wake-ups failed, polling every " +
                                              std::to_string(options_.poll_interval.count()) +
                                              " ms instead: " + reason(wake_error));
          }
          if (co_await cancelled()) co_return errc::stopped;
          continue;
        }
      }
      timer_.expires_after(options_.poll_interval);
      co_await timer_.async_wait(as_tuple(asio::use_awaitable));
      if (co_await cancelled()) co_return errc::stopped;
    }
  }

  // Waits for the source's change signal; a failure is stored in `failure`
  // and ends the wait (so the caller can fall back to polling) instead of
  // being swallowed by `||`, which waits for one success.
  // What went wrong: the source's own account when it keeps one (it names
  // the file and the step), else the error code's message.
  std::string reason(const std::error_code& ec) const {
    if constexpr (requires { std::string(source_.last_error()); }) {
      if (std::string said(source_.last_error()); !said.empty()) return said;
    }
    return ec.message();
  }

  asio::awaitable<void> wait_for_change(const std::string& cursor, std::error_code& failure) {
    try {
      co_await source_.async_wait_for_change(cursor, asio::use_awaitable);
    } catch (const std::system_error& error) {
      if (error.code() == asio::error::operation_aborted) throw;
      failure = error.code();
    }
  }

  Source& source_;
  stream_type& stream_;
  poller_options options_;
  asio::steady_timer timer_;
  asio::cancellation_signal stop_signal_;
  bool running_ = false;
  bool stopping_ = false;
  bool begun_ = false;  // the run's coroutine has started
};

/// Deduces `poller<Source, Executor>` from the source and the stream.
template <class Source, class Executor>
poller(Source&, basic_event_stream<Executor>&, poller_options = {}) -> poller<Source, Executor>;

}  // namespace storewatch
