// Completing a handler later, never inside its initiating function.
#pragma once

#include <storewatch/detail/completion_relay.hpp>
#include <storewatch/detail/config.hpp>
#include <storewatch/detail/intercept.hpp>
#include <storewatch/diagnostics.hpp>
#include <storewatch/error.hpp>

#include <exception>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace storewatch::detail {

/// How a completion reaches its handler: `post` (always later), or
/// `dispatch` (at once when already on the handler's executor), only for a
/// caller that is itself a handler on `io_executor`, never an initiating
/// function (the completion relay's read).
enum class completion_mode { post, dispatch };

/// True when `executor` is an io_context's executor (or an
/// `any_io_executor` holding one) that this thread is running: a handler
/// for it may be called here.
template <class Executor>
bool runs_in_this_thread(const Executor& executor) {
  if constexpr (std::is_same_v<Executor, asio::io_context::executor_type>) {
    return executor.running_in_this_thread();
  } else if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
    const auto* target = executor.template target<asio::io_context::executor_type>();
    return target != nullptr && target->running_in_this_thread();
  } else {
    return false;
  }
}

/// Posts `handler(args...)` through `io_executor` (or dispatches it, see
/// `completion_mode`), to run on the handler's associated executor
/// (defaulting to `io_executor`); what is posted is allocated with the
/// handler's associated allocator, as Asio's own operations do.
template <completion_mode Mode = completion_mode::post, class IoExecutor, class Handler, class... Args>
void post_completion(const IoExecutor& io_executor, Handler&& handler, Args&&... args) {
  auto handler_executor = asio::get_associated_executor(handler, io_executor);
  const auto allocator = asio::get_associated_allocator(handler);
  if constexpr (Mode == completion_mode::dispatch) {
    if (runs_in_this_thread(handler_executor)) {
      // Called here, not through asio::dispatch: an io_context's executor
      // would catch what the handler throws and keep only the first of a
      // relay's batch (asio::multiple_exceptions); called so, it leaves the
      // relay's read handler, which posts the rest of the batch.
      std::forward<Handler>(handler)(std::forward<Args>(args)...);
      return;
    }
  }
  auto bound = asio::bind_executor(std::move(handler_executor),
                                   asio::bind_allocator(allocator, [h = std::forward<Handler>(handler),
                                                                    arguments = std::make_tuple(
                                                                        std::forward<Args>(args)...)]() mutable {
                                     std::apply(std::move(h), std::move(arguments));
                                   }));
  if constexpr (Mode == completion_mode::dispatch) {
    asio::dispatch(io_executor, std::move(bound));
  } else {
    asio::post(io_executor, std::move(bound));
  }
}

/// Where a failed operation's account goes: the object's `last_error()`
/// and, when the caller passed one, the operation's own `diagnostics`.
struct error_account {
  error_account(std::string& last_error, diagnostics* own = nullptr) : last_error_(&last_error), own_(own) {}
  /// For an object with no `last_error()`: the operation's own `diagnostics`
  /// alone, when the caller passed one.
  explicit error_account(diagnostics* own) : own_(own) {}

  /// Records how the operation ended (`message`: its error's text); run on
  /// the handler's executor just before the handler.
  void report(std::error_code ec, std::string message) const {
    if (own_) diagnostics_access::set(*own_, ec ? message : std::string());
    if (ec && last_error_) *last_error_ = std::move(message);
  }

 private:
  std::string* last_error_ = nullptr;
  diagnostics* own_ = nullptr;
};

/// As `post_completion`, completing `handler(ec, result...)` (a result or
/// none) after `account` has recorded the outcome, on the handler's
/// executor: so each failed operation's handler finds its own account, also
/// when several are pending.
template <completion_mode Mode = completion_mode::post, class IoExecutor, class Handler, class... Result>
void post_completion_with_account(const IoExecutor& io_executor, Handler&& handler, error_account account,
                                  std::error_code ec, std::string message, Result... result) {
  post_completion<Mode>(io_executor,
                        intercept(std::forward<Handler>(handler),
                                  [account, message = std::move(message)](std::error_code code,
                                                                          const Result&...) mutable {
                                    account.report(code, std::move(message));
                                  }),
                        ec, std::move(result)...);
}

/// The code and text of what an operation's work threw: a
/// `std::system_error`'s, or `errc::store_io_failed` and the text of any
/// other exception (such as the `std::invalid_argument` of a bad argument,
/// or whatever a user's callback threw).
inline std::pair<std::error_code, std::string> describe_failure(std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::system_error& error) {
    return {error.code(), error.what()};
  } catch (const std::exception& error) {
    return {make_error_code(errc::store_io_failed), error.what()};
  } catch (...) {
    return {make_error_code(errc::store_io_failed), "an exception not derived from std::exception"};
  }
}

/// `executor` holding its context's outstanding work (an io_context's
/// `run()` does not return meanwhile).
template <class Executor>
auto tracked_work(const Executor& executor) {
  return asio::prefer(executor, asio::execution::outstanding_work.tracked);
}

