// Running the storewatch tool (STOREWATCH_TOOL, the built binary) from a
// test: a child process with pipes for its stdin, stdout and stderr, run to
// its end or read while it runs; and checks of what it printed. Shared by
// cli_test.cpp (folder stores) and cli_s3_test.cpp (S3 stores).
//
// Every wait is a bounded loop over a condition (reading the child's output
// meanwhile); nothing sleeps for a fixed time.
#pragma once

#include "common/fixture.hpp"

#include "time_text.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

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

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  for (;;) {
    const auto newline = text.find('\n', at);
    if (newline == std::string::npos) break;  // an unfinished last line is left out
    lines.push_back(text.substr(at, newline - at));
    at = newline + 1;
  }
  return lines;
}

/// A child process with pipes for stdin (or /dev/null), stdout and stderr.
/// Killed and reaped at scope end if still running, so a failed test leaves
/// no process behind.
class process {
 public:
  /// Runs `argv` with STOREWATCH_ROOT=`root`, STOREWATCH_STORE and
  /// STOREWATCH_USER unset, `extra_env` ("NAME=value", replacing this
  /// process's NAME) added, and `input` on stdin.
  process(const std::vector<std::string>& argv, const std::filesystem::path& root,
          std::optional<std::string> input = std::nullopt, const std::vector<std::string>& extra_env = {}) {
    // Writing to a child that has exited must not kill the test.
    static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
    REQUIRE(sigpipe_ignored);

    int out[2], err[2], in[2] = {-1, -1};
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    if (input) REQUIRE(::pipe2(in, O_CLOEXEC) == 0);

    posix_spawn_file_actions_t actions;
    REQUIRE(::posix_spawn_file_actions_init(&actions) == 0);
    if (input) {
      REQUIRE(::posix_spawn_file_actions_adddup2(&actions, in[0], 0) == 0);
    } else {
      REQUIRE(::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) == 0);
    }
    REQUIRE(::posix_spawn_file_actions_adddup2(&actions, out[1], 1) == 0);
    REQUIRE(::posix_spawn_file_actions_adddup2(&actions, err[1], 2) == 0);

    // The child starts with default signal dispositions and nothing blocked.
    posix_spawnattr_t attributes;
    REQUIRE(::posix_spawnattr_init(&attributes) == 0);
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigemptyset(&none);
    REQUIRE(::posix_spawnattr_setsigdefault(&attributes, &defaults) == 0);
    REQUIRE(::posix_spawnattr_setsigmask(&attributes, &none) == 0);
    REQUIRE(::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) == 0);

    // This process's environment less the store and user settings and the
    // variables `extra_env` sets, which replace them.
    const auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
    const auto replaced = [&](std::string_view entry) {
      const auto name = name_of(entry);
      if (name == "STOREWATCH_ROOT" || name == "STOREWATCH_STORE" || name == "STOREWATCH_USER") return true;
      return std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& e) { return name_of(e) == name; });
    };
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      if (!replaced(*e)) env.emplace_back(*e);
    }
    env.push_back("STOREWATCH_ROOT=" + root.string());
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> env_pointers;
    for (auto& e : env) env_pointers.push_back(e.data());
    env_pointers.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> arg_pointers;
    for (auto& a : args) arg_pointers.push_back(a.data());
    arg_pointers.push_back(nullptr);

    const int spawned =
        ::posix_spawn(&pid_, args.front().c_str(), &actions, &attributes, arg_pointers.data(), env_pointers.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    ::close(out[1]);
    ::close(err[1]);
    if (input) ::close(in[0]);
    INFO("spawning " << args.front());
    REQUIRE(spawned == 0);
    out_fd_ = out[0];
    err_fd_ = err[0];
    ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
    if (input) {
      // Inputs here are small: a pipe holds them without the child reading.
      std::string_view rest = *input;
      while (!rest.empty()) {
        const auto written = ::write(in[1], rest.data(), rest.size());
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) break;  // the child went away; its status says why
        rest.remove_prefix(static_cast<std::size_t>(written));
      }
      ::close(in[1]);
    }
  }
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int ignored = 0;
      ::waitpid(pid_, &ignored, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  pid_t pid() const { return pid_; }

  /// Reads what stdout and stderr have, waiting at most `limit` for some.
  void pump(std::chrono::milliseconds limit = 5ms) {
    pollfd fds[2];
    nfds_t count = 0;
    if (out_fd_ >= 0) fds[count++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[count++] = {err_fd_, POLLIN, 0};
    if (count == 0) return;
    if (::poll(fds, count, static_cast<int>(limit.count())) <= 0) return;
    drain(out_fd_, out_);
    drain(err_fd_, err_);
  }

  /// Reaps the process if it has exited; true once it has.
  bool exited() {
    if (status_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
    return status_.has_value();
  }

  /// Waits (bounded) for the process to exit and its output to end; returns
  /// its exit status, or 128 + the signal that ended it.
  int wait(std::chrono::steady_clock::duration limit = process_limit) {
    const auto deadline = steady::now() + limit;
    while (!(exited() && out_fd_ < 0 && err_fd_ < 0)) {
      if (steady::now() > deadline) {
        ::kill(pid_, SIGKILL);
        FAIL("process " << pid_ << " did not exit within the limit; stderr: " << err_);
      }
      pump(exited() ? 1ms : 5ms);
    }
    return status();
  }

  int status() const {
    if (!status_) return -1;
    if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
    if (WIFSIGNALED(*status_)) return 128 + WTERMSIG(*status_);
    return -1;
  }
  bool killed_by(int signal) const { return status_ && WIFSIGNALED(*status_) && WTERMSIG(*status_) == signal; }

  void signal(int signal) { REQUIRE(::kill(pid_, signal) == 0); }

  /// Whether the process's main thread is asleep (state S): waiting in its
  /// event loop, or blocked writing to a full pipe.
  bool sleeping() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'S';
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  std::vector<std::string> lines() const { return split_lines(out_); }

 private:
  static void drain(int& fd, std::string& into) {
    if (fd < 0) return;
    char buffer[65536];
    for (;;) {
      const auto got = ::read(fd, buffer, sizeof buffer);
      if (got > 0) {
        into.append(buffer, static_cast<std::size_t>(got));
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      if (got == 0) {
        ::close(fd);
        fd = -1;
      }
      return;  // EOF, or nothing more for now
    }
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_, err_;
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
  const auto deadline = steady::now() + limit;
  while (!condition()) {
    if (steady::now() > deadline) return condition();
    if (children.size() == 0) {
      ::poll(nullptr, 0, 2);
    } else {
      for (auto* c : children) c->pump(children.size() == 1 ? 5ms : 1ms);
    }
  }
  return true;
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
