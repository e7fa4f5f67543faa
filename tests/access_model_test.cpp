// Access (issue #7): nobody receives, lists or reads what was not shared
// with them, and crafted paths, user names and event names are rejected
// everywhere they can enter.
//
// - A randomized model check: five users (one with two store objects, so two
//   writers in each journal) make 10,000 random creates, shares, unshares,
//   deletes, publishes, reads and lists (STOREWATCH_MODEL_OPS; scripts/test.sh
//   runs 4,000 under the sanitizers), with crafted paths, user names,
//   event names and data mixed in (through the blocking and the async API).
//   Each operation's result must be the model's; after it, the new journal
//   events of every user it wrote to or should have written to must be
//   exactly the entitled ones (an inotify watch on the whole store tells
//   which journals were written); every 50 operations and at the end, every
//   user's journal, listing, reads of every live version and listener
//   deliveries are compared with the model too, and at the end each whole
//   journal. A crafted operation must fail with its documented error, name
//   the bad input, and write nothing at all.
//   STOREWATCH_MODEL_OPS and STOREWATCH_MODEL_SEED set the number of
//   operations and the seed (default: a random one); both are printed, and
//   every failure names the seed and the operation. A seed replays the same
//   choices; versions' timestamps come from the clock.
// - Hostile journal records: a process that can write a user's journal
//   appends crafted, torn and oversized records; the reader must report each
//   one with its file and offset, deliver none of them, and deliver the valid
//   records after them. Records with a correct checksum whose fields carry
//   crafted paths, users or names are a test case of their own.
// - The command-line tool rejects crafted paths and user names with status 2
//   and a message naming them, and writes nothing.
#include "common/fixture.hpp"
#include "common/sizing.hpp"
#include "common/store.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef STOREWATCH_TOOL
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;
#endif

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace access_model_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// An event as the model sees it: name, data, actor.
using entry = std::tuple<std::string, std::string, std::string>;
using entries = std::multiset<entry>;

entry entry_of(const event& e) { return {e.name, e.data, e.actor}; }

std::string show(const entry& e) {
  return std::get<0>(e) + " " + detail::quote(std::get<1>(e), 80) + " by " + std::get<2>(e);
}

/// What `got` has that `expected` has not, and the other way round; empty
/// when they are equal.
std::string difference(const entries& expected, const entries& got) {
  entries missing, extra;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(), std::inserter(missing, missing.end()));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(), std::inserter(extra, extra.end()));
  std::string out;
  const auto list = [&out](const char* what, const entries& items) {
    if (items.empty()) return;
    out += what;
    int shown = 0;
    for (const auto& e : items) {
      if (++shown > 5) {
        out += " ... (" + std::to_string(items.size()) + " in all)";
        break;
      }
      out += "\n    " + show(e);
    }
    out += '\n';
  };
  list("  missing:", missing);
  list("  not entitled, yet received:", extra);
  return out;
}

std::string difference(const std::vector<std::string>& expected, const std::vector<std::string>& got) {
  const auto as_entries = [](const std::vector<std::string>& texts) {
    entries out;
    for (const auto& t : texts) out.insert({"", t, ""});
    return out;
  };
  return difference(as_entries(expected), as_entries(got));
}

/// Runs `io` until `done()` holds, one handler at a time, for at most
/// `generous`. (The fixture's run_until runs in 5 ms slices, which the
/// model check would pay thousands of times: the listeners always have
/// work pending.)
bool drive(asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + generous;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return done();
}

/// Adds the time from its construction to its destruction to `total`.
class timer {
 public:
  explicit timer(std::chrono::steady_clock::duration& total) : total_(total) {}
  ~timer() { total_ += std::chrono::steady_clock::now() - started_; }
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;

 private:
  std::chrono::steady_clock::duration& total_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

std::string seconds(std::chrono::steady_clock::duration d) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << std::chrono::duration<double>(d).count();
  return out.str();
}

/// Every change under a folder tree, as inotify reports it: a watch on each
/// folder, and on each new folder as it appears. Store operations are
/// synchronous, and inotify queues an event before the call that caused it
/// returns, so what `changes()` returns after an operation is what that
/// operation wrote. (Cheaper than comparing listings of the whole tree
/// around every crafted operation, which cost more than the operations.)
class tree_watch {
 public:
  explicit tree_watch(const fs::path& root) : root_(root.string()), fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    watch(root_);
  }
  ~tree_watch() { ::close(fd_); }
  tree_watch(const tree_watch&) = delete;
  tree_watch& operator=(const tree_watch&) = delete;

  /// One change: a path and its inotify event bits; an overflow (events
  /// lost) has no path.
  struct change {
    std::string path;
    std::uint32_t mask = 0;
    bool overflow() const { return (mask & IN_Q_OVERFLOW) != 0; }
    std::string text() const {
      if (overflow()) return "inotify queue overflow (changes lost)";
      std::string out;
      for (const auto& [bit, what] : std::vector<std::pair<std::uint32_t, const char*>>{
               {IN_CREATE, "created"}, {IN_DELETE, "removed"}, {IN_MODIFY, "modified"}, {IN_CLOSE_WRITE, "written"},
               {IN_MOVED_FROM, "moved away"}, {IN_MOVED_TO, "moved in"}, {IN_ATTRIB, "attributes of"},
               {IN_DELETE_SELF, "removed folder"}, {IN_MOVE_SELF, "moved folder"}}) {
        if ((mask & bit) != 0) out += out.empty() ? what : std::string("+") + what;
      }
      return out + " " + detail::quote(path);
    }
  };

  /// What changed since the last call.
  std::vector<change> changes() {
    std::vector<change> out;
    alignas(inotify_event) char buffer[64 * 1024];
    bool lost = false;
    for (;;) {
      const auto got = ::read(fd_, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;  // EAGAIN: nothing more
      for (std::size_t at = 0; at + sizeof(inotify_event) <= static_cast<std::size_t>(got);) {
        inotify_event header{};
        std::memcpy(&header, buffer + at, sizeof header);
        const std::string name(buffer + at + sizeof header, ::strnlen(buffer + at + sizeof header, header.len));
        at += sizeof header + header.len;
        if ((header.mask & IN_Q_OVERFLOW) != 0) {
          out.push_back({{}, header.mask});
          lost = true;
          continue;
        }
        if ((header.mask & IN_IGNORED) != 0) {
          folders_.erase(header.wd);
          continue;
        }
        const auto folder = folders_.find(header.wd);
        auto path = (folder == folders_.end() ? std::string("?") : folder->second) + "/" + name;
        if ((header.mask & IN_ISDIR) != 0 && (header.mask & (IN_CREATE | IN_MOVED_TO)) != 0) watch(path);
        out.push_back({std::move(path), header.mask});
      }
    }
    if (lost) watch(root_);  // folders made meanwhile may have no watch yet
    return out;
  }

 private:
  // Watches `folder` and every folder below it.
  void watch(const std::string& folder) {
    constexpr std::uint32_t mask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                   IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    const int wd = ::inotify_add_watch(fd_, folder.c_str(), mask);
    if (wd < 0) return;  // gone again
    folders_[wd] = folder;
    DIR* dir = ::opendir(folder.c_str());
    if (dir == nullptr) return;
    while (const auto* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      bool is_dir = entry->d_type == DT_DIR;
      if (entry->d_type == DT_UNKNOWN) {
        struct stat info {};
        is_dir = ::lstat((folder + "/" + name).c_str(), &info) == 0 && S_ISDIR(info.st_mode);
      }
      if (is_dir) watch(folder + "/" + name);
    }
    ::closedir(dir);
  }

  std::string root_;
  int fd_;
  std::map<int, std::string> folders_;  // watch descriptor -> folder
};

std::string describe_changes(const std::vector<tree_watch::change>& changes) {
  std::string out;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    if (i == 10) {
      out += "\n    ... (" + std::to_string(changes.size()) + " in all)";
      break;
    }
    out += "\n    " + changes[i].text();
  }
  return out;
}

/// `base` with `inserted` put in at a random byte position.
std::string insert_at_random(std::mt19937_64& random, std::string base, std::string_view inserted) {
  const auto at = std::uniform_int_distribution<std::size_t>(0, base.size())(random);
  base.insert(at, inserted);
  return base;
}

