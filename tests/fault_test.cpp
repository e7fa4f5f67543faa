// Faults injected through the system-call seam (tests/common/faults.hpp):
// every store operation with each failing call it makes, short I/O, folders
// vanishing and coming back, checkpoint failures, and clock jumps. A failed
// operation reports a clear error and leaves the files and the journals in
// agreement; a listener retries and delivers everything once, in order.
#include "common/faults.hpp"
#include "common/fixture.hpp"
#include "common/recording_source.hpp"
#include "common/sizing.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace fault_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

const std::string alice = "alice222";
const std::string bob = "bob123";
const std::string carol = "carol77";

/// What one user's journal says they own, were shared, and were sent.
struct replayed {
  std::set<std::string> own;
  std::set<std::string> shared;
  std::map<std::string, int> published;  // application events by name
};

/// Replays `user`'s whole journal. An impossible sequence (a version
/// created twice, deleted while absent, shared twice) or a corrupt record
/// is a violation.
replayed replay(const std::filesystem::path& root, const std::string& user, std::vector<std::string>& violations) {
  asio::io_context io;
  journal_source source(io.get_executor(), root / "journals" / user);
  const auto result = source.poll("", 1'000'000);
  for (const auto& problem : result.problems) violations.push_back(user + ": " + problem.message);
  replayed state;
  for (const auto& e : result.events) {
    const auto bad = [&](const char* what) { violations.push_back(user + ": " + what + " " + e.name + " " + e.data); };
    if (e.name == event_name::create) {
      if (!state.own.insert(e.data).second) bad("repeated");
    } else if (e.name == event_name::delete_) {
      if (!(e.actor == user ? state.own : state.shared).erase(e.data)) bad("absent version in");
    } else if (e.name == event_name::share) {
      if (!state.shared.insert(e.data).second) bad("repeated");
    } else if (e.name == event_name::unshare) {
      if (!state.shared.erase(e.data)) bad("absent version in");
    } else {
      ++state.published[e.name];
    }
  }
  return state;
}

/// Checks that each user's journal agrees with what the files show them,
/// and that no reserved (temporary or half-deleted) file is left.
std::vector<std::string> inconsistencies(const std::filesystem::path& root, bool reserved_files_allowed) {
  std::vector<std::string> violations;
  asio::io_context io;
  for (const auto& user : {alice, bob, carol}) {
    const auto journal = replay(root, user, violations);
    local_store store(io.get_executor(), root, user);
    std::set<std::string> own, shared;
    for (const auto& v : store.list_files("", true)) (v.user == user ? own : shared).insert(v.to_string());
    if (own != journal.own) violations.push_back(user + ": own versions differ from the journal's");
    if (shared != journal.shared) violations.push_back(user + ": shared versions differ from the journal's");
    for (const auto& name : own) {
      const auto version = versioned_path::try_parse(name);
      if (!version || store.read_file(*version).empty()) violations.push_back(user + ": cannot read " + name);
    }
  }
  if (!reserved_files_allowed) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
      if (entry.path().filename().native().starts_with(".storewatch-")) {
        violations.push_back("left behind: " + entry.path().string());
      }
    }
  }
  return violations;
}

/// The state every matrix case starts from: alice has two versions, the
/// first shared with bob. (One store object, one journal writer: the
/// journal orders only each writer's records.)
void set_up(local_store& owner) {
  owner.create_file("docs/a.txt", "alpha");
  owner.create_file("docs/b.txt", "beta");
  owner.share_files({"docs/a.txt", false}, {bob}, true);
}

struct operation {
  const char* name;
  std::function<void(local_store&)> run;
  bool publishes = false;
};

const std::vector<operation>& operations() {
  static const std::vector<operation> all{
      {"create", [](local_store& s) { s.create_file("docs/new/c.txt", "gamma"); }},
      {"share", [](local_store& s) { s.share_files({"docs/b.txt", false}, {bob, carol}, true); }},
      {"unshare", [](local_store& s) { s.share_files({"docs/a.txt", false}, {bob}, false); }},
      {"delete", [](local_store& s) { s.delete_files({"docs", true}); }},
      {"publish", [](local_store& s) { s.publish_event("ping", "hello", {bob, carol}); }, true},
  };
  return all;
}

}  // namespace

