// The S3 journal (store/s3_journal.hpp): object names and cursors on their own,
// then polls against the test server: what an idle poll costs, writers'
// clocks that disagree, an operation's records read a few at a time,
// retention with GAP, corrupt and stray objects, and a restarted reader.
#include "common/fixture.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"

#include <storewatch/store/s3_journal.hpp>
#include <storewatch/store/s3_store.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
namespace sd = storewatch::s3::detail;

namespace {

/// Sets the clock every store call reads to run `skew` off, for one scope.
class clock_off_by {
 public:
  explicit clock_off_by(std::chrono::milliseconds skew) { detail::sys::clock_skew_ms = skew.count(); }
  clock_off_by(const clock_off_by&) = delete;
  clock_off_by& operator=(const clock_off_by&) = delete;
  ~clock_off_by() { detail::sys::clock_skew_ms = 0; }
};

/// Polls `source` on `io` once.
poll_result poll_once(s3_kind& kind, s3::s3_journal_source& source, const std::string& cursor,
                      std::size_t max_events = 1000) {
  return complete<poll_result>(
      kind.io, [&](auto h) { source.async_poll(cursor, max_events, std::move(h)); },
      [&]() -> const std::string& { return source.last_error(); });
}

}  // namespace

TEST_CASE("S3 journal names: records sort by stamp, writer, object, a floor before the records of its millisecond") {
  const auto a = sd::record_name("bob", 1700000000000, "host-1-aa", 7);
  CHECK(a == "journals/bob/1700000000000-host-1-aa-00000000000000000007");
  const auto entry = sd::parse_journal_entry(std::string_view(a).substr(sd::journal_folder("bob").size()));
  REQUIRE(entry);
  CHECK(entry->what == sd::journal_entry::kind::record);
  CHECK(entry->stamp == 1700000000000);
  CHECK(entry->writer == "host-1-aa");
  CHECK(entry->object == 7);

  const auto floor = sd::floor_name("bob", 1700000000000);
  CHECK(floor == "journals/bob/1700000000000!floor");
  const auto floor_entry = sd::parse_journal_entry(std::string_view(floor).substr(sd::journal_folder("bob").size()));
  REQUIRE(floor_entry);
  CHECK(floor_entry->what == sd::journal_entry::kind::floor);
  CHECK(floor_entry->stamp == 1700000000000);

  std::vector<std::string> names{sd::record_name("bob", 1700000000001, "a", 1), floor,
                                 sd::record_name("bob", 1700000000000, "z", 3),
                                 sd::record_name("bob", 1700000000000, "a", 2), sd::record_name("bob", 999, "a", 1)};
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{sd::record_name("bob", 999, "a", 1), floor,
                                          sd::record_name("bob", 1700000000000, "a", 2),
                                          sd::record_name("bob", 1700000000000, "z", 3),
                                          sd::record_name("bob", 1700000000001, "a", 1)});

  for (const std::string bad : {"", "170000000000", "1700000000000", "1700000000000-", "1700000000000!flor", "1700000000000~floor",
                                "1700000000000-w-1", "1700000000000-w-0000000000000000000x",
                                "1700000000000-bad name-00000000000000000001",
                                "1700000000000--00000000000000000001", "x700000000000-w-00000000000000000001",
                                "1700000000000-w-000000000000000000001"}) {
    INFO("name " << bad);
    CHECK_FALSE(sd::parse_journal_entry(bad));
  }
}

