// Tests of the storewatch command-line tool (tools/storewatch/): the built
// binary (STOREWATCH_TOOL) runs as a subprocess (common/cli_run.hpp) with
// pipes for its stdin, stdout and stderr and STOREWATCH_ROOT set to a fresh
// temp dir; the
// command line (cli.hpp) and the time parser (time_text.hpp) are also
// tested directly.
//
// Every wait is a bounded loop over a condition (reading the child's output
// meanwhile); nothing sleeps for a fixed time.
#include "common/cli_run.hpp"
#include "common/fixture.hpp"
#include "common/sizing.hpp"

#include "cli.hpp"
#include "time_text.hpp"

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace storewatch;
using namespace storewatch::test;
using namespace storewatch::test::cli_run;  // the tool as a child process: process, run, run_ok, ...
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

/// A started `tail` has read its journal's end and is waiting for events:
/// the journal folder it creates exists and its main thread sleeps in its
/// event loop (or it has already exited, which the caller then checks).
void wait_until_tailing(process& tail, const fs::path& root, const std::string& user) {
  const bool ready = wait_for(
      [&] { return tail.exited() || (fs::exists(root / "journals" / user) && tail.sleeping()); }, {&tail});
  INFO("stderr: " << tail.err());
  REQUIRE(ready);
}

/// Appends `count` application events "<prefix><i>" for bob123 with a
/// journal_appender: the records the local store's publish writes (ids
/// "backlog-<random>-<i>", unique to the call), in a few large fsynced
/// batches, so a backlog of thousands is quick to make. Returns data → id.
std::map<std::string, std::string> publish_backlog(const fs::path& root, const std::string& prefix, int count) {
  const auto id_prefix = "backlog-" + std::to_string(std::random_device{}()) + "-";
  journal_appender appender(root);
  std::map<std::string, std::string> ids;
  for (int i = 0; i < count; ++i) {
    event e;
    e.name = "BACKLOG";
    e.data = prefix + std::to_string(i);
    e.actor = "alice222";
    e.occurred_at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    e.id = id_prefix + std::to_string(i);
    appender.add("bob123", e);
    ids[e.data] = e.id;
  }
  appender.flush();
  return ids;
}

/// Publishes NAME DATA to bob123 with the tool; returns the id it printed.
std::string publish(const fs::path& root, const std::string& name, const std::string& data) {
  const auto out = run_ok(root, {"--user", "alice222", "publish", name, data, "--to", "bob123"});
  const auto lines = split_lines(out);
  REQUIRE(lines.size() == 1);
  REQUIRE(!lines[0].empty());
  return lines[0];
}

}  // namespace

// ---------------------------------------------------------------------------
// cli::parse_time, cli::format_time

TEST_CASE("parse_time reads epoch milliseconds and ISO 8601", "[cli][time]") {
  using namespace std::chrono;
  const auto at = [](int y, unsigned m, unsigned d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
    return timestamp{time_point_cast<milliseconds>(sys_days{year{y} / month{m} / day{d}} + hours{h} + minutes{mi} +
                                                   seconds{s} + milliseconds{ms})};
  };
  CHECK(cli::parse_time("1761135341619") == at(2025, 10, 22, 12, 15, 41, 619));
  CHECK(cli::parse_time("0") == timestamp{});
  CHECK(cli::parse_time("2025-10-22T12:15:41Z") == at(2025, 10, 22, 12, 15, 41));
  CHECK(cli::parse_time("2025-10-22T12:15:41.619Z") == at(2025, 10, 22, 12, 15, 41, 619));
  CHECK(cli::parse_time("2025-10-22T12:15:41.6Z") == at(2025, 10, 22, 12, 15, 41, 600));
  CHECK(cli::parse_time("2025-10-22T12:15:41.61999Z") == at(2025, 10, 22, 12, 15, 41, 619));
  CHECK(cli::parse_time("2025-10-22T12:15:41+02:00") == at(2025, 10, 22, 10, 15, 41));
  CHECK(cli::parse_time("2025-10-22T12:15:41.619+02:00") == at(2025, 10, 22, 10, 15, 41, 619));
  CHECK(cli::parse_time("2025-10-22T01:15:41-05:30") == at(2025, 10, 22, 6, 45, 41));
  CHECK(cli::parse_time("2025-10-22T00:30:00+01:00") == at(2025, 10, 21, 23, 30, 0));
  CHECK(cli::parse_time("2025-10-22") == at(2025, 10, 22));
  CHECK(cli::parse_time("2024-02-29") == at(2024, 2, 29));
  CHECK(cli::parse_time("2025-10-22 12:15:41Z") == at(2025, 10, 22, 12, 15, 41));
}

TEST_CASE("parse_time rejects what is not a time", "[cli][time]") {
  for (const std::string_view text :
       {"", "2025-13-01", "2025-00-10", "2025-02-29", "2025-10-32", "2025-10-22T25:00:00Z", "2025-10-22T12:60:00Z",
        "yesterday", "2025-10-22T12:15:41", "2025-10-22T12:15:41.Z", "2025-10-22T12:15Z", "2025-10-22T",
        "2025-10-22Z", "2025-10-22T12:15:41Zjunk", "2025-10-22T12:15:41+2:00", "2025-10-22T12:15:41+24:00",
        "25-10-22", "-1", "1761135341619ms", "99999999999999999999999", " 2025-10-22"}) {
    INFO("'" << text << "'");
    CHECK_FALSE(cli::parse_time(text).has_value());
  }
}

TEST_CASE("format_time writes ISO 8601 UTC with milliseconds and parse_time reads it back", "[cli][time]") {
  using namespace std::chrono;
  CHECK(cli::format_time(timestamp{}) == "1970-01-01T00:00:00.000Z");
  CHECK(cli::format_time(timestamp{milliseconds{1761135341619}}) == "2025-10-22T12:15:41.619Z");
  for (const std::string_view text :
       {"2025-10-22T12:15:41.619Z", "2026-11-27T04:05:06.123Z", "2024-02-29T23:59:59.999Z", "2000-01-01T00:00:00.001Z"}) {
    const auto parsed = cli::parse_time(text);
    REQUIRE(parsed);
    CHECK(cli::format_time(*parsed) == text);
  }
  const auto now = time_point_cast<milliseconds>(system_clock::now());
  CHECK(cli::parse_time(cli::format_time(now)) == now);
}

// ---------------------------------------------------------------------------
// cli::command_line, cli::split_list

namespace {

/// The tool's command line with one command, "demo A [B]", a flag and an
/// option with a value.
struct demo_line {
  cli::command_line line;
  bool flag = false;
  std::optional<std::string> value;

  demo_line() {
    auto& app = line.add({"demo", "A [B]", 1, 2, "a demo command", "", [](cli::invocation&) { return 0; }});
    cli::add_flag(app, "flag", flag, "a flag");
    cli::add_value(app, "value", value, "takes a value", "V");
  }

  /// Parses "demo ARGS..."; what it said.
  const cli::invocation& parse(std::vector<std::string> args) {
    args.insert(args.begin(), "demo");
    REQUIRE_FALSE(line.parse(args).has_value());
    return line.parsed();
  }
};

}  // namespace

