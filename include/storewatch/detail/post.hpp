// Completing a handler later, never inside its initiating function.
#pragma once

#include <storewatch/detail/config.hpp>

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

/// The initiating function of an operation that is one blocking call:
/// runs `call()` on `blocking` (when empty, on `executor`) and completes
/// `token` through `executor` with `void(std::error_code, Result)`: its
/// result, or the code of the `std::system_error` it threw. That error's
/// text is stored in `last_error` just before the handler runs, on the
/// handler's executor, so each failed operation's handler finds its own
/// account there, also when several are pending. While the call runs
/// elsewhere, `executor` counts it as outstanding work, so its `run()` does
/// not return before the completion.
template <class Result, class Executor, class Call, class CompletionToken>
auto async_blocking_call(const Executor& executor, const asio::any_io_executor& blocking, std::string& last_error,
                         Call call, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::error_code, Result)>(
      [executor, blocking, &last_error](auto handler, Call call) {
        auto work = [executor, &last_error, h = std::move(handler), call = std::move(call),
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
          auto handler_executor = asio::get_associated_executor(h, executor);
          asio::post(executor, asio::bind_executor(std::move(handler_executor),
                                                   [&last_error, h = std::move(h), ec, message = std::move(message),
                                                    result = std::move(result)]() mutable {
                                                     if (ec) last_error = std::move(message);
                                                     std::move(h)(ec, std::move(result));
                                                   }));
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