TEST_CASE("S3 journal cursor: round trip, and malformed cursors rejected with a reason") {
  sd::s3_cursor cursor;
  cursor.horizon = 1700000000123;
  cursor.floor = 1690000000000;
  cursor.writers["host-1-aa"] = {5, sd::s3_cursor::position::whole, 1700000000100};
  cursor.writers["host-2-bb"] = {9, 3, 1700000000123};
  const auto text = cursor.encode();
  CHECK(text == "s1;1700000000123;1690000000000;host-1-aa=5@1700000000100;host-2-bb=9:3@1700000000123");
  std::string why;
  const auto decoded = sd::s3_cursor::decode(text, why);
  REQUIRE(decoded);
  CHECK(decoded->encode() == text);
  CHECK(decoded->resuming());
  const auto empty = sd::s3_cursor::decode("", why);
  REQUIRE(empty);
  CHECK_FALSE(empty->resuming());

  for (const std::string bad : {"x", "j1;abc;w=1", "s1", "s1;", "s1;1", "s1;1;x", "s1;1;2;w", "s1;1;2;w=1",
                                "s1;1;2;w=@5", "s1;1;2;w=1@", "s1;1;2;w=1:@5", "s1;1;2;w=1:x@5",
                                "s1;1;2;bad name=1@5", "s1;1;2;w=1@5;w=2@6", "s1;1;2;w=1@5;",
                                "s1;1;2;w=1:18446744073709551615@5", "s1;99999999999999999999999;2"}) {
    INFO("cursor " << bad);
    why.clear();
    CHECK_FALSE(sd::s3_cursor::decode(bad, why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("S3 journal keys through the public helpers: a record's stamp, and the cursor after a listing") {
  const auto prefix = s3::journal_prefix("bob");
  CHECK(prefix == sd::journal_folder("bob"));
  const auto relative = [&](const std::string& key) { return key.substr(prefix.size()); };
  CHECK(s3::journal_record_stamp(relative(sd::record_name("bob", 1700000000123, "w1", 4))) == 1700000000123u);
  CHECK_FALSE(s3::journal_record_stamp(relative(sd::floor_name("bob", 1700000000000))));
  CHECK_FALSE(s3::journal_record_stamp("not-a-journal-object"));

  // Each writer's newest object, the newest stamp; floors and foreign keys passed over.
  const std::vector<std::string> names{relative(sd::record_name("bob", 1000, "w1", 1)),
                                       relative(sd::record_name("bob", 3000, "w1", 2)),
                                       relative(sd::record_name("bob", 2000, "w2", 7)),
                                       relative(sd::floor_name("bob", 5000)), "stray"};
  std::string why;
  const auto cursor = sd::s3_cursor::decode(s3::cursor_after(names), why);
  REQUIRE(cursor);
  CHECK(cursor->horizon == 3000u);
  CHECK(cursor->floor == 0u);
  REQUIRE(cursor->writers.size() == 2);
  CHECK(cursor->writers.at("w1").object == 2u);
  CHECK(cursor->writers.at("w1").records == sd::s3_cursor::position::whole);
  CHECK(cursor->writers.at("w2").object == 7u);
}

TEST_CASE("S3 journal: an idle poll is one LIST request, new events cost one GET per operation") {
  s3_kind kind;
  auto alice = kind.open("alice");
  auto source = alice.get().events();
  auto first = poll_once(kind, source, "");
  CHECK(first.events.empty());
  for (int i = 0; i < 3; ++i) alice.create_file("f" + std::to_string(i) + ".txt", "x");
  const auto before = source.client().counts();
  auto second = poll_once(kind, source, first.next_cursor);
  CHECK(names_of(second.events) == std::vector<std::string>{"CREATE", "CREATE", "CREATE"});
  const auto after = source.client().counts();
  CHECK(after.list - before.list == 1);
  CHECK(after.get - before.get == 3);
  // Idle: with the final cursor, each poll is one LIST and nothing else.
  for (int i = 0; i < 5; ++i) {
    const auto at = source.client().counts();
    const auto idle = poll_once(kind, source, second.next_cursor);
    CHECK(idle.events.empty());
    CHECK(idle.problems.empty());
    const auto now = source.client().counts();
    CHECK(now.list - at.list == 1);
    CHECK(now.get == at.get);
    CHECK(now.head == at.head);
  }
}

TEST_CASE("S3 journal: writers whose clocks disagree by 40 s lose nothing to a resuming reader, each writer's order kept") {
  s3_kind kind;
  auto ahead = kind.open("alice");
  auto behind = kind.open("carol");
  auto reader = kind.journal(kind.open("bob"));
  {
    clock_off_by skew(20s);
    ahead.publish_event("note", "a0", {"bob"});
  }
  CHECK(data_of(reader.take()) == std::vector<std::string>{"a0"});
  // The reader's horizon is now 20 s ahead; a writer 20 s behind writes.
  {
    clock_off_by skew(-20s);
    behind.publish_event("note", "b0", {"bob"});
  }
  {
    clock_off_by skew(20s);
    ahead.publish_event("note", "a1", {"bob"});
  }
  {
    clock_off_by skew(-25s);  // and its clock goes back further still
    behind.publish_event("note", "b1", {"bob"});
  }
  const auto got = data_of(reader.take());
  CHECK(sorted(got) == std::vector<std::string>{"a1", "b0", "b1"});
  std::vector<std::string> behind_order;
  for (const auto& d : got) {
    if (d.starts_with("b")) behind_order.push_back(d);
  }
  CHECK(behind_order == std::vector<std::string>{"b0", "b1"});
  CHECK(reader.take().empty());
}

TEST_CASE("S3 journal: one operation's records (one object) are delivered a few per poll, none twice") {
  s3_kind kind;
  auto alice = kind.open("alice");
  auto bob = kind.open("bob");
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i) made.push_back(text(alice.create_file("docs/" + std::to_string(i) + ".txt", "x")));
  alice.share_files(chosen("docs/", true), {"bob"}, true);  // five SHARE records in one object
  auto source = bob.get().events();
  std::string cursor;
  std::vector<std::string> got;
  std::vector<std::size_t> sizes;
  for (int polls = 0; polls < 10; ++polls) {
    auto result = poll_once(kind, source, cursor, 2);
    CHECK(result.problems.empty());
    if (result.events.empty()) break;
    sizes.push_back(result.events.size());
    for (const auto& e : result.events) got.push_back(e.data);
    cursor = result.next_cursor;
  }
  CHECK(sizes == std::vector<std::size_t>{2, 2, 1});
  CHECK(got == made);
}

TEST_CASE("S3 journal: compaction leaves a floor - a resuming reader gets a GAP, a reader from the start does not") {
  s3_kind kind;
  auto alice = kind.open("alice");
  auto bob = kind.open("bob");
  alice.publish_event("note", "old", {"bob"});
  auto resuming = kind.journal(bob);
  CHECK(data_of(resuming.take()) == std::vector<std::string>{"old"});
  alice.publish_event("note", "unread", {"bob"});
  // Stamps are milliseconds: let the clock pass the newest record before
  // compacting everything older than now.
  const auto newest = now_ms();
  while (now_ms() <= newest) std::this_thread::sleep_for(1ms);
  const auto before = alice.get().client().counts();
  CHECK(alice.compact(0s) == 2);
  const auto after = alice.get().client().counts();
  CHECK(after.remove_batches - before.remove_batches == 1);  // one DeleteObjects for bob's journal
  CHECK(after.remove == before.remove);                      // and no DELETE
  const auto compacted = now_ms();  // "new" is stamped after the floor, whatever the clock's grain
  while (now_ms() <= compacted) std::this_thread::sleep_for(1ms);
  alice.publish_event("note", "new", {"bob"});

  const auto got = resuming.take_all();
  CHECK(got.problems.empty());
  REQUIRE(got.events.size() == 2);
  CHECK(got.events[0].name == "GAP");
  CHECK_THAT(got.events[0].data, Catch::Contains("removed by retention"));
  CHECK(got.events[1].data == "new");
  CHECK(resuming.take().empty());  // the GAP is reported once

  CHECK(data_of(kind.journal(bob).take()) == std::vector<std::string>{"new"});
}

TEST_CASE("S3 journal: a corrupt record and a stray object are reported with their keys, the rest arrive") {
  s3_kind kind;
  auto alice = kind.open("alice");
  auto bob = kind.open("bob");
  alice.publish_event("note", "before", {"bob"});
  s3::client client(kind.io.get_executor(), kind.config);
  event good;
  good.id = "forger-1";
  good.name = "note";
  good.actor = "alice";
  good.data = "good";
  good.occurred_at = now_ms();
  auto bad_line = detail::encode_record(good);
  bad_line[12] ^= 1;  // a flipped bit: the checksum fails
  const auto forged = sd::record_name("bob", static_cast<std::uint64_t>(now_ms().time_since_epoch().count()), "forger", 1);
  run_coroutine(kind.io, client.put(forged, bad_line + detail::encode_record(good)), store_limit);
  run_coroutine(kind.io, client.put("journals/bob/zz-not-a-record", "?"), store_limit);
  alice.publish_event("note", "after", {"bob"});

  auto reader = kind.journal(bob);
  const auto got = reader.take_all();
  CHECK(data_of(got.events) == std::vector<std::string>{"before", "good", "after"});
  REQUIRE(got.problems.size() == 2);
  for (const auto& problem : got.problems) CHECK(problem.code == errc::corrupt_record);
  const auto reported = [&](const std::string& a, const std::string& b) {
    return std::any_of(got.problems.begin(), got.problems.end(), [&](const source_problem& p) {
      return p.message.find(a) != std::string::npos && p.message.find(b) != std::string::npos;
    });
  };
  CHECK(reported(forged, "line 1: checksum"));
  CHECK(reported("zz-not-a-record", "not a journal record"));
  CHECK(reader.take_all().problems.empty());  // each reported once
}

TEST_CASE("S3 journal: a new source object resuming from a cursor gets exactly the events after it") {
  s3_kind kind;
  auto alice = kind.open("alice");
  auto bob = kind.open("bob");
  for (int i = 0; i < 5; ++i) alice.publish_event("note", "e" + std::to_string(i), {"bob"});
  std::string cursor;
  {
    auto source = bob.get().events();
    const auto first = poll_once(kind, source, "", 3);
    CHECK(data_of(first.events) == std::vector<std::string>{"e0", "e1", "e2"});
    cursor = first.next_cursor;
  }
  for (int i = 5; i < 7; ++i) alice.publish_event("note", "e" + std::to_string(i), {"bob"});
  auto again = kind.open("bob").get().events();
  const auto rest = poll_once(kind, again, cursor);
  CHECK(data_of(rest.events) == std::vector<std::string>{"e3", "e4", "e5", "e6"});
  CHECK(poll_once(kind, again, rest.next_cursor).events.empty());
  // A malformed cursor: a problem, a GAP, then everything from the start.
  const auto lost = poll_once(kind, again, "s1;garbage");
  REQUIRE_FALSE(lost.problems.empty());
  CHECK(lost.problems[0].code == errc::invalid_cursor);
  REQUIRE(lost.events.size() == 8);
  CHECK(lost.events[0].name == "GAP");
}
