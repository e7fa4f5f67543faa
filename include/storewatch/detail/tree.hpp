// The directory source's snapshot of a tree and the scans that diff it.
//
// The snapshot keeps, per directory (by path relative to the root, "" for
// the root), its entries sorted by name with inode, size, mtime and kind:
// about 64 bytes per entry plus the name's bytes beyond 15. A scan lists a
// directory and diffs the listing against the snapshot (`diff_listing`);
// `finish` then has `plan_changes` pair gone and new entries into renames
// and creates, modifies and deletes, and does the I/O each planned change
// asks for (whole subtrees for directories). The decisions live in
// detail/snapshot_diff.hpp; this file does the system calls, blocking
// throughout: the source runs them on its executor.
#pragma once

#include <storewatch/detail/snapshot_diff.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/journal/format.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storewatch::detail {

struct tree_directory {
  std::vector<tree_entry> entries;  // sorted by name
  int watch = -1;                   // inotify watch descriptor, -1 when none
  std::uint64_t inode = 0;          // of the directory these entries were listed from; 0: not known
};

/// Which entries the snapshot holds.
struct tree_filter {
  std::vector<std::string> include;  // files must match one (when any are given)
  std::vector<std::string> exclude;  // files and directories matching one are left out
  bool hidden = true;                // names starting with '.'
  bool symlinks = true;              // symbolic links, as entries (never followed)
  bool recursive = true;             // below the root's own entries
  std::string own_state;             // relative path of the source's state folder when inside the tree: left out

  /// A pattern with a '/' matches the relative path, one without matches
  /// the name (fnmatch; '*' does not cross a '/').
  static bool matches(const std::string& pattern, std::string_view dir, std::string_view name) {
    const bool whole = pattern.find('/') != std::string::npos;
    const std::string subject = whole ? child_path(dir, name) : std::string(name);
    return ::fnmatch(pattern.c_str(), subject.c_str(), FNM_PATHNAME) == 0;
  }

  /// Entry `name` of directory `dir` (relative paths) is in the snapshot.
  bool accepts(std::string_view dir, std::string_view name, entry_kind kind) const {
    if (!own_state.empty() && child_path(dir, name) == own_state) return false;  // its own writes are no changes
    if (!hidden && name.starts_with('.')) return false;
    if (!symlinks && kind == entry_kind::symlink) return false;
    for (const auto& pattern : exclude) {
      if (matches(pattern, dir, name)) return false;
    }
    if (kind == entry_kind::directory || include.empty()) return true;
    return std::any_of(include.begin(), include.end(),
                       [&](const std::string& pattern) { return matches(pattern, dir, name); });
  }
};

/// What a scanner needs from the watch mechanism (inotify, or nothing).
struct tree_watcher {
  virtual ~tree_watcher() = default;
  /// Starts watching directory `dir`; the watch descriptor, or -1. A
  /// directory already watched at another path (it moved, and its old path
  /// is not rescanned yet) may get that path's descriptor.
  virtual int add(const std::string& dir) = 0;
  /// Directory `dir` lets go of watch `watch` (it left the tree); the watch
  /// stays while another path holds it.
  virtual void remove(int watch, const std::string& dir) = 0;
  /// Directory `from`, watched by `watch`, is now at `to`.
  virtual void moved(int watch, const std::string& from, const std::string& to) = 0;
};

class tree_scanner {
 public:
  /// `fault`, for tests: an errno to fake when opening directory `dir`
  /// (0: none).
  tree_scanner(std::filesystem::path root, tree_filter filter, tree_watcher& watcher,
               std::function<int(const std::string& dir)> fault = {})
      : root_(std::move(root)), filter_(std::move(filter)), watcher_(watcher), fault_(std::move(fault)) {
    directories_.emplace("", tree_directory{});
  }

  const std::unordered_map<std::string, tree_directory>& directories() const noexcept { return directories_; }
  std::size_t entry_count() const noexcept {
    std::size_t n = 0;
    for (const auto& [dir, node] : directories_) n += node.entries.size();
    return n;
  }
  const std::filesystem::path& root() const noexcept { return root_; }

