/// \file
/// `redis::attach`: drives a hiredis `redisAsyncContext` on an Asio
/// executor, with no thread of its own.
//
// hiredis's async API asks its event loop, through the context's `ev` hooks,
// to watch the socket for reading and writing (addRead/delRead,
// addWrite/delWrite) and to forget it (cleanup, just before hiredis frees
// the context and closes the socket). Here the watching is a
// `posix::stream_descriptor` on the socket with `async_wait`; when the
// socket is ready it calls redisAsyncHandleRead/Write, which run the reply
// callbacks. The descriptor never owns the socket (hiredis closes it), and
// the adapter outlives the context as long as a wait of its is pending.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <system_error>
#include <utility>

namespace storewatch::redis {
namespace detail {

class asio_adapter : public std::enable_shared_from_this<asio_adapter> {
 public:
  asio_adapter(redisAsyncContext* context, const asio::any_io_executor& executor)
      : context_(context), socket_(executor) {}

  // Hooks the adapter into `context`, which keeps it alive until cleanup.
  static void attach(redisAsyncContext* context, const asio::any_io_executor& executor) {
    auto adapter = std::make_shared<asio_adapter>(context, executor);
    std::error_code ec;
    adapter->socket_.assign(context->c.fd, ec);
    if (ec) throw std::system_error(ec, "Redis: watching the socket of a hiredis context");
    adapter->self_ = adapter;
    context->ev.data = adapter.get();
    context->ev.addRead = [](void* data) { static_cast<asio_adapter*>(data)->want(true, true); };
    context->ev.delRead = [](void* data) { static_cast<asio_adapter*>(data)->want(true, false); };
    context->ev.addWrite = [](void* data) { static_cast<asio_adapter*>(data)->want(false, true); };
    context->ev.delWrite = [](void* data) { static_cast<asio_adapter*>(data)->want(false, false); };
    context->ev.cleanup = [](void* data) { static_cast<asio_adapter*>(data)->cleanup(); };
  }

 private:
  // hiredis asks to watch (add) or not (del) for reading or writing. A
  // wait already pending is left to complete: its handler checks again.
  void want(bool read, bool wanted) {
    (read ? read_wanted_ : write_wanted_) = wanted;
    if (wanted) arm(read);
  }

  // Starts the wait for one direction unless one is pending.
  void arm(bool read) {
    bool& waiting = read ? read_waiting_ : write_waiting_;
    if (waiting || context_ == nullptr) return;
    waiting = true;
    socket_.async_wait(read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write,
                       [self = shared_from_this(), read](std::error_code ec) { self->ready(read, ec); });
  }

  void ready(bool read, std::error_code ec) {
    (read ? read_waiting_ : write_waiting_) = false;
    if (ec || context_ == nullptr) return;  // cancelled by cleanup
    if (read ? read_wanted_ : write_wanted_) {
      // May run callbacks, and may free the context (cleanup runs first).
      read ? redisAsyncHandleRead(context_) : redisAsyncHandleWrite(context_);
    }
    if (context_ != nullptr && (read ? read_wanted_ : write_wanted_)) arm(read);
  }

  // hiredis is about to free the context and close the socket: forget both.
  void cleanup() {
    context_ = nullptr;
    read_wanted_ = write_wanted_ = false;
    std::error_code ignored;
    socket_.cancel(ignored);  // the pending waits complete with operation_aborted
    socket_.release();        // without closing: the socket is hiredis's
    auto last = std::move(self_);  // the pending waits may still hold the adapter
  }

  redisAsyncContext* context_;
  asio::posix::stream_descriptor socket_;
  bool read_wanted_ = false, write_wanted_ = false;    // hiredis asked to watch, and did not take it back
  bool read_waiting_ = false, write_waiting_ = false;  // an async_wait is pending
  std::shared_ptr<asio_adapter> self_;  // the context's reference, dropped at cleanup
};

}  // namespace detail

/// Drives `context` (just made by `redisAsyncConnect`, with no other
/// adapter attached) on `executor`, which must be an `io_context`'s: the
/// socket is watched with `async_wait` and hiredis's reply, connect and
/// disconnect callbacks run on that executor's thread. Attach before
/// `redisAsyncSetConnectCallback`, which (in hiredis 0.14) asks to watch
/// for writing at once. The adapter lives until hiredis frees the context
/// (`redisAsyncFree`, or a lost connection); it never closes the socket.
/// Throws std::system_error when the socket cannot be watched.
inline void attach(redisAsyncContext* context, const asio::any_io_executor& executor) {
  detail::asio_adapter::attach(context, executor);
}

}  // namespace storewatch::redis
