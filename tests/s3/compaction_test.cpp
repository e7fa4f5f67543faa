// Compaction of S3 journals into segments (store/s3_journal.hpp,
// detail/s3_compaction.hpp): segment names and bodies and the compaction's
// plan on their own; then against the test server: a catch-up from the empty
// cursor reads every event once, in order, with one GET per segment; a reader
// part-way through continues exactly once; a compaction that fails or loses
// the response at any of its requests (every k-th, the first and the last
// with STOREWATCH_FAULT_STRIDE k: common/sizing.hpp) leaves a journal read
// exactly once, which a second compaction finishes; a DeleteObjects that times out (a slow
// server) is sent again in smaller requests; compaction while a writer writes
// and a reader reads; and an idle poll after compaction is one LIST.
#include "common/faults.hpp"
#include "common/fixture.hpp"
#include "common/sizing.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"

#include <storewatch/detail/s3_compaction.hpp>
#include <storewatch/store/s3_journal.hpp>
#include <storewatch/store/s3_store.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace compaction_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
namespace sd = storewatch::s3::detail;

namespace {

const std::string folder = sd::journal_folder("bob");

/// A record name of bob's journal, relative to its folder; `previous` is
/// the stamp of the writer's object `n - 1`.
std::string record(std::uint64_t stamp, const std::string& writer, std::uint64_t n, std::uint64_t previous = 0) {
  return sd::sequenced_record_name("bob", stamp, writer, n, previous).substr(folder.size());
}

/// Polls `source` on `io` once.
poll_result poll_once(s3_kind& kind, s3::s3_journal_source& source, const std::string& cursor,
                      std::size_t max_events) {
  return complete<poll_result>(
      kind.io, [&](auto h) { source.async_poll(cursor, max_events, std::move(h)); },
      [&]() -> const std::string& { return source.last_error(); });
}

/// Runs `alice`'s compaction with `options` on `kind.io`.
std::size_t compact(s3_kind& kind, s3::s3_store& store, s3::s3_compact_options options) {
  return complete<std::size_t>(
      kind.io, [&](auto h) { store.async_compact(options, std::move(h)); },
      [&]() -> const std::string& { return store.last_error(); });
}

/// A store that compacts, with the journal landing limit off
/// (`journal_landing_limit` 0), so that it may fold records however young
/// (`fold_all`): these tests write no record while it compacts, but for
/// the writer of the concurrent test, which takes nothing back.
s3::s3_store compactor(s3_kind& kind, const std::string& user) {
  s3::s3_store_options options;
  options.journal_landing_limit = 0ms;
  return s3::s3_store(kind.io.get_executor(), kind.config, user, options);
}

/// Records folded when stamped before the newest: what tests compact with.
s3::s3_compact_options fold_all(std::size_t segment_objects) {
  s3::s3_compact_options options;
  options.settled = 0ms;
  options.segment_objects = segment_objects;
  return options;
}

/// A journal for bob written straight into the bucket, as writers would:
/// `objects` record objects from three writers, stamped 1 ms apart ten
/// minutes ago (the newest a little later), object i holding i % 3 + 1
/// records ("e0", "e1", ... in key order), so that a reader stops inside
/// objects too.
struct written_journal {
  std::vector<std::string> data;  // every record's data, in delivery order
  std::uint64_t newest = 0;       // the newest object's stamp
};

written_journal write_journal(s3_kind& kind, std::size_t objects, std::chrono::milliseconds newest_after = 0ms) {
  s3::client client(kind.io.get_executor(), kind.config);
  const auto base = static_cast<std::uint64_t>((now_ms() - 10min).time_since_epoch().count());
  const std::vector<std::string> writers{"w-a", "w-b", "w-c"};
  written_journal out;
  std::vector<std::pair<std::string, std::string>> puts;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> last;  // writer -> its last object's number and stamp
  event e;
  e.name = "note";
  e.actor = "alice";
  e.occurred_at = now_ms();
  for (std::size_t i = 0; i < objects; ++i) {
    const auto stamp = base + i + (i + 1 == objects ? static_cast<std::uint64_t>(newest_after.count()) : 0);
    const auto& writer = writers[i % writers.size()];
    std::string body;
    for (std::size_t line = 0; line <= i % 3; ++line) {
      e.data = "e" + std::to_string(out.data.size());
      e.id = writer + "-" + e.data;
      out.data.push_back(e.data);
      body += detail::encode_record(e);
    }
    auto& [number, previous] = last[writer];
    puts.emplace_back(folder + record(stamp, writer, ++number, previous), std::move(body));
    previous = stamp;
    out.newest = stamp;
  }
  const auto put_all = [&]() -> asio::awaitable<void> {
    std::size_t next = 0;
    const auto worker = [&]() -> asio::awaitable<void> {
      while (next < puts.size()) {
        auto& [name, body] = puts[next++];
        co_await client.put(name, body);
      }
    };
    using namespace asio::experimental::awaitable_operators;
    co_await (worker() && worker() && worker() && worker());
  };
  run_coroutine(kind.io, put_all(), store_limit);
  return out;
}

/// bob's journal objects: segments and other entries, relative to its folder.
struct journal_listing {
  std::vector<std::string> segments, records;
};

journal_listing list_journal(s3_kind& kind) {
  journal_listing out;
  for (const auto& [key, bytes] : kind.snapshot()) {
    if (!key.starts_with(folder)) continue;
    const auto entry = sd::parse_journal_entry(std::string_view(key).substr(folder.size()));
    REQUIRE(entry);
    (entry->what == sd::journal_entry::kind::segment ? out.segments : out.records).push_back(key.substr(folder.size()));
  }
  return out;
}

/// Polls from `cursor` until a poll brings nothing; the events' data, and
/// the cursor after them. Problems fail the test.
std::vector<std::string> read_rest(s3_kind& kind, s3::s3_journal_source& source, std::string& cursor,
                                   std::size_t max_events) {
  std::vector<std::string> got;
  for (int polls = 0; polls < 1000; ++polls) {
    const auto result = poll_once(kind, source, cursor, max_events);
    for (const auto& problem : result.problems) FAIL_CHECK("journal problem: " << problem.message);
    for (const auto& e : result.events) got.push_back(e.data);
    cursor = result.next_cursor;
    if (result.events.empty()) break;
  }
  return got;
}

std::vector<std::string> tail_from(const std::vector<std::string>& all, std::size_t first) {
  return {all.begin() + static_cast<std::ptrdiff_t>(first), all.end()};
}

}  // namespace

