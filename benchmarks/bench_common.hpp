// Helpers the benchmark programs share.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

namespace storewatch::bench {

using clock_type = std::chrono::steady_clock;

/// Seconds from `start` until now.
inline double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes on Linux.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

/// A fresh folder under the temp directory, removed with everything in it.
struct scratch_dir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("storewatch-bench-" + std::to_string(std::random_device{}()));
  scratch_dir() { std::filesystem::create_directories(path); }
  ~scratch_dir() { std::filesystem::remove_all(path); }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

}  // namespace storewatch::bench