/// Crafted input, from a seeded generator: text that every entry point must
/// reject, of each kind the issue names.
class crafter {
 public:
  explicit crafter(std::mt19937_64& random) : random_(random) {}

  std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_); }
  template <class T>
  const T& pick(const std::vector<T>& items) {
    return items[below(items.size())];
  }

  /// A path no store operation may accept: `as_prefix` leaves out the two
  /// forms a selection prefix may take (empty, and a trailing '/').
  std::string path(bool as_prefix) {
    static const std::vector<std::string> pieces{"a.txt", "docs", "Shared", "x", "sub dir", "r\xC3\xA9sum\xC3\xA9"};
    static const std::vector<std::string> ascii{"a.txt", "docs/b.txt", "Shared/d.txt", "x"};
    const auto piece = [&] { return pick(pieces); };
    // `bad` as the first, a middle or the last component.
    const auto around = [&](const std::string& bad) {
      switch (below(3)) {
        case 0: return bad + "/" + piece();
        case 1: return piece() + "/" + bad + "/" + piece();
        default: return piece() + "/" + bad;
      }
    };
    switch (below(as_prefix ? 11 : 12)) {
      case 0: {  // '..' components, climbing at most 4 folders out of the user's own
        std::string up;
        for (std::size_t i = 0, n = 1 + below(4); i < n; ++i) up += "../";
        return pick(std::vector<std::string>{"..", up + piece(), around(".."), piece() + "/" + up + piece(),
                                             piece() + "/.."});
      }
      case 1:
        return around(".");
      case 2:  // absolute
        return pick(std::vector<std::string>{"/" + piece(), "/etc/passwd", "//" + piece(), "/", "/.."});
      case 3:  // NUL
        return insert_at_random(random_, pick(ascii), std::string_view("\0", 1));
      case 4:  // the version separator ✹
        return pick(std::vector<std::string>{insert_at_random(random_, pick(ascii), star), star,
                                             piece() + star + "alice222_1761135341619"});
      case 5: {  // longer than 1024 bytes, each component short enough
        std::string long_path;
        while (long_path.size() <= detail::max_path_bytes) long_path += std::string(1 + below(160), 'p') + "/";
        long_path += "f";
        return long_path;
      }
      case 6:  // a component longer than 160 bytes
        return around(std::string(detail::max_component_bytes + 1 + below(100), 'c'));
      case 7: {  // not UTF-8: stray, truncated, overlong, surrogate, beyond U+10FFFF
        static const std::vector<std::string> bad{"\xFF",         "\xC3",         "\xC0\xAF", "\xE0\x80\xAF",
                                                  "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x9C", "\x80",
                                                  "\xF8\x88\x80\x80\x80"};
        return insert_at_random(random_, pick(ascii), pick(bad));
      }
      case 8:  // empty components ("a//" is left out of prefixes: see the test case "crafted prefixes: ...")
        return as_prefix ? pick(std::vector<std::string>{piece() + "//" + piece(), piece() + "///", "//" + piece()})
                         : pick(std::vector<std::string>{piece() + "//" + piece(), piece() + "///", "a//"});
      case 9: {  // control characters
        static const std::vector<std::string> controls{"\n", "\t", "\r", "\x01", "\x1b", "\x7f"};
        return insert_at_random(random_, pick(ascii), pick(controls));
      }
      case 10:  // the store's reserved temporary-file names
        return around(".storewatch-" + pick(std::vector<std::string>{"", "tmp", "x"}));
      default:  // forms only a prefix may take
        return pick(std::vector<std::string>{"", piece() + "/", "docs/sub/"});
    }
  }

  /// A user name no operation may accept.
  std::string user() {
    static const std::vector<std::string> fixed{"",
                                                ".",
                                                "..",
                                                "../alice222",
                                                "alice222/..",
                                                "/root",
                                                "a/b",
                                                std::string("bob\0x", 5),
                                                "bob" + star,
                                                star,
                                                std::string(detail::max_user_bytes + 1, 'u'),
                                                std::string(300, 'u'),
                                                "bob 1",
                                                "bob\xFF",
                                                "r\xC3\xA9mi",
                                                "bob\\123",
                                                "bob\n",
                                                "alice222 "};
    static const std::vector<std::string> bad_chars{"/", std::string("\0", 1), " ", "\\", ":", "*", star, "\xFF",
                                                    "\n", "@", "~", "%"};
    if (below(2) == 0) return pick(fixed);
    return insert_at_random(random_, pick(std::vector<std::string>{"bob_123", "carol.x", "D-4"}), pick(bad_chars));
  }

  /// An application event name publish_event must refuse.
  std::string event_name() {
    return pick(std::vector<std::string>{"",
                                         "with space",
                                         "SHARE",
                                         "CREATE",
                                         "UNSHARE",
                                         "DELETE",
                                         "GAP",
                                         std::string(detail::max_event_name_bytes + 1, 'n'),
                                         std::string("N\0", 2),
                                         "N" + star,
                                         "N\xFF",
                                         "tab\there",
                                         "del\x7f",
                                         "\xC3\xA9v\xC3\xA9nement"});
  }

  /// Event data publish_event must refuse: not UTF-8, or over 64 KiB.
  std::string event_data() {
    if (below(8) == 0) return std::string(detail::max_event_data_bytes + 1, 'd');
    return insert_at_random(random_, "payload", pick(std::vector<std::string>{"\xFF", "\xC3", "\xED\xA0\x80"}));
  }

 private:
  std::mt19937_64& random_;
};

/// `body` as a journal record line with a correct checksum, newline included.
std::string record_line(std::string_view body) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto sum = detail::checksum(body);
  std::string line(8, '0');
  for (int i = 0; i < 8; ++i) line[static_cast<std::size_t>(i)] = hex[(sum >> (28 - 4 * i)) & 0xF];
  line += ' ';
  line += body;
  line += '\n';
  return line;
}

}  // namespace

// ---------------------------------------------------------------------------
// The randomized model check

namespace {

/// One version as the model knows it.
struct model_version {
  versioned_path version;
  std::string bytes;
  std::set<std::string> shared;  // users it is shared with
};

/// DESIGN.md's selection rule, written out again for the model.
bool model_selects(const selection& which, const versioned_path& v) {
  if (which.since && v.created_at() < *which.since) return false;
  if (which.until && v.created_at() > *which.until) return false;
  const auto& prefix = which.prefix;
  if (which.recursive) return v.path.compare(0, prefix.size(), prefix) == 0;
  if (v.path == prefix) return true;
  std::string folder = prefix;
  if (!folder.empty() && folder.back() == '/') folder.pop_back();
  const auto slash = v.path.rfind('/');
  return (slash == std::string::npos ? std::string() : v.path.substr(0, slash)) == folder;
}

}  // namespace

