// The inotify side of the directory source as logic without the kernel, so
// that tests can drive it: which snapshot directories hold each watch,
// what a buffer read from an inotify descriptor says, and when each changed
// directory is due for a rescan.
#pragma once

#include <storewatch/detail/snapshot_diff.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/inotify.h>

namespace storewatch::detail {

/// The inotify watches of a tree by watch descriptor, each with the snapshot
/// directories (paths relative to the root) that hold it. The kernel gives
/// an inode one watch descriptor however often it is added, so a directory
/// that moved can be held at its old path and its new one at once (when the
/// rescan that finds it at the new path comes before the one that finds it
/// gone from the old). A watch is removed only when its last holder lets go.
class watch_table {
 public:
  /// `dir` holds `wd` (holding it again changes nothing).
  void hold(int wd, const std::string& dir) { holders_[wd].insert(dir); }

  /// `dir` lets go of `wd`. True when that was its last holder: the caller
  /// then removes the kernel's watch.
  bool release(int wd, const std::string& dir) {
    const auto found = holders_.find(wd);
    if (found == holders_.end()) return false;
    found->second.erase(dir);
    if (!found->second.empty()) return false;
    holders_.erase(found);
    return true;
  }

  /// Holder `from` of `wd` is now at `to`.
  void move(int wd, const std::string& from, const std::string& to) {
    const auto found = holders_.find(wd);
    if (found == holders_.end()) return;
    found->second.erase(from);
    found->second.insert(to);
  }

  /// The kernel dropped `wd` (IN_IGNORED): forgets it; returns who held it.
  std::set<std::string> forget(int wd) {
    const auto found = holders_.find(wd);
    if (found == holders_.end()) return {};
    auto holders = std::move(found->second);
    holders_.erase(found);
    return holders;
  }

  /// Who holds `wd`; empty when nobody does.
  const std::set<std::string>& holders(int wd) const {
    static const std::set<std::string> none;
    const auto found = holders_.find(wd);
    return found == holders_.end() ? none : found->second;
  }

  /// Watches held.
  std::size_t size() const noexcept { return holders_.size(); }

 private:
  std::unordered_map<int, std::set<std::string>> holders_;
};

/// One event read from an inotify descriptor.
struct inotify_record {
  int wd = -1;
  std::uint32_t mask = 0;
  std::uint32_t cookie = 0;
  std::string name;  // the entry's name, for events about an entry of the watched directory
};

/// The events in `bytes` (what one read() of an inotify descriptor gave).
/// Copied out with memcpy: the buffer need not be aligned for
/// `inotify_event`, and a coroutine frame never holds one (TOOLCHAIN.md).
/// An incomplete tail is ignored.
inline std::vector<inotify_record> parse_inotify(const char* bytes, std::size_t size) {
  std::vector<inotify_record> records;
  for (std::size_t at = 0; at + sizeof(inotify_event) <= size;) {
    inotify_event header;
    std::memcpy(&header, bytes + at, sizeof header);
    const auto name_at = at + sizeof header;
    if (name_at + header.len > size) break;
    const char* name = bytes + name_at;
    records.push_back({header.wd, header.mask, header.cookie,
                       std::string(name, std::find(name, name + header.len, '\0'))});
    at = name_at + header.len;
  }
  return records;
}

/// When each changed directory is rescanned, and what of it. A directory is
/// due once it has been quiet for `settle`, but not later than 10 settles
/// after its first change, so a busy writer does not postpone it forever.
/// Directories linked by a move are taken together: the rescan that pairs
/// the two halves of a move by inode sees both, whenever each alone would be
/// due. A directory marked only with the names of changed entries is
/// rescanned by looking those entries up; one marked without a name (or with
/// more than `most_names`) is listed whole.
class rescan_schedule {
 public:
  using clock = std::chrono::steady_clock;

  /// Past this many names, a directory is listed whole: one listing then
  /// costs about what looking them up one by one would.
  static constexpr std::size_t most_names = 1024;

  explicit rescan_schedule(std::chrono::milliseconds settle) : settle_(settle) {}

  /// Directory `dir` changed at `now`: it is listed whole.
  void mark(const std::string& dir, clock::time_point now) {
    auto& times = touch(dir, now);
    times.rescan.whole = true;
    times.rescan.names.clear();
  }

  /// Entry `name` of directory `dir` changed at `now`.
  void mark(const std::string& dir, clock::time_point now, const std::string& name) {
    auto& times = touch(dir, now);
    if (times.rescan.whole) return;
    if (times.rescan.names.size() >= most_names) {
      times.rescan.whole = true;
      times.rescan.names.clear();
      return;
    }
    times.rescan.names.insert(name);
  }

  /// An entry moved from directory `from` to directory `to`: whichever is
  /// due first brings the other along.
  void link(const std::string& from, const std::string& to) {
    if (from == to) return;
    links_[from].insert(to);
    links_[to].insert(from);
  }

