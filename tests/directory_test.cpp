// Tests for storewatch/source/directory.hpp: a directory tree as a source of
// CREATE, MODIFY, DELETE and RENAME events, through an event_listener.
//
// Each step changes the tree, then waits (bounded) for the events it must
// produce; settling and rescans are waited for, never slept through.
#include "common/faults.hpp"
#include "common/fixture.hpp"

#include <storewatch/detail/tree_watch.hpp>
#include <storewatch/source/directory.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace directory_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

void append(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::app);
  out << text;
  REQUIRE(out.good());
}

/// "NAME path" or "RENAME from -> to": one event, as the tests spell them.
std::string describe(const event& e) {
  if (e.name == event_name::rename) return "RENAME " + e.attributes.value("from", std::string("?")) + " -> " + e.data;
  return e.name + " " + e.data;
}

/// A directory source on `root` with an event_listener collecting events
/// and reported problems, all on one io_context.
struct watch {
  explicit watch(const fs::path& root, directory_options options = {}, fs::path checkpoint = {},
                 std::chrono::milliseconds interval = 20ms)
      : source(io.get_executor(), root, std::move(options)),
        listener(io.get_executor(), source, listener_options_for(std::move(checkpoint), interval)) {
    listener.add_event_listener([this](const event& e) { events.push_back(e); });
    listener.start();
    // The first poll scans the tree: the baseline.
    REQUIRE(run_until(io, [&] { return listener.stats().polls >= 1; }));
  }

  listener_options listener_options_for(fs::path checkpoint, std::chrono::milliseconds interval) {
    listener_options o;
    o.poller.poll_interval = interval;
    if (!checkpoint.empty()) o.checkpoint = std::move(checkpoint);
    o.checkpoint_every = 1;
    o.on_error = [this](std::error_code, std::string_view message) { problems.emplace_back(message); };
    return o;
  }

  /// Waits until `n` events (in all) have arrived; returns the new ones.
  std::vector<std::string> expect(std::size_t n) {
    const auto before = seen;
    const bool arrived = run_until(io, [&] { return events.size() >= seen + n; });
    std::vector<std::string> out;
    for (std::size_t i = before; i < events.size(); ++i) out.push_back(describe(events[i]));
    INFO("got " << out.size() << " of " << n << ": " << join(out));
    REQUIRE(arrived);
    seen = events.size();
    return out;
  }

  /// The events of a few more polls: anything left over would show here.
  std::vector<std::string> rest(std::uint64_t polls = 3) {
    const auto start = listener.stats().polls;
    REQUIRE(run_until(io, [&] { return listener.stats().polls >= start + polls; }));
    std::vector<std::string> out;
    for (std::size_t i = seen; i < events.size(); ++i) out.push_back(describe(events[i]));
    seen = events.size();
    return out;
  }

  /// With wake-ups and no polling to wait for: writes a file `name` in
  /// `root` and requires that its CREATE is the only new event, so nothing
  /// was pending or repeated.
  void nothing_else(const fs::path& root, const std::string& name = "sentinel") {
    write(root / name, "s");
    CHECK(expect(1) == std::vector<std::string>{"CREATE " + name});
  }

  void stop() {
    listener.stop();
    run_to_idle(io);
  }

  static std::string join(const std::vector<std::string>& items) {
    std::string text;
    for (std::size_t i = 0; i < items.size() && i < 20; ++i) text += "[" + items[i] + "] ";
    if (items.size() > 20) text += "and " + std::to_string(items.size() - 20) + " more";
    return text;
  }

  asio::io_context io;
  directory_source source;
  event_listener listener;
  std::vector<event> events;
  std::vector<std::string> problems;
  std::size_t seen = 0;
};

std::multiset<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

/// The directories of a `rescan_schedule::take_due` answer.
std::set<std::string> dirs_of(const std::map<std::string, detail::directory_rescan>& due) {
  std::set<std::string> dirs;
  for (const auto& [dir, what] : due) dirs.insert(dir);
  return dirs;
}

}  // namespace

TEST_CASE("directory: existing entries are the baseline, creates, modifies, deletes and renames are reported") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "docs");
  write(root / "docs" / "old.txt", "old");
  watch w(root, {}, {}, 1h);  // an hour: every event below comes from a wake-up
  w.nothing_else(root, "start");  // and nothing for what was there

  write(root / "a.txt", "a");
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE a.txt"});
  const auto created = w.events.back();
  CHECK(created.attributes["kind"] == "file");
  CHECK(created.attributes["size"] == 1);
  CHECK(!created.id.empty());

  append(root / "a.txt", "bc");
  CHECK(w.expect(1) == std::vector<std::string>{"MODIFY a.txt"});
  CHECK(w.events.back().attributes["size"] == 3);

  fs::rename(root / "a.txt", root / "docs" / "b.txt");
  CHECK(w.expect(1) == std::vector<std::string>{"RENAME a.txt -> docs/b.txt"});

  fs::create_directories(root / "new" / "deep");
  write(root / "new" / "deep" / "c.txt", "c");
  CHECK(as_set(w.expect(3)) == as_set({"CREATE new", "CREATE new/deep", "CREATE new/deep/c.txt"}));

  fs::remove(root / "docs" / "old.txt");
  CHECK(w.expect(1) == std::vector<std::string>{"DELETE docs/old.txt"});

  // A directory's move is one RENAME; what is later written in it has its new path.
  fs::rename(root / "new", root / "moved");
  CHECK(w.expect(1) == std::vector<std::string>{"RENAME new -> moved"});
  write(root / "moved" / "deep" / "d.txt", "d");
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE moved/deep/d.txt"});

  // A removed directory: everything in it, deepest first, then itself.
  fs::remove_all(root / "moved");
  const auto removed = w.expect(4);
  CHECK(as_set(removed) == as_set({"DELETE moved/deep/c.txt", "DELETE moved/deep/d.txt", "DELETE moved/deep",
                                   "DELETE moved"}));
  CHECK(removed.back() == "DELETE moved");

  w.nothing_else(root);
  CHECK(w.problems.empty());
  w.stop();
}