TEST_CASE("access model: 5 users, 10,000 random operations (STOREWATCH_MODEL_OPS) with crafted input mixed in: every user's reads, "
          "lists, journal and listener agree with the model") {
  const auto operations = env_number("STOREWATCH_MODEL_OPS", 10000);
  std::random_device entropy;
  const auto seed = env_number("STOREWATCH_MODEL_SEED", (std::uint64_t{entropy()} << 32) | entropy());
  std::cout << "access model: seed=" << seed << " ops=" << operations
            << " (set STOREWATCH_MODEL_SEED and STOREWATCH_MODEL_OPS to replay or lengthen)" << std::endl;
  // Compare the whole view (lists, every version's read, listeners) this often.
  constexpr std::uint64_t full_check_every = 50;
  constexpr std::size_t max_live = 150;

  asio::io_context io;
  temp_dir scratch(temp_dir::place::memory);
  // The store sits a level below the scratch folder, so a '..' that got
  // through (climbing at most 4 folders from versions/<user>/) would still
  // write inside the watched tree.
  const auto root = scratch.path() / "sandbox" / "store";
  fs::create_directories(root);

  // Odd but valid names: '.', '-' and '_', and the longest allowed.
  const std::vector<std::string> users{"alice222", "bob_123", "carol.x", "D-4", "eve-" + std::string(60, 'v')};
  REQUIRE(users.back().size() == detail::max_user_bytes);
  // alice222 acts through two store objects (two writers in every journal).
  std::vector<std::vector<std::unique_ptr<local_store>>> stores(users.size());
  std::vector<std::unique_ptr<journal_reader>> readers;
  for (std::size_t u = 0; u < users.size(); ++u) {
    for (int copies = u == 0 ? 2 : 1; copies > 0; --copies) {
      stores[u].push_back(std::make_unique<local_store>(io.get_executor(), root, users[u]));
    }
    readers.push_back(std::make_unique<journal_reader>(stores[u][0]->events()));
  }

  std::vector<std::string> violations;
  std::string op_text;
  std::uint64_t op = 0;
  const auto violation = [&](const std::string& what) {
    violations.push_back("seed " + std::to_string(seed) + ", op " + std::to_string(op) + " (" + op_text + "): " + what);
  };

  // Listeners: the whole path to a handler (poller, wake-ups, stream).
  std::vector<journal_source> sources;
  sources.reserve(users.size());
  for (std::size_t u = 0; u < users.size(); ++u) sources.push_back(stores[u][0]->events());
  std::vector<entries> heard(users.size()), to_hear(users.size());
  std::vector<std::unique_ptr<event_listener>> listeners;
  for (std::size_t u = 0; u < users.size(); ++u) {
    listener_options options;
    options.poller.poll_interval = 50ms;
    options.on_error = [&, u](std::error_code ec, std::string_view message) {
      violation("listener of " + users[u] + " reported " + ec.message() + ": " + std::string(message));
    };
    listeners.push_back(std::make_unique<event_listener>(io.get_executor(), sources[u], options));
    listeners.back()->add_event_listener([&heard, u](const event& e) { heard[u].insert(entry_of(e)); });
    listeners.back()->start();
  }
  // Each has polled its (empty) journal and armed its wake-ups, which makes
  // its journal folder: from here on, only store operations write.
  REQUIRE(drive(io, [&] {
    return std::all_of(listeners.begin(), listeners.end(), [](const auto& l) { return l->stats().polls >= 1; });
  }));
  tree_watch writes(scratch.path());
  {
    // The watch sees a write deep in the tree.
    const auto probe = root / "journals" / users[1] / "probe";
    std::ofstream(probe) << "x";
    fs::remove(probe);
    const auto seen = writes.changes();
    REQUIRE(std::any_of(seen.begin(), seen.end(), [&](const auto& c) { return c.path == probe.string(); }));
  }

  std::map<std::string, model_version> live;  // by versioned name
  std::vector<versioned_path> ever;
  std::vector<entries> entitled(users.size()), delta(users.size());
  const auto index_of = [&](const std::string& user) {
    return static_cast<std::size_t>(std::find(users.begin(), users.end(), user) - users.begin());
  };
  const auto send = [&](const std::string& to, std::string_view name, const std::string& data,
                        const std::string& actor) {
    const auto u = index_of(to);
    entry e{std::string(name), data, actor};
    entitled[u].insert(e);
    delta[u].insert(e);
    to_hear[u].insert(e);
  };
  const auto visible = [](const std::string& user, const model_version& m) {
    return m.version.user == user || m.shared.count(user) > 0;
  };

  // Valid paths and prefixes, with edge cases: a file and a folder of one
  // name, '..' and '.' inside names (not components), a backslash (an
  // ordinary character), spaces, UTF-8, and a 1024-byte path of 160-byte
  // components (the limits).
  std::string longest;
  while (longest.size() + 161 <= detail::max_path_bytes) longest += std::string(detail::max_component_bytes, 'L') + "/";
  longest += std::string(detail::max_path_bytes - longest.size(), 'f');
  REQUIRE(longest.size() == detail::max_path_bytes);
  const std::vector<std::string> paths{"a.txt",        "docs",          "docs/b.txt", "docs/sub/c.txt",
                                       "Shared/d.txt", "SharedEvents/e.txt", "..\\up.txt", "...",
                                       "a..b/.c",      "sp ace/r\xC3\xA9sum\xC3\xA9.txt", longest};
  const std::vector<std::string> prefixes{"",
                                          "a.txt",
                                          "docs",
                                          "docs/",
                                          "docs/sub",
                                          "docs/b",
                                          "Shared",
                                          "SharedEvents/",
                                          "SharedEvents/e.txt",
                                          "none",
                                          "..\\",
                                          "...",
                                          "a..b",
                                          "sp ace/",
                                          std::string(detail::max_component_bytes, 'L')};

  std::mt19937_64 random(seed);
  crafter craft(random);
  const auto below = [&](std::size_t n) { return craft.below(n); };
  const auto some_users = [&] {
    std::vector<std::string> out;
    for (const auto& u : users) {
      if (below(2) == 0) out.push_back(u);
    }
    if (!out.empty() && below(8) == 0) out.push_back(out.front());  // named twice
    return out;
  };

  enum kind { create, share, unshare, remove, publish, read, list, crafted, kinds };
  std::uint64_t counts[kinds] = {};
  std::uint64_t rejected = 0, async_rejected = 0;

  // Every user's view against the model: list everything, read every live
  // version (own and shared read back, the rest denied), try some deleted
  // ones, and compare what each listener heard since the last check.
  const auto full_check = [&] {
    for (std::size_t u = 0; u < users.size() && violations.empty(); ++u) {
      const auto& user = users[u];
      auto& store = *stores[u][below(stores[u].size())];
      std::vector<std::string> expected;
      for (const auto& [name, m] : live) {
        if (visible(user, m)) expected.push_back(name);
      }
      const auto listed = sorted(texts_of(store.list_files("", true)));
      if (listed != sorted(expected)) {
        violation(user + " lists, compared with the model:\n" + difference(sorted(expected), listed));
      }
      for (const auto& [name, m] : live) {
        const auto got = failure_of([&] {
          const auto bytes = store.read_file(m.version);
          if (bytes != m.bytes) throw std::runtime_error("read " + detail::quote(bytes, 40));
        });
        if (visible(user, m) ? got.what != "no exception" : got.code != errc::permission_denied) {
          violation(user + " reading " + detail::quote(name) +
                    (visible(user, m) ? " (own or shared): " : " (not shared): ") + got.what);
        }
      }
      for (int sample = 0; sample < 8 && !ever.empty(); ++sample) {
        const auto& v = ever[below(ever.size())];
        if (live.count(v.to_string()) > 0) continue;
        const auto got = failure_of([&] { store.read_file(v); });
        if (got.code != errc::permission_denied) {
          violation(user + " reading deleted " + detail::quote(v.to_string()) + ": " + got.what);
        }
      }
    }
    for (std::size_t u = 0; u < users.size() && violations.empty(); ++u) {
      const bool caught_up = drive(io, [&] { return heard[u].size() >= to_hear[u].size(); });
      if (!caught_up || heard[u] != to_hear[u]) {
        violation("the listener of " + users[u] + (caught_up ? "" : " did not catch up in time") +
                  ", compared with the model:\n" + difference(to_hear[u], heard[u]));
      }
      heard[u].clear();
      to_hear[u].clear();
    }
  };

  // Where the time goes, for whoever tunes this.
  std::chrono::steady_clock::duration spent_on_journals{}, spent_on_full_checks{}, spent_on_watching{};
  const auto started = std::chrono::steady_clock::now();
  for (op = 0; op < operations && violations.empty(); ++op) {
    const auto actor_index = below(users.size());
    const auto& actor = users[actor_index];
    auto& store = *stores[actor_index][below(stores[actor_index].size())];
    std::ostringstream describe;
    describe << "by " << actor << ": ";
    const auto roll = below(100);
    kind k = roll < 20 ? create
             : roll < 32 ? share
             : roll < 39 ? unshare
             : roll < 45 ? remove
             : roll < 53 ? publish
             : roll < 71 ? read
             : roll < 85 ? list
                         : crafted;
    // Creates outnumber what deletes remove; past this many live versions a
    // create becomes a delete, so a full check (every live version read as
    // every user) costs the same throughout and the run time grows linearly.
    if (k == create && live.size() >= max_live) k = remove;
    ++counts[k];

    try {
      if (k == create) {
        const auto& path = paths[below(paths.size())];
        std::string bytes = "bytes of op " + std::to_string(op);
        if (below(10) == 0) bytes.clear();
        describe << "create " << detail::quote(path, 60);
        op_text = describe.str();
        const auto v = store.create_file(path, bytes);
        if (v.path != path || v.user != actor || live.count(v.to_string()) > 0) {
          violation("created " + detail::quote(v.to_string()));
        }
        live[v.to_string()] = {v, bytes, {}};
        ever.push_back(v);
        send(actor, event_name::create, v.to_string(), actor);
      } else if (k == share || k == unshare || k == remove) {
        std::vector<timestamp> times;
        for (const auto& [name, m] : live) {
          if (m.version.user == actor) times.push_back(m.version.created_at());
        }
        auto which = chosen(prefixes[below(prefixes.size())], below(2) == 0);
        if (!times.empty()) {
          const auto bounds = below(4);
          if (bounds == 1 || bounds == 3) which.since = times[below(times.size())];
          if (bounds == 2 || bounds == 3) which.until = times[below(times.size())];
        }
        const auto named = some_users();
        describe << (k == remove ? "delete " : k == share ? "share " : "unshare ") << detail::quote(which.prefix, 60)
                 << (which.recursive ? " recursive" : " non-recursive");
        if (which.since) describe << " since " << which.since->time_since_epoch().count();
        if (which.until) describe << " until " << which.until->time_since_epoch().count();
        if (k != remove) {
          describe << " with";
          for (const auto& u : named) describe << " " << u;
        }
        op_text = describe.str();
        const auto got = k == remove ? store.delete_files(which) : store.share_files(which, named, k == share);
        std::vector<std::string> expected;
        for (auto it = live.begin(); it != live.end();) {
          auto& m = it->second;
          if (m.version.user != actor || !model_selects(which, m.version)) {
            ++it;
            continue;
          }
          expected.push_back(it->first);
          if (k == remove) {
            send(actor, event_name::delete_, it->first, actor);
            for (const auto& grantee : m.shared) send(grantee, event_name::delete_, it->first, actor);
            it = live.erase(it);
            continue;
          }
          for (const auto& u : named) {
            if (u == actor) continue;  // naming oneself does nothing
            if (k == share) {
              m.shared.insert(u);
              send(u, event_name::share, it->first, actor);  // also when shared already
            } else if (m.shared.erase(u) > 0) {
              send(u, event_name::unshare, it->first, actor);
            }
          }
          ++it;
        }
        const auto selected = sorted(texts_of(got));
        if (selected != sorted(expected)) {
          violation("selected, compared with the model:\n" + difference(sorted(expected), selected));
        }
      } else if (k == publish) {
        static const std::vector<std::string> names{"NOTE", "app.event-1", "x_y",
                                                    std::string(detail::max_event_name_bytes, 'n')};
        const auto& name = names[below(names.size())];
        // Application data is opaque: text that would be a crafted path is fine here.
        std::string data;
        switch (below(6)) {
          case 0: data = "note " + std::to_string(op) + " \xE2\x9C\x93"; break;
          case 1: data = "../../etc/passwd"; break;
          case 2: data = std::string("tab\tnew\nline\\ nul\0 ", 19) + star; break;
          case 3: data = "/abs" + star + "alice222_1"; break;
          case 4: data.clear(); break;
          default: data = below(20) == 0 ? std::string(detail::max_event_data_bytes, 'd') : "op " + std::to_string(op);
        }
        const auto named = some_users();
        describe << "publish " << detail::quote(name, 20) << " " << detail::quote(data, 40) << " to";
        for (const auto& u : named) describe << " " << u;
        op_text = describe.str();
        const auto ids = store.publish_event(name, data, named);
        if (ids.size() != named.size() || std::set<std::string>(ids.begin(), ids.end()).size() != ids.size()) {
          violation(std::to_string(ids.size()) + " ids for " + std::to_string(named.size()) + " users");
        }
        for (const auto& u : named) send(u, name, data, actor);
      } else if (k == read) {
        if (ever.empty()) {
          op_text = describe.str() + "read (nothing yet)";
        } else {
          auto v = ever[below(ever.size())];
          switch (below(5)) {
            case 0: v.user = users[below(users.size())]; break;  // someone else's, if it exists
            case 1: v.timestamp_ms += 1; break;
            case 2: v.path = paths[below(paths.size())]; break;
            default: break;  // a version that existed, live or deleted
          }
          describe << "read " << detail::quote(v.to_string(), 80);
          op_text = describe.str();
          const auto found = live.find(v.to_string());
          const bool entitled_to = found != live.end() && visible(actor, found->second);
          const auto got = failure_of([&] {
            const auto bytes = store.read_file(v);
            if (!entitled_to) throw std::runtime_error("read what was not shared: " + detail::quote(bytes, 40));
            if (bytes != found->second.bytes) throw std::runtime_error("wrong bytes: " + detail::quote(bytes, 40));
          });
          if (entitled_to ? got.what != "no exception" : got.code != errc::permission_denied) {
            violation("read: " + got.what);
          }
        }
      } else if (k == list) {
        const auto which = chosen(prefixes[below(prefixes.size())], below(2) == 0);
        describe << "list " << detail::quote(which.prefix, 60) << (which.recursive ? " recursive" : " non-recursive");
        op_text = describe.str();
        std::vector<std::string> expected;
        for (const auto& [name, m] : live) {
          if (visible(actor, m) && model_selects(which, m.version)) expected.push_back(name);
        }
        const auto listed = sorted(texts_of(store.list_files(which.prefix, which.recursive)));
        if (listed != sorted(expected)) {
          violation("listed, compared with the model:\n" + difference(sorted(expected), listed));
        }
      } else {
        // Crafted input: the documented error, naming the input; nothing
        // written anywhere in the scratch folder.
        std::error_code want;
        std::string named_in_message;
        std::function<void()> blocking;
        std::function<void(std::function<void(std::error_code)>)> async;  // the same through the async API
        const auto live_version = [&]() -> versioned_path {
          if (live.empty()) return {"a.txt", actor, 1761135341619};
          auto it = live.begin();
          std::advance(it, static_cast<std::ptrdiff_t>(below(live.size())));
          return it->second.version;
        };
        const auto done = [](auto callback) {  // adapts (ec, result) completions
          return [callback](std::error_code ec, auto&&...) { callback(ec); };
        };
        const auto what = below(12);
        if (what <= 5) {  // a path
          const bool as_prefix = what != 0;
          const auto path = craft.path(as_prefix);
          want = errc::invalid_path;
          named_in_message = detail::quote(path);
          const auto which = chosen(path, below(2) == 0);
          const auto named = some_users();
          switch (what) {
            case 0:
              describe << "create " << named_in_message;
              blocking = [&store, path] { store.create_file(path, "crafted"); };
              async = [&store, path, done](auto cb) { store.async_create_file(path, "crafted", done(cb)); };
              break;
            case 1:
            case 2:
              describe << (what == 1 ? "share " : "unshare ") << named_in_message;
              blocking = [&store, which, named, what] { store.share_files(which, named, what == 1); };
              async = [&store, which, named, what, done](auto cb) {
                if (what == 1) {
                  store.async_share_files(which, named, done(cb));
                } else {
                  store.async_unshare_files(which, named, done(cb));
                }
              };
              break;
            case 3:
              describe << "delete " << named_in_message;
              blocking = [&store, which] { store.delete_files(which); };
              async = [&store, which, done](auto cb) { store.async_delete_files(which, done(cb)); };
              break;
            case 4:
              describe << "list " << named_in_message;
              blocking = [&store, which] { store.list_files(which.prefix, which.recursive); };
              async = [&store, which, done](auto cb) {
                store.async_list_files(which.prefix, which.recursive, done(cb));
              };
              break;
            default: {
              auto v = live_version();
              v.path = craft.path(false);
              want = errc::invalid_path;
              named_in_message = detail::quote(v.path);
              describe << "read version with path " << named_in_message;
              blocking = [&store, v] { store.read_file(v); };
              async = [&store, v, done](auto cb) { store.async_read_file(v, done(cb)); };
            }
          }
        } else if (what <= 9) {  // a user name
          const auto bad = craft.user();
          want = errc::invalid_user;
          named_in_message = detail::quote(bad);
          // The good names before it get nothing either.
          auto named = some_users();
          named.insert(named.begin() + static_cast<std::ptrdiff_t>(below(named.size() + 1)), bad);
          switch (what) {
            case 6: {
              auto v = live_version();
              v.user = bad;
              describe << "read version owned by " << named_in_message;
              blocking = [&store, v] { store.read_file(v); };
              async = [&store, v, done](auto cb) { store.async_read_file(v, done(cb)); };
              break;
            }
            case 7: {
              const auto which = chosen(prefixes[below(prefixes.size())], below(2) == 0);
              const bool sharing = below(2) == 0;
              describe << (sharing ? "share" : "unshare") << " with " << named_in_message;
              blocking = [&store, which, named, sharing] { store.share_files(which, named, sharing); };
              async = [&store, which, named, sharing, done](auto cb) {
                if (sharing) {
                  store.async_share_files(which, named, done(cb));
                } else {
                  store.async_unshare_files(which, named, done(cb));
                }
              };
              break;
            }
            case 8:
              describe << "publish to " << named_in_message;
              blocking = [&store, named] { store.publish_event("NOTE", "x", named); };
              async = [&store, named, done](auto cb) { store.async_publish_event("NOTE", "x", named, done(cb)); };
              break;
            default:
              describe << "open the store as " << named_in_message;
              blocking = [&io, &root, bad] { local_store opened(io.get_executor(), root, bad); };
          }
        } else if (what == 10) {  // an event name
          const auto name = craft.event_name();
          want = errc::invalid_event_name;
          named_in_message = detail::quote(name);
          const auto named = some_users();
          describe << "publish event named " << named_in_message;
          blocking = [&store, name, named] { store.publish_event(name, "x", named); };
          async = [&store, name, named, done](auto cb) { store.async_publish_event(name, "x", named, done(cb)); };
        } else {  // event data
          const auto data = craft.event_data();
          want = errc::invalid_event;
          named_in_message = "NOTE";
          const auto named = some_users();
          describe << "publish data " << detail::quote(data, 40);
          blocking = [&store, data, named] { store.publish_event("NOTE", data, named); };
          async = [&store, data, named, done](auto cb) { store.async_publish_event("NOTE", data, named, done(cb)); };
        }
        if (async && below(4) == 0) {
          describe << " (async)";
          op_text = describe.str();
          std::optional<std::error_code> completed;
          async([&completed](std::error_code ec) { completed = ec; });
          if (completed) violation("the handler ran inside the initiating function");
          if (!drive(io, [&] { return completed.has_value(); })) {
            violation("did not complete");
          } else if (*completed != want) {
            violation("completed with " + completed->message() + ", not " + want.message());
          } else if (store.last_error().find(named_in_message) == std::string::npos) {
            violation("last_error() does not name " + named_in_message + ": " + store.last_error());
          }
          ++async_rejected;
        } else {
          op_text = describe.str();
          const auto got = failure_of(blocking);
          if (got.code != want) {
            violation("failed with " + got.what + " (" + got.code.message() + "), not " + want.message());
          } else if (got.what.find(named_in_message) == std::string::npos) {
            violation("the message does not name " + named_in_message + ": " + got.what);
          }
        }
        ++rejected;
      }
    } catch (const std::exception& error) {
      violation(std::string("threw: ") + error.what());
    }

    // After every operation: what it wrote (a crafted one: nothing), and
    // the new journal events of each user it wrote a journal record for or
    // the model says it should have, against the model. Nothing was written
    // to the other users' journals, so they have no new events; at full
    // checks every user's journal is read all the same.
    std::vector<tree_watch::change> written;
    {
      const timer t(spent_on_watching);
      written = writes.changes();
    }
    if (k == crafted && !written.empty()) violation("wrote to the store:" + describe_changes(written));
    const bool full = (op + 1) % full_check_every == 0 || op + 1 == operations;
    std::set<std::size_t> to_read;
    for (std::size_t u = 0; u < users.size(); ++u) {
      if (full || !delta[u].empty()) to_read.insert(u);
    }
    const auto journals = (root / "journals").string() + "/";
    for (const auto& c : written) {
      if (c.overflow()) {
        for (std::size_t u = 0; u < users.size(); ++u) to_read.insert(u);
      } else if (c.path.starts_with(journals)) {
        const auto user = c.path.substr(journals.size(), c.path.find('/', journals.size()) - journals.size());
        const auto u = index_of(user);
        if (u < users.size()) {
          to_read.insert(u);
        } else {
          violation("wrote the journal of " + detail::quote(user) + ", who is no user here: " + c.text());
        }
      }
    }
    for (const auto u : to_read) {
      if (!violations.empty()) break;
      const timer t(spent_on_journals);
      auto taken = readers[u]->take_all();
      for (const auto& problem : taken.problems) violation("journal of " + users[u] + ": " + problem.message);
      entries got;
      for (const auto& e : taken.events) got.insert(entry_of(e));
      if (got != delta[u]) {
        violation("journal of " + users[u] + ", compared with the model:\n" + difference(delta[u], got));
      }
      delta[u].clear();
    }
    if (violations.empty() && full) {
      op_text = "full check";
      const timer t(spent_on_full_checks);
      full_check();
      const auto during = writes.changes();
      if (!during.empty()) violation("wrote to the store:" + describe_changes(during));
    }
  }

  // Nothing more arrives at the listeners, and each whole journal, from the
  // start, holds exactly what its user is entitled to, with unique ids.
  op_text = "end";
  for (std::size_t u = 0; u < users.size() && violations.empty(); ++u) {
    const auto polls = listeners[u]->stats().polls;
    if (!drive(io, [&] { return listeners[u]->stats().polls >= polls + 2; })) violation("listener stopped polling");
    if (!heard[u].empty()) violation("the listener of " + users[u] + " heard more:\n" + difference({}, heard[u]));
  }
  std::set<std::string> ids;
  std::size_t events = 0;
  for (std::size_t u = 0; u < users.size() && violations.empty(); ++u) {
    auto taken = journal_reader(stores[u][0]->events()).take_all();
    for (const auto& problem : taken.problems) violation("journal of " + users[u] + ": " + problem.message);
    entries got;
    for (const auto& e : taken.events) {
      got.insert(entry_of(e));
      if (e.id.empty() || !ids.insert(e.id).second) violation("id " + detail::quote(e.id) + " empty or repeated");
    }
    events += taken.events.size();
    if (got != entitled[u]) violation("whole journal of " + users[u] + ":\n" + difference(entitled[u], got));
  }
  for (auto& l : listeners) l->stop();
  run_to_idle(io);

  std::cout << "access model: ops=" << op << " rejected_crafted=" << rejected << " violations=" << violations.size()
            << " seed=" << seed << "\n  (create " << counts[create] << ", share " << counts[share] << ", unshare "
            << counts[unshare] << ", delete " << counts[remove] << ", publish " << counts[publish] << ", read "
            << counts[read] << ", list " << counts[list] << ", crafted " << counts[crafted] << " of them "
            << async_rejected << " async; " << events << " journal events, " << live.size() << " versions live)\n"
            << "  (seconds: " << seconds(std::chrono::steady_clock::now() - started) << " in all, "
            << seconds(spent_on_journals) << " reading journals after each operation, " << seconds(spent_on_full_checks)
            << " in full checks, " << seconds(spent_on_watching) << " watching for writes)" << std::endl;
  for (const auto& v : violations) FAIL_CHECK(v);
  REQUIRE(violations.empty());
  CHECK(op == operations);
  if (operations >= 1000) {
    for (const auto count : counts) CHECK(count > operations / 50);
  }
}