  /// Problems met since the last call: unreadable directories (reported
  /// once each until they are readable again), a missing root.
  std::vector<std::string> take_problems() { return std::exchange(problems_, {}); }

  /// Rescans the whole tree; returns what changed.
  std::vector<tree_change> scan_all() {
    round r;
    if (auto& root = directories_[""]; root.watch < 0) root.watch = watcher_.add("");
    rescan("", true, r);
    return finish(r);
  }

  /// Rescans the listed directories (not below them, except where a new
  /// directory appeared); returns what changed.
  std::vector<tree_change> scan(const std::set<std::string>& dirs) {
    std::map<std::string, directory_rescan> whole;
    for (const auto& dir : dirs) whole.emplace(dir, directory_rescan{});
    return scan_each(whole);
  }

  /// Rescans each directory as its request says: its whole listing, or only
  /// the entries named (one lookup each, however many the directory holds);
  /// not below them, except where a new directory appeared. Returns what
  /// changed, as one round: a rename between two of them is paired.
  std::vector<tree_change> scan_each(const std::map<std::string, directory_rescan>& dirs) {
    round r;
    for (const auto& [dir, what] : dirs) {
      if (!directories_.count(dir)) continue;
      if (what.whole) {
        rescan(dir, false, r);
      } else {
        recheck(dir, what.names, r);
      }
    }
    return finish(r);
  }

  /// Applies a change already known (replaying a journal).
  void apply(const tree_change& change) {
    const auto [dir, name] = split(change.path);
    switch (change.what) {
      case tree_change::kind::create:
      case tree_change::kind::modify:
        put(dir, name, change.state);
        if (change.state.kind == entry_kind::directory && filter_.recursive) directories_.try_emplace(change.path);
        break;
      case tree_change::kind::remove:
        drop_subtree(change.path);
        erase(dir, name);
        break;
      case tree_change::kind::rename: {
        const auto [old_dir, old_name] = split(change.from);
        erase(old_dir, old_name);
        put(dir, name, change.state);
        if (change.state.kind == entry_kind::directory && filter_.recursive) rekey(change.from, change.path);
        break;
      }
    }
  }

  /// The snapshot as text: one line per entry, "<dir>\t<name>\t<kind
  /// letter>\t<inode>\t<size>\t<mtime ns>", fields escaped as in journal
  /// records.
  std::string serialize() const {
    std::string out;
    std::vector<const std::string*> dirs;
    for (const auto& [dir, node] : directories_) dirs.push_back(&dir);
    std::sort(dirs.begin(), dirs.end(), [](auto* a, auto* b) { return *a < *b; });
    for (const auto* dir : dirs) {
      for (const auto& e : directories_.at(*dir).entries) {
        append_escaped(out, *dir);
        out += '\t';
        append_escaped(out, e.name);
        out += '\t';
        out += kind_letter(e.state.kind);
        out += '\t' + std::to_string(e.state.inode) + '\t' + std::to_string(e.state.size) + '\t' +
               std::to_string(e.state.mtime_ns) + '\n';
      }
    }
    return out;
  }