TEST_CASE("S3 segments: named after their last record, they sort right after it, parse back, and round-trip") {
  const auto first = record(1700000000000, "w-a", 1);
  const auto last = record(1700000000005, "w-b", 4);
  const auto name = sd::segment_name("bob", first, last);
  CHECK(name == folder + last + "~" + first);
  const auto entry = sd::parse_journal_entry(std::string_view(name).substr(folder.size()));
  REQUIRE(entry);
  CHECK(entry->what == sd::journal_entry::kind::segment);
  CHECK(entry->stamp == 1700000000005);
  CHECK(entry->writer == "w-b");
  CHECK(entry->object == 4);
  CHECK(entry->first == first);

  std::vector<std::string> names{folder + record(1700000000006, "w-a", 2), name, folder + last,
                                 folder + record(1700000000005, "w-c", 1)};
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{folder + last, name, folder + record(1700000000005, "w-c", 1),
                                          folder + record(1700000000006, "w-a", 2)});

  for (const auto& bad : {last + "~", "~" + first, last + "~1700000000000!floor", first + "~" + last,
                                last + "~" + first + "~" + first}) {
    INFO("name " << bad);
    CHECK_FALSE(sd::parse_journal_entry(bad));
  }

  const std::vector<std::pair<std::string, std::string>> members{{first, "a\nb\n"}, {last, ""}, {"x y", "1 2\n"}};
  const auto body = sd::encode_segment(members);
  std::string why;
  const auto decoded = sd::decode_segment(body, why);
  REQUIRE(decoded);
  REQUIRE(decoded->size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK((*decoded)[i].name == members[i].first);
    CHECK((*decoded)[i].body == members[i].second);
  }
  for (const auto& bad : {std::string("x"), std::string("x 3\nab"), std::string("x\nab"),
                                std::string("x -1\n"), body + "y 1"}) {
    INFO("body " << bad);
    why.clear();
    CHECK_FALSE(sd::decode_segment(bad, why));
    CHECK_FALSE(why.empty());
  }

  // A cursor names the last segment read to its end.
  sd::s3_cursor cursor;
  cursor.horizon = 1700000000005;
  cursor.writers["w-b"] = {4, sd::s3_cursor::position::whole, 1700000000005};
  cursor.segment = name.substr(folder.size());
  const auto text = cursor.encode();
  CHECK(text == "s1;1700000000005;0;w-b=4@1700000000005;~" + cursor.segment);
  const auto back = sd::s3_cursor::decode(text, why);
  REQUIRE(back);
  CHECK(back->segment == cursor.segment);
  CHECK(back->encode() == text);
  CHECK_FALSE(sd::s3_cursor::decode("s1;1;0;~" + first, why));
  CHECK_FALSE(sd::s3_cursor::decode(text + ";~" + cursor.segment, why));
  CHECK(sd::cursor_after({last, name.substr(folder.size())}, false).segment == cursor.segment);
}

TEST_CASE("S3 merge: a record gone when fetched ends the poll before it, and the segment holding it is read next") {
  sd::s3_merge_settings settings;
  settings.folder = folder;
  settings.journal = "s3://bucket/" + folder;
  std::set<std::string> reported;
  event e;
  e.name = "note";
  e.actor = "alice";
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::string>> members;
  for (std::uint64_t n = 1; n <= 4; ++n) {
    names.push_back(record(1000 + n, "w", n, n == 1 ? 0 : 999 + n));
    e.data = "e" + std::to_string(n);
    e.id = "w-" + e.data;
    members.emplace_back(names.back(), detail::encode_record(e));
  }
  // The listing shows the records; a compaction folds them before the
  // GETs, which find record 2 gone and 3 and 4 still there.
  sd::s3_merge first(settings, reported, "", 1000);
  REQUIRE(first.next().what == sd::s3_merge_step::kind::list);
  sd::s3_listing_page page;
  for (const auto& name : names) page.keys.push_back(folder + name);
  first.on_page(page);
  REQUIRE(first.next().what == sd::s3_merge_step::kind::fetch);
  CHECK_FALSE(first.next().segment);
  first.on_bodies({members[0].second, std::nullopt, members[2].second, members[3].second});
  REQUIRE(first.next().what == sd::s3_merge_step::kind::done);
  CHECK(first.gone() == std::set<std::string>{folder + names[1]});
  auto result = first.finish();
  CHECK(data_of(result.events) == std::vector<std::string>{"e1"});

  sd::s3_poll_hints hints;
  hints.gone = first.gone();
  sd::s3_merge second(settings, reported, result.next_cursor, 1000, hints);
  REQUIRE(second.next().what == sd::s3_merge_step::kind::list);
  const auto segment = sd::segment_name("bob", names.front(), names.back());
  second.on_page({{segment}, false, {}});
  REQUIRE(second.next().what == sd::s3_merge_step::kind::fetch);
  CHECK(second.next().segment);
  CHECK(second.next().keys == std::vector<std::string>{segment});
  second.on_bodies({sd::encode_segment(members)});
  REQUIRE(second.next().what == sd::s3_merge_step::kind::done);
  result = second.finish();
  CHECK(data_of(result.events) == std::vector<std::string>{"e2", "e3", "e4"});
  CHECK(result.problems.empty());
  std::string why;
  CHECK(sd::s3_cursor::decode(result.next_cursor, why)->segment == segment.substr(folder.size()));
}