// Found by the model check (a crafted prefix "a//" was accepted): as a
// prefix, an empty component is let through when only the trailing '/'
// follows it, so "docs//" is a valid selection although it has an empty
// component, which invalid_path documents as rejected. It selects nothing,
// so nothing leaks; but every other empty component is refused.
// Found by this suite: detail::path_problem accepted "docs//" as a prefix.
TEST_CASE("crafted prefixes: an empty component just before the trailing '/' (docs//) is rejected like any other") {
  asio::io_context io;
  temp_dir scratch(temp_dir::place::memory);
  local_store alice(io.get_executor(), scratch.path(), "alice222");
  alice.create_file("docs/a.txt", "a");
  for (const std::string prefix : {"docs//", "a//", "docs/sub//", "//"}) {
    INFO("prefix " << detail::quote(prefix) << ": path_problem says "
                   << detail::quote(detail::path_problem(prefix, true)));
    CHECK_FALSE(detail::path_problem(prefix, true).empty());
    CHECK(failure_of([&] { alice.list_files(prefix, true); }).code == errc::invalid_path);
    CHECK(failure_of([&] { alice.share_files(chosen(prefix, true), {"bob123"}, true); }).code == errc::invalid_path);
    CHECK(failure_of([&] { alice.share_files(chosen(prefix, false), {"bob123"}, false); }).code == errc::invalid_path);
    CHECK(failure_of([&] { alice.delete_files(chosen(prefix, true)); }).code == errc::invalid_path);
  }
  // The forms a prefix may take stay valid.
  for (const std::string prefix : {"", "docs/", "docs", "docs/sub/"}) {
    INFO("prefix " << detail::quote(prefix));
    CHECK(detail::path_problem(prefix, true).empty());
  }
}

