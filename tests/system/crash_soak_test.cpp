// Crash soak (DESIGN.md invariants 2 and 3 under repeated crashes): three
// writer processes and one listener process with a checkpoint share a store.
// Each round SIGKILLs one of them, chosen at random, at a random moment, and
// starts it again (a writer as a new writer process; the listener from its
// checkpoint, at once or after an outage) while the others go on. At the end
// the writers are stopped cleanly, the listener is given the time to deliver
// everything and is stopped with SIGTERM, and then:
//   - every completed publish (printed by its writer) was delivered;
//   - nothing else was, but the one publish a killed writer had under way;
//   - an event has one id, an id one event: after dedup by id, nothing twice;
//   - no run of the listener delivered an id twice;
//   - an event delivered again (a repeat) was last delivered by a run that
//     was SIGKILLed, among its last `checkpoint_every` deliveries (the ones
//     its checkpoint may not have saved), so a crash causes at most
//     `checkpoint_every` repeats; none follow a SIGTERM;
//   - each writer's events arrive in its order, within each run and across
//     runs once repeats are dropped.
//
// STOREWATCH_SOAK_ROUNDS sets the number of rounds (default_rounds below: a
// quarter of a second each, with g++ Debug or under ASan alike);
// STOREWATCH_SOAK_SEED the seed of the random choices (printed at the start;
// it repeats the choices and delays, not the processes' timing);
// STOREWATCH_SOAK_DIR a folder (new or empty) to work in and keep.
// scripts/soak.sh runs a long soak. Every wait is bounded and waits for a
// condition; the only timed waits are the random delays the soak is about
// (before a kill, and a listener's outage).
#include "common/fixture.hpp"
#include "common/sizing.hpp"
#include "process.hpp"
#include "programs.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace crash_soak_test {

using namespace storewatch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// About 30-40 s, with g++ Debug or under ASan, on a busy 2-core machine.
constexpr std::uint64_t default_rounds = 120;
constexpr std::size_t writer_count = 3;
/// The listener saves its checkpoint after this many deliveries at most.
constexpr std::size_t checkpoint_every = 16;
/// A kill comes at a uniformly random time up to this long after the round
/// began...
constexpr auto max_kill_delay = 200ms;
/// ...or, for half the listener's kills, once it has delivered a random
/// number of further events, up to this many (or after `max_kill_wait`
/// when it has little to do): so that many kills fall in the middle of a
/// catch-up, between checkpoint saves and across poll batches.
constexpr std::size_t max_kill_deliveries = 400;
constexpr auto max_kill_wait = 1s;
/// Each listener run polls batches of one of these sizes (256: the
/// library's default), chosen at random: the checkpoint's cursor moves at
/// the end of each batch.
constexpr std::array<std::size_t, 3> batch_sizes{10, 50, 256};
/// A killed listener is restarted at once, or (one time in four) after an
/// outage of up to this long, while the writers go on: it then resumes
/// behind a backlog of hundreds of events (more than one poll's batch).
constexpr auto max_listener_outage = 1500ms;
/// Each writer pauses this long between publishes (a publish takes a few ms:
/// it fsyncs), so the listener, killed half the time, keeps up.
constexpr long long writer_interval_us = 4000;
/// Small segments, so that kills also fall on segment rotations.
constexpr long long segment_bytes = 16384;
/// A round begins only when at most this many completed events wait for the
/// listener, so the final catch-up stays short.
constexpr std::size_t max_backlog = 1000;

/// How a helper process ended.
enum class ending { running, killed, stopped };

struct writer_run {
  std::string name;
  bool finite = false;  // publishes its count and exits by itself
  std::unique_ptr<child> process;
  std::unique_ptr<line_reader> out;
  long long printed = 0;  // its completed publishes: sequences 0 .. printed-1
  ending end = ending::running;
};

struct delivery {
  std::string id;
  std::string data;
};

struct listener_run {
  std::string name;
  std::unique_ptr<child> process;
  std::unique_ptr<line_reader> lines;
  std::vector<delivery> deliveries;
  std::vector<std::string> bad_lines;
  ending end = ending::running;
};

