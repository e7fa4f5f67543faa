// Running the storewatch tool (STOREWATCH_TOOL, the built binary) from a
// test: a child process with pipes for its stdin, stdout and stderr, run to
// its end or read while it runs; and checks of what it printed. Shared by
// cli_test.cpp (folder stores) and cli_s3_test.cpp (S3 stores).
//
// Every wait is a bounded loop over a condition (reading the child's output
// meanwhile); nothing sleeps for a fixed time.
#pragma once

#include "common/fixture.hpp"
#include "support/process.hpp"
#include "support/text.hpp"

#include "time_text.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <signal.h>

namespace storewatch::test::cli_run {

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

inline const std::string tool = STOREWATCH_TOOL;

/// Generous: sanitizer builds on a loaded 2-core machine. The tests wait
/// for their conditions, not for this long.
inline constexpr auto process_limit = std::chrono::seconds(60);

using steady = std::chrono::steady_clock;

inline void write_file(const std::filesystem::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

using test_support::split_lines;

/// A child process with pipes for stdin (or /dev/null), stdout and stderr
/// (tests/support/process.hpp), in the environment the tool's tests want.
class process : public test_support::process {
 public:
  /// Runs `argv` with STOREWATCH_ROOT=`root`, STOREWATCH_STORE and
  /// STOREWATCH_USER unset, `extra_env` ("NAME=value", replacing this
  /// process's NAME) added, and `input` on stdin.
  process(const std::vector<std::string>& argv, const std::filesystem::path& root,
          std::optional<std::string> input = std::nullopt, const std::vector<std::string>& extra_env = {})
      : test_support::process(argv, options(root, std::move(input), extra_env)) {}

  /// Waits (bounded) for the process to exit and its output to end; returns
  /// its exit status, or 128 + the signal that ended it. Fails the test
  /// (killing the process) when it takes longer than `limit`.
  int wait(std::chrono::steady_clock::duration limit = process_limit) {
    if (!test_support::process::wait(limit)) {
      ::kill(pid(), SIGKILL);
      FAIL("process " << pid() << " did not exit within the limit; stderr: " << err());
    }
    return status();
  }

  int status() const { return exit_code(); }
  std::vector<std::string> lines() const { return split_lines(out()); }

 private:
  static test_support::spawn_options options(const std::filesystem::path& root, std::optional<std::string> input,
                                             const std::vector<std::string>& extra_env) {
    std::vector<std::string> set{"STOREWATCH_ROOT=" + root.string()};
    set.insert(set.end(), extra_env.begin(), extra_env.end());
    test_support::spawn_options o;
    o.environment = test_support::environment_with(set, {"STOREWATCH_STORE", "STOREWATCH_USER"});
    o.input = std::move(input);
    o.in = test_support::child_stream::null();
    o.out = test_support::child_stream::piped();
    o.err = test_support::child_stream::piped();
    return o;
  }
};

inline std::vector<std::string> with_tool(std::vector<std::string> args) {
  args.insert(args.begin(), tool);
  return args;
}

/// The tool, started.
inline std::unique_ptr<process> start(const std::filesystem::path& root, const std::vector<std::string>& args,
                                      std::optional<std::string> input = std::nullopt,
                                      const std::vector<std::string>& extra_env = {}) {
  return std::make_unique<process>(with_tool(args), root, std::move(input), extra_env);
}

struct outcome {
  int status = -1;
  std::string out, err;
};

/// The tool, run to its end.
inline outcome run(const std::filesystem::path& root, const std::vector<std::string>& args,
                   std::optional<std::string> input = std::nullopt, const std::vector<std::string>& extra_env = {}) {
  process p(with_tool(args), root, std::move(input), extra_env);
  const int status = p.wait();
  return {status, p.out(), p.err()};
}

inline std::string describe(const std::vector<std::string>& args) {
  std::string text = "storewatch";
  for (const auto& a : args) text += " '" + a + "'";
  return text;
}

/// Runs the tool and requires status 0 and nothing on stderr; returns stdout.
inline std::string run_ok(const std::filesystem::path& root, const std::vector<std::string>& args,
                          std::optional<std::string> input = std::nullopt,
                          const std::vector<std::string>& extra_env = {}) {
  const auto r = run(root, args, std::move(input), extra_env);
  INFO(describe(args) << "\nstatus " << r.status << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  REQUIRE(r.err.empty());
  return r.out;
}

/// Waits (bounded) for `condition`, reading the output of `children` meanwhile.
inline bool wait_for(const std::function<bool()>& condition, std::initializer_list<process*> children = {},
                     std::chrono::steady_clock::duration limit = process_limit) {
  const auto read_children = [&] {
    for (auto* c : children) c->pump(children.size() == 1 ? 5ms : 1ms);
  };
  return test_support::wait_for(condition, limit, children.size() == 0 ? std::function<void()>() : read_children);
}

/// The rows of a printed table (`stats`), each split at white space, by
/// their first field.
inline std::map<std::string, std::vector<std::string>> table_rows(const std::string& text) {
  std::map<std::string, std::vector<std::string>> rows;
  for (const auto& line : split_lines(text)) {
    std::istringstream fields(line);
    std::vector<std::string> row{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
    if (!row.empty()) rows[row[0]] = row;
  }
  return rows;
}

/// The rows of `stats` after the scenario both CLI suites run (alice
/// creates a file and shares it with bob, bob gets two events and carol
/// one, alice deletes the file), with each user's event count and the
/// total checked.
inline std::map<std::string, std::vector<std::string>> stats_rows_checked(const std::string& out) {
  auto rows = table_rows(out);
  REQUIRE(rows.count("alice222"));
  REQUIRE(rows.count("bob123"));
  REQUIRE(rows.count("carol"));
  REQUIRE(rows.count("total"));
  CHECK(rows.size() == 5);  // the header, three users, the total
  CHECK(rows["alice222"][1] == "2");
  CHECK(rows["bob123"][1] == "4");
  CHECK(rows["carol"][1] == "1");
  CHECK(rows["total"][1] == "7");
  return rows;
}

inline bool one_line(const std::string& text) {
  return !text.empty() && text.back() == '\n' && std::count(text.begin(), text.end(), '\n') == 1;
}

/// "2025-10-22T12:15:41.619Z": digits where the pattern has 'd', an optional
/// fraction, and a Z.
inline bool is_iso_utc(std::string_view text) {
  constexpr std::string_view pattern = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < pattern.size() + 1) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (pattern[i] == 'd' ? !digit : text[i] != pattern[i]) return false;
  }
  auto rest = text.substr(pattern.size());
  if (rest.starts_with('.')) {
    rest.remove_prefix(1);
    const auto digits = rest.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string_view::npos) return false;
    rest.remove_prefix(digits);
  }
  return rest == "Z";
}

/// One line of `tail --format json`: an object with string fields id, name,
/// data, actor and occurred_at (ISO 8601 UTC, near now).
struct printed_event {
  std::string id, name, data, actor, occurred_at;
  nlohmann::json attributes;
};

inline printed_event parse_json_line(const std::string& line) {
  INFO("line: " << line);
  nlohmann::json j;
  REQUIRE_NOTHROW(j = nlohmann::json::parse(line));
  REQUIRE(j.is_object());
  for (const char* field : {"id", "name", "data", "actor", "occurred_at"}) {
    INFO("field " << field);
    REQUIRE(j.contains(field));
    REQUIRE(j[field].is_string());
  }
  printed_event e{j["id"].get<std::string>(), j["name"].get<std::string>(), j["data"].get<std::string>(),
                  j["actor"].get<std::string>(), j["occurred_at"].get<std::string>(), j.value("attributes", nlohmann::json())};
  CHECK(!e.id.empty());
  CHECK(is_iso_utc(e.occurred_at));
  const auto when = cli::parse_time(e.occurred_at);
  REQUIRE(when);
  const auto now = std::chrono::system_clock::now();
  CHECK(*when > now - 10min);
  CHECK(*when < now + 10min);
  return e;
}

inline std::vector<printed_event> parse_json_lines(const std::string& text) {
  std::vector<printed_event> events;
  for (const auto& line : split_lines(text)) events.push_back(parse_json_line(line));
  return events;
}

/// The events a tail has printed so far, parsed as its lines complete; each
/// event's data also goes into `seen`.
struct tail_output {
  explicit tail_output(std::set<std::string>* seen) : seen(seen) {}
  void update(const process& p) {
    const auto& text = p.out();
    for (;;) {
      const auto newline = text.find('\n', consumed);
      if (newline == std::string::npos) return;
      events.push_back(parse_json_line(text.substr(consumed, newline - consumed)));
      seen->insert(events.back().data);
      consumed = newline + 1;
    }
  }
  std::set<std::string>* seen;
  std::vector<printed_event> events;
  std::size_t consumed = 0;
};

/// Runs the tool and requires `status`, nothing on stdout, and one line on
/// stderr that names each of `named`.
inline void check_failure(int status, const std::filesystem::path& root, const std::vector<std::string>& args,
                          const std::vector<std::string>& named, const std::vector<std::string>& extra_env = {}) {
  const auto r = run(root, args, std::nullopt, extra_env);
  INFO(describe(args) << "\nstatus " << r.status << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == status);
  CHECK(r.out.empty());
  CHECK(one_line(r.err));
  CHECK_THAT(r.err, StartsWith("storewatch: "));
  for (const auto& n : named) CHECK_THAT(r.err, Contains(n));
}

inline void check_usage_error(const std::filesystem::path& root, const std::vector<std::string>& args,
                              const std::vector<std::string>& named, const std::vector<std::string>& extra_env = {}) {
  check_failure(2, root, args, named, extra_env);
}

inline void check_runtime_error(const std::filesystem::path& root, const std::vector<std::string>& args,
                                const std::vector<std::string>& named, const std::vector<std::string>& extra_env = {}) {
  check_failure(1, root, args, named, extra_env);
}

}  // namespace storewatch::test::cli_run
