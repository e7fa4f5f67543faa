/// \file
/// A source that watches a directory tree: CREATE, MODIFY, DELETE and
/// RENAME events for the files and directories in it.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/files.hpp>
#include <storewatch/detail/intercept.hpp>
#include <storewatch/journal/format.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/tree.hpp>
#include <storewatch/detail/tree_watch.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/source.hpp>
#include <storewatch/journal/reader.hpp>
#include <storewatch/journal/writer.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/inotify.h>
#include <unistd.h>

namespace storewatch {

namespace detail {

/// The test seam of directory sources, compiled only with STOREWATCH_TESTING
/// (the library's test programs): an errno to fake when opening a directory
/// (path relative to the root), 0 for none. A source takes the hook set
/// when it is made.
#ifdef STOREWATCH_TESTING
inline std::function<int(const std::string& dir)> directory_open_fault{};
inline std::function<int(const std::string&)> directory_open_fault_hook() { return directory_open_fault; }
#else
inline std::function<int(const std::string&)> directory_open_fault_hook() { return {}; }
#endif

}  // namespace detail

/// Options of a directory source.
struct directory_options {
  /// Watch the whole tree; false: only the root directory's own entries.
  bool recursive = true;
  /// Only files matching one of these globs (none: every file). A glob with
  /// a '/' matches the path relative to the root, one without matches the
  /// name; `*` does not cross a '/'.
  std::vector<std::string> include{};
  /// Files and directories matching one of these are left out (a directory
  /// with everything below it).
  std::vector<std::string> exclude{};
  /// Entries whose names start with '.'.
  bool hidden = true;
  /// Symbolic links, reported as entries of their own. Links are never
  /// followed, so none leads out of the root and a loop costs nothing.
  bool symlinks = true;
  /// How long a directory must be quiet after a change before it is
  /// rescanned: the steps of one editor's save (write a temporary, rename it
  /// over the file) then come out as one MODIFY.
  std::chrono::milliseconds settle{50};
  /// Watch with inotify. Without it (or where inotify cannot watch: watch
  /// limits, network file systems' remote writers) every poll rescans.
  bool wake_ups = true;
  /// With inotify, a full rescan this often anyway: the safety net.
  std::chrono::milliseconds full_rescan_interval{std::chrono::minutes(1)};
  /// Where polls scan the tree and write and read the source's journal
  /// (blocking file I/O): an executor you own, say an `asio::thread_pool`'s,
  /// so the source's executor goes on serving other work meanwhile; the
  /// completion still comes through the source's executor. As
  /// `journal_source_options::blocking_executor`. Empty (the default): the
  /// source's executor.
  asio::any_io_executor blocking_executor{};
  /// Where the source keeps its event journal and snapshot. A restarted
  /// source with the same folder reports what changed while it was down.
  /// Empty: a private temporary folder, removed with the source. A folder
  /// inside the watched tree is left out of it (its own writes are not
  /// changes to report); the watched directory itself is refused.
  std::filesystem::path state_dir{};
  /// On the very first scan (no saved snapshot), report every entry as
  /// CREATE; by default that scan only sets the baseline.
  bool report_existing = false;
  /// The snapshot is saved after this many events (and when the source is
  /// destroyed); a restart replays the journal after it.
  std::size_t snapshot_every = 10000;
  /// Make a poll's events durable in the source's journal (an fsync)
  /// before they are served. That fsync is most of the time from a change
  /// to its delivery: about a millisecond on an idle disk, tens under
  /// write load. false: the events are written to the journal and served,
  /// and made durable right after (when the poller next waits for a change,
  /// or at the next poll; at once when more than 1 MiB of them is not
  /// durable yet). Nothing is lost or repeated unless the machine crashes
  /// meanwhile; then the events served but lost with the journal's tail are
  /// found again by the restarted source's rescan, as new events after the
  /// ones a checkpoint holds (a listener is told that its cursor was past
  /// the journal's end), and a failed fsync is reported instead of taking
  /// the events back (they were delivered).
  bool sync_before_delivery = true;
  /// Most inotify watches this source sets; 0: as many as the system allows.
  /// (When they run out, directories without one are found by rescans.)
  std::size_t max_watches = 0;
};

/// Watches the directory tree under `root` and serves its changes as events
/// to a poller: CREATE, MODIFY, DELETE (`event_name::delete_`) and RENAME,
/// with `data` the path relative to the root and `attributes` holding
/// "kind" ("file", "directory", "symlink", "other"), "inode", "size",
/// "mtime_ns" and, for RENAME, "from".
///
/// Correctness comes from snapshots: the source keeps each directory's
/// entries (name, inode, size, mtime, kind) and diffs fresh listings against
/// them; inotify only says where to look sooner. A queue overflow or a
/// missing watch makes it rescan. Entries gone from one path and present at
/// another with the same inode are a RENAME; the two directories of a move
/// (paired by inotify's cookie) are rescanned together. A directory that
/// cannot be read is reported once (path and reason) and skipped.
///
/// Events are written to a journal in `state_dir` before they are served, so
/// cursors, checkpoints, GAP and exactly-once delivery work as for a store's
/// journal; the first poll scans the tree (blocking, on the executor or
/// `directory_options::blocking_executor`). The snapshot advances only with
/// the journal: when a write fails, what was written is voided, and the next
/// poll reloads the state from the journal and rescans, so the changes are
/// reported then.
/// Not thread-safe: use it from one thread or strand (the poller does); with
/// a blocking executor, one operation at a time.
template <class Executor = asio::any_io_executor>
class basic_directory_source {
 public:
  /// The executor type; scans, reads and completions without an associated
  /// executor run on it.
  using executor_type = Executor;