/// The part of an `async_blocking_call` that runs on the blocking executor
/// (or on the I/O executor, when there is none): the call, then the hand-over
/// of its completion. Members are destroyed in the reverse of their order
/// here, so `tracked`, the I/O executor's outstanding work, goes last: until
/// all the operation kept on this thread is gone (the handler's moved-from
/// remains, the call and its arguments, the executor's copies: a strand's
/// last one reaches into its io_context), that io_context's `run()` does not
/// return, and the io_context is not destroyed under it. `handler_work`,
/// the outstanding work of the handler's associated executor (as Asio's own
/// operations hold it), goes with the completion to the handler.
template <class Result, class Executor, class Handler, class Call>
struct blocking_work {
  using tracked_executor = decltype(tracked_work(std::declval<const Executor&>()));
  using handler_tracked_executor =
      decltype(tracked_work(std::declval<const asio::associated_executor_t<Handler, Executor>&>()));

  handler_tracked_executor handler_work;
  tracked_executor tracked;
  Executor executor;
  error_account account;
  completion_relay::expectation relay;
  Handler handler;
  Call call;

  void operator()() {
    std::error_code ec;
    std::string message;
    Result result{};
    try {
      result = call();
    } catch (...) {
      std::tie(ec, message) = describe_failure(std::current_exception());
    }
    auto complete = [work = std::move(handler_work), executor = executor, account = account, h = std::move(handler), ec,
                     message = std::move(message), result = std::move(result)](auto mode) mutable {
      post_completion_with_account<decltype(mode)::value>(executor, std::move(h), account, ec, std::move(message),
                                                          std::move(result));
    };
    if (relay) {
      // Run by the relay's read handler on the io_context: dispatched, so
      // the handler runs there and then, not after one more turn of the
      // event loop (an epoll_wait).
      relay.release()->deliver([complete = std::move(complete)]() mutable {
        complete(std::integral_constant<completion_mode, completion_mode::dispatch>{});
      });
    } else {
      complete(std::integral_constant<completion_mode, completion_mode::post>{});
    }
  }
};

/// The initiating function of an operation that is one blocking call:
/// runs `call()` on `blocking` (when empty, on `executor`) and completes
/// `token` through `executor` with `void(std::error_code, Result)`: its
/// result, or the code of what it threw (see `describe_failure`: whatever
/// it throws completes the operation, never leaves the thread it runs on),
/// whose text goes to `account` (see `post_completion_with_account`). While
/// the call runs elsewhere, and until all it kept there is destroyed,
/// `executor` counts it as outstanding work, so its `run()` does not return
/// before (see `blocking_work`); so does the handler's associated executor
/// until the completion reaches it. A completion from `blocking` comes back
/// through the `completion_relay` of `executor`'s context, so that
/// `blocking`'s thread never takes the io_context's lock (see there why).
template <class Result, class Executor, class Call, class CompletionToken>
auto async_blocking_call(const Executor& executor, const asio::any_io_executor& blocking, error_account account,
                         Call call, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code, Result)>(
      [executor, blocking, account](auto handler, Call call) {
        completion_relay::expectation relay;
        if (blocking) relay = completion_relay::of(executor).expect(executor);
        blocking_work<Result, Executor, decltype(handler), Call> work{
            tracked_work(asio::get_associated_executor(handler, executor)),
            tracked_work(executor),
            executor,
            account,
            std::move(relay),
            std::move(handler),
            std::move(call)};
        if (blocking) {
          asio::post(blocking, std::move(work));
        } else {
          asio::post(executor, std::move(work));
        }
      },
      token, std::move(call));
}

/// The completion signature of an operation whose coroutine yields a
/// `Result`: `void(std::error_code, Result)`, or `void(std::error_code)`
/// for `void`.
template <class Result>
struct coroutine_signature {
  using type = void(std::error_code, Result);
};
template <>
struct coroutine_signature<void> {
  using type = void(std::error_code);
};

/// A callable that calls the coroutine member `operation` of `self` with
/// `args`, moved in: the work of an `async_coroutine`.
template <class Object, class Operation, class... Args>
auto member_call(Object* self, Operation operation, Args... args) {
  return [self, operation, arguments = std::make_tuple(std::move(args)...)]() mutable {
    return std::apply([self, operation](auto&... a) { return (self->*operation)(std::move(a)...); }, arguments);
  };
}

/// The initiating function of an operation that is a coroutine: spawns
/// `work()` (an `asio::awaitable<Result>`) on `executor`, with the
/// handler's associated cancellation slot bound to it (so a cancellation
/// reaches the request or timer it awaits), and completes `token` through
/// `executor` with `coroutine_signature<Result>`: the coroutine's result, or
/// the code of what it threw (see `describe_failure`), whose text goes to
/// `account` (see `post_completion_with_account`). Never completes inside
/// the call: the coroutine starts and ends with a post. Until the
/// completion reaches the handler, its associated executor counts the
/// operation as outstanding work, as with Asio's own operations.
template <class Result, class Executor, class Work, class CompletionToken>
auto async_coroutine(const Executor& executor, error_account account, Work work, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, typename coroutine_signature<Result>::type>(
      [executor, account](auto handler, Work work) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto handler_work = tracked_work(asio::get_associated_executor(handler, executor));
        auto complete = [executor, account, busy = std::move(handler_work), h = std::move(handler)](
                            std::exception_ptr failure, auto... result) mutable {
          if (!failure) {
            post_completion_with_account(executor, std::move(h), account, {}, {}, std::move(result)...);
            return;
          }
          auto [ec, message] = describe_failure(failure);
          post_completion_with_account(executor, std::move(h), account, ec, std::move(message),
                                       decltype(result){}...);
        };
        asio::co_spawn(executor, std::move(work), asio::bind_cancellation_slot(slot, std::move(complete)));
      },
      token, std::move(work));
}

}  // namespace storewatch::detail