TEST_CASE("cli::command_line reads a command's options and positionals", "[cli][parse]") {
  SECTION("positionals, '--name value', '--name=value' and flags") {
    demo_line a;
    CHECK(a.parse({"one", "--value", "v1", "--flag", "two"}).positionals == std::vector<std::string>{"one", "two"});
    CHECK(a.flag);
    CHECK(a.value == std::optional<std::string>("v1"));
    CHECK(a.line.parsed().command->name == "demo");

    demo_line b;
    b.parse({"--value=x=y", "one"});
    CHECK(b.value == std::optional<std::string>("x=y"));
    CHECK_FALSE(b.flag);
    demo_line c;
    c.parse({"--value=", "one"});
    CHECK(c.value == std::optional<std::string>(""));
    // A value that looks like an option is given with '='.
    demo_line d;
    d.parse({"one", "--value=--flag"});
    CHECK(d.value == std::optional<std::string>("--flag"));
    CHECK_FALSE(d.flag);
    demo_line e;
    e.parse({"one"});
    CHECK_FALSE(e.value.has_value());
  }
  SECTION("'--' ends the options") {
    demo_line a;
    CHECK(a.parse({"--", "--flag", "-x"}).positionals == std::vector<std::string>{"--flag", "-x"});
    CHECK_FALSE(a.flag);
    // A single dash is a positional (stdin for create).
    demo_line b;
    CHECK(b.parse({"a", "-"}).positionals == std::vector<std::string>{"a", "-"});
  }
  SECTION("global options before the command, with '--user=' an empty user") {
    cli::command_line line;
    line.add({"demo", "", 0, 0, "a demo command", "", [](cli::invocation&) { return 0; }});
    REQUIRE_FALSE(line.parse(std::vector<std::string>{"--store=elsewhere", "--user=", "--endpoint", "http://e", "demo"}));
    CHECK(line.parsed().store.text == "elsewhere");
    CHECK(line.parsed().store.origin == "option '--store'");
    CHECK(line.parsed().user.empty());
    CHECK(line.parsed().endpoint == std::optional<std::string>("http://e"));
  }
  SECTION("usage errors name the argument") {
    const auto fails_naming = [&](std::vector<std::string> args, const std::string& named) {
      INFO("args: " << args.size() << " named " << named);
      demo_line demo;
      args.insert(args.begin(), "demo");
      try {
        demo.line.parse(args);
        FAIL("no usage_error");
      } catch (const cli::usage_error& error) {
        CHECK_THAT(error.what(), Contains(named));
      }
    };
    fails_naming({"one", "--bogus"}, "--bogus");
    fails_naming({"one", "--bogus=1"}, "--bogus");
    fails_naming({"one", "--value"}, "--value");
    fails_naming({"one", "--value", "a", "--value=b"}, "--value");
    fails_naming({}, "A [B]");
    fails_naming({"--flag"}, "A [B]");
    fails_naming({"one", "two", "three"}, "three");
  }
}

TEST_CASE("cli::split_list splits on commas and rejects empty items", "[cli][parse]") {
  CHECK(cli::split_list("a", "with") == std::vector<std::string>{"a"});
  CHECK(cli::split_list("a,b,c", "with") == std::vector<std::string>{"a", "b", "c"});
  for (const std::string_view text : {"", ",", "a,", ",a", "a,,b"}) {
    INFO("'" << text << "'");
    try {
      cli::split_list(text, "with");
      FAIL("no usage_error");
    } catch (const cli::usage_error& error) {
      CHECK_THAT(error.what(), Contains("--with"));
    }
  }
}

// ---------------------------------------------------------------------------
// The binary

TEST_CASE("two users in two processes: bob's tail gets alice's SHARE then DELETE", "[cli][tail]") {
  temp_dir dir;
  const auto& root = dir.path();
  auto tail = start(root, {"--user", "bob123", "tail", "--count", "2", "--format", "json", "--timeout", "30"});
  wait_until_tailing(*tail, root, "bob123");
  REQUIRE_FALSE(tail->exited());

  const auto created = run_ok(root, {"--user", "alice222", "create", "SharedEvents/a.txt", "-"}, "hello\n");
  const auto created_lines = split_lines(created);
  REQUIRE(created_lines.size() == 1);
  const auto version = versioned_path::try_parse(created_lines[0]);
  REQUIRE(version);
  CHECK(version->path == "SharedEvents/a.txt");
  CHECK(version->user == "alice222");
  CHECK(run_ok(root, {"--user", "alice222", "share", "SharedEvents/", "--with", "bob123"}) == created);
  CHECK(run_ok(root, {"--user", "bob123", "cat", created_lines[0]}) == "hello\n");
  CHECK(run_ok(root, {"--user", "alice222", "delete", "SharedEvents/", "--recursive"}) == created);

  const int status = tail->wait();
  INFO("tail stdout: " << tail->out() << "\ntail stderr: " << tail->err());
  CHECK(status == 0);
  CHECK(tail->err().empty());
  const auto events = parse_json_lines(tail->out());
  REQUIRE(events.size() == 2);
  CHECK(events[0].name == "SHARE");
  CHECK(events[0].data == created_lines[0]);
  CHECK(events[0].actor == "alice222");
  CHECK(events[1].name == "DELETE");
  CHECK(events[1].data == created_lines[0]);
  CHECK(events[1].actor == "alice222");
  CHECK(events[0].id != events[1].id);
  CHECK(cli::parse_time(events[0].occurred_at) <= cli::parse_time(events[1].occurred_at));

  // Deleted: bob can no longer read it.
  check_runtime_error(root, {"--user", "bob123", "cat", created_lines[0]}, {"bob123", "SharedEvents/a.txt"});
}

TEST_CASE("tail --count stops after N events and --checkpoint continues after them (json by default on a pipe)",
          "[cli][tail]") {
  temp_dir dir;
  const auto& root = dir.path();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(publish(root, "EV", "e" + std::to_string(i)));
  const auto checkpoint = (root / "tail.checkpoint").string();

  const auto first = parse_json_lines(
      run_ok(root, {"--user", "bob123", "tail", "--from-start", "--count", "2", "--checkpoint", checkpoint}));
  REQUIRE(first.size() == 2);
  CHECK(first[0].data == "e0");
  CHECK(first[1].data == "e1");
  CHECK(first[0].id == ids[0]);
  CHECK(first[0].name == "EV");

  const auto rest = parse_json_lines(run_ok(
      root, {"--user", "bob123", "tail", "--checkpoint", checkpoint, "--count", "3", "--format", "json"}));
  REQUIRE(rest.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(rest[i].data == "e" + std::to_string(i + 2));
    CHECK(rest[i].id == ids[i + 2]);
  }

  // Filters: --names and --prefix.
  publish(root, "OTHER", "x1");
  const auto filtered = parse_json_lines(run_ok(
      root, {"--user", "bob123", "tail", "--from-start", "--names", "OTHER,NONE", "--count", "1", "--timeout", "20"}));
  REQUIRE(filtered.size() == 1);
  CHECK(filtered[0].data == "x1");
  const auto prefixed = parse_json_lines(
      run_ok(root, {"--user", "bob123", "tail", "--from-start", "--prefix", "e3", "--count", "1", "--timeout", "20"}));
  REQUIRE(prefixed.size() == 1);
  CHECK(prefixed[0].data == "e3");

  // Text: one aligned line per event with its time, name, actor and data.
  const auto text = run_ok(root, {"--user", "bob123", "tail", "--from-start", "--count", "1", "--format", "text"});
  const auto lines = split_lines(text);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Contains("EV") && Contains("alice222") && Contains("e0"));
  CHECK(is_iso_utc(lines[0].substr(0, lines[0].find(' '))));
}

TEST_CASE("tail --checkpoint across SIGTERM and restart prints every event exactly once", "[cli][tail][checkpoint]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto checkpoint = (root / "tail.checkpoint").string();
  const std::vector<std::string> tail_args{"--user", "bob123", "tail", "--checkpoint", checkpoint, "--from-start",
                                           "--format", "json"};
  std::map<std::string, std::string> published;  // data → id
  std::vector<printed_event> printed;            // by every run, in order
  std::set<std::string> seen;
  const auto covered = [&] {
    return seen.size() >= published.size() &&
           std::all_of(published.begin(), published.end(), [&](const auto& p) { return seen.count(p.first) > 0; });
  };

  // Reads `tail` until `ready()`, then (not reading, so a tail with more to
  // print blocks on its full stdout) waits until it sleeps, and stops it
  // with SIGTERM; requires status 0.
  const auto stop = [&](process& tail, tail_output& output, const std::function<bool()>& ready) {
    const bool got = wait_for(
        [&] {
          output.update(tail);
          return tail.exited() || ready();
        },
        {&tail});
    INFO("stdout: " << tail.out() << "\nstderr: " << tail.err());
    REQUIRE(got);
    REQUIRE(wait_for([&] { return tail.exited() || tail.sleeping(); }));
    REQUIRE_FALSE(tail.exited());
    tail.signal(SIGTERM);
    CHECK(tail.wait() == 0);
    CHECK(tail.err().empty());
    output.update(tail);
    printed.insert(printed.end(), output.events.begin(), output.events.end());
  };

  SECTION("rounds of publish, tail until caught up, SIGTERM") {
    for (int round = 0; round < 4; ++round) {
      for (int i = 0; i < 3; ++i) {
        const auto data = "r" + std::to_string(round) + "-" + std::to_string(i);
        published[data] = publish(root, "ROUND", data);
      }
      auto tail = start(root, tail_args);
      tail_output output(&seen);
      stop(*tail, output, covered);
    }
    // A restart with nothing new prints nothing.
    auto tail = start(root, tail_args);
    wait_until_tailing(*tail, root, "bob123");
    tail_output output(&seen);
    stop(*tail, output, [] { return true; });
    CHECK(output.events.empty());
  }

  SECTION("SIGTERM mid-backlog, while the tail is blocked writing to a full stdout pipe") {
    published = publish_backlog(root, "bk:", 3000);
    std::mt19937 random(std::random_device{}());
    int stops = 0;
    for (; stops < 20 && !covered(); ++stops) {
      auto tail = start(root, tail_args);
      tail_output output(&seen);
      const auto lines = std::uniform_int_distribution<std::size_t>(1, 400)(random);
      stop(*tail, output, [&] { return output.events.size() >= lines || covered(); });
    }
    CHECK(stops >= 2);
    auto tail = start(root, tail_args);
    tail_output output(&seen);
    wait_until_tailing(*tail, root, "bob123");
    stop(*tail, output, covered);
  }

  std::map<std::string, int> times;
  for (const auto& e : printed) {
    ++times[e.data];
    INFO(e.data);
    REQUIRE(published.count(e.data) == 1);
    CHECK(e.id == published[e.data]);
  }
  std::size_t wrong = 0;
  for (const auto& [data, id] : published) {
    if (times[data] == 1) continue;
    ++wrong;
    if (wrong <= 10) {
      INFO(data << " printed " << times[data] << " times");
      CHECK(times[data] == 1);
    }
  }
  CHECK(wrong == 0);
  CHECK(printed.size() == published.size());
}

