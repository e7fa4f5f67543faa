// Shared test helpers: run an io_context until something holds or to idle,
// temp dirs (from tests/support/), thread counts, failures, events.
#pragma once

#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <storewatch/storewatch.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

namespace storewatch::test {

using test_support::generous;
using test_support::run_coroutine;
using test_support::run_until;
using test_support::temp_dir;

/// Runs `io` until it has no more work, failing the test if that takes
/// longer than `limit`. Returns how long it took.
inline std::chrono::steady_clock::duration run_to_idle(asio::io_context& io,
                                                       std::chrono::steady_clock::duration limit = generous) {
  const auto started = std::chrono::steady_clock::now();
  if (io.stopped()) io.restart();
  io.run_for(limit);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(io.stopped());
  return took;
}

/// Threads of this process, from /proc/self/task.
inline std::size_t thread_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++count;
  return count;
}

/// What a throwing call threw: its code and what().
struct failure {
  std::error_code code{};
  std::string what{};
};

/// Calls `f` and returns what it threw (code empty and a note if it threw
/// something else or nothing).
template <class F>
failure failure_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& error) {
    return {error.code(), error.what()};
  } catch (const std::exception& error) {
    return {{}, std::string("unexpected exception type: ") + error.what()};
  }
  return {{}, "no exception"};
}

/// Counts its allocations: whether an operation was allocated with the
/// handler's associated allocator.
template <class T>
struct counting_allocator {
  using value_type = T;
  std::size_t* allocations;
  explicit counting_allocator(std::size_t* count) : allocations(count) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) : allocations(other.allocations) {}
  T* allocate(std::size_t n) {
    ++*allocations;
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>{}.deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const {
    return allocations == other.allocations;
  }
};

/// An event named `name` with `data`, for tests.
inline event make_event(std::string name, std::string data, std::string id = {}) {
  event e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.id = std::move(id);
  return e;
}

}  // namespace storewatch::test
