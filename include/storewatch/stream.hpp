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
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace storewatch {

/// A bounded queue of events that consumers `co_await` (or attach a callback
/// to).
///
/// The producer (usually a poller) pushes; when the stream holds `capacity`
/// events it suspends the producer instead of dropping anything, and resumes
/// it once consumers have taken the buffer down to half (so a producer
/// wakes once per half a buffer, not once per event).
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
      : channel_(executor, 0), capacity_(capacity) {}

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
  bool ready() const noexcept { return buffer_.size() > claimed_ || closed_ || channel_.ready(); }

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
  ///
  /// Coroutines: with `asio::use_awaitable_t<E>` (`asio::use_awaitable`,
  /// and the default token of `asio::use_awaitable_t<>::as_default_on_t`)
  /// or `asio::experimental::as_tuple(asio::use_awaitable_t<E>)`, this
  /// returns the same `asio::awaitable` type as ever, and nothing runs
  /// inside the call either; but when the `co_await` finds an event
  /// buffered it takes it (as `try_next` would) and the coroutine goes on
  /// without suspending, instead of going through a completion posted to the
  /// executor (a scheduler round each, which on an io_context with a timer
  /// or socket is an `epoll_wait` system call per event). When nothing is
  /// buffered it suspends: first for one round of the executor, after which
  /// it looks again (a producer whose turn was queued, such as a completing
  /// `async_push`, has then filled the buffer), then to wait for a push; a
  /// cancellation during that round ends it with `operation_aborted`, as it
  /// would end the wait. So a consumer looping on `co_await async_next`
  /// runs through what is buffered before other handlers on the executor
  /// run: at most `capacity()` events plus one for each producer suspended
  /// in `async_push` (its event joins the buffer once it is down to half;
  /// a poller is one such producer), since a producer on the same executor
  /// cannot refill the stream until the consumer suspends; to yield sooner, `co_await asio::post`
  /// now and then. Everything else is as above: order, errors (thrown as
  /// `std::system_error`, or returned by `as_tuple`), and cancellation (a
  /// coroutine whose cancellation state is already cancelled, with
  /// `throw_if_cancelled` on as by default, gets `operation_aborted` from
  /// the `co_await` and takes no event).
  template <asio::completion_token_for<void(std::error_code, event)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    if constexpr (takes_buffered_inline<std::decay_t<CompletionToken>>::value) {
      return next_inline(std::forward<CompletionToken>(token));
    } else {
      return initiate_next(std::forward<CompletionToken>(token));
    }
  }

  /// Takes the next event into `e` if one is ready, without waiting and
  /// without a completion: true when it did. False when nothing is buffered
  /// or a pending `async_next` comes first, leaving `e` as it was. An
  /// `async_next` stops being pending once its event is taken (on the
  /// stream's executor), even if its handler, bound to another executor,
  /// has not run yet: `try_next` then takes the event after it, in order.
  /// A taken event counts as `async_next`'s do. A consumer that drains a busy
  /// stream this way should still yield now and then, so that other work
  /// on the executor runs: `co_await asio::post(executor, use_awaitable)`
  /// (a `co_await async_next` does not suspend while events are buffered).
  bool try_next(event& e) {
    if (claimed_ > 0 || receivers_waiting_ > 0) return false;
    if (buffer_.empty()) {
      // Unbuffered, or a producer suspended past an emptied buffer.
      return channel_.try_receive([&](std::error_code, event taken) {
        note_taken(taken);
        e = std::move(taken);
      });
    }
    e = take_buffered();
    return true;
  }

  /// Puts `e` into the stream if there is room, or hands it to a waiting
  /// consumer; never blocks. Returns false when the stream is full, closed,
  /// or a push suspended in `async_push` waits to go first, leaving `e` as
  /// it was. Counts in `stats().enqueued`.
  bool try_push(event& e) {
    if (closed_) return false;
    // A consumer waits only while nothing unclaimed is buffered: hand the
    // event over.
    if (receivers_waiting_ > 0 && channel_.try_send(std::error_code{}, std::move(e))) {
      count(stats_.enqueued);
      return true;
    }
    // Full, or a producer suspended on a full stream waits to go first.
    if (buffer_.size() - claimed_ >= capacity_ || channel_.ready()) return false;
    buffer_.push_back(std::move(e));
    count(stats_.enqueued);
    return true;
  }

  /// Pushes `events[next]`, `events[next + 1]`, ... as `try_push` would
  /// push each, and advances `next` past those pushed: it stops at the
  /// first it cannot push (the stream full or closed, a push waiting in
  /// `async_push`). The events pushed stay where they are, in `events`
  /// (which the stream then shares), until consumers take them: a poller's
  /// batch joins the stream without each event being moved into it. Touch
  /// no event before `next` afterwards.
  void try_push_some(const std::shared_ptr<std::vector<event>>& events, std::size_t& next) {
    auto& batch = *events;
    while (next < batch.size() && !closed_) {
      if (receivers_waiting_ > 0) {  // a consumer waits on an empty buffer: hand it one
        if (!try_push(batch[next])) return;
        ++next;
        continue;
      }
      const auto held = buffer_.size() - claimed_;
      if (held >= capacity_ || channel_.ready()) return;
      const auto taken = std::min(capacity_ - held, batch.size() - next);
      buffer_.push_run(events, next, next + taken);
      count(stats_.enqueued, taken);
      next += taken;
    }
  }

  /// Puts `e` into the stream, suspending while it is full (backpressure)
  /// until consumers have taken it down to half, or, with capacity 0, until
  /// a consumer takes `e`.
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
    // Consumers wait in the channel only on an empty buffer, producers only
    // on a full one, never both. One end marker per consumer waiting; a
    // producer waiting is ended (channel::close() would not, in Asio 1.22).
    for (std::size_t i = 0; i < receivers_waiting_; ++i) {
      if (!channel_.try_send(end_reason_, event{})) break;
    }
    channel_.cancel();
  }

 private:
  // Counts in a counter only this stream's thread writes: a relaxed load and
  // store, no locked read-modify-write per event.
  static void count(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  void note_taken(const event& e) {
    count(stats_.delivered);
    const auto lag = std::chrono::system_clock::now() - e.occurred_at;
    stats_.lag_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(lag).count(), std::memory_order_relaxed);
  }

  // The tokens for which async_next's co_await takes a buffered event
  // without suspending (see async_next).
  template <class Token>
  struct takes_buffered_inline : std::false_type {};
  template <class OtherExecutor>
  struct takes_buffered_inline<asio::use_awaitable_t<OtherExecutor>> : std::true_type {};
  template <class OtherExecutor>
  struct takes_buffered_inline<asio::experimental::as_tuple_t<asio::use_awaitable_t<OtherExecutor>>>
      : std::true_type {};

  template <class CompletionToken>
  auto initiate_next(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, event)>(
        [this](auto handler) { this->start_next(std::move(handler)); }, token);
  }

  // What async_next's co_await does with an awaitable token (see there): a
  // coroutine, lazy like the operation use_awaitable makes (nothing runs
  // before it is awaited). It takes a buffered event in place. Else, unless
  // the stream is closed, it first lets the executor run what is queued
  // (one round) and looks again: a producer on the same executor whose turn
  // comes next (a push completing, a poller's next batch) then fills the
  // buffer, instead of handing each event over through the channel to a
  // consumer waiting there, which costs more per event. A cancellation that
  // comes during that round ends the call with operation_aborted, as it
  // would end the wait, even with throw_if_cancelled off. Then it waits.
  template <class Result, class OtherExecutor, class Token>
  asio::awaitable<Result, OtherExecutor> next_inline_as(Token token) {
    if (can_take_buffered()) co_return inline_result<Result>(std::error_code{}, take_buffered());
    if (!closed_) {
      auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() == asio::cancellation_type::none) {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable_t<OtherExecutor>{});
        if (state.cancelled() != asio::cancellation_type::none) {
          co_return inline_result<Result>(asio::error::operation_aborted, event{});
        }
        if (can_take_buffered()) co_return inline_result<Result>(std::error_code{}, take_buffered());
      }
    }
    co_return co_await initiate_next(std::move(token));
  }

  // The co_await's result: the event, or the error thrown (as use_awaitable
  // throws it); or both as a tuple (as as_tuple gives them).
  template <class Result>
  static Result inline_result(std::error_code ec, event&& e) {
    if constexpr (std::is_same_v<Result, event>) {
      if (ec) asio::detail::throw_error(ec, "async_next");
      return std::move(e);
    } else {
      return Result{ec, std::move(e)};
    }
  }

  template <class OtherExecutor>
  auto next_inline(asio::use_awaitable_t<OtherExecutor> token) {
    return next_inline_as<event, OtherExecutor>(std::move(token));
  }

  template <class OtherExecutor>
  auto next_inline(asio::experimental::as_tuple_t<asio::use_awaitable_t<OtherExecutor>> token) {
    return next_inline_as<std::tuple<std::error_code, event>, OtherExecutor>(std::move(token));
  }

  // try_next's and the co_await's take of a buffered event: none claimed by
  // a posted completion comes first, no consumer waits in the channel.
  bool can_take_buffered() const noexcept { return claimed_ == 0 && receivers_waiting_ == 0 && !buffer_.empty(); }

  event take_buffered() {
    auto e = buffer_.pop_front();
    admit_producer();
    note_taken(e);
    return e;
  }

  // A producer suspended on a full buffer is let in once consumers have
  // taken it down to half: its event joins the buffer's end and it resumes,
  // to fill the other half with try_push.
  void admit_producer() {
    if (buffer_.size() - claimed_ > capacity_ / 2 || !channel_.ready()) return;
    // Its async_push completes (and counts) later, as one that waited.
    channel_.try_receive([this](std::error_code, event e) { buffer_.push_back(std::move(e)); });
  }

  // The oldest claimed event, out of the buffer; on the stream's executor.
  event take_claimed() {
    --claimed_;
    auto e = buffer_.pop_front();
    note_taken(e);
    return e;
  }

  template <class Handler>
  void start_next(Handler&& handler) {
    if (buffer_.size() > claimed_) {
      // The event stays in the buffer, claimed, until the completion runs
      // and takes it: it moves once into the handler, not through the
      // posted operation. Completions run in the order of the calls (one
      // async_next pending at a time, as documented).
      ++claimed_;
      admit_producer();
      // Every operation posted for the handler is allocated with its
      // associated allocator, as Asio's own would be.
      const auto allocator = asio::get_associated_allocator(handler);
      auto handler_executor = asio::get_associated_executor(handler, get_executor());
      if constexpr (std::is_same_v<decltype(handler_executor), executor_type>) {
        if (handler_executor == get_executor()) {
          // No second hop to the same executor: the take runs the handler.
          asio::post(get_executor(),
                     asio::bind_allocator(allocator, [this, h = std::forward<Handler>(handler)]() mutable {
                       auto e = take_claimed();
                       std::move(h)(std::error_code{}, std::move(e));
                     }));
          return;
        }
      }
      // The buffer belongs to the stream's executor: take the event there,
      // then hand it to the handler's executor.
      asio::post(get_executor(),
                 asio::bind_allocator(allocator, [this, deliver = hand_over(handler_executor,
                                                                            std::forward<Handler>(handler))]() mutable {
                   deliver(std::error_code{}, take_claimed());
                 }));
      return;
    }
    if (closed_) {
      detail::post_completion(get_executor(), std::forward<Handler>(handler), end_reason_, event{});
      return;
    }
    // Nothing buffered: take a suspended producer's event (capacity 0), or
    // wait for the next push.
    ++receivers_waiting_;
    const auto on_taken = [this](std::error_code& ec, event& e) {
      --receivers_waiting_;
      if (!ec) {
        note_taken(e);
      } else if (ec == asio::experimental::channel_errc::channel_cancelled) {
        ec = asio::error::operation_aborted;
      }
    };
    auto handler_executor = asio::get_associated_executor(handler, get_executor());
    if constexpr (std::is_same_v<decltype(handler_executor), executor_type>) {
      if (handler_executor == get_executor()) {
        channel_.async_receive(detail::intercept(std::forward<Handler>(handler), on_taken));
        return;
      }
    }
    // As above: the counts are the stream's executor's, so the take is
    // accounted there, then the event handed to the handler's executor
    // (the channel's cancellation follows the handler's slot).
    auto slot = asio::get_associated_cancellation_slot(handler);
    const auto allocator = asio::get_associated_allocator(handler);
    auto deliver = hand_over(handler_executor, std::forward<Handler>(handler));
    auto take = [on_taken, deliver = std::move(deliver)](std::error_code ec, event e) mutable {
      on_taken(ec, e);
      deliver(ec, std::move(e));
    };
    channel_.async_receive(asio::bind_cancellation_slot(
        slot, asio::bind_executor(get_executor(), asio::bind_allocator(allocator, std::move(take)))));
  }

  // For a handler bound to another executor than the stream's: a function,
  // called on the stream's executor once the take is counted there, that
  // hands the handler its completion on `handler_executor`, which it keeps
  // busy until then. The hand-over is allocated with the handler's
  // associated allocator.
  template <class HandlerExecutor, class Handler>
  static auto hand_over(const HandlerExecutor& handler_executor, Handler&& handler) {
    const auto allocator = asio::get_associated_allocator(handler);  // before the handler moves
    return [allocator, work = asio::make_work_guard(handler_executor), h = std::forward<Handler>(handler)](
               std::error_code ec, event&& e) mutable {
      asio::dispatch(work.get_executor(),
                     asio::bind_allocator(allocator, [h = std::move(h), ec, e = std::move(e)]() mutable {
                       std::move(h)(ec, std::move(e));
                     }));
      work.reset();
    };
  }

  template <class Handler>
  void start_push(Handler&& handler, event e) {
    if (closed_) {
      detail::post_completion(get_executor(), std::forward<Handler>(handler), make_error_code(errc::end_of_stream));
      return;
    }
    if (try_push(e)) {
      detail::post_completion(get_executor(), std::forward<Handler>(handler), std::error_code{});
      return;
    }
    // Full: wait until a consumer takes the event (capacity 0) or lets it in.
    channel_.async_send(std::error_code{}, std::move(e),
                        detail::intercept(std::forward<Handler>(handler), [this](std::error_code& ec) {
                          if (!ec) {
                            count(stats_.enqueued);
                          } else if (closed_) {
                            ec = errc::end_of_stream;
                          } else if (ec == asio::experimental::channel_errc::channel_cancelled) {
                            ec = asio::error::operation_aborted;
                          }
                        }));
  }

  // Events in push order, at most `capacity` of them, as runs of events in
  // vectors: a producer's batch (`try_push_some`) is shared as one run, in
  // place; single events are moved into chunks of the ring's own. A run's
  // events are moved out as consumers take them, and the run is dropped
  // once taken (one emptied chunk is kept for the next pushes; an idle
  // stream holds no more).
  class event_ring {
   public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void push_back(event&& e) {
      if (runs_.empty() || !runs_.back().own || runs_.back().end == chunk_size) start_chunk();
      auto& tail = runs_.back();
      tail.events->push_back(std::move(e));
      ++tail.end;
      ++size_;
    }

    // Events [from, to) of `events`, left in place until taken.
    void push_run(const std::shared_ptr<std::vector<event>>& events, std::size_t from, std::size_t to) {
      runs_.push_back({events, from, to, false});
      size_ += to - from;
    }

    event pop_front() {
      auto& front = runs_.front();
      event e = std::move((*front.events)[front.next++]);
      --size_;
      if (front.next == front.end) {
        if (front.own && !spare_) {
          spare_ = std::move(front.events);
          spare_->clear();
        }
        runs_.pop_front();
      }
      return e;
    }

   private:
    static constexpr std::size_t chunk_size = 64;

    struct run {
      std::shared_ptr<std::vector<event>> events;
      std::size_t next = 0;  // the next event to take
      std::size_t end = 0;   // past the last event of the run
      bool own = false;      // a chunk of the ring's, which push_back may append to
    };

    void start_chunk() {
      auto chunk = spare_ ? std::move(spare_) : std::make_shared<std::vector<event>>();
      chunk->reserve(chunk_size);
      runs_.push_back({std::move(chunk), 0, 0, true});
    }

    std::deque<run> runs_;
    std::shared_ptr<std::vector<event>> spare_;
    std::size_t size_ = 0;
  };

  // Unbuffered: it carries an event only from a producer to a consumer that
  // waits (on an empty buffer), or a producer's that waits (on a full one).
  asio::experimental::channel<Executor, void(std::error_code, event)> channel_;
  std::size_t capacity_;
  event_ring buffer_;
  std::size_t claimed_ = 0;  // events at the buffer's front that posted completions will take
  stream_stats stats_;
  bool closed_ = false;
  std::error_code end_reason_;
  std::size_t receivers_waiting_ = 0;  // async_next operations waiting in the channel
};

/// The stream on `asio::any_io_executor`.
using event_stream = basic_event_stream<>;

}  // namespace storewatch
