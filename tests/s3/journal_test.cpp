// The S3 journal (store/s3_journal.hpp): object names and cursors on their own,
// then polls against the test server: what an idle poll costs, writers'
// clocks that disagree, an operation's records read a few at a time,
// retention with GAP, corrupt and stray objects, a restarted reader; a
// writer too far ahead refused, records hidden by skew shown as GAPs, the
// end cursor from the listing, and the requests behind the README's costs.
#include "common/fixture.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"

#include <storewatch/store/s3_journal.hpp>
#include <storewatch/store/s3_store.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace journal_test {

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

namespace {

/// Whether `call()` fails with a std::system_error of `code` whose message
/// has every one of `parts`.
template <class Call>
bool fails_with(Call call, std::error_code code, const std::vector<std::string>& parts) {
  try {
    call();
  } catch (const std::system_error& error) {
    const std::string what = error.what();
    INFO("error: " << what);
    CHECK(error.code() == code);
    return error.code() == code && std::all_of(parts.begin(), parts.end(), [&](const std::string& part) {
             return what.find(part) != std::string::npos;
           });
  }
  return false;
}

/// The writer, first and last object numbers of a GAP that names a writer's
/// missing objects ("writer W's objects A to B, ...").
struct missing_objects {
  std::string writer;
  std::uint64_t first = 0, last = 0;
};
std::optional<missing_objects> parse_missing(const std::string& gap) {
  const auto writer_at = gap.find(": writer ");
  const auto objects_at = gap.find("'s objects ");
  const auto to_at = gap.find(" to ", objects_at);
  const auto comma = gap.find(',', to_at);
  if (writer_at == std::string::npos || objects_at == std::string::npos || to_at == std::string::npos ||
      comma == std::string::npos) {
    return std::nullopt;
  }
  missing_objects m;
  m.writer = gap.substr(writer_at + 9, objects_at - writer_at - 9);
  m.first = std::stoull(gap.substr(objects_at + 11, to_at - objects_at - 11));
  m.last = std::stoull(gap.substr(to_at + 4, comma - to_at - 4));
  return m;
}

}  // namespace

TEST_CASE("S3 journal: a writer whose clock is ahead of the server's by more than the late window is refused, and writes nothing") {
  s3_kind kind;
  auto ahead = kind.open("alice");
  auto bob = kind.open("bob");
  auto reader = kind.journal(bob);
  const std::string server = "S3 server " + kind.config.endpoint.scheme + "://" + kind.config.endpoint.authority();
  {
    clock_off_by skew(2min);
    CHECK(fails_with([&] { ahead.publish_event("note", "too early", {"bob"}); }, errc::store_io_failed,
                     {"S3 journal writer ", "this machine's clock is 1", " s ahead of the clock of the " + server,
                      "(from its Date header)", "more than the late window of 60.0 s", "none is written"}));
  }
  CHECK(ahead.get().client().observed_clock_offset());
  CHECK(ahead.get().client().observed_clock_error() <= 1000ms);
  CHECK(reader.take().empty());
  {
    clock_off_by skew(50s);  // ahead, but within the window: written
    ahead.publish_event("note", "soon", {"bob"});
  }
  ahead.publish_event("note", "now", {"bob"});
  CHECK(data_of(reader.take()) == std::vector<std::string>{"soon", "now"});
}

TEST_CASE("S3 journal: two writers with the clock check on, one's clock 2 minutes off, writing in turn - nothing is lost") {
  const bool ahead = GENERATE(true, false);
  INFO((ahead ? "2 minutes ahead: refused" : "2 minutes behind: stamped with the server's clock"));
  s3_kind kind;
  auto skewed = kind.open("alice");
  auto fair = kind.open("carol");
  auto reader = kind.journal(kind.open("bob"));
  std::vector<std::string> written, read;
  for (int turn = 0; turn < 4; ++turn) {
    {
      clock_off_by skew(ahead ? 2min : -2min);
      const auto data = "s" + std::to_string(turn);
      if (ahead) {
        CHECK(fails_with([&] { skewed.publish_event("note", data, {"bob"}); }, errc::store_io_failed,
                         {"ahead of the clock of the S3 server"}));
      } else {
        written.push_back(data);
        skewed.publish_event("note", data, {"bob"});
      }
    }
    written.push_back("c" + std::to_string(turn));
    fair.publish_event("note", written.back(), {"bob"});
    for (const auto& d : data_of(reader.take())) read.push_back(d);
  }
  CHECK(sorted(read) == sorted(written));
}