TEST_CASE("directory: an editor's save (write a temporary, rename it over the file) is one MODIFY") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root);
  write(root / "notes.txt", "v1");
  directory_options options;
  options.settle = 300ms;  // longer than the save's steps take
  watch w(root, options, {}, 1h);

  write(root / ".notes.txt.swp", "v2 with more");
  fs::rename(root / ".notes.txt.swp", root / "notes.txt");
  CHECK(w.expect(1) == std::vector<std::string>{"MODIFY notes.txt"});
  CHECK(w.events.back().attributes["size"] == 12);
  w.nothing_else(root);
  w.stop();
}

TEST_CASE("directory: a directory replaced by another of the same name - old content deleted, new created, still watched") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "d" / "inner");
  write(root / "d" / "old.txt", "o");
  write(root / "d" / "inner" / "deep.txt", "x");
  watch w(root, {}, {}, 1h);  // wake-ups only
  fs::remove_all(root / "d");
  fs::create_directories(root / "d");
  write(root / "d" / "new.txt", "n");
  // The new directory may have the old one's inode number (the kernel
  // reuses it at once); then only the content is seen to change, and the
  // pair "DELETE d", "CREATE d" does not appear.
  auto changes = as_set(w.expect(4));  // at least 4; all 6 may have come at once
  const bool same_inode = changes.count("DELETE d") == 0;
  if (!same_inode && changes.size() < 6) {
    for (auto& e : w.expect(6 - changes.size())) changes.insert(e);
  }
  std::multiset<std::string> expected{"DELETE d/inner/deep.txt", "DELETE d/inner", "DELETE d/old.txt",
                                      "CREATE d/new.txt"};
  if (!same_inode) expected.insert({"DELETE d", "CREATE d"});
  CHECK(changes == expected);
  // The new directory has a watch of its own.
  write(root / "d" / "later.txt", "l");
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE d/later.txt"});
  w.nothing_else(root);
  w.stop();
}

TEST_CASE("directory: forced polling (no inotify) still reports every change, and says so once") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root);
  directory_options options;
  options.wake_ups = false;
  watch w(root, options, {}, 20ms);
  for (int i = 0; i < 50; ++i) write(root / ("f" + std::to_string(i)), "x");
  CHECK(w.expect(50).size() == 50);
  fs::rename(root / "f7", root / "g7");
  fs::remove(root / "f8");
  CHECK(as_set(w.expect(2)) == as_set({"RENAME f7 -> g7", "DELETE f8"}));
  CHECK(w.rest().empty());
  // The poller reports once that wake-ups are not available.
  CHECK(std::count_if(w.problems.begin(), w.problems.end(),
                      [](const std::string& p) { return p.find("wake-ups failed") != std::string::npos; }) == 1);
  w.stop();
}

TEST_CASE("directory: an inotify queue overflow is rescanned - 20,000 files created while nobody read, each reported once") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root);
  std::size_t queue = 16384;
  if (std::ifstream limit("/proc/sys/fs/inotify/max_queued_events"); limit) limit >> queue;
  const std::size_t files = std::max<std::size_t>(20000, queue + 2000);
  watch w(root, {}, {}, 1h);  // an hour: only wake-ups and rescans bring events
  // The io_context does not run meanwhile, so the kernel's queue overflows.
  for (std::size_t i = 0; i < files; ++i) write(root / ("f" + std::to_string(i)), "x");
  const auto events = w.expect(files);
  std::set<std::string> unique(events.begin(), events.end());
  CHECK(unique.size() == files);
  CHECK(std::all_of(events.begin(), events.end(), [](const std::string& e) { return e.starts_with("CREATE f"); }));
  w.nothing_else(root);  // a repeat would come before it
  CHECK(std::count_if(w.problems.begin(), w.problems.end(),
                      [](const std::string& p) { return p.find("overflowed") != std::string::npos; }) >= 1);
  w.stop();
}

TEST_CASE("directory: out of inotify watches - directories without one are rescanned, reported once") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  for (const char* d : {"a", "b", "c", "d"}) fs::create_directories(root / d);
  directory_options options;
  options.max_watches = 2;  // the root and one more
  watch w(root, options, {}, 20ms);
  for (const char* d : {"a", "b", "c", "d"}) write(root / d / "file", d);
  CHECK(as_set(w.expect(4)) == as_set({"CREATE a/file", "CREATE b/file", "CREATE c/file", "CREATE d/file"}));
  CHECK(std::count_if(w.problems.begin(), w.problems.end(),
                      [](const std::string& p) { return p.find("no inotify watch") != std::string::npos; }) == 1);
  CHECK(w.rest().empty());
  w.stop();
}

