// Multi-process tests of a store's journals (DESIGN.md invariants 2 and 3):
// concurrent writer processes, writers killed with SIGKILL, and a listener
// process killed and restarted from its checkpoint. Compiled once per store
// kind (STOREWATCH_TEST_STORE_KIND, common/store_kinds.hpp): local_store,
// and s3_store against the test S3 server with fewer events (each is an
// HTTP request). The wake-up test and the torn tails are the local store's.
//
// Helper programs (this folder): STOREWATCH_WRITER_PROCESS publishes
// "<name>:<sequence>" events to bob123 and prints each completed sequence
// number; STOREWATCH_LISTENER_PROCESS appends "<id> <data>" per delivered
// event to a file, fsynced before its handler returns.
//
// Every wait is a bounded loop over a condition; nothing sleeps for a fixed
// time.
#include "common/fixture.hpp"
#include "common/store_kinds.hpp"
#include "process.hpp"
#include "programs.hpp"

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace journal_system_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

#ifndef STOREWATCH_TEST_STORE_KIND
#error "define STOREWATCH_TEST_STORE_KIND (local_kind, s3_kind)"
#endif
using kind_type = STOREWATCH_TEST_STORE_KIND;

namespace {

constexpr bool local = std::is_same_v<kind_type, local_kind>;
/// Event counts are divided by this for stores where each event is a request.
constexpr long long scale = local ? 1 : 40;
/// How often the in-process listener polls: an S3 poll lists the journal's
/// last minute, which s3rver takes milliseconds to do.
constexpr auto listener_interval = local ? 10ms : 100ms;

std::unique_ptr<child> start_writer(const std::string& root, const fs::path& work, const std::string& name,
                                    long long count, long long interval_us = 0) {
  return std::make_unique<child>(
      std::vector<std::string>{writer_program, "--root", root, "--name", name, "--count",
                               std::to_string(count), "--interval-us", std::to_string(interval_us)},
      work / (name + ".out"), work / (name + ".err"));
}

/// An in-process listener on bob123's journal that keeps every event and
/// every reported problem.
struct in_process_listener {
  /// Polls every `interval`, and also wakes on journal changes (where the
  /// store has them) unless `wake_ups` is false.
  explicit in_process_listener(kind_type& kind, std::chrono::milliseconds interval = listener_interval, bool wake_ups = true)
      : io(kind.io),
        bob(kind.open("bob123")),
        source(bob.get().events()),
        listener(io.get_executor(), source, options(interval, wake_ups)) {
    listener.add_event_listener([this](const event& e) {
      events.push_back(e);
      arrivals.push_back(std::chrono::steady_clock::now());
    });
    listener.start();
  }

  listener_options options(std::chrono::milliseconds interval, bool wake_ups) {
    listener_options o;
    o.poller.poll_interval = interval;
    o.poller.wake_ups = wake_ups;
    o.on_error = [this](std::error_code, std::string_view message) { errors.emplace_back(message); };
    return o;
  }

  /// Runs until `condition` holds (bounded).
  bool run_until(const std::function<bool()>& condition) {
    const bool held = test::run_until(io, condition, process_limit);
    if (!held) {
      const auto s = listener.stats();
      UNSCOPED_INFO("listener: " << events.size() << " events handled, " << s.polls << " polls, " << s.poll_errors
                                 << " poll errors, " << s.problems << " problems, queue " << s.queue_depth
                                 << ", running " << listener.running() << ", " << errors.size() << " errors"
                                 << (errors.empty() ? std::string() : ", first: " + errors.front()));
    }
    return held;
  }

  /// Runs until the listener has polled `n` more times: whatever was in the
  /// journal before has then been delivered.
  void settle(std::uint64_t n = 3) {
    const auto polls = listener.stats().polls;
    REQUIRE(run_until([&] { return listener.stats().polls >= polls + n; }));
  }

  void stop() {
    listener.stop();
    run_to_idle(io);
  }