TEST_CASE("every store operation, failing at each call it makes with EIO, ENOSPC or EACCES: a clear error, "
          "files and journals still agree, and a retry succeeds") {
  const fault_call calls[] = {fault_call::open,   fault_call::write,  fault_call::fsync, fault_call::link,
                              fault_call::rename, fault_call::unlink, fault_call::mkdir, fault_call::truncate};
  const int errors[] = {EIO, ENOSPC, EACCES};
  std::size_t injected = 0, failed_cleanly = 0, completed_anyway = 0, inconsistent = 0;
  for (const auto& op : operations()) {
    for (const auto call : calls) {
      for (const int error : errors) {
        for (int nth = 0;; ++nth) {
          INFO(op.name << ": call " << nth + 1 << " to " << call_name(call) << " fails with " << std::strerror(error));
          asio::io_context io;
          temp_dir dir(temp_dir::place::memory);
          local_store owner(io.get_executor(), dir.path(), alice);
          set_up(owner);
          bool failed = false;
          std::size_t fired = 0;
          {
            fault_plan plan;
            plan.fail(call, dir.path().string(), error, 1, nth);
            try {
              op.run(owner);
            } catch (const std::system_error& e) {
              failed = true;
              CHECK(e.code() == errc::store_io_failed);
              const std::string message = e.what();
              CHECK_THAT(message, Catch::Contains(dir.path().string()) && Catch::Contains(std::strerror(error)));
            }
            fired = plan.fired();
          }
          if (fired == 0) {  // past the operation's last such call
            CHECK_FALSE(failed);
            break;
          }
          ++injected;
          (failed ? failed_cleanly : completed_anyway) += 1;
          // A failure after the operation committed (removing a temporary
          // or a deleted file's renamed copy) may leave that file behind.
          const auto found = inconsistencies(dir.path(), !failed);
          CHECK(found == std::vector<std::string>{});
          inconsistent += found.empty() ? 0 : 1;
          if (failed) {
            REQUIRE_NOTHROW(op.run(owner));
            const auto after_retry = inconsistencies(dir.path(), true);
            CHECK(after_retry == std::vector<std::string>{});
            inconsistent += after_retry.empty() ? 0 : 1;
          }
          if (op.publishes) {
            std::vector<std::string> violations;
            CHECK(replay(dir.path(), bob, violations).published["ping"] == 1);
            CHECK(replay(dir.path(), carol, violations).published["ping"] == 1);
          }
        }
      }
    }
  }
  std::printf("faults: store operations: %zu injected, %zu failed cleanly, %zu completed anyway, %zu inconsistent\n",
              injected, failed_cleanly, completed_anyway, inconsistent);
  CHECK(inconsistent == 0);
  CHECK(failed_cleanly > 100);  // the matrix reached the operations' calls
}

// ---------------------------------------------------------------- taking back a failed operation

namespace {

/// Runs `inside` (a reader's poll) when the first fsync of a segment of
/// bob123's journal is made, then fails that fsync with EIO: a reader
/// polling in the middle of an operation that then fails.
class failing_sync_with_reader final : public detail::sys::fault_injector {
 public:
  explicit failing_sync_with_reader(std::function<void()> inside) : inside_(std::move(inside)) {
    detail::sys::injector.store(this, std::memory_order_release);
  }
  ~failing_sync_with_reader() override { detail::sys::injector.store(nullptr, std::memory_order_release); }
  failing_sync_with_reader(const failing_sync_with_reader&) = delete;
  failing_sync_with_reader& operator=(const failing_sync_with_reader&) = delete;

  detail::sys::verdict decide(fault_call what, const char* path) override {
    const std::string_view p(path);
    if (what != fault_call::fsync || p.find("journals/" + bob + "/") == std::string_view::npos || !p.ends_with(".log") ||
        fired_.exchange(true)) {
      return {};
    }
    inside_();
    return {EIO};
  }

 private:
  std::function<void()> inside_;
  std::atomic<bool> fired_{false};
};

std::vector<std::string> data_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

}  // namespace

TEST_CASE("a reader that polled inside an operation that then failed skips none of the writer's next records") {
  temp_dir dir;
  asio::io_context io;
  local_store owner(io.get_executor(), dir.path(), alice);
  journal_source reader(io.get_executor(), dir.path() / "journals" / bob);
  owner.publish_event("NOTE", "e0", {bob});
  auto cursor = reader.poll("", 100).next_cursor;
  std::vector<std::string> seen_inside;
  failure failed;
  {
    failing_sync_with_reader fault([&] {
      const auto inside = reader.poll(cursor, 100);
      seen_inside = data_of(inside.events);
      cursor = inside.next_cursor;
    });
    failed = failure_of([&] { owner.publish_event("NOTE", "e1", {bob}); });
  }
  CHECK(failed.code == errc::store_io_failed);
  REQUIRE(seen_inside == std::vector<std::string>{"e1"});  // it read the record the failure then took back
  owner.publish_event("NOTE", "e2", {bob});                   // as long as the failed one
  owner.publish_event("NOTE", "e3, longer than the failed one", {bob});
  const auto after = reader.poll(cursor, 100);
  CHECK(after.problems.empty());
  CHECK(data_of(after.events) == std::vector<std::string>{"e2", "e3, longer than the failed one"});
  const auto fresh = reader.poll("", 100);
  CHECK(fresh.problems.empty());
  CHECK(data_of(fresh.events) == std::vector<std::string>{"e0", "e2", "e3, longer than the failed one"});
}