TEST_CASE("S3 compaction plan: runs of consecutive records before the cutoff, ended by segments and their ranges") {
  std::vector<std::string> keys;
  for (std::uint64_t i = 1; i <= 9; ++i) {
    if (i != 3) keys.push_back(folder + record(1000 + i, "w", i));
  }
  // A segment of records 3 to 4 whose record 4 is still there, and a floor.
  const auto segment = sd::segment_name("bob", record(1003, "w", 3), record(1004, "w", 4));
  keys.push_back(segment);
  keys.push_back(folder + "0000000001002!floor");
  std::sort(keys.begin(), keys.end());
  CHECK(sd::compaction_cutoff(folder, keys, 5000, 0) == 1009);
  CHECK(sd::compaction_cutoff(folder, keys, 1007, 2) == 1005);
  CHECK(sd::compaction_cutoff(folder, keys, 5000, 2000) == 0);

  const auto plan = sd::plan_compaction(folder, keys, 1009, 2);
  REQUIRE(plan.leftovers.size() == 1);
  CHECK(plan.leftovers[0].segment == segment);
  CHECK(plan.leftovers[0].records == std::vector<std::string>{folder + record(1004, "w", 4)});
  // 1 2 | [4 in the segment's range] | 5 6 | 7 8 ; 9 is the newest.
  CHECK(plan.runs == std::vector<std::vector<std::string>>{
                         {folder + record(1001, "w", 1), folder + record(1002, "w", 2)},
                         {folder + record(1005, "w", 5), folder + record(1006, "w", 6)},
                         {folder + record(1007, "w", 7), folder + record(1008, "w", 8)}});
  const auto wide = sd::plan_compaction(folder, keys, 1009, 5000);
  REQUIRE(wide.runs.size() == 2);
  CHECK(wide.runs[1].size() == 4);
  CHECK(sd::plan_compaction(folder, keys, 1001, 10).runs.empty());
}

TEST_CASE("S3 compaction: a catch-up from the empty cursor reads every event once, in order, one GET per segment") {
  s3_kind kind;
  const auto journal = write_journal(kind, 600);
  auto alice = compactor(kind, "alice");
  CHECK(compact(kind, alice, {}) == 0);  // nothing is a minute older than the newest record
  CHECK(compact(kind, alice, fold_all(1000)) == 599);
  const auto listing = list_journal(kind);
  CHECK(listing.segments.size() == 1);
  CHECK(listing.records.size() == 1);  // the newest
  CHECK(compact(kind, alice, fold_all(1000)) == 0);  // idempotent

  auto bob = kind.open("bob");
  const auto max_events = GENERATE(std::size_t{1000}, std::size_t{64});
  INFO("max_events " << max_events);
  auto source = bob.get().events();
  std::string cursor;
  const auto got = read_rest(kind, source, cursor, max_events);
  CHECK(got == journal.data);
  const auto counts = source.client().counts();
  // One GET for the segment, however many polls read it, and one for the
  // newest record: fewer than 2 per 1000 events compacted.
  CHECK(counts.get == 2);
  CHECK(counts.get - 1 <= 2 * 599 / 1000.0);
  // Then an idle poll is one LIST: the cursor names the segment read.
  const auto before = source.client().counts();
  CHECK(poll_once(kind, source, cursor, max_events).events.empty());
  CHECK(source.client().counts().list - before.list == 1);
  CHECK(source.client().counts().get == before.get);
}

TEST_CASE("S3 compaction: a reader part-way through before compaction continues after it with exactly the rest") {
  s3_kind kind;
  const auto journal = write_journal(kind, 45);  // 90 records
  auto alice = compactor(kind, "alice");
  auto bob = kind.open("bob");
  s3::s3_journal_options options;
  SECTION("with the default late window") {}
  SECTION("with no late window: the listing starts at the reader's newest record") { options.late_window = 0ms; }
  const auto read_before = GENERATE(std::size_t{1}, std::size_t{35}, std::size_t{89});
  INFO("events read before " << read_before);
  std::string cursor;
  {
    auto source = bob.get().events(options);
    const auto first = poll_once(kind, source, cursor, read_before);
    REQUIRE(first.events.size() == read_before);
    cursor = first.next_cursor;  // the checkpoint
  }
  CHECK(compact(kind, alice, fold_all(8)) == 44);
  auto source = bob.get().events(options);  // a new source, as after a restart
  CHECK(read_rest(kind, source, cursor, 10) == tail_from(journal.data, read_before));
  auto fresh = bob.get().events(options);
  std::string from_start;
  CHECK(read_rest(kind, fresh, from_start, 1000) == journal.data);
}

