// Fault injection for tests, through the library's test seams (compiled
// with STOREWATCH_TESTING): the system calls of
// include/storewatch/detail/sys.hpp (make the n-th matching call fail with
// an error number, make reads or writes short, skew the store's clock) and
// the directory source's opening of directories.
#pragma once

#include <storewatch/detail/sys.hpp>
#include <storewatch/source/directory.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch::test {

using fault_call = storewatch::detail::sys::call;

inline std::string_view call_name(fault_call c) {
  switch (c) {
    case fault_call::open: return "open";
    case fault_call::read: return "read";
    case fault_call::write: return "write";
    case fault_call::fsync: return "fsync";
    case fault_call::link: return "link";
    case fault_call::rename: return "rename";
    case fault_call::unlink: return "unlink";
    case fault_call::mkdir: return "mkdir";
    case fault_call::list: return "list";
    case fault_call::truncate: return "truncate";
  }
  return "?";
}

/// A set of fault rules, installed for its lifetime. Each rule matches a
/// call kind on paths containing a substring; it lets `skip` matching calls
/// through, then acts on the next `times` of them (negative: all).
class fault_plan final : public storewatch::detail::sys::fault_injector {
 public:
  fault_plan() { storewatch::detail::sys::injector.store(this, std::memory_order_release); }
  ~fault_plan() override { storewatch::detail::sys::injector.store(nullptr, std::memory_order_release); }
  fault_plan(const fault_plan&) = delete;
  fault_plan& operator=(const fault_plan&) = delete;

  /// Fails matching calls with `error` (an errno value).
  fault_plan& fail(fault_call what, std::string path_part, int error, int times = 1, int skip = 0) {
    std::lock_guard lock(mutex_);
    rules_.push_back({what, std::move(path_part), {error, static_cast<std::size_t>(-1)}, skip, times});
    return *this;
  }

  /// Lets matching reads or writes move at most `max_bytes` per call.
  fault_plan& shorten(fault_call what, std::string path_part, std::size_t max_bytes, int times = -1) {
    std::lock_guard lock(mutex_);
    rules_.push_back({what, std::move(path_part), {0, max_bytes}, 0, times});
    return *this;
  }

  /// Removes every rule.
  void clear() {
    std::lock_guard lock(mutex_);
    rules_.clear();
  }

  /// How many calls a rule acted on.
  std::size_t fired() const {
    std::lock_guard lock(mutex_);
    return fired_;
  }

  storewatch::detail::sys::verdict decide(fault_call what, const char* path) override {
    std::lock_guard lock(mutex_);
    for (auto& rule : rules_) {
      if (rule.what != what || std::string_view(path).find(rule.path_part) == std::string_view::npos) continue;
      if (rule.skip > 0) {
        --rule.skip;
        continue;
      }
      if (rule.times == 0) continue;
      if (rule.times > 0) --rule.times;
      ++fired_;
      return rule.outcome;
    }
    return {};
  }

 private:
  struct rule {
    fault_call what;
    std::string path_part;
    storewatch::detail::sys::verdict outcome;
    int skip;
    int times;
  };
  mutable std::mutex mutex_;
  std::vector<rule> rules_;
  std::size_t fired_ = 0;
};

/// Makes the directory sources created during its lifetime fail to open a
/// directory with the errno `fault(dir)` returns (dir relative to the root;
/// 0: open it).
class directory_fault {
 public:
  explicit directory_fault(std::function<int(const std::string& dir)> fault) {
    storewatch::detail::directory_open_fault = std::move(fault);
  }
  ~directory_fault() { storewatch::detail::directory_open_fault = nullptr; }
  directory_fault(const directory_fault&) = delete;
  directory_fault& operator=(const directory_fault&) = delete;
};

/// Moves the store's wall clock by `skew` for its lifetime.
class clock_skew {
 public:
  explicit clock_skew(std::chrono::milliseconds skew) {
    storewatch::detail::sys::clock_skew_ms.store(skew.count(), std::memory_order_relaxed);
  }
  ~clock_skew() { storewatch::detail::sys::clock_skew_ms.store(0, std::memory_order_relaxed); }
  clock_skew(const clock_skew&) = delete;
  clock_skew& operator=(const clock_skew&) = delete;
};

}  // namespace storewatch::test