TEST_CASE("directory: symbolic links are entries, never followed - a loop or a link out of the root is no error") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "sub");
  fs::create_directories(dir.path() / "outside");
  write(dir.path() / "outside" / "secret.txt", "s");
  watch w(root, {}, {}, 20ms);
  fs::create_directory_symlink(dir.path() / "outside", root / "out");
  fs::create_symlink("loop", root / "loop");
  fs::create_directory_symlink("..", root / "sub" / "up");
  CHECK(as_set(w.expect(3)) == as_set({"CREATE out", "CREATE loop", "CREATE sub/up"}));
  for (const auto& e : w.events) CHECK(e.attributes["kind"] == "symlink");
  // Changes behind the link are outside the tree.
  write(dir.path() / "outside" / "more.txt", "m");
  write(root / "sub" / "inside.txt", "i");
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE sub/inside.txt"});
  CHECK(w.rest(5).empty());
  INFO(w.join(w.problems));
  CHECK(w.problems.empty());

  // With symlinks off they are not entries at all.
  directory_options no_links;
  no_links.symlinks = false;
  watch quiet(root, no_links, {}, 20ms);
  fs::create_symlink("a", root / "another");
  write(root / "plain.txt", "p");
  CHECK(quiet.expect(1) == std::vector<std::string>{"CREATE plain.txt"});
  CHECK(quiet.rest().empty());
  quiet.stop();
  w.stop();
}

TEST_CASE("directory: an unreadable subdirectory is reported once with its path and reason, the watch goes on") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "open");
  fs::create_directories(root / "secret");
  write(root / "secret" / "before.txt", "b");
  bool denied = true;
  // As root (CI) permissions do not deny; this seam does.
  const directory_fault secret_denied([&](const std::string& d) { return denied && d == "secret" ? EACCES : 0; });
  watch w(root, {}, {}, 20ms);
  write(root / "secret" / "hidden.txt", "h");
  write(root / "open" / "seen.txt", "s");
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE open/seen.txt"});
  CHECK(w.rest(5).empty());
  const auto reports = std::count_if(w.problems.begin(), w.problems.end(), [&](const std::string& p) {
    return p.find((root / "secret").string()) != std::string::npos && p.find("Permission denied") != std::string::npos;
  });
  CHECK(reports == 1);  // once, not at every rescan

  denied = false;
  write(root / "secret" / "after.txt", "a");
  // Readable again: what it holds now is found, including what was there
  // before the watch could see it.
  const auto found = w.expect(3);
  CHECK(as_set(found) ==
        as_set({"CREATE secret/before.txt", "CREATE secret/hidden.txt", "CREATE secret/after.txt"}));
  w.stop();
}

TEST_CASE("directory: include, exclude, hidden and non-recursive filters") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "src");
  fs::create_directories(root / "build");
  directory_options options;
  options.include = {"*.cpp", "src/*.hpp"};
  options.exclude = {"build"};
  options.hidden = false;
  watch w(root, options, {}, 20ms);
  write(root / "src" / "a.cpp", "");
  write(root / "src" / "a.hpp", "");
  write(root / "b.hpp", "");   // a .hpp not under src/
  write(root / "src" / "c.txt", "");
  write(root / "build" / "x.cpp", "");
  write(root / ".hidden.cpp", "");
  CHECK(as_set(w.expect(2)) == as_set({"CREATE src/a.cpp", "CREATE src/a.hpp"}));
  CHECK(w.rest(5).empty());
  w.stop();

  directory_options flat;
  flat.recursive = false;
  watch top(root, flat, {}, 20ms);
  fs::create_directories(root / "newdir");
  write(root / "newdir" / "inner.txt", "");
  write(root / "top.txt", "");
  CHECK(as_set(top.expect(2)) == as_set({"CREATE newdir", "CREATE top.txt"}));
  CHECK(top.rest(5).empty());
  top.stop();
}

TEST_CASE("directory: a state_dir inside the watched tree is left out, the tree itself is refused") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "sub");
  directory_options options;
  options.state_dir = root / "sub" / ".state";  // a nested one: its relative path, not just a name
  options.report_existing = true;
  watch w(root, options, options.state_dir / "checkpoint", 20ms);
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE sub"});
  write(root / "sub" / "a.txt", "a");
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE sub/a.txt"});
  // Its journal, snapshot and checkpoint were written meanwhile: none of it is a change.
  CHECK(w.rest(5).empty());
  w.stop();

  asio::io_context io;
  directory_options itself;
  itself.state_dir = root / "sub" / "..";
  try {
    directory_source source(io.get_executor(), root, itself);
    FAIL("a state_dir that is the watched directory was accepted");
  } catch (const std::system_error& error) {
    CHECK(error.code() == std::errc::invalid_argument);
    CHECK_THAT(error.what(), Catch::Matchers::Contains("itself"));
  }
}