namespace {

/// What the fault tests compact: a journal of `objects` objects for bob; a
/// reader's cursor after its first `read_before` events (a checkpoint taken
/// before the compaction); and carol, a store that compacts with quick
/// retries, `max_attempts` attempts a request.
struct faulty_compaction {
  faulty_compaction(std::size_t objects, std::size_t read_before, int max_attempts)
      : journal(write_journal(kind, objects)), bob(kind.open("bob")), read_before(read_before),
        carol(kind.io.get_executor(), kind.config, "carol", store_options(max_attempts)) {
    auto source = bob.get().events();
    part_way = poll_once(kind, source, part_way, read_before).next_cursor;
  }

  static s3::s3_store_options store_options(int max_attempts) {
    s3::s3_store_options options;
    options.client.retry = {10ms, 100ms, 2.0, 0.2};
    options.client.max_attempts = max_attempts;
    options.journal_landing_limit = 0ms;  // compacts records however young (fold_all)
    return options;
  }

  /// Readers from the empty cursor and from the checkpoint read every
  /// event once, in order, `max_events` a poll.
  void check_readers(std::size_t max_events) {
    auto source = bob.get().events();
    std::string from_start;
    CHECK(read_rest(kind, source, from_start, max_events) == journal.data);
    std::string cursor = part_way;
    CHECK(read_rest(kind, source, cursor, max_events) == tail_from(journal.data, read_before));
  }

  s3_kind kind;
  written_journal journal;
  test_store<s3::s3_store> bob;
  std::size_t read_before;
  std::string part_way;
  s3::s3_store carol;
};

/// Fails attempt `fail_at` (counting every attempt while installed, from 1)
/// before it is sent, or (`executed`) after the server executed it, its
/// response lost.
class compaction_faults final : public s3::detail::request_fault_injector {
 public:
  compaction_faults(std::size_t fail_at, bool executed) : fail_at_(fail_at), executed_(executed) {
    s3::detail::request_faults = this;
  }
  compaction_faults(const compaction_faults&) = delete;
  compaction_faults& operator=(const compaction_faults&) = delete;
  ~compaction_faults() override { s3::detail::request_faults = nullptr; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    if (++attempts_ != fail_at_) return std::nullopt;
    failed_ = std::string(method) + ' ' + std::string(name);
    if (executed_) return std::nullopt;  // its response is lost in after()
    return outcome{s3::make_http_error(CURLE_COULDNT_CONNECT), {}};
  }
  // GETs run 8 at once: the attempt is known by its request, not by the count.
  std::optional<outcome> after(std::string_view method, std::string_view name, const s3::http_response&) override {
    if (!executed_ || lost_ || failed_ != std::string(method) + ' ' + std::string(name)) return std::nullopt;
    lost_ = true;
    return outcome{s3::make_http_error(CURLE_RECV_ERROR), {}};
  }

  std::size_t attempts() const { return attempts_; }
  const std::string& failed() const { return failed_; }

 private:
  std::size_t fail_at_;
  bool executed_;
  std::size_t attempts_ = 0;
  std::string failed_;
  bool lost_ = false;
};

}  // namespace

TEST_CASE("S3 compaction: failed or its response lost at any request, it leaves a journal read exactly once, "
          "and a second compaction finishes it") {
  struct mode {
    const char* name;
    bool executed;
    int attempts;
    std::size_t rotation;  // of the requests swept (fault_sweep)
  };
  const auto m = GENERATE(mode{"failed", false, 1, 0}, mode{"executed, response lost", true, 1, 1},
                          mode{"executed, response lost, retried", true, 8, 2});
  INFO("mode: " << m.name);
  constexpr std::size_t objects = 16;
  constexpr std::size_t segment_objects = 6;  // runs of 6, 6 and 3 objects; the newest stays
  constexpr std::size_t read_before = 7;      // inside the first segment's range
  fault_sweep sweep(std::string("S3 compaction, ") + m.name);
  std::size_t clean_attempts = 0;
  // Request 0: a clean run, which counts the requests; then the sweep.
  const auto run = [&](std::size_t n) {
    INFO("request " << n);
    faulty_compaction c(objects, read_before, m.attempts);
    auto& [kind, journal, bob, read_before_, part_way, carol] = c;
    std::string failed;
    failure f;
    {
      compaction_faults faults(n, m.executed);
      f = failure_of([&] { compact(kind, carol, fold_all(segment_objects)); });
      if (n == 0) clean_attempts = faults.attempts();
      failed = faults.failed();
    }
    INFO("failed: " << failed << "; error: " << f.what);
    CHECK(failed.empty() == (n == 0));  // request n of a sweep was made, and failed
    if (n == 0 || m.attempts > 1) {
      CHECK(f.what == "no exception");
    } else {
      CHECK(f.code == errc::store_io_failed);
    }
    // Readers: from the empty cursor, and part-way, both before and after
    // a second compaction.
    c.check_readers(5);
    compact(kind, carol, fold_all(segment_objects));
    const auto listing = list_journal(kind);
    CHECK(listing.records.size() == 1);  // every record but the newest is in a segment
    CHECK(listing.segments.size() >= 3);
    CHECK(compact(kind, carol, fold_all(segment_objects)) == 0);
    c.check_readers(5);
  };
  run(0);
  CHECK(clean_attempts > 10);
  for (const auto n : sweep.requests(clean_attempts, m.rotation)) run(n);
}

