/// \file
/// Wake-up hints: a writer's word that a user's journal may have new records,
/// so that a listener polls now instead of at its next interval.
//
// Hints carry no data and are never trusted: a forged, lost or late hint
// changes only when a poll happens, never what it delivers. The core defines
// the two sides; storewatch::redis (include/storewatch/redis/) implements
// them over Redis pub/sub, and anything else (a message bus, a test double)
// may too.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace storewatch {

/// Sends hints: `s3_store_options::hints` calls `publish` once per recipient
/// user after an operation's journal records are stored.
class hint_publisher {
 public:
  virtual ~hint_publisher() = default;

  /// Tells listeners of `user`'s journal that it may have new records.
  /// Fire and forget: never blocks and never throws; a hint that cannot be
  /// sent is dropped (the listener's interval poll covers it), and the
  /// implementation reports why its own way. Callable from any thread.
  virtual void publish(std::string_view user) noexcept = 0;
};

/// Ends a `hint_subscriber::listen` registration when destroyed (or
/// `reset`). Move-only.
class hint_registration {
 public:
  hint_registration() = default;
  /// A registration that `end` ends.
  explicit hint_registration(std::function<void()> end) : end_(std::move(end)) {}
  /// Takes over `other`'s registration.
  hint_registration(hint_registration&& other) noexcept : end_(std::exchange(other.end_, nullptr)) {}
  /// Ends this registration and takes over `other`'s.
  hint_registration& operator=(hint_registration&& other) noexcept {
    if (this != &other) {
      reset();
      end_ = std::exchange(other.end_, nullptr);
    }
    return *this;
  }
  hint_registration(const hint_registration&) = delete;
  hint_registration& operator=(const hint_registration&) = delete;
  ~hint_registration() { reset(); }

  /// Ends the registration now; no callback for it runs afterwards.
  void reset() noexcept {
    if (auto end = std::exchange(end_, nullptr)) {
      try {
        end();
      } catch (...) {  // ending is best effort: the subscriber is going too
      }
    }
  }

 private:
  std::function<void()> end_;
};

/// Receives hints: `s3_journal_options::hints` listens for its user's.
class hint_subscriber {
 public:
  virtual ~hint_subscriber() = default;

  /// Calls `on_hint` for every hint for `user` that arrives, until the
  /// returned registration ends. `on_hint` runs on the subscriber's
  /// executor, never inside this call; it should be quick and not throw,
  /// and it may end registrations, its own included.
  /// The subscriber may also call it when hints may have been lost (after
  /// it reconnected), since a spare poll costs little; and it must call it
  /// when `live(user)` turns false, so that a listener polling at a longer
  /// interval while hints are live goes back to its own interval at once.
  [[nodiscard]] virtual hint_registration listen(std::string user, std::function<void()> on_hint) = 0;

  /// Whether `user`'s hints are being delivered now: the subscriber is
  /// connected and its server has confirmed the subscription. While it is,
  /// an `s3_journal_source` polls at `s3_journal_options::hinted_poll_interval`
  /// instead of the poller's interval. Only a statement about the channel,
  /// never about the journal. The default, false, keeps every listener at
  /// its own interval: a subscriber that cannot tell is never trusted with
  /// a longer one. Callable from any thread.
  [[nodiscard]] virtual bool live(std::string_view /*user*/) const { return false; }
};

}  // namespace storewatch