  /// The source type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_directory_source<OtherExecutor>;  ///< the source on `OtherExecutor`
  };

  /// Watches `root`. Throws `std::system_error` (`errc::store_io_failed`)
  /// when the state folder cannot be made, (`std::errc::invalid_argument`)
  /// when it is `root` itself.
  basic_directory_source(const executor_type& executor, std::filesystem::path root, directory_options options = {})
      : executor_(executor),
        options_(std::move(options)),
        state_(make_state_dir(root, options_.state_dir)),
        journal_(executor, state_.path / journal_user),
        writer_(state_.path, make_writer_name(), 64ull << 20),
        watcher_(*this),
        scanner_(root,
                 detail::tree_filter{options_.include, options_.exclude, options_.hidden, options_.symlinks,
                                     options_.recursive, state_inside(root, state_.path)},
                 watcher_, detail::directory_open_fault_hook()),
        settle_timer_(executor),
        schedule_(options_.settle) {
    if (!options_.sync_before_delivery && !state_.owned) {
      // A run before this one that served events before syncing them, and
      // did not end cleanly, may have served more than the journal holds.
      if (std::filesystem::exists(state_.path / unsynced_marker)) writer_.skip_on_claim(unsynced_limit);
      detail::write_file_atomically(state_.path / unsynced_marker, "", errc::store_io_failed,
                                    "directory source state");
    }
  }

  basic_directory_source(const basic_directory_source&) = delete;
  basic_directory_source& operator=(const basic_directory_source&) = delete;