TEST_CASE("directory: restarted with its state and a checkpoint, it reports only what changed while it was down") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  const auto state = dir.path() / "state";
  const auto checkpoint = dir.path() / "checkpoint";
  fs::create_directories(root / "d");
  write(root / "keep.txt", "k");
  write(root / "edit.txt", "e");
  write(root / "gone.txt", "g");
  write(root / "d" / "move.txt", "m");
  directory_options options;
  options.state_dir = state;
  std::set<std::string> ids;
  {
    watch w(root, options, checkpoint, 20ms);
    write(root / "first.txt", "1");
    CHECK(w.expect(1) == std::vector<std::string>{"CREATE first.txt"});
    for (const auto& e : w.events) ids.insert(e.id);
    w.stop();
  }
  // While it is down.
  append(root / "edit.txt", "more");
  fs::remove(root / "gone.txt");
  fs::rename(root / "d" / "move.txt", root / "moved.txt");
  write(root / "new.txt", "n");
  {
    watch w(root, options, checkpoint, 20ms);
    const auto offline = w.expect(4);
    CHECK(as_set(offline) ==
          as_set({"MODIFY edit.txt", "DELETE gone.txt", "RENAME d/move.txt -> moved.txt", "CREATE new.txt"}));
    CHECK(w.rest().empty());  // not everything again, not first.txt again
    for (const auto& e : w.events) CHECK(ids.insert(e.id).second);
    w.stop();
  }
  // A restart with nothing changed reports nothing.
  {
    watch w(root, options, checkpoint, 20ms);
    CHECK(w.rest().empty());
    w.stop();
  }
}

TEST_CASE("directory: events not yet delivered when it stopped are delivered after the restart, once") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  const auto state = dir.path() / "state";
  const auto checkpoint = dir.path() / "checkpoint";
  fs::create_directories(root);
  directory_options options;
  options.state_dir = state;
  std::vector<std::string> delivered;
  {
    // A handler that takes the first 3 events, then stops the listener: the
    // source has journaled all 10.
    asio::io_context io;
    directory_source source(io.get_executor(), root, options);
    listener_options o;
    o.poller.poll_interval = 20ms;
    o.checkpoint = checkpoint;
    event_listener listener(io.get_executor(), source, o);
    listener.add_event_listener([&](const event& e) {
      delivered.push_back(e.data);
      if (delivered.size() == 3) listener.stop();
    });
    listener.start();
    REQUIRE(run_until(io, [&] { return listener.stats().polls >= 1; }));
    for (int i = 0; i < 10; ++i) write(root / ("f" + std::to_string(i)), "x");
    REQUIRE(run_until(io, [&] { return !listener.running(); }));
    run_to_idle(io);
  }
  REQUIRE(delivered.size() == 3);
  watch w(root, options, checkpoint, 20ms);
  for (auto& e : w.expect(7)) delivered.push_back(e.substr(std::string("CREATE ").size()));
  CHECK(w.rest().empty());
  std::sort(delivered.begin(), delivered.end());
  CHECK(std::adjacent_find(delivered.begin(), delivered.end()) == delivered.end());
  CHECK(delivered.size() == 10);
  w.stop();
}

TEST_CASE("directory: a corrupt snapshot is reported and rebuilt from the journal") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  const auto state = dir.path() / "state";
  fs::create_directories(root);
  directory_options options;
  options.state_dir = state;
  {
    watch w(root, options, dir.path() / "checkpoint", 20ms);
    write(root / "a.txt", "a");
    CHECK(w.expect(1) == std::vector<std::string>{"CREATE a.txt"});
    w.stop();
  }
  write(state / "snapshot", "storewatch-tree 1\tj1;;\nnot\tan entry\n");
  write(root / "b.txt", "b");
  watch w(root, options, dir.path() / "checkpoint", 20ms);
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE b.txt"});  // a.txt is known from the journal
  CHECK(w.rest().empty());
  CHECK(std::count_if(w.problems.begin(), w.problems.end(), [&](const std::string& p) {
          return p.find((state / "snapshot").string()) != std::string::npos && p.find("line 1") != std::string::npos;
        }) == 1);
  w.stop();
}

TEST_CASE("directory snapshot: serialize and deserialize round trip, names with tabs and newlines included") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "sub dir");
  write(root / "tab\there", "1");
  write(root / "new\nline", "22");
  write(root / "sub dir" / "x", "333");
  struct no_watcher final : detail::tree_watcher {
    int add(const std::string&) override { return -1; }
    void remove(int, const std::string&) override {}
    void moved(int, const std::string&, const std::string&) override {}
  } watcher;
  detail::tree_scanner scanner(root, {}, watcher);
  CHECK(scanner.scan_all().size() == 4);
  const auto text = scanner.serialize();
  detail::tree_scanner copy(root, {}, watcher);
  std::string why;
  REQUIRE(copy.deserialize(text, why));
  CHECK(copy.serialize() == text);
  CHECK(copy.entry_count() == 4);
  CHECK(copy.scan_all().empty());  // the same tree: no changes
  CHECK_FALSE(copy.deserialize("a\tb\tq\t1\t2\t3\n", why));
  CHECK(why == "line 1 is not an entry");
}

