// The store suite: the semantics table (who receives what), selection
// rules, reading and listing, validation, two writers for one user, and the
// journal as a listener's source — one suite for every kind of store. It is
// compiled once per kind (tests/CMakeLists.txt, tests/s3/CMakeLists.txt):
// STOREWATCH_TEST_STORE_KIND names the kind (common/store_kinds.hpp).
#include "common/fixture.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"
#include "support/text.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace store_suite_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

#ifndef STOREWATCH_TEST_STORE_KIND
#error "define STOREWATCH_TEST_STORE_KIND (local_kind, s3_kind)"
#endif
using kind_type = STOREWATCH_TEST_STORE_KIND;

namespace {

/// Checks the fields every store event has: actor, a non-empty id not seen
/// before (`ids` collects them), and occurred_at within [from, to].
void check_fields(const event& e, const std::string& actor, timestamp from, timestamp to,
                  std::set<std::string>& ids) {
  INFO(e.name << " " << e.data);
  CHECK(e.actor == actor);
  CHECK_FALSE(e.id.empty());
  CHECK(ids.insert(e.id).second);
  CHECK(e.occurred_at >= from);
  CHECK(e.occurred_at <= to);
}

std::string repeat(char c, std::size_t n) { return std::string(n, c); }

}  // namespace