/// The store, the helper processes and what they have said so far.
class soak {
 public:
  /// A store in `work` (made now: a store exists before its listeners
  /// start), and the helper processes' output files.
  explicit soak(fs::path work) : work_(std::move(work)), root_(work_ / "store") { fs::create_directories(root_); }

  writer_run& start_writer(const std::string& name, long long count, bool finite) {
    auto run = std::make_unique<writer_run>();
    run->name = name;
    run->finite = finite;
    run->out = std::make_unique<line_reader>(work_ / (name + ".out"));
    run->process = std::make_unique<child>(
        std::vector<std::string>{writer_program, "--root", root_.string(), "--name", name, "--count",
                                 std::to_string(count), "--interval-us", std::to_string(writer_interval_us),
                                 "--segment-bytes", std::to_string(segment_bytes)},
        run->out->file(), work_ / (name + ".err"));
    writers_.push_back(std::move(run));
    return *writers_.back();
  }

  listener_run& start_listener(std::size_t batch_size) {
    REQUIRE((listeners_.empty() || listeners_.back()->end != ending::running));
    auto run = std::make_unique<listener_run>();
    run->name = "listener" + std::to_string(listeners_.size()) + " (batch " + std::to_string(batch_size) + ")";
    const auto file = "listener" + std::to_string(listeners_.size());
    run->lines = std::make_unique<line_reader>(work_ / (file + ".lines"));
    run->process = std::make_unique<child>(
        std::vector<std::string>{listener_program, "--root", root_.string(), "--checkpoint",
                                 (work_ / "bob.checkpoint").string(), "--output", run->lines->file().string(),
                                 "--checkpoint-every", std::to_string(checkpoint_every), "--poll-ms", "10",
                                 "--fsync-output", "0", "--batch-size", std::to_string(batch_size)},
        work_ / (file + ".out"), work_ / (file + ".err"));
    listeners_.push_back(std::move(run));
    return *listeners_.back();
  }

  listener_run& listener() { return *listeners_.back(); }

  /// Reads what the running processes wrote since the last look; fails the
  /// test if one of them exited unbidden.
  void observe() {
    for (auto& w : writers_) {
      if (w->end != ending::running) continue;
      const bool exited = w->process->poll();
      take(*w);
      if (!exited) continue;
      INFO("writer " << w->name << " stderr: " << w->process->stderr_text());
      if (!w->finite) FAIL("writer " << w->name << " exited by itself: " << w->process->status_text());
      REQUIRE(w->process->succeeded());
      w->end = ending::stopped;
    }
    auto& l = listener();
    if (l.end != ending::running) return;
    const bool exited = l.process->poll();
    take(l);
    if (exited) {
      FAIL(l.name << " exited by itself: " << l.process->status_text() << "; stderr: " << l.process->stderr_text());
    }
  }