namespace {

/// A tree and a state folder for its source's journal and snapshot.
struct tree_with_state {
  tree_with_state() {
    fs::create_directories(root);
    options.state_dir = state;
  }
  temp_dir dir;
  fs::path root = dir.path() / "tree";
  fs::path state = dir.path() / "state";
  directory_options options;
};

/// Makes `change` to the tree while the next `call` on a path containing
/// `path_part` fails with `error`, and runs `w` until that call has failed.
/// The poller then waits for its backoff before it retries.
void fail_once(watch& w, fault_call call, const std::string& path_part, int error,
               const std::function<void()>& change) {
  fault_plan plan;
  plan.fail(call, path_part, error);
  change();
  REQUIRE(run_until(w.io, [&] { return plan.fired() == 1; }));
}

/// How many of `w`'s problems mention both `a` and `b`.
std::ptrdiff_t problems_with(const watch& w, const std::string& a, const std::string& b) {
  return std::count_if(w.problems.begin(), w.problems.end(), [&](const std::string& p) {
    return p.find(a) != std::string::npos && p.find(b) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("directory: a journal write that fails (ENOSPC) loses nothing - the change is reported after the retry, once") {
  tree_with_state t;
  watch w(t.root, t.options, {}, 20ms);
  fail_once(w, fault_call::write, (t.state / "events").string(), ENOSPC, [&] { write(t.root / "a.txt", "a"); });
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE a.txt"});
  CHECK(w.rest().empty());
  CHECK(problems_with(w, t.state.string(), std::strerror(ENOSPC)) == 1);
  w.nothing_else(t.root);
  w.stop();
}

TEST_CASE("directory: a journal fsync that fails - the records written are taken back, the change is reported "
          "once after the retry, and not at all if it is undone before") {
  tree_with_state t;
  watch w(t.root, t.options, {}, 20ms);
  write(t.root / "first.txt", "1");  // the journal's segment exists before the fault
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE first.txt"});
  fail_once(w, fault_call::fsync, ".log", EIO, [&] {
    fs::create_directories(t.root / "d");
    write(t.root / "d" / "b.txt", "b");
  });
  // Not twice: the records of the failed append were voided.
  CHECK(as_set(w.expect(2)) == as_set({"CREATE d", "CREATE d/b.txt"}));
  CHECK(w.rest().empty());
  CHECK(problems_with(w, "fsync", std::strerror(EIO)) == 1);
  w.nothing_else(t.root);

  // A file that is gone again before the retry was never reported: the
  // records of the failed append are void, and the retry's rescan does not
  // find it. (The io_context does not run between the failure and the
  // removal, and the retry waits for the poller's backoff.)
  fail_once(w, fault_call::fsync, ".log", EIO, [&] { write(t.root / "brief.txt", "b"); });
  fs::remove(t.root / "brief.txt");
  w.nothing_else(t.root, "sentinel2");
  w.stop();

  // The journal itself holds each change once.
  journal_source journal(w.io.get_executor(), t.state / "events");
  std::vector<std::string> journaled;
  for (const auto& e : journal.poll("", 1000).events) journaled.push_back(describe(e));
  CHECK(as_set(journaled) == as_set({"CREATE first.txt", "CREATE d", "CREATE d/b.txt", "CREATE sentinel",
                                        "CREATE sentinel2"}));
}

namespace {

/// Notes, at each fsync of a journal segment, how many events `w`'s
/// handler had received by then (asked on the thread running `w.io`).
class fsync_witness final : public detail::sys::fault_injector {
 public:
  explicit fsync_witness(const watch& w) : w_(w) { detail::sys::injector.store(this, std::memory_order_release); }
  ~fsync_witness() override { detail::sys::injector.store(nullptr, std::memory_order_release); }
  fsync_witness(const fsync_witness&) = delete;
  fsync_witness& operator=(const fsync_witness&) = delete;

  detail::sys::verdict decide(fault_call what, const char* path) override {
    if (what == fault_call::fsync && std::string_view(path).ends_with(".log")) {
      std::lock_guard lock(mutex_);
      delivered_at_fsync_.push_back(w_.events.size());
    }
    return {};
  }
  std::vector<std::size_t> delivered_at_fsync() const {
    std::lock_guard lock(mutex_);
    return delivered_at_fsync_;
  }

 private:
  const watch& w_;
  mutable std::mutex mutex_;
  std::vector<std::size_t> delivered_at_fsync_;
};

/// The journal segments in state folder `state`.
std::vector<fs::path> segments_in(const fs::path& state) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(state / "events")) {
    if (entry.path().extension() == ".log") found.push_back(entry.path());
  }
  return found;
}

}  // namespace

TEST_CASE("directory: sync_before_delivery - the journal's fsync comes before the delivery, or (off) right after "
          "it without waiting for another poll") {
  tree_with_state t;
  const bool before = GENERATE(true, false);
  t.options.sync_before_delivery = before;
  watch w(t.root, t.options, {}, std::chrono::hours(1));  // no poll but the wake-up's
  fsync_witness witness(w);
  write(t.root / "a.txt", "a");
  CHECK(w.expect(1) == std::vector<std::string>{"CREATE a.txt"});
  REQUIRE(run_until(w.io, [&] { return !witness.delivered_at_fsync().empty(); }));
  CHECK(witness.delivered_at_fsync().front() == (before ? 0u : 1u));
  w.nothing_else(t.root);
  w.stop();
}

TEST_CASE("directory: sync_before_delivery off - events delivered, then lost from the journal by a machine crash, "
          "are reported again after the restart, none lost") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  const auto state = dir.path() / "state";
  const auto checkpoint = dir.path() / "checkpoint";
  const auto image = dir.path() / "image";  // the disk as the crash left it
  fs::create_directories(root);
  fs::create_directories(image);
  directory_options options;
  options.state_dir = state;
  options.sync_before_delivery = false;
  fs::path segment;
  std::uintmax_t durable = 0;
  {
    watch w(root, options, checkpoint, 20ms);
    write(root / "first.txt", "1");
    CHECK(w.expect(1) == std::vector<std::string>{"CREATE first.txt"});
    REQUIRE(segments_in(state).size() == 1);
    segment = segments_in(state).front();
    durable = fs::file_size(segment);
    write(root / "a.txt", "a");
    write(root / "b.txt", "b");
    CHECK(as_set(w.expect(2)) == as_set({"CREATE a.txt", "CREATE b.txt"}));
    // The machine crashes now: its disk holds the checkpoint saved after
    // each delivery, and the journal only up to `durable`.
    fs::copy(state, image / "state", fs::copy_options::recursive);
    fs::copy_file(checkpoint, image / "checkpoint");
    w.stop();
  }
  fs::resize_file(image / "state" / fs::relative(segment, state), durable);
  {
    // This one ended cleanly: a restart goes on in the same segment.
    CHECK_FALSE(fs::exists(state / "unsynced"));
    watch w(root, options, checkpoint, 20ms);
    w.nothing_else(root, "clean.txt");
    CHECK(segments_in(state).size() == 1);
    w.stop();
  }
  options.state_dir = image / "state";
  watch w(root, options, image / "checkpoint", 20ms);
  CHECK(as_set(w.expect(3)) == as_set({"CREATE a.txt", "CREATE b.txt", "CREATE clean.txt"}));
  CHECK(w.rest().empty());
  CHECK(problems_with(w, "cursor offset", "past the end") == 1);  // the listener is told
  w.nothing_else(root);
  w.stop();
}

namespace {

/// Appends to `log` after every poll until `lead` has passed since the
/// first append. With `lead` a little over 9 settles, the directory holding
/// it is then due for a rescan at its cap (10 settles after its first
/// change), sooner than a directory that changes now, which waits a whole
/// settle. Needs a short poll interval: each poll reads inotify's queue.
void keep_busy(watch& w, const fs::path& log, std::chrono::milliseconds lead) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < lead) {
    append(log, "x");
    const auto polls = w.listener.stats().polls;
    REQUIRE(run_until(w.io, [&] { return w.listener.stats().polls > polls; }));
  }
}

