// Tests for storewatch/detail/snapshot_diff.hpp: the directory source's
// decisions (what changed between two listings, which gone and new entries
// are renames, what a directory's content still needs) with no files, no
// io_context and no watches. The listings are plain values; `scan` below
// walks them as the scanner walks a tree.
#include <storewatch/detail/snapshot_diff.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace snapshot_diff_test {

using namespace storewatch::detail;

namespace {

using listing = std::map<std::string, entry_state>;  // path → state, the whole tree

entry_state file(std::uint64_t inode, std::int64_t size = 1, std::int64_t mtime = 100) {
  return {inode, size, mtime, entry_kind::file};
}
entry_state directory(std::uint64_t inode) { return {inode, 0, 100, entry_kind::directory}; }
entry_state symlink(std::uint64_t inode) { return {inode, 5, 100, entry_kind::symlink}; }

/// Directory `dir`'s entries in `tree`, sorted by name.
std::vector<tree_entry> entries_of(const listing& tree, const std::string& dir) {
  std::vector<tree_entry> entries;
  for (const auto& [path, state] : tree) {
    if (parent_path(path) == dir) entries.push_back({path.substr(dir.empty() ? 0 : dir.size() + 1), state});
  }
  sort_by_name(entries);
  return entries;
}

/// The round a recursive scan from the root finds: each directory listed,
/// then the directories still there with the same inode. `seed` (non-zero)
/// lists them in a random order instead of depth first.
listing_diff scan(const listing& before, const listing& after, unsigned seed = 0) {
  listing_diff round;
  std::deque<std::string> pending{""};
  std::mt19937 random(seed);
  while (!pending.empty()) {
    auto at = pending.begin();
    if (seed != 0) at += static_cast<std::ptrdiff_t>(random() % pending.size());
    const std::string dir = *at;
    pending.erase(at);
    auto kept = diff_listing(dir, entries_of(before, dir), entries_of(after, dir), round);
    pending.insert(seed != 0 ? pending.end() : pending.begin(), kept.begin(), kept.end());
  }
  return round;
}

/// A planned change as text: "RENAME to<-from", "MODIFY p", "DELETE p",
/// "CREATE p", with "+rescan", "+contents" or "+scan" for its follow-up.
std::string describe(const planned_change& step) {
  using kind = tree_change::kind;
  using follow_up = planned_change::follow_up;
  const auto& c = step.change;
  std::string text = c.what == kind::create   ? "CREATE " + c.path
                     : c.what == kind::modify ? "MODIFY " + c.path
                     : c.what == kind::remove ? "DELETE " + c.path
                                              : "RENAME " + c.path + "<-" + c.from;
  if (step.then == follow_up::rescan_moved_directory) text += " +rescan";
  if (step.then == follow_up::remove_contents_first) text += " +contents";
  if (step.then == follow_up::scan_new_directory) text += " +scan";
  return text;
}

std::vector<std::string> changes(const listing& before, const listing& after, bool recursive = true,
                                 unsigned seed = 0) {
  std::vector<std::string> out;
  for (const auto& step : plan_changes(scan(before, after, seed), recursive)) out.push_back(describe(step));
  return out;
}

using texts = std::vector<std::string>;

}  // namespace

TEST_CASE("snapshot diff: an unchanged listing gives no change, and its directories are listed next") {
  const listing tree{{"a", file(1)}, {"d", directory(2)}, {"d/b", file(3)}, {"d/e", directory(4)}};
  listing_diff round;
  const auto kept = diff_listing("", entries_of(tree, ""), entries_of(tree, ""), round);
  CHECK(kept == texts{"d"});
  CHECK(round.gone.empty());
  CHECK(round.added.empty());
  CHECK(round.modified.empty());
  CHECK(changes(tree, tree).empty());
  CHECK(changes({}, {}).empty());
}

TEST_CASE("snapshot diff: a file whose size or mtime changed is modified, a directory's mtime is no change") {
  const listing before{{"a", file(1, 10, 100)}, {"b", file(2, 10, 100)}, {"d", directory(3)}};
  listing after = before;
  after["a"] = file(1, 11, 100);
  after["b"] = file(2, 10, 101);
  after["d"].mtime_ns = 555;
  CHECK(changes(before, after) == texts{"MODIFY a", "MODIFY b"});
  listing_diff round;
  CHECK(diff_listing("", entries_of(before, ""), entries_of(after, ""), round) == texts{"d"});
  REQUIRE(round.modified.size() == 2);
  CHECK(round.modified[0].state == file(1, 11, 100));  // the state after the change
}

