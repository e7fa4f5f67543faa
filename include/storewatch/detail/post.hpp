// Completing a handler later, never inside its initiating function.
#pragma once

#include <storewatch/detail/config.hpp>

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

}  // namespace storewatch::detail
