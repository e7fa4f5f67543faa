// What the tool prints: versions, events as JSON lines or readable text, all
// made safe for a terminal whatever a store's events or a directory's file
// names hold; and standard output as `tail` and `watch` write it.
#pragma once

#include "time_text.hpp"

#include <storewatch/storewatch.hpp>
#include <storewatch/text.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storewatch::cli {

/// `text` with every character a terminal would act on or hide escaped:
/// newlines and other control bytes, escape sequences and bytes of invalid
/// UTF-8 as \xHH, C1 controls, the line and paragraph separators and
/// invisible formatting characters (bidirectional overrides, zero-width
/// characters) as \uHHHH. So an event's data cannot start a forged line,
/// move the cursor, retitle the window or reorder what is shown. Backslashes are left as they are.
inline std::string terminal_text(std::string_view text) { return displayable(text); }

inline void print_versions(const std::vector<versioned_path>& versions) {
  for (const auto& v : versions) std::printf("%s\n", cli::terminal_text(v.to_string()).c_str());
}

inline std::string event_json(const event& e) {
  nlohmann::json j{{"id", e.id},
                        {"name", e.name},
                        {"data", e.data},
                        {"actor", e.actor},
                        {"occurred_at", cli::format_time(e.occurred_at)}};
  if (!e.attributes.is_null()) j["attributes"] = e.attributes;
  // Data is bytes; what is not UTF-8 is shown as U+FFFD rather than failing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// One readable line: time, name and actor aligned, then the data; every
/// field escaped for the terminal (`cli::terminal_text`), so no event can
/// print a line of its own or control the terminal.
inline std::string event_text(const event& e) {
  std::string name = cli::terminal_text(e.name), actor = cli::terminal_text(e.actor);
  name.resize(std::max<std::size_t>(name.size(), 8), ' ');
  actor.resize(std::max<std::size_t>(actor.size(), 10), ' ');
  std::string data = cli::terminal_text(e.data);
  if (e.name == event_name::rename && e.attributes.is_object() && e.attributes.contains("from") &&
      e.attributes["from"].is_string()) {
    data = cli::terminal_text(e.attributes["from"].get<std::string>()) + " -> " + data;
  }
  return cli::format_time(e.occurred_at) + "  " + name + " " + actor + " " + data;
}

/// Standard output as a tail writes it: a line at a time, waiting on the
/// io_context (not in a blocking write) while a pipe or terminal is full,
/// so SIGINT, SIGTERM and --timeout end the wait at once. A pipe is written
/// PIPE_BUF bytes at a time once writable, so those writes never block.
/// Files and devices epoll cannot wait on are written directly: they do
/// not block for long.
class line_output {
 public:
  explicit line_output(asio::io_context& io) : waiter_(io) {
    struct stat status {};
    const bool can_block = ::fstat(STDOUT_FILENO, &status) == 0 &&
                           (S_ISFIFO(status.st_mode) || S_ISSOCK(status.st_mode) || ::isatty(STDOUT_FILENO));
    const int copy = can_block ? ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0) : -1;
    std::error_code ec;
    if (copy >= 0) waiter_.assign(copy, ec);
    if (copy >= 0 && ec) ::close(copy);  // written directly, then
  }

  /// Writes all of `line` (with its newline). Completes with
  /// `operation_aborted` when `cancel()` came first, else the error of the
  /// write, if any (EPIPE: the reader has gone). A line longer than
  /// PIPE_BUF that is cancelled half-way stays torn on the output; it is
  /// not recorded as written, so a resumed tail prints it again whole.
  asio::awaitable<std::error_code> write(std::string line) {
    std::string_view rest = line;
    while (!rest.empty()) {
      if (cancelled_) co_return asio::error::operation_aborted;
      if (waiter_.is_open()) {
        const auto [ec] = co_await waiter_.async_wait(asio::posix::stream_descriptor::wait_write,
                                                      asio::experimental::as_tuple(asio::use_awaitable));
        if (cancelled_) co_return asio::error::operation_aborted;
        if (ec) co_return ec;
      }
      const auto chunk = waiter_.is_open() ? std::min<std::size_t>(rest.size(), PIPE_BUF) : rest.size();
      const auto written = ::write(STDOUT_FILENO, rest.data(), chunk);
      if (written < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (written < 0) co_return std::error_code(errno, std::system_category());
      rest.remove_prefix(static_cast<std::size_t>(written));
    }
    co_return std::error_code{};
  }

  /// Completes when the reader of a pipe has gone (or a terminal hung up)
  /// while nothing is being written; never for output that is not pollable.
  void async_wait_closed(std::function<void()> closed) {
    if (!waiter_.is_open()) return;
    waiter_.async_wait(asio::posix::stream_descriptor::wait_error, [this, closed](std::error_code ec) {
      if (ec) return;
      pollfd check{STDOUT_FILENO, 0, 0};
      if (::poll(&check, 1, 0) == 1 && (check.revents & (POLLERR | POLLHUP))) {
        closed();
      } else if (!cancelled_) {
        async_wait_closed(closed);
      }
    });
  }

  /// Ends a wait in progress, and every later write, with operation_aborted.
  void cancel() {
    cancelled_ = true;
    std::error_code ignored;
    waiter_.cancel(ignored);
  }

 private:
  asio::posix::stream_descriptor waiter_;  // a duplicate of stdout, for waiting only
  bool cancelled_ = false;
};

}  // namespace storewatch::cli