TEST_CASE("snapshot diff: new and gone entries are created and deleted") {
  const listing before{{"a", file(1)}, {"gone", file(2)}};
  const listing after{{"a", file(1)}, {"new", file(3)}, {"new-dir", directory(4)}};
  CHECK(changes(before, after) == texts{"DELETE gone", "CREATE new", "CREATE new-dir +scan"});
  // Without recursion a new directory's content is not the snapshot's.
  CHECK(changes(before, after, false) == texts{"DELETE gone", "CREATE new", "CREATE new-dir"});
}

TEST_CASE("snapshot diff: a rename pairs the gone and new entry by inode, within and across directories") {
  const listing before{{"a", file(1)}, {"d", directory(2)}, {"d/down", file(3)}, {"up", file(4)}};
  SECTION("within a directory") {
    listing after = before;
    after.erase("a");
    after["b"] = file(1);
    CHECK(changes(before, after) == texts{"RENAME b<-a"});
  }
  SECTION("down into a subdirectory and up out of one, in the same round") {
    listing after = before;
    after.erase("up");
    after["d/up"] = file(4);
    after.erase("d/down");
    after["down"] = file(3);
    auto found = changes(before, after);
    std::sort(found.begin(), found.end());
    CHECK(found == texts{"RENAME d/up<-up", "RENAME down<-d/down"});
  }
}

TEST_CASE("snapshot diff: two names swapped are two renames, nothing deleted or created") {
  const listing before{{"a", file(1, 10)}, {"b", file(2, 20)}};
  const listing after{{"a", file(2, 20)}, {"b", file(1, 10)}};
  listing_diff round = scan(before, after);
  CHECK(round.gone.size() == 2);  // each path changed inode: gone and new
  CHECK(round.added.size() == 2);
  CHECK(changes(before, after) == texts{"RENAME a<-b", "RENAME b<-a"});
}

TEST_CASE("snapshot diff: a rename over an existing name does not report that name deleted") {
  const listing before{{"a", file(1, 10)}, {"b", file(2, 20)}};
  const listing after{{"b", file(1, 10)}};
  CHECK(changes(before, after) == texts{"RENAME b<-a"});
}

TEST_CASE("snapshot diff: an entry replaced at its path") {
  SECTION("a file by a new file (an editor's save) is modified") {
    CHECK(changes({{"f", file(1, 10, 100)}}, {{"f", file(9, 12, 200)}}) == texts{"MODIFY f"});
  }
  SECTION("a file by a symbolic link is deleted and created") {
    CHECK(changes({{"f", file(1)}}, {{"f", symlink(9)}}) == texts{"DELETE f", "CREATE f"});
  }
  SECTION("a directory by a file: its content goes first, then the file is created") {
    const listing before{{"x", directory(1)}, {"x/in", file(2)}};
    CHECK(changes(before, {{"x", file(3)}}) == texts{"DELETE x +contents", "CREATE x"});
  }
  SECTION("a file by a directory: the file goes, the directory comes with its content") {
    CHECK(changes({{"x", file(1)}}, {{"x", directory(3)}, {"x/in", file(4)}}) == texts{"DELETE x", "CREATE x +scan"});
  }
  SECTION("a directory by another directory is deleted and created, never modified") {
    const listing before{{"x", directory(1)}, {"x/in", file(2)}};
    const listing after{{"x", directory(5)}, {"x/in", file(6)}};
    CHECK(changes(before, after) == texts{"DELETE x +contents", "CREATE x +scan"});
  }
}

TEST_CASE("snapshot diff: a moved directory is one rename, then rescanned at its new path") {
  const listing before{{"d", directory(1)}, {"d/f", file(2)}};
  const listing after{{"e", directory(1)}, {"e/f", file(2)}};
  // The content is not listed in this round: the scanner moves the
  // snapshot's part and rescans it, as the follow-up says.
  listing_diff round = scan(before, after);
  CHECK(round.gone.size() == 1);
  CHECK(round.added.size() == 1);
  CHECK(changes(before, after) == texts{"RENAME e<-d +rescan"});
  CHECK(changes(before, after, false) == texts{"RENAME e<-d"});
}