/// Moves directory a/x (with x/deep/f.txt) to b/x while `busy` ("a" or
/// "b") is kept changing, so that the two directories would be due for a
/// rescan at different times. Requires one RENAME, and a watch on the moved
/// directories afterwards.
void move_beside_busy_directory(const std::string& busy) {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "a" / "x" / "deep");
  fs::create_directories(root / "b");
  write(root / "a" / "x" / "deep" / "f.txt", "f");
  write(root / busy / "log", "");
  directory_options options;
  options.settle = 200ms;
  options.full_rescan_interval = std::chrono::hours(1);  // only watches find what follows
  watch w(root, options, {}, 20ms);
  keep_busy(w, root / busy / "log", 1850ms);
  fs::rename(root / "a" / "x", root / "b" / "x");
  // Waits for the move to be reported: as a RENAME, or (the defect) until
  // the old place's rescan has reported x gone.
  const auto reported = [&](const std::string& what) {
    return std::any_of(w.events.begin(), w.events.end(), [&](const event& e) { return describe(e) == what; });
  };
  REQUIRE(run_until(w.io, [&] { return reported("RENAME a/x -> b/x") || reported("DELETE a/x"); }));
  // The moved directories are still watched: a file written in one is
  // reported (full rescans are an hour apart).
  write(root / "b" / "x" / "deep" / "after.txt", "n");
  REQUIRE(run_until(w.io, [&] { return reported("CREATE b/x/deep/after.txt"); }));
  std::vector<std::string> seen;
  for (const auto& e : w.events) {
    if (e.data != busy + "/log") seen.push_back(describe(e));
  }
  CHECK(seen == std::vector<std::string>{"RENAME a/x -> b/x", "CREATE b/x/deep/after.txt"});
  w.stop();
}

}  // namespace

TEST_CASE("directory: a directory moved into a busy directory is one RENAME, and stays watched") {
  move_beside_busy_directory("b");
}

TEST_CASE("directory: a directory moved out of a busy directory is one RENAME, and stays watched") {
  move_beside_busy_directory("a");
}

TEST_CASE("tree watch: a watch held at two paths stays until the last holder lets go") {
  detail::watch_table table;
  table.hold(5, "a/x");
  table.hold(5, "b/x");  // the kernel gave the moved directory its old descriptor
  table.hold(5, "b/x");  // holding again changes nothing
  table.hold(6, "c");
  CHECK(table.size() == 2);
  CHECK_FALSE(table.release(5, "a/x"));  // the old path's rescan lets go; b/x still needs it
  CHECK(table.holders(5) == std::set<std::string>{"b/x"});
  table.move(5, "b/x", "c/x");
  CHECK(table.holders(5) == std::set<std::string>{"c/x"});
  CHECK(table.release(5, "c/x"));  // the last one: the caller removes the kernel's watch
  CHECK(table.holders(5).empty());
  CHECK_FALSE(table.release(5, "c/x"));  // unknown now
  CHECK(table.forget(6) == std::set<std::string>{"c"});
  CHECK(table.size() == 0);
}

namespace {

/// Appends one inotify event as the kernel lays it out, the name padded
/// with NULs to `padded` bytes.
void put_event(std::string& buffer, int wd, std::uint32_t mask, std::uint32_t cookie, const std::string& name,
               std::size_t padded) {
  inotify_event header{};
  header.wd = wd;
  header.mask = mask;
  header.cookie = cookie;
  header.len = static_cast<std::uint32_t>(padded);
  buffer.append(reinterpret_cast<const char*>(&header), sizeof header);
  std::string field = name;
  field.resize(padded, '\0');
  buffer += field;
}

}  // namespace