namespace {

/// Two writers of records for bob, with the clock check off, taking turns
/// four times, "skewed" with its clock `skew` off and "fair" right; then
/// "skewed" once more with its clock `final_skew` off. A reader follows
/// from the start, polling after each turn. Checks that every record of
/// each writer was delivered once or is in a GAP naming that writer and the
/// object that held it (each publish is one object, numbered 1, 2, ...
/// per writer), never both, never neither; returns the GAPs.
std::vector<missing_objects> two_writers(std::chrono::milliseconds skew, std::chrono::milliseconds final_skew) {
  s3_kind kind;
  s3::s3_store_options unchecked;
  unchecked.max_clock_ahead = 0ms;
  const auto open = [&](const std::string& user) {
    return test_store<s3::s3_store>{kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(), kind.config, user, unchecked)};
  };
  auto skewed = open("alice");
  auto fair = open("carol");
  auto reader = kind.journal(kind.open("bob"));
  std::map<std::string, std::vector<std::string>> written;  // writer -> event id of each object, in order
  std::vector<event> got;
  const auto publish = [&](test_store<s3::s3_store>& store, std::chrono::milliseconds off, const std::string& data) {
    clock_off_by clock(off);
    const auto id = store.publish_event("note", data, {"bob"}).at(0);
    written[id.substr(0, id.rfind('-'))].push_back(id);
  };
  const auto take = [&] {
    auto batch = reader.take_all();
    CHECK(batch.problems.empty());
    got.insert(got.end(), batch.events.begin(), batch.events.end());
  };
  for (int turn = 0; turn < 4; ++turn) {
    publish(skewed, skew, "s" + std::to_string(turn));
    publish(fair, 0ms, "f" + std::to_string(turn));
    take();
  }
  publish(skewed, final_skew, "s4");
  take();
  take();  // and nothing more

  std::map<std::string, int> delivered;
  std::vector<missing_objects> gaps;
  for (const auto& e : got) {
    if (e.name != event_name::gap) {
      ++delivered[e.id];
      continue;
    }
    const auto missing = parse_missing(e.data);
    INFO("GAP " << e.data);
    REQUIRE(missing);
    gaps.push_back(*missing);
  }
  REQUIRE(written.size() == 2);
  for (const auto& [writer, ids] : written) {
    for (std::size_t n = 1; n <= ids.size(); ++n) {
      const bool in_gap = std::any_of(gaps.begin(), gaps.end(), [&](const missing_objects& m) {
        return m.writer == writer && m.first <= n && n <= m.last;
      });
      INFO("writer " << writer << "'s object " << n << ", delivered " << delivered[ids[n - 1]] << " times");
      CHECK(delivered[ids[n - 1]] + (in_gap ? 1 : 0) == 1);
    }
  }
  return gaps;
}

}  // namespace

TEST_CASE("S3 journal: with the clock check off, a writer 2 minutes ahead hides nothing from a reader, which lists from the server's clock") {
  // The reader's listing starts a window before the server's time (from its
  // Date headers) when the newest stamp is ahead of it.
  CHECK(two_writers(2min, 2min).empty());
}

TEST_CASE("S3 journal: with the clock check off, a writer 2 minutes behind - the records a reader could not list are a GAP naming the writer and objects") {
  // Its objects 2 to 4 are stamped before the window of a reader that read
  // fair's newer ones; object 5, written once its clock is right, shows them.
  const auto gaps = two_writers(-2min, 0ms);
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].first == 2);
  CHECK(gaps[0].last == 4);
}

TEST_CASE("S3 journal: the end cursor costs LIST requests only, and a source polled from it yields only what comes after") {
  s3_kind kind;
  auto alice = kind.open("alice");
  auto bob = kind.open("bob");
  for (int i = 0; i < 5; ++i) alice.publish_event("note", "old" + std::to_string(i), {"bob"});
  CHECK(alice.compact(0s) == 5);  // a floor: counted as seen, no GAP
  alice.publish_event("note", "kept", {"bob"});
  auto source = bob.get().events();
  const auto before = source.client().counts();
  const auto end = complete<std::string>(
      kind.io, [&](auto h) { source.async_end_cursor(std::move(h)); },
      [&]() -> const std::string& { return source.last_error(); });
  const auto after = source.client().counts();
  CHECK(after.list - before.list == 1);
  CHECK(after.get == before.get);
  CHECK(after.head == before.head);
  CHECK(poll_once(kind, source, end).events.empty());
  alice.publish_event("note", "new", {"bob"});
  const auto next = poll_once(kind, source, end);
  CHECK(data_of(next.events) == std::vector<std::string>{"new"});
  CHECK(next.problems.empty());
}

