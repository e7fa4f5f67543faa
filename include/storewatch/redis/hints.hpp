/// \file
/// Wake-up hints over Redis pub/sub: `redis::hint_publisher` (PUBLISH) and
/// `redis::hint_subscriber` (SUBSCRIBE), the `storewatch::hint_publisher`
/// and `storewatch::hint_subscriber` of the storewatch::redis component.
//
// One channel per user, `hint_options::channel_prefix + user`; a hint's
// payload means nothing. Each side keeps one connection (hiredis's async
// API on the user's executor, redis/adapter.hpp: no thread), reconnecting
// with backoff. While the server is away hints are dropped, and the
// listeners poll at their interval; a subscriber wakes its listeners once
// when its connection is lost (so that sources that polled at their longer
// `hinted_poll_interval` while hints were live go back to their interval)
// and once after it reconnects, for the hints that were lost.
#pragma once

#include <storewatch/hints.hpp>
#include <storewatch/redis/connection.hpp>
#include <storewatch/redis/url.hpp>

#include <storewatch/detail/intercept.hpp>

#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace storewatch::redis {
namespace detail {

class publisher_connection final : public connection {
 public:
  using connection::connection;

  /// Hints held while the first connection is being made, at most.
  static constexpr std::size_t max_held = 1024;

  void send(const std::string& user) {
    ++handed_;
    if (!ready()) {
      // Before the first connection is up (a writer that has just started),
      // the hint waits for it; afterwards a hint while it is down is dropped.
      if (connections() == 0 && failed_attempts() == 0 && held_.size() < max_held) {
        held_.push_back(user);
        return;
      }
      ++dropped_;
      lose(1);
      return;
    }
    const auto channel = options().channel_prefix + user;
    redisAsyncCommand(context(), &publisher_connection::published, nullptr, "PUBLISH %b %b", channel.data(),
                      channel.size(), payload, sizeof payload - 1);
    ++sent_;
    ++unanswered_;
  }

  std::uint64_t sent() const noexcept { return sent_; }
  std::uint64_t dropped() const noexcept { return dropped_; }

  /// Ends `wait` (cancels `timer`, `outcome` set) once every hint handed to
  /// `send` so far is answered by the server (no error) or lost
  /// (`not_connected`); `timer`'s expiry is the caller's bound.
  void flush(std::shared_ptr<asio::steady_timer> timer, std::shared_ptr<std::optional<std::error_code>> outcome) {
    flushes_.push_back({handed_, lost_, std::move(timer), std::move(outcome)});
    settle();
  }

  /// Ends every flush with `operation_aborted` (the publisher is gone).
  void abort_flushes() noexcept {
    for (auto& wait : std::exchange(flushes_, {})) {
      *wait.outcome = make_error_code(asio::error::operation_aborted);
      wait.timer->cancel();
    }
  }

 private:
  static constexpr char payload[] = "wake";

  struct flush_wait {
    std::uint64_t handed;  // hints handed to `send` before the flush
    std::uint64_t lost;    // hints lost before it
    std::shared_ptr<asio::steady_timer> timer;
    std::shared_ptr<std::optional<std::error_code>> outcome;
  };

  // Connected and logged in is all a publisher needs: a PUBLISH the server
  // refuses is reported below, once per connection, which stays up.
  bool on_ready() override {
    refusal_reported_ = false;
    auto held = std::exchange(held_, {});
    handed_ -= held.size();  // handed again now
    for (const auto& user : held) send(user);
    return true;
  }

  // Every hint in flight on the failed connection, or held for the first
  // one, is lost.
  void on_down() override {
    dropped_ += held_.size();
    lose(unanswered_ + held_.size());
    unanswered_ = 0;
    held_.clear();
  }

  void lose(std::uint64_t count) {
    lost_ += count;
    settled_ += count;
    settle();
  }

  // Ends the flushes whose hints are all answered or lost.
  void settle() {
    std::erase_if(flushes_, [this](flush_wait& wait) {
      if (settled_ < wait.handed) return false;
      *wait.outcome = lost_ > wait.lost ? make_error_code(std::errc::not_connected) : std::error_code{};
      wait.timer->cancel();
      return true;
    });
  }

