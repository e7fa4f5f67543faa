// A fresh folder for a test or a benchmark, removed with what it holds.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

#include <unistd.h>

namespace storewatch::test_support {

/// A fresh directory under the system's temp dir, removed at scope end.
class temp_dir {
 public:
  /// Where it is made: the temp dir, or /dev/shm when that is writable (for
  /// tests that make many small stores: fsync costs nothing there).
  enum class place { temp, memory };

  /// Makes "<base>/<prefix><random>-<random>".
  explicit temp_dir(place where = place::temp, const std::string& prefix = "storewatch-test-") {
    std::random_device random;
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (where == place::memory && ::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    path_ = base / (prefix + std::to_string(random()) + "-" + std::to_string(random()));
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

}  // namespace storewatch::test_support