TEST_CASE("a failed operation whose take-back fails too (the void write, or the truncation): what it wrote reaches "
          "no reader that starts later, and the writer's next records all arrive") {
  temp_dir dir;
  asio::io_context io;
  local_store owner(io.get_executor(), dir.path(), alice);
  journal_source reader(io.get_executor(), dir.path() / "journals" / bob);
  const auto journal_part = (dir.path() / "journals" / bob).string() + "/";
  owner.publish_event("NOTE", "e0", {bob});
  const auto before = reader.poll("", 100);
  failure failed;
  {
    fault_plan plan;
    plan.fail(fault_call::fsync, journal_part, EIO);
    SECTION("fsync, then the truncation fails (the void write works)") {
      plan.fail(fault_call::truncate, journal_part, EIO);
    }
    SECTION("fsync, then the void write fails (the truncation works)") {
      plan.fail(fault_call::write, journal_part, ENOSPC, 1, /*skip: the record's own write*/ 1);
    }
    failed = failure_of([&] { owner.publish_event("NOTE", "e1", {bob}); });
  }
  CHECK(failed.code == errc::store_io_failed);
  CHECK_THAT(failed.what, !Catch::Contains("listeners may receive"));
  owner.publish_event("NOTE", "e2", {bob});
  const auto fresh = reader.poll("", 100);
  CHECK(fresh.problems.empty());
  CHECK(data_of(fresh.events) == std::vector<std::string>{"e0", "e2"});
  const auto resumed = reader.poll(before.next_cursor, 100);
  CHECK(resumed.problems.empty());
  CHECK(data_of(resumed.events) == std::vector<std::string>{"e2"});
}

TEST_CASE("a failed operation whose records can be neither voided nor cut off says so in its error, naming the file") {
  temp_dir dir;
  asio::io_context io;
  local_store owner(io.get_executor(), dir.path(), alice);
  const auto journal_part = (dir.path() / "journals" / bob).string() + "/";
  owner.publish_event("NOTE", "e0", {bob});
  failure failed;
  {
    fault_plan plan;
    plan.fail(fault_call::fsync, journal_part, EIO);
    plan.fail(fault_call::write, journal_part, ENOSPC, 1, 1);
    plan.fail(fault_call::truncate, journal_part, EIO);
    failed = failure_of([&] { owner.publish_event("NOTE", "e1", {bob}); });
  }
  CHECK(failed.code == errc::store_io_failed);
  CHECK_THAT(failed.what, Catch::Contains(journal_part) && Catch::Contains("could not be taken back") &&
                              Catch::Contains("listeners may receive them"));
  // The writer goes on after the bytes it could not take back.
  owner.publish_event("NOTE", "e2", {bob});
  journal_source reader(io.get_executor(), dir.path() / "journals" / bob);
  const auto all = data_of(reader.poll("", 100).events);
  CHECK(all.back() == "e2");
}

TEST_CASE("short writes and short reads (1 byte per call): every operation completes with the right bytes") {
  asio::io_context io;
  temp_dir dir(temp_dir::place::memory);
  local_store owner(io.get_executor(), dir.path(), alice);
  set_up(owner);
  fault_plan plan;
  plan.shorten(fault_call::write, dir.path().string(), 1).shorten(fault_call::read, dir.path().string(), 1);
  for (const auto& op : operations()) op.run(owner);
  const auto c = owner.list_files("docs/new", true);
  CHECK(c.empty());  // deleted with the rest of docs/
  const auto v = owner.create_file("kept.txt", std::string(5000, 'k'));
  CHECK(owner.read_file(v) == std::string(5000, 'k'));
  CHECK(plan.fired() > 5000);
  plan.clear();
  CHECK(inconsistencies(dir.path(), false).empty());
}

TEST_CASE("read_file failing (open, read with EIO and EACCES): a clear error naming the file, and the "
          "next read succeeds") {
  asio::io_context io;
  temp_dir dir(temp_dir::place::memory);
  local_store owner(io.get_executor(), dir.path(), alice);
  set_up(owner);
  local_store reader(io.get_executor(), dir.path(), bob);
  const auto shared = reader.list_files("", true);
  REQUIRE(shared.size() == 1);
  for (const auto call : {fault_call::open, fault_call::read}) {
    for (const int error : {EIO, EACCES}) {
      INFO(call_name(call) << " fails with " << std::strerror(error));
      fault_plan plan;
      plan.fail(call, (dir.path() / "versions").string(), error);
      const auto failed = failure_of([&] { reader.read_file(shared.front()); });
      CHECK(failed.code == errc::store_io_failed);
      CHECK_THAT(failed.what, Catch::Contains(shared.front().to_string()) && Catch::Contains(std::strerror(error)));
      CHECK(plan.fired() == 1);
      CHECK(reader.read_file(shared.front()) == "alpha");
    }
  }
}