  // A PUBLISH answered, or (no reply) lost with its connection. A refusal
  // (an ACL, say) is reported once per connection.
  static void published(redisAsyncContext* context, void* reply_pointer, void*) {
    auto* self = static_cast<publisher_connection*>(of(context));
    const auto* reply = static_cast<const redisReply*>(reply_pointer);
    if (self == nullptr) return;
    if (self->unanswered_ > 0) --self->unanswered_;
    if (reply == nullptr) {
      self->lose(1);
      return;
    }
    ++self->settled_;
    self->settle();
    if (reply->type != REDIS_REPLY_ERROR || self->refusal_reported_) return;
    self->refusal_reported_ = true;
    self->report(std::make_error_code(std::errc::permission_denied),
                 "the server refused PUBLISH: " + std::string(reply->str, reply->len) +
                     " (hints are dropped; listeners poll at their interval)");
  }

  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
  bool refusal_reported_ = false;
  std::vector<std::string> held_;      // hints waiting for the first connection
  std::uint64_t handed_ = 0;           // hints handed to `send` (held ones once)
  std::uint64_t settled_ = 0;          // of those, answered or lost
  std::uint64_t lost_ = 0;             // of those, lost
  std::uint64_t unanswered_ = 0;       // PUBLISHes in flight on the connection
  std::vector<flush_wait> flushes_;
};

class subscriber_connection final : public connection {
 public:
  using connection::connection;

  std::uint64_t add(std::string user, std::function<void()> on_hint) {
    const auto id = ++last_id_;
    auto& callbacks = listeners_[user];
    callbacks.emplace(id, std::make_shared<const std::function<void()>>(std::move(on_hint)));
    if (callbacks.size() == 1 && ready() && !subscribed_.contains(options().channel_prefix + user)) subscribe(user);
    return id;
  }

  // The channel stays subscribed until the connection ends (its hints are
  // then ignored): hiredis 0.14 forgets a channel's callback when an
  // UNSUBSCRIBE's reply comes, also one a SUBSCRIBE sent after it installed.
  void remove(const std::string& user, std::uint64_t id) {
    const auto found = listeners_.find(user);
    if (found == listeners_.end()) return;
    found->second.erase(id);
    if (found->second.empty()) listeners_.erase(found);
  }

  /// Whether the connection is up and every listened channel subscribed.
  bool subscribed() const {
    if (!ready()) return false;
    for (const auto& entry : listeners_) {
      if (!subscribed_.contains(options().channel_prefix + entry.first)) return false;
    }
    return true;
  }

  std::uint64_t received() const noexcept { return received_; }

  /// Whether the server confirmed `user`'s channel on the connection that
  /// is up. Callable from any thread.
  bool live(std::string_view user) const {
    const std::lock_guard lock(live_mutex_);
    return live_.contains(user);
  }

  /// Forgets every callback (the subscriber is gone).
  void forget_listeners() noexcept {
    listeners_.clear();
    set_live({});
  }

 private:
  // Up and logged in; working only once the server confirms every
  // channel: a SUBSCRIBE it refuses (NOAUTH, an ACL's NOPERM) ends the
  // connection (hiredis 0.14 disconnects on an error reply to it), and the
  // outage goes on: reported once, retried with growing backoff.
  bool on_ready() override {
    subscribed_.clear();
    set_live({});
    for (const auto& entry : listeners_) subscribe(entry.first);
    return listeners_.empty();
  }

  // The connection is gone: the users whose hints were live are woken, so
  // that sources polling at a longer interval while they were go back to
  // their own at once (and poll for the hints the loss took).
  void on_down() override {
    for (const auto& user : set_live({})) wake(user);
  }

  // Replaces the users whose channel is confirmed; returns the old ones.
  std::set<std::string, std::less<>> set_live(std::set<std::string, std::less<>> users) {
    const std::lock_guard lock(live_mutex_);
    return std::exchange(live_, std::move(users));
  }

  std::string describe_loss(const std::string& why) const override {
    if (subscribed()) return why;
    return "the connection ended before the server confirmed SUBSCRIBE: " + why;
  }

  void subscribe(const std::string& user) {
    const auto channel = options().channel_prefix + user;
    redisAsyncCommand(context(), &subscriber_connection::message, nullptr, "SUBSCRIBE %b", channel.data(),
                      channel.size());
  }