TEST_CASE("tail --checkpoint across SIGKILL and restart loses nothing and repeats at most 64 events",
          "[cli][tail][checkpoint]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto checkpoint = (root / "tail.checkpoint").string();
  const std::vector<std::string> tail_args{"--user", "bob123", "tail", "--checkpoint", checkpoint, "--from-start",
                                           "--format", "json"};
  constexpr std::size_t repeat_bound = 64;  // tail saves every 64 events (docs/guide/operating.md)
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 random(seed);

  // A backlog (so kills land mid-catch-up, where repeats can reach the
  // bound), and a writer process publishing while the tail is killed, one
  // tool process per event. The tail is killed and restarted until the
  // writer is done, so the writer's events set how long the test runs:
  // STOREWATCH_SOAK_ROUNDS of them (120; scripts/test.sh runs 40 under the
  // sanitizers, where starting the tool takes some 0.3 s).
  auto published = publish_backlog(root, "bk:", 1500);
  const auto writer_events = static_cast<int>(env_number("STOREWATCH_SOAK_ROUNDS", 120));
  REQUIRE(writer_events > 0);
  process writer({"/bin/sh", "-c",
                  "i=1; while [ $i -le $2 ]; do \"$1\" --user alice222 publish WRITER w:$i --to bob123 || exit 1; "
                  "i=$((i+1)); done",
                  "sh", tool, std::to_string(writer_events)},
                 root);

  std::vector<std::vector<printed_event>> runs;
  std::set<std::string> seen;
  const auto seen_all = [&] {
    if (!writer.exited()) return false;
    for (const auto& [data, id] : published) {
      if (!seen.count(data)) return false;
    }
    for (int i = 1; i <= writer_events; ++i) {
      if (!seen.count("w:" + std::to_string(i))) return false;
    }
    return true;
  };

  int kills = 0;
  for (int attempt = 0; attempt < 80 && !(kills >= 8 && seen_all()); ++attempt) {
    auto tail = start(root, tail_args);
    tail_output output(&seen);
    const auto started = steady::now();
    if (attempt % 2 == 0) {
      // Once it has printed a random number of lines (or a while has passed).
      const auto lines = std::uniform_int_distribution<std::size_t>(1, 200)(random);
      wait_for(
          [&] {
            output.update(*tail);
            return tail->exited() || output.events.size() >= lines;
          },
          {tail.get(), &writer}, 1s);
    } else {
      // At a random moment after its start.
      const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(random));
      wait_for([&] { return tail->exited() || steady::now() - started >= delay; }, {tail.get(), &writer});
    }
    INFO("stderr: " << tail->err());
    REQUIRE_FALSE(tail->exited());
    tail->signal(SIGKILL);
    tail->wait();
    CHECK(tail->killed_by(SIGKILL));
    output.update(*tail);
    runs.push_back(output.events);
    ++kills;
    writer.pump(0ms);
    writer.exited();
  }
  {
    INFO("writer stderr: " << writer.err());
    REQUIRE(writer.wait() == 0);
  }
  // The writer printed one id per event it published.
  const auto writer_ids = split_lines(writer.out());
  REQUIRE(writer_ids.size() == static_cast<std::size_t>(writer_events));
  for (int i = 1; i <= writer_events; ++i) published["w:" + std::to_string(i)] = writer_ids[i - 1];

  // A last run that ends cleanly once it has caught up.
  {
    auto tail = start(root, tail_args);
    tail_output output(&seen);
    wait_until_tailing(*tail, root, "bob123");
    const bool caught_up = wait_for(
        [&] {
          output.update(*tail);
          return tail->exited() || std::all_of(published.begin(), published.end(),
                                               [&](const auto& p) { return seen.count(p.first) > 0; });
        },
        {tail.get()});
    INFO("stderr: " << tail->err());
    REQUIRE(caught_up);
    REQUIRE(wait_for([&] { return tail->exited() || tail->sleeping(); }));
    REQUIRE_FALSE(tail->exited());
    tail->signal(SIGTERM);
    CHECK(tail->wait() == 0);
    output.update(*tail);
    runs.push_back(output.events);
  }

  // Every event at least once, each with the id it was published with;
  // a run repeats at most `repeat_bound` events of the runs before it.
  std::set<std::string> before;
  std::size_t most_repeats = 0;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    std::size_t repeats = 0;
    std::set<std::string> this_run;
    for (const auto& e : runs[r]) {
      INFO("run " << r << ": " << e.data << " id " << e.id);
      REQUIRE(published.count(e.data) == 1);
      CHECK(e.id == published[e.data]);
      CHECK(this_run.insert(e.data).second);  // never twice in one run
      if (before.count(e.data)) ++repeats;
    }
    INFO("run " << r << " of " << runs.size() << " printed " << runs[r].size() << ", repeating " << repeats);
    CHECK(repeats <= repeat_bound);
    most_repeats = std::max(most_repeats, repeats);
    before.insert(this_run.begin(), this_run.end());
  }
  std::size_t missing = 0;
  for (const auto& [data, id] : published) missing += before.count(data) == 0 ? 1 : 0;
  CHECK(missing == 0);
  CHECK(kills >= 8);
  WARN(kills << " kills; at most " << most_repeats << " repeats in a run");
}