TEST_CASE("tree watch: inotify events are read from an unaligned buffer, names without padding, a torn tail left") {
  std::string buffer = "?";  // so that the events start at an odd address
  put_event(buffer, 3, IN_MOVED_FROM, 77, "old name", 16);
  put_event(buffer, 4, IN_MOVED_TO | IN_ISDIR, 77, "new", 16);
  put_event(buffer, 1, IN_Q_OVERFLOW, 0, "", 0);
  std::string torn;
  put_event(torn, 9, IN_CREATE, 0, "cut", 16);
  buffer += torn.substr(0, torn.size() - 4);
  const auto records = detail::parse_inotify(buffer.data() + 1, buffer.size() - 1);
  REQUIRE(records.size() == 3);
  CHECK(records[0].wd == 3);
  CHECK(records[0].mask == IN_MOVED_FROM);
  CHECK(records[0].cookie == 77);
  CHECK(records[0].name == "old name");
  CHECK(records[1].name == "new");
  CHECK(records[1].mask == (IN_MOVED_TO | IN_ISDIR));
  CHECK(records[2].mask == IN_Q_OVERFLOW);
  CHECK(records[2].name.empty());
}

TEST_CASE("tree watch: the rescan schedule settles, caps a busy directory at 10 settles, and takes linked "
          "directories together") {
  using clock = detail::rescan_schedule::clock;
  const auto t0 = clock::time_point{} + std::chrono::hours(1);
  detail::rescan_schedule schedule(50ms);
  CHECK_FALSE(schedule.next_due());
  schedule.mark("busy", t0);
  CHECK(schedule.next_due() == t0 + 50ms);
  for (int i = 1; i <= 9; ++i) schedule.mark("busy", t0 + i * 40ms);  // never quiet for a settle
  CHECK(schedule.take_due(t0 + 400ms).empty());
  CHECK(schedule.next_due() == t0 + 410ms);
  schedule.mark("busy", t0 + 470ms);
  CHECK(schedule.next_due() == t0 + 500ms);  // the cap, not 520 ms
  schedule.mark("quiet", t0 + 470ms);        // due at 520 ms on its own
  CHECK(dirs_of(schedule.take_due(t0 + 500ms)) == std::set<std::string>{"busy"});
  CHECK(dirs_of(schedule.take_due(t0 + 520ms)) == std::set<std::string>{"quiet"});

  // A move between them: whichever is due brings the other, and what is
  // linked to that, along.
  schedule.mark("busy", t0 + 1000ms);
  schedule.mark("busy", t0 + 1470ms);
  schedule.mark("quiet", t0 + 1470ms);
  schedule.mark("third", t0 + 1470ms);
  schedule.link("quiet", "busy");
  schedule.link("quiet", "third");
  schedule.link("same", "same");
  CHECK(dirs_of(schedule.take_due(t0 + 1500ms)) == std::set<std::string>{"busy", "quiet", "third"});
  CHECK_FALSE(schedule.next_due());
  schedule.mark("x", t0);
  schedule.link("x", "y");
  schedule.clear();
  CHECK(schedule.take_due(t0 + std::chrono::hours(1)).empty());
}

TEST_CASE("tree watch: the reader marks directories, pairs a move's halves by cookie across reads, and "
          "forgets dropped watches") {
  using clock = detail::rescan_schedule::clock;
  const auto t0 = clock::time_point{} + std::chrono::hours(1);
  detail::watch_table table;
  table.hold(1, "");
  table.hold(2, "busy");
  table.hold(3, "quiet");
  table.hold(4, "quiet/sub");
  detail::rescan_schedule schedule(50ms);
  detail::inotify_reader reader;

  // "busy" has been changing for 9.4 settles; then quiet/sub moves into it,
  // the read ending between the two halves.
  schedule.mark("busy", t0);
  schedule.mark("busy", t0 + 470ms);
  auto outcome = reader.apply({{3, IN_MOVED_FROM | IN_ISDIR, 42, "sub"}, {4, IN_MOVE_SELF, 0, ""}}, table,
                              schedule, t0 + 470ms);
  CHECK_FALSE(outcome.overflowed);
  CHECK(outcome.lost_watches.empty());
  outcome = reader.apply({{2, IN_MOVED_TO | IN_ISDIR, 42, "sub"}, {9, IN_CREATE, 0, "unknown watch"}}, table,
                         schedule, t0 + 471ms);
  // At the busy directory's cap, the quiet one is rescanned with it.
  CHECK(dirs_of(schedule.take_due(t0 + 500ms)) == std::set<std::string>{"busy", "quiet"});

  // A move out of the tree (no second half) and one into it (no first).
  // Each directory is rescanned for the entries named, not listed whole.
  reader.apply({{3, IN_MOVED_FROM, 43, "gone"}, {2, IN_MOVED_TO, 44, "came"}}, table, schedule, t0 + 1s);
  CHECK(schedule.take_due(t0 + 1s + 50ms) ==
        std::map<std::string, detail::directory_rescan>{{"busy", {false, {"came"}}}, {"quiet", {false, {"gone"}}}});
  CHECK(schedule.take_due(t0 + 1s + 50ms).empty());

  // A deleted directory: its parent is marked for DELETE_SELF; IN_IGNORED
  // drops the watch and marks the directory and its parent.
  outcome = reader.apply({{4, IN_DELETE_SELF, 0, ""}, {4, IN_IGNORED, 0, ""}, {1, IN_Q_OVERFLOW, 0, ""}}, table,
                         schedule, t0 + 2s);
  CHECK(outcome.overflowed);
  CHECK(outcome.lost_watches == std::vector<std::string>{"quiet/sub"});
  CHECK(table.holders(4).empty());
  CHECK(dirs_of(schedule.take_due(t0 + 2s + 50ms)) == std::set<std::string>{"quiet", "quiet/sub"});
}