  // Every reply on a subscribed channel: its subscribe and unsubscribe
  // confirmations, and its messages.
  static void message(redisAsyncContext* context, void* reply_pointer, void*) {
    auto* self = static_cast<subscriber_connection*>(of(context));
    const auto* reply = static_cast<const redisReply*>(reply_pointer);
    if (self == nullptr || reply == nullptr) return;
    if (reply->type == REDIS_REPLY_ERROR) {  // a hiredis that hands the refusal over instead of disconnecting
      self->fail_later("the server refused SUBSCRIBE: " + std::string(reply->str, reply->len));
      return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    const auto* kind = reply->element[0];
    const auto* channel_element = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || channel_element->type != REDIS_REPLY_STRING) return;
    const std::string_view what(kind->str, kind->len);
    const std::string channel(channel_element->str, channel_element->len);
    const auto& prefix = self->options().channel_prefix;
    if (!channel.starts_with(prefix)) return;
    const auto user = channel.substr(prefix.size());
    if (what == "subscribe") {
      self->subscribed_.insert(channel);
      {
        const std::lock_guard lock(self->live_mutex_);
        self->live_.insert(user);
      }
      if (self->subscribed()) self->confirmed();
      // Hints published while it was away are lost: one poll covers them.
      if (self->connections() > 1) self->wake(user);
    } else if (what == "message") {
      ++self->received_;
      self->wake(user);
    }
  }

  // Runs `user`'s callbacks, each later and only if it is still registered.
  // A callback may end registrations, its own too: it is held while it runs.
  void wake(const std::string& user) {
    const auto found = listeners_.find(user);
    if (found == listeners_.end()) return;
    for (const auto& entry : found->second) {
      asio::post(executor(), [weak = std::weak_ptr<connection>(shared_from_this()), user, id = entry.first] {
        const auto self = std::static_pointer_cast<subscriber_connection>(weak.lock());
        if (!self) return;
        const auto listeners = self->listeners_.find(user);
        if (listeners == self->listeners_.end()) return;
        const auto callback = listeners->second.find(id);
        if (callback == listeners->second.end()) return;
        const auto running = callback->second;
        (*running)();
      });
    }
  }

  // user -> id -> callback
  std::map<std::string, std::map<std::uint64_t, std::shared_ptr<const std::function<void()>>>> listeners_;
  std::set<std::string> subscribed_;  // channels the server confirmed on this connection
  mutable std::mutex live_mutex_;     // guards live_, which `live` reads from any thread
  std::set<std::string, std::less<>> live_;  // users whose channel is in subscribed_
  std::uint64_t last_id_ = 0;
  std::uint64_t received_ = 0;
};

}  // namespace detail

/// Publishes hints with PUBLISH on one Redis connection, made on
/// `executor` (an `io_context`'s) and remade with backoff when it fails.
/// `publish` may be called from any thread; a hint while the connection is
/// down is dropped (`dropped()` counts them). Create, use the accessors
/// and destroy it on the executor's thread. Hand it to stores as
/// `std::shared_ptr<storewatch::hint_publisher>` (`s3_store_options::hints`).
class hint_publisher final : public storewatch::hint_publisher {
 public:
  /// Starts connecting to `where` (not inside this call).
  hint_publisher(const asio::any_io_executor& executor, url where, hint_options options = {})
      : connection_(std::make_shared<detail::publisher_connection>(executor, std::move(where), std::move(options),
                                                                   "hint publisher")) {
    connection_->start();
  }
  hint_publisher(const hint_publisher&) = delete;
  hint_publisher& operator=(const hint_publisher&) = delete;
  /// Closes the connection; hints not yet sent are dropped, and a flush
  /// still waiting completes with `operation_aborted`.
  ~hint_publisher() override {
    connection_->close();
    connection_->abort_flushes();
  }

  /// Sends a hint for `user` (on the executor, never inside this call).
  void publish(std::string_view user) noexcept override {
    try {
      asio::post(connection_->executor(),
                 [weak = std::weak_ptr<detail::publisher_connection>(connection_), user = std::string(user)] {
                   if (const auto self = weak.lock()) self->send(user);
                 });
    } catch (...) {  // out of memory: the hint is dropped, as the interface allows
    }
  }