  /// Saves the snapshot (if anything changed since) and, for a private
  /// state folder, removes it.
  ~basic_directory_source() {
    if (state_.owned) return;
    try {
      if (started_ && events_since_snapshot_ > 0) {
        save_snapshot();
      } else {
        sync_deferred();
      }
      if (!options_.sync_before_delivery && !unsynced_ && !sync_failed_) {
        std::error_code ignored;  // left: the next start skips a gap it did not need to
        std::filesystem::remove(state_.path / unsynced_marker, ignored);  // all served is durable: a clean end
      }
    } catch (const std::system_error&) {
      // The journal has the events; the next start replays them.
    }
  }

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }
  /// The watched directory.
  const std::filesystem::path& root() const noexcept { return scanner_.root(); }
  /// Entries in the snapshot.
  std::size_t entry_count() const noexcept { return scanner_.entry_count(); }

  /// Scans what is due (directories whose settle time passed; everything
  /// when a full rescan is due), then reads up to `max_events` events after
  /// `cursor`. Completion signature: `void(std::error_code, poll_result)`.
  /// Errors: `errc::store_io_failed` when the state folder cannot be
  /// written or read (the poller retries; none of the events of a failed
  /// write stay, unless the message says voiding them failed too).
  /// Unreadable directories are `poll_result::problems`. The scan and read
  /// are posted to `directory_options::blocking_executor` (default: the
  /// source's executor) and block it while they run; the handler runs after
  /// them, never inside this call, on its associated executor (default: the
  /// source's). Do not poll while an `async_wait_for_change` is pending (the
  /// poller never does): both use the watch table. Cancellation: none; a
  /// poll scans only the directories due.
  template <asio::completion_token_for<void(std::error_code, poll_result)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_poll(std::string_view cursor, std::size_t max_events,
                  CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return detail::async_blocking_call<poll_result>(
        executor_, options_.blocking_executor, last_error_,
        [this, cursor = std::string(cursor), max_events] { return poll(cursor, max_events); },
        std::forward<CompletionToken>(token));
  }

  /// Completes when the tree may have changed: a directory's settle time
  /// has passed, or inotify reported a change. A hint only.
  /// Completion signature: `void(std::error_code)`. Errors: `errc::wake_ups_unavailable`
  /// when there is no inotify watch (wake-ups off, inotify unavailable, a
  /// network file system, or out of watches);
  /// `operation_aborted` when cancelled. The handler never runs inside this
  /// call; it runs on its associated executor (default: the source's).
  /// Cancellation: terminal, partial, total.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_wait_for_change(std::string_view /*cursor*/,
                             CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler) {
          if (!notifier_ || unwatched_) {
            detail::post_completion(executor_, std::move(handler), make_error_code(errc::wake_ups_unavailable));
            return;
          }
          if (!unsynced_) {
            wait(std::move(handler));
            return;
          }
          // The last poll's events were served unsynced: sync them first.
          // Queued after their delivery (the poller pushed them before it
          // waits), on the blocking executor if there is one.
          auto cancelled = std::make_shared<bool>(false);
          if (auto slot = asio::get_associated_cancellation_slot(handler); slot.is_connected()) {
            slot.assign([cancelled](asio::cancellation_type) { *cancelled = true; });
          }
          detail::async_blocking_call<bool>(
              executor_, options_.blocking_executor, last_error_,
              [this] {
                sync_deferred();
                return true;
              },
              [this, cancelled, h = std::move(handler)](std::error_code, bool) mutable {
                if (auto slot = asio::get_associated_cancellation_slot(h); slot.is_connected()) slot.clear();
                if (*cancelled) {
                  detail::post_completion(executor_, std::move(h), std::error_code(asio::error::operation_aborted));
                  return;
                }
                wait(std::move(h));
              });
        },
        token);
  }

  /// Synchronous `async_poll`.
  poll_result poll(std::string_view cursor, std::size_t max_events) {
    std::vector<source_problem> problems;
    sync_deferred();  // when the poller did not wait since (no wake-ups, or a full batch)
    if (!started_) {
      start();
    } else {
      scan_due();
    }
    for (auto& message : scanner_.take_problems()) problems.push_back({errc::source_unavailable, std::move(message)});
    for (auto& message : std::exchange(notes_, {})) problems.push_back({errc::source_unavailable, std::move(message)});
    auto result = journal_.poll(cursor, max_events);
    result.problems.insert(result.problems.begin(), std::make_move_iterator(problems.begin()),
                           std::make_move_iterator(problems.end()));
    return result;
  }

  /// What the last failed poll said.
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  static constexpr const char* journal_user = "events";
  /// Present in the state folder while a source that serves events before
  /// syncing them runs (`sync_before_delivery` false).
  static constexpr const char* unsynced_marker = "unsynced";
  /// Most bytes of records served before they are durable.
  static constexpr std::uint64_t unsynced_limit = 1 << 20;

  /// Waits for the settle time of the next directory due or, with none,
  /// for inotify (reading its queue into the schedule).
  template <class Handler>
  void wait(Handler handler) {
    // What inotify has queued meanwhile counts from now, not from when the
    // settle timer would next let it be read: an entry's last events (a
    // close after a create) read a settle late would postpone its rescan
    // by a settle.
    drain();
    if (overflowed_) {  // the whole tree is due now
      detail::post_completion(executor_, std::move(handler), std::error_code());
      return;
    }
    if (const auto earliest = schedule_.next_due()) {
      settle_timer_.expires_at(*earliest);
      settle_timer_.async_wait(std::move(handler));
      return;
    }
    notifier_->async_wait(asio::posix::descriptor_base::wait_read,
                          detail::intercept(std::move(handler), [this](std::error_code& ec) {
                            if (!ec) drain();
                          }));
  }

  /// Makes the records served before they were synced durable. A failure
  /// is reported at the next poll: the events were delivered already.
  void sync_deferred() {
    if (!unsynced_) return;
    unsynced_ = false;
    unsynced_bytes_ = 0;
    try {
      writer_.sync();
    } catch (const std::system_error& error) {
      sync_failed_ = true;
      notes_.push_back(std::string(error.what()) +
                       "; its events were delivered already, and may be lost if the machine crashes before the "
                       "file is written");
    }
  }

  struct state_folder {
    std::filesystem::path path;
    bool owned = false;
    state_folder(std::filesystem::path p, bool o) : path(std::move(p)), owned(o) {}
    state_folder(const state_folder&) = delete;
    state_folder& operator=(const state_folder&) = delete;
    ~state_folder() {
      std::error_code ignored;
      if (owned) std::filesystem::remove_all(path, ignored);
    }
  };

  static state_folder make_state_dir(const std::filesystem::path& root, const std::filesystem::path& wanted) {
    if (!wanted.empty()) {
      if (state_inside(root, wanted) == ".") {
        // Its files could not be left out of the tree: each write would be reported, for ever.
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "directory source state " + wanted.string() + " is the watched directory " +
                                    root.string() + " itself");
      }
      std::error_code ec;
      std::filesystem::create_directories(wanted, ec);
      if (ec) throw detail::file_error(errc::store_io_failed, "directory source state", wanted, "mkdir", ec.value());
      return {wanted, false};
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "storewatch-directory-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw detail::file_error(errc::store_io_failed, "directory source state", pattern, "mkdtemp", errno);
    }
    return {pattern, true};
  }

  /// `state`'s path relative to `root` when it lies inside the watched
  /// tree ("." for the root itself), else empty.
  static std::string state_inside(const std::filesystem::path& root, const std::filesystem::path& state) {
    std::error_code ec;
    const auto tree = std::filesystem::weakly_canonical(root, ec);
    if (ec) return {};
    const auto folder = std::filesystem::weakly_canonical(state, ec);
    if (ec) return {};
    const auto inside = folder.lexically_relative(tree);
    if (inside.empty() || *inside.begin() == "..") return {};
    return inside.generic_string();
  }

  static std::string make_writer_name() {
    // Name order is start order, so a restarted source's events sort after
    // its predecessor's.
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    std::string digits = std::to_string(ms);
    digits.insert(0, 16 - std::min<std::size_t>(16, digits.size()), '0');
    return "dir-" + digits + "-" + detail::random_hex(6);
  }

  struct inotify_watcher final : detail::tree_watcher {
    explicit inotify_watcher(basic_directory_source& source) : source(source) {}
    int add(const std::string& dir) override { return source.add_watch(dir); }
    void remove(int watch, const std::string& dir) override {
      if (source.watches_.release(watch, dir) && source.notifier_) {
        ::inotify_rm_watch(source.notifier_->native_handle(), watch);
      }
    }
    void moved(int watch, const std::string& from, const std::string& to) override {
      source.watches_.move(watch, from, to);
    }
    basic_directory_source& source;
  };

  int add_watch(const std::string& dir) {
    if (!notifier_) return -1;
    if (options_.max_watches && watches_.size() >= options_.max_watches) {
      out_of_watches(dir, ENOSPC);
      return -1;
    }
    constexpr std::uint32_t mask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVED_FROM |
                                   IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW |
                                   IN_EXCL_UNLINK;
    const auto path = dir.empty() ? scanner_.root() : scanner_.root() / dir;
    const int watch = ::inotify_add_watch(notifier_->native_handle(), path.c_str(), mask);
    if (watch < 0) {
      if (errno == ENOSPC || errno == ENOMEM) out_of_watches(dir, errno);
      return -1;  // gone or unreadable: the scan says so
    }
    watches_.hold(watch, dir);
    return watch;
  }

  void out_of_watches(const std::string& dir, int error_number) {
    if (!unwatched_) {
      notes_.push_back("directory " + (scanner_.root() / dir).string() + ": no inotify watch (" +
                       std::generic_category().message(error_number) +
                       "; see fs.inotify.max_user_watches); the tree is rescanned at every poll instead");
    }
    unwatched_ = true;
  }

  /// Opens the inotify descriptor, unless wake-ups are off or cannot work.
  void set_up_notifier() {
    const auto network = options_.wake_ups ? detail::network_file_system(scanner_.root()) : std::nullopt;
    if (network) {
      notes_.push_back("directory " + scanner_.root().string() + " is on a " + std::string(*network) +
                       " file system, where inotify does not see writes made on other machines; the tree is "
                       "rescanned at every poll");
    } else if (options_.wake_ups) {
      const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (fd >= 0) {
        notifier_.emplace(executor_, fd);
      } else {
        notes_.push_back("inotify is unavailable (" + std::generic_category().message(errno) +
                         "); the tree is rescanned at every poll");
      }
    }
  }

  /// Loads the state the journal holds (the snapshot file and the events
  /// after it), then scans the tree against it. Also after a failed append:
  /// the state in memory may then be ahead of the journal.
  void start() {
    if (!set_up_) {
      set_up_ = true;
      set_up_notifier();
    }
    scanner_.reset();
    schedule_.clear();
    overflowed_ = false;
    bool known = false;
    std::string cursor;
    if (auto text = detail::read_whole_file(state_.path / "snapshot", errc::store_io_failed, "snapshot")) {
      std::string why;
      const auto newline = text->find('\n');
      const std::string_view header = std::string_view(*text).substr(0, newline);
      if (newline != std::string::npos && header.starts_with(snapshot_header) &&
          scanner_.deserialize(std::string_view(*text).substr(newline + 1), why)) {
        cursor = std::string(header.substr(snapshot_header.size()));
        known = true;
      } else {
        notes_.push_back("snapshot " + (state_.path / "snapshot").string() + " is unreadable (" +
                         (why.empty() ? "bad header" : why) + "); rebuilding it from the journal");
      }
    }
    // Replay what the journal has after the snapshot: the state served so far.
    for (;;) {
      auto batch = journal_.poll(cursor, 4096);
      cursor = std::move(batch.next_cursor);
      if (batch.events.empty()) break;
      for (const auto& e : batch.events) {
        if (e.name == event_name::gap) continue;
        if (auto change = to_change(e)) {
          scanner_.apply(*change);
          known = true;
        }
      }
    }
    scanner_.watch_all();
    auto changes = scanner_.scan_all();
    last_full_scan_ = std::chrono::steady_clock::now();
    if (known || options_.report_existing) append(changes);
    started_ = true;
    save_snapshot();
  }

  /// Reads inotify's queue into the rescan schedule.
  void drain() {
    const auto now = std::chrono::steady_clock::now();
    char buffer[65536];
    for (;;) {
      const auto got = ::read(notifier_->native_handle(), buffer, sizeof buffer);
      if (got <= 0) break;
      auto outcome =
          reader_.apply(detail::parse_inotify(buffer, static_cast<std::size_t>(got)), watches_, schedule_, now);
      for (const auto& dir : outcome.lost_watches) scanner_.forget_watch(dir);
      if (outcome.overflowed) {
        if (!overflowed_) notes_.push_back("inotify's queue overflowed; rescanning the whole tree");
        overflowed_ = true;
      }
    }
  }

  void scan_due() {
    if (notifier_) drain();
    const auto now = std::chrono::steady_clock::now();
    std::vector<detail::tree_change> changes;
    if (!notifier_ || unwatched_ || overflowed_ || now - last_full_scan_ >= options_.full_rescan_interval) {
      changes = scanner_.scan_all();
      schedule_.clear();
      overflowed_ = false;
      last_full_scan_ = now;
    } else {
      const auto due = schedule_.take_due(now);
      if (due.empty()) return;
      changes = scanner_.scan_each(due);
    }
    append(changes);
    if (events_since_snapshot_ >= options_.snapshot_every) save_snapshot();
  }

  /// Writes `changes` to the journal, durably. If that fails, nothing of
  /// them stays in the journal (unless even voiding them failed, which the
  /// error then says) and the next poll starts again from the journal.
  void append(const std::vector<detail::tree_change>& changes) {
    if (changes.empty()) return;
    std::string lines;
    const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    for (const auto& change : changes) {
      event e;
      switch (change.what) {
        case detail::tree_change::kind::create: e.name = event_name::create; break;
        case detail::tree_change::kind::modify: e.name = event_name::modify; break;
        case detail::tree_change::kind::remove: e.name = event_name::delete_; break;
        case detail::tree_change::kind::rename: e.name = event_name::rename; break;
      }
      e.data = change.path;
      e.id = writer_.name() + "-" + std::to_string(writer_.next_sequence());
      e.occurred_at = now;
      e.attributes = {{"kind", detail::kind_name(change.state.kind)},
                      {"inode", change.state.inode},
                      {"size", change.state.size},
                      {"mtime_ns", change.state.mtime_ns}};
      if (change.what == detail::tree_change::kind::rename) e.attributes["from"] = change.from;
      lines += detail::encode_record(e);
    }
    try {
      writer_.append(journal_user, lines);
      if (options_.sync_before_delivery || unsynced_bytes_ + lines.size() > unsynced_limit) {
        writer_.sync();  // also what earlier polls served unsynced
        unsynced_ = false;
        unsynced_bytes_ = 0;
      } else {
        writer_.keep();  // served now, synced soon after (sync_deferred)
        unsynced_ = true;
        unsynced_bytes_ += lines.size();
      }
    } catch (const std::system_error& error) {
      // The scan has moved the snapshot past what the journal holds. Void
      // what was written, and start again from the journal at the next
      // poll: its rescan finds these changes again.
      const auto left = writer_.take_back();
      started_ = false;
      if (left.empty()) throw;
      throw std::system_error(error.code(), error.what() + left);
    }
    events_since_snapshot_ += changes.size();
  }

  /// The change a journal event records; nullopt for one that is not ours.
  static std::optional<detail::tree_change> to_change(const event& e) {
    detail::tree_change change;
    if (e.name == event_name::create) {
      change.what = detail::tree_change::kind::create;
    } else if (e.name == event_name::modify) {
      change.what = detail::tree_change::kind::modify;
    } else if (e.name == event_name::delete_) {
      change.what = detail::tree_change::kind::remove;
    } else if (e.name == event_name::rename) {
      change.what = detail::tree_change::kind::rename;
    } else {
      return std::nullopt;
    }
    const auto& a = e.attributes;
    if (!a.is_object() || !a.contains("kind") || !a["kind"].is_string() || !a.contains("inode") ||
        !a["inode"].is_number_unsigned() || !a.contains("size") || !a["size"].is_number_integer() ||
        !a.contains("mtime_ns") || !a["mtime_ns"].is_number_integer()) {
      return std::nullopt;
    }
    const auto kind = detail::kind_from_name(a["kind"].get<std::string>());
    if (!kind) return std::nullopt;
    change.path = e.data;
    change.state = {a["inode"].get<std::uint64_t>(), a["size"].get<std::int64_t>(), a["mtime_ns"].get<std::int64_t>(),
                    *kind};
    if (change.what == detail::tree_change::kind::rename) {
      if (!a.contains("from") || !a["from"].is_string()) return std::nullopt;
      change.from = a["from"].get<std::string>();
    }
    return change;
  }

  /// The cursor at the journal's end: every writer's bytes.
  std::string end_cursor() const {
    const auto dir = state_.path / journal_user;
    detail::journal_cursor cursor;
    cursor.epoch = detail::read_epoch(dir).value_or("");
    for (const auto& writer : detail::list_writers(dir)) {
      const auto segments = detail::list_segments(dir / writer);
      if (segments.empty()) continue;
      std::error_code ec;
      const auto size = std::filesystem::file_size(dir / writer / detail::segment_name(segments.back()), ec);
      cursor.writers[writer] = segments.back() + (ec ? 0 : size);
    }
    return cursor.encode();
  }

  void save_snapshot() {
    sync_deferred();  // the snapshot never covers records that are not durable
    detail::write_file_atomically(state_.path / "snapshot",
                                  std::string(snapshot_header) + end_cursor() + "\n" + scanner_.serialize(),
                                  errc::store_io_failed, "directory source snapshot");
    events_since_snapshot_ = 0;
  }

  static constexpr std::string_view snapshot_header = "storewatch-tree 1\t";

  executor_type executor_;
  directory_options options_;
  state_folder state_;
  basic_journal_source<Executor> journal_;
  detail::journal_writer writer_;
  inotify_watcher watcher_;
  std::optional<asio::posix::stream_descriptor> notifier_;
  detail::watch_table watches_;
  detail::tree_scanner scanner_;
  asio::steady_timer settle_timer_;
  detail::rescan_schedule schedule_;
  detail::inotify_reader reader_;
  std::vector<std::string> notes_;
  std::string last_error_;
  std::chrono::steady_clock::time_point last_full_scan_{};
  std::size_t events_since_snapshot_ = 0;
  std::uint64_t unsynced_bytes_ = 0;  // served, not synced yet
  bool unsynced_ = false;
  bool sync_failed_ = false;
  bool set_up_ = false;
  bool started_ = false;
  bool unwatched_ = false;
  bool overflowed_ = false;
};

/// A directory source on `asio::any_io_executor`.
using directory_source = basic_directory_source<>;

}  // namespace storewatch
