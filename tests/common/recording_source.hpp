// A test source: a memory_source that records its polls and can inject
// skipped-input problems and failing wake-ups.
#pragma once

#include "fixture.hpp"

#include <chrono>
#include <vector>

namespace storewatch::test {

class recording_source {
 public:
  explicit recording_source(asio::any_io_executor executor, memory_source_options options = {})
      : executor_(executor), inner(executor, std::move(options)) {}

  template <class CompletionToken>
  auto async_poll(std::string_view cursor, std::size_t max_events, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, poll_result)>(
        [this](auto handler, std::string cursor, std::size_t max_events) {
          poll_times.push_back(std::chrono::steady_clock::now());
          cursors.push_back(cursor);
          inner.async_poll(cursor, max_events,
                           [this, h = std::move(handler)](std::error_code ec, poll_result result) mutable {
                             handed_out += result.events.size();
                             for (auto& problem : problems_to_add) result.problems.push_back(std::move(problem));
                             problems_to_add.clear();
                             std::move(h)(ec, std::move(result));
                           });
        },
        token, std::string(cursor), max_events);
  }

  template <class CompletionToken>
  auto async_wait_for_change(std::string_view cursor, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler, std::string cursor) {
          ++wake_waits;
          if (wake_error) {
            detail::post_completion(executor_, std::move(handler), wake_error);
            return;
          }
          inner.async_wait_for_change(cursor, std::move(handler));
        },
        token, std::string(cursor));
  }

  asio::any_io_executor executor_;
  memory_source inner;
  std::vector<std::chrono::steady_clock::time_point> poll_times;
  std::vector<std::string> cursors;
  std::size_t handed_out = 0;
  std::size_t wake_waits = 0;
  std::error_code wake_error;
  std::vector<source_problem> problems_to_add;
};

static_assert(waitable_source<recording_source>);

/// Collects what an error handler was told.
struct error_log {
  std::vector<std::pair<std::error_code, std::string>> entries;
  error_handler handler() {
    return [this](std::error_code ec, std::string_view message) { entries.emplace_back(ec, std::string(message)); };
  }
};

}  // namespace storewatch::test
