// Completing a handler later, never inside its initiating function.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/intercept.hpp>
#include <storewatch/diagnostics.hpp>

#include <string>
#include <system_error>
#include <tuple>
#include <utility>

namespace storewatch::detail {

/// Posts `handler(args...)` through `io_executor`, to run on the handler's
/// associated executor (defaulting to `io_executor`).
template <class IoExecutor, class Handler, class... Args>
void post_completion(const IoExecutor& io_executor, Handler&& handler, Args&&... args) {
  auto handler_executor = asio::get_associated_executor(handler, io_executor);
  asio::post(io_executor,
             asio::bind_executor(std::move(handler_executor),
                                 [h = std::forward<Handler>(handler),
                                  arguments = std::make_tuple(std::forward<Args>(args)...)]() mutable {
                                   std::apply(std::move(h), std::move(arguments));
                                 }));
}

/// Where a failed operation's account goes: the object's `last_error()`
/// and, when the caller passed one, the operation's own `diagnostics`.
struct error_account {
  error_account(std::string& last_error, diagnostics* own = nullptr) : last_error_(&last_error), own_(own) {}

  /// Records how the operation ended (`message`: its error's text); run on
  /// the handler's executor just before the handler.
  void report(std::error_code ec, std::string message) const {
    if (own_) diagnostics_access::set(*own_, ec ? message : std::string());
    if (ec) *last_error_ = std::move(message);
  }

 private:
  std::string* last_error_;
  diagnostics* own_;
};

/// As `post_completion`, completing `handler(ec, result)` after `account`
/// has recorded the outcome, on the handler's executor: so each failed
/// operation's handler finds its own account, also when several are pending.
template <class IoExecutor, class Handler, class Result>
void post_completion_with_account(const IoExecutor& io_executor, Handler&& handler, error_account account,
                                  std::error_code ec, std::string message, Result result) {
  post_completion(io_executor,
                  intercept(std::forward<Handler>(handler),
                            [account, message = std::move(message)](std::error_code code, const Result&) mutable {
                              account.report(code, std::move(message));
                            }),
                  ec, std::move(result));
}

/// The initiating function of an operation that is one blocking call:
/// runs `call()` on `blocking` (when empty, on `executor`) and completes
/// `token` through `executor` with `void(std::error_code, Result)`: its
/// result, or the code of the `std::system_error` it threw, whose text goes
/// to `account` (see `post_completion_with_account`). While the call runs
/// elsewhere, `executor` counts it as outstanding work, so its `run()` does
/// not return before the completion.
template <class Result, class Executor, class Call, class CompletionToken>
auto async_blocking_call(const Executor& executor, const asio::any_io_executor& blocking, error_account account,
                         Call call, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code, Result)>(
      [executor, blocking, account](auto handler, Call call) {
        auto work = [executor, account, h = std::move(handler), call = std::move(call),
                     tracked = asio::prefer(executor, asio::execution::outstanding_work.tracked)]() mutable {
          std::error_code ec;
          std::string message;
          Result result{};
          try {
            result = call();
          } catch (const std::system_error& error) {
            ec = error.code();
            message = error.what();
          }
          post_completion_with_account(executor, std::move(h), account, ec, std::move(message), std::move(result));
        };
        if (blocking) {
          asio::post(blocking, std::move(work));
        } else {
          asio::post(executor, std::move(work));
        }
      },
      token, std::move(call));
}

}  // namespace storewatch::detail