TEST_CASE("the semantics table: CREATE, SHARE, UNSHARE, DELETE and published events reach exactly the entitled users") {
  kind_type kind;
  auto alice = kind.open("alice222");
  auto bob = kind.open("bob123");
  auto carol = kind.open("carol");
  auto dave = kind.open("dave");  // nothing is ever shared with dave
  auto alice_journal = kind.journal(alice);
  auto bob_journal = kind.journal(bob);
  auto carol_journal = kind.journal(carol);
  auto dave_journal = kind.journal(dave);
  std::set<std::string> ids;

  // create_file: a new version path✹owner_ms, CREATE to the owner only.
  auto before = now_ms();
  const auto a = alice.create_file("SharedEvents/a.txt", "alpha");
  auto after = now_ms();
  CHECK(a.path == "SharedEvents/a.txt");
  CHECK(a.user == "alice222");
  CHECK(a.created_at() >= before);
  CHECK(a.created_at() <= after);
  CHECK(a.to_string() == "SharedEvents/a.txt" + star + "alice222_" + std::to_string(a.timestamp_ms));
  {
    const auto got = alice_journal.take();
    REQUIRE(got.size() == 1);
    CHECK(got[0].name == "CREATE");
    CHECK(got[0].data == text(a));
    CHECK(got[0].path() == a);
    check_fields(got[0], "alice222", before, after, ids);
    CHECK(bob_journal.take().empty());
    CHECK(carol_journal.take().empty());
  }

  // Two creates of one path in a tight loop never share a version name.
  before = now_ms();
  std::vector<versioned_path> loop;
  for (int i = 0; i < 50; ++i) loop.push_back(alice.create_file("loop/same.txt", std::to_string(i)));
  after = now_ms();
  {
    const auto names = texts_of(loop);
    CHECK(std::set<std::string>(names.begin(), names.end()).size() == 50);
    for (std::size_t i = 0; i < loop.size(); ++i) {
      INFO("version " << i);
      CHECK(loop[i].path == "loop/same.txt");
      CHECK(loop[i].user == "alice222");
      CHECK(loop[i].created_at() >= before);
      // A version made in a taken millisecond is stamped later, at most one
      // millisecond per earlier version.
      CHECK(loop[i].created_at() <= after + std::chrono::milliseconds(50));
      CHECK(alice.read_file(loop[i]) == std::to_string(i));
    }
    const auto got = alice_journal.take();
    CHECK(names_of(got) == std::vector<std::string>(50, "CREATE"));
    CHECK(data_of(got) == names);
    for (const auto& e : got) check_fields(e, "alice222", before, after, ids);
    CHECK(bob_journal.take().empty());
  }

  const auto b = alice.create_file("SharedEvents/b.txt", "beta");
  const auto other = alice.create_file("Other/c.txt", "gamma");
  CHECK(alice_journal.take().size() == 2);

  // share_files: SHARE to each named user per selected version; not to the owner, not to others.
  before = now_ms();
  const auto shared = alice.share_files(chosen("SharedEvents/", true), {"bob123", "carol"}, true);
  after = now_ms();
  CHECK(texts_of(shared) == std::vector<std::string>{text(a), text(b)});
  for (auto* journal : {&bob_journal, &carol_journal}) {
    const auto got = journal->take();
    CHECK(names_of(got) == std::vector<std::string>{"SHARE", "SHARE"});
    CHECK(sorted(data_of(got)) == sorted({text(a), text(b)}));
    for (const auto& e : got) check_fields(e, "alice222", before, after, ids);
  }
  CHECK(alice_journal.take().empty());
  CHECK(dave_journal.take().empty());

  // unshare_files: UNSHARE only to named users that had the version.
  before = now_ms();
  const auto unshared = alice.share_files(chosen("SharedEvents/a.txt", false), {"carol", "dave"}, false);
  after = now_ms();
  CHECK(texts_of(unshared) == std::vector<std::string>{text(a)});
  {
    const auto got = carol_journal.take();
    REQUIRE(got.size() == 1);
    CHECK(got[0].name == "UNSHARE");
    CHECK(got[0].data == text(a));
    check_fields(got[0], "alice222", before, after, ids);
  }
  CHECK(dave_journal.take().empty());
  CHECK(bob_journal.take().empty());
  CHECK(alice_journal.take().empty());

  // delete_files: DELETE to the owner and to every user the version is
  // still shared with (carol was unshared from a, so she gets b only).
  before = now_ms();
  const auto deleted = alice.delete_files(chosen("SharedEvents", true));
  after = now_ms();
  CHECK(texts_of(deleted) == std::vector<std::string>{text(a), text(b)});
  {
    const auto to_alice = alice_journal.take();
    CHECK(names_of(to_alice) == std::vector<std::string>{"DELETE", "DELETE"});
    CHECK(sorted(data_of(to_alice)) == sorted({text(a), text(b)}));
    for (const auto& e : to_alice) check_fields(e, "alice222", before, after, ids);
    const auto to_bob = bob_journal.take();
    CHECK(names_of(to_bob) == std::vector<std::string>{"DELETE", "DELETE"});
    CHECK(sorted(data_of(to_bob)) == sorted({text(a), text(b)}));
    for (const auto& e : to_bob) check_fields(e, "alice222", before, after, ids);
    const auto to_carol = carol_journal.take();
    REQUIRE(to_carol.size() == 1);
    CHECK(to_carol[0].name == "DELETE");
    CHECK(to_carol[0].data == text(b));
    check_fields(to_carol[0], "alice222", before, after, ids);
    CHECK(dave_journal.take().empty());
  }
  // The version never selected is untouched.
  CHECK(alice.read_file(other) == "gamma");

  // publish_event: that event to exactly the named users, actor = publisher.
  std::string payload = "line 1\nline 2 \"quoted\" \\ ";
  payload += star;
  payload += std::string(1, '\0');
  payload += " end";
  before = now_ms();
  const auto published = alice.publish_event("build.done", payload, {"bob123", "dave"});
  after = now_ms();
  REQUIRE(published.size() == 2);
  {
    const auto to_bob = bob_journal.take();
    REQUIRE(to_bob.size() == 1);
    CHECK(to_bob[0].name == "build.done");
    CHECK(to_bob[0].data == payload);
    CHECK(to_bob[0].id == published[0]);
    check_fields(to_bob[0], "alice222", before, after, ids);
    const auto to_dave = dave_journal.take();
    REQUIRE(to_dave.size() == 1);
    CHECK(to_dave[0].name == "build.done");
    CHECK(to_dave[0].data == payload);
    CHECK(to_dave[0].id == published[1]);
    check_fields(to_dave[0], "alice222", before, after, ids);
    CHECK(alice_journal.take().empty());
    CHECK(carol_journal.take().empty());
  }
  // Bob publishing: actor is bob.
  const auto from_bob = bob.publish_event("ping", "{}", {"alice222"});
  {
    const auto got = alice_journal.take();
    REQUIRE(got.size() == 1);
    CHECK(got[0].actor == "bob123");
    CHECK(got[0].id == from_bob.at(0));
  }

  // Naming yourself in a share does nothing for yourself.
  const auto mine = alice.create_file("self.txt", "s");
  CHECK(alice_journal.take().size() == 1);
  CHECK(texts_of(alice.share_files(chosen("self.txt", false), {"alice222"}, true)) == std::vector<std::string>{text(mine)});
  CHECK(alice_journal.take().empty());
}

