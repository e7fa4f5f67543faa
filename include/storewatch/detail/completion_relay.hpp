// Bringing a completion from a blocking executor's thread back to an
// io_context without taking the io_context's lock on that thread.
#pragma once

#include <storewatch/detail/config.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include <sys/eventfd.h>
#include <unistd.h>

namespace storewatch::detail {

/// One per io_context (an Asio service), for the operations whose blocking
/// part runs on another executor (`blocking_executor`): their completions
/// come back through an eventfd that the io_context's reactor watches, not
/// through a post into the io_context from the pool's thread.
///
/// Why: Asio 1.22's io_context, posted to from another thread while its own
/// thread waits in epoll, wakes that thread while still holding the lock
/// the woken thread then needs (scheduler::wake_one_thread_and_unlock
/// interrupts the reactor under its mutex). The event loop's thread then
/// blocks until the pool's thread runs again: measured on most completions
/// of a stream of creates (about 3 in 4), for up to milliseconds on a busy
/// machine, and the user's timers wait with it (benchmarks/loop_stall,
/// docs/performance.md). Here the pool's thread takes no lock the event
/// loop's thread uses: it pushes onto a lock-free list and writes the
/// eventfd.
class completion_relay final : public asio::execution_context::service {
 public:
  /// The service's key.
  inline static asio::execution_context::id id;

  explicit completion_relay(asio::execution_context& context) : asio::execution_context::service(context) {}
  ~completion_relay() override { drop(ready_.exchange(nullptr)); }
  completion_relay(const completion_relay&) = delete;
  completion_relay& operator=(const completion_relay&) = delete;

  /// The relay of `executor`'s execution context (an io_context, or any
  /// other that can run I/O objects).
  template <class Executor>
  static completion_relay& of(const Executor& executor) {
    return asio::use_service<completion_relay>(asio::query(executor, asio::execution::context));
  }

  /// Delivers nothing when dropped: an operation whose work was destroyed
  /// without running (its executor shut down) is no longer expected.
  struct abandon {
    void operator()(completion_relay* relay) const {
      relay->deliver([] {});
    }
  };
  /// The relay, while it expects a completion (see `expect`).
  using expectation = std::unique_ptr<completion_relay, abandon>;

