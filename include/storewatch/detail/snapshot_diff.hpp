// The directory source's diff of two snapshots, free of system calls so it
// can be tested alone.
//
// A scan (detail/tree.hpp) lists directories and hands each listing, with
// the snapshot's entries for that directory, to `diff_listing`: entries
// gone, new, or modified in place. Once the round's listings are in,
// `plan_changes` pairs gone and new entries by inode into renames and turns
// the rest into modifies, removes and creates, each with what the scanner
// must still do about a directory's content (rescan a moved one, report a
// removed one's entries, list a new one). The scanner does those steps; the
// decisions are all here.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace storewatch::detail {

enum class entry_kind : std::uint8_t { file, directory, symlink, other };

inline char kind_letter(entry_kind kind) { return "fdlo"[static_cast<int>(kind)]; }
inline std::string_view kind_name(entry_kind kind) {
  constexpr std::string_view names[] = {"file", "directory", "symlink", "other"};
  return names[static_cast<int>(kind)];
}
inline std::optional<entry_kind> kind_from_name(std::string_view name) {
  for (int k = 0; k < 4; ++k) {
    if (kind_name(static_cast<entry_kind>(k)) == name) return static_cast<entry_kind>(k);
  }
  return std::nullopt;
}

struct entry_state {
  std::uint64_t inode = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  entry_kind kind = entry_kind::file;

  friend bool operator==(const entry_state&, const entry_state&) = default;
};

/// An entry of one directory's listing.
struct tree_entry {
  std::string name;
  entry_state state;
};

/// Sorts a listing by name, the order the snapshot keeps and `diff_listing`
/// walks.
inline void sort_by_name(std::vector<tree_entry>& entries) {
  std::sort(entries.begin(), entries.end(), [](const tree_entry& a, const tree_entry& b) { return a.name < b.name; });
}

inline std::string child_path(std::string_view dir, std::string_view name) {
  std::string path;
  path.reserve(dir.size() + 1 + name.size());
  path += dir;
  if (!dir.empty()) path += '/';
  path += name;
  return path;
}