namespace {

/// A slow server, as s3rver is with a large folder: every attempt of a
/// DeleteObjects request of more than `most_keys` keys times out, either
/// before it is sent or (`executed`) after the server executed it, its
/// response lost to the timeout. Counts the attempts by the request's size.
class slow_delete final : public s3::detail::request_fault_injector {
 public:
  slow_delete(std::size_t most_keys, bool executed) : most_keys_(most_keys), executed_(executed) {
    s3::detail::request_faults = this;
  }
  slow_delete(const slow_delete&) = delete;
  slow_delete& operator=(const slow_delete&) = delete;
  ~slow_delete() override { s3::detail::request_faults = nullptr; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    const auto keys = delete_keys(method, name);
    if (keys == 0) return std::nullopt;
    ++attempts_[keys];
    if (executed_ || keys <= most_keys_) return std::nullopt;
    return timed_out();
  }
  std::optional<outcome> after(std::string_view method, std::string_view name, const s3::http_response&) override {
    const auto keys = delete_keys(method, name);
    if (!executed_ || keys <= most_keys_) return std::nullopt;
    return timed_out();
  }

  /// Attempts of DeleteObjects requests by their number of keys.
  const std::map<std::size_t, int>& attempts() const { return attempts_; }

 private:
  // The keys of a DeleteObjects request ("POST" on "?delete=<keys>"); 0 for any other.
  static std::size_t delete_keys(std::string_view method, std::string_view name) {
    constexpr std::string_view head = "?delete=";
    if (method != "POST" || !name.starts_with(head)) return 0;
    return std::stoul(std::string(name.substr(head.size())));
  }
  static outcome timed_out() { return outcome{s3::make_http_error(CURLE_OPERATION_TIMEDOUT), {}}; }

  std::size_t most_keys_;
  bool executed_;
  std::map<std::size_t, int> attempts_;
};

}  // namespace

TEST_CASE("S3 compaction: a DeleteObjects that times out is sent again in smaller requests, the journal read "
          "exactly once") {
  const bool executed = GENERATE(false, true);
  INFO((executed ? "executed, then timed out" : "timed out, not executed"));
  constexpr std::size_t objects = 451;  // 450 folded into one segment, removed in requests of 200, 200, 50
  constexpr std::size_t read_before = 100;
  faulty_compaction c(objects, read_before, 2);
  auto& [kind, journal, bob, read_before_, part_way, carol] = c;
  SECTION("requests of up to 50 keys get through: 200 and 100 time out, then every request is of 50") {
    std::map<std::size_t, int> attempts;
    {
      slow_delete faults(50, executed);
      CHECK(compact(kind, carol, fold_all(1000)) == objects - 1);
      attempts = faults.attempts();
    }
    // Two attempts of 200 keys, two of 100, then nine of 50: the 450 keys.
    CHECK(attempts == std::map<std::size_t, int>{{50, 9}, {100, 2}, {200, 2}});
    const auto listing = list_journal(kind);
    CHECK(listing.segments.size() == 1);
    CHECK(listing.records.size() == 1);  // the newest
    c.check_readers(1000);
    CHECK(compact(kind, carol, fold_all(1000)) == 0);
  }
  SECTION("none gets through: it gives up at the smallest request, and the next compaction finishes") {
    failure f;
    std::map<std::size_t, int> attempts;
    {
      slow_delete faults(0, executed);
      f = failure_of([&] { compact(kind, carol, fold_all(1000)); });
      attempts = faults.attempts();
    }
    INFO("error: " << f.what);
    CHECK(f.code == errc::store_io_failed);
    CHECK_THAT(f.what, Catch::Contains("DeleteObjects") && Catch::Contains("9 more"));
    CHECK(attempts == std::map<std::size_t, int>{{10, 2}, {12, 2}, {25, 2}, {50, 2}, {100, 2}, {200, 2}});
    c.check_readers(1000);
    // Executed: the newest 200 went with the first request.
    CHECK(compact(kind, carol, fold_all(1000)) == (executed ? 250 : objects - 1));
    const auto listing = list_journal(kind);
    CHECK(listing.segments.size() == 1);
    CHECK(listing.records.size() == 1);
    c.check_readers(1000);
  }
}

TEST_CASE("S3 compaction: while a writer writes and a reader reads, every event arrives once, in order") {
  s3_kind kind;
  s3::s3_store alice(kind.io.get_executor(), kind.config, "alice");
  auto carol = compactor(kind, "carol");  // compacts, as from another machine
  s3::s3_store bob(kind.io.get_executor(), kind.config, "bob");
  constexpr int events = 40;
  const std::vector<std::string> to_bob{"bob"};
  bool written = false;
  int compactions = 0;
  std::vector<std::string> expected, got;
  const auto writer = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < events; ++i) {
      auto data = "e" + std::to_string(i);
      expected.push_back(data);
      co_await alice.async_publish_event("note", std::move(data), to_bob, asio::use_awaitable);
    }
    written = true;
  };
  const auto compactor = [&]() -> asio::awaitable<void> {
    for (bool last = false; !last;) {
      last = written;
      co_await carol.async_compact(fold_all(5), asio::use_awaitable);
      ++compactions;
    }
  };
  const auto reader = [&]() -> asio::awaitable<void> {
    auto source = bob.events();
    std::string cursor;
    // Until all are read, then once more: nothing may follow.
    for (int polls = 0; polls < 5000; ++polls) {
      const bool last = written && got.size() >= expected.size();
      const auto result = co_await source.async_poll(cursor, 7, asio::use_awaitable);
      for (const auto& problem : result.problems) FAIL_CHECK("journal problem: " << problem.message);
      for (const auto& e : result.events) got.push_back(e.data);
      cursor = result.next_cursor;
      if (last) break;
    }
  };
  using namespace asio::experimental::awaitable_operators;
  run_coroutine(kind.io, writer() && compactor() && reader(), store_limit);
  CHECK(compactions > 1);
  CHECK(got == expected);
  CHECK(list_journal(kind).segments.size() >= 1);
  auto fresh = bob.events();
  std::string from_start;
  CHECK(read_rest(kind, fresh, from_start, 1000) == expected);
}