TEST_CASE("selection: recursive and non-recursive prefixes, inclusive time bounds, open bounds") {
  kind_type kind;
  auto alice = kind.open("alice222");
  auto bob = kind.open("bob123");

  std::map<std::string, versioned_path> v;
  for (const char* path : {"top.txt", "Shared/a.txt", "Shared/b.txt", "Shared/sub/c.txt", "Shared/sub/deep/d.txt",
                           "SharedEvents/x.txt", "Sharedness.txt", "docs/report.txt", "docs/report.txt.bak"}) {
    v[path] = alice.create_file(path, path);
  }
  // Bob's own files are never part of alice's selections.
  bob.create_file("Shared/bob.txt", "b");

  const auto selected = [&](const selection& which) { return sorted(texts_of(alice.share_files(which, {"bob123"}, true))); };
  const auto expect = [&](std::initializer_list<const char*> paths) {
    std::vector<std::string> out;
    for (const char* p : paths) out.push_back(text(v.at(p)));
    return sorted(out);
  };

  SECTION("recursive: every path starting with the prefix, as a string") {
    CHECK(selected(chosen("Shared", true)) == expect({"Shared/a.txt", "Shared/b.txt", "Shared/sub/c.txt",
                                                      "Shared/sub/deep/d.txt", "SharedEvents/x.txt",
                                                      "Sharedness.txt"}));
    CHECK(selected(chosen("Shared/", true)) ==
          expect({"Shared/a.txt", "Shared/b.txt", "Shared/sub/c.txt", "Shared/sub/deep/d.txt"}));
    CHECK(selected(chosen("Shared/sub", true)) == expect({"Shared/sub/c.txt", "Shared/sub/deep/d.txt"}));
    CHECK(selected(chosen("docs/report.txt", true)) == expect({"docs/report.txt", "docs/report.txt.bak"}));
    CHECK(selected(chosen("", true)).size() == v.size());
    CHECK(selected(chosen("nothing", true)).empty());
  }
  SECTION("non-recursive: the named file only, or a folder's direct children") {
    CHECK(selected(chosen("docs/report.txt", false)) == expect({"docs/report.txt"}));
    CHECK(selected(chosen("Shared", false)) == expect({"Shared/a.txt", "Shared/b.txt"}));
    CHECK(selected(chosen("Shared/", false)) == expect({"Shared/a.txt", "Shared/b.txt"}));
    CHECK(selected(chosen("Shared/sub", false)) == expect({"Shared/sub/c.txt"}));
    CHECK(selected(chosen("Shared/sub/", false)) == expect({"Shared/sub/c.txt"}));
    CHECK(selected(chosen("", false)) == expect({"top.txt", "Sharedness.txt"}));
    CHECK(selected(chosen("Shar", false)).empty());
    CHECK(selected(chosen("Shared/a", false)).empty());
  }
  SECTION("the selection that delete_files uses is the same") {
    const auto deleted = sorted(texts_of(alice.delete_files(chosen("Shared", false))));
    CHECK(deleted == expect({"Shared/a.txt", "Shared/b.txt"}));
    CHECK(sorted(texts_of(alice.list_files("Shared/", true))) ==
          expect({"Shared/sub/c.txt", "Shared/sub/deep/d.txt"}));
  }
  SECTION("since and until are inclusive bounds on the creation time; either may be open") {
    std::vector<versioned_path> t;
    for (int i = 0; i < 3; ++i) {
      t.push_back(alice.create_file("timed/x.txt", std::to_string(i)));
      std::this_thread::sleep_for(3ms);
    }
    REQUIRE(t[0].timestamp_ms < t[1].timestamp_ms);
    REQUIRE(t[1].timestamp_ms < t[2].timestamp_ms);
    const auto t0 = t[0].created_at(), t1 = t[1].created_at(), t2 = t[2].created_at();
    const auto ms = std::chrono::milliseconds(1);
    const auto texts = [&](std::initializer_list<int> which) {
      std::vector<std::string> out;
      for (int i : which) out.push_back(text(t[static_cast<std::size_t>(i)]));
      return sorted(out);
    };
    CHECK(selected(chosen("timed/", true, t1, t1)) == texts({1}));
    CHECK(selected(chosen("timed/x.txt", false, t0, t0)) == texts({0}));
    CHECK(selected(chosen("timed/", true, t2, t2)) == texts({2}));
    CHECK(selected(chosen("timed/", true, t1, std::nullopt)) == texts({1, 2}));
    CHECK(selected(chosen("timed/", true, std::nullopt, t1)) == texts({0, 1}));
    CHECK(selected(chosen("timed/", true, t0, t2)) == texts({0, 1, 2}));
    CHECK(selected(chosen("timed/", true, t0 + ms, t2 - ms)) == texts({1}));
    CHECK(selected(chosen("timed/", true)) == texts({0, 1, 2}));
    CHECK(selected(chosen("timed/", true, t2 + ms, std::nullopt)).empty());
    CHECK(selected(chosen("timed/", true, std::nullopt, t0 - ms)).empty());
    CHECK(selected(chosen("timed/", true, t2, t0)).empty());
    // A time bound and the prefix both apply.
    CHECK(selected(chosen("", true, t1, t1)) == texts({1}));
  }
}

