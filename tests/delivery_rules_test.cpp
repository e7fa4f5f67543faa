// Tests for storewatch/detail/dedup.hpp and detail/checkpoint_cadence.hpp:
// which events a resumed run drops as delivered already, what position a
// batch hands its consumer, and when a listener saves its checkpoint. No
// io_context, no files: a source is a pair of id lists, a crash is the end
// of a loop.
#include <storewatch/detail/checkpoint_cadence.hpp>
#include <storewatch/detail/dedup.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace delivery_rules_test {

using namespace storewatch;
using namespace storewatch::detail;

namespace {

std::vector<event> events_with_ids(const std::vector<std::string>& ids) {
  std::vector<event> events;
  for (const auto& id : ids) {
    event e;
    e.name = "CREATE";
    e.id = id;
    events.push_back(std::move(e));
  }
  return events;
}

std::vector<std::string> ids_of(const std::vector<event>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

std::vector<std::string> sorted(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

using ids = std::vector<std::string>;

/// Two writers' logs, read as a journal reads them: a cursor holds a
/// position per writer ("<a>,<b>"), and a poll takes writer a's pending
/// events before writer b's, so a batch need not reach b.
struct two_writers {
  ids a, b;

  struct batch {
    std::vector<event> events;
    std::string next_cursor;
  };

  batch poll(const std::string& cursor, std::size_t limit) const {
    std::size_t at_a = 0, at_b = 0;
    if (!cursor.empty()) {
      const auto comma = cursor.find(',');
      at_a = std::stoul(cursor.substr(0, comma));
      at_b = std::stoul(cursor.substr(comma + 1));
    }
    ids taken;
    while (taken.size() < limit && at_a < a.size()) taken.push_back(a[at_a++]);
    while (taken.size() < limit && at_b < b.size()) taken.push_back(b[at_b++]);
    return {events_with_ids(taken), std::to_string(at_a) + "," + std::to_string(at_b)};
  }
};

/// A consumer's durable position, saved after every delivery.
struct position {
  std::string cursor;
  ids delivered_ids;
};

/// Runs a poller's dedup against `source` from `saved` until `crash_after`
/// deliveries (or the source is drained); appends what was delivered to
/// `delivered` and keeps `saved` as a checkpoint saved each event would.
void run(const two_writers& source, position& saved, std::size_t batch_size, std::size_t crash_after,
         ids& delivered) {
  repeat_filter repeats(saved.delivered_ids);
  std::string cursor = saved.cursor;
  for (std::size_t n = 0;;) {
    auto batch = source.poll(cursor, batch_size);
    if (batch.events.empty()) return;
    repeats.drop_repeats(batch.events);
    repeats.close_batch(batch.events, batch.next_cursor);
    for (const auto& e : batch.events) {
      if (n++ == crash_after) return;
      delivered.push_back(e.id);
      note_delivered(e, saved.cursor, saved.delivered_ids);
    }
    cursor = batch.next_cursor;
  }
}

}  // namespace

TEST_CASE("dedup: with nothing delivered before, nothing is dropped and the last event carries the cursor") {
  repeat_filter repeats;
  auto events = events_with_ids({"e1", "e2"});
  CHECK(repeats.drop_repeats(events) == 0);
  repeats.close_batch(events, "c2");
  CHECK(ids_of(events) == ids{"e1", "e2"});
  CHECK(events[0].cursor.empty());
  CHECK(events[1].cursor == "c2");
  CHECK(events[1].delivered_past_cursor.empty());
}

TEST_CASE("dedup: each id delivered before is dropped once, the first time a poll returns it") {
  repeat_filter repeats(ids{"e1", "e3"});
  auto first = events_with_ids({"e1", "e2", "e3", "e4"});
  CHECK(repeats.drop_repeats(first) == 2);
  CHECK(ids_of(first) == ids{"e2", "e4"});
  CHECK(repeats.expected() == 0);
  auto again = events_with_ids({"e1"});
  CHECK(repeats.drop_repeats(again) == 0);  // no longer expected: an event like any other
  CHECK(ids_of(again) == ids{"e1"});
}

TEST_CASE("dedup: repeats a batch did not reach travel with its cursor") {
  repeat_filter repeats(ids{"a1", "b7", "b8"});
  auto events = events_with_ids({"a1", "a2"});
  CHECK(repeats.drop_repeats(events) == 1);
  repeats.close_batch(events, "2,0");
  REQUIRE(ids_of(events) == ids{"a2"});
  CHECK(events[0].cursor == "2,0");
  CHECK(sorted(events[0].delivered_past_cursor) == ids{"b7", "b8"});
}

TEST_CASE("dedup: a batch of repeats only hands on no cursor") {
  repeat_filter repeats(ids{"e1", "e2", "e3"});
  auto events = events_with_ids({"e1", "e2"});
  CHECK(repeats.drop_repeats(events) == 2);
  repeats.close_batch(events, "c2");
  CHECK(events.empty());
  CHECK(repeats.expected() == 1);
}

TEST_CASE("dedup: a consumer's position moves with the cursor a batch carries") {
  std::string cursor = "c0";
  ids delivered;
  auto events = events_with_ids({"e1", "e2", "e3"});
  note_delivered(events[0], cursor, delivered);
  note_delivered(events[1], cursor, delivered);
  CHECK(cursor == "c0");
  CHECK(delivered == ids{"e1", "e2"});
  events[2].cursor = "c3";
  events[2].delivered_past_cursor = {"b9"};
  note_delivered(events[2], cursor, delivered);
  CHECK(cursor == "c3");
  CHECK(delivered == ids{"b9"});
}

TEST_CASE("dedup: across restarts at every point, with writers appending between runs, each event is delivered once") {
  std::mt19937 random(17);
  for (int trial = 0; trial < 200; ++trial) {
    two_writers source;
    position saved;
    ids delivered;
    const std::size_t batch_size = 1 + random() % 4;
    int next_a = 0, next_b = 0;
    for (int restart = 0; restart < 6; ++restart) {
      // Both writers append; then a run delivers some and crashes.
      for (auto n = random() % 4; n > 0; --n) source.a.push_back("a" + std::to_string(next_a++));
      for (auto n = random() % 4; n > 0; --n) source.b.push_back("b" + std::to_string(next_b++));
      run(source, saved, batch_size, random() % 6, delivered);
    }
    run(source, saved, batch_size, static_cast<std::size_t>(-1), delivered);  // the last run drains it
    ids all = source.a;
    all.insert(all.end(), source.b.begin(), source.b.end());
    INFO("trial " << trial << ", batch size " << batch_size);
    REQUIRE(sorted(delivered) == sorted(all));
  }
}

TEST_CASE("checkpoint cadence: a checkpoint with no file yet saves its starting position at start") {
  CHECK(checkpoint_cadence::save_at_start(false));
  CHECK_FALSE(checkpoint_cadence::save_at_start(true));
}

TEST_CASE("checkpoint cadence: an event taken after stop is left undelivered") {
  CHECK(checkpoint_cadence::on_taken(false) == taken_event::deliver);
  CHECK(checkpoint_cadence::on_taken(true) == taken_event::leave_undelivered);
}

TEST_CASE("checkpoint cadence: while events keep coming, a save every so many deliveries") {
  const checkpoint_cadence cadence{3};
  std::size_t unsaved = 0, most_unsaved = 0;
  std::vector<int> saved_after;
  for (int delivered = 1; delivered <= 10; ++delivered) {
    ++unsaved;
    if (cadence.save_after_delivery(unsaved, false)) {
      saved_after.push_back(delivered);
      unsaved = 0;
    }
    most_unsaved = std::max(most_unsaved, unsaved);
  }
  CHECK(saved_after == std::vector<int>{3, 6, 9});
  CHECK(most_unsaved == 2);  // a crash repeats fewer than `every` deliveries
  CHECK(checkpoint_cadence::save_at_end(unsaved));
}

TEST_CASE("checkpoint cadence: caught up, every delivery is saved") {
  const checkpoint_cadence cadence{256};
  CHECK(cadence.save_after_delivery(1, true));
  CHECK_FALSE(cadence.save_after_delivery(1, false));
  CHECK_FALSE(cadence.save_after_delivery(255, false));
  CHECK(cadence.save_after_delivery(256, false));
}

TEST_CASE("checkpoint cadence: an every of 0 or 1 saves each delivery") {
  CHECK(checkpoint_cadence{0}.save_after_delivery(1, false));
  CHECK(checkpoint_cadence{1}.save_after_delivery(1, false));
  CHECK_FALSE(checkpoint_cadence{2}.save_after_delivery(1, false));
}

TEST_CASE("checkpoint cadence: at the end, a save only when something is unsaved") {
  CHECK(checkpoint_cadence::save_at_end(1));
  CHECK_FALSE(checkpoint_cadence::save_at_end(0));
}

}  // namespace delivery_rules_test
