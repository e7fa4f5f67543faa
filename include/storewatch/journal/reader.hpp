/// \file
/// `journal_source`, which polls one user's journal: the reading (pread) and
/// the inotify wake-ups. What the bytes read mean is decided in
/// journal/scan.hpp; the folder layout is described in journal/layout.hpp.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/files.hpp>
#include <storewatch/detail/gap.hpp>
#include <storewatch/detail/intercept.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/journal/format.hpp>
#include <storewatch/journal/layout.hpp>
#include <storewatch/journal/scan.hpp>
#include <storewatch/source.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storewatch {
namespace detail {

/// Reads every pending inotify event from `fd` (non-blocking) and returns the
/// names of folders created in the folder watched by `parent_watch`.
/// An ordinary function, not a coroutine: inotify_event has a flexible array
/// member and is copied out of the byte buffer with memcpy for alignment.
inline std::vector<std::string> drain_inotify(int fd, int parent_watch) {
  std::vector<std::string> new_folders;
  alignas(inotify_event) char buffer[16384];
  for (;;) {
    const auto got = ::read(fd, buffer, sizeof buffer);
    if (got <= 0) break;  // EAGAIN: drained
    for (std::size_t at = 0; at + sizeof(inotify_event) <= static_cast<std::size_t>(got);) {
      inotify_event header;
      std::memcpy(&header, buffer + at, sizeof header);
      const std::size_t length = sizeof header + header.len;
      if (at + length > static_cast<std::size_t>(got)) break;
      if (header.wd == parent_watch && (header.mask & IN_ISDIR) && (header.mask & (IN_CREATE | IN_MOVED_TO)) &&
          header.len > 0) {
        new_folders.emplace_back(buffer + at + sizeof header);  // NUL-padded name
      }
      at += length;
    }
  }
  return new_folders;
}

}  // namespace detail

/// Options of a journal source.
struct journal_source_options {
  /// Bytes read from one segment per step; a record longer than this is
  /// reported as corrupt.
  std::size_t read_chunk = 1 << 20;
  /// Signal changes through inotify. Off (or on a network file system,
  /// where inotify does not see other machines' writes),
  /// `async_wait_for_change` fails with `errc::wake_ups_unavailable` and the
  /// poller polls at its interval, saying so once.
  bool wake_ups = true;
  /// Checks each whole record's event: a non-empty answer (why) makes it a
  /// corrupt record, reported with its file and offset and not delivered.
  /// `local_store::events()` sets one that accepts only what a store writes.
  std::function<std::string(const event&)> record_check{};
  /// Where polls read the journal (blocking file I/O): an executor you own,
  /// say an `asio::thread_pool`'s, so the source's executor goes on serving
  /// other work meanwhile; the completion still comes through the source's
  /// executor. Empty (the default): the source's executor.
  asio::any_io_executor blocking_executor{};
};

/// Polls one user's journal (its layout is described at the top of
/// journal/layout.hpp).
///
/// Cursor: "j1;<epoch>;<writer>=<offset>;...". A cursor from
/// another epoch (the journal was recreated), or pointing into segments
/// that retention removed, yields a GAP event saying what is gone. Corrupt
/// records are reported in `poll_result::problems` with the file and offset
/// and skipped; a torn record at the end of a writer's newest segment is
/// waited for (the writer may be writing it), and reported only once the
/// writer has moved to a later segment.
///
/// Blocking file reads run on the source's executor. Not thread-safe, like
/// any Asio I/O object: use it from one thread or strand. It must outlive
/// its pending operations.
template <class Executor = asio::any_io_executor>
class basic_journal_source {
 public:
  /// The executor type; reads and completions without an associated
  /// executor run on it.
  using executor_type = Executor;