  asio::io_context& io;
  test_store<kind_type::store_type> bob;
  decltype(bob.get().events()) source;
  event_listener listener;
  std::vector<event> events;
  std::vector<std::chrono::steady_clock::time_point> arrivals;  // of each event
  std::vector<std::string> errors;
};

/// The events of each writer tag, in delivery order, checking every event's
/// form and that ids are unique.
std::map<std::string, std::vector<long long>> by_writer(const std::vector<event>& events) {
  std::map<std::string, std::vector<long long>> out;
  std::set<std::string> ids;
  for (const auto& e : events) {
    INFO("event " << e.name << " " << e.data << " id " << e.id);
    CHECK(ids.insert(e.id).second);
    CHECK(e.name == "NOTE");
    CHECK(e.actor == "alice222");
    const auto parsed = parse_data(e.data);
    if (!parsed) {
      FAIL_CHECK("not an event of a writer process");
      continue;
    }
    out[parsed->first].push_back(parsed->second);
  }
  return out;
}

bool strictly_increasing(const std::vector<long long>& v) { return std::adjacent_find(v.begin(), v.end(), std::greater_equal<>()) == v.end(); }

std::vector<long long> iota_vector(long long n) {
  std::vector<long long> v(static_cast<std::size_t>(n));
  for (long long i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

}  // namespace

TEST_CASE("4 writer processes x 10,000 events (S3: 250): all arrive once, in per-writer order") {
  constexpr int writers = 4;
  constexpr long long per_writer = 10000 / scale;
  kind_type kind;
  temp_dir dir;  // the processes' output
  const auto root = kind.location();
  in_process_listener bob(kind);
  bob.settle(2);  // listening before anybody wrote to the journal, as a service would

  std::vector<std::unique_ptr<child>> children;
  for (int w = 0; w < writers; ++w) children.push_back(start_writer(root, dir.path(), "writer" + std::to_string(w), per_writer));

  const auto all_exited = [&] {
    bool all = true;
    for (auto& c : children) all = c->poll() && all;
    return all;
  };
  const auto notes = [&] {
    return std::count_if(bob.events.begin(), bob.events.end(), [](const event& e) { return e.name == "NOTE"; });
  };
  const bool done = bob.run_until([&] { return all_exited() && notes() >= writers * per_writer; });
  for (auto& c : children) {
    INFO("writer stderr: " << c->stderr_text());
    CHECK(c->succeeded());
  }
  REQUIRE(done);
  bob.settle();  // anything extra (a duplicate) would arrive now
  bob.stop();

  CHECK(bob.events.size() == writers * per_writer);
  const auto sequences = by_writer(bob.events);
  REQUIRE(sequences.size() == writers);
  for (const auto& [writer, seqs] : sequences) {
    INFO(writer);
    CHECK(strictly_increasing(seqs));
    CHECK(seqs == iota_vector(per_writer));
  }
  CHECK(bob.errors.empty());
  for (const auto& e : bob.errors) UNSCOPED_INFO(e);
}

#ifndef STOREWATCH_TEST_S3  // an S3 journal has no wake-ups: its listeners poll
TEST_CASE("wake-ups: with a 60 s poll interval, each event another process appends arrives within 2 s") {
  constexpr long long count = 10;
  constexpr auto bound = 2s;
  kind_type kind;
  temp_dir dir;  // the processes' output
  const auto root = kind.location();
  in_process_listener bob(kind, 60s);
  // The first poll, and the one right after the watches are set: from here
  // on the next poll is a minute away unless a wake-up comes.
  bob.settle(2);
  const auto polls_before = bob.listener.stats().polls;

  // 300 ms apart, so each event is its own wake-up.
  auto writer = start_writer(root, dir.path(), "writer", count, 300000);
  const auto out = dir.path() / "writer.out";
  // When the test first saw each publish complete (the writer prints its
  // sequence number after publish_event returned).
  std::vector<std::chrono::steady_clock::time_point> durable;
  const bool done = bob.run_until([&] {
    for (auto n = count_lines(out); durable.size() < n;) durable.push_back(std::chrono::steady_clock::now());
    return writer->poll() && bob.events.size() >= static_cast<std::size_t>(count);
  });
  INFO("writer stderr: " << writer->stderr_text());
  CHECK(writer->succeeded());
  REQUIRE(done);
  REQUIRE(durable.size() == static_cast<std::size_t>(count));
  const auto sequences = by_writer(bob.events);
  REQUIRE(sequences.at("writer") == iota_vector(count));
  for (std::size_t i = 0; i < durable.size(); ++i) {
    const auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(bob.arrivals[i] - durable[i]);
    INFO("event " << i << " arrived " << latency.count() << " ms after its publish completed");
    CHECK(latency < bound);
  }
  // Woken, not polling: about one poll per wake-up, never a timer storm.
  CHECK(bob.listener.stats().polls - polls_before <= 4 * count);
  CHECK(bob.errors.empty());
  bob.stop();
}
#endif

TEST_CASE("forced polling (wake_ups off): 2 writer processes x 2,000 events (S3: 50) all arrive once, in order") {
  constexpr long long per_writer = 2000 / scale;
  kind_type kind;
  temp_dir dir;  // the processes' output
  const auto root = kind.location();
  in_process_listener bob(kind, local ? 20ms : listener_interval, false);
  bob.settle(2);
  auto first = start_writer(root, dir.path(), "first", per_writer);
  auto second = start_writer(root, dir.path(), "second", per_writer);
  const bool done = bob.run_until(
      [&] { return first->poll() && second->poll() && bob.events.size() >= 2 * static_cast<std::size_t>(per_writer); });
  CHECK(first->succeeded());
  CHECK(second->succeeded());
  REQUIRE(done);
  bob.settle();  // a duplicate would arrive now
  bob.stop();
  CHECK(bob.events.size() == 2 * static_cast<std::size_t>(per_writer));
  const auto sequences = by_writer(bob.events);
  CHECK(sequences.at("first") == iota_vector(per_writer));
  CHECK(sequences.at("second") == iota_vector(per_writer));
  CHECK(bob.errors.empty());
}

TEST_CASE("writers killed with SIGKILL mid-stream: no torn event, no completed publish lost") {
  constexpr int kills = 5;
  constexpr long long final_count = 500 / scale;
  kind_type kind;
  temp_dir dir;  // the processes' output
  const auto root = kind.location();
  in_process_listener bob(kind);
  bob.settle(2);  // listening before anybody wrote to the journal
  std::mt19937 random{std::random_device{}()};

  std::vector<std::string> killed;
  for (int k = 0; k < kills; ++k) {
    const auto name = "killed" + std::to_string(k);
    // Far more than it can publish before the kill.
    auto writer = start_writer(root, dir.path(), name, 1000000);
    const auto threshold = std::uniform_int_distribution<std::size_t>(1, 400 / scale + 1)(random);
    const auto out = dir.path() / (name + ".out");
    // Kill after a random number of completed publishes; the listener keeps
    // running meanwhile.
    REQUIRE(bob.run_until([&] { return count_lines(out) >= threshold || writer->poll(); }));
    if (writer->exited()) FAIL("writer exited before it was killed: " << writer->stderr_text());
    writer->kill(SIGKILL);
    writer->wait();
    CHECK(writer->killed_by(SIGKILL));
    killed.push_back(name);

#ifndef STOREWATCH_TEST_S3  // an object PUT is atomic: there are no torn tails in an S3 journal
    // What a kill in the middle of a write would leave: half a record at the
    // end of the dead writer's newest segment. It must never be delivered,
    // nor reported (until the slot's next holder voids it, the reader cannot
    // tell it from a record being written), nor hold up other writers.
    const auto journal = kind.dir.path() / "journals" / "bob123";
    // The dead writer's slot is the one whose lock nobody holds now (the
    // other writers are alive and keep theirs).
    std::optional<fs::path> writer_dir;
    detail::unique_fd slot_lock;
    for (const auto& w : detail::list_writers(journal)) {
      auto lock = detail::try_lock_file(journal / w / "lock", errc::store_io_failed, "test");
      if (lock && !writer_dir) {
        writer_dir = journal / w;
        slot_lock = std::move(lock);
      }
    }
    REQUIRE(writer_dir);
    const auto segments = detail::list_segments(*writer_dir);
    REQUIRE_FALSE(segments.empty());
    event torn = make_event("NOTE", name + ":torn", "torn-" + std::to_string(k));
    torn.actor = "alice222";
    const auto line = detail::encode_record(torn);
    std::ofstream(*writer_dir / detail::segment_name(segments.back()), std::ios::binary | std::ios::app)
        << line.substr(0, line.size() / 2);
#endif
  }

  auto last = start_writer(root, dir.path(), "final", final_count);
  const auto final_delivered = [&] {
    return std::count_if(bob.events.begin(), bob.events.end(),
                         [](const event& e) { return e.data.starts_with("final:"); });
  };
  REQUIRE(bob.run_until([&] { return last->poll() && final_delivered() >= final_count; }));
  INFO("final writer stderr: " << last->stderr_text());
  CHECK(last->succeeded());
  bob.settle();
  bob.stop();

  for (const auto& e : bob.events) CHECK_FALSE(e.data.ends_with(":torn"));
  const auto sequences = by_writer(bob.events);
  CHECK(sequences.at("final") == iota_vector(final_count));
  for (const auto& name : killed) {
    INFO(name);
    const auto printed = printed_sequences(dir.path() / (name + ".out"));
    REQUIRE_FALSE(printed.empty());
    REQUIRE(sequences.count(name) == 1);
    const auto& delivered = sequences.at(name);
    // Nothing lost and nothing invented: every completed publish arrived, in
    // order; at most one more, the one in progress at the kill (durable
    // before its sequence was printed).
    CHECK(delivered.size() >= printed.size());
    CHECK(delivered.size() <= printed.size() + 1);
    CHECK(delivered == iota_vector(static_cast<long long>(delivered.size())));
    CHECK(printed == iota_vector(static_cast<long long>(printed.size())));
  }
  CHECK(bob.errors.empty());
  for (const auto& e : bob.errors) UNSCOPED_INFO(e);
}

TEST_CASE("listener process SIGKILLed and restarted: nothing lost, repeats bounded, none after SIGTERM") {
  // The listener saves its checkpoint at the latest after every
  // `checkpoint_every` deliveries (and whenever it has caught up, and on
  // stop). A handler's output line is fsynced before the listener records the
  // event, so at a SIGKILL at most `checkpoint_every` delivered events are
  // not in the saved checkpoint: the 16th is delivered, and the kill comes
  // before its save completes. A restart delivers exactly those again (the
  // checkpoint lists the ids delivered after its cursor, so nothing saved
  // repeats). Hence: at most 16 repeats per restart.
  constexpr std::size_t checkpoint_every = 16;
  constexpr int kill_rounds = 5;
  constexpr long long count = local ? 4000 : 1000;
  constexpr long long interval_us = local ? 500 : 3000;  // the writer still writes during the kills
  kind_type kind;
  temp_dir dir;  // the processes' output
  const auto root = kind.location();
  const auto checkpoint_file = dir.path() / "bob.checkpoint";
  std::mt19937 random{std::random_device{}()};

  auto writer = start_writer(root, dir.path(), "writer", count, interval_us);

  struct line {
    std::string id;
    std::string data;
  };
  std::vector<std::vector<line>> rounds;
  const auto parse_output = [](const fs::path& file) {
    std::vector<line> out;
    for (const auto& text : complete_lines(file)) {
      const auto space = text.find(' ');
      REQUIRE(space != std::string::npos);
      out.push_back({text.substr(0, space), text.substr(space + 1)});
    }
    return out;
  };
  std::set<std::string> seen_ids;  // over all earlier rounds
  std::map<std::string, std::string> id_of_data;
  std::set<std::string> union_data;

  const auto start_listener = [&](int round) {
    const auto name = "listener" + std::to_string(round);
    return std::make_unique<child>(
        std::vector<std::string>{listener_program, "--root", root, "--checkpoint", checkpoint_file.string(),
                                 "--output", (dir.path() / (name + ".lines")).string(), "--checkpoint-every",
                                 std::to_string(checkpoint_every), "--poll-ms", local ? "10" : "100"},
        dir.path() / (name + ".out"), dir.path() / (name + ".err"));
  };
  // Checks one round's output against all earlier ones; returns its repeats.
  const auto take_round = [&](int round) {
    const auto lines = parse_output(dir.path() / ("listener" + std::to_string(round) + ".lines"));
    std::size_t repeats = 0;
    bool new_seen = false;
    std::set<std::string> ids_this_round;
    for (const auto& [id, data] : lines) {
      INFO("round " << round << ": " << id << " " << data);
      CHECK(ids_this_round.insert(id).second);  // never twice within a run
      REQUIRE(parse_data(data));
      const auto [known, inserted] = id_of_data.emplace(data, id);
      CHECK(known->second == id);  // a repeat carries the same id
      if (seen_ids.count(id) > 0) {
        ++repeats;
        CHECK_FALSE(new_seen);  // repeats come first: they are what follows the checkpoint
      } else {
        new_seen = true;
      }
      union_data.insert(data);
    }
    for (const auto& l : lines) seen_ids.insert(l.id);
    rounds.push_back(lines);
    return repeats;
  };
  const auto writer_data_complete = [&](long long n) {
    for (long long i = 0; i < n; ++i) {
      if (union_data.count("writer:" + std::to_string(i)) == 0) return false;
    }
    return true;
  };

  int round = 0;
  for (; round < kill_rounds; ++round) {
    auto listener = start_listener(round);
    const auto threshold = std::uniform_int_distribution<std::size_t>(20, 200)(random);
    const auto lines_file = dir.path() / ("listener" + std::to_string(round) + ".lines");
    // Kill once it has delivered a random number of events (or, if the
    // writer is already done, once everything is there).
    REQUIRE(wait_for([&] {
      writer->poll();
      if (count_lines(lines_file) >= threshold) return true;
      if (!writer->exited()) return false;
      auto copy = union_data;
      for (const auto& l : parse_output(lines_file)) copy.insert(l.data);
      return copy.size() >= static_cast<std::size_t>(count);
    }));
    if (listener->poll()) FAIL("listener exited before it was killed: " << listener->stderr_text());
    listener->kill(SIGKILL);
    listener->wait();
    CHECK(listener->killed_by(SIGKILL));
    const auto repeats = take_round(round);
    INFO("round " << round << " (SIGKILL) listener stderr: " << listener->stderr_text());
    CHECK(repeats <= checkpoint_every);
    CHECK(listener->stderr_text().find("storewatch:") == std::string::npos);  // no problem was reported
  }
  const bool writer_ran_during_kills = !writer->poll();

  // A listener stopped with SIGTERM once everything is delivered...
  {
    auto listener = start_listener(round);
    REQUIRE(wait_for([&] {
      const auto lines = parse_output(dir.path() / ("listener" + std::to_string(round) + ".lines"));
      auto copy = union_data;
      for (const auto& l : lines) copy.insert(l.data);
      return writer->poll() && copy.size() >= static_cast<std::size_t>(count);
    }));
    listener->kill(SIGTERM);
    listener->wait();
    INFO("SIGTERM round listener stderr: " << listener->stderr_text());
    CHECK(listener->succeeded());
    CHECK(listener->stderr_text().find("storewatch:") == std::string::npos);
    CHECK(take_round(round) <= checkpoint_every);  // repeats from the last SIGKILL
    ++round;
  }
  CHECK(writer->succeeded());
  CHECK(writer_data_complete(count));
  CHECK(union_data.size() == static_cast<std::size_t>(count));

  // ...and restarted repeats nothing: it delivers only what is new.
  {
    auto listener = start_listener(round);
    constexpr long long more = 10;
    auto late_writer = start_writer(root, dir.path(), "late", more);
    const auto lines_file = dir.path() / ("listener" + std::to_string(round) + ".lines");
    REQUIRE(wait_for([&] { return late_writer->poll() && count_lines(lines_file) >= static_cast<std::size_t>(more); }));
    CHECK(late_writer->succeeded());
    listener->kill(SIGTERM);
    listener->wait();
    INFO("last listener stderr: " << listener->stderr_text());
    CHECK(listener->succeeded());
    CHECK(listener->stderr_text().find("storewatch:") == std::string::npos);
    const auto repeats = take_round(round);
    CHECK(repeats == 0);
    std::vector<std::string> got;
    for (const auto& l : rounds.back()) got.push_back(l.data);
    std::vector<std::string> expected;
    for (long long i = 0; i < more; ++i) expected.push_back("late:" + std::to_string(i));
    CHECK(got == expected);
  }
  // The kills did happen while the writer was still publishing (not a
  // requirement of the library, but of this test's meaning).
  CHECK(writer_ran_during_kills);
}

}  // namespace journal_system_test