TEST_CASE("S3 journal: the requests the README's cost table counts - per event written and read, per idle poll") {
  s3_kind kind;
  auto alice = kind.open("alice");
  auto bob = kind.open("bob");
  auto source = bob.get().events();
  const auto start = poll_once(kind, source, "");  // a listener that started before
  constexpr int events = 20;
  for (int i = 0; i < events; ++i) alice.publish_event("note", "e" + std::to_string(i), {"bob"});
  // Writing: one PUT per operation and recipient, and one HEAD per store
  // object's first write (the server's clock, from its Date).
  const auto wrote = alice.get().client().counts();
  CHECK(wrote.put == events);
  CHECK(wrote.head == 1);
  CHECK(wrote.list + wrote.get + wrote.remove == 0);
  // Reading: the poll that finds them is one LIST and one GET per object.
  const auto before = source.client().counts();
  const auto read = poll_once(kind, source, start.next_cursor);
  CHECK(read.events.size() == events);
  auto now = source.client().counts();
  CHECK(now.list - before.list == 1);
  CHECK(now.get - before.get == events);
  // Idle: one LIST.
  const auto idle = poll_once(kind, source, read.next_cursor);
  CHECK(idle.events.empty());
  CHECK(source.client().counts().list - now.list == 1);
  CHECK(source.client().counts().get == now.get);
}

TEST_CASE("S3 journal: an idle poll is one LIST even with more than 1000 objects in the late window") {
  s3_kind kind;
  auto bob = kind.open("bob");
  s3::client client(kind.io.get_executor(), kind.config);
  constexpr std::uint64_t objects = 1100;  // two pages
  const auto stamp = static_cast<std::uint64_t>(now_ms().time_since_epoch().count());
  event e;
  e.name = "note";
  e.actor = "alice";
  e.occurred_at = now_ms();
  for (std::uint64_t n = 1; n <= objects; ++n) {
    e.id = "bulk-" + std::to_string(n);
    run_coroutine(kind.io, client.put(sd::sequenced_record_name("bob", stamp, "bulk", n, n == 1 ? 0 : stamp),
                                      detail::encode_record(e)),
                  store_limit);
  }
  auto source = bob.get().events();
  std::string cursor;
  std::size_t read = 0;
  for (int polls = 0; polls < 10 && read < objects; ++polls) {
    auto result = poll_once(kind, source, cursor, 1000);
    read += result.events.size();
    cursor = result.next_cursor;
  }
  REQUIRE(read == objects);
  const auto lists = [&] { return source.client().counts().list; };
  // The last poll listed the window: two pages. Idle polls list only the tail.
  auto at = lists();
  for (int i = 0; i < 5; ++i) {
    at = lists();
    CHECK(poll_once(kind, source, cursor).events.empty());
    CHECK(lists() - at == 1);
  }
  // A new record: found by the tail, then read with the window listed again.
  kind.open("alice").publish_event("note", "new", {"bob"});
  at = lists();
  const auto next = poll_once(kind, source, cursor);
  CHECK(data_of(next.events) == std::vector<std::string>{"new"});
  CHECK(lists() - at == 3);
}

namespace {

/// Fails every attempt of the PUTs whose name contains `part`, while installed.
class failing_puts final : public s3::detail::request_fault_injector {
 public:
  explicit failing_puts(std::string part) : part_(std::move(part)) { s3::detail::request_faults = this; }
  failing_puts(const failing_puts&) = delete;
  failing_puts& operator=(const failing_puts&) = delete;
  ~failing_puts() override { s3::detail::request_faults = nullptr; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    if (method != "PUT" || name.find(part_) == std::string_view::npos) return std::nullopt;
    return outcome{s3::make_http_error(CURLE_COULDNT_CONNECT), {}};
  }

 private:
  std::string part_;
};

}  // namespace

TEST_CASE("S3 journal: an operation taken back gives its object numbers back, so a resuming reader sees no hole") {
  s3_kind kind;
  s3::s3_store_options once;
  once.client.max_attempts = 1;
  test_store<s3::s3_store> alice{kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(), kind.config, "alice", once)};
  auto carol = kind.open("carol");
  auto reader = kind.journal(kind.open("bob"));
  carol.publish_event("note", "first", {"bob"});
  CHECK(data_of(reader.take()) == std::vector<std::string>{"first"});  // resuming from here on
  {
    // Bob's journal object is written, carol's fails: bob's is taken back.
    failing_puts faults("journals/carol/");
    CHECK(fails_with([&] { alice.publish_event("note", "lost", {"bob", "carol"}); }, errc::store_io_failed, {}));
  }
  alice.publish_event("note", "again", {"bob"});
  const auto got = reader.take_all();
  CHECK(got.problems.empty());
  CHECK(data_of(got.events) == std::vector<std::string>{"again"});  // no GAP for the number taken back
}

}  // namespace journal_test