TEST_CASE("snapshot diff: a reused inode is no rename unless size and mtime match too") {
  SECTION("a file deleted and another created on its inode") {
    const listing before{{"old", file(7, 10, 100)}};
    CHECK(changes(before, {{"new", file(7, 3, 200)}}) == texts{"DELETE old", "CREATE new"});
    CHECK(changes(before, {{"new", file(7, 10, 200)}}) == texts{"DELETE old", "CREATE new"});
    CHECK(changes(before, {{"new", file(7, 3, 100)}}) == texts{"DELETE old", "CREATE new"});
  }
  SECTION("an entry of another kind on the inode") {
    CHECK(changes({{"old", file(7)}}, {{"new", symlink(7)}}) == texts{"DELETE old", "CREATE new"});
  }
  SECTION("a directory's size and mtime say nothing, so the inode and kind decide") {
    CHECK(changes({{"old", directory(7)}}, {{"new", directory(7)}}) == texts{"RENAME new<-old +rescan"});
  }
}

TEST_CASE("snapshot diff: of two hard links gone, one is renamed and the other deleted") {
  const listing before{{"a", file(7)}, {"b", file(7)}};
  const auto found = changes(before, {{"c", file(7)}});
  CHECK((found == texts{"RENAME c<-a", "DELETE b"} || found == texts{"RENAME c<-b", "DELETE a"}));
}

TEST_CASE("snapshot diff: changes come as renames, replacements, deletions, modifications, creations") {
  const listing before{{"keep", file(1, 1)},  {"moved", file(2)},         {"saved", file(3, 1, 1)},
                       {"gone", file(4)},     {"gone-dir", directory(5)}, {"gone-dir/x", file(6)}};
  const listing after{{"keep", file(1, 2)},      {"target", file(2)},       {"saved", file(8, 2, 2)},
                      {"born", file(9)},         {"born-dir", directory(10)}};
  CHECK(changes(before, after) == texts{"RENAME target<-moved", "MODIFY saved", "DELETE gone",
                                        "DELETE gone-dir +contents", "MODIFY keep", "CREATE born",
                                        "CREATE born-dir +scan"});
}

TEST_CASE("snapshot diff: a directory replaced by another, a rescan lists its parent instead") {
  CHECK_FALSE(directory_replaced(0, 42));  // first listing: nothing known yet
  CHECK_FALSE(directory_replaced(42, 42));
  CHECK(directory_replaced(41, 42));
  CHECK(parent_path("a/b/c") == "a/b");
  CHECK(parent_path("a") == "");
}

TEST_CASE("snapshot diff: a huge tree gives the same changes whatever order its directories are listed in") {
  // 40 directories of 250 files; one change in five of each kind.
  listing before, after;
  std::uint64_t inode = 1;
  for (int d = 0; d < 40; ++d) {
    const auto dir = "dir" + std::to_string(d);
    before[dir] = after[dir] = directory(inode++);
    for (int f = 0; f < 250; ++f) {
      const auto path = dir + "/f" + std::to_string(f);
      const auto state = file(inode++, f, 1000 + f);
      before[path] = state;
      switch (f % 5) {
        case 0: after[path] = state; break;                                                   // kept
        case 1: after["dir" + std::to_string((d + 1) % 40) + "/moved" + std::to_string(f)] = state; break;
        case 2: after[path] = file(state.inode, state.size + 1, state.mtime_ns); break;       // modified
        case 3: break;                                                                        // deleted
        case 4: after[path] = state, after[path + "-new"] = file(inode + 1'000'000); break;  // one created
      }
    }
  }
  auto expected = changes(before, after);
  REQUIRE(expected.size() == 40 * 200);
  CHECK(std::count_if(expected.begin(), expected.end(), [](auto& c) { return c.starts_with("RENAME"); }) == 40 * 50);
  std::sort(expected.begin(), expected.end());
  for (unsigned seed = 1; seed <= 3; ++seed) {
    auto found = changes(before, after, true, seed);
    std::sort(found.begin(), found.end());
    CHECK(found == expected);
  }
}

}  // namespace snapshot_diff_test
