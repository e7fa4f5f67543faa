/// \file
/// The Redis connection behind `redis::hint_publisher` and
/// `redis::hint_subscriber`: connects without blocking, logs in, and when
/// the connection fails or drops, reports it once and reconnects with
/// backoff until it is closed.
#pragma once

#include <storewatch/backoff.hpp>
#include <storewatch/poller.hpp>
#include <storewatch/redis/adapter.hpp>
#include <storewatch/redis/url.hpp>

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace storewatch::redis {

/// Options of a hint publisher or subscriber.
struct hint_options {
  /// Each user's hints go to the channel `channel_prefix + user`: publishers
  /// and subscribers of one store must agree on it.
  std::string channel_prefix = "storewatch:hints:";
  /// Delays between attempts to reconnect (`backoff_policy`, as the poller's).
  backoff_policy backoff{};
  /// How long a connection attempt (TCP and login) may take before it
  /// counts as failed.
  std::chrono::milliseconds connect_timeout{5000};
  /// Where an outage is reported: once when the server cannot be reached
  /// or the connection drops, not again until it has been back. Empty:
  /// `print_error`.
  error_handler on_error{};
  /// What an outage's report says follows from it, after the reason. Empty:
  /// "hints are off until it is back (listeners poll at their interval),
  /// reconnecting with backoff", which is what a long-lived publisher or
  /// subscriber does. A writer about to exit says what happens to its
  /// hints instead (the tool's store commands do).
  std::string outage_note{};
};

namespace detail {

/// Reporting once per outage, free of I/O: an outage begins with a failed
/// attempt and ends when a connection is ready again.
class outage_state {
 public:
  /// One more failed attempt; true when it begins an outage (report it).
  bool failed() noexcept {
    ++failures_;
    ++failed_attempts_;
    if (reported_) return false;
    reported_ = true;
    ++outages_;
    return true;
  }
  /// A connection is ready: the outage, if any, is over.
  void recovered() noexcept {
    failures_ = 0;
    reported_ = false;
  }
  /// Failed attempts since the last ready connection (for the backoff).
  unsigned failures() const noexcept { return failures_; }
  /// Failed attempts so far.
  std::uint64_t failed_attempts() const noexcept { return failed_attempts_; }
  /// Outages so far.
  std::uint64_t outages() const noexcept { return outages_; }

 private:
  unsigned failures_ = 0;
  bool reported_ = false;
  std::uint64_t outages_ = 0;
  std::uint64_t failed_attempts_ = 0;
};

/// A connection to one Redis server that keeps reconnecting. Lives in a
/// shared_ptr: the handlers it starts hold it. Use it on its executor only.
/// Subclasses say what to do once it is ready (`on_ready`).
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(const asio::any_io_executor& executor, url where, hint_options options, std::string role)
      : executor_(executor),
        url_(std::move(where)),
        options_(std::move(options)),
        role_(std::move(role)),
        timer_(executor),
        resolver_(executor),
        random_(std::random_device{}()) {
    if (!options_.on_error) options_.on_error = print_error;
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  virtual ~connection() { drop(); }

  /// Starts connecting (on the executor, not inside this call).
  void start() {
    asio::post(executor_, [self = shared_from_this()] { self->connect(); });
  }

  /// Ends the connection and every reconnection; nothing is reported
  /// afterwards.
  void close() {
    closed_ = true;
    ++attempt_;
    timer_.cancel();
    resolver_.cancel();
    drop();
    state_ = state::closed;
  }

  /// Whether the connection is up and logged in. Also false between a drop
  /// (hiredis has freed its context) and the reconnection being started,
  /// which runs later, posted: a command sent then would use a freed context.
  bool ready() const noexcept { return state_ == state::ready && context_ != nullptr; }
  /// Outages reported so far, and failed attempts to connect.
  std::uint64_t outages() const noexcept { return outage_.outages(); }
  std::uint64_t failed_attempts() const noexcept { return outage_.failed_attempts(); }
  /// The server, as messages name it.
  const url& where() const noexcept { return url_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }
  const hint_options& options() const noexcept { return options_; }

 protected:
  /// The connection is up and logged in (called inside a hiredis callback:
  /// send commands, do not free anything). Returns whether it is known to
  /// work already; if not, the subclass calls `confirmed` once the server
  /// has accepted what it asked for. Until then the outage, if any, goes on:
  /// a connection the server drops or refuses again is not reported again,
  /// and the backoff keeps growing.
  virtual bool on_ready() = 0;

  /// The server accepted what the connection is for: an outage is over.
  void confirmed() noexcept { outage_.recovered(); }

  /// What a failure of a ready connection is reported as, given the
  /// reason hiredis or the server gave (`why`).
  virtual std::string describe_loss(const std::string& why) const { return why; }
  /// An attempt failed or the connection dropped (called outside hiredis,
  /// the context already freed): what was sent on it is lost.
  virtual void on_down() {}

  /// The context, while connected; nullptr otherwise.
  redisAsyncContext* context() const noexcept { return context_; }

  /// The connection of a hiredis context this class made (nullptr once it
  /// is being freed by `drop`).
  static connection* of(const redisAsyncContext* context) noexcept {
    return context == nullptr ? nullptr : static_cast<connection*>(context->data);
  }

  /// Fails the current attempt from inside a hiredis callback: the
  /// context is freed later, outside hiredis.
  void fail_later(std::string why) {
    asio::post(executor_, [self = shared_from_this(), attempt = attempt_, why = std::move(why)] {
      if (attempt == self->attempt_) self->fail(why);
    });
  }

  /// Tells the user, through `on_error`.
  void report(std::error_code code, const std::string& message) {
    options_.on_error(code, "Redis " + role_ + " at " + url_.text() + ": " + message);
  }

 private:
  enum class state { idle, connecting, handshaking, ready, waiting, closed };

  void connect() {
    if (closed_) return;
    state_ = state::connecting;
    addresses_.clear();
    next_address_ = 0;
    std::error_code ec;
    const auto address = asio::ip::make_address(url_.host, ec);
    if (!ec) {
      addresses_.push_back(address.to_string());
      connect_next();
      return;
    }
    // A host name: resolved by Asio's resolver (getaddrinfo on Asio's own
    // helper thread), so that hiredis's blocking lookup never runs here.
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [self = shared_from_this(), attempt = attempt_](
                                std::error_code error, const asio::ip::tcp::resolver::results_type& results) {
                              if (self->closed_ || attempt != self->attempt_) return;
                              if (error || results.empty()) {
                                self->fail("cannot resolve " + self->url_.host + ": " +
                                           (error ? error.message() : std::string("no address")));
                                return;
                              }
                              for (const auto& entry : results) {
                                auto text = entry.endpoint().address().to_string();
                                if (std::find(self->addresses_.begin(), self->addresses_.end(), text) ==
                                    self->addresses_.end()) {
                                  self->addresses_.push_back(std::move(text));
                                }
                              }
                              self->connect_next();
                            });
  }

  // Connects to the next address of the host's; each gets the whole
  // connect timeout.
  void connect_next() { connect_to(addresses_.at(next_address_++)); }

  // The TCP connection to the current address failed (`why`): the next
  // address is tried at once, and only when none is left does the attempt
  // fail (naming every address tried when there were several).
  void unreachable(const std::string& why) {
    const auto& address = addresses_.at(next_address_ - 1);
    tried_ += (tried_.empty() ? "" : "; ") + address + ": " + why;
    if (next_address_ < addresses_.size()) {
      connect_next();
      return;
    }
    fail(addresses_.size() > 1 ? "no address of " + url_.host + " answered (" + tried_ + ")" : why);
  }

  void connect_to(const std::string& address) {
    if (next_address_ == 1) tried_.clear();
    context_ = redisAsyncConnect(address.c_str(), url_.port);  // non-blocking connect
    if (context_ == nullptr) {
      fail("hiredis could not allocate a context");
      return;
    }
    if (context_->err) {
      std::string why = context_->errstr;
      redisAsyncFree(context_);
      context_ = nullptr;
      unreachable(why);
      return;
    }
    context_->data = this;
    // TCP keepalive (hiredis: probes after 15 s idle, given up after about
    // 30 s): a subscriber whose server vanished without closing the
    // connection finds out, and its listeners go back to their interval.
    redisEnableKeepAlive(&context_->c);
    try {
      attach(context_, executor_);
    } catch (const std::system_error& error) {
      drop();
      fail(error.what());
      return;
    }
    redisAsyncSetConnectCallback(context_, &connection::connected);
    redisAsyncSetDisconnectCallback(context_, &connection::disconnected);
    timer_.expires_after(options_.connect_timeout);
    timer_.async_wait([self = shared_from_this(), attempt = attempt_, address = next_address_](std::error_code ec) {
      if (ec || self->closed_ || attempt != self->attempt_ || address != self->next_address_ ||
          self->state_ == state::ready) {
        return;
      }
      const auto why = "no connection within " + std::to_string(self->options_.connect_timeout.count()) + " ms";
      if (self->state_ == state::connecting) {
        self->drop();
        self->unreachable(why);
      } else {
        self->fail(why);
      }
    });
  }

  static void connected(const redisAsyncContext* context, int status) {
    auto* self = of(context);
    if (self == nullptr) return;
    if (status != REDIS_OK) {
      self->context_ = nullptr;  // hiredis frees it after this callback
      // Outside hiredis: the next address, or the attempt fails.
      asio::post(self->executor_, [self = self->shared_from_this(), attempt = self->attempt_,
                                   address = self->next_address_, why = std::string(context->errstr)] {
        if (attempt == self->attempt_ && address == self->next_address_ && !self->closed_) self->unreachable(why);
      });
      return;
    }
    self->handshake();
  }

  static void disconnected(const redisAsyncContext* context, int status) {
    auto* self = of(context);
    if (self == nullptr) return;
    std::string why = status == REDIS_OK ? std::string("the server closed the connection")
                                         : std::string(context->errstr);
    if (self->ready()) why = self->describe_loss(why);
    self->context_ = nullptr;  // hiredis frees it after this callback
    self->fail_later(std::move(why));
  }

  // AUTH and SELECT where the URL asks for them, then ready.
  void handshake() {
    state_ = state::handshaking;
    handshake_left_ = 0;
    if (!url_.password.empty()) {
      ++handshake_left_;
      if (url_.user.empty()) {
        redisAsyncCommand(context_, &connection::handshake_reply, const_cast<char*>("AUTH"), "AUTH %b",
                          url_.password.data(), url_.password.size());
      } else {
        redisAsyncCommand(context_, &connection::handshake_reply, const_cast<char*>("AUTH"), "AUTH %b %b",
                          url_.user.data(), url_.user.size(), url_.password.data(), url_.password.size());
      }
    }
    if (url_.db != 0) {
      ++handshake_left_;
      redisAsyncCommand(context_, &connection::handshake_reply, const_cast<char*>("SELECT"), "SELECT %u", url_.db);
    }
    if (handshake_left_ == 0) become_ready();
  }

  static void handshake_reply(redisAsyncContext* context, void* reply_pointer, void* step) {
    auto* self = of(context);
    const auto* reply = static_cast<const redisReply*>(reply_pointer);
    if (self == nullptr || reply == nullptr) return;
    if (reply->type == REDIS_REPLY_ERROR) {
      self->fail_later(std::string("the server refused ") + static_cast<const char*>(step) + ": " +
                       std::string(reply->str, reply->len));
      return;
    }
    if (--self->handshake_left_ == 0) self->become_ready();
  }

  void become_ready() {
    state_ = state::ready;
    ++connections_;
    if (on_ready()) confirmed();
  }

 protected:
  /// Connections made so far (a second one means it reconnected).
  std::uint64_t connections() const noexcept { return connections_; }

 private:
  // The current attempt failed: report it if it begins an outage, and try
  // again after the backoff.
  void fail(const std::string& why) {
    if (closed_) return;
    ++attempt_;
    drop();
    state_ = state::waiting;
    if (outage_.failed()) {
      report(std::make_error_code(std::errc::not_connected),
             why + "; " +
                 (options_.outage_note.empty()
                      ? "hints are off until it is back (listeners poll at their interval), reconnecting with backoff"
                      : options_.outage_note));
    }
    on_down();
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    timer_.expires_after(storewatch::detail::backoff_delay(options_.backoff, outage_.failures(), unit(random_)));
    timer_.async_wait([self = shared_from_this(), attempt = attempt_](std::error_code ec) {
      if (!ec && !self->closed_ && attempt == self->attempt_) self->connect();
    });
  }

  // Frees the context, if any (never from inside a hiredis callback): its
  // pending callbacks see no connection and do nothing.
  void drop() {
    if (context_ == nullptr) return;
    auto* context = std::exchange(context_, nullptr);
    context->data = nullptr;
    redisAsyncFree(context);
  }

  asio::any_io_executor executor_;
  url url_;
  hint_options options_;
  std::string role_;
  asio::steady_timer timer_;  // the connect timeout, then the backoff
  asio::ip::tcp::resolver resolver_;
  std::minstd_rand random_;
  redisAsyncContext* context_ = nullptr;
  state state_ = state::idle;
  bool closed_ = false;
  std::uint64_t attempt_ = 0;  // handlers of an older attempt do nothing
  std::uint64_t connections_ = 0;
  int handshake_left_ = 0;
  outage_state outage_;
  std::vector<std::string> addresses_;  // the host's, tried in turn by one attempt
  std::size_t next_address_ = 0;
  std::string tried_;  // the addresses this attempt tried, and why each failed
};

}  // namespace detail
}  // namespace storewatch::redis