TEST_CASE("read_file and list_files: own and shared versions only, not-shared and missing look the same") {
  kind_type kind;
  auto alice = kind.open("alice222");
  auto bob = kind.open("bob123");
  auto carol = kind.open("carol");

  const auto denied = [](auto& store, const versioned_path& v) {
    const auto f = failure_of([&] { store.read_file(v); });
    INFO(store.user() << " reading " << v.to_string() << ": " << f.what);
    return f.code == errc::permission_denied;
  };

  const auto v = alice.create_file("docs/a.txt", "contents of a");
  CHECK(alice.read_file(v) == "contents of a");
  CHECK(denied(bob, v));
  CHECK(denied(carol, v));

  alice.share_files(chosen("docs/a.txt", false), {"bob123"}, true);
  CHECK(bob.read_file(v) == "contents of a");
  CHECK(denied(carol, v));

  alice.share_files(chosen("docs/a.txt", false), {"bob123"}, false);
  CHECK(denied(bob, v));
  CHECK(alice.read_file(v) == "contents of a");

  alice.share_files(chosen("docs/", false), {"bob123"}, true);
  CHECK(bob.read_file(v) == "contents of a");
  alice.delete_files(chosen("docs/a.txt", false));
  CHECK(denied(bob, v));
  CHECK(denied(alice, v));

  SECTION("not shared and does not exist: the same code and the same message") {
    const auto w = alice.create_file("docs/w.txt", "w");
    versioned_path missing = w;
    missing.timestamp_ms += 123456;
    versioned_path nobody{"docs/w.txt", "nobody", w.timestamp_ms};
    const auto not_shared = failure_of([&] { carol.read_file(w); });
    const auto not_there = failure_of([&] { carol.read_file(missing); });
    const auto no_owner = failure_of([&] { carol.read_file(nobody); });
    const auto own_missing = failure_of([&] { alice.read_file(missing); });
    CHECK(not_shared.code == errc::permission_denied);
    CHECK(not_there.code == errc::permission_denied);
    CHECK(no_owner.code == errc::permission_denied);
    CHECK(own_missing.code == errc::permission_denied);
    // With the version's own text taken out, the messages are identical.
    const auto shape = [](std::string what, const versioned_path& of) {
      const auto quoted = detail::quote(of.to_string());
      const auto at = what.find(quoted);
      if (at != std::string::npos) what.replace(at, quoted.size(), "<version>");
      return what;
    };
    CHECK_THAT(not_shared.what, Catch::Contains(detail::quote(w.to_string())));
    CHECK(shape(not_shared.what, w) == shape(not_there.what, missing));
    CHECK(shape(not_shared.what, w) == shape(no_owner.what, nobody));
  }

  SECTION("list_files: own and shared versions under a prefix, recursive or not") {
    const auto a1 = alice.create_file("docs/one.txt", "1");
    const auto a2 = alice.create_file("docs/sub/two.txt", "2");
    const auto a3 = alice.create_file("docs/three.txt", "3");
    const auto a4 = alice.create_file("top.txt", "4");
    const auto b1 = bob.create_file("docs/bob.txt", "b");
    const auto c1 = carol.create_file("docs/carol.txt", "c");
    alice.share_files(chosen("docs/one.txt", false), {"bob123"}, true);
    alice.share_files(chosen("docs/sub/", true), {"bob123"}, true);
    carol.share_files(chosen("docs/carol.txt", false), {"bob123"}, true);
    carol.share_files(chosen("docs/carol.txt", false), {"bob123"}, false);

    CHECK(sorted(texts_of(bob.list_files("docs", false))) == sorted({text(a1), text(b1)}));
    CHECK(sorted(texts_of(bob.list_files("docs/", false))) == sorted({text(a1), text(b1)}));
    CHECK(sorted(texts_of(bob.list_files("docs", true))) == sorted({text(a1), text(a2), text(b1)}));
    CHECK(sorted(texts_of(bob.list_files("", true))) == sorted({text(a1), text(a2), text(b1)}));
    CHECK(sorted(texts_of(bob.list_files("docs/sub", false))) == sorted({text(a2)}));
    CHECK(bob.list_files("top", true).empty());
    CHECK(sorted(texts_of(alice.list_files("", true))) == sorted({text(a1), text(a2), text(a3), text(a4)}));
    CHECK(sorted(texts_of(alice.list_files("", false))) == sorted({text(a4)}));
    CHECK(sorted(texts_of(carol.list_files("docs", true))) == sorted({text(c1)}));
    // Every listed version can be read.
    for (const auto& listed : bob.list_files("", true)) CHECK_NOTHROW(bob.read_file(listed));
  }
}

