// The tool's small synchronous layer over Asio: each command starts an
// asynchronous store or source operation and runs the io_context until it
// has completed, so the commands read as straight-line code.
#pragma once

#include <storewatch/storewatch.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace storewatch::cli {

/// A store operation that failed: its error code and the store's
/// `last_error()` (which names the file, user or request).
struct store_failure : std::runtime_error {
  store_failure(std::error_code code, const std::string& what) : std::runtime_error(what), code(code) {}
  std::error_code code;
};

/// Runs `io` until it has run `done()` true. Every pending operation keeps
/// work on `io`, so it does not run dry before.
inline void run_until(asio::io_context& io, const std::function<bool()>& done) {
  io.restart();
  while (!done()) {
    if (io.run_one() == 0 && !done()) {
      throw std::logic_error("the event loop ran out of work before an operation ended");
    }
  }
}

/// Starts an asynchronous operation with `start(handler)` and runs `io`
/// until it completes; returns its result, or throws `store_failure` with
/// `last_error()`. Works for any store or source: the commands below are
/// written once for both kinds of store.
template <class Result, class Start, class LastError>
Result complete(asio::io_context& io, Start start, LastError last_error) {
  std::optional<std::pair<std::error_code, Result>> outcome;
  start([&outcome](std::error_code ec, Result result) { outcome.emplace(ec, std::move(result)); });
  run_until(io, [&] { return outcome.has_value(); });
  if (outcome->first) {
    const std::string what = last_error();
    throw store_failure(outcome->first, what.empty() ? outcome->first.message() : what);
  }
  return std::move(outcome->second);
}

/// Says on stderr what a poll found wrong and read past (a corrupt record,
/// an unreadable epoch file), as the tail's poller does for each poll.
inline void report_problem(std::string_view message) {
  std::fprintf(stderr, "storewatch: %.*s\n", static_cast<int>(message.size()), message.data());
}

/// Reports each of `batch`'s problems (`report_problem`): for reads whose
/// cursor goes on, so a problem a source reports once is not lost.
inline void report_problems(const poll_result& batch) {
  for (const auto& problem : batch.problems) report_problem(problem.message);
}

/// One poll of `source`, run to its end.
template <class Source>
poll_result poll_once(asio::io_context& io, Source& source, const std::string& cursor, std::size_t max_events) {
  return complete<poll_result>(
      io, [&](auto handler) { source.async_poll(cursor, max_events, std::move(handler)); },
      [&source] { return source.last_error(); });
}

/// Runs the coroutine `work` on `io` to its end; returns its value or
/// rethrows what it threw.
template <class T>
T run_coroutine(asio::io_context& io, asio::awaitable<T> work) {
  std::optional<std::pair<std::exception_ptr, std::optional<T>>> outcome;
  asio::co_spawn(io, std::move(work), [&outcome](std::exception_ptr thrown, T result) {
    outcome.emplace(thrown, thrown ? std::nullopt : std::optional<T>(std::move(result)));
  });
  run_until(io, [&] { return outcome.has_value(); });
  if (outcome->first) std::rethrow_exception(outcome->first);
  return std::move(*outcome->second);
}

}  // namespace storewatch::cli