namespace {

/// Bob's listener over his journal, recording deliveries and errors.
struct bob_listener {
  asio::io_context& io;
  journal_source source;
  error_log errors;
  std::vector<event> got;
  std::optional<event_listener> listener;

  bob_listener(asio::io_context& context, const std::filesystem::path& root, listener_options options = {})
      : io(context), source(context.get_executor(), root / "journals" / bob) {
    options.poller.poll_interval = 20ms;
    options.poller.backoff = {.initial = 1ms, .max = 20ms};
    options.on_error = errors.handler();
    listener.emplace(context.get_executor(), source, options);
    listener->add_event_listener([this](const event& e) { got.push_back(e); });
    listener->start();
  }

  std::vector<std::string> data() const {
    std::vector<std::string> out;
    for (const auto& e : got) out.push_back(e.data);
    return out;
  }

  void stop() {
    listener->stop();
    run_to_idle(io);
  }
};

std::vector<std::string> numbered(const std::string& prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

void publish_all(local_store& store, const std::vector<std::string>& data) {
  for (const auto& d : data) store.publish_event("note", d, {bob});
}

}  // namespace

TEST_CASE("journal reads failing (open, read, list: EIO and EACCES): the listener reports, retries, and then "
          "delivers every event once, in order") {
  asio::io_context io;
  temp_dir dir(temp_dir::place::memory);
  local_store owner(io.get_executor(), dir.path(), alice, {.segment_bytes = 512});  // many sealed segments
  const auto journal = (dir.path() / "journals" / bob).string();
  const auto first = numbered("n", 0, 40);
  publish_all(owner, first);
  fault_plan plan;
  plan.fail(fault_call::list, journal, EIO, 3)
      .fail(fault_call::open, journal, EACCES, 3)
      .fail(fault_call::read, journal, EIO, 3, 2);  // the third read and two after it
  bob_listener listener(io, dir.path());
  REQUIRE(run_until(io, [&] { return listener.got.size() >= first.size() && plan.fired() == 9; }));
  const auto second = numbered("n", 40, 80);
  publish_all(owner, second);
  auto all = first;
  all.insert(all.end(), second.begin(), second.end());
  REQUIRE(run_until(io, [&] { return listener.got.size() >= all.size(); }));
  listener.stop();
  CHECK(listener.data() == all);
  CHECK(listener.listener->stats().poll_errors == 9);
  REQUIRE(listener.errors.entries.size() == 9);
  for (const auto& [ec, message] : listener.errors.entries) {
    CHECK(ec == errc::store_io_failed);
    CHECK_THAT(message, Catch::Contains(journal) && Catch::Contains("retrying"));
  }
}

TEST_CASE("short reads (7 bytes per call) of a journal with sealed segments: every record once, no corrupt "
          "record reported") {
  asio::io_context io;
  temp_dir dir(temp_dir::place::memory);
  local_store owner(io.get_executor(), dir.path(), alice, {.segment_bytes = 300});
  const auto all = numbered("short-read-", 0, 60);
  publish_all(owner, all);
  fault_plan plan;
  plan.shorten(fault_call::read, (dir.path() / "journals").string(), 7);
  bob_listener listener(io, dir.path());
  REQUIRE(run_until(io, [&] { return listener.got.size() >= all.size(); }));
  listener.stop();
  CHECK(listener.data() == all);
  CHECK(listener.errors.entries.empty());
  CHECK(plan.fired() > 100);
}

TEST_CASE("the journal folder and then the whole store vanish and come back: the listener goes on, nothing "
          "lost or repeated") {
  asio::io_context io;
  temp_dir dir(temp_dir::place::memory);
  local_store owner(io.get_executor(), dir.path(), alice);
  bob_listener listener(io, dir.path());
  publish_all(owner, numbered("v", 0, 10));
  REQUIRE(run_until(io, [&] { return listener.got.size() >= 10; }));

  const auto journal = dir.path() / "journals" / bob;
  const auto aside = dir.path().string() + "-aside";
  std::filesystem::rename(journal, aside);
  const auto polls = listener.listener->stats().polls;
  REQUIRE(run_until(io, [&] { return listener.listener->stats().polls >= polls + 3; }));  // polled while gone
  std::filesystem::rename(aside, journal);
  publish_all(owner, numbered("v", 10, 20));
  REQUIRE(run_until(io, [&] { return listener.got.size() >= 20; }));

  std::filesystem::rename(dir.path(), aside);
  const auto polls_again = listener.listener->stats().polls + listener.listener->stats().poll_errors;
  REQUIRE(run_until(io, [&] {
    const auto s = listener.listener->stats();
    return s.polls + s.poll_errors >= polls_again + 3;
  }));
  std::filesystem::rename(aside, dir.path());
  publish_all(owner, numbered("v", 20, 30));
  REQUIRE(run_until(io, [&] { return listener.got.size() >= 30; }));
  listener.stop();
  CHECK(listener.data() == numbered("v", 0, 30));
  for (const auto& e : listener.got) CHECK(e.name == "note");  // no GAP: the journal is the same one
}

TEST_CASE("checkpoint saves failing (fsync, rename): reported, delivery goes on, and a restart repeats at most "
          "the unsaved events") {
  asio::io_context io;
  temp_dir dir(temp_dir::place::memory);
  local_store owner(io.get_executor(), dir.path(), alice);
  const auto checkpoint = dir.path() / "bob.checkpoint";
  listener_options options;
  options.checkpoint = checkpoint;
  options.checkpoint_every = 4;
  const auto first = numbered("c", 0, 30);
  std::vector<std::string> delivered;
  {
    bob_listener listener(io, dir.path(), options);  // its start saves the starting position, not failing yet
    fault_plan plan;
    plan.fail(fault_call::fsync, "bob.checkpoint", EIO, 2).fail(fault_call::rename, "bob.checkpoint", ENOSPC, 2);
    publish_all(owner, first);
    REQUIRE(run_until(io, [&] { return listener.got.size() >= first.size() && plan.fired() == 4; }));
    listener.stop();
    delivered = listener.data();
    CHECK(delivered == first);
    std::size_t reported = 0;
    for (const auto& [ec, message] : listener.errors.entries) {
      CHECK(ec == errc::checkpoint_failed);
      CHECK_THAT(message, Catch::Contains(checkpoint.string()));
      ++reported;
    }
    CHECK(reported == 4);
  }
  // Saved on stop (the faults were used up): a restart delivers only what is new.
  const auto second = numbered("c", 30, 40);
  publish_all(owner, second);
  bob_listener restarted(io, dir.path(), options);
  REQUIRE(run_until(io, [&] { return restarted.got.size() >= second.size(); }));
  const auto polls = restarted.listener->stats().polls;
  REQUIRE(run_until(io, [&] { return restarted.listener->stats().polls >= polls + 3; }));
  restarted.stop();
  CHECK(restarted.data() == second);
}

TEST_CASE("the clock jumps back an hour and forward a day between operations: versions stay distinct and "
          "readable, and every event arrives once, in order") {
  asio::io_context io;
  temp_dir dir(temp_dir::place::memory);
  local_store owner(io.get_executor(), dir.path(), alice);
  bob_listener listener(io, dir.path());
  std::vector<versioned_path> versions;
  std::vector<std::string> expected;
  const auto step = [&](const std::string& data) {
    versions.push_back(owner.create_file("clock/f.txt", data));
    owner.share_files({versions.back().path, false, versions.back().created_at(), versions.back().created_at()},
                      {bob}, true);
    expected.push_back(versions.back().to_string());
  };
  step("now");
  {
    clock_skew back(-1h);
    step("an hour ago");
  }
  {
    clock_skew forward(24h);
    step("tomorrow");
  }
  step("now again");
  REQUIRE(run_until(io, [&] { return listener.got.size() >= expected.size(); }));
  listener.stop();
  CHECK(listener.data() == expected);  // journal order, whatever the clock said
  std::set<std::string> distinct(expected.begin(), expected.end());
  CHECK(distinct.size() == 4);
  CHECK(versions[1].timestamp_ms < versions[0].timestamp_ms);
  CHECK(versions[2].timestamp_ms > versions[3].timestamp_ms);
  CHECK(owner.read_file(versions[1]) == "an hour ago");
  CHECK(owner.read_file(versions[2]) == "tomorrow");
  CHECK(owner.list_files("clock", true).size() == 4);
  CHECK(inconsistencies(dir.path(), false).empty());
}

// ---------------------------------------------------------------- a writer killed at any moment

namespace {

/// Ends the process at the store's `target`-th system call, as SIGKILL
/// would (no destructor, no flush): before it, or, for a write, after
/// letting through its first 7 bytes (a torn record or intent line).
class kill_at_call final : public detail::sys::fault_injector {
 public:
  static constexpr int killed_status = 99;
  explicit kill_at_call(long target) : target_(target) { detail::sys::injector.store(this, std::memory_order_release); }
  ~kill_at_call() override { detail::sys::injector.store(nullptr, std::memory_order_release); }
  kill_at_call(const kill_at_call&) = delete;
  kill_at_call& operator=(const kill_at_call&) = delete;