TEST_CASE("usage errors: status 2 and one stderr line naming the argument and nothing on stdout", "[cli][errors]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto file = root / "input.txt";
  write_file(file, "x");
  const std::vector<std::string> alice{"--user", "alice222"};
  const auto as_alice = [&](std::vector<std::string> args) {
    args.insert(args.begin(), alice.begin(), alice.end());
    return args;
  };

  // alice is known to the store, so only the arguments can be at fault.
  const auto created = run_ok(root, as_alice({"create", "kept.txt", file.string()}));

  check_usage_error(root, {}, {"command"});
  check_usage_error(root, as_alice({"frob"}), {"frob"});
  check_usage_error(root, as_alice({"ls", "--bogus"}), {"--bogus"});
  check_usage_error(root, {"--bogus", "ls"}, {"--bogus"});
  check_usage_error(root, {"ls", "--user", "alice222"}, {"--user"});
  check_usage_error(root, {"--user"}, {"--user"});
  check_usage_error(root, as_alice({"share", "Shared/"}), {"--with"});
  check_usage_error(root, as_alice({"share", "Shared/", "--with"}), {"--with"});
  check_usage_error(root, as_alice({"share", "Shared/", "--with", "bob123,"}), {"--with"});
  check_usage_error(root, as_alice({"share", "Shared/", "--with", "bob 123"}), {"bob 123"});
  check_usage_error(root, as_alice({"share", "Shared/", "--with", "bob123", "--since", "yesterday"}),
                    {"--since", "yesterday"});
  check_usage_error(root, as_alice({"delete", "Shared/", "--until", "2025-10-22T12:15:41"}), {"--until"});
  check_usage_error(root, as_alice({"unshare", "Shared/", "--with", "bob123", "--since", "2025-13-01"}),
                    {"--since", "2025-13-01"});
  check_usage_error(root, as_alice({"publish", "EV", "data"}), {"--to"});
  check_usage_error(root, as_alice({"publish", "SHARE", "data", "--to", "bob123"}), {"SHARE"});
  check_usage_error(root, as_alice({"compact"}), {"--older-than"});
  check_usage_error(root, as_alice({"compact", "--older-than", "60", "--settled", "1"}), {"--settled"});
  check_usage_error(root, as_alice({"compact", "--older-than", "soon"}), {"--older-than", "soon"});
  check_usage_error(root, as_alice({"compact", "--older-than", "99999999999999999999"}), {"--older-than"});
  check_usage_error(root, as_alice({"tail", "--format", "xml"}), {"--format", "xml"});
  check_usage_error(root, as_alice({"tail", "--count", "x"}), {"--count", "'x'"});
  check_usage_error(root, as_alice({"tail", "--count", "-1"}), {"--count"});
  check_usage_error(root, as_alice({"tail", "--count", "1.5"}), {"--count"});
  check_usage_error(root, as_alice({"tail", "--count", "1e30"}), {"--count"});  // too large for a count
  check_usage_error(root, as_alice({"tail", "--count", "inf"}), {"--count"});
  check_usage_error(root, as_alice({"tail", "--timeout", "soon"}), {"--timeout"});
  check_usage_error(root, as_alice({"tail", "--interval", "nan"}), {"--interval"});
  check_usage_error(root, as_alice({"tail", "--names", "SHARE,,DELETE"}), {"--names"});
  check_usage_error(root, as_alice({"tail", "extra"}), {"extra"});
  check_usage_error(root, as_alice({"create", "../x", file.string()}), {"../x"});
  check_usage_error(root, as_alice({"create", "a/../x", file.string()}), {"a/../x"});
  check_usage_error(root, as_alice({"share", "../", "--with", "bob123"}), {"../"});
  check_usage_error(root, as_alice({"ls", "a/.."}), {"a/.."});
  check_usage_error(root, as_alice({"create"}), {"PATH"});
  check_usage_error(root, as_alice({"cat", "a", "b"}), {"'b'"});
  check_usage_error(root, as_alice({"cat", "not-a-version"}), {"not-a-version"});
  check_usage_error(root, {"--user", "bad/user", "ls"}, {"bad/user", "--user"});
  // A bad STOREWATCH_USER is named as such, and stops only the commands that act as a user.
  check_usage_error(root, {"ls"}, {"a b", "STOREWATCH_USER"}, {"STOREWATCH_USER=a b"});
  CHECK_THAT(run_ok(root, {"stats"}, std::nullopt, {"STOREWATCH_USER=a b"}), Contains("alice222"));
  run_ok(root, {"watch", root.string(), "--timeout", "0.1"}, std::nullopt, {"STOREWATCH_USER=a b"});
  check_usage_error(root, {"--user", "..", "ls"}, {".."});
  check_usage_error(root, {"ls"}, {"--user"});
  check_usage_error(root, {"--user=", "ls"}, {"--user"});
  // An empty FILE or FOLDER: no checkpoint locked as ".lock" here, no watch that keeps nothing.
  check_usage_error(root, as_alice({"tail", "--checkpoint", "", "--timeout", "5"}), {"--checkpoint", "empty"});
  check_usage_error(root, as_alice({"tail", "--checkpoint=", "--timeout", "5"}), {"--checkpoint", "empty"});
  check_usage_error(root, {"watch", root.string(), "--state", "", "--timeout", "5"}, {"--state", "empty"});

  // Nothing was created, shared or deleted by the failed commands.
  CHECK(run_ok(root, as_alice({"ls", "--recursive"})) == created);
}

TEST_CASE("runtime errors: status 1 and one stderr line naming the path or user and nothing on stdout", "[cli][errors]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto file = root / "input.txt";
  write_file(file, "secret");
  const auto version = split_lines(run_ok(root, {"--user", "alice222", "create", "Private/a.txt", file.string()}));
  REQUIRE(version.size() == 1);
  publish(root, "HELLO", "carol is known now");  // to bob123
  run_ok(root, {"--user", "alice222", "publish", "HELLO", "hi", "--to", "carol"});

  SECTION("missing root") {
    const std::string missing = "/nonexistent/x";
    REQUIRE_FALSE(fs::exists(missing));
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--root", missing, "--user", "bob123", "ls"},
          {"--root", missing, "--user", "bob123", "cat", version[0]},
          {"--root", missing, "--user", "bob123", "tail", "--count", "1", "--timeout", "5"},
          {"--root", missing, "stats"},
          {"--root=" + missing, "--user", "alice222", "create", "a.txt", file.string()},
          {"--root", missing, "--user", "alice222", "publish", "EV", "x", "--to", "bob123"}}) {
      check_runtime_error(root, args, {missing});
    }
    CHECK_FALSE(fs::exists(missing));
    // STOREWATCH_ROOT as well as --root.
    check_runtime_error(root / "missing", {"--user", "bob123", "ls"}, {(root / "missing").string()});
  }
  SECTION("unknown user") {
    check_runtime_error(root, {"--user", "dave", "ls"}, {"dave"});
    check_runtime_error(root, {"--user", "dave", "ls", "Private/", "--recursive"}, {"dave"});
    check_runtime_error(root, {"--user", "dave", "cat", version[0]}, {"dave"});
    // Asking did not make dave known.
    check_runtime_error(root, {"--user", "dave", "ls"}, {"dave"});
  }
  SECTION("a version not shared with you") {
    check_runtime_error(root, {"--user", "bob123", "cat", version[0]}, {"bob123", "Private/a.txt"});
    check_runtime_error(root, {"--user", "carol", "cat", version[0]}, {"carol", "Private/a.txt"});
    const auto r = run(root, {"--user", "carol", "cat", version[0]});
    CHECK_THAT(r.err, Contains("permission denied") || Contains("not shared"));
    // A version that does not exist, even for its owner.
    check_runtime_error(root, {"--user", "alice222", "cat", "Private/b.txt\xE2\x9C\xB9" "alice222_1"},
                        {"Private/b.txt"});
  }
  SECTION("a missing input file") {
    check_runtime_error(root, {"--user", "alice222", "create", "a.txt", (root / "no-such-file").string()},
                        {(root / "no-such-file").string()});
  }
  SECTION("watch given a file, not a directory: said so, not \"does not exist\"") {
    check_runtime_error(root, {"watch", file.string()}, {file.string(), "is not a directory"});
  }
}

TEST_CASE("help and version: --help and COMMAND --help and --version print to stdout with status 0", "[cli]") {
  temp_dir dir;
  const auto missing = dir.path() / "no-store-needed";
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--help"}, {"-h"}, {"--root", "x", "--help"}}) {
    const auto r = run(missing, args);
    INFO(describe(args) << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Contains("usage"));
    for (const char* command :
         {"create", "share", "unshare", "delete", "publish", "ls", "cat", "tail", "stats", "watch"}) {
      CHECK_THAT(r.out, Contains(command));
    }
  }
  for (const std::string command :
       {"create", "share", "unshare", "delete", "publish", "ls", "cat", "tail", "stats", "watch"}) {
    const auto r = run(missing, {command, "--help"});
    INFO(command << " --help\nstderr: " << r.err);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Contains("usage") && Contains(command));
  }
  const auto tail_help = run(missing, {"tail", "--help"});
  for (const char* option : {"--from-start", "--checkpoint", "--names", "--prefix", "--format", "--count", "--timeout",
                             "--interval"}) {
    CHECK_THAT(tail_help.out, Contains(option));
  }
  const auto share_help = run(missing, {"share", "--with", "x", "--help"});
  CHECK(share_help.status == 0);
  CHECK_THAT(share_help.out, Contains("--with") && Contains("--recursive") && Contains("--since"));

  const auto version = run(missing, {"--version"});
  CHECK(version.status == 0);
  CHECK(version.err.empty());
  CHECK(version.out == "storewatch " STOREWATCH_VERSION_STRING "\n");  // the CMake project version
  CHECK_FALSE(fs::exists(missing));
}