// ---------------------------------------------------------------------------
// Hostile journal records

namespace {

void append_file(const fs::path& file, std::string_view bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

/// The bytes a hostile process writes into one segment file, in the store's
/// framing, remembering where each crafted record starts and which valid
/// events must still arrive.
class hostile_segment {
 public:
  explicit hostile_segment(fs::path file) : file_(std::move(file)) {}

  /// A record as the store writes it; it must arrive.
  void valid(event e) {
    bytes_ += detail::encode_record(e);
    expected_.push_back(std::move(e));
  }
  /// Bytes that are not a valid record: reported at their offset, never delivered.
  void crafted(std::string raw, std::string what) {
    crafted_.push_back({bytes_.size(), std::move(what)});
    bytes_ += raw;
  }
  /// A line with a correct checksum over `body`.
  void crafted_record(std::string_view body, std::string what) { crafted(record_line(body), std::move(what)); }
  /// `e` encoded as the store encodes records: well-framed, but not
  /// something the store would ever write.
  void crafted_event(const event& e, std::string what) { crafted(detail::encode_record(e), std::move(what)); }

  /// Appends the bytes to the file (making its folder).
  void write() const { append_file(file_, bytes_); }

  struct mark {
    std::size_t offset;
    std::string what;
  };
  const fs::path& file() const { return file_; }
  const std::string& bytes() const { return bytes_; }
  const std::vector<event>& expected() const { return expected_; }
  const std::vector<mark>& crafted_records() const { return crafted_; }

 private:
  fs::path file_;
  std::string bytes_;
  std::vector<event> expected_;
  std::vector<mark> crafted_;
};

event note(std::string data, int sequence) {
  event e;
  e.name = "NOTE";
  e.data = std::move(data);
  e.actor = "alice222";
  e.id = "hostile-" + std::to_string(sequence);
  e.occurred_at = timestamp{1761135341619ms + std::chrono::milliseconds(sequence)};
  return e;
}

std::string describe(const event& e) {
  return e.id + " " + detail::quote(e.name) + " " + detail::quote(e.data, 60) + " by " + detail::quote(e.actor);
}

/// Reads `journal` (a store user's `events()`) from the start: exactly the
/// valid events of `segments` and `others` arrive (each segment's in file
/// order), and each crafted record is reported as `corrupt_record` naming
/// its file and offset.
void check_hostile(journal_source journal, const std::vector<const hostile_segment*>& segments,
                   const std::vector<event>& others = {}) {
  const auto taken = journal_reader(std::move(journal)).take_all();
  std::string reported;
  for (const auto& p : taken.problems) reported += "\n  " + p.message;
  INFO("problems reported:" << reported);
  for (const auto& p : taken.problems) {
    INFO(p.message);
    CHECK(p.code == errc::corrupt_record);
  }
  std::vector<std::string> got, want;
  for (const auto& e : taken.events) got.push_back(describe(e));
  for (const auto& e : others) want.push_back(describe(e));
  for (const auto* segment : segments) {
    for (const auto& [offset, what] : segment->crafted_records()) {
      INFO("crafted: " << what << ", at " << segment->file().string() << " offset " << offset);
      const auto where = segment->file().string() + " offset " + std::to_string(offset) + ":";
      CHECK(std::any_of(taken.problems.begin(), taken.problems.end(),
                        [&](const source_problem& p) { return p.message.find(where) != std::string::npos; }));
    }
    std::vector<std::string> in_order, written;
    for (const auto& e : segment->expected()) {
      want.push_back(describe(e));
      written.push_back(e.id);
      const auto same = std::find(taken.events.begin(), taken.events.end(), e);
      INFO("valid: " << describe(e));
      CHECK(same != taken.events.end());  // every field intact
    }
    for (const auto& e : taken.events) {
      if (std::find(written.begin(), written.end(), e.id) != written.end()) in_order.push_back(e.id);
    }
    CHECK(in_order == written);
  }
  // Nothing else arrives: no crafted record, no GAP.
  CHECK(sorted(got) == sorted(want));
}

}  // namespace

TEST_CASE("hostile journal records: torn, short, corrupt and oversized records are reported with file and offset, "
          "never delivered, and the records after them arrive") {
  temp_dir scratch(temp_dir::place::memory);
  const auto root = scratch.path() / "store";
  asio::io_context io;
  local_store alice(io.get_executor(), root, "alice222");
  const local_store bob(io.get_executor(), root, "bob123");
  alice.publish_event("HELLO", "from the store", {"bob123"});
  const auto journal = root / "journals" / "bob123";
  const auto from_store = journal_reader(bob.events()).take_all().events;
  REQUIRE(from_store.size() == 1);

  hostile_segment segment(journal / "hostile-1" / detail::segment_name(0));
  int sequence = 0;
  const auto then_valid = [&] { segment.valid(note("valid after a crafted record", sequence++)); };
  const auto body_of = [](const std::string& line) { return line.substr(9, line.size() - 10); };
  const auto good = detail::encode_record(note("good", 9999));
  segment.valid(note("first", sequence++));
  for (const auto& [raw, what] : std::vector<std::pair<std::string, std::string>>{
           {"\n", "an empty line"},
           {"x\n", "a one-byte line"},
           {"12345678\n", "a checksum and nothing else"},
           {"1234567 z\n", "seven checksum digits"},
           {good.substr(0, good.size() / 2) + "\n", "the first half of a record"},
           {good.substr(good.size() / 2), "the second half of a record"},
           {"zzzzzzzz " + body_of(good) + "\n", "checksum digits that are not hex"},
           {"ABCDEF01 " + body_of(good) + "\n", "upper-case checksum digits"},
           {"-1234567 " + body_of(good) + "\n", "a signed checksum"},
           {"00000000 " + body_of(good) + "\n", "a wrong checksum"},
           {good.substr(0, 20) + std::string("\0\0\0\0", 4) + good.substr(24), "NUL bytes over part of a record"},
           // No record end within a reader's chunk (1 MiB): the framing's "huge length".
           {"ffffffff " + std::string((1u << 20) + 4096, 'A') + "\n", "a line of over 1 MiB"},
       }) {
    segment.crafted(raw, what);
    then_valid();
  }
  {
    auto line = good;
    line[line.size() / 2] ^= 0x01;
    segment.crafted(line, "one flipped bit");
    then_valid();
  }
  for (const auto& [body, what] : std::vector<std::pair<std::string, std::string>>{
           {std::string("id-1\tNOTE\talice222\t7\tbad \xFF data"), "data that is not UTF-8"},
           {std::string("id-1\tNOTE\t\xC3\x28\t7\tdata"), "an actor that is not UTF-8"},
           {std::string("\xF4\tNOTE\talice222\t7\tdata"), "an id that is not UTF-8"},
           {std::string("id-1\tN\xED\xA0\x80\talice222\t7\tdata"), "a name with a UTF-16 surrogate"},
           {std::string("id-1\tNOTE\talice222\t7\tover\xF4\x90\x80\x80long"), "data beyond U+10FFFF"},
           {"id-1\tNOTE\talice222\t7\tbad escape \\x", "an unknown escape"},
           {"id-1\tNOTE\talice222\t7\tdangling \\", "a dangling escape"},
           {"id-1\tNOTE\talice222\t7", "four fields"},
           {"id-1\tNOTE\talice222\t7\tdata\t{}\textra", "seven fields"},
           {"\tNOTE\talice222\t7\tdata", "an empty id"},
           {"id-1\t\talice222\t7\tdata", "an empty name"},
           {"id-1\tNOTE\talice222\t99999999999999999999999\tdata", "occurred_at beyond 64 bits"},
           {"id-1\tNOTE\talice222\t-\tdata", "occurred_at '-'"},
           {"id-1\tNOTE\talice222\t1e3\tdata", "occurred_at '1e3'"},
           {"id-1\tNOTE\talice222\t\tdata", "an empty occurred_at"},
           {"id-1\tNOTE\talice222\t7\tdata\t{not json", "attributes that are not JSON"},
       }) {
    segment.crafted_record(body, what);
    then_valid();
  }
  segment.write();

  // A torn record at the end of a sealed segment: its writer has moved on
  // to the next segment, so it will never be completed.
  hostile_segment sealed(journal / "hostile-2" / detail::segment_name(0));
  sealed.valid(note("before a torn tail", 100));
  sealed.crafted(detail::encode_record(note("torn", 101)).substr(0, 30), "a torn tail of a sealed segment");
  hostile_segment next(journal / "hostile-2" / detail::segment_name(sealed.bytes().size()));
  next.valid(note("in the next segment", 102));
  sealed.write();
  next.write();

  // Folders and files that are not writers or segments are not read.
  append_file(journal / "not a writer" / detail::segment_name(0), detail::encode_record(note("ignored", 200)));
  append_file(journal / ".hidden" / detail::segment_name(0), detail::encode_record(note("ignored", 201)));
  append_file(journal / "hostile-3" / "0.log", detail::encode_record(note("ignored", 202)));
  append_file(journal / "hostile-3" / (detail::segment_name(0) + ".tmp"), detail::encode_record(note("ignored", 203)));

  SECTION("crafted records, a torn tail in a sealed segment, and folders that are no writers") {
    check_hostile(bob.events(), {&segment, &sealed, &next}, from_store);
  }
  SECTION("a torn tail at the end of the newest segment is held back, then reported when completed wrongly") {
    journal_reader reader{bob.events()};
    (void)reader.take_all();
    const auto tail = detail::encode_record(note("torn, newest", 300));
    const auto at = fs::file_size(segment.file());
    append_file(segment.file(), tail.substr(0, tail.size() / 2));
    auto taken = reader.take_all();
    CHECK(taken.events.empty());
    CHECK(taken.problems.empty());
    append_file(segment.file(), "garbage\n");
    append_file(segment.file(), detail::encode_record(note("after the torn tail", 301)));
    taken = reader.take_all();
    REQUIRE(taken.events.size() == 1);
    CHECK(taken.events[0].data == "after the torn tail");
    REQUIRE(taken.problems.size() == 1);
    CHECK(taken.problems[0].code == errc::corrupt_record);
    CHECK_THAT(taken.problems[0].message,
               Catch::Contains(segment.file().string() + " offset " + std::to_string(at) + ":"));
  }
  SECTION("bytes appended to the store's own segment are reported, and the store's next records arrive") {
    journal_reader reader{bob.events()};
    (void)reader.take_all();
    fs::path own;
    for (const auto& writer : detail::list_writers(journal)) {
      if (!writer.starts_with("hostile")) own = journal / writer / detail::segment_name(0);
    }
    REQUIRE(fs::exists(own));
    const auto at = fs::file_size(own);
    append_file(own, "not a record\n");
    alice.publish_event("AFTER", "the store goes on", {"bob123"});
    const auto taken = reader.take_all();
    REQUIRE(taken.events.size() == 1);
    CHECK(taken.events[0].name == "AFTER");
    REQUIRE(taken.problems.size() == 1);
    CHECK(taken.problems[0].code == errc::corrupt_record);
    CHECK_THAT(taken.problems[0].message, Catch::Contains(own.string() + " offset " + std::to_string(at) + ":"));
  }
}

TEST_CASE("hostile journal records: well-framed records carrying crafted paths, users or event names are reported "
          "with file and offset and never delivered") {
  // A correct checksum says a record is whole, not that the store wrote it.
  // The store never writes a file event (CREATE, SHARE, UNSHARE, DELETE)
  // whose data is not a versioned path, whose path has a '..' or '.'
  // component, a leading '/', a NUL, a second ✹, an empty component, a
  // control character or a reserved name, or is too long; whose owner is no
  // valid user name; whose actor is not the version's owner (only owners
  // create, share, unshare and delete); a CREATE of another user's version
  // in this user's journal, or a SHARE to the owner. Nor does it write a GAP
  // (sources make those), an event name publish_event refuses, or an actor
  // that is no user name. Application data is opaque: it arrives whatever it
  // looks like. These are rules of a store user's journal, read through the
  // store's `events()`: the same journal source also serves the directory
  // source, whose CREATE and DELETE events carry plain paths.
  // Found by this suite: every one of these records used to be delivered;
  // local_store::events() now checks them (detail::store_record_problem).
  temp_dir scratch(temp_dir::place::memory);
  asio::io_context io;
  const local_store bob(io.get_executor(), scratch.path(), "bob123");
  const auto journal = scratch.path() / "journals" / "bob123";
  detail::ensure_journal(journal);
  hostile_segment segment(journal / "hostile-1" / detail::segment_name(0));
  int sequence = 0;
  const auto make = [&](std::string_view name, std::string data, std::string actor) {
    event e = note(std::move(data), sequence);
    e.name = name;
    e.actor = std::move(actor);
    e.id = "hostile-" + std::to_string(sequence++);
    return e;
  };
  const auto version_of = [](const std::string& path, const std::string& owner) {
    return path + star + owner + "_1761135341619";
  };
  const auto then_valid = [&] {
    // What a store does write, and must arrive between the crafted records.
    switch (sequence % 5) {
      case 0: segment.valid(make(event_name::share, version_of("docs/a.txt", "alice222"), "alice222")); break;
      case 1: segment.valid(make(event_name::delete_, version_of("Shared/b.txt", "carol"), "carol")); break;
      case 2: segment.valid(make("NOTE", "../../etc/passwd", "alice222")); break;
      case 3: segment.valid(make("NOTE", std::string("nul\0 and ", 9) + star + " /abs", "alice222")); break;
      default: segment.valid(make(event_name::create, version_of("mine.txt", "bob123"), "bob123"));
    }
  };
  then_valid();
  const auto long_path = std::string(600, 'p') + "/" + std::string(600, 'q');
  const auto bad_owner = std::string(65, 'u');
  for (const auto& [e, what] : std::vector<std::pair<event, std::string>>{
           {make(event_name::share, version_of("../../etc/passwd", "alice222"), "alice222"), "'..' components"},
           {make(event_name::share, version_of("docs/../../x", "alice222"), "alice222"), "SHARE of 'docs/../../x'"},
           {make(event_name::delete_, version_of("/etc/passwd", "alice222"), "alice222"), "DELETE of '/etc/passwd'"},
           {make(event_name::share, version_of(std::string("a\0b.txt", 7), "alice222"), "alice222"), "a NUL"},
           {make(event_name::share, "a" + star + version_of("b.txt", "alice222"), "alice222"), "SHARE with two ✹"},
           {make(event_name::unshare, version_of(long_path, "alice222"), "alice222"), "UNSHARE of a 1201-byte path"},
           {make(event_name::share, version_of(std::string(161, 'c'), "alice222"), "alice222"), "a 161-byte component"},
           {make(event_name::share, version_of("docs//a.txt", "alice222"), "alice222"), "an empty component"},
           {make(event_name::share, version_of("./a.txt", "alice222"), "alice222"), "a '.' component"},
           {make(event_name::share, version_of("a\nb", "alice222"), "alice222"), "a newline in the path"},
           {make(event_name::share, version_of(".storewatch-x", "alice222"), "alice222"), "a reserved name"},
           {make(event_name::share, "notes.txt", "alice222"), "SHARE whose data is no versioned path"},
           {make(event_name::unshare, version_of("x.txt", "../carol"), "../carol"), "UNSHARE by owner '../carol'"},
           {make(event_name::share, version_of("x.txt", "a/b"), "a/b"), "SHARE by owner 'a/b'"},
           {make(event_name::share, version_of("x.txt", bad_owner), bad_owner), "SHARE by a 65-character owner"},
           {make(event_name::share, version_of("secret.txt", "alice222"), "carol"), "carol SHAREs alice222's version"},
           {make(event_name::delete_, version_of("secret.txt", "alice222"), "mallory"), "mallory DELETEs alice's"},
           {make(event_name::create, version_of("secret.txt", "alice222"), "alice222"),
            "a CREATE of alice222's version in bob123's journal"},
           {make(event_name::share, version_of("x.txt", "bob123"), "bob123"), "a SHARE of bob123's version to bob123"},
           {make(event_name::share, version_of("x.txt", "alice222"), ""), "a SHARE without an actor"},
           {make(event_name::gap, "bytes 0 to 100 were removed", ""), "a forged GAP"},
           {make("NO\x01TE", "x", "alice222"), "an event name with a control character"},
           {make(std::string("SHARE\0", 6), version_of("x.txt", "alice222"), "alice222"), "an event name with a NUL"},
           {make("N" + star, "x", "alice222"), "an event name with ✹"},
           {make("with space", "x", "alice222"), "an event name with a space"},
           {make("NOTE", "x", "../alice222"), "a NOTE by actor '../alice222'"},
           {make("NOTE", "x", std::string("alice\0", 6)), "a NOTE by an actor with a NUL"},
       }) {
    segment.crafted_event(e, what);
    then_valid();
  }
  segment.write();
  check_hostile(bob.events(), {&segment});
}

// ---------------------------------------------------------------------------
// The command-line tool

#ifdef STOREWATCH_TOOL

namespace {

struct tool_result {
  int status = -1;
  std::string out, err;
};

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs the storewatch tool (as cli_test does: posix_spawn, STOREWATCH_ROOT
/// set, STOREWATCH_USER unset, stdin from /dev/null), its output going to
/// files in `scratch`; waits, bounded, for it to exit.
tool_result run_tool(const fs::path& scratch, const fs::path& root, const std::vector<std::string>& args) {
  const auto out_file = scratch / "tool.out", err_file = scratch / "tool.err";
  posix_spawn_file_actions_t actions;
  REQUIRE(::posix_spawn_file_actions_init(&actions) == 0);
  REQUIRE(::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) == 0);
  REQUIRE(::posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644) == 0);
  REQUIRE(::posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644) == 0);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry = *e;
    if (!entry.starts_with("STOREWATCH_ROOT=") && !entry.starts_with("STOREWATCH_STORE=") &&
        !entry.starts_with("STOREWATCH_USER=")) {
      env.emplace_back(entry);
    }
  }
  env.push_back("STOREWATCH_ROOT=" + root.string());
  std::vector<std::string> argv{STOREWATCH_TOOL};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> env_pointers, arg_pointers;
  for (auto& e : env) env_pointers.push_back(e.data());
  env_pointers.push_back(nullptr);
  for (auto& a : argv) arg_pointers.push_back(a.data());
  arg_pointers.push_back(nullptr);
  pid_t pid = -1;
  const int spawned =
      ::posix_spawn(&pid, argv.front().c_str(), &actions, nullptr, arg_pointers.data(), env_pointers.data());
  ::posix_spawn_file_actions_destroy(&actions);
  REQUIRE(spawned == 0);
  const auto deadline = std::chrono::steady_clock::now() + 60s;  // sanitizer builds on a loaded machine
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("storewatch did not exit within 60 s");
    }
    ::poll(nullptr, 0, 2);
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_all(out_file), read_all(err_file)};
}

