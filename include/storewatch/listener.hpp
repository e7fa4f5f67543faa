/// \file
/// `event_listener`: callbacks over a poller and a stream, with optional checkpoint.
#pragma once

#include <storewatch/checkpoint.hpp>
#include <storewatch/detail/checkpoint_cadence.hpp>
#include <storewatch/detail/config.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/poller.hpp>
#include <storewatch/source.hpp>
#include <storewatch/stats.hpp>
#include <storewatch/stream.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch {

/// Which events a handler wants. An empty member matches everything.
struct event_filter {
  std::vector<std::string> names{};  ///< event names to accept, e.g. {"SHARE", "DELETE"}
  std::string prefix{};              ///< accept only events whose data (the versioned path) starts with this

  /// True when `e`'s name is one of `names` and its data starts with `prefix`.
  bool matches(const event& e) const {
    if (!names.empty() && std::find(names.begin(), names.end(), e.name) == names.end()) return false;
    return std::string_view(e.data).starts_with(prefix);
  }
};

/// Identifies a handler added with `add_event_listener`.
using listener_id = std::uint64_t;

/// Options of an event listener.
struct listener_options {
  /// How the poller reads the source. Its `on_error` is replaced by the
  /// listener's `on_error`.
  poller_options poller{};
  /// Events buffered between the poller and the handlers.
  std::size_t capacity = basic_event_stream<>::default_capacity;
  /// A checkpoint file: resume after the last delivered event, and save
  /// progress. Without one, or while the file does not exist yet, the
  /// listener starts at `start_cursor` (and `start()` saves that position
  /// to the new file first). The listener locks it: see `checkpoint`.
  std::optional<std::filesystem::path> checkpoint{};
  /// Where to start when there is no checkpoint file (a source cursor;
  /// empty: the source's beginning).
  std::string start_cursor{};
  /// Save the checkpoint after this many deliveries at most; it is also
  /// saved whenever the handlers have caught up, and when delivery ends
  /// after `stop()`. After a crash, at most this many events can be
  /// delivered again.
  std::size_t checkpoint_every = 256;
  /// Where checkpoint saves (a file write and fsyncs) run: an executor you
  /// own, say an `asio::thread_pool`'s, so that the listener's executor goes
  /// on delivering events and serving other work meanwhile. Saves then run
  /// in the background, one at a time, each of the state as it was when it
  /// began; delivery after `stop()` ends once the last one is written. Empty
  /// (the default): saves run on the listener's executor, which waits for
  /// them. Either way the first save of a new checkpoint file, in `start()`,
  /// is made by `start()` itself.
  asio::any_io_executor blocking_executor{};
  /// Where errors go (poll failures, skipped bad input, handler exceptions,
  /// checkpoint failures); empty means one line on stderr each.
  error_handler on_error{};
};

/// Calls handlers for the events of a source, in the source's order.
///
/// Handlers run one at a time on the listener's executor, in the order they
/// were added. One that throws is reported to `on_error` and the others
/// still get the event. Handlers may add or remove handlers (their own
/// included); the change applies from the next event. `add_event_listener`,
/// `remove_event_listener`, `remove_all_event_listeners`, `listener_count`
/// and `stats` may be called from any thread; `start`, `stop`, `running` and
/// `saved_checkpoint` on the listener's executor. The poll loop and
/// delivery run on that executor too, and so do checkpoint saves (blocking,
/// with fsync) unless `listener_options::blocking_executor` names another.
///
/// Keep the listener alive until its stop has run through: `running()`
/// turns false when delivery ends, possibly before the poll loop has; an
/// io_context whose `run()` has returned has finished both.
template <class Executor = asio::any_io_executor>
class basic_event_listener {
 public:
  /// The executor type; handlers and the poll loop run on it.
  using executor_type = Executor;
  /// How a handler is stored, whichever form it was added in.
  using handler_type = std::function<void(const event&)>;