  detail::sys::verdict decide(fault_call what, const char*) override {
    const auto n = ++calls_;
    if (n == target_ && what == fault_call::write) return {0, 7};
    if (n >= target_) ::_exit(killed_status);
    return {};
  }

 private:
  long target_;
  std::atomic<long> calls_{0};
};

/// Counts the store's system calls while it lives.
class call_counter final : public detail::sys::fault_injector {
 public:
  call_counter() { detail::sys::injector.store(this, std::memory_order_release); }
  ~call_counter() override { detail::sys::injector.store(nullptr, std::memory_order_release); }
  call_counter(const call_counter&) = delete;
  call_counter& operator=(const call_counter&) = delete;

  detail::sys::verdict decide(fault_call, const char*) override {
    ++calls_;
    return {};
  }
  long calls() const { return calls_.load(); }

 private:
  std::atomic<long> calls_{0};
};

/// What each user can see: the versions they list (owner and path, without
/// the time), and how many application events of each name their journal
/// holds.
std::map<std::string, std::vector<std::string>> what_users_see(const std::filesystem::path& root) {
  std::map<std::string, std::vector<std::string>> seen;
  asio::io_context io;
  std::vector<std::string> violations;
  for (const auto& user : {alice, bob, carol}) {
    local_store store(io.get_executor(), root, user);
    auto& lines = seen[user];
    for (const auto& v : store.list_files("", true)) lines.push_back(v.user + ":" + v.path);
    for (const auto& [name, count] : replay(root, user, violations).published) {
      lines.push_back("event " + name + " x" + std::to_string(count));
    }
    std::sort(lines.begin(), lines.end());
  }
  return seen;
}

/// Runs `op` in a child process that ends at its store's `target`-th system
/// call; returns the child's exit status (kill_at_call::killed_status when
/// it was ended there, 0 when the operation completed first).
int run_until_killed(const std::filesystem::path& root, const operation& op, long target) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      asio::io_context io;
      local_store owner(io.get_executor(), root, alice);
      kill_at_call killer(target);
      op.run(owner);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("a writer killed at each system call of each store operation (also in the middle of a write): the next "
          "writer finishes or undoes it, so files and journals agree and the operation happened wholly or not at "
          "all") {
  fault_sweep sweep("killed writer");
  std::size_t kills = 0, finished = 0, undone = 0;
  for (const auto& op : operations()) {
    // What the users see before and after the operation, run whole, and
    // how many system calls it makes.
    std::map<std::string, std::vector<std::string>> before, after;
    long calls = 0;
    {
      temp_dir dir(temp_dir::place::memory);
      asio::io_context io;
      {
        local_store owner(io.get_executor(), dir.path(), alice);
        set_up(owner);
      }
      before = what_users_see(dir.path());
      {
        local_store owner(io.get_executor(), dir.path(), alice);
        call_counter counter;
        op.run(owner);
        calls = counter.calls();
      }
      after = what_users_see(dir.path());
    }
    REQUIRE(before != after);
    for (const auto target : sweep.requests(static_cast<std::size_t>(calls))) {
      INFO(op.name << ": killed at system call " << target << " of " << calls);
      temp_dir dir(temp_dir::place::memory);
      asio::io_context io;
      {
        local_store owner(io.get_executor(), dir.path(), alice);
        set_up(owner);
      }
      const int status = run_until_killed(dir.path(), op, static_cast<long>(target));
      if (status != kill_at_call::killed_status) {
        CHECK(status == 0);
        continue;
      }
      ++kills;
      // Another user's store object, at its first write to the store.
      local_store next(io.get_executor(), dir.path(), carol);
      next.compact(std::chrono::hours(24 * 365));
      CHECK(inconsistencies(dir.path(), false) == std::vector<std::string>{});
      const auto seen = what_users_see(dir.path());
      CHECK((seen == before || seen == after));
      (seen == after ? finished : undone) += 1;
      std::vector<std::string> logs_left;
      std::error_code ec;
      for (std::filesystem::directory_iterator it(dir.path() / "intents", ec), end; !ec && it != end; it.increment(ec)) {
        logs_left.push_back(it->path().filename().string());
      }
      CHECK(logs_left == std::vector<std::string>{});
      if (seen == before) {  // undone: a retry by a new writer succeeds
        local_store owner(io.get_executor(), dir.path(), alice);
        REQUIRE_NOTHROW(op.run(owner));
        CHECK(what_users_see(dir.path()) == after);
        CHECK(inconsistencies(dir.path(), false) == std::vector<std::string>{});
      }
    }
  }
  std::printf("killed writer: %zu kills, %zu finished by the next writer, %zu undone\n", kills, finished, undone);
  CHECK(finished > 0);
  CHECK(undone > 0);
}

TEST_CASE("a long-lived store object settles a writer that died after its own first operation") {
  const auto& create = operations().front();
  REQUIRE(std::string(create.name) == "create");
  temp_dir dir(temp_dir::place::memory);
  asio::io_context io;
  long calls = 0;
  {
    temp_dir counting(temp_dir::place::memory);
    local_store owner(io.get_executor(), counting.path(), alice);
    set_up(owner);
    local_store fresh(io.get_executor(), counting.path(), alice);
    call_counter counter;
    create.run(fresh);
    calls = counter.calls();
  }
  local_store owner(io.get_executor(), dir.path(), alice);
  set_up(owner);  // its first operations: it settled what there was then
  // Killed after the version was linked, before its record: a version
  // nobody was told of, until somebody settles it.
  REQUIRE(run_until_killed(dir.path(), create, calls - 3) == kill_at_call::killed_status);
  REQUIRE_FALSE(inconsistencies(dir.path(), false).empty());
  const auto dead_logs = [&] {
    std::size_t logs = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "intents")) {
      logs += entry.path().extension() != ".share" ? 1 : 0;
    }
    return logs - 1;  // owner's own
  };
  REQUIRE(dead_logs() == 1);
  // The same store object goes on publishing; within its next second it
  // settles the dead writer's operation.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (dead_logs() > 0 && std::chrono::steady_clock::now() < deadline) {
    owner.publish_event("tick", "", {bob});
    std::this_thread::sleep_for(50ms);
  }
  CHECK(dead_logs() == 0);
  CHECK(inconsistencies(dir.path(), false) == std::vector<std::string>{});
}

