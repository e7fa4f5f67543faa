// Running an io_context from a test or a benchmark: until a condition
// holds, or until a coroutine ends; and bounded waits on conditions that
// other processes or threads make true. Every wait has a bound: nothing
// sleeps for a fixed time and hopes.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace storewatch::test_support {

using steady = std::chrono::steady_clock;

/// A bound generous enough for a loaded 2-core machine under sanitizers;
/// callers wait for their condition, not for this long.
inline constexpr std::chrono::seconds generous{20};

/// What `run_until` does when `io` runs out of work before `done()` holds.
enum class when_idle {
  keep_waiting,  ///< go on until the limit: another thread or process may still act
  give_up,       ///< return false at once: nothing left could make `done()` hold
};

/// Runs `io` until `done()` holds (checked after every handler) or `limit`
/// passes; returns `done()`.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done, steady::duration limit = generous,
                      when_idle idle = when_idle::keep_waiting) {
  const auto deadline = steady::now() + limit;
  if (io.stopped()) io.restart();
  while (!done()) {
    const auto left = deadline - steady::now();
    if (left <= steady::duration::zero()) return done();
    if (io.run_one_for(std::min<steady::duration>(left, std::chrono::milliseconds(5))) == 0 && io.stopped()) {
      if (idle == when_idle::give_up) return done();
      io.restart();
    }
  }
  return true;
}

namespace internal {

template <class T>
struct awaitable_value;
template <class T, class Executor>
struct awaitable_value<asio::awaitable<T, Executor>> {
  using type = T;
};

/// The value type of an awaitable, or of the awaitable a callable returns.
template <class Work>
using work_value_t = typename awaitable_value<typename std::conditional_t<
    std::is_invocable_v<Work>, std::invoke_result<Work>, std::type_identity<std::decay_t<Work>>>::type>::type;

}  // namespace internal

/// Runs `work` on `io` to its end (within `limit`) and returns its value,
/// or rethrows what it threw. `work` is an `asio::awaitable<T>`, or a
/// callable returning one (pass a lambda coroutine this way, not called:
/// co_spawn then keeps the lambda, and with it its captures, alive).
/// Throws std::runtime_error when `limit` passes first.
template <class Work>
internal::work_value_t<Work> run_coroutine(asio::io_context& io, Work work, steady::duration limit = generous) {
  using value_type = internal::work_value_t<Work>;
  // Shared with the completion handler, which may still run after a timeout.
  struct outcome {
    bool done = false;
    std::exception_ptr failure;
    std::optional<std::conditional_t<std::is_void_v<value_type>, bool, value_type>> value;
  };
  auto state = std::make_shared<outcome>();
  if constexpr (std::is_void_v<value_type>) {
    asio::co_spawn(io, std::move(work), [state](std::exception_ptr thrown) {
      state->failure = thrown;
      state->done = true;
    });
  } else {
    asio::co_spawn(io, std::move(work), [state](std::exception_ptr thrown, value_type result) {
      state->failure = thrown;
      if (!thrown) state->value.emplace(std::move(result));
      state->done = true;
    });
  }
  if (!run_until(io, [&] { return state->done; }, limit)) {
    throw std::runtime_error("a coroutine did not finish within " +
                             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(limit).count()) + " s");
  }
  if (state->failure) std::rethrow_exception(state->failure);
  if constexpr (!std::is_void_v<value_type>) return std::move(*state->value);
}

/// Waits until `condition()` holds or `limit` passes; returns
/// `condition()`. Between checks it calls `meanwhile` (e.g. reading child
/// processes' output), or sleeps 2 ms when there is none.
inline bool wait_for(const std::function<bool()>& condition, steady::duration limit = generous,
                     const std::function<void()>& meanwhile = {}) {
  const auto deadline = steady::now() + limit;
  while (!condition()) {
    if (steady::now() > deadline) return condition();
    if (meanwhile) {
      meanwhile();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  return true;
}

}  // namespace storewatch::test_support