namespace {

/// Watches as inotify gives them: one descriptor per directory inode, the
/// same again when that inode is added at another path; removed when its
/// last holder lets go.
struct fake_inotify final : detail::tree_watcher {
  explicit fake_inotify(fs::path root) : root(std::move(root)) {}
  int add(const std::string& dir) override {
    struct stat info {};
    if (::lstat((dir.empty() ? root : root / dir).c_str(), &info) != 0) return -1;
    const auto [at, fresh] = kernel.try_emplace(info.st_ino, next_wd);
    if (fresh) ++next_wd;
    table.hold(at->second, dir);
    return at->second;
  }
  void remove(int wd, const std::string& dir) override {
    if (table.release(wd, dir)) std::erase_if(kernel, [&](const auto& watch) { return watch.second == wd; });
  }
  void moved(int wd, const std::string& from, const std::string& to) override { table.move(wd, from, to); }
  /// The kernel watches `dir`, and the table knows it there.
  bool watched(const std::string& dir) const {
    struct stat info {};
    if (::lstat((root / dir).c_str(), &info) != 0) return false;
    const auto watch = kernel.find(info.st_ino);
    return watch != kernel.end() && table.holders(watch->second).count(dir);
  }
  fs::path root;
  detail::watch_table table;
  std::map<ino_t, int> kernel;
  int next_wd = 1;
};

std::vector<std::string> describe(const std::vector<detail::tree_change>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) {
    switch (c.what) {
      case detail::tree_change::kind::create: out.push_back("CREATE " + c.path); break;
      case detail::tree_change::kind::modify: out.push_back("MODIFY " + c.path); break;
      case detail::tree_change::kind::remove: out.push_back("DELETE " + c.path); break;
      case detail::tree_change::kind::rename: out.push_back("RENAME " + c.from + " -> " + c.path); break;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("tree watch: a moved directory found at its new place before it is found gone keeps its watch") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "a" / "x" / "deep");
  fs::create_directories(root / "b");
  fake_inotify kernel(root);
  detail::tree_scanner scanner(root, {}, kernel);
  scanner.scan_all();
  fs::rename(root / "a" / "x", root / "b" / "x");

  SECTION("in two rounds, the new place first: CREATE, then DELETE, and the watches stay") {
    CHECK(as_set(describe(scanner.scan({"b"}))) == as_set({"CREATE b/x", "CREATE b/x/deep"}));
    CHECK(kernel.watched("b/x"));
    CHECK(as_set(describe(scanner.scan({"a"}))) == as_set({"DELETE a/x", "DELETE a/x/deep"}));
    CHECK(kernel.watched("b/x"));
    CHECK(kernel.watched("b/x/deep"));
    CHECK(scanner.directories().at("b/x/deep").watch >= 0);
  }
  SECTION("in one round: one RENAME, and the watches move with it") {
    CHECK(describe(scanner.scan({"a", "b"})) == std::vector<std::string>{"RENAME a/x -> b/x"});
    CHECK(kernel.watched("b/x"));
    CHECK(kernel.watched("b/x/deep"));
  }
  CHECK(kernel.table.size() == 5);  // the root, a, b, x and deep, each once
  CHECK(kernel.kernel.size() == 5);
}

TEST_CASE("tree scan: entries named by inotify are looked up alone - the rest of their directory is not listed") {
  temp_dir dir;
  const auto root = dir.path() / "tree";
  fs::create_directories(root / "a");
  fs::create_directories(root / "b");
  write(root / "a" / "moved.txt", "m");
  write(root / "a" / "kept.txt", "k");
  write(root / "a" / "gone.txt", "g");
  fake_inotify kernel(root);
  detail::tree_scanner scanner(root, {}, kernel);
  scanner.scan_all();
  fs::rename(root / "a" / "moved.txt", root / "b" / "moved.txt");
  fs::remove(root / "a" / "gone.txt");
  append(root / "a" / "kept.txt", "more");  // changed but not named: not looked at
  write(root / "a" / "unnamed.txt", "u");   // new but not named: not looked at
  fs::create_directories(root / "b" / "sub");
  write(root / "b" / "sub" / "inner.txt", "i");  // in a new directory: listed with it
  using rescan = detail::directory_rescan;
  const std::map<std::string, rescan> due{{"a", rescan{false, {"gone.txt", "moved.txt", "never.txt"}}},
                                          {"b", rescan{false, {"moved.txt", "sub"}}}};
  CHECK(describe(scanner.scan_each(due)) == std::vector<std::string>{"RENAME a/moved.txt -> b/moved.txt",
                                                                     "DELETE a/gone.txt", "CREATE b/sub",
                                                                     "CREATE b/sub/inner.txt"});
  CHECK(kernel.watched("b/sub"));
  // What was not named, a listing finds, once.
  CHECK(as_set(describe(scanner.scan({"a"}))) == as_set({"MODIFY a/kept.txt", "CREATE a/unnamed.txt"}));
  CHECK(scanner.scan_all().empty());
}

}  // namespace directory_test