TEST_CASE("validation: bad paths, user names, event names and data are rejected and nothing is written") {
  kind_type kind;
  auto alice = kind.open("alice222");
  auto bob = kind.open("bob123");
  // Something to share, so that a share that got through would write.
  const auto existing = alice.create_file("docs/a.txt", "a");
  const auto before = kind.snapshot();
  const auto unchanged = [&] { return kind.snapshot() == before; };

  SECTION("paths") {
    struct bad_path {
      std::string path;
      std::string quoted;  // how what() shows it
    };
    const std::vector<bad_path> cases{
        {"../x", "\"../x\""},
        {"a/../b", "\"a/../b\""},
        {"..", "\"..\""},
        {"/etc/passwd", "\"/etc/passwd\""},
        {std::string("a\0b", 3), "\"a\\x00b\""},
        {"a" + star + "b", "\"a" + star + "b\""},
        {"", "\"\""},
        {"a//b", "\"a//b\""},
        {"a/b/", "\"a/b/\""},
        {"bad\xFFname", "\"bad\\xffname\""},
        {"bad\xC3", "\"bad\\xc3\""},
        {".storewatch-x", "\".storewatch-x\""},
        {"docs/.storewatch-tmp/x", "\"docs/.storewatch-tmp/x\""},
        {"./a", "\"./a\""},
        {"a\nb", "\"a\\x0ab\""},
    };
    for (const auto& [path, quoted] : cases) {
      INFO("path " << quoted);
      const auto f = failure_of([&] { alice.create_file(path, "x"); });
      CHECK(f.code == errc::invalid_path);
      CHECK_THAT(f.what, Catch::Contains(quoted));
      CHECK(unchanged());
    }
    // As prefixes: empty and a trailing '/' are fine; the others are not.
    for (const auto& [path, quoted] : cases) {
      if (path.empty() || path == "a/b/") continue;
      INFO("prefix " << quoted);
      CHECK(failure_of([&] { alice.share_files(chosen(path, true), {"bob123"}, true); }).code == errc::invalid_path);
      CHECK(failure_of([&] { alice.share_files(chosen(path, true), {"bob123"}, false); }).code == errc::invalid_path);
      CHECK(failure_of([&] { alice.delete_files(chosen(path, false)); }).code == errc::invalid_path);
      CHECK(failure_of([&] { alice.list_files(path, true); }).code == errc::invalid_path);
      CHECK(failure_of([&] { alice.read_file(versioned_path{path, "alice222", existing.timestamp_ms}); }).code ==
            errc::invalid_path);
      CHECK(unchanged());
    }
    CHECK_NOTHROW(alice.list_files("", true));
    CHECK_NOTHROW(alice.list_files("docs/", false));
  }

  SECTION("user names") {
    const std::vector<std::string> bad_users{"", "a/b", "..", ".", repeat('u', 65), "bob 1", "bob\xC3\xA9",
                                             std::string("bo\0b", 4)};
    for (const auto& user : bad_users) {
      INFO("user " << detail::quote(user));
      CHECK(failure_of([&] { kind.open(user); }).code == errc::invalid_user);
      // The good name first: nothing reaches bob either.
      CHECK(failure_of([&] { alice.share_files(chosen("docs/", true), {"bob123", user}, true); }).code ==
            errc::invalid_user);
      CHECK(failure_of([&] { alice.share_files(chosen("docs/", true), {"bob123", user}, false); }).code ==
            errc::invalid_user);
      CHECK(failure_of([&] { alice.publish_event("note", "x", {"bob123", user}); }).code == errc::invalid_user);
      CHECK(unchanged());
    }
    const auto f = failure_of([&] { auto store = kind.open("bob 1"); });
    CHECK_THAT(f.what, Catch::Contains("\"bob 1\""));
    // The limits themselves are fine.
    CHECK_NOTHROW(kind.open(repeat('u', 64)));
    CHECK_NOTHROW(kind.open("A-z_0.9"));
  }

  SECTION("event names and data") {
    for (const auto& name : std::vector<std::string>{"", "with space", repeat('n', 129), "\xC3\xA9v\xC3\xA9nement",
                                                     "tab\there", std::string("nul\0", 4), "del\x7F"}) {
      INFO("name " << detail::quote(name));
      const auto f = failure_of([&] { alice.publish_event(name, "x", {"bob123"}); });
      CHECK(f.code == errc::invalid_event_name);
      CHECK(unchanged());
    }
    for (const auto& data : std::vector<std::string>{repeat('d', 64 * 1024 + 1), "bad\xFF", "\xED\xA0\x80"}) {
      INFO("data of " << data.size() << " bytes");
      CHECK(failure_of([&] { alice.publish_event("note", data, {"bob123"}); }).code == errc::invalid_event);
      CHECK(unchanged());
    }
    // The limits themselves are fine, and arrive intact.
    auto bob_journal = kind.journal(bob);
    const auto big = repeat('d', 64 * 1024);
    const auto long_name = repeat('n', 128);
    alice.publish_event(long_name, big, {"bob123"});
    const auto got = bob_journal.take();
    REQUIRE(got.size() == 1);
    CHECK(got[0].name == long_name);
    CHECK(got[0].data == big);
  }
}

