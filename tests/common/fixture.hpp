// Shared test helpers: run an io_context until something holds, temp dirs, thread counts.
#pragma once

#include <storewatch/storewatch.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <system_error>

#include <unistd.h>

namespace storewatch::test {

/// A bound generous enough for a loaded CI machine under sanitizers; tests
/// wait for their condition, not for this long.
inline constexpr std::chrono::seconds generous{20};

/// Runs `io` until `done()` holds or `limit` passes; returns `done()`.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration limit = generous) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  if (io.stopped()) io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(5));
    if (io.stopped()) io.restart();
  }
  return done();
}

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

/// A fresh directory under the system's temp dir, removed at scope end.
class temp_dir {
 public:
  /// Where it is made: the temp dir, or /dev/shm when that is writable (for
  /// tests that make many small stores: fsync costs nothing there).
  enum class place { temp, memory };

  explicit temp_dir(place where = place::temp) {
    std::random_device random;
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (where == place::memory && ::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    path_ = base / ("storewatch-test-" + std::to_string(random()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

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

/// An event named `name` with `data`, for tests.
inline event make_event(std::string name, std::string data, std::string id = {}) {
  event e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.id = std::move(id);
  return e;
}

}  // namespace storewatch::test