TEST_CASE("tail --timeout: status 124 when --count events did not arrive in time", "[cli][tail]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto started = steady::now();
  const auto r = run(root, {"--user", "bob123", "tail", "--timeout", "0.3", "--count", "5"});
  const auto took = steady::now() - started;
  INFO("stderr: " << r.err);
  CHECK(r.status == 124);
  CHECK(r.out.empty());
  CHECK(took >= 300ms);

  // Some events, but fewer than --count: they are printed, then 124.
  publish(root, "EV", "only one");
  const auto partial = run(root, {"--user", "bob123", "tail", "--from-start", "--timeout", "0.3", "--count", "2"});
  CHECK(partial.status == 124);
  const auto events = parse_json_lines(partial.out);
  REQUIRE(events.size() == 1);
  CHECK(events[0].data == "only one");

  // Without --count, the timeout just ends the tail.
  const auto plain = run(root, {"--user", "bob123", "tail", "--timeout", "0.3"});
  CHECK(plain.status == 0);
  CHECK(plain.out.empty());
}

TEST_CASE("tail --timeout with a huge or infinite value does not time out at once", "[cli][tail]") {
  // A timeout too large for the timer must not become "already expired";
  // rejecting it as a usage error (status 2) would also do.
  for (const std::string timeout : {"1e300", "inf", "1e16"}) {
    temp_dir dir;
    const auto& root = dir.path();
    auto tail = start(root, {"--user", "bob123", "tail", "--count", "1", "--timeout", timeout});
    wait_until_tailing(*tail, root, "bob123");
    if (!tail->exited()) publish(root, "EV", "after a while");
    const int status = tail->wait();
    INFO("tail --count 1 --timeout " << timeout << "\nstatus " << status << "\nstdout: " << tail->out()
                                     << "\nstderr: " << tail->err());
    if (status == 2) {
      CHECK_THAT(tail->err(), Contains("--timeout"));
      continue;
    }
    CHECK(status == 0);
    CHECK(split_lines(tail->out()).size() == 1);
  }
}

TEST_CASE("ls and cat: what bob can see and its exact bytes", "[cli][files]") {
  temp_dir dir;
  const auto& root = dir.path();
  // A NUL, bytes that are not UTF-8, a CR LF, and a trailing NUL.
  const char raw[] = "a\0b\xff\xfe\x80\xC3 end\r\n";
  const std::string bytes(raw, sizeof raw);  // with the terminating NUL
  const char raw_more[] = "\x01\x02\xE2\x9C\xB9\xF0\x9F\x98\x80 stdin\n\xff";
  const std::string more = std::string(1, '\0') + std::string(raw_more, sizeof raw_more - 1);
  REQUIRE(bytes.size() == 14);
  const auto file = root / "input.bin";
  write_file(file, bytes);

  const auto first = run_ok(root, {"--user", "alice222", "create", "Shared/bin.dat", file.string()});
  const auto second = run_ok(root, {"--user", "alice222", "create", "Shared/sub/stdin.dat", "-"}, more);
  const auto own = run_ok(root, {"--user", "alice222", "create", "Private/p.txt", file.string()});
  REQUIRE(split_lines(first).size() == 1);
  REQUIRE(split_lines(second).size() == 1);
  const auto v1 = split_lines(first)[0];
  const auto v2 = split_lines(second)[0];
  CHECK(run_ok(root, {"--user", "alice222", "share", "Shared/", "--with", "bob123", "--recursive"}) == first + second);

  CHECK(run_ok(root, {"--user", "bob123", "ls", "--recursive"}) == first + second);
  CHECK(run_ok(root, {"--user", "bob123", "ls", "Shared/"}) == first);
  CHECK(run_ok(root, {"--user", "bob123", "ls", "Shared/sub/", "--recursive"}) == second);
  CHECK(run_ok(root, {"--user", "bob123", "ls"}).empty());
  CHECK(run_ok(root, {"--user", "alice222", "ls", "--recursive"}) == own + first + second);

  CHECK(run_ok(root, {"--user", "bob123", "cat", v1}) == bytes);
  CHECK(run_ok(root, {"--user", "bob123", "cat", v2}) == more);
  CHECK(run_ok(root, {"--user", "alice222", "cat", v1}) == bytes);
  CHECK(run_ok(root, {"--user", "alice222", "cat", "--", v2}) == more);

  // STOREWATCH_USER stands in for --user.
  const auto r = run(root, {"cat", v1}, std::nullopt, {"STOREWATCH_USER=bob123"});
  CHECK(r.status == 0);
  CHECK(r.out == bytes);

  // Unshared: gone from bob's view.
  CHECK(run_ok(root, {"--user", "alice222", "unshare", "Shared/sub/", "--with", "bob123"}) == second);
  CHECK(run_ok(root, {"--user", "bob123", "ls", "--recursive"}) == first);
  check_runtime_error(root, {"--user", "bob123", "cat", v2}, {"bob123"});
}

TEST_CASE("stats prints a line per user with event counts", "[cli][stats]") {
  temp_dir dir;
  const auto& root = dir.path();
  run_ok(root, {"--user", "alice222", "create", "Shared/a.txt", "-"}, "a");  // alice: CREATE
  run_ok(root, {"--user", "alice222", "share", "Shared/", "--with", "bob123"});  // bob: SHARE
  publish(root, "EV", "1");                                                      // bob
  publish(root, "EV", "2");                                                      // bob
  run_ok(root, {"--user", "alice222", "publish", "EV", "3", "--to", "carol"});   // carol
  run_ok(root, {"--user", "alice222", "delete", "Shared/", "--recursive"});      // alice and bob: DELETE

  const auto out = run_ok(root, {"stats"});
  INFO(out);
  auto rows = stats_rows_checked(out);
  for (const char* user : {"alice222", "bob123", "carol"}) {
    const auto& row = rows[user];
    INFO(user);
    REQUIRE(row.size() == 6);  // user events writers bytes oldest newest
    CHECK(std::stoul(row[2]) >= 1);
    CHECK(std::stoul(row[3]) > 0);
    const auto oldest = cli::parse_time(row[4]);
    const auto newest = cli::parse_time(row[5]);
    REQUIRE(oldest);
    REQUIRE(newest);
    CHECK(*oldest <= *newest);
  }

  // An empty store: the header and a zero total.
  temp_dir empty;
  const auto none = split_lines(run_ok(empty.path(), {"stats"}));
  REQUIRE(none.size() == 2);
  CHECK_THAT(none[1], StartsWith("total"));
}

TEST_CASE("watch DIR: a directory's changes as JSON lines, and with --state a restart prints only what changed meanwhile",
          "[cli][watch]") {
  temp_dir dir;
  const auto tree = dir.path() / "tree";
  const auto state = dir.path() / "state";
  fs::create_directories(tree / "sub");
  write_file(tree / "before.txt", "b");
  const std::vector<std::string> args{"watch", tree.string(), "--state", state.string(), "--timeout", "30"};
  const auto with = [&](std::vector<std::string> more) {
    auto all = args;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };

  auto watch = start(dir.path(), with({"--count", "4"}));
  // Watching once its state folder has a snapshot: the baseline scan is done.
  const bool ready = wait_for([&] { return watch->exited() || fs::exists(state / "snapshot"); }, {watch.get()});
  INFO("stderr: " << watch->err());
  REQUIRE(ready);
  REQUIRE_FALSE(watch->exited());
  const auto seen = [&](std::size_t n) {
    return wait_for([&] { return watch->exited() || split_lines(watch->out()).size() >= n; }, {watch.get()});
  };
  write_file(tree / "a.txt", "a");
  REQUIRE(seen(1));
  fs::rename(tree / "a.txt", tree / "sub" / "a.txt");
  REQUIRE(seen(2));
  write_file(tree / "sub" / "a.txt", "longer");
  REQUIRE(seen(3));
  fs::remove(tree / "before.txt");
  CHECK(watch->wait() == 0);
  CHECK(watch->err().empty());
  const auto events = parse_json_lines(watch->out());
  REQUIRE(events.size() == 4);
  CHECK(events[0].name == "CREATE");
  CHECK(events[0].data == "a.txt");
  CHECK(events[1].name == "RENAME");
  CHECK(events[1].data == "sub/a.txt");
  CHECK(events[1].attributes["from"] == "a.txt");
  CHECK(events[2].name == "MODIFY");
  CHECK(events[2].attributes["size"] == 6);
  CHECK(events[3].name == "DELETE");
  CHECK(events[3].data == "before.txt");

  // Changed while no watch ran: exactly that, once.
  write_file(tree / "offline.txt", "o");
  const auto offline = run(dir.path(), with({"--count", "1"}));
  INFO("stderr: " << offline.err);
  CHECK(offline.status == 0);
  const auto later = parse_json_lines(offline.out);
  REQUIRE(later.size() == 1);
  CHECK(later[0].name == "CREATE");
  CHECK(later[0].data == "offline.txt");
  // Nothing new: nothing printed, status 124 at the timeout.
  const auto nothing = run(dir.path(), {"watch", tree.string(), "--state", state.string(), "--count", "1", "--timeout", "0.5"});
  CHECK(nothing.status == 124);
  CHECK(nothing.out.empty());

  check_runtime_error(dir.path(), {"watch", (dir.path() / "missing").string()}, {(dir.path() / "missing").string()});
  check_usage_error(dir.path(), {"watch"}, {"DIR"});
  check_usage_error(dir.path(), {"watch", tree.string(), "--include", "a,,b"}, {"--include"});
  check_usage_error(dir.path(), {"watch", tree.string(), "--settle", "soon"}, {"--settle"});
}

