/// \file
/// Wake-up hints over Redis pub/sub: `redis::hint_publisher` (PUBLISH) and
/// `redis::hint_subscriber` (SUBSCRIBE), the `storewatch::hint_publisher`
/// and `storewatch::hint_subscriber` of the storewatch::redis component.
//
// One channel per user, `hint_options::channel_prefix + user`; a hint's
// payload means nothing. Each side keeps one connection (hiredis's async
// API on the user's executor, redis/adapter.hpp: no thread), reconnecting
// with backoff. While the server is away hints are dropped, and the
// listeners poll at their interval; after a subscriber reconnects it wakes
// its listeners once, for the hints that were lost.
#pragma once

#include <storewatch/hints.hpp>
#include <storewatch/redis/connection.hpp>
#include <storewatch/redis/url.hpp>

#include <asio/post.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace storewatch::redis {
namespace detail {

class publisher_connection final : public connection {
 public:
  using connection::connection;

  void send(const std::string& user) {
    if (!ready()) {
      ++dropped_;
      return;
    }
    const auto channel = options().channel_prefix + user;
    redisAsyncCommand(context(), &publisher_connection::published, nullptr, "PUBLISH %b %b", channel.data(),
                      channel.size(), payload, sizeof payload - 1);
    ++sent_;
  }

  std::uint64_t sent() const noexcept { return sent_; }
  std::uint64_t dropped() const noexcept { return dropped_; }

 private:
  static constexpr char payload[] = "wake";

  // Connected and logged in is all a publisher needs: a PUBLISH the server
  // refuses is reported below, once per connection, which stays up.
  bool on_ready() override {
    refusal_reported_ = false;
    return true;
  }

  // A PUBLISH the server refused (an ACL, say): reported once per connection.
  static void published(redisAsyncContext* context, void* reply_pointer, void*) {
    auto* self = static_cast<publisher_connection*>(of(context));
    const auto* reply = static_cast<const redisReply*>(reply_pointer);
    if (self == nullptr || reply == nullptr || reply->type != REDIS_REPLY_ERROR || self->refusal_reported_) return;
    self->refusal_reported_ = true;
    self->report(std::make_error_code(std::errc::permission_denied),
                 "the server refused PUBLISH: " + std::string(reply->str, reply->len) +
                     " (hints are dropped; listeners poll at their interval)");
  }

  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
  bool refusal_reported_ = false;
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

  /// Forgets every callback (the subscriber is gone).
  void forget_listeners() noexcept { listeners_.clear(); }

 private:
  // Up and logged in; working only once the server confirms every
  // channel: a SUBSCRIBE it refuses (NOAUTH, an ACL's NOPERM) ends the
  // connection (hiredis 0.14 disconnects on an error reply to it), and the
  // outage goes on: reported once, retried with growing backoff.
  bool on_ready() override {
    subscribed_.clear();
    for (const auto& entry : listeners_) subscribe(entry.first);
    return listeners_.empty();
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
  /// Closes the connection; hints not yet sent are dropped.
  ~hint_publisher() override { connection_->close(); }

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
  /// it): once closed, it holds no work on the executor.
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