TEST_CASE("publish_event rejects the names the store uses for its own events") {
  // event.hpp: "Applications may publish events under any other name." A
  // published "SHARE" or "DELETE" would reach bob's handlers as if a file
  // had been shared with or deleted from him.
  kind_type kind;
  auto alice = kind.open("alice222");
  auto bob = kind.open("bob123");
  const auto forged = "secret.txt" + star + "carol_1761135341619";
  for (const auto name : {event_name::create, event_name::share, event_name::unshare, event_name::delete_,
                          event_name::gap}) {
    INFO("name " << name);
    CHECK(failure_of([&] { alice.publish_event(std::string(name), forged, {"bob123"}); }).code ==
          errc::invalid_event_name);
  }
  CHECK(kind.journal(bob).take().empty());
}

TEST_CASE("two store objects for one user: all CREATE events, unique ids, each writer's order kept") {
  kind_type kind;
  auto first = kind.open("alice222");
  auto second = kind.open("alice222");
  std::vector<versioned_path> by_first, by_second;
  for (int i = 0; i < 100; ++i) {
    by_first.push_back(first.create_file("same.txt", "first"));
    by_second.push_back(second.create_file("same.txt", "second"));
    if (i % 10 == 0) by_first.push_back(first.create_file("other.txt", "first"));
  }
  auto all_names = texts_of(by_first);
  for (const auto& s : texts_of(by_second)) all_names.push_back(s);
  CHECK(std::set<std::string>(all_names.begin(), all_names.end()).size() == all_names.size());

  const auto events = kind.journal(first).take();
  CHECK(events.size() == all_names.size());
  CHECK(names_of(events) == std::vector<std::string>(all_names.size(), "CREATE"));
  CHECK(sorted(data_of(events)) == sorted(all_names));
  std::set<std::string> ids;
  for (const auto& e : events) ids.insert(e.id);
  CHECK(ids.size() == events.size());
  CHECK(ids.count("") == 0);
  // Per-writer order: each writer's events, in journal order, are its creates in order.
  const auto subsequence = [&](const std::vector<versioned_path>& mine) {
    std::set<std::string> names;
    for (const auto& v : mine) names.insert(text(v));
    std::vector<std::string> out;
    for (const auto& e : events) {
      if (names.count(e.data) > 0) out.push_back(e.data);
    }
    return out;
  };
  CHECK(subsequence(by_first) == texts_of(by_first));
  CHECK(subsequence(by_second) == texts_of(by_second));
  // Both stores see every version.
  CHECK(first.list_files("", true).size() == all_names.size());
  CHECK(second.read_file(by_first.front()) == "first");
  CHECK(first.read_file(by_second.back()) == "second");
}