TEST_CASE("watch DIR --state inside DIR: the state folder is left out, not reported as changes for ever",
          "[cli][watch]") {
  temp_dir dir;
  const auto tree = dir.path() / "tree";
  const auto state = tree / ".watch-state";  // as in `storewatch watch . --state .watch-state`
  fs::create_directories(tree);
  auto watch = start(dir.path(), {"watch", tree.string(), "--state", state.string(), "--count", "3", "--timeout", "30"});
  const bool ready = wait_for([&] { return watch->exited() || fs::exists(state / "snapshot"); }, {watch.get()});
  INFO("stderr: " << watch->err());
  REQUIRE(ready);
  // Each file once the one before it was printed: the three are the events --count waits for.
  for (const std::string name : {"a.txt", "b.txt", "c.txt"}) {
    write_file(tree / name, name);
    const auto n = static_cast<std::size_t>(name[0] - 'a' + 1);
    REQUIRE(wait_for([&] { return watch->exited() || split_lines(watch->out()).size() >= n; }, {watch.get()}));
  }
  CHECK(watch->wait() == 0);
  INFO("stdout: " << watch->out());
  const auto events = parse_json_lines(watch->out());
  REQUIRE(events.size() == 3);
  CHECK(events[0].data == "a.txt");
  CHECK(events[1].data == "b.txt");
  CHECK(events[2].data == "c.txt");
  // The watched directory itself cannot hold the state: refused, naming it.
  check_runtime_error(dir.path(), {"watch", tree.string(), "--state", tree.string(), "--timeout", "5"},
                      {tree.string(), "itself"});
}

TEST_CASE("tail --checkpoint with a new file, SIGKILLed before its first event: the restart prints exactly the "
          "events published since the first start",
          "[cli][tail][checkpoint]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto checkpoint = (root / "tail.checkpoint").string();
  publish(root, "EV", "before");
  auto first = start(root, {"--user", "bob123", "tail", "--checkpoint", checkpoint, "--format", "json"});
  wait_until_tailing(*first, root, "bob123");
  REQUIRE_FALSE(first->exited());
  first->signal(SIGKILL);
  first->wait();
  publish(root, "EV", "while down 0");
  publish(root, "EV", "while down 1");
  auto second = start(root, {"--user", "bob123", "tail", "--checkpoint", checkpoint, "--format", "json", "--count",
                             "2", "--timeout", "20"});
  REQUIRE(wait_for([&] { return second->exited(); }, {second.get()}));
  INFO("stderr: " << second->err());
  CHECK(second->wait() == 0);
  std::vector<std::string> data;
  for (const auto& e : parse_json_lines(second->out())) data.push_back(e.data);
  CHECK(data == std::vector<std::string>{"while down 0", "while down 1"});
}

TEST_CASE("tail with a corrupt journal epoch: said once naming the file, each event printed once, and --timeout "
          "holds",
          "[cli][tail]") {
  temp_dir dir;
  const auto& root = dir.path();
  publish(root, "EV", "one");
  publish(root, "EV", "two");
  const auto epoch = root / "journals" / "bob123" / "epoch";
  {
    std::ofstream out(epoch, std::ios::trunc);
    out << "bad!\n";
  }
  auto tail = start(root, {"--user", "bob123", "tail", "--from-start", "--timeout", "1", "--format", "json"});
  REQUIRE(wait_for([&] { return tail->exited(); }, {tail.get()}));
  INFO("stderr: " << tail->err());
  CHECK(tail->wait() == 0);
  std::vector<std::string> data;
  for (const auto& e : parse_json_lines(tail->out())) data.push_back(e.data);
  CHECK(data == std::vector<std::string>{"one", "two"});
  const auto err = tail->err();
  CHECK_THAT(err, Contains(epoch.string()));
  CHECK(err.find(epoch.string()) == err.rfind(epoch.string()));  // once
}

TEST_CASE("a corrupt journal epoch is said by a tail that starts at the end and by stats, once each",
          "[cli][tail]") {
  // Reading to the journal's end used to swallow what the source reports
  // once (the cursor it returns holds the stand-in epoch).
  temp_dir dir;
  const auto& root = dir.path();
  publish(root, "EV", "one");
  const auto epoch = root / "journals" / "bob123" / "epoch";
  {
    std::ofstream out(epoch, std::ios::trunc);
    out << "bad!\n";
  }
  auto tail = start(root, {"--user", "bob123", "tail", "--timeout", "1", "--format", "json"});
  REQUIRE(wait_for([&] { return tail->exited(); }, {tail.get()}));
  INFO("stderr: " << tail->err());
  CHECK(tail->wait() == 0);
  CHECK(tail->out().empty());  // started at the end: "one" is not printed
  const auto err = tail->err();
  CHECK_THAT(err, Contains(epoch.string()));
  CHECK(err.find(epoch.string()) == err.rfind(epoch.string()));  // once

  const auto stats = run(root, {"stats"});
  INFO("stats stderr: " << stats.err);
  CHECK(stats.status == 0);
  CHECK_THAT(stats.err, Contains(epoch.string()));
}

// ---------------------------------------------------------------------------
// Defects of the tool (#9-#16), each with the case that showed it

namespace {

bool has_raw_control(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\n') || u == 0x7F;
  });
}

}  // namespace

TEST_CASE("text output escapes control characters: no forged lines, no terminal escapes", "[cli][text]") {
  temp_dir dir;
  const auto& root = dir.path();
  const std::string forged = "hi\n2026-11-27T04:12:24.013Z  SHARE    alice222   Payroll/x.xlsx\x1b]0;pwned\a\r\u009B";
  publish(root, "NOTE", forged);
  const auto text = run_ok(root, {"--user", "bob123", "tail", "--from-start", "--count", "1", "--format", "text"});
  INFO(text);
  CHECK(split_lines(text).size() == 1);
  CHECK_FALSE(has_raw_control(text));
  CHECK_THAT(text, Contains("hi\\x0a2026-11-27") && Contains("\\x1b]0;pwned\\x07\\x0d\\u009B"));
  // JSON keeps the exact data.
  const auto json = parse_json_lines(
      run_ok(root, {"--user", "bob123", "tail", "--from-start", "--count", "1", "--format", "json"}));
  REQUIRE(json.size() == 1);
  CHECK(json[0].data == forged);

  // watch: a file whose name holds a newline and an escape sequence.
  const auto tree = root / "tree";
  fs::create_directories(tree);
  write_file(tree / "a\n2026-11-27T04:12:24.013Z  DELETE   x\x1b[2J", "x");
  const auto watched = run_ok(root, {"watch", tree.string(), "--existing", "--count", "1", "--format", "text",
                                     "--timeout", "30"});
  INFO(watched);
  CHECK(split_lines(watched).size() == 1);
  CHECK_FALSE(has_raw_control(watched));
  CHECK_THAT(watched, Contains("a\\x0a2026") && Contains("\\x1b[2J"));
}