  /// Observes until `condition` holds; fails after `limit`, saying `what`
  /// was awaited.
  template <class Condition>
  void watch_until(Condition condition, const std::string& what,
                   std::chrono::steady_clock::duration limit = process_limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      observe();
      if (condition()) return;
      if (std::chrono::steady_clock::now() > deadline) {
        FAIL("waited " << std::chrono::duration_cast<std::chrono::seconds>(limit).count() << " s for " << what << "; "
                       << backlog() << " completed events not delivered yet (first: "
                       << (pending_.empty() ? std::string("none") : *pending_.begin()) << ")");
      }
      std::this_thread::sleep_for(2ms);
    }
  }

  /// Ends a running process with `signal` and reads the rest of its output.
  void end(writer_run& w, int signal) {
    REQUIRE(w.end == ending::running);
    w.process->kill(signal);
    w.process->wait();
    take(w);
    INFO("writer " << w.name << " stderr: " << w.process->stderr_text());
    if (signal == SIGKILL) {
      CHECK(w.process->killed_by(SIGKILL));
      w.end = ending::killed;
    } else {
      CHECK(w.process->succeeded());
      w.end = ending::stopped;
    }
  }

  void end_listener(int signal) {
    auto& l = listener();
    REQUIRE(l.end == ending::running);
    l.process->kill(signal);
    l.process->wait();
    take(l);
    INFO(l.name << " stderr: " << l.process->stderr_text());
    if (signal == SIGKILL) {
      CHECK(l.process->killed_by(SIGKILL));
      l.end = ending::killed;
    } else {
      CHECK(l.process->succeeded());
      l.end = ending::stopped;
    }
  }

  /// Completed events the listener has not delivered yet.
  std::size_t backlog() const { return pending_.size(); }
  bool delivered(const std::string& data) const { return delivered_.count(data) > 0; }

  const std::vector<std::unique_ptr<writer_run>>& writers() const { return writers_; }
  const std::vector<std::unique_ptr<listener_run>>& listeners() const { return listeners_; }
  /// The data of every completed publish.
  const std::unordered_set<std::string>& completed() const { return completed_; }

 private:
  void take(writer_run& w) {
    for (const auto& line : w.out->take()) {
      INFO("writer " << w.name << " printed \"" << line << "\"");
      REQUIRE(line == std::to_string(w.printed));  // it prints its sequences in order
      ++w.printed;
      auto data = w.name + ":" + line;
      if (!delivered(data)) pending_.insert(data);
      completed_.insert(std::move(data));
    }
  }

  void take(listener_run& l) {
    for (auto& line : l.lines->take()) {
      const auto space = line.find(' ');
      if (space == std::string::npos) {
        l.bad_lines.push_back(std::move(line));
        continue;
      }
      delivery d{line.substr(0, space), line.substr(space + 1)};
      pending_.erase(d.data);
      delivered_.insert(d.data);
      l.deliveries.push_back(std::move(d));
    }
  }

  fs::path work_;
  fs::path root_;
  std::vector<std::unique_ptr<writer_run>> writers_;
  std::vector<std::unique_ptr<listener_run>> listeners_;
  std::unordered_set<std::string> completed_;
  std::unordered_set<std::string> delivered_;  // data of the events delivered so far
  std::set<std::string> pending_;              // completed, not delivered yet
};

/// What the deliveries of all listener runs show, checked against the
/// writers' completed publishes.
struct verdict {
  std::size_t deliveries = 0;
  std::size_t unique_ids = 0;
  std::size_t lost = 0;                    // completed, never delivered
  std::size_t invented = 0;                // delivered, never published (nor under way at a kill)
  std::size_t in_flight_delivered = 0;     // the publish under way at a writer's kill, delivered
  std::size_t duplicates_after_dedup = 0;  // an event delivered under a second id
  std::size_t id_reused = 0;               // an id delivered with other data
  std::size_t twice_in_a_run = 0;          // an id delivered twice by one run
  std::size_t repeats = 0;                 // deliveries of an id an earlier run delivered
  std::size_t unexplained_repeats = 0;     // ... that its checkpoint had saved
  std::size_t max_repeats_per_crash = 0;
  std::size_t out_of_order = 0;  // a writer's event after a later one of the same writer
  std::size_t malformed = 0;     // a line or data not of a writer process
  std::vector<std::string> examples;

  void example(std::string what) {
    if (examples.size() < 20) examples.push_back(std::move(what));
  }
};