TEST_CASE("events() with an event_listener: bob receives alice's SHARE then DELETE, nothing for unshared files") {
  kind_type kind;
  auto alice = kind.open("alice222");
  auto bob = kind.open("bob123");
  auto source = bob.get().events();
  listener_options options;
  options.poller.poll_interval = 10ms;
  std::vector<std::string> errors;
  options.on_error = [&](std::error_code, std::string_view message) { errors.emplace_back(message); };
  event_listener listener(kind.io.get_executor(), source, options);
  std::vector<event> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e); });
  listener.start();
  REQUIRE(run_until(kind.io, [&] { return listener.stats().polls >= 1; }));  // it has polled the empty journal

  const auto secret = alice.create_file("SharedEvents/secret.txt", "not for bob");
  const auto shared = alice.create_file("SharedEvents/alice_to_bob.txt", "for bob");
  alice.share_files(chosen("SharedEvents/alice_to_bob.txt", false), {"bob123"}, true);
  alice.delete_files(chosen("SharedEvents/", true));
  REQUIRE(run_until(kind.io, [&] { return got.size() >= 2; }));
  const auto polls = listener.stats().polls;
  REQUIRE(run_until(kind.io, [&] { return listener.stats().polls >= polls + 10; }));  // nothing else arrives meanwhile

  REQUIRE(got.size() == 2);
  CHECK(got[0].name == "SHARE");
  CHECK(got[0].data == text(shared));
  CHECK(got[0].actor == "alice222");
  CHECK(got[1].name == "DELETE");
  CHECK(got[1].data == text(shared));
  CHECK(got[1].actor == "alice222");
  CHECK(got[0].id != got[1].id);
  for (const auto& e : got) CHECK(e.data != text(secret));
  CHECK(errors.empty());
  listener.stop();
  run_to_idle(kind.io);
  CHECK_FALSE(listener.running());
}