TEST_CASE("text output escapes the line and paragraph separators", "[cli][text]") {
  // U+2028 / U+2029 end a line in text viewers and some terminals.
  temp_dir dir;
  const auto& root = dir.path();
  const std::string forged = "hi\u20282026-11-27T04:12:24.013Z  SHARE    alice222   Payroll/x.xlsx\u2029";
  publish(root, "NOTE", forged);
  const auto text = run_ok(root, {"--user", "bob123", "tail", "--from-start", "--count", "1", "--format", "text"});
  INFO(text);
  CHECK(text.find("\u2028") == std::string::npos);
  CHECK(text.find("\u2029") == std::string::npos);
  CHECK_THAT(text, Contains("hi\\u20282026-11-27") && Contains("x.xlsx\\u2029"));
  // A store path may hold one (it is not refused): shown escaped.
  run_ok(root, {"--user", "alice222", "create", "notes\u2028fake.txt", "-"}, "x");
  const auto listed = run_ok(root, {"--user", "alice222", "ls"});
  INFO(listed);
  CHECK(listed.find("\u2028") == std::string::npos);
  CHECK_THAT(listed, Contains("notes\\u2028fake.txt"));
}

TEST_CASE("paths with bidi overrides, zero-width characters or C1 controls are refused, naming the path",
          "[cli][paths]") {
  temp_dir dir;
  const auto& root = dir.path();
  for (const std::string path : {"doc\u202Etxt.exe\u200B", "a\u2066b.txt", "bom\uFEFF.txt", "zw\u200Dj.txt",
                                 "c1\u0085.txt", "dir\u202A/x.txt"}) {
    const auto r = run(root, {"--user", "alice222", "create", path, "-"}, "x");
    INFO(detail::quote(path) << "\nstatus " << r.status << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(one_line(r.err));
    CHECK_THAT(r.err, Contains("invalid path"));
    // Named, escaped: the message itself shows the hidden character.
    CHECK_THAT(r.err, Contains("\\u"));
    CHECK(r.err.find("\u202E") == std::string::npos);
    CHECK_FALSE(detail::path_problem(path).empty());
  }
  CHECK(detail::path_problem("caf\u00E9/na\u00EFve \u2713.txt").empty());  // other non-ASCII is fine
  check_usage_error(root, {"--user", "alice222", "share", "x\u202E/", "--with", "bob123"}, {"x\\u202E/"});
}

TEST_CASE("tail: SIGTERM while blocked on a full stdout pipe ends it at once, the checkpoint holds what was written",
          "[cli][tail][signals]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto published = publish_backlog(root, "bk:", 3000);  // far more than a pipe holds
  const auto checkpoint = (root / "tail.checkpoint").string();
  const std::vector<std::string> args{"--user", "bob123", "tail", "--from-start", "--checkpoint", checkpoint,
                                      "--format", "json"};
  auto tail = start(root, args);
  // Nothing reads its stdout: it fills the pipe and waits.
  REQUIRE(wait_for([&] { return tail->exited() || (fs::exists(checkpoint) && tail->sleeping()); }));
  REQUIRE_FALSE(tail->exited());
  tail->signal(SIGTERM);
  const bool ended = wait_for([&] { return tail->exited(); }, {}, 20s);  // still not reading
  if (!ended) tail->signal(SIGKILL);
  REQUIRE(ended);
  CHECK(tail->wait() == 0);
  INFO("stderr: " << tail->err());
  CHECK(tail->err().empty());
  std::map<std::string, int> times;
  const auto first = parse_json_lines(tail->out());
  CHECK(first.size() < published.size());
  for (const auto& e : first) ++times[e.data];

  // A restart prints the rest: every event exactly once over both runs.
  auto rest = start(root, args);
  std::set<std::string> seen;
  tail_output rest_output(&seen);
  REQUIRE(wait_for(
      [&] {
        rest_output.update(*rest);
        return rest->exited() || rest_output.events.size() + first.size() >= published.size();
      },
      {rest.get()}));
  rest->signal(SIGTERM);
  CHECK(rest->wait() == 0);
  rest_output.update(*rest);
  for (const auto& e : rest_output.events) ++times[e.data];
  std::size_t wrong = 0;
  for (const auto& [data, id] : published) wrong += times[data] == 1 ? 0 : 1;
  CHECK(wrong == 0);
  CHECK(times.size() == published.size());
}

namespace {

/// Runs `script` with bash, `$0` being the tool, STOREWATCH_ROOT `root`.
outcome run_shell(const fs::path& root, const std::string& script) {
  process p({"/bin/bash", "-c", script, tool}, root);
  const int status = p.wait();
  return {status, p.out(), p.err()};
}

}  // namespace

TEST_CASE("tail | head -1: a closed output ends the tail with status 1, not SIGPIPE", "[cli][tail][signals]") {
  temp_dir dir;
  const auto& root = dir.path();
  SECTION("while printing a backlog") {
    publish_backlog(root, "bk:", 2000);
    const auto r = run_shell(root, "\"$0\" --user bob123 tail --from-start --format json | head -n 1 >/dev/null; "
                                   "echo \"status ${PIPESTATUS[0]}\"");
    INFO("stderr: " << r.err);
    CHECK(r.out == "status 1\n");
    CHECK(one_line(r.err));
    CHECK_THAT(r.err, Contains("standard output"));
  }
  SECTION("while waiting for events") {
    publish(root, "EV", "one");
    const auto started = steady::now();
    const auto r = run_shell(root, "\"$0\" --user bob123 tail --from-start --format json --timeout 30 | head -n 1 "
                                   ">/dev/null; echo \"status ${PIPESTATUS[0]}\"");
    INFO("stderr: " << r.err);
    CHECK(r.out == "status 1\n");
    CHECK(steady::now() - started < 25s);  // not the --timeout
    CHECK_THAT(r.err, Contains("standard output"));
  }
}

TEST_CASE("tail: a checkpoint that cannot be saved is an error, said once", "[cli][tail][checkpoint]") {
  temp_dir dir;
  const auto& root = dir.path();
  publish(root, "EV", "before");
  SECTION("its folder does not exist") {
    const auto file = (root / "missing" / "tail.checkpoint").string();
    check_runtime_error(root, {"--user", "bob123", "tail", "--checkpoint", file, "--count", "1", "--timeout", "10"},
                        {file});
  }
  SECTION("its folder goes away while the tail runs") {
    fs::create_directories(root / "state");
    const auto file = (root / "state" / "tail.checkpoint").string();
    auto tail = start(root, {"--user", "bob123", "tail", "--checkpoint", file, "--count", "2", "--timeout", "30",
                             "--format", "json"});
    REQUIRE(wait_for([&] { return tail->exited() || (fs::exists(file) && tail->sleeping()); }, {tail.get()}));
    REQUIRE_FALSE(tail->exited());
    fs::remove_all(root / "state");
    publish(root, "EV", "after 1");
    publish(root, "EV", "after 2");
    const int status = tail->wait();
    INFO("stdout: " << tail->out() << "\nstderr: " << tail->err());
    CHECK(status == 1);
    CHECK(one_line(tail->err()));
    CHECK_THAT(tail->err(), Contains(file));
  }
  SECTION("two tails on one checkpoint") {
    const auto file = (root / "tail.checkpoint").string();
    auto first = start(root, {"--user", "bob123", "tail", "--checkpoint", file, "--timeout", "30"});
    REQUIRE(wait_for([&] { return first->exited() || fs::exists(file); }, {first.get()}));
    REQUIRE_FALSE(first->exited());
    check_runtime_error(root, {"--user", "bob123", "tail", "--checkpoint", file, "--count", "1"}, {file, "in use"});
    first->signal(SIGTERM);
    CHECK(first->wait() == 0);
  }
}

TEST_CASE("tail: an empty checkpoint file (made by touch) is refused, saying it is empty", "[cli][tail][checkpoint]") {
  temp_dir dir;
  const auto& root = dir.path();
  publish(root, "EV", "one");
  const auto file = (root / "tail.checkpoint").string();
  std::ofstream(file).flush();
  check_runtime_error(root, {"--user", "bob123", "tail", "--checkpoint", file, "--count", "1", "--timeout", "10"},
                      {file, "is empty", "remove the empty file"});
  CHECK(fs::file_size(file) == 0);
}

TEST_CASE("every command but init refuses a store that does not exist, and init makes one", "[cli][init]") {
  temp_dir dir;
  const auto root = dir.path() / "typo";  // its parent exists: the mistyped-root case
  const auto input = dir.path() / "input.txt";
  write_file(input, "x");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--user", "alice222", "create", "a.txt", input.string()},
        {"--user", "alice222", "publish", "EV", "x", "--to", "bob123"},
        {"--user", "alice222", "share", "a.txt", "--with", "bob123"},
        {"--user", "alice222", "unshare", "a.txt", "--with", "bob123"},
        {"--user", "alice222", "delete", "a.txt"},
        {"--user", "alice222", "ls"},
        {"--user", "alice222", "tail", "--count", "1", "--timeout", "5"},
        {"stats"}}) {
    check_runtime_error(root, args, {root.string(), "storewatch init"});
  }
  CHECK_FALSE(fs::exists(root));

  const auto made = run_ok(root, {"init"});
  CHECK_THAT(made, Contains(root.string()));
  CHECK(fs::is_directory(root));
  CHECK_THAT(run_ok(root, {"init"}), Contains("exists already"));
  CHECK(split_lines(run_ok(root, {"--user", "alice222", "create", "a.txt", input.string()})).size() == 1);

  // A plain file where the store should be: said so, not "does not exist".
  check_runtime_error(input, {"--user", "alice222", "ls"}, {input.string(), "not a folder"});
  check_runtime_error(input, {"init"}, {input.string(), "not a folder"});
}