  /// The source type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_journal_source<OtherExecutor>;  ///< the source on `OtherExecutor`
  };

  /// A source for the journal in `journal_dir` (`<root>/journals/<user>` of
  /// a store). The folder need not exist yet: polls then find nothing.
  basic_journal_source(const executor_type& executor, std::filesystem::path journal_dir,
                       journal_source_options options = {})
      : executor_(executor), dir_(std::move(journal_dir)), options_(options) {}

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }
  /// The journal's folder.
  const std::filesystem::path& directory() const noexcept { return dir_; }

  /// Reads up to `max_events` new events after `cursor`.
  /// Completion signature: `void(std::error_code, poll_result)`.
  /// Errors: `errc::store_io_failed` when the journal cannot be read (the
  /// poller retries; `last_error()` names the file and step), or when
  /// `options.record_check` throws (`last_error()` holds its text). A malformed
  /// cursor is reported as a problem, answered with a GAP event, and reading
  /// starts from the oldest segments.
  /// The read is posted to the source's executor and blocks it while it
  /// runs; the handler runs after it, never inside this call, on its
  /// associated executor (default: the source's).
  /// Cancellation: none; a poll reads only the bytes written since `cursor`,
  /// at most `max_events` records.
  template <asio::completion_token_for<void(std::error_code, poll_result)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_poll(std::string_view cursor, std::size_t max_events,
                  CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return detail::async_blocking_call<poll_result>(
        executor_, options_.blocking_executor, last_error_,
        [this, cursor = std::string(cursor), max_events] { return poll(cursor, max_events); },
        std::forward<CompletionToken>(token));
  }

  /// Completes when the journal may have changed since the last wait: an
  /// inotify watch on the journal folder and each writer's folder, read
  /// through a `posix::stream_descriptor` on the source's executor (no
  /// thread). A hint only: the poller polls at its interval anyway, which
  /// covers mounts where inotify does not see other machines' writes.
  /// The first wait completes at once (a change may have slipped in before
  /// the watches existed), as does the first after the journal folder was
  /// removed. Makes the journal folder if it does not exist.
  /// Completion signature: `void(std::error_code)`. Errors:
  /// `errc::store_io_failed` when the folder cannot be made or inotify is
  /// unavailable (`last_error()` names the step; the poller then polls
  /// only); `errc::wake_ups_unavailable` when `options.wake_ups` is off or
  /// the journal is on a network file system (`last_error()` names it);
  /// `operation_aborted` when cancelled. The handler never runs
  /// inside this call; it runs on its associated executor (default: the
  /// source's). Cancellation (of a wait that waits): terminal, partial,
  /// total.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_wait_for_change(std::string_view /*cursor*/,
                             CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler) {
          if (!notifier_) {
            std::error_code ec;
            try {
              arm();
            } catch (const std::system_error& error) {
              ec = error.code();
              last_error_ = error.what();
            }
            detail::post_completion(executor_, std::move(handler), ec);
            return;
          }
          notifier_->async_wait(asio::posix::descriptor_base::wait_read,
                                detail::intercept(std::move(handler), [this](std::error_code& ec) {
                                  if (ec) return;
                                  try {
                                    on_notified();
                                  } catch (const std::system_error& error) {
                                    ec = error.code();
                                    last_error_ = error.what();
                                  }
                                }));
        },
        token);
  }

  /// What the last failed `async_poll` or `async_wait_for_change` said
  /// (file and step).
  const std::string& last_error() const noexcept { return last_error_; }

  /// The synchronous poll behind `async_poll`, on the calling thread;
  /// throws `std::system_error`.
  poll_result poll(std::string_view cursor_text, std::size_t max_events) {
    poll_result result;
    std::string why;
    auto cursor = detail::journal_cursor::decode(cursor_text, why);
    if (!cursor) {
      result.problems.push_back({errc::invalid_cursor, "journal " + dir_.string() + ": cursor " +
                                                           detail::quote(cursor_text) + " " + why +
                                                           "; reading from the oldest records kept"});
      result.events.push_back(gap("cursor " + detail::quote(cursor_text) + " was not understood"));
      cursor.emplace();
    }
    std::string epoch_problem;
    const auto epoch = detail::read_epoch(dir_, &epoch_problem);
    if (!epoch) {  // no journal yet: nothing to read
      result.next_cursor = cursor->encode();
      return result;
    }
    if (!epoch_problem.empty() && cursor->epoch != *epoch) {
      // Reported once: the next cursor holds the stand-in epoch. Whether the
      // journal was recreated cannot be told, so positions are kept (nothing
      // is delivered twice) and a reader that was reading it gets one GAP.
      result.problems.push_back({errc::corrupt_record, epoch_problem});
      if (!cursor->epoch.empty()) {
        result.events.push_back(gap("journal " + dir_.string() + ": its epoch file became unreadable (epoch " +
                                    cursor->epoch + " -> " + *epoch +
                                    "); if the journal was recreated, its events before the cursor's positions "
                                    "are not delivered"));
        cursor->epoch = *epoch;
      }
    }
    if (epoch_problem.empty() && detail::is_stand_in_epoch(cursor->epoch)) {
      // The epoch file was repaired: the positions kept meanwhile hold (the
      // GAP when it went bad said what could not be told).
      cursor->epoch = *epoch;
    }
    if (!cursor->epoch.empty() && cursor->epoch != *epoch) {
      result.events.push_back(gap("journal " + dir_.string() + " was recreated (epoch " + cursor->epoch + " -> " +
                                  *epoch + "); events of the old journal after the cursor are unknown"));
      cursor->writers.clear();
    }
    const bool resuming = !cursor->epoch.empty();
    cursor->epoch = *epoch;
    for (const auto& writer : detail::list_writers(dir_)) {
      if (result.events.size() >= max_events) break;
      read_writer(writer, *cursor, resuming, result, max_events);
    }
    result.next_cursor = cursor->encode();
    return result;
  }

 private:
  static event gap(std::string what) { return detail::make_gap(std::move(what)); }

  static event removed_gap(const std::filesystem::path& writer_dir, detail::byte_range bytes, std::string_view when) {
    return gap("journal " + writer_dir.string() + ": bytes " + std::to_string(bytes.from) + " to " +
               std::to_string(bytes.to) + " of this writer were removed " + std::string(when));
  }

  void read_writer(const std::string& writer, detail::journal_cursor& cursor, bool resuming, poll_result& result,
                   std::size_t max_events) {
    const auto writer_dir = dir_ / writer;
    const auto bases = detail::list_segments(writer_dir);
    if (bases.empty()) return;
    const auto known = cursor.writers.find(writer);
    const auto start = detail::start_of_writer(
        bases.front(), known != cursor.writers.end() ? std::optional(known->second) : std::nullopt, resuming);
    if (start.removed) {
      result.events.push_back(removed_gap(writer_dir, *start.removed, "by retention before they were read"));
    }
    auto offset = start.offset;
    for (auto segment = std::upper_bound(bases.begin(), bases.end(), offset); result.events.size() < max_events;) {
      const auto base = *std::prev(segment);
      const auto next_base = segment != bases.end() ? std::optional(*segment) : std::nullopt;
      bool vanished = false;
      const bool finished = read_segment(writer_dir / detail::segment_name(base), base, offset, next_base.has_value(),
                                         result, max_events, vanished);
      if (const auto removed = vanished ? detail::removed_while_reading(offset, next_base) : std::nullopt) {
        result.events.push_back(removed_gap(writer_dir, *removed, "while being read"));
      }
      if (!finished || !next_base) break;
      offset = *segment++;  // the next segment starts where this one ended
    }
    cursor.writers[writer] = offset;
  }

  // Reads the segment starting at `base` from `offset` (a writer-wide byte
  // offset) and feeds its bytes to a scanner, which decides what they hold;
  // advances `offset` past what was scanned. Returns true when the segment
  // was read to its end.
  bool read_segment(const std::filesystem::path& file, std::uint64_t base, std::uint64_t& offset, bool sealed,
                    poll_result& result, std::size_t max_events, bool& vanished) {
    detail::unique_fd fd(detail::sys::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      vanished = errno == ENOENT;
      if (vanished) return true;  // compacted meanwhile: the caller reports the gap
      throw detail::file_error(errc::store_io_failed, detail::journal_what, file, "open", errno);
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
      throw detail::file_error(errc::store_io_failed, detail::journal_what, file, "stat", errno);
    }
    const detail::segment_extent extent{base, base + static_cast<std::uint64_t>(info.st_size), sealed};
    const detail::scan_options limits{options_.read_chunk, max_events - std::min(max_events, result.events.size()),
                                      &options_.record_check};
    detail::segment_scanner scanner(extent, offset, limits);
    // Not zero-filled: pread overwrites what is used.
    std::unique_ptr<char[]> buffer;
    std::size_t buffer_size = 0;
    while (scanner.wanted() > 0) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(options_.read_chunk, scanner.wanted()));
      const auto at = scanner.next_byte() - base;
      if (buffer_size < want) {
        buffer = std::make_unique_for_overwrite<char[]>(want);
        buffer_size = want;
      }
      std::size_t got = 0;  // a short read is not the end of the file: read on until `want` or the end
      while (got < want) {
        const auto n = detail::sys::pread(fd.get(), buffer.get() + got, want - got, static_cast<off_t>(at + got),
                                          file.c_str());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw detail::file_error(errc::store_io_failed, detail::journal_what, file, "read", errno);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
      }
      if (got == 0) break;
      scanner.feed(std::string_view(buffer.get(), got));
    }
    const bool finished = scanner.finish();
    offset = scanner.offset();
    auto found = scanner.take();
    for (const auto& problem : found.problems) {
      result.problems.push_back({problem.code(), problem.message(file.string(), base)});
    }
    if (result.events.empty()) {
      result.events = std::move(found.records);
    } else {
      std::move(found.records.begin(), found.records.end(), std::back_inserter(result.events));
    }
    return finished;
  }

  // Creates the inotify descriptor and watches the journal and its writers.
  void arm() {
    detail::ensure_journal(dir_);
    if (!options_.wake_ups) {
      throw std::system_error(errc::wake_ups_unavailable, "journal " + dir_.string() + ": wake-ups turned off");
    }
    if (const auto network = detail::network_file_system(dir_)) {
      throw std::system_error(errc::wake_ups_unavailable, "journal " + dir_.string() + " is on a " +
                                                              std::string(*network) +
                                                              " file system: inotify does not see writes made on "
                                                              "other machines");
    }
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw detail::file_error(errc::store_io_failed, detail::journal_what, dir_, "inotify_init1", errno);
    notifier_.emplace(executor_, fd);
    journal_watch_ = ::inotify_add_watch(fd, dir_.c_str(), IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR);
    if (journal_watch_ < 0) {
      const int error_number = errno;
      notifier_.reset();
      throw detail::file_error(errc::store_io_failed, detail::journal_what, dir_, "inotify_add_watch", error_number);
    }
    for (const auto& writer : detail::list_writers(dir_)) watch_writer(writer);
  }

  void watch_writer(const std::string& writer) {
    const auto folder = dir_ / writer;
    if (::inotify_add_watch(notifier_->native_handle(), folder.c_str(), IN_MODIFY | IN_CREATE | IN_ONLYDIR) < 0 &&
        errno != ENOENT) {
      throw detail::file_error(errc::store_io_failed, detail::journal_what, folder, "inotify_add_watch", errno);
    }
  }

  void on_notified() {
    for (const auto& folder : detail::drain_inotify(notifier_->native_handle(), journal_watch_)) {
      if (detail::is_writer_name(folder)) watch_writer(folder);
    }
    struct stat info {};
    if (::stat(dir_.c_str(), &info) != 0) notifier_.reset();  // the journal was removed: arm again next time
  }

  executor_type executor_;
  std::filesystem::path dir_;
  journal_source_options options_;
  std::string last_error_;
  std::optional<asio::posix::basic_stream_descriptor<Executor>> notifier_;
  int journal_watch_ = -1;
};

/// The journal source on `asio::any_io_executor`.
using journal_source = basic_journal_source<>;

}  // namespace storewatch