  /// Waits until every hint published before this call has been answered
  /// by the server, so that a writer about to exit does not take its last
  /// hints with it. Completion signature `void(std::error_code)`: no error
  /// when all were answered; `std::errc::not_connected` when some were lost
  /// (the connection was down or dropped: reported through `on_error`);
  /// `std::errc::timed_out` when `bound` passed first (a first connection
  /// still being made, a server that does not answer); `operation_aborted`
  /// when the publisher is destroyed meanwhile. Hints published while the
  /// first connection is being made wait for it, so a flush right after
  /// start covers them. The handler never runs inside this call; it runs
  /// on its associated executor (default: the publisher's). Callable from
  /// any thread.
  /// The publisher's executor is an `any_io_executor`, which has no default
  /// completion token: pass one (`asio::use_awaitable`, a callback, ...).
  template <asio::completion_token_for<void(std::error_code)> CompletionToken>
  auto async_flush(std::chrono::milliseconds bound, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [connection = connection_, bound](auto handler) {
          const auto executor = connection->executor();
          auto timer = std::make_shared<asio::steady_timer>(executor, bound);
          auto outcome = std::make_shared<std::optional<std::error_code>>();
          timer->async_wait(storewatch::detail::intercept(std::move(handler), [timer, outcome](std::error_code& ec) {
            if (*outcome) {
              ec = **outcome;  // settled (or aborted) by the connection
            } else if (!ec) {
              ec = std::make_error_code(std::errc::timed_out);
            }
          }));
          // Posted, as `publish` posts each hint: it counts those before it.
          asio::post(executor, [weak = std::weak_ptr<detail::publisher_connection>(connection), timer, outcome] {
            if (const auto self = weak.lock()) self->flush(timer, outcome);
          });
        },
        token);
  }

  /// Whether the connection is up and logged in.
  bool ready() const noexcept { return connection_->ready(); }
  /// Hints sent.
  std::uint64_t sent() const noexcept { return connection_->sent(); }
  /// Hints dropped because the connection was down.
  std::uint64_t dropped() const noexcept { return connection_->dropped(); }
  /// Outages reported so far (through `hint_options::on_error`).
  std::uint64_t outages() const noexcept { return connection_->outages(); }
  /// Failed attempts to connect so far (each outage's first is the one reported).
  std::uint64_t failed_attempts() const noexcept { return connection_->failed_attempts(); }

 private:
  std::shared_ptr<detail::publisher_connection> connection_;
};

/// Receives hints with SUBSCRIBE on one Redis connection, made on
/// `executor` (an `io_context`'s) and remade with backoff when it fails;
/// each user listened for is one channel. Callbacks run on the executor.
/// Not thread-safe: create, listen, end registrations and destroy it on
/// the executor's thread. Hand it to sources as
/// `std::shared_ptr<storewatch::hint_subscriber>` (`s3_journal_options::hints`).
class hint_subscriber final : public storewatch::hint_subscriber {
 public:
  /// Starts connecting to `where` (not inside this call).
  hint_subscriber(const asio::any_io_executor& executor, url where, hint_options options = {})
      : connection_(std::make_shared<detail::subscriber_connection>(executor, std::move(where), std::move(options),
                                                                    "hint subscriber")) {
    connection_->start();
  }
  hint_subscriber(const hint_subscriber&) = delete;
  hint_subscriber& operator=(const hint_subscriber&) = delete;
  /// Closes the connection; no callback runs afterwards.
  ~hint_subscriber() override { close(); }

  /// Closes the connection for good: no hint and no report comes
  /// afterwards, and registrations end doing nothing. For a subscriber
  /// whose last owner is not the one that is done with it (a source shares
  /// it): once closed, it holds no work on the executor. A source whose
  /// poller waits its longer `s3_journal_options::hinted_poll_interval` is
  /// not called either: while that wait lasts the source checks `live` every
  /// second, so it polls within about a second after the close, and at the
  /// poller's interval from then on.
  void close() {
    connection_->close();
    connection_->forget_listeners();
  }

  /// See `storewatch::hint_subscriber::listen`. The registration may
  /// outlive the subscriber (ending it then does nothing).
  [[nodiscard]] hint_registration listen(std::string user, std::function<void()> on_hint) override {
    const auto id = connection_->add(user, std::move(on_hint));
    return hint_registration([weak = std::weak_ptr<detail::subscriber_connection>(connection_), user, id] {
      if (const auto self = weak.lock()) self->remove(user, id);
    });
  }

  /// Whether the connection is up and the server confirmed every channel
  /// listened for.
  bool ready() const { return connection_->subscribed(); }
  /// Whether `user`'s hints are being delivered: connected, and the server
  /// confirmed the user's channel (`storewatch::hint_subscriber::live`).
  /// When that ends (the connection drops, or is refused), the user's
  /// callbacks run once. Callable from any thread.
  [[nodiscard]] bool live(std::string_view user) const override { return connection_->live(user); }
  /// Hints received.
  std::uint64_t received() const noexcept { return connection_->received(); }
  /// Outages reported so far (through `hint_options::on_error`).
  std::uint64_t outages() const noexcept { return connection_->outages(); }
  /// Failed attempts to connect so far (each outage's first is the one reported).
  std::uint64_t failed_attempts() const noexcept { return connection_->failed_attempts(); }

 private:
  std::shared_ptr<detail::subscriber_connection> connection_;
};

}  // namespace storewatch::redis
