// How much of their work the long tests do, from the environment: the
// random soaks' counts (STOREWATCH_MODEL_OPS, STOREWATCH_SOAK_ROUNDS) and the
// fault sweeps' stride (STOREWATCH_FAULT_STRIDE). scripts/test.sh makes them
// smaller under the sanitizers; unset, every test does all of its work.
#pragma once

#include <storewatch/detail/text.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace storewatch::test {

/// A number from the environment, or `fallback` when unset or empty; a
/// value that is no decimal number fails the test, naming the variable.
inline std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  std::uint64_t value = 0;
  if (!storewatch::detail::parse_decimal(text, value)) FAIL(name << "=" << text << " is not a decimal number");
  return value;
}

/// Which requests a fault sweep injects its fault at. A sweep runs an
/// operation once per request n (1 .. count) with a fault at request n;
/// with STOREWATCH_FAULT_STRIDE k (default 1: every request) it takes only
/// the n with n % k == rotation % k, and always the first and the last
/// request (where a sequence of requests starts and ends, and where bugs
/// tend to be). A test that sweeps one operation in several modes gives
/// each mode its own `rotation` (0, 1, 2, ...), so that with k modes every
/// request is still swept in one of them. Tallies what it swept and prints
/// one line when it ends, so that a test log shows how much ran.
class fault_sweep {
 public:
  explicit fault_sweep(std::string test) : test_(std::move(test)), stride_(env_number("STOREWATCH_FAULT_STRIDE", 1)) {
    if (stride_ == 0) FAIL("STOREWATCH_FAULT_STRIDE=0: the stride is at least 1 (1: every request)");
  }
  fault_sweep(const fault_sweep&) = delete;
  fault_sweep& operator=(const fault_sweep&) = delete;
  ~fault_sweep() {
    std::cout << test_ << ": faults injected at " << swept_ << " of " << requests_
              << " requests (STOREWATCH_FAULT_STRIDE=" << stride_ << ")\n";
  }

  /// The requests of 1 .. `count` to inject at, in order.
  std::vector<std::size_t> requests(std::size_t count, std::size_t rotation = 0) {
    std::vector<std::size_t> chosen;
    for (std::size_t n = 1; n <= count; ++n) {
      if (n == 1 || n == count || n % stride_ == rotation % stride_) chosen.push_back(n);
    }
    requests_ += count;
    swept_ += chosen.size();
    return chosen;
  }

  std::uint64_t stride() const { return stride_; }
  /// The requests counted and the requests chosen so far.
  std::size_t counted() const { return requests_; }
  std::size_t swept() const { return swept_; }

 private:
  std::string test_;
  std::uint64_t stride_;
  std::size_t requests_ = 0;
  std::size_t swept_ = 0;
};

}  // namespace storewatch::test