TEST_CASE("a recovering writer killed at each system call of its recovery of a dead writer's operation: the next "
          "writer still settles it once (no record twice, none lost)") {
  const operation recover{"recover", [](local_store& s) { s.compact(std::chrono::hours(24 * 365)); }};
  // Whether a log under `root` announced records (else recovery undoes).
  const auto announced = [](const std::filesystem::path& root) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(root / "intents", ec), end; !ec && it != end; it.increment(ec)) {
      std::ifstream in(it->path(), std::ios::binary);
      const std::string text(std::istreambuf_iterator<char>(in), {});
      if (text.find("\"announce\"") != std::string::npos) return true;
    }
    return false;
  };
  std::size_t recoveries_killed = 0;
  // Under the sanitizers (STOREWATCH_FAULT_STRIDE=k) the writer is killed
  // at its first call and every k-th after it, and so is each recovery.
  const auto stride = static_cast<long>(std::max<std::uint64_t>(1, env_number("STOREWATCH_FAULT_STRIDE", 1)));
  for (const auto* name : {"share", "delete", "publish"}) {
    const auto& op = *std::find_if(operations().begin(), operations().end(),
                                   [&](const operation& o) { return std::string_view(o.name) == name; });
    std::map<std::string, std::vector<std::string>> before, after;
    {
      temp_dir dir(temp_dir::place::memory);
      asio::io_context io;
      local_store owner(io.get_executor(), dir.path(), alice);
      set_up(owner);
      before = what_users_see(dir.path());
      op.run(owner);
      after = what_users_see(dir.path());
    }
    for (long target = 1;; target += stride) {
      bool writer_finished = false;
      for (long recovery_target = 1;; recovery_target += stride) {
        INFO(op.name << ": killed at system call " << target << ", its recovery at " << recovery_target);
        temp_dir dir(temp_dir::place::memory);
        asio::io_context io;
        {
          local_store owner(io.get_executor(), dir.path(), alice);
          set_up(owner);
        }
        if (run_until_killed(dir.path(), op, target) != kill_at_call::killed_status) {
          writer_finished = true;
          break;
        }
        if (!announced(dir.path())) break;  // undone: nothing appended that a retry could repeat
        const int status = run_until_killed(dir.path(), recover, recovery_target);
        local_store next(io.get_executor(), dir.path(), carol);
        next.compact(std::chrono::hours(24 * 365));
        CHECK(inconsistencies(dir.path(), false) == std::vector<std::string>{});
        const auto seen = what_users_see(dir.path());
        CHECK((seen == before || seen == after));
        if (status != kill_at_call::killed_status) break;
        ++recoveries_killed;
      }
      if (writer_finished) break;
    }
  }
  std::printf("killed recovery: %zu recoveries killed (STOREWATCH_FAULT_STRIDE=%ld)\n", recoveries_killed, stride);
  CHECK(recoveries_killed > 0);
}