  /// The directories due at `now`, with every directory linked to one of
  /// them (and to those, in turn; listed whole when it has no mark), taken
  /// off the schedule, each with what to rescan of it.
  std::map<std::string, directory_rescan> take_due(clock::time_point now) {
    std::vector<std::string> pending;
    for (const auto& [dir, times] : marks_) {
      if (times.due <= now) pending.push_back(dir);
    }
    std::map<std::string, directory_rescan> due;
    while (!pending.empty()) {
      auto dir = std::move(pending.back());
      pending.pop_back();
      if (due.count(dir)) continue;
      directory_rescan rescan;
      if (const auto marked = marks_.find(dir); marked != marks_.end()) {
        rescan = std::move(marked->second.rescan);
        marks_.erase(marked);
      }
      if (const auto linked = links_.find(dir); linked != links_.end()) {
        pending.insert(pending.end(), linked->second.begin(), linked->second.end());
        links_.erase(linked);
      }
      due.emplace(std::move(dir), std::move(rescan));
    }
    return due;
  }

  /// When the next directory is due; nullopt when none is marked.
  std::optional<clock::time_point> next_due() const {
    std::optional<clock::time_point> earliest;
    for (const auto& [dir, times] : marks_) {
      if (!earliest || times.due < *earliest) earliest = times.due;
    }
    return earliest;
  }

  /// Forgets every mark and link (a full rescan covers them).
  void clear() {
    marks_.clear();
    links_.clear();
  }

 private:
  struct mark_times {
    clock::time_point first, due;
    directory_rescan rescan{false, {}};
  };

  mark_times& touch(const std::string& dir, clock::time_point now) {
    auto [at, fresh] = marks_.try_emplace(dir, mark_times{now, now});
    at->second.due = std::min(now + settle_, at->second.first + 10 * settle_);
    return at->second;
  }

  std::chrono::milliseconds settle_;
  std::map<std::string, mark_times> marks_;
  std::map<std::string, std::set<std::string>> links_;
};

/// Turns inotify events into rescan marks. A move is two events with one
/// cookie, IN_MOVED_FROM on the old directory's watch and IN_MOVED_TO on
/// the new one's; the reader links the two directories in the schedule.
/// The kernel queues both halves at once, but a read can end between them,
/// so a first half is remembered (the last `remembered` of them) until its
/// second half comes in a later read.
class inotify_reader {
 public:
  /// What a batch of events asks of the source besides rescans.
  struct outcome {
    bool overflowed = false;                // the kernel's queue overflowed: rescan everything
    std::vector<std::string> lost_watches;  // directories whose watch the kernel dropped
  };

  static constexpr std::size_t remembered = 1024;

  /// Marks in `schedule` the directories that `records` name, with the
  /// entry each event is about (for a directory's own deletion or move, its
  /// parent, listed whole, whose listing says where it went), links the
  /// halves of each move, and forgets in `table` the watches the kernel
  /// dropped.
  outcome apply(const std::vector<inotify_record>& records, watch_table& table, rescan_schedule& schedule,
                rescan_schedule::clock::time_point now) {
    outcome result;
    for (const auto& record : records) {
      if (record.mask & IN_Q_OVERFLOW) {
        result.overflowed = true;
        continue;
      }
      const auto holders = table.holders(record.wd);  // a copy: forget() below drops the table's
      if (holders.empty()) continue;
      if (record.mask & IN_IGNORED) {
        // The directory is gone or was replaced: rescan it and its parent;
        // if it is there again, it gets a new watch.
        table.forget(record.wd);
        for (const auto& dir : holders) {
          result.lost_watches.push_back(dir);
          schedule.mark(dir, now);
          schedule.mark(parent_path(dir), now);
        }
        continue;
      }
      for (const auto& dir : holders) {
        if (record.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
          schedule.mark(parent_path(dir), now);
        } else if (record.name.empty()) {
          schedule.mark(dir, now);  // about the directory itself: list it
        } else {
          schedule.mark(dir, now, record.name);  // about one entry: look only at it
        }
      }
      if (record.mask & IN_MOVED_FROM) remember(record.cookie, holders);
      if (record.mask & IN_MOVED_TO) pair(record.cookie, holders, schedule);
    }
    return result;
  }

 private:
  void remember(std::uint32_t cookie, const std::set<std::string>& dirs) {
    if (order_.size() >= remembered) {
      first_halves_.erase(order_.front());
      order_.pop_front();
    }
    if (first_halves_.insert_or_assign(cookie, dirs).second) order_.push_back(cookie);
  }

  void pair(std::uint32_t cookie, const std::set<std::string>& to, rescan_schedule& schedule) {
    const auto first = first_halves_.find(cookie);
    if (first == first_halves_.end()) return;  // moved in from outside the tree
    for (const auto& from_dir : first->second) {
      for (const auto& to_dir : to) schedule.link(from_dir, to_dir);
    }
    // Its place in `order_` stays until it comes round; erasing a cookie
    // that is no longer there does nothing.
    first_halves_.erase(first);
  }

  std::unordered_map<std::uint32_t, std::set<std::string>> first_halves_;
  std::deque<std::uint32_t> order_;  // oldest first
};

}  // namespace storewatch::detail
