/// \file
/// What the poller needs from a source of events.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/event.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace storewatch {

/// Something wrong in the source's data that the source skipped, such as a
/// corrupt record; `message` names where (file, offset, line).
struct source_problem {
  std::error_code code{};  ///< what kind of problem, e.g. `errc::corrupt_record`
  std::string message{};   ///< what and where, for the error handler
};

/// What one poll returns.
struct poll_result {
  std::vector<event> events{};            ///< in the source's order, at most the requested number
  std::string next_cursor{};              ///< where the next poll starts
  std::vector<source_problem> problems{};  ///< skipped bad input, reported by the poller
};

/// A source of events: `async_poll(cursor, max_events, token)` with
/// completion signature `void(std::error_code, poll_result)`, for any
/// completion token (a plain callback, `use_awaitable`, `deferred`, ...).
///
/// Cursors are opaque text: the empty cursor means "from the start"; a
/// source must accept any cursor it returned in `next_cursor`, also after a
/// restart of the process. A cursor it cannot use the built-in sources
/// report in `poll_result::problems` with `errc::invalid_cursor`, answer
/// with a GAP event and read from their oldest events; they do not fail the
/// poll, which the poller would retry with the same cursor. When events a
/// cursor points to are gone, the source returns a GAP event saying so
/// rather than skipping silently.
namespace detail {

/// A completion handler that has its signature and nothing else: the
/// concepts below pass one to check that an initiating function takes any
/// completion token, not only `use_awaitable`.
template <class... Args>
struct handler_archetype {
  void operator()(Args...) {}
};

}  // namespace detail

template <class Source>
concept event_source = requires(Source& source, std::string_view cursor, std::size_t max_events,
                                detail::handler_archetype<std::error_code, poll_result> handler) {
  source.async_poll(cursor, max_events, handler);
  { source.async_poll(cursor, max_events, asio::use_awaitable) } -> std::same_as<asio::awaitable<poll_result>>;
};

/// A source that can also tell when it may have new events:
/// `async_wait_for_change(cursor, token)` with signature
/// `void(std::error_code)` completes once events past `cursor` may exist.
/// It is a hint; the poller still polls at its interval, so a missed
/// wake-up delays an event but never loses it. It must support per-operation
/// cancellation.
template <class Source>
concept waitable_source = event_source<Source> && requires(Source& source, std::string_view cursor,
                                                           detail::handler_archetype<std::error_code> handler) {
  source.async_wait_for_change(cursor, handler);
  { source.async_wait_for_change(cursor, asio::use_awaitable) } -> std::same_as<asio::awaitable<void>>;
};

/// A waitable source whose wake-ups may be trusted to stand in for most of
/// the interval's polls: `poll_interval(configured)` says how long a poller
/// whose own interval is `configured` should wait for a wake-up before it
/// polls anyway. Asked before each wait, so the answer may change (an S3
/// journal source answers its `hinted_poll_interval` while its hints are
/// live, `configured` otherwise); a source that stops being able to wake
/// the poller must complete the pending wait, so that the next one is
/// asked again. Only a poller that waits for wake-ups asks.
template <class Source>
concept paced_source = waitable_source<Source> && requires(const Source& source, std::chrono::milliseconds configured) {
  { source.poll_interval(configured) } -> std::same_as<std::chrono::milliseconds>;
};

}  // namespace storewatch