TEST_CASE("create_file_from and read_file_to: a file in, the same bytes out, the version and event of create_file") {
  kind_type kind;
  temp_dir files;
  auto alice = kind.open("alice222");
  auto bob = kind.open("bob123");
  auto alice_journal = kind.journal(alice);
  std::string bytes;
  for (std::uint64_t i = 0; bytes.size() < 300 * 1024; ++i) bytes += std::to_string(i * 7919) + '\n';
  const auto write = [](const std::filesystem::path& file, const std::string& text) {
    std::ofstream(file, std::ios::binary) << text;
  };
  write(files.path() / "in.bin", bytes);

  const auto before = now_ms();
  const auto v = alice.create_file_from("docs/big.bin", files.path() / "in.bin");
  CHECK(v.path == "docs/big.bin");
  CHECK(v.user == "alice222");
  CHECK(v.created_at() >= before);
  const auto got = alice_journal.take();
  REQUIRE(got.size() == 1);
  CHECK(got[0].name == "CREATE");
  CHECK(got[0].path() == v);
  CHECK(alice.read_file(v) == bytes);

  // Into a file that exists: replaced, with nothing left beside it.
  const auto out = files.path() / "out.bin";
  write(out, "an older and longer text than nothing");
  CHECK(alice.read_file_to(v, out) == bytes.size());
  CHECK(test_support::read_text(out) == bytes);
  CHECK_FALSE(std::filesystem::exists(files.path() / "out.bin.storewatch-part"));
  // An empty version reads as an empty file.
  write(files.path() / "empty.bin", "");
  const auto empty = alice.create_file_from("docs/empty.bin", files.path() / "empty.bin");
  CHECK(alice.read_file_to(empty, out) == 0);
  CHECK(test_support::read_text(out).empty());

  SECTION("a reader without the right, or a missing version: denied, the destination as it was") {
    const auto kept = files.path() / "kept.bin";
    write(kept, "kept");
    CHECK(failure_of([&] { bob.read_file_to(v, kept); }).code == errc::permission_denied);
    versioned_path missing = v;
    missing.timestamp_ms += 12345;
    CHECK(failure_of([&] { alice.read_file_to(missing, kept); }).code == errc::permission_denied);
    CHECK(test_support::read_text(kept) == "kept");
    CHECK_FALSE(std::filesystem::exists(files.path() / "kept.bin.storewatch-part"));
  }

  SECTION("a source that does not exist: store_io_failed, nothing stored, no event") {
    const auto f = failure_of([&] { alice.create_file_from("docs/none.bin", files.path() / "missing.bin"); });
    CHECK(f.code == errc::store_io_failed);
    CHECK_THAT(f.what, Catch::Contains("missing.bin"));
    CHECK(texts_of(alice.list_files("docs", true)) == std::vector<std::string>{text(v), text(empty)});
    CHECK(alice_journal.take().size() == 1);  // the empty file's CREATE only
  }
}

}  // namespace store_suite_test