  /// Called where the operation starts (the I/O executor's side): one more
  /// completion will come through `deliver` (`expectation::release()` then
  /// `deliver`); until it has, the io_context has work (a read is pending).
  /// Empty if the relay cannot be used (no eventfd): then complete by
  /// posting.
  template <class Executor>
  expectation expect(const Executor& io_executor) {
    std::lock_guard lock(mutex_);
    if (!wake_) {
      const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd < 0) return nullptr;
      wake_.emplace(asio::any_io_executor(io_executor), fd);
      if constexpr (std::is_same_v<Executor, asio::io_context::executor_type>) {
        io_context_ = &io_executor.context();
      } else if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
        if (const auto* target = io_executor.template target<asio::io_context::executor_type>()) {
          io_context_ = &target->context();
        }
      }
    }
    ++expected_;
    if (!reading_) read_wake();
    return expectation(this);
  }

  /// Any thread: runs `complete()` on the io_context, once, inside the
  /// handler of the relay's read (so `complete` may run a handler of the
  /// io_context's at once, with `asio::dispatch`: it is never inside an
  /// initiating call). Takes no lock; makes one system call, or none while
  /// a wake-up written earlier has not been read yet: the read that takes it
  /// runs this completion too.
  template <class Complete>
  void deliver(Complete complete) {
    auto* const item = new completion<Complete>(std::move(complete));
    item->next = ready_.load(std::memory_order_relaxed);
    while (!ready_.compare_exchange_weak(item->next, item, std::memory_order_seq_cst, std::memory_order_relaxed)) {
    }
    // Pairs with on_wake's exchange: either this sees the flag cleared and
    // writes, or on_wake's take of the list comes after the push above.
    if (signalled_.exchange(true, std::memory_order_seq_cst)) return;
    wake_ups_written_.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t one = 1;
    // Cannot fail short of a counter overflow (2^64 - 1 wake-ups unread).
    [[maybe_unused]] const auto written = ::write(fd_.load(std::memory_order_acquire), &one, sizeof one);
  }

  /// How many times `deliver` wrote the eventfd (for tests and benchmarks):
  /// fewer than the deliveries when several came while a wake-up was pending.
  std::size_t wake_ups_written() const { return wake_ups_written_.load(std::memory_order_relaxed); }

 private:
  struct item_base {
    virtual ~item_base() = default;
    virtual void run() = 0;
    item_base* next = nullptr;
  };
  template <class Complete>
  struct completion final : item_base {
    explicit completion(Complete c) : complete(std::move(c)) {}
    void run() override { complete(); }
    Complete complete;
  };

  void shutdown() override {
    std::lock_guard lock(mutex_);
    wake_.reset();  // pending completions are destroyed, not run, as Asio does with its own
    fd_.store(-1, std::memory_order_release);
    drop(ready_.exchange(nullptr));
  }

  static void drop(item_base* items) {
    while (items) delete std::exchange(items, items->next);
  }

  // Under mutex_.
  void read_wake() {
    reading_ = true;
    fd_.store(wake_->native_handle(), std::memory_order_release);
    wake_->async_read_some(asio::buffer(&counter_, sizeof counter_),
                           [this](std::error_code ec, std::size_t) { on_wake(ec); });
  }

  // The completions taken by one wake-up, run in the order delivered. If
  // one throws (out of the io_context's run(), as a handler's exception
  // does: post_completion calls a handler of the io_context's own executor
  // directly, so its exception is not caught there) or stops the
  // io_context, those not run yet are posted to the io_context, each still
  // run once; the accounting is done either way.
  class batch {
   public:
    batch(completion_relay& relay, item_base* items) : relay_(relay), items_(items) {}
    batch(const batch&) = delete;
    batch& operator=(const batch&) = delete;
    ~batch() {
      const auto executor = relay_.wake_->get_executor();
      while (items_) {
        std::unique_ptr<item_base> item(std::exchange(items_, items_->next));
        asio::post(executor, [item = std::move(item)] { item->run(); });
        ++taken_;
      }
      relay_.finish(taken_);
    }
    void run() {
      // Once a completion stopped the io_context, the rest wait for its next
      // run() (posted by the destructor), as posted completions would.
      while (items_ && !(relay_.io_context_ != nullptr && relay_.io_context_->stopped())) {
        std::unique_ptr<item_base> item(std::exchange(items_, items_->next));
        ++taken_;
        item->run();
      }
    }

   private:
    completion_relay& relay_;
    item_base* items_;
    std::size_t taken_ = 0;
  };

  void on_wake(std::error_code ec) {
    if (ec == asio::error::operation_aborted) return;  // shut down
    // (Another error, which an eventfd read does not give, is a wake-up too.)
    // The flag first: a completion pushed after the take below writes
    // again (see deliver).
    signalled_.exchange(false, std::memory_order_seq_cst);
    // Newest first on the list: reversed, they run in the order delivered.
    item_base* items = nullptr;
    for (auto* taken = ready_.exchange(nullptr, std::memory_order_seq_cst); taken;) {
      auto* const next = taken->next;
      taken->next = items;
      items = taken;
      taken = next;
    }
    batch(*this, items).run();
  }

  // After a wake-up's `ran` completions: reads again while more are expected.
  void finish(std::size_t ran) {
    std::lock_guard lock(mutex_);
    expected_ -= ran;
    reading_ = false;
    if (expected_ > 0 && wake_) read_wake();
  }

  std::mutex mutex_;  // the I/O side's state below; never taken by a deliverer
  std::optional<asio::posix::stream_descriptor> wake_;
  asio::io_context* io_context_ = nullptr;  // the context, when an io_context's executor made wake_
  std::atomic<int> fd_{-1};
  std::uint64_t counter_ = 0;
  std::size_t expected_ = 0;
  bool reading_ = false;
  std::atomic<item_base*> ready_{nullptr};
  std::atomic<bool> signalled_{false};  // a wake-up written and not yet taken by on_wake
  std::atomic<std::size_t> wake_ups_written_{0};
};

}  // namespace storewatch::detail