TEST_CASE("S3 compaction: an idle poll after compaction is one LIST") {
  s3_kind kind;
  // The newest record 2 s after the others, so that compacting what is
  // settled for 1 s folds all the others.
  const auto journal = write_journal(kind, 30, 2000ms);
  auto alice = compactor(kind, "alice");
  auto options = fold_all(10);  // three segments: more than the source keeps in memory
  options.settled = 1000ms;
  CHECK(compact(kind, alice, options) == 29);
  CHECK(list_journal(kind).segments.size() == 3);
  auto bob = kind.open("bob");
  s3::s3_journal_options reading;
  SECTION("a reader whose late window is the settled time: it does not list the segment again") {
    reading.late_window = 1000ms;
  }
  SECTION("a reader with the default late window lists it, and its cursor says it was read") {}
  auto source = bob.get().events(reading);
  std::string cursor;
  CHECK(read_rest(kind, source, cursor, 1000) == journal.data);
  for (int i = 0; i < 3; ++i) {
    const auto before = source.client().counts();
    const auto idle = poll_once(kind, source, cursor, 1000);
    CHECK(idle.events.empty());
    CHECK(idle.problems.empty());
    const auto after = source.client().counts();
    CHECK(after.list - before.list == 1);
    CHECK(after.get == before.get);
    CHECK(after.head == before.head);
  }
}

// --- What compaction's safety rests on: no record object appears in, or
// --- is taken back from, a range after it was folded (issue #20).

namespace {

/// Puts `objects` (keys relative to the store's prefix, and bodies) into
/// the bucket as they are.
void put_objects(s3_kind& kind, const std::vector<std::pair<std::string, std::string>>& objects) {
  s3::client client(kind.io.get_executor(), kind.config);
  run_coroutine(
      kind.io,
      [&]() -> asio::awaitable<void> {
        for (const auto& [key, body] : objects) co_await client.put(key, body);
      }(),
      store_limit);
}

/// A record line of event data `data` from writer `writer`.
std::string line_of(const std::string& writer, const std::string& data) {
  event e;
  e.name = "note";
  e.actor = "alice";
  e.occurred_at = now_ms();
  e.data = data;
  e.id = writer + "-" + data;
  return detail::encode_record(e);
}

std::uint64_t ms_now() { return static_cast<std::uint64_t>(now_ms().time_since_epoch().count()); }

/// Every record of bob's journal, segments' members included, relative to
/// its folder.
std::set<std::string> records_held(s3_kind& kind) {
  std::set<std::string> out;
  for (const auto& [key, bytes] : kind.snapshot()) {
    if (!key.starts_with(folder)) continue;
    const auto name = key.substr(folder.size());
    const auto entry = sd::parse_journal_entry(name);
    if (!entry || entry->what != sd::journal_entry::kind::segment) {
      out.insert(name);
      continue;
    }
    std::string why;
    const auto members = sd::decode_segment(bytes, why);
    REQUIRE(members);
    for (const auto& member : *members) out.insert(std::string(member.name));
  }
  return out;
}

/// Delays the first PUT of an object whose key starts with `prefix` by
/// `delay` before it is sent, as a slow server or network would.
class slow_put final : public s3::detail::request_fault_injector {
 public:
  slow_put(std::string prefix, std::chrono::milliseconds delay) : prefix_(std::move(prefix)), delay_(delay) {
    s3::detail::request_faults = this;
  }
  slow_put(const slow_put&) = delete;
  slow_put& operator=(const slow_put&) = delete;
  ~slow_put() override { s3::detail::request_faults = nullptr; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    if (method == "PUT" && name.starts_with(prefix_) && !delayed_) {
      delayed_ = true;
      std::this_thread::sleep_for(delay_);  // the request is slow: this is the fault, not a wait for an event
    }
    return std::nullopt;
  }

 private:
  std::string prefix_;
  std::chrono::milliseconds delay_;
  bool delayed_ = false;
};

}  // namespace

TEST_CASE("S3 journal writer: a PUT that could land past the landing limit of its stamp is not made, and the "
          "operation is rolled back with an error naming the limit") {
  s3_kind kind;
  s3::s3_store_options options;
  options.journal_landing_limit = 4000ms;
  options.client.retry_budget = 250ms;  // so a PUT may start until 3.5 s after the stamp
  options.client.retry = {10ms, 50ms, 2.0, 0.2};
  s3::s3_store alice(kind.io.get_executor(), kind.config, "alice", options);
  // One operation to bob and carol: one object each, bob's first. A
  // timely one goes through.
  const std::vector<std::string> users{"bob", "carol"};
  complete<std::vector<std::string>>(
      kind.io, [&](auto h) { alice.async_publish_event("note", "timely", users, std::move(h)); },
      [&]() -> const std::string& { return alice.last_error(); });
  // Bob's PUT of the next is slow: when it is done, carol's could land
  // later than 4 s after the stamp.
  failure f;
  {
    slow_put slow(sd::journal_folder("bob"), 4000ms);
    f = failure_of([&] {
      complete<std::vector<std::string>>(
          kind.io, [&](auto h) { alice.async_publish_event("note", "late", users, std::move(h)); },
          [&]() -> const std::string& { return alice.last_error(); });
    });
  }
  INFO(f.what);
  CHECK(f.code == errc::store_io_failed);
  CHECK_THAT(f.what, Catch::Contains("journal_landing_limit") && Catch::Contains("rolled back"));
  // Bob's object of it is taken back, carol's never written: readers get
  // only the timely event.
  for (const std::string user : {"bob", "carol"}) {
    auto reader = kind.open(user);
    auto source = reader.get().events();
    std::string cursor;
    CHECK(read_rest(kind, source, cursor, 100) == std::vector<std::string>{"timely"});
  }
  // And the writer goes on: the next operation gets a fresh stamp.
  complete<std::vector<std::string>>(
      kind.io, [&](auto h) { alice.async_publish_event("note", "after", users, std::move(h)); },
      [&]() -> const std::string& { return alice.last_error(); });
  auto bob = kind.open("bob");
  auto source = bob.get().events();
  std::string cursor;
  CHECK(read_rest(kind, source, cursor, 100) == std::vector<std::string>{"timely", "after"});
}