  /// Reads `serialize`'s form; false (with `why`: the line) when malformed.
  bool deserialize(std::string_view text, std::string& why) {
    directories_.clear();
    directories_.emplace("", tree_directory{});
    std::size_t line_number = 0;
    while (!text.empty()) {
      ++line_number;
      const auto newline = text.find('\n');
      const auto line = text.substr(0, newline);
      text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
      std::vector<std::string_view> fields;
      for (std::size_t at = 0;;) {
        const auto tab = line.find('\t', at);
        fields.push_back(line.substr(at, tab == std::string_view::npos ? std::string_view::npos : tab - at));
        if (tab == std::string_view::npos) break;
        at = tab + 1;
      }
      std::string dir, name;
      std::uint64_t inode = 0, size = 0, mtime = 0;
      const auto kind = fields.size() == 6 && fields[2].size() == 1
                            ? std::string_view("fdlo").find(fields[2][0])
                            : std::string_view::npos;
      if (fields.size() != 6 || !unescape(fields[0], dir) || !unescape(fields[1], name) || name.empty() ||
          kind == std::string_view::npos || !parse_decimal(fields[3], inode) || !parse_decimal(fields[4], size) ||
          !parse_decimal(fields[5], mtime)) {
        why = "line " + std::to_string(line_number) + " is not an entry";
        return false;
      }
      const entry_state state{inode, static_cast<std::int64_t>(size), static_cast<std::int64_t>(mtime),
                              static_cast<entry_kind>(kind)};
      directories_[dir].entries.push_back({name, state});
      if (state.kind == entry_kind::directory && filter_.recursive) directories_.try_emplace(child_path(dir, name));
    }
    for (auto& [dir, node] : directories_) sort_by_name(node.entries);
    return true;
  }

  /// Directory `dir` lost its watch (the kernel dropped it: the directory
  /// was removed or replaced); its next rescan sets a new one.
  void forget_watch(const std::string& dir) {
    if (const auto node = directories_.find(dir); node != directories_.end()) node->second.watch = -1;
  }

  /// Forgets the whole snapshot and lets go of every watch: an empty root,
  /// as before the first scan.
  void reset() {
    for (const auto& [dir, node] : directories_) {
      if (node.watch >= 0) watcher_.remove(node.watch, dir);
    }
    directories_.clear();
    directories_.emplace("", tree_directory{});
  }

  /// Sets a watch on every directory that has none (after deserialize).
  void watch_all() {
    for (auto& [dir, node] : directories_) {
      if (node.watch < 0) node.watch = watcher_.add(dir);
    }
  }

 private:
  struct round {
    listing_diff diff;
    std::set<std::string> listed;  // directories rescanned in this round
  };

  static std::pair<std::string, std::string> split(std::string_view path) {
    const auto slash = path.rfind('/');
    if (slash == std::string_view::npos) return {std::string(), std::string(path)};
    return {std::string(path.substr(0, slash)), std::string(path.substr(slash + 1))};
  }

  void put(const std::string& dir, const std::string& name, const entry_state& state) {
    auto& entries = directories_[dir].entries;
    const auto at = std::lower_bound(entries.begin(), entries.end(), name,
                                     [](const tree_entry& e, const std::string& n) { return e.name < n; });
    if (at != entries.end() && at->name == name) {
      at->state = state;
    } else {
      entries.insert(at, tree_entry{name, state});
    }
  }

  void erase(const std::string& dir, const std::string& name) {
    const auto node = directories_.find(dir);
    if (node == directories_.end()) return;
    auto& entries = node->second.entries;
    const auto at = std::lower_bound(entries.begin(), entries.end(), name,
                                     [](const tree_entry& e, const std::string& n) { return e.name < n; });
    if (at != entries.end() && at->name == name) entries.erase(at);
  }

