// The S3 journal's merge (detail/s3_merge.hpp) on its own: listing pages and
// object bodies handed in by hand or by an in-memory folder that lists like
// S3, with no io_context, no sockets and no files. What it decides: the
// requests (where a listing starts, which objects to fetch and how many at
// once), the events in delivery order, records that land late, objects
// read a few records at a time, pages split anywhere, entries listed twice,
// objects gone before their fetch, floors as GAP events, and problems.
#include <storewatch/detail/s3_merge.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace s3_merge_test {

using namespace storewatch;
namespace sd = storewatch::s3::detail;
using step_kind = sd::s3_merge_step::kind;

namespace {

constexpr std::uint64_t window_ms = 60'000;

sd::s3_merge_settings alice_settings() {
  sd::s3_merge_settings settings;
  settings.folder = sd::journal_folder("alice");
  settings.journal = "s3://bucket/" + settings.folder;
  settings.late_window = std::chrono::milliseconds{window_ms};
  return settings;
}

/// The record line of an event with id `id` (and `data`).
std::string line(const std::string& id, const std::string& data = "f.txt") {
  event e;
  e.name = "CREATE";
  e.id = id;
  e.actor = "alice";
  e.data = data;
  e.occurred_at = timestamp{std::chrono::milliseconds{1'700'000'000'000}};
  return storewatch::detail::encode_record(e);
}

/// The key of alice's record object `object` of `writer`, stamped `stamp`.
std::string key(std::uint64_t stamp, const std::string& writer, std::uint64_t object) {
  return sd::record_name("alice", stamp, writer, object);
}

std::vector<std::string> ids_of(const std::vector<event>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

/// Alice's journal folder in memory, answering steps the way S3 would: keys
/// in order, after `start_after` or the continuation token (here the last
/// key of the previous page), `page_size` per page. A key in `gone` is
/// listed but has no body any more. With the merge's settings and its
/// memory of reported keys, as a source keeps them.
struct folder {
  sd::s3_merge_settings settings = alice_settings();
  std::set<std::string> reported;
  std::map<std::string, std::string> objects;
  std::set<std::string> gone;
  std::size_t page_size = 1000;
  std::size_t lists = 0;
  std::vector<std::vector<std::string>> fetches;
  std::set<std::string> last_gone;  // what the last poll found gone, as a source keeps it

  sd::s3_listing_page list(const sd::s3_merge_step& step) {
    ++lists;
    const auto& after = step.continuation_token.empty() ? step.start_after : step.continuation_token;
    sd::s3_listing_page page;
    for (auto at = objects.upper_bound(after); at != objects.end() && at->first.starts_with(step.prefix); ++at) {
      if (page.keys.size() == page_size) {
        page.truncated = true;
        page.continuation_token = page.keys.back();
        break;
      }
      page.keys.push_back(at->first);
    }
    return page;
  }

  std::vector<std::optional<std::string>> get(const std::vector<std::string>& keys) {
    fetches.push_back(keys);
    std::vector<std::optional<std::string>> bodies;
    for (const auto& k : keys) {
      const auto found = objects.find(k);
      if (found == objects.end() || gone.contains(k)) {
        bodies.emplace_back();
      } else {
        bodies.emplace_back(found->second);
      }
    }
    return bodies;
  }

  /// One poll: drives a merge through this folder to its end.
  poll_result poll(const std::string& cursor, std::size_t max_events) {
    sd::s3_poll_hints hints;
    hints.gone = last_gone;
    sd::s3_merge merge(settings, reported, cursor, max_events, hints);
    for (std::size_t steps = 1;; ++steps) {
      REQUIRE(steps < 1000);  // a merge that asks for the same page again and again would loop here
      const auto& step = merge.next();
      if (step.what == step_kind::list) {
        merge.on_page(list(step));
      } else if (step.what == step_kind::fetch) {
        REQUIRE(!step.keys.empty());
        REQUIRE(step.keys.size() <= std::min(max_events, sd::s3_merge::fetch_batch));
        merge.on_bodies(get(step.keys));
      } else {
        last_gone = merge.gone();
        auto result = merge.finish();
        REQUIRE(result.events.size() <= max_events);
        return result;
      }
    }
  }
};

/// Everything a reader gets polling from `cursor` until a poll brings
/// nothing: the events, the problems' messages and the last cursor.
struct reading {
  std::vector<std::string> ids;
  std::vector<std::string> problems;
  std::string cursor;
  int polls = 0;
};

reading read_until_dry(folder& f, std::string cursor, std::size_t max_events) {
  f.reported.clear();  // a new reader
  reading out;
  for (;;) {
    ++out.polls;
    REQUIRE(out.polls < 200);  // a reader that makes no progress would loop here
    const auto gone_before = f.last_gone;
    auto result = f.poll(cursor, max_events);
    for (const auto& p : result.problems) out.problems.push_back(p.message);
    const auto ids = ids_of(result.events);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    cursor = result.next_cursor;
    // A poll that ended at a gone object is followed by another, as a
    // poller's next poll would.
    if (result.events.empty() && (f.last_gone.empty() || f.last_gone == gone_before)) break;
  }
  out.cursor = cursor;
  return out;
}

}  // namespace

TEST_CASE("S3 merge: a first poll lists the folder from its start, fetches the records in one step, delivers in listing order") {
  folder f;
  sd::s3_merge merge(f.settings, f.reported, "", 100);
  REQUIRE(merge.next().what == step_kind::list);
  CHECK(merge.next().prefix == "journals/alice/");
  CHECK(merge.next().start_after.empty());
  CHECK(merge.next().continuation_token.empty());

  const std::vector<std::string> keys{key(1000, "a", 1), key(1000, "b", 4), key(1001, "a", 2)};
  merge.on_page({keys, false, ""});
  REQUIRE(merge.next().what == step_kind::fetch);
  CHECK(merge.next().keys == keys);

  merge.on_bodies({line("a-1") + line("a-2"), line("b-1"), line("a-3")});
  CHECK(merge.next().what == step_kind::done);
  CHECK(merge.cursor().horizon == 1001);
  const auto result = merge.finish();
  CHECK(ids_of(result.events) == std::vector<std::string>{"a-1", "a-2", "b-1", "a-3"});
  CHECK(result.problems.empty());
  CHECK(result.next_cursor == "s1;1001;0;a=2@1001;b=4@1000");
}

TEST_CASE("S3 merge: a resuming cursor lists from its horizon less the late window and fetches only what it did not deliver") {
  folder f;
  sd::s3_merge merge(f.settings, f.reported, "s1;1000000;0;a=2@1000000", 100);
  REQUIRE(merge.next().what == step_kind::list);
  CHECK(merge.next().start_after == "journals/alice/0000000940000");

  merge.on_page({{key(990000, "a", 1), key(1000000, "a", 2), key(1000000, "a", 3)}, false, ""});
  REQUIRE(merge.next().what == step_kind::fetch);
  CHECK(merge.next().keys == std::vector<std::string>{key(1000000, "a", 3)});
  merge.on_bodies({line("a-3")});
  const auto result = merge.finish();
  CHECK(ids_of(result.events) == std::vector<std::string>{"a-3"});
  CHECK(result.next_cursor == "s1;1000000;0;a=3@1000000");

  SECTION("a horizon within the window lists from the oldest entry") {
    sd::s3_merge young(f.settings, f.reported, "s1;60000;0;a=2@60000", 100);
    REQUIRE(young.next().what == step_kind::list);
    CHECK(young.next().start_after.empty());
  }
}

TEST_CASE("S3 merge: a record landing after newer ones, within the late window, is delivered, each writer in its own order") {
  folder f;
  f.objects[key(100'000, "a", 1)] = line("a-1");
  auto first = read_until_dry(f, "", 1000);
  CHECK(first.ids == std::vector<std::string>{"a-1"});
  CHECK(first.cursor == "s1;100000;0;a=1@100000");

  // Writer b's clock is 30 s behind, writer c's 50 s: they land now, listed
  // before a's object. Writer d's is 70 s behind: older than the window,
  // listed no more.
  f.objects[key(70'000, "b", 1)] = line("b-1") + line("b-2");
  f.objects[key(50'000, "c", 7)] = line("c-1");
  f.objects[key(30'000, "d", 1)] = line("d-1");
  f.objects[key(100'001, "a", 2)] = line("a-2");
  auto second = read_until_dry(f, first.cursor, 1000);
  CHECK(second.ids == std::vector<std::string>{"c-1", "b-1", "b-2", "a-2"});
  CHECK(second.problems.empty());
  // The horizon moves only forward; each writer has its own place.
  CHECK(second.cursor == "s1;100001;0;a=2@100001;b=1@70000;c=7@50000");
  // Listed from 100000 - 60000: c, b and a's newest, not a's first again, and d never.
  CHECK(f.fetches.back() == std::vector<std::string>{key(50'000, "c", 7), key(70'000, "b", 1), key(100'001, "a", 2)});
}

TEST_CASE("S3 merge: an object is read a few records per poll, the cursor counting them, none delivered twice") {
  folder f;
  f.objects[key(5000, "w", 1)] = line("w-1") + line("w-2") + line("w-3") + line("w-4") + line("w-5");
  f.objects[key(5001, "w", 2)] = line("w-6");

  auto one = f.poll("", 2);
  CHECK(ids_of(one.events) == std::vector<std::string>{"w-1", "w-2"});
  CHECK(one.next_cursor == "s1;5000;0;w=1:2@5000");
  auto two = f.poll(one.next_cursor, 2);
  CHECK(ids_of(two.events) == std::vector<std::string>{"w-3", "w-4"});
  CHECK(two.next_cursor == "s1;5000;0;w=1:4@5000");
  // The last record fills the poll: the object is whole, the next not started.
  auto three = f.poll(two.next_cursor, 1);
  CHECK(ids_of(three.events) == std::vector<std::string>{"w-5"});
  CHECK(three.next_cursor == "s1;5000;0;w=1@5000");
  auto four = f.poll(three.next_cursor, 2);
  CHECK(ids_of(four.events) == std::vector<std::string>{"w-6"});
  CHECK(four.next_cursor == "s1;5001;0;w=2@5001");
  // Each poll fetches as many objects ahead as it wants events; the partly
  // read object again each time, the whole one never again.
  CHECK(f.fetches == std::vector<std::vector<std::string>>{{key(5000, "w", 1), key(5001, "w", 2)},
                                                           {key(5000, "w", 1), key(5001, "w", 2)},
                                                           {key(5000, "w", 1)},
                                                           {key(5001, "w", 2)}});
}

TEST_CASE("S3 merge: pages split anywhere and any poll size give the same events, problems and cursor") {
  folder f;
  f.objects[key(200'000, "a", 1)] = line("a-1") + line("a-2") + line("a-3");
  f.objects[sd::floor_name("alice", 200'001)] = "";
  f.objects[key(200'001, "b", 1)] = line("b-1") + "00000000 torn\n" + line("b-2");
  f.objects[key(200'002, "a", 2)] = line("a-4");
  f.objects[key(200'002, "b", 2)] = line("b-3") + line("b-4");
  f.objects["journals/alice/notes.txt"] = "not a record";
  f.objects[key(200'003, "a-b", 9)] = line("ab-1");
  f.objects[sd::floor_name("alice", 200'004)] = "";
  f.objects[key(200'004, "a", 3)] = line("a-5");

  // From a cursor that read before the floors, so each floor is one GAP.
  const std::string cursor = "s1;199000;0;a=0@199000";
  f.page_size = 1000;
  const auto whole = read_until_dry(f, cursor, 1000);
  REQUIRE(whole.ids.size() == 12);  // ten records and two GAPs
  CHECK(whole.ids[3].starts_with("gap-"));
  CHECK(whole.ids[10].starts_with("gap-"));
  CHECK(whole.problems.size() == 2);  // the torn line, the stray object
  CHECK(whole.cursor == "s1;200004;200004;a=3@200004;a-b=9@200003;b=2@200002");
  auto whole_problems = whole.problems;
  std::sort(whole_problems.begin(), whole_problems.end());

  for (std::size_t page_size = 1; page_size <= f.objects.size(); ++page_size) {
    for (const std::size_t max_events : {1, 2, 3, 5, 1000}) {
      INFO("pages of " << page_size << ", polls of " << max_events);
      f.page_size = page_size;
      const auto split = read_until_dry(f, cursor, max_events);
      CHECK(split.ids == whole.ids);
      // A stray key is reported with its page, a bad line when it is read:
      // the same problems, in an order that depends on the pages.
      auto problems = split.problems;
      std::sort(problems.begin(), problems.end());
      CHECK(problems == whole_problems);
      CHECK(split.cursor == whole.cursor);
    }
  }
}

TEST_CASE("S3 merge: an entry listed again on the next page, or already in the cursor, is not fetched or delivered again") {
  folder f;
  sd::s3_merge merge(f.settings, f.reported, "s1;3000;0;w=1@3000", 100);
  REQUIRE(merge.next().what == step_kind::list);
  merge.on_page({{key(3000, "w", 1), key(3000, "w", 2)}, true, "page-2"});
  REQUIRE(merge.next().what == step_kind::fetch);
  CHECK(merge.next().keys == std::vector<std::string>{key(3000, "w", 2)});
  merge.on_bodies({line("w-2")});
  // The next page starts where the last ended, as s3rver's sometimes do.
  REQUIRE(merge.next().what == step_kind::list);
  CHECK(merge.next().continuation_token == "page-2");
  CHECK(merge.next().start_after == "");
  merge.on_page({{key(3000, "w", 2), key(3001, "w", 3)}, false, ""});
  REQUIRE(merge.next().what == step_kind::fetch);
  CHECK(merge.next().keys == std::vector<std::string>{key(3001, "w", 3)});
  merge.on_bodies({line("w-3")});
  REQUIRE(merge.next().what == step_kind::done);
  const auto result = merge.finish();
  CHECK(ids_of(result.events) == std::vector<std::string>{"w-2", "w-3"});
  CHECK(result.next_cursor == "s1;3001;0;w=3@3001");
}

TEST_CASE("S3 merge: an object gone before its fetch ends the poll, is skipped if gone again, and delivered if it is listed again later") {
  folder f;
  const auto late = key(8000, "x", 1);
  f.objects[late] = line("x-1");
  f.objects[key(8000, "y", 1)] = line("y-1");
  f.gone.insert(late);  // listed, but its GET finds nothing (yet)
  auto first = read_until_dry(f, "", 1000);
  CHECK(first.ids == std::vector<std::string>{"y-1"});
  CHECK(first.problems.empty());
  CHECK(first.cursor == "s1;8000;0;y=1@8000");  // x is not in it: nothing of x was read

  f.gone.clear();
  auto second = read_until_dry(f, first.cursor, 1000);
  CHECK(second.ids == std::vector<std::string>{"x-1"});
  CHECK(second.cursor == "s1;8000;0;x=1@8000;y=1@8000");

  SECTION("a writer's later object moves its cursor past a gone one, which is not waited for") {
    folder g;
    g.objects[key(9000, "x", 1)] = line("x-1");  // a failed operation's object, taken back
    g.objects[key(9000, "x", 3)] = line("x-3");  // numbers skip: object 2 went to another user
    g.gone.insert(key(9000, "x", 1));
    auto read = read_until_dry(g, "", 1000);
    CHECK(read.ids == std::vector<std::string>{"x-3"});
    CHECK(read.cursor == "s1;9000;0;x=3@9000");
    g.gone.clear();
    CHECK(read_until_dry(g, read.cursor, 1000).ids.empty());
  }
}

TEST_CASE("S3 merge: a floor is one GAP for a resuming reader, none for a reader from the start, and the cursor keeps it") {
  folder f;
  f.objects[sd::floor_name("alice", 7000)] = "";
  f.objects[key(7000, "w", 5)] = line("w-5");

  auto resumed = f.poll("s1;6000;0;w=4@6000", 1000);
  REQUIRE(resumed.events.size() == 2);
  CHECK(resumed.events[0].name == event_name::gap);
  CHECK(resumed.events[0].data ==
        "s3://bucket/journals/alice/: records stamped before 7000 ms were removed by retention; some may not have been read");
  CHECK(resumed.events[1].id == "w-5");
  CHECK(resumed.next_cursor == "s1;7000;7000;w=5@7000");
  // The floor is listed again, but the cursor has it: no second GAP.
  CHECK(f.poll(resumed.next_cursor, 1000).events.empty());
  // The floor entry needs no fetch: only the record was fetched.
  CHECK(f.fetches == std::vector<std::vector<std::string>>{{key(7000, "w", 5)}});

  auto fresh = f.poll("", 1000);
  CHECK(ids_of(fresh.events) == std::vector<std::string>{"w-5"});
  CHECK(fresh.next_cursor == "s1;7000;7000;w=5@7000");

  auto older = f.poll("s1;6000;7500;w=4@6000", 1000);
  CHECK(ids_of(older.events) == std::vector<std::string>{"w-5"});
  CHECK(older.next_cursor == "s1;7000;7500;w=5@7000");
}

TEST_CASE("S3 merge: a malformed cursor is a problem and a GAP, and reading starts at the oldest entry") {
  folder f;
  sd::s3_merge merge(f.settings, f.reported, "s1;x", 100);
  REQUIRE(merge.next().what == step_kind::list);
  CHECK(merge.next().start_after.empty());
  // A floor is no GAP now: the reader reads from the oldest entry kept.
  merge.on_page({{sd::floor_name("alice", 50), key(60, "w", 1)}, false, ""});
  REQUIRE(merge.next().what == step_kind::fetch);
  merge.on_bodies({line("w-1")});
  const auto result = merge.finish();
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].code == errc::invalid_cursor);
  CHECK(result.problems[0].message ==
        "S3 journal s3://bucket/journals/alice/: cursor \"s1;x\" has a bad horizon or floor; reading from the oldest records kept");
  REQUIRE(result.events.size() == 2);
  CHECK(result.events[0].name == event_name::gap);
  CHECK(result.events[0].data == "cursor \"s1;x\" was not understood");
  CHECK(result.events[1].id == "w-1");
  CHECK(result.next_cursor == "s1;60;50;w=1@60");

  SECTION("when the GAP fills the poll, nothing is listed") {
    sd::s3_merge full(f.settings, f.reported, "nonsense", 1);
    CHECK(full.next().what == step_kind::done);
    const auto gap_only = full.finish();
    CHECK(gap_only.events.size() == 1);
    CHECK(gap_only.next_cursor == "s1;0;0");
  }
}

TEST_CASE("S3 merge: stray keys are reported once across polls, bad lines with their key and line, the rest delivered") {
  folder f;
  f.settings.record_check = [](const event& e) { return e.data == "refused" ? std::string("refused by the check") : std::string(); };
  const auto object = key(4000, "w", 1);
  f.objects[object] = line("w-1") + "zzzzzzzz not a record\n" + line("w-2", "refused") + line("w-3") + "trailing";
  f.objects["journals/alice/notes.txt"] = "x";
  f.objects["journals/alice/1700000000000-w-1"] = "x";  // too short an object number

  auto first = f.poll("", 1000);
  CHECK(ids_of(first.events) == std::vector<std::string>{"w-1", "w-3"});
  std::vector<std::string> messages;
  for (const auto& p : first.problems) {
    CHECK(p.code == errc::corrupt_record);
    messages.push_back(p.message);
  }
  const std::string where = "S3 journal s3://bucket/journals/alice/: object ";
  // Stray keys when their page comes, bad lines when their object is read.
  CHECK(messages == std::vector<std::string>{
                        where + "\"journals/alice/1700000000000-w-1\" is not a journal record; skipped",
                        where + "\"journals/alice/notes.txt\" is not a journal record; skipped",
                        where + "\"" + object + "\" line 2: not a record (bad checksum digits); skipped",
                        where + "\"" + object + "\" line 3: refused by the check; skipped",
                        where + "\"" + object + "\" line 5: no newline at the end; skipped",
                    });
  // From the start again, with the same memory of reported keys: the stray
  // keys are not reported twice; the object's bad lines are, as it is read again.
  auto again = f.poll("", 1000);
  CHECK(ids_of(again.events) == std::vector<std::string>{"w-1", "w-3"});
  CHECK(again.problems.size() == 3);
  CHECK(f.reported.size() == 2);

  SECTION("a key outside the folder is no journal entry either") {
    sd::s3_merge merge(f.settings, f.reported, "", 10);
    merge.on_page({{"journals/bob/" + std::string(object).substr(15)}, false, ""});
    CHECK(merge.next().what == step_kind::done);
    CHECK(merge.finish().problems.size() == 1);
  }
}

TEST_CASE("S3 merge: fetch steps ask for at most 32 objects and no more than the events still wanted") {
  folder f;
  for (std::uint64_t i = 1; i <= 40; ++i) f.objects[key(1000 + i, "w", i)] = line("w-" + std::to_string(i));

  auto all = f.poll("", 1000);
  CHECK(all.events.size() == 40);
  REQUIRE(f.fetches.size() == 2);
  CHECK(f.fetches[0].size() == 32);
  CHECK(f.fetches[1].size() == 8);
  CHECK(f.fetches[1].front() == key(1033, "w", 33));

  f.fetches.clear();
  auto five = f.poll("", 5);
  CHECK(ids_of(five.events) == std::vector<std::string>{"w-1", "w-2", "w-3", "w-4", "w-5"});
  CHECK(f.fetches == std::vector<std::vector<std::string>>{
                         {key(1001, "w", 1), key(1002, "w", 2), key(1003, "w", 3), key(1004, "w", 4), key(1005, "w", 5)}});

  SECTION("an object that yields no event makes room for another fetch") {
    f.objects[key(1002, "w", 2)] = "00000000 torn\n";
    f.fetches.clear();
    auto three = f.poll("", 3);
    CHECK(ids_of(three.events) == std::vector<std::string>{"w-1", "w-3", "w-4"});
    CHECK(f.fetches == std::vector<std::vector<std::string>>{{key(1001, "w", 1), key(1002, "w", 2), key(1003, "w", 3)},
                                                             {key(1004, "w", 4)}});
  }
  SECTION("no events wanted: no request, the cursor as it was") {
    sd::s3_merge merge(f.settings, f.reported, "s1;5;0;w=1@5", 0);
    CHECK(merge.next().what == step_kind::done);
    CHECK(merge.finish().next_cursor == "s1;5;0;w=1@5");
  }
  SECTION("a page of floors only needs no fetch") {
    sd::s3_merge merge(f.settings, f.reported, "", 10);
    merge.on_page({{sd::floor_name("alice", 1), sd::floor_name("alice", 2)}, false, ""});
    CHECK(merge.next().what == step_kind::done);
    CHECK(merge.finish().next_cursor == "s1;0;2");
  }
}

TEST_CASE("S3 merge: a writer whose last object is older than ten windows leaves the cursor, unless it was read in part") {
  folder f;
  f.objects[key(1'000'000, "new", 1)] = line("new-1");
  auto read = read_until_dry(f, "s1;900000;0;old=3@300000;mid=4@500000;half=2:1@200000", 1000);
  CHECK(read.ids == std::vector<std::string>{"new-1"});
  CHECK(read.cursor == "s1;1000000;0;half=2:1@200000;mid=4@500000;new=1@1000000");
}

namespace {

/// The key of alice's sequenced record object: writer `writer`'s number `n`
/// for her, stamped `stamp`, its object `n - 1` stamped `previous`.
std::string skey(std::uint64_t stamp, const std::string& writer, std::uint64_t n, std::uint64_t previous) {
  return sd::sequenced_record_name("alice", stamp, writer, n, previous);
}

/// The GAP events among `events`.
std::vector<std::string> gaps_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e.name == event_name::gap) out.push_back(e.data);
  }
  return out;
}

}  // namespace

TEST_CASE("S3 merge: sequenced names decode with their number and previous stamp, and sort with the others") {
  const auto name = skey(1'700'000'000'123, "host-1-aa", 2, 1'700'000'000'001);
  CHECK(name == "journals/alice/1700000000123-host-1-aa-00000000000000000002-1700000000001");
  const auto entry = sd::parse_journal_entry(std::string_view(name).substr(sd::journal_folder("alice").size()));
  REQUIRE(entry);
  CHECK(entry->what == sd::journal_entry::kind::record);
  CHECK(entry->stamp == 1'700'000'000'123u);
  CHECK(entry->writer == "host-1-aa");
  CHECK(entry->object == 2u);
  CHECK(entry->previous == 1'700'000'000'001u);
  const auto old = sd::parse_journal_entry(std::string_view(key(5, "w", 3)).substr(sd::journal_folder("alice").size()));
  REQUIRE(old);
  CHECK_FALSE(old->previous);
  // A writer's objects of one millisecond in number order; old and new names by stamp.
  std::vector<std::string> names{skey(7, "w", 3, 7), key(6, "w", 9), skey(7, "w", 2, 5), skey(5, "w", 1, 0)};
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{skey(5, "w", 1, 0), key(6, "w", 9), skey(7, "w", 2, 5), skey(7, "w", 3, 7)});
  for (const std::string bad : {"0000000000007-w-00000000000000000002-000000000000x", "0000000000007-w-2-0000000000005",
                                "0000000000007-00000000000000000002-0000000000005"}) {
    INFO("name " << bad);
    CHECK_FALSE(sd::parse_journal_entry(bad));
  }
}

TEST_CASE("S3 merge: a writer's numbered objects read in turn bring no GAP, whatever the pages and poll sizes") {
  folder f;
  f.objects[skey(100'000, "w", 1, 0)] = line("w-1") + line("w-2");
  f.objects[skey(100'010, "v", 1, 0)] = line("v-1");
  f.objects[skey(100'020, "w", 2, 100'000)] = line("w-3");
  f.objects[skey(100'020, "w", 3, 100'020)] = line("w-4");
  for (const std::size_t page_size : {1, 2, 1000}) {
    for (const std::size_t max_events : {1, 2, 1000}) {
      f.page_size = page_size;
      const auto read = read_until_dry(f, "", max_events);
      CHECK(read.ids == std::vector<std::string>{"w-1", "w-2", "v-1", "w-3", "w-4"});
      // Resuming at every point gives the rest, and no GAP.
      const auto resumed = read_until_dry(f, "s1;100000;0;w=1:1@100000", max_events);
      CHECK(resumed.ids == std::vector<std::string>{"w-2", "v-1", "w-3", "w-4"});
    }
  }
}

TEST_CASE("S3 merge: a numbered object stamped before the late window is a GAP naming its writer and numbers, never silence") {
  folder f;
  // Writer "ahead" runs 120 s ahead: the reader's horizon goes with it.
  f.objects[skey(220'000, "ahead", 1, 0)] = line("a-1");
  f.objects[skey(100'000, "fair", 1, 0)] = line("f-1");
  auto first = read_until_dry(f, "", 1000);
  CHECK(first.ids == std::vector<std::string>{"f-1", "a-1"});
  // Fair writes twice, stamped before 220000 - 60000: not listed.
  f.objects[skey(101'000, "fair", 2, 100'000)] = line("f-2");
  f.objects[skey(102'000, "fair", 3, 101'000)] = line("f-3");
  f.objects[skey(221'000, "ahead", 2, 220'000)] = line("a-2");
  auto second = read_until_dry(f, first.cursor, 1000);
  CHECK(second.ids == std::vector<std::string>{"a-2"});
  // Fair's next object lands in the window: its number shows 2 and 3 missing.
  f.objects[skey(170'000, "fair", 4, 102'000)] = line("f-4");
  auto third = f.poll(second.cursor, 1000);
  REQUIRE(third.events.size() == 2);
  CHECK(third.events[1].id == "f-4");
  CHECK(gaps_of(third.events) ==
        std::vector<std::string>{"s3://bucket/journals/alice/: writer fair's objects 2 to 3, stamped 100000 to 102000 ms, "
                                 "were not read: stamped before the late window (60000 ms behind the newest record read) "
                                 "when listed, as when writers' clocks disagree by more than that"});
  // Once: the cursor has fair's object 4 now.
  CHECK(f.poll(third.next_cursor, 1000).events.empty());

  SECTION("a writer the cursor does not know, whose previous object is recent, is a GAP too") {
    f.objects[skey(171'000, "other", 3, 150'000)] = line("o-3");
    const auto got = f.poll(third.next_cursor, 1000);
    CHECK(ids_of(got.events).back() == "o-3");
    const auto gaps = gaps_of(got.events);
    REQUIRE(gaps.size() == 1);
    CHECK_THAT(gaps[0], Catch::Contains("writer other's objects 1 to 2, the last stamped 150000 ms, were not read"));
  }
  SECTION("but not when its previous object is older than the cursor remembers writers, or is its first") {
    f.objects[skey(171'000, "other", 3, 221'000 - 10 * window_ms - 1)] = line("o-3");
    f.objects[skey(171'000, "first", 1, 0)] = line("x-1");
    const auto got = f.poll(third.next_cursor, 1000);
    CHECK(ids_of(got.events) == std::vector<std::string>{"x-1", "o-3"});
  }
  SECTION("nor when the missing objects are older than a retention floor, which has its own GAP") {
    f.objects[sd::floor_name("alice", 161'000)] = "";  // in the window: listed
    const auto got = f.poll(second.cursor, 1000);
    const auto gaps = gaps_of(got.events);
    REQUIRE(gaps.size() == 1);
    CHECK_THAT(gaps[0], Catch::Contains("removed by retention"));
    CHECK(got.events.back().id == "f-4");
  }
  SECTION("a reader from the start lists everything: no GAP") {
    const auto all = read_until_dry(f, "", 1000);
    CHECK(all.ids == std::vector<std::string>{"f-1", "f-2", "f-3", "f-4", "a-1", "a-2"});
  }
}

TEST_CASE("S3 merge: with tail_first, an idle poll is one LIST however many objects the late window holds") {
  folder f;
  for (std::uint64_t i = 1; i <= 2500; ++i) f.objects[skey(100'000 + i, "w", i, i == 1 ? 0 : 100'000 + i - 1)] = line("w");
  auto read = read_until_dry(f, "", 100'000);
  REQUIRE(read.ids.size() == 2500);
  sd::s3_listing_plan plan;
  std::string cursor = read.cursor;
  // Polls as a source makes them: the plan says when only the tail is listed.
  const auto poll = [&] {
    const auto lists = f.lists;
    sd::s3_merge merge(f.settings, f.reported, cursor, 1000, {plan.tail_first()});
    for (;;) {
      const auto& step = merge.next();
      if (step.what == step_kind::list) {
        merge.on_page(f.list(step));
      } else if (step.what == step_kind::fetch) {
        merge.on_bodies(f.get(step.keys));
      } else {
        break;
      }
    }
    plan.after(merge);
    auto result = merge.finish();
    cursor = result.next_cursor;
    return std::pair{f.lists - lists, ids_of(result.events)};
  };
  // The first poll lists the window: three pages.
  CHECK(poll() == std::pair{std::size_t{3}, std::vector<std::string>{}});
  CHECK(plan.window_pages == 3);
  for (unsigned i = 1; i < sd::s3_listing_plan::rescan_every; ++i) {
    INFO("idle poll " << i);
    CHECK(poll() == std::pair{std::size_t{1}, std::vector<std::string>{}});
  }
  // A record landing late while idle: read when the window is listed again.
  f.objects[skey(100'500, "late", 1, 0)] = line("late-1");
  CHECK(poll() == std::pair{std::size_t{3}, std::vector<std::string>{"late-1"}});
  CHECK(poll() == std::pair{std::size_t{1}, std::vector<std::string>{}});
  // A new record: the tail finds it, then the window is listed, so a record
  // that landed late meanwhile is read before the horizon moves past it.
  f.objects[skey(100'600, "late", 2, 100'500)] = line("late-2");
  f.objects[skey(103'000, "w", 2501, 102'500)] = line("new");
  CHECK(poll() == std::pair{std::size_t{4}, std::vector<std::string>{"late-2", "new"}});
  CHECK(poll() == std::pair{std::size_t{1}, std::vector<std::string>{}});

  SECTION("a burst of one millisecond: the tail starts at the cursor's first object of that millisecond") {
    folder g;
    for (std::uint64_t i = 1; i <= 1500; ++i) {
      g.objects[skey(200'000, i <= 700 ? "a" : "b", i <= 700 ? i : i - 700, 200'000)] = line("x");
    }
    const auto all = read_until_dry(g, "", 100'000);
    REQUIRE(all.ids.size() == 1500);
    sd::s3_poll_hints tail;
    tail.tail_first = true;
    sd::s3_merge merge(g.settings, g.reported, all.cursor, 1000, tail);
    CHECK(merge.next().start_after == "journals/alice/0000000200000-a-00000000000000000699");
    merge.on_page(g.list(merge.next()));
    CHECK(merge.next().what == step_kind::done);
    CHECK(merge.window_pages() == 0);
  }
  SECTION("a window of one page is listed every poll: one LIST as well") {
    folder g;
    g.objects[skey(100'000, "w", 1, 0)] = line("w-1");
    sd::s3_listing_plan small;
    const auto first = read_until_dry(g, "", 1000);
    sd::s3_merge merge(g.settings, g.reported, first.cursor, 1000, {small.tail_first()});
    CHECK(merge.next().start_after == "journals/alice/0000000040000");
  }
}

TEST_CASE("S3 merge: the cursor after a listing counts its floors as seen only when asked") {
  const std::vector<std::string> names{"0000000001000-w-00000000000000000002-0000000000500", "0000000002000!floor",
                                       "stray"};
  CHECK(sd::cursor_after(names, false).encode() == "s1;1000;0;w=2@1000");
  CHECK(sd::cursor_after(names, true).encode() == "s1;1000;2000;w=2@1000");
}

TEST_CASE("S3 merge: a horizon ahead of the server's clock lists from the server's clock, the tail too") {
  folder f;
  sd::s3_poll_hints hints;
  hints.server_now = 100'000;
  sd::s3_merge behind(f.settings, f.reported, "s1;220000;0;w=1@220000", 100, hints);
  CHECK(behind.next().start_after == "journals/alice/0000000040000");
  hints.tail_first = true;
  sd::s3_merge tail(f.settings, f.reported, "s1;220000;0;w=1@220000", 100, hints);
  CHECK(tail.next().start_after == "journals/alice/0000000100000");
  // A horizon behind the server's clock lists from the horizon, as without it.
  hints = {};
  hints.server_now = 500'000;
  sd::s3_merge usual(f.settings, f.reported, "s1;220000;0;w=1@220000", 100, hints);
  CHECK(usual.next().start_after == "journals/alice/0000000160000");
}

}  // namespace s3_merge_test