TEST_CASE("a live writer shares a version whose share marker a killed writer had just made: the killed writer's "
          "recovery leaves the marker that the live writer's SHARE announces") {
  const auto& share = *std::find_if(operations().begin(), operations().end(),
                                    [](const operation& o) { return std::string_view(o.name) == "share"; });
  std::size_t marker_left = 0;
  for (long target = 1;; ++target) {
    INFO("the sharing writer killed at system call " << target);
    temp_dir dir(temp_dir::place::memory);
    asio::io_context io;
    local_store live(io.get_executor(), dir.path(), alice);
    set_up(live);  // (its first operation: it recovered already)
    if (run_until_killed(dir.path(), share, target) != kill_at_call::killed_status) break;
    const auto b = live.list_files("docs/b.txt", false).at(0);
    std::error_code ec;
    if (std::filesystem::exists(dir.path() / "shares" / carol / alice / b.to_string(), ec)) ++marker_left;
    live.share_files({"docs/b.txt", false}, {carol}, true);
    local_store next(io.get_executor(), dir.path(), bob);
    next.compact(std::chrono::hours(24 * 365));
    // Shared in carol's journal (a SHARE twice is no fault here: both
    // writers may have announced one), and so in the files.
    std::vector<std::string> repeated_shares;
    CHECK(replay(dir.path(), carol, repeated_shares).shared.count(b.to_string()) == 1);
    local_store grantee(io.get_executor(), dir.path(), carol);
    CHECK(grantee.list_files("", true) == std::vector<versioned_path>{b});
  }
  CHECK(marker_left > 0);
}