/// The directory that holds `path` ("" for an entry of the root, and for
/// the root itself).
inline std::string parent_path(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

/// `path` is `dir` or lies below it.
inline bool within(std::string_view path, std::string_view dir) {
  if (dir.empty()) return true;
  return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

/// What a rescan of one directory looks at: its whole listing, or only the
/// entries `names` (what inotify said changed), each looked up on its own.
struct directory_rescan {
  bool whole = true;
  std::set<std::string> names;  // when not `whole`; sorted, as listings are

  friend bool operator==(const directory_rescan&, const directory_rescan&) = default;
};

/// One change a scan found.
struct tree_change {
  enum class kind { create, modify, remove, rename };
  kind what{};
  std::string path;   // the entry's path (after a rename: the new one)
  std::string from;   // a rename's old path
  entry_state state;  // after the change (for a removal: before it)
};

/// An entry by its path relative to the root.
struct listed_entry {
  std::string path;
  entry_state state;
};

/// What the listings of one round found, before pairing: entries gone from
/// a path, new at a path (a path whose inode or kind changed is both), and
/// modified in place (same inode and kind; never a directory).
struct listing_diff {
  std::vector<listed_entry> gone, added, modified;
};

/// Diffs directory `dir`'s listing `now` against the snapshot's `before`
/// (both sorted by name) into `into`. Returns the directories in both with
/// the same inode: their own listings may have changed, so a recursive
/// scan lists them next.
inline std::vector<std::string> diff_listing(std::string_view dir, const std::vector<tree_entry>& before,
                                             const std::vector<tree_entry>& now, listing_diff& into) {
  std::vector<std::string> kept_directories;
  auto o = before.begin();
  auto n = now.begin();
  while (o != before.end() || n != now.end()) {
    if (n == now.end() || (o != before.end() && o->name < n->name)) {
      into.gone.push_back({child_path(dir, o->name), o->state});
      ++o;
    } else if (o == before.end() || n->name < o->name) {
      into.added.push_back({child_path(dir, n->name), n->state});
      ++n;
    } else {
      const auto& was = o->state;
      const auto& is = n->state;
      if (was.inode != is.inode || was.kind != is.kind) {
        into.gone.push_back({child_path(dir, o->name), was});
        into.added.push_back({child_path(dir, n->name), is});
      } else if (is.kind == entry_kind::directory) {
        kept_directories.push_back(child_path(dir, n->name));
      } else if (was != is) {
        into.modified.push_back({child_path(dir, n->name), is});
      }
      ++o;
      ++n;
    }
  }
  return kept_directories;
}

/// A directory whose inode was `known` (0: not known yet) and is `now` was
/// replaced by another one: its parent's listing tells, so the scanner
/// lists the parent instead of it.
inline bool directory_replaced(std::uint64_t known, std::uint64_t now) { return known != 0 && known != now; }

/// One change to report, and what the scanner must do about a directory's
/// content to go with it.
struct planned_change {
  enum class follow_up {
    none,
    /// A directory moved (`change` is the rename): move its part of the
    /// snapshot and its watches to the new path, rescan it there
    /// recursively, and report what changed inside right after the rename.
    rescan_moved_directory,
    /// A directory was removed: report the removal of everything the
    /// snapshot holds below it, deepest first, before the directory itself.
    remove_contents_first,
    /// A directory was created: list it and report everything in it as
    /// created, right after it.
    scan_new_directory,
  };
  tree_change change;
  follow_up then = follow_up::none;
};

/// Turns a round's diff into the changes to report, in order: renames
/// (each with its directory's inner changes), files replaced in place,
/// removals, in-place modifications, creations. `recursive`: the snapshot
/// holds the content of subdirectories.
///
/// A rename pairs an entry gone from one path with one new at another, of
/// the same inode and kind and, for anything but a directory, the same size
/// and mtime (a rename changes neither; a reused inode almost surely does).
/// Among several gone entries with that inode (hard links), which one is
/// taken is the hash map's order (libstdc++: the last listed). A path a
/// rename moved onto is not reported removed.
inline std::vector<planned_change> plan_changes(const listing_diff& round, bool recursive) {
  using kind = tree_change::kind;
  using follow_up = planned_change::follow_up;
  const auto& gone = round.gone;
  const auto& added = round.added;
  std::vector<planned_change> out;

  std::unordered_multimap<std::uint64_t, std::size_t> gone_by_inode;
  for (std::size_t g = 0; g < gone.size(); ++g) gone_by_inode.emplace(gone[g].state.inode, g);
  std::vector<bool> gone_used(gone.size()), added_used(added.size());
  std::set<std::string> renamed_to;
  for (std::size_t a = 0; a < added.size(); ++a) {
    const auto& to = added[a];
    const auto [first, last] = gone_by_inode.equal_range(to.state.inode);
    for (auto it = first; it != last; ++it) {
      const auto& from = gone[it->second];
      if (gone_used[it->second] || from.path == to.path || from.state.kind != to.state.kind) continue;
      if (to.state.kind != entry_kind::directory &&
          (from.state.size != to.state.size || from.state.mtime_ns != to.state.mtime_ns)) {
        continue;
      }
      gone_used[it->second] = true;
      added_used[a] = true;
      renamed_to.insert(to.path);
      const bool moved_directory = to.state.kind == entry_kind::directory && recursive;
      out.push_back({{kind::rename, to.path, from.path, to.state},
                     moved_directory ? follow_up::rescan_moved_directory : follow_up::none});
      break;
    }
  }
  // Replaced in place: the same path, a new inode. A file is modified (an
  // editor's save: write a temporary, rename it over the file); an entry
  // that changed kind is removed and created.
  std::unordered_map<std::string, std::size_t> gone_by_path;
  for (std::size_t g = 0; g < gone.size(); ++g) {
    if (!gone_used[g]) gone_by_path.emplace(gone[g].path, g);
  }
  for (std::size_t a = 0; a < added.size(); ++a) {
    if (added_used[a]) continue;
    const auto g = gone_by_path.find(added[a].path);
    if (g == gone_by_path.end()) continue;
    const auto& before = gone[g->second].state;
    const auto& after = added[a].state;
    if (before.kind == entry_kind::directory || after.kind == entry_kind::directory) continue;
    if (before.kind == after.kind) {
      out.push_back({{kind::modify, added[a].path, {}, after}});
      added_used[a] = true;
      gone_used[g->second] = true;
    }
  }
  for (std::size_t g = 0; g < gone.size(); ++g) {
    if (gone_used[g] || renamed_to.count(gone[g].path)) continue;
    const bool directory = gone[g].state.kind == entry_kind::directory;
    out.push_back({{kind::remove, gone[g].path, {}, gone[g].state},
                   directory ? follow_up::remove_contents_first : follow_up::none});
  }
  for (const auto& m : round.modified) out.push_back({{kind::modify, m.path, {}, m.state}});
  for (std::size_t a = 0; a < added.size(); ++a) {
    if (added_used[a]) continue;
    const bool new_directory = added[a].state.kind == entry_kind::directory && recursive;
    out.push_back({{kind::create, added[a].path, {}, added[a].state},
                   new_directory ? follow_up::scan_new_directory : follow_up::none});
  }
  return out;
}

}  // namespace storewatch::detail
