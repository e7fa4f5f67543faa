// The retry schedule for failing polls, free of timers so it can be tested alone.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>

namespace storewatch {

/// How long the poller waits before retrying a failed poll.
struct backoff_policy {
  std::chrono::milliseconds initial{100};  ///< delay after the first failure
  std::chrono::milliseconds max{30'000};   ///< cap on any delay
  double multiplier = 2.0;                 ///< growth per further failure
  double jitter = 0.2;                     ///< a delay is shortened by up to this fraction, at random
};

namespace detail {

/// The delay before retrying after `failures` consecutive failures (≥ 1);
/// `random` in [0, 1) picks the jitter. The result lies in
/// [(1 − jitter) · base, base] with base = min(max, initial · multiplier^(failures−1)).
inline std::chrono::milliseconds backoff_delay(const backoff_policy& policy, unsigned failures, double random) {
  const double initial = static_cast<double>(policy.initial.count());
  const double cap = static_cast<double>(policy.max.count());
  const double growth = std::pow(std::max(policy.multiplier, 1.0), failures > 0 ? failures - 1.0 : 0.0);
  const double base = std::min(cap, initial * growth);
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0) * std::clamp(random, 0.0, 1.0);
  return std::chrono::milliseconds{static_cast<long long>(std::ceil(base * (1.0 - jitter)))};
}

}  // namespace detail
}  // namespace storewatch
