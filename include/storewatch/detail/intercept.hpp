// A completion handler that runs a step before the user's handler, keeping
// every association (executor, allocator, cancellation slot) of the original.
#pragma once

#include <storewatch/detail/config.hpp>

#include <utility>

namespace storewatch::detail {

template <class Handler, class Step>
struct intercept_handler {
  Handler handler;
  Step step;

  template <class... Args>
  void operator()(Args... args) {
    step(args...);
    std::move(handler)(std::move(args)...);
  }
};

template <class Handler, class Step>
intercept_handler<std::decay_t<Handler>, Step> intercept(Handler&& handler, Step step) {
  return {std::forward<Handler>(handler), std::move(step)};
}

}  // namespace storewatch::detail

template <template <typename, typename> class Associator, class Handler, class Step, class DefaultCandidate>
struct asio::associator<Associator, storewatch::detail::intercept_handler<Handler, Step>, DefaultCandidate> {
  using type = typename Associator<Handler, DefaultCandidate>::type;

  static type get(const storewatch::detail::intercept_handler<Handler, Step>& h,
                  const DefaultCandidate& c = DefaultCandidate()) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};