/// Every file under `root` with its bytes ("<dir>" for folders).
std::map<std::string, std::string> contents_of(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const auto name = entry.path().lexically_relative(root).generic_string();
    out[name] = entry.is_directory() ? "<dir>" : read_all(entry.path());
  }
  return out;
}

}  // namespace

TEST_CASE("the storewatch tool rejects crafted paths and user names in create, share, unshare, delete, ls, cat and "
          "publish with status 2 and a message naming them, and writes nothing") {
  temp_dir scratch(temp_dir::place::memory);
  const auto root = scratch.path() / "store";
  const auto input = scratch.path() / "input.txt";
  append_file(input, "crafted bytes");
  const auto ok = [&](const std::vector<std::string>& args) {
    const auto r = run_tool(scratch.path(), root, args);
    INFO("storewatch " << args.at(2) << ": status " << r.status << ", stderr " << r.err);
    REQUIRE(r.status == 0);
    return r.out;
  };
  REQUIRE(run_tool(scratch.path(), root, {"init"}).status == 0);
  // alice222 has a version shared with bob123: both are known, and a
  // command that got through would find something to act on.
  const auto version = ok({"--user", "alice222", "create", "docs/a.txt", input.string()});
  REQUIRE(version.find(star) != std::string::npos);
  const auto stamp = version.substr(version.rfind('_') + 1, version.size() - version.rfind('_') - 2);
  ok({"--user", "alice222", "share", "docs/", "--recursive", "--with", "bob123"});
  const auto alice_sees = ok({"--user", "alice222", "ls", "--recursive"});
  const auto bob_sees = ok({"--user", "bob123", "ls", "--recursive"});
  REQUIRE(bob_sees == version);
  const auto before = contents_of(root);

  const auto check = [&](const std::vector<std::string>& args, const std::vector<std::string>& named) {
    const auto r = run_tool(scratch.path(), root, args);
    std::string shown;
    for (const auto& a : args) shown += " " + detail::quote(a, 60);
    INFO("storewatch" << shown << "\nstatus " << r.status << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 2);  // invalid_path and invalid_user are usage errors
    CHECK(r.out.empty());
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_THAT(r.err, Catch::StartsWith("storewatch: "));
    CHECK(std::any_of(named.begin(), named.end(),
                      [&](const std::string& n) { return r.err.find(n) != std::string::npos; }));
  };

  // An argument cannot hold a NUL (argv strings end there), so a NUL cannot
  // reach the tool; every other kind can. The empty path and a trailing '/'
  // are bad paths but good prefixes.
  const std::vector<std::string> paths{"..", "../x", "a/../../x", "docs/..", "./a", "/etc/passwd", "/",
                                       "a" + star + "b", "a//b", std::string(detail::max_path_bytes + 1, 'p'),
                                       "docs/" + std::string(detail::max_component_bytes + 1, 'c'), "bad\xFF",
                                       "bad\xC3", "\xC0\xAF" "etc", "a\nb", ".storewatch-x", "", "docs/"};
  for (const auto& path : paths) {
    const auto quoted = detail::quote(path);
    check({"--user", "alice222", "create", path, input.string()}, {quoted});
    // The version's path is crafted (one with ✹ is no versioned path at all).
    const auto crafted_version = path + star + "alice222_" + stamp;
    check({"--user", "bob123", "cat", crafted_version}, {quoted, detail::quote(crafted_version)});
    if (path.empty() || path.back() == '/') continue;
    check({"--user", "alice222", "share", path, "--with", "bob123"}, {quoted});
    check({"--user", "alice222", "unshare", path, "--recursive", "--with", "bob123"}, {quoted});
    check({"--user", "alice222", "delete", path, "--recursive"}, {quoted});
    check({"--user", "bob123", "ls", path}, {quoted});
  }
  const std::vector<std::string> users{"..", "../alice222", "a/b", "/root", "bob" + star, std::string(65, 'u'),
                                       "bob 1", "bob\xFF", "r\xC3\xA9mi", "bob\\123"};
  for (const auto& user : users) {
    const auto quoted = detail::quote(user);
    check({"--user", user, "ls"}, {quoted});
    check({"--user", user, "create", "x.txt", input.string()}, {quoted});
    check({"--user", "alice222", "share", "docs/", "--recursive", "--with", "bob123," + user}, {quoted});
    check({"--user", "alice222", "publish", "NOTE", "x", "--to", "bob123," + user}, {quoted});
    const auto owned_by = "docs/a.txt" + star + user + "_" + stamp;
    check({"--user", "bob123", "cat", owned_by}, {quoted, detail::quote(owned_by)});
  }

  // Nothing was created, shared, unshared, deleted or published.
  CHECK(contents_of(root) == before);
  CHECK(ok({"--user", "alice222", "ls", "--recursive"}) == alice_sees);
  CHECK(ok({"--user", "bob123", "ls", "--recursive"}) == bob_sees);
}

#endif  // STOREWATCH_TOOL

}  // namespace access_model_test