// ---------------------------------------------------------------- crafted intent logs

namespace {

/// The files (with their contents) and folders under `folder`, recursively.
std::set<std::string> files_under(const std::filesystem::path& folder) {
  std::set<std::string> found;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().lexically_relative(folder).generic_string();
    if (it->is_directory(ec)) {
      found.insert(name + "/");
      continue;
    }
    std::ifstream in(it->path(), std::ios::binary);
    found.insert(name + ": " + std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  }
  return found;
}

void write_text(const std::filesystem::path& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

/// A store at `root`, whose intent logs a test crafts, next to a folder
/// `outside` that recovery must leave as it is.
struct crafted_store {
  temp_dir dir;
  std::filesystem::path root = dir.path() / "store";
  std::filesystem::path outside = dir.path() / "outside";

  crafted_store() {
    std::filesystem::create_directories(root / "intents");
    std::filesystem::create_directories(outside);
  }

  /// Runs a store operation (the first of its store object: it recovers
  /// the logs), which must work and leave `outside` as it was.
  void check_operation() const {
    const auto before = files_under(outside);
    asio::io_context io;
    local_store store(io.get_executor(), root, bob);
    REQUIRE_NOTHROW(store.create_file("after", "bytes"));
    CHECK(files_under(outside) == before);
    CHECK(store.read_file(store.list_files("", true).at(0)) == "bytes");
  }
};

}  // namespace

TEST_CASE("a dead writer's intent log that is a symbolic link to a file outside the store: recovery leaves that "
          "file as it was") {
  const crafted_store store;
  write_text(store.outside / "precious.txt", "{\"kind\":\"temp\",\"path\":\"x\",\"op\":1}\nnot a store's file\n");
  std::filesystem::create_symlink(store.outside / "precious.txt", store.root / "intents" / "w-linked");
  store.check_operation();
}

TEST_CASE("a crafted intent log whose paths or users lead outside the store: recovery neither removes, renames "
          "nor makes anything there, and the operation works") {
  const crafted_store store;
  const auto& root = store.root;
  const auto& outside = store.outside;
  for (const auto* name : {"temp", "away", "version", "happened-temp", "happened-away"}) {
    write_text(outside / name, std::string("outside file ") + name + "\n");
  }
  std::filesystem::create_directories(root / "journals" / bob / "w0");
  write_text(root / "journals" / bob / "w0" / "notes.log", "a\n");
  const auto absolute = (outside / "version").string();
  // Undone (nothing it announced is anywhere): each change put back.
  write_text(root / "intents" / "w-undone",
             "{\"kind\":\"temp\",\"path\":\"../outside/temp\",\"op\":1}\n"
             "{\"kind\":\"away\",\"path\":\"../outside/away\",\"from\":\"../outside/away-put-back\",\"op\":1}\n"
             "{\"kind\":\"version\",\"path\":" + nlohmann::json(absolute).dump() +
                 ",\"temp\":" + nlohmann::json(absolute).dump() + ",\"op\":1}\n");
  // Finished (its announced segment is gone, or has the first record): the
  // rest appended, the removed files' copies deleted.
  write_text(root / "intents" / "w-finished",
             "{\"kind\":\"temp\",\"path\":\"../outside/happened-temp\",\"op\":1}\n"
             "{\"kind\":\"away\",\"path\":\"../outside/happened-away\",\"from\":\"versions/x\",\"op\":1}\n"
             "{\"kind\":\"announce\",\"records\":[{\"user\":\"../../outside/journal\",\"file\":\"journals/bob123/w0/notes.log\","
             "\"at\":0,\"lines\":\"a\\nb\\n\"},{\"user\":\"bob123\",\"file\":\"journals/gone\",\"at\":0,"
             "\"lines\":\"x\\n\"}],\"op\":1}\n");
  store.check_operation();
  CHECK(!std::filesystem::exists(root / "intents" / "w-undone"));
  CHECK(!std::filesystem::exists(root / "intents" / "w-finished"));
}

}  // namespace fault_test