  /// The listener type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_event_listener<OtherExecutor>;  ///< the listener on `OtherExecutor`
  };

  /// A listener for `source`, which must outlive it, on `executor`. Loads the
  /// checkpoint when `options` names one. Throws `std::system_error` when
  /// that file exists but cannot be read (`errc::checkpoint_failed`) or is
  /// not a checkpoint (`errc::invalid_cursor`).
  template <event_source Source>
  basic_event_listener(const executor_type& executor, Source& source, listener_options options = {})
      : options_(std::move(options)), stream_(executor, options_.capacity), saves_done_(executor) {
    if (!options_.on_error) options_.on_error = print_error;
    options_.poller.on_error = options_.on_error;
    if (options_.checkpoint) checkpoint_.emplace(*options_.checkpoint);
    poller_ = std::make_unique<poller_model<Source>>(source, stream_, options_.poller);
  }

  basic_event_listener(const basic_event_listener&) = delete;
  basic_event_listener& operator=(const basic_event_listener&) = delete;

  /// The executor given at construction.
  executor_type get_executor() noexcept { return stream_.get_executor(); }

  /// Adds `handler`, called for each event `filter` accepts. `handler` takes
  /// `(const event&)` or `(std::string_view name, std::string_view data)`,
  /// and must be copyable (it is kept in a `std::function`). Returns its id.
  /// Thread-safe.
  template <class Handler>
  listener_id add_event_listener(Handler handler, event_filter filter = {}) {
    handler_type call;
    if constexpr (std::invocable<Handler&, const event&>) {
      call = std::move(handler);
    } else {
      static_assert(std::invocable<Handler&, std::string_view, std::string_view>,
                    "a handler takes (const storewatch::event&) or (std::string_view name, std::string_view data)");
      call = [h = std::move(handler)](const event& e) mutable { h(std::string_view(e.name), std::string_view(e.data)); };
    }
    std::lock_guard lock(handlers_mutex_);
    const auto id = ++last_id_;
    auto next = std::make_shared<handler_list>(*handlers_);
    next->push_back({id, std::move(filter), std::make_shared<handler_type>(std::move(call))});
    replace_handlers(std::move(next));
    return id;
  }

  /// Removes the handler `id`; returns false if there was none. A delivery
  /// already under way may still call it for that event (the handler is
  /// destroyed after that delivery; at once when none is under way).
  /// Thread-safe.
  bool remove_event_listener(listener_id id) {
    std::lock_guard lock(handlers_mutex_);
    auto next = std::make_shared<handler_list>(*handlers_);
    const auto removed = std::erase_if(*next, [id](const entry& e) { return e.id == id; });
    replace_handlers(std::move(next));
    return removed > 0;
  }

  /// Removes every handler (as `remove_event_listener` does one). Thread-safe.
  void remove_all_event_listeners() {
    std::lock_guard lock(handlers_mutex_);
    replace_handlers(std::make_shared<handler_list>());
  }

  /// How many handlers are attached. Thread-safe.
  std::size_t listener_count() const {
    std::lock_guard lock(handlers_mutex_);
    return handlers_->size();
  }

  /// Starts polling and delivering, from the checkpoint when its file
  /// exists, else from `start_cursor`. Returns at once, except that a
  /// listener with a checkpoint that has no file yet first saves its
  /// starting position there (blocking for the fsync), so that a restart
  /// after a kill at any later moment resumes from it, not from wherever
  /// the source would begin. Throws `std::system_error`
  /// (`errc::checkpoint_failed`, naming the file) when that save fails; the
  /// listener is then not started, and `start()` may be called again.
  /// A listener starts once: later calls do nothing; to resume later, make a
  /// new one with the same checkpoint.
  void start() {
    if (started_) return;
    checkpoint_state from{options_.start_cursor, {}};
    if (checkpoint_) {
      if (detail::checkpoint_cadence::save_at_start(checkpoint_->exists())) {
        checkpoint_->reset(from);
        checkpoint_->save();
      } else {
        from = checkpoint_->state();
      }
    }
    started_ = true;
    running_ = true;
    poller_->start(std::move(from));
    asio::co_spawn(stream_.get_executor(), deliver_loop(), [](std::exception_ptr error) {
      if (error) std::rethrow_exception(error);
    });
  }

  /// Stops polling and delivering promptly and saves the checkpoint. Returns
  /// at once; delivery ends shortly after, on the listener's executor, after
  /// the handlers in progress have returned, and the checkpoint is saved then.
  /// Events polled but not yet delivered are not marked delivered, so a
  /// listener resuming from the checkpoint gets them. Does nothing before
  /// `start()` or when already stopping.
  void stop() {
    if (!running_ || stopping_) return;
    stopping_ = true;
    poller_->stop();
  }

  /// True from `start()` until delivery has ended.
  bool running() const noexcept { return running_; }

  /// The counters: delivered, queue depth, lag, polls, retries, errors.
  /// May be called from any thread.
  stats_snapshot stats() const noexcept { return stream_.stats().snapshot(); }

  /// The checkpoint, when the options named one. Delivery updates it.
  const std::optional<checkpoint>& saved_checkpoint() const noexcept { return checkpoint_; }

 private:
  struct entry {
    listener_id id;
    event_filter filter;
    std::shared_ptr<handler_type> handler;
  };
  using handler_list = std::vector<entry>;

  struct poller_handle {
    virtual ~poller_handle() = default;
    virtual void start(checkpoint_state from) = 0;
    virtual void stop() = 0;
  };

  template <class Source>
  struct poller_model final : poller_handle {
    poller_model(Source& source, basic_event_stream<Executor>& stream, const poller_options& options)
        : loop(source, stream, options) {}
    void start(checkpoint_state from) override { loop.start(std::move(from)); }
    void stop() override { loop.stop(); }
    storewatch::poller<Source, Executor> loop;
  };

  // With handlers_mutex_ held.
  void replace_handlers(std::shared_ptr<const handler_list> next) {
    handlers_ = std::move(next);
    handlers_version_.fetch_add(1, std::memory_order_release);
  }

  std::shared_ptr<const handler_list> current_handlers() const {
    std::lock_guard lock(handlers_mutex_);
    return handlers_;
  }

  // The delivery loop's copy of the handler list, taken again only when a
  // change was made since: no lock and no reference count per event, and
  // still a change applies from the next event.
  struct handler_snapshot {
    std::shared_ptr<const handler_list> list;
    std::uint64_t version = 0;
  };

  const handler_list& handlers_now(handler_snapshot& snapshot) const {
    const auto version = handlers_version_.load(std::memory_order_acquire);
    if (!snapshot.list || version != snapshot.version) {
      snapshot.list = current_handlers();  // at least as new as `version`
      snapshot.version = version;
    }
    return *snapshot.list;
  }

  void deliver(const handler_list& handlers, const event& e) {
    for (const auto& [id, filter, handler] : handlers) {
      if (!filter.matches(e)) continue;
      try {
        (*handler)(e);
      } catch (const std::exception& error) {
        report_handler_error(id, e, error.what());
      } catch (...) {
        report_handler_error(id, e, "an exception not derived from std::exception");
      }
    }
  }

  void report_handler_error(listener_id id, const event& e, std::string_view what) {
    stream_stats::add(stream_.stats().handler_errors);
    options_.on_error(errc::handler_failed, "handler " + std::to_string(id) + " threw on " + e.name + " " +
                                                detail::quote(e.data) + " (id " + e.id + "): " + std::string(what));
  }

  /// Saves the checkpoint: here and now, or, with a blocking executor, in
  /// the background (a save asked for while one is under way follows it).
  void save_checkpoint() {
    if (options_.blocking_executor) {
      if (save_in_flight_) {
        save_wanted_ = true;
      } else {
        start_background_save();
      }
      return;
    }
    try {
      checkpoint_->save();
    } catch (const std::system_error& error) {
      options_.on_error(error.code(), error.what());
    } catch (const std::exception& error) {
      options_.on_error(errc::checkpoint_failed, error.what());
    }
  }

  /// Writes a copy of the state on the blocking executor; the completion
  /// comes back to the listener's executor.
  void start_background_save() {
    save_in_flight_ = true;
    save_wanted_ = false;
    const auto changes = checkpoint_->unsaved();
    detail::async_blocking_call<bool>(
        stream_.get_executor(), options_.blocking_executor, detail::error_account(save_error_),
        [file = checkpoint_->file(), state = checkpoint_->state()] {
          write_checkpoint(file, state);
          return true;
        },
        [this, changes](std::error_code ec, bool) {
          save_in_flight_ = false;
          if (ec) {
            options_.on_error(ec, save_error_);
          } else {
            checkpoint_->saved(changes);
          }
          if (save_wanted_) start_background_save();
          saves_done_.cancel();
        });
  }

  /// Waits until no background save is under way.
  asio::awaitable<void> saves_finished() {
    while (save_in_flight_) {
      saves_done_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await saves_done_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
  }

  asio::awaitable<void> deliver_loop() {
    const detail::checkpoint_cadence cadence{options_.checkpoint_every};
    handler_snapshot handlers;
    // Events already buffered are taken without a completion each, up to
    // `burst` in a row; then the loop yields to other work on the executor
    // (a co_await of async_next would not: it takes a buffered event
    // without suspending), or awaits the next event when none is buffered.
    constexpr std::size_t burst = 64;
    std::size_t taken_in_row = 0;
    event e;
    while (!stopping_) {
      if (++taken_in_row > burst) {
        taken_in_row = 0;
        // Not held across the yield, as not while waiting (below).
        handlers.list.reset();
        co_await asio::post(stream_.get_executor(), asio::use_awaitable);
        continue;
      }
      if (!stream_.try_next(e)) {
        taken_in_row = 0;
        // Not held while waiting: a handler removed meanwhile goes (with
        // what it holds) when its removal returns, not at the next event.
        handlers.list.reset();
        auto [ec, next] = co_await stream_.async_next(asio::experimental::as_tuple(asio::use_awaitable));
        if (ec) break;
        e = std::move(next);
      }
      if (cadence.on_taken(stopping_) == detail::taken_event::leave_undelivered) {
        // The stream counted it as delivered when it handed it over.
        stream_.stats().delivered.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
      deliver(handlers_now(handlers), e);
      if (checkpoint_) {
        checkpoint_->record(e);
        if (cadence.save_after_delivery(checkpoint_->unsaved(), !stream_.ready())) save_checkpoint();
      }
    }
    if (checkpoint_) {
      co_await saves_finished();
      if (cadence.save_at_end(checkpoint_->unsaved())) save_checkpoint();
      co_await saves_finished();
    }
    poller_->stop();
    running_ = false;
  }

  listener_options options_;
  basic_event_stream<Executor> stream_;
  // Cancelled when a background checkpoint save completes.
  asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>
      saves_done_;
  std::optional<checkpoint> checkpoint_;
  std::unique_ptr<poller_handle> poller_;
  mutable std::mutex handlers_mutex_;
  std::shared_ptr<const handler_list> handlers_ = std::make_shared<handler_list>();
  std::atomic<std::uint64_t> handlers_version_{0};  // counts the changes to handlers_
  listener_id last_id_ = 0;
  bool started_ = false;
  bool running_ = false;
  bool stopping_ = false;
  bool save_in_flight_ = false;  // a background checkpoint save is under way
  bool save_wanted_ = false;     // another is to follow it
  std::string save_error_;       // the failed background save's message
};

/// The listener on `asio::any_io_executor`.
using event_listener = basic_event_listener<>;

}  // namespace storewatch