TEST_CASE("share or unshare or delete matching nothing says so and exits 3", "[cli][files]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto alices = split_lines(run_ok(root, {"--user", "alice222", "create", "Shared/a.txt", "-"}, "a"));
  run_ok(root, {"--user", "bob123", "create", "Mine/b.txt", "-"}, "b");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--user", "alice222", "share", "Nothing/", "--with", "bob123"},
        {"--user", "alice222", "unshare", "Nothing/", "--with", "bob123"},
        {"--user", "alice222", "delete", "Nothing/", "--recursive"},
        {"--user", "alice222", "delete", "Shared/", "--until", "1000"},
        // bob's selection covers only alice's file: not his to delete
        {"--user", "bob123", "delete", "Shared/", "--recursive"},
        {"--user", "bob123", "share", "Shared/a.txt", "--with", "carol"}}) {
    check_failure(3, root, args, {args[3]});
  }
  CHECK(run_ok(root, {"--user", "alice222", "ls", "--recursive"}) == alices[0] + "\n");
}

TEST_CASE("create streams its input up to --max-size (default 64 MiB) and refuses more", "[cli][files]") {
  temp_dir dir;
  const auto& root = dir.path();
  const std::string kib(1024, 'k');
  CHECK(split_lines(run_ok(root, {"--user", "alice222", "create", "one.bin", "-", "--max-size", "1K"}, kib)).size() ==
        1);
  const auto over = run(root, {"--user", "alice222", "create", "two.bin", "-", "--max-size", "1K"}, kib + "!");
  CHECK(over.status == 1);
  CHECK(one_line(over.err));
  CHECK_THAT(over.err, Contains("1024 bytes") && Contains("--max-size"));
  const auto big = run(root, {"--user", "alice222", "create", "big.bin", "-", "--max-size", "64K"},
                       std::string(200 * 1024, 'b'));
  CHECK(big.status == 1);
  CHECK_THAT(big.err, Contains("--max-size") && Contains("standard input"));
  check_usage_error(root, {"--user", "alice222", "create", "x.bin", "-", "--max-size", "lots"}, {"--max-size"});
  // The default: a bounded generator just past 64 MiB.
  const auto r = run_shell(root, "head -c $((64 * 1024 * 1024 + 1)) /dev/zero | \"$0\" --user alice222 create "
                                 "zero.bin");
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK_THAT(r.err, Contains("64 MiB") && Contains("--max-size"));
  // Only the file within the limit was stored.
  const auto stored = split_lines(run_ok(root, {"--user", "alice222", "ls"}));
  REQUIRE(stored.size() == 1);
  CHECK_THAT(stored[0], StartsWith("one.bin"));
}

TEST_CASE("create streams a regular FILE whatever --max-size says", "[cli][files]") {
  temp_dir dir;
  const auto& root = dir.path();
  std::string bytes;
  for (int i = 0; bytes.size() < 200 * 1024; ++i) bytes += std::to_string(i) + ' ';
  const auto input = dir.path() / "input.bin";
  std::ofstream(input, std::ios::binary) << bytes;
  const auto created =
      split_lines(run_ok(root, {"--user", "alice222", "create", "big.bin", input.string(), "--max-size", "1K"}));
  REQUIRE(created.size() == 1);
  CHECK(run_ok(root, {"--user", "alice222", "cat", created[0]}) == bytes);
  const auto missing = run(root, {"--user", "alice222", "create", "none.bin", (dir.path() / "missing").string()});
  CHECK(missing.status == 1);
  CHECK_THAT(missing.err, Contains("does not exist"));
  // A malformed --max-size is refused even where it would not apply.
  check_usage_error(root, {"--user", "alice222", "create", "odd.bin", input.string(), "--max-size", "1X"},
                    {"--max-size", "1X"});
  CHECK(split_lines(run_ok(root, {"--user", "alice222", "ls"})).size() == 1);
}

TEST_CASE("output that cannot be written (a full disk) is status 1 and one stderr line, not a silent short file",
          "[cli][errors]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto version = split_lines(run_ok(root, {"--user", "alice222", "create", "a.txt", "-"}, "some bytes"));
  REQUIRE(version.size() == 1);
  for (const std::string& command :
       {"--user alice222 cat '" + version[0] + "'", std::string("--user alice222 ls"), std::string("stats"),
        std::string("--user alice222 create b.txt - </dev/null"), std::string("--version")}) {
    const auto r = run_shell(root, "\"$0\" " + command + " >/dev/full; echo \"status $?\"");
    INFO(command << "\nstderr: " << r.err);
    CHECK(r.out == "status 1\n");
    CHECK(one_line(r.err));
    CHECK_THAT(r.err, StartsWith("storewatch: ") && Contains("standard output") && Contains("No space left"));
  }
}

TEST_CASE("options: help names each value, numbers are plain decimals, contradictions are usage errors",
          "[cli][errors]") {
  temp_dir dir;
  const auto& root = dir.path();
  const auto help = run_ok(root, {"tail", "--help"});
  CHECK_THAT(help, Contains("--checkpoint FILE") && Contains("--count N") && Contains("--timeout SECONDS") &&
                       Contains("--interval SECONDS") && Contains("--hinted-interval SECONDS"));
  CHECK_THAT(run_ok(root, {"share", "--help"}), Contains("--with USERS") && Contains("--since T"));
  CHECK(help.find(" X ") == std::string::npos);

  const std::vector<std::string> bob{"--user", "bob123", "tail"};
  const auto tail = [&](std::vector<std::string> more) {
    auto args = bob;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  check_usage_error(root, tail({"--timeout", "0x10"}), {"--timeout", "0x10"});
  check_usage_error(root, tail({"--timeout", "1e3"}), {"--timeout"});
  check_usage_error(root, tail({"--count", "+1"}), {"--count"});
  check_usage_error(root, tail({"--interval", "0"}), {"--interval"});
  check_usage_error(root, tail({"--interval", "0.0001"}), {"--interval"});
  // Checked before the store (a folder store refuses --hints itself).
  const std::string hints = "--hints=redis://127.0.0.1:1/0";
  check_usage_error(root, tail({hints, "--hinted-interval", "-1"}), {"--hinted-interval", "'-1' is negative"});
  check_usage_error(root, tail({hints, "--hinted-interval=-0.5"}), {"--hinted-interval", "'-0.5' is negative"});
  check_usage_error(root, tail({hints, "--hinted-interval", "soon"}), {"--hinted-interval", "soon"});
  check_usage_error(root, tail({hints, "--hinted-interval=-soon"}), {"--hinted-interval", "'-soon' is not a number"});
  check_usage_error(root, tail({"--hinted-interval", "60"}), {"--hinted-interval", "needs --hints"});
  check_usage_error(root, {"--user", "alice222", "delete", "x", "--since", "2026-01-02", "--until", "2026-01-01"},
                    {"--since", "--until"});
}