  /// Forgets directory `path` and everything below it (entries and watches).
  void drop_subtree(const std::string& path) {
    for (auto it = directories_.begin(); it != directories_.end();) {
      if (!it->first.empty() && within(it->first, path)) {
        if (it->second.watch >= 0) watcher_.remove(it->second.watch, it->first);
        it = directories_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Directory `from` and everything below it are now under `to`.
  void rekey(const std::string& from, const std::string& to) {
    std::vector<std::pair<std::string, tree_directory>> moved;  // old path, node
    for (auto it = directories_.begin(); it != directories_.end();) {
      if (!it->first.empty() && within(it->first, from)) {
        moved.emplace_back(it->first, std::move(it->second));
        it = directories_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [old_dir, node] : moved) {
      auto dir = to + old_dir.substr(from.size());
      if (node.watch >= 0) watcher_.moved(node.watch, old_dir, dir);
      directories_[std::move(dir)] = std::move(node);
    }
  }

  /// Opens directory `dir` below the root one component at a time, never
  /// following a symbolic link. -1 with errno on failure.
  int open_directory(const std::string& dir) {
    if (fault_) {
      if (const int injected = fault_(dir)) {
        errno = injected;
        return -1;
      }
    }
    int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    std::string_view rest = dir;
    while (fd >= 0 && !rest.empty()) {
      const auto slash = rest.find('/');
      const std::string component(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
      const int next = ::openat(fd, component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      const int error_number = errno;
      ::close(fd);
      fd = next;
      errno = error_number;
    }
    return fd;
  }

  void report(const std::string& dir, int error_number) {
    if (!unreadable_.insert(dir).second) return;  // said already
    problems_.push_back("directory " + (root_ / dir).string() + ": " + std::generic_category().message(error_number) +
                        "; skipped, the watch continues");
  }

  /// Opens directory `dir` for a rescan, after setting its watch. -1 when
  /// there is nothing to read: it is gone (its parent's listing says so),
  /// unreadable (reported), or was replaced by another directory (then its
  /// parent is listed instead, once per round: see below).
  int open_for_rescan(const std::string& dir, round& r) {
    // Watch before listing, so no change slips between the two.
    if (auto& node = directories_[dir]; node.watch < 0) node.watch = watcher_.add(dir);
    const int fd = open_directory(dir);
    if (fd < 0) {
      const int error_number = errno;
      // Gone: its parent's listing reports that. The root has no parent.
      if ((error_number == ENOENT || error_number == ENOTDIR || error_number == ELOOP) && !dir.empty()) return -1;
      report(dir, error_number);
      return -1;
    }
    unreadable_.erase(dir);
    struct stat self {};
    if (::fstat(fd, &self) == 0 && !dir.empty()) {
      const auto inode = static_cast<std::uint64_t>(self.st_ino);
      if (directory_replaced(directories_[dir].inode, inode)) {
        // Its parent's listing sees the old one gone and the new one added,
        // and `finish` reports both with the old entries as they were. List
        // the parent (once) instead.
        ::close(fd);
        const std::string parent = parent_path(dir);
        if (!r.listed.count(parent)) rescan(parent, false, r);
        return -1;
      }
      directories_[dir].inode = inode;
    }
    return fd;
  }

  /// Entry `name` of directory `dir` (open as `fd`) as the snapshot would
  /// hold it; nullopt when it is gone or left out (filters, a name that is
  /// not UTF-8, reported once).
  std::optional<entry_state> look_up(int fd, const std::string& dir, const std::string& name) {
    if (!is_valid_utf8(name)) {
      // Events carry paths as text (JSON, the CLI's output): such a name
      // could not be shown faithfully.
      if (bad_names_.insert(child_path(dir, name)).second) {
        problems_.push_back("entry " + quote(child_path(dir, name)) + " in " + root_.string() +
                            ": its name is not UTF-8; skipped");
      }
      return std::nullopt;
    }
    struct stat info {};
    if (::fstatat(fd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;  // gone meanwhile
    entry_state state{static_cast<std::uint64_t>(info.st_ino), static_cast<std::int64_t>(info.st_size),
                      static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec,
                      S_ISREG(info.st_mode)   ? entry_kind::file
                      : S_ISDIR(info.st_mode) ? entry_kind::directory
                      : S_ISLNK(info.st_mode) ? entry_kind::symlink
                                              : entry_kind::other};
    if (state.kind == entry_kind::directory) state.size = 0;  // a directory's size says nothing useful
    if (!filter_.accepts(dir, name, state.kind)) return std::nullopt;
    return state;
  }

  /// Lists `dir`, diffs it against the snapshot into `r`, and updates the
  /// snapshot. With `recursive`, does the same below it for directories
  /// that were there before (new ones are scanned in `finish`).
  void rescan(const std::string& dir, bool recursive, round& r) {
    const int fd = open_for_rescan(dir, r);
    if (fd < 0) return;
    r.listed.insert(dir);
    std::vector<tree_entry> now;
    if (DIR* listing = ::fdopendir(fd)) {
      std::string name;
      while (const dirent* d = ::readdir(listing)) {
        name = d->d_name;
        if (name == "." || name == "..") continue;
        if (auto state = look_up(fd, dir, name)) now.push_back({name, *state});
      }
      ::closedir(listing);
    } else {
      ::close(fd);
      report(dir, errno);
      return;
    }
    sort_by_name(now);
    const auto subdirectories = diff_listing(dir, directories_[dir].entries, now, r.diff);
    now.shrink_to_fit();
    directories_[dir].entries = std::move(now);
    if (recursive && filter_.recursive) {
      for (const auto& sub : subdirectories) rescan(sub, true, r);
    }
  }

  /// Looks up entries `names` of `dir`, diffs them against the snapshot's
  /// into `r` (as `rescan` does for a whole listing), and updates those in
  /// the snapshot. A directory listed whole in this round already is done;
  /// one that could not be read before is listed whole (what changed while
  /// it was unreadable was not looked at).
  void recheck(const std::string& dir, const std::set<std::string>& names, round& r) {
    if (r.listed.count(dir)) return;
    if (unreadable_.count(dir)) {
      rescan(dir, false, r);
      return;
    }
    const int fd = open_for_rescan(dir, r);
    if (fd < 0) return;
    std::vector<tree_entry> before, now;  // sorted by name, as `names` is
    auto& entries = directories_[dir].entries;
    for (const auto& name : names) {
      const auto at = std::lower_bound(entries.begin(), entries.end(), name,
                                       [](const tree_entry& e, const std::string& n) { return e.name < n; });
      if (at != entries.end() && at->name == name) before.push_back(*at);
      if (auto state = look_up(fd, dir, name)) now.push_back({name, *state});
    }
    ::close(fd);
    diff_listing(dir, before, now, r.diff);
    for (const auto& e : before) erase(dir, e.name);
    for (const auto& e : now) put(dir, e.name, e.state);
  }

  /// Adds directory `path` (new to the snapshot) and everything below it,
  /// each as a create.
  void add_new_directory(const std::string& path, std::vector<tree_change>& out) {
    if (!filter_.recursive) return;
    auto& node = directories_[path];
    if (node.watch < 0) node.watch = watcher_.add(path);  // before listing: nothing slips past
    round r;
    rescan(path, false, r);
    for (auto& f : r.diff.added) {
      out.push_back({tree_change::kind::create, f.path, {}, f.state});
      if (f.state.kind == entry_kind::directory) add_new_directory(f.path, out);
    }
  }

  /// Reports the round's changes as `plan_changes` orders them, doing the
  /// listing and snapshot work each asks for.
  std::vector<tree_change> finish(const round& r) {
    using follow_up = planned_change::follow_up;
    std::vector<tree_change> out;
    for (const auto& [change, then] : plan_changes(r.diff, filter_.recursive)) {
      if (then == follow_up::remove_contents_first) remove_subtree(change.path, out);
      out.push_back(change);
      if (then == follow_up::rescan_moved_directory) {
        rekey(change.from, change.path);
        round inner;
        rescan(change.path, true, inner);
        auto more = finish(inner);
        out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
      } else if (then == follow_up::scan_new_directory) {
        add_new_directory(change.path, out);
      }
    }
    return out;
  }

  void remove_subtree(const std::string& path, std::vector<tree_change>& out) {
    const auto node = directories_.find(path);
    if (node == directories_.end()) return;
    const auto entries = node->second.entries;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
      const auto child = child_path(path, it->name);
      if (it->state.kind == entry_kind::directory) remove_subtree(child, out);
      out.push_back({tree_change::kind::remove, child, {}, it->state});
    }
    drop_subtree(path);
  }

  std::filesystem::path root_;
  tree_filter filter_;
  tree_watcher& watcher_;
  std::function<int(const std::string&)> fault_;
  std::unordered_map<std::string, tree_directory> directories_;
  std::set<std::string> unreadable_;
  std::set<std::string> bad_names_;  // reported already
  std::vector<std::string> problems_;
};

}  // namespace storewatch::detail