verdict judge(const soak& s) {
  verdict v;
  std::map<std::string, const writer_run*> writer_of;
  for (const auto& w : s.writers()) writer_of[w->name] = w.get();
  std::unordered_map<std::string, std::string> data_of_id;
  std::unordered_map<std::string, std::string> id_of_data;
  struct place {
    std::size_t run;
    std::size_t position;
  };
  std::unordered_map<std::string, place> last_delivery;  // by id
  std::map<std::string, long long> last_new_sequence;    // by writer, over first deliveries
  std::vector<std::size_t> repeats_caused(s.listeners().size());
  // Repeats the checkpoint does not explain, by (run, run that delivered them
  // before): how many, and where in the earlier run.
  struct span {
    std::size_t count = 0;
    std::size_t first = 0;
    std::size_t last = 0;
  };
  std::map<std::pair<std::size_t, std::size_t>, span> unexplained;

  const auto& runs = s.listeners();
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const auto& run = *runs[r];
    v.malformed += run.bad_lines.size();
    for (const auto& line : run.bad_lines) v.example(run.name + ": malformed line \"" + line + "\"");
    std::unordered_set<std::string> ids_in_run;
    std::map<std::string, long long> last_sequence_in_run;
    for (std::size_t p = 0; p < run.deliveries.size(); ++p) {
      const auto& [id, data] = run.deliveries[p];
      const auto where = run.name + " delivery " + std::to_string(p) + " (" + id + " " + data + ")";
      ++v.deliveries;
      const auto parsed = parse_data(data);
      if (!parsed || writer_of.count(parsed->first) == 0) {
        ++v.malformed;
        v.example(where + ": not an event of a writer process");
        continue;
      }
      const auto& [writer, sequence] = *parsed;
      if (!ids_in_run.insert(id).second) {
        ++v.twice_in_a_run;
        v.example(where + ": delivered twice by this run");
        continue;
      }
      if (const auto [known, fresh] = data_of_id.emplace(id, data); !fresh && known->second != data) {
        ++v.id_reused;
        v.example(where + ": the id was delivered before with " + known->second);
      }
      if (const auto [known, fresh] = id_of_data.emplace(data, id); !fresh && known->second != id) {
        ++v.duplicates_after_dedup;
        v.example(where + ": the event was delivered before as " + known->second);
      }
      if (const auto last = last_sequence_in_run.find(writer);
          last != last_sequence_in_run.end() && sequence <= last->second) {
        ++v.out_of_order;
        v.example(where + ": after " + writer + ":" + std::to_string(last->second) + " in the same run");
      }
      last_sequence_in_run[writer] = sequence;

      if (const auto seen = last_delivery.find(id); seen != last_delivery.end()) {
        ++v.repeats;
        const auto& before = *runs[seen->second.run];
        ++repeats_caused[seen->second.run];
        // Unsaved at the crash: one of the last `checkpoint_every` deliveries
        // of a SIGKILLed run.
        if (before.end != ending::killed || seen->second.position + checkpoint_every < before.deliveries.size()) {
          ++v.unexplained_repeats;
          auto& u = unexplained[{r, seen->second.run}];
          if (u.count++ == 0) u.first = seen->second.position;
          u.first = std::min(u.first, seen->second.position);
          u.last = std::max(u.last, seen->second.position);
        }
        seen->second = {r, p};
        continue;
      }
      last_delivery.emplace(id, place{r, p});
      if (const auto last = last_new_sequence.find(writer);
          last != last_new_sequence.end() && sequence <= last->second) {
        ++v.out_of_order;
        v.example(where + ": first delivered after " + writer + ":" + std::to_string(last->second));
      }
      last_new_sequence[writer] = sequence;
    }
  }
  for (const auto& [runs_involved, u] : unexplained) {
    const auto& [r, j] = runs_involved;
    std::string between;
    if (j + 1 < r) {
      between = ", after " + runs[j + 1]->name + (j + 2 < r ? ".." + runs[r - 1]->name : std::string()) +
                " had run in between";
    }
    v.example(runs[r]->name + " delivered again " + std::to_string(u.count) + " events that " + runs[j]->name +
              " had delivered (its deliveries " + std::to_string(u.first) + ".." + std::to_string(u.last) + " of " +
              std::to_string(runs[j]->deliveries.size()) + ") and " +
              (runs[j]->end == ending::killed ? "its checkpoint had saved" : "saved when stopped by SIGTERM") +
              between);
  }
  v.unique_ids = last_delivery.size();
  v.max_repeats_per_crash =
      repeats_caused.empty() ? 0 : *std::max_element(repeats_caused.begin(), repeats_caused.end());

  std::vector<std::string> lost;
  for (const auto& data : s.completed()) {
    if (id_of_data.count(data) == 0) lost.push_back(data);
  }
  std::sort(lost.begin(), lost.end());
  v.lost = lost.size();
  for (const auto& data : lost) v.example("lost: " + data);

  for (const auto& [data, id] : id_of_data) {
    if (s.completed().count(data) > 0) continue;
    const auto parsed = parse_data(data);
    const auto& w = *writer_of.at(parsed->first);
    if (w.end == ending::killed && parsed->second == w.printed) {
      ++v.in_flight_delivered;  // published but killed before it could say so
    } else {
      ++v.invented;
      v.example("delivered but never completed: " + data + " (id " + id + ")");
    }
  }
  return v;
}

}  // namespace