TEST_CASE("S3 compaction: a settled time below the journal landing limit is refused, naming both settings") {
  s3_kind kind;
  const auto journal = write_journal(kind, 10);
  auto alice = kind.open("alice");  // the default landing limit, 55 s
  s3::s3_compact_options options;
  options.settled = 10s;
  const auto f = failure_of([&] { compact(kind, alice.get(), options); });
  CHECK(f.code == errc::store_io_failed);
  CHECK_THAT(f.what, Catch::Contains("s3_compact_options::settled (10000 ms)") &&
                         Catch::Contains("s3_store_options::journal_landing_limit (55000 ms)"));
  CHECK(list_journal(kind).segments.empty());
  options.settled = 55s;  // the limit itself is allowed
  CHECK(compact(kind, alice.get(), options) == 0);
}

TEST_CASE("S3 compaction: a compacting machine whose clock is ahead folds only what is settled by the server's "
          "clock") {
  s3_kind kind;
  // Two records ten minutes old, one 20 s old (its writer may still take
  // it back), and one from a writer whose clock is 50 s ahead (within
  // max_clock_ahead).
  const auto now = ms_now();
  const auto old1 = record(now - 600'000, "w-c", 1);
  const auto old2 = record(now - 599'000, "w-c", 2, now - 600'000);
  const auto recent = record(now - 20'000, "w-a", 1);
  const auto ahead = record(now + 50'000, "w-b", 1);
  put_objects(kind, {{folder + old1, line_of("w-c", "o1")},
                     {folder + old2, line_of("w-c", "o2")},
                     {folder + recent, line_of("w-a", "r")},
                     {folder + ahead, line_of("w-b", "a")}});
  auto alice = kind.open("alice");
  std::size_t removed = 0;
  {
    const clock_skew skew(120s);  // the compacting machine's clock, 2 minutes ahead
    removed = compact(kind, alice.get(), {});
  }
  CHECK(removed == 2);
  const auto listing = list_journal(kind);
  REQUIRE(listing.segments.size() == 1);
  CHECK(listing.segments[0] == sd::segment_name("bob", old1, old2).substr(folder.size()));
  CHECK(listing.records == std::vector<std::string>{recent, ahead});
}

TEST_CASE("S3 compaction: a compaction between an operation's PUTs and its take-back cannot keep the taken-back "
          "record in a segment") {
  s3_kind kind;
  // A newer record in bob's journal, from a writer a little ahead, so that
  // the operation's record is not bob's newest.
  put_objects(kind, {{folder + record(ms_now() + 5000, "w-b", 1), line_of("w-b", "newer")}});
  s3::s3_store_options writing;
  writing.client.max_attempts = 1;
  s3::s3_store alice(kind.io.get_executor(), kind.config, "alice", writing);
  // Carol's PUT fails; just before it, a compaction runs from another
  // machine (its own io_context), as eager as it is let be.
  struct compact_then_fail final : s3::detail::request_fault_injector {
    s3_kind* kind = nullptr;
    failure compaction{};
    bool done = false;
    std::optional<outcome> before(std::string_view method, std::string_view name) override {
      if (done || method != "PUT" || !name.starts_with(sd::journal_folder("carol"))) return std::nullopt;
      done = true;
      asio::io_context other;
      s3::s3_store carol(other.get_executor(), kind->config, "carol");  // the default landing limit
      s3::s3_compact_options options;
      options.settled = 0ms;
      compaction = failure_of([&] {
        complete<std::size_t>(
            other, [&](auto h) { carol.async_compact(options, std::move(h)); },
            [&]() -> const std::string& { return carol.last_error(); });
      });
      return outcome{s3::make_http_error(CURLE_COULDNT_CONNECT), {}};
    }
  } faults;
  faults.kind = &kind;
  s3::detail::request_faults = &faults;
  const auto f = failure_of([&] {
    complete<std::vector<std::string>>(
        kind.io, [&](auto h) { alice.async_publish_event("note", "taken back", {"bob", "carol"}, std::move(h)); },
        [&]() -> const std::string& { return alice.last_error(); });
  });
  s3::detail::request_faults = nullptr;
  CHECK(f.code == errc::store_io_failed);
  REQUIRE(faults.done);
  INFO("compaction: " << faults.compaction.what);
  CHECK_THAT(faults.compaction.what, Catch::Contains("journal_landing_limit"));
  // Nothing holds the record taken back: a reader from the start gets
  // only the newer one.
  CHECK(records_held(kind).size() == 1);
  auto bob = kind.open("bob");
  auto source = bob.get().events();
  std::string cursor;
  CHECK(read_rest(kind, source, cursor, 100) == std::vector<std::string>{"newer"});
}

TEST_CASE("S3 merge: a record listed in a segment's range that the segment does not hold is delivered in its "
          "place, and a leftover it holds once") {
  sd::s3_merge_settings settings;
  settings.folder = folder;
  settings.journal = "s3://bucket/" + folder;
  std::set<std::string> reported;
  std::vector<std::string> names, bodies;
  for (std::uint64_t n = 1; n <= 4; ++n) {
    names.push_back(record(1000 + n, "w", n, n == 1 ? 0 : 999 + n));
    bodies.push_back(line_of("w", "e" + std::to_string(n)));
  }
  // The segment holds 1, 2 and 4; 3 landed in its range after it was
  // written, and 1 is a leftover of the compaction that wrote it.
  const auto segment = sd::segment_name("bob", names[0], names[3]);
  const auto segment_body =
      sd::encode_segment({{names[0], bodies[0]}, {names[1], bodies[1]}, {names[3], bodies[3]}});
  const auto max_events = GENERATE(std::size_t{100}, std::size_t{1});
  INFO("max_events " << max_events);
  std::vector<std::string> got;
  std::string cursor;
  for (int polls = 0; polls < 10; ++polls) {
    sd::s3_merge merge(settings, reported, cursor, max_events);
    REQUIRE(merge.next().what == sd::s3_merge_step::kind::list);
    sd::s3_listing_page page;
    for (const auto& key : {folder + names[0], folder + names[2], segment}) page.keys.push_back(key);
    merge.on_page(page);
    while (merge.next().what == sd::s3_merge_step::kind::fetch) {
      std::vector<std::optional<std::string>> answer;
      for (const auto& key : merge.next().keys) {
        if (key == segment) answer.emplace_back(segment_body);
        if (key == folder + names[0]) answer.emplace_back(bodies[0]);
        if (key == folder + names[2]) answer.emplace_back(bodies[2]);
      }
      merge.on_bodies(std::move(answer));
    }
    REQUIRE(merge.next().what == sd::s3_merge_step::kind::done);
    auto result = merge.finish();
    CHECK(result.problems.empty());
    for (const auto& e : result.events) {
      CHECK(e.name == "note");  // no GAP: nothing is missing
      got.push_back(e.data);
    }
    cursor = result.next_cursor;
    if (result.events.empty()) break;
  }
  CHECK(got == std::vector<std::string>{"e1", "e2", "e3", "e4"});
}

namespace {

/// Answers 404 to every GET of the objects `gone`, as for objects a
/// listing still shows after they were removed.
class listed_but_gone final : public s3::detail::request_fault_injector {
 public:
  explicit listed_but_gone(std::set<std::string> gone) : gone_(std::move(gone)) { s3::detail::request_faults = this; }
  listed_but_gone(const listed_but_gone&) = delete;
  listed_but_gone& operator=(const listed_but_gone&) = delete;
  ~listed_but_gone() override { s3::detail::request_faults = nullptr; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    if (method != "GET" || !gone_.contains(std::string(name))) return std::nullopt;
    outcome missing;
    missing.response.status = 404;
    missing.response.body = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
    return missing;
  }

 private:
  std::set<std::string> gone_;
};

}  // namespace

TEST_CASE("S3 journal source: two objects listed but gone are both passed over, not taken in turns") {
  s3_kind kind;
  const auto now = ms_now() - 1000;
  const auto a = record(now, "w-a", 1);
  const auto b = record(now + 1, "w-b", 1);
  const auto c = record(now + 2, "w-c", 1);
  put_objects(kind, {{folder + a, line_of("w-a", "a")}, {folder + b, line_of("w-b", "b")},
                     {folder + c, line_of("w-c", "c")}});
  listed_but_gone faults({folder + a, folder + b});
  auto bob = kind.open("bob");
  auto source = bob.get().events();
  std::string cursor;
  std::vector<std::string> got;
  int polls = 0;
  for (; polls < 10 && got.empty(); ++polls) {
    const auto result = poll_once(kind, source, cursor, 100);
    for (const auto& e : result.events) got.push_back(e.data);
    cursor = result.next_cursor;
  }
  CHECK(got == std::vector<std::string>{"c"});
  CHECK(polls == 3);  // ends at a, then at b, then passes over both
}

TEST_CASE("S3 journal source: a bad segment member is reported once, however many polls read the segment") {
  s3_kind kind;
  const auto now = ms_now() - 1000;
  std::vector<std::string> names;
  for (std::uint64_t n = 1; n <= 3; ++n) names.push_back(record(now + n, "w", n, n == 1 ? 0 : now + n - 1));
  const auto junk = names[0] + "x";  // no record name, between two that are
  const auto body = sd::encode_segment({{names[0], line_of("w", "e1")},
                                        {junk, "x\n"},
                                        {names[1], line_of("w", "e2")},
                                        {names[2], line_of("w", "e3")}});
  put_objects(kind, {{sd::segment_name("bob", names[0], names[2]), body}});
  auto bob = kind.open("bob");
  auto source = bob.get().events();
  std::string cursor;
  std::vector<std::string> got, problems;
  for (int polls = 0; polls < 10; ++polls) {
    const auto result = poll_once(kind, source, cursor, 1);  // one event a poll: each reads the segment again
    for (const auto& e : result.events) got.push_back(e.data);
    for (const auto& p : result.problems) problems.push_back(p.message);
    cursor = result.next_cursor;
    if (result.events.empty()) break;
  }
  CHECK(got == std::vector<std::string>{"e1", "e2", "e3"});
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("member \"" + junk + "\" is not a journal record"));
}

}  // namespace compaction_test