TEST_CASE(
    "crash soak: N rounds of SIGKILL to a random writer or the listener at a random moment, then every completed "
    "event delivered, none twice after dedup") {
  const auto rounds = env_number("STOREWATCH_SOAK_ROUNDS", default_rounds);
  const auto seed = static_cast<std::uint32_t>(env_number("STOREWATCH_SOAK_SEED", std::random_device{}()));
  std::cout << "crash soak: seed=" << seed << " rounds=" << rounds << " (STOREWATCH_SOAK_SEED=" << seed
            << " repeats the choices)" << std::endl;
  INFO("seed " << seed << ", " << rounds << " rounds");
  const auto started = std::chrono::steady_clock::now();
  std::mt19937 random(seed);

  // STOREWATCH_SOAK_DIR: work there, and keep the store and every process's
  // output for a post-mortem; by default a temporary folder, removed.
  temp_dir dir;
  fs::path work = dir.path();
  if (const char* keep = std::getenv("STOREWATCH_SOAK_DIR"); keep != nullptr && *keep != '\0') {
    work = keep;
    REQUIRE((!fs::exists(work) || fs::is_empty(work)));
    fs::create_directories(work);
  }
  std::cout << "crash soak: working in " << work.string() << std::endl;
  soak s(work);
  std::array<writer_run*, writer_count> writers{};
  std::array<int, writer_count> incarnations{};
  const auto start_writer = [&](std::size_t slot) {
    const auto name = "w" + std::to_string(slot) + "-" + std::to_string(incarnations[slot]++);
    writers[slot] = &s.start_writer(name, 1000000000, false);
  };
  std::uniform_int_distribution<std::size_t> pick_batch(0, batch_sizes.size() - 1);
  const auto start_listener = [&] { s.start_listener(batch_sizes.at(pick_batch(random))); };
  start_listener();
  for (std::size_t slot = 0; slot < writer_count; ++slot) start_writer(slot);

  std::uint64_t writer_kills = 0;
  std::uint64_t listener_kills = 0;
  std::bernoulli_distribution pick_listener(0.5);
  std::uniform_int_distribution<std::size_t> pick_writer(0, writer_count - 1);
  std::uniform_int_distribution<long long> pick_delay_us(
      0, std::chrono::duration_cast<std::chrono::microseconds>(max_kill_delay).count());
  std::bernoulli_distribution pick_by_deliveries(0.5);
  std::uniform_int_distribution<std::size_t> pick_deliveries(1, max_kill_deliveries);
  std::bernoulli_distribution pick_outage(0.25);
  std::uniform_int_distribution<long long> pick_outage_us(
      0, std::chrono::duration_cast<std::chrono::microseconds>(max_listener_outage).count());
  std::uint64_t outages = 0;
  std::uint64_t kills_while_delivering = 0;  // listener kills after a number of deliveries
  for (std::uint64_t round = 0; round < rounds; ++round) {
    s.watch_until([&] { return s.backlog() <= max_backlog; },
                  "the listener to come within " + std::to_string(max_backlog) + " events of the writers");
    const bool listener_victim = pick_listener(random);
    const auto slot = pick_writer(random);
    const auto delay = std::chrono::microseconds(pick_delay_us(random));
    const bool by_deliveries = pick_by_deliveries(random);
    const auto deliveries = pick_deliveries(random);
    const auto outage = pick_outage(random) ? std::chrono::microseconds(pick_outage_us(random)) : 0us;
    if (listener_victim && by_deliveries) {
      const auto target = s.listener().deliveries.size() + deliveries;
      const auto give_up = std::chrono::steady_clock::now() + max_kill_wait;
      s.watch_until(
          [&] { return s.listener().deliveries.size() >= target || std::chrono::steady_clock::now() >= give_up; },
          "the moment of the kill");
      if (s.listener().deliveries.size() >= target) ++kills_while_delivering;
    } else {
      const auto kill_at = std::chrono::steady_clock::now() + delay;
      s.watch_until([&] { return std::chrono::steady_clock::now() >= kill_at; }, "the moment of the kill");
    }
    if (listener_victim) {
      s.end_listener(SIGKILL);
      ++listener_kills;
      if (outage > 0us) {
        ++outages;
        const auto restart_at = std::chrono::steady_clock::now() + outage;
        s.watch_until([&] { return std::chrono::steady_clock::now() >= restart_at; }, "the end of the outage");
      }
      start_listener();
    } else {
      s.end(*writers[slot], SIGKILL);
      ++writer_kills;
      start_writer(slot);
    }
  }

  // Stop the writers cleanly, once each is in its publish loop (a SIGTERM
  // before its handler is set would kill it).
  s.watch_until(
      [&] { return std::all_of(writers.begin(), writers.end(), [](const writer_run* w) { return w->printed > 0; }); },
      "every writer's first publish");
  for (auto* w : writers) s.end(*w, SIGTERM);

  // One more writer's events, delivered by the running listener: then it is
  // in its event loop, where SIGTERM stops it cleanly.
  constexpr long long last_count = 20;
  s.start_writer("last", last_count, true);
  s.watch_until(
      [&] {
        const auto& runs = s.listeners();
        const auto& d = runs.back()->deliveries;
        const bool has_last = std::any_of(
            d.begin(), d.end(), [](const delivery& x) { return x.data == "last:" + std::to_string(last_count - 1); });
        return has_last && s.backlog() == 0 && std::all_of(s.writers().begin(), s.writers().end(), [](const auto& w) {
                 return w->end != ending::running;
               });
      },
      "the listener to deliver every completed event");
  s.end_listener(SIGTERM);

  // Restarted after a clean stop, the listener repeats nothing: it delivers
  // only what is new.
  start_listener();
  constexpr long long after_count = 5;
  s.start_writer("after", after_count, true);
  s.watch_until(
      [&] {
        return s.backlog() == 0 && s.delivered("after:" + std::to_string(after_count - 1)) &&
               s.writers().back()->end != ending::running;
      },
      "the restarted listener to deliver the events published after the SIGTERM");
  s.end_listener(SIGTERM);

  for (const auto& w : s.writers()) {
    INFO("writer " << w->name << " (" << w->process->status_text() << ") stderr: " << w->process->stderr_text());
    CHECK(w->process->stderr_text().empty());
  }
  for (const auto& l : s.listeners()) {
    INFO(l->name << " (" << l->process->status_text() << ") stderr: " << l->process->stderr_text());
    CHECK(l->process->stderr_text().empty());
  }

  const auto v = judge(s);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "crash soak: rounds=" << rounds << " writer_kills=" << writer_kills
            << " listener_kills=" << listener_kills << " completed=" << s.completed().size()
            << " delivered_unique=" << v.unique_ids << " lost=" << v.lost
            << " duplicates_after_dedup=" << v.duplicates_after_dedup << " repeats=" << v.repeats << " seed=" << seed
            << std::endl;
  std::cout << "crash soak: deliveries=" << v.deliveries
            << " max_repeats_per_listener_crash=" << v.max_repeats_per_crash << " checkpoint_every=" << checkpoint_every
            << " in_flight_delivered=" << v.in_flight_delivered
            << " listener_kills_after_n_deliveries=" << kills_while_delivering << " listener_outages=" << outages
            << " writer_processes=" << s.writers().size() << " listener_processes=" << s.listeners().size()
            << " seconds=" << static_cast<long long>(seconds) << std::endl;
  std::ostringstream examples;
  for (const auto& e : v.examples) examples << "\n  " << e;
  INFO("first findings:" << examples.str());

  CHECK(writer_kills + listener_kills == rounds);
  CHECK(v.lost == 0);
  CHECK(v.invented == 0);
  CHECK(v.duplicates_after_dedup == 0);
  CHECK(v.id_reused == 0);
  CHECK(v.twice_in_a_run == 0);
  CHECK(v.unexplained_repeats == 0);
  CHECK(v.max_repeats_per_crash <= checkpoint_every);
  CHECK(v.out_of_order == 0);
  CHECK(v.malformed == 0);
  CHECK(v.unique_ids == v.deliveries - v.repeats - v.twice_in_a_run - v.malformed);
  // The run after the clean stop delivered the new events only.
  std::vector<std::string> after;
  for (const auto& d : s.listeners().back()->deliveries) after.push_back(d.data);
  std::vector<std::string> expected;
  for (long long i = 0; i < after_count; ++i) expected.push_back("after:" + std::to_string(i));
  // (A killed writer's publish under way may have been read only now.)
  std::erase_if(after, [](const std::string& d) { return !d.starts_with("after:"); });
  CHECK(after == expected);
}

}  // namespace crash_soak_test
