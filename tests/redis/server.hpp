// The redis-server the hint tests use: the CTest fixture's
// (STOREWATCH_REDIS_STATE_DIR), or one of a test's own, started, killed with
// SIGKILL and restarted on its port through scripts/redis-server.sh.
#pragma once

#include <storewatch/redis/url.hpp>

#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace storewatch::test_support {

/// The first line of `file`; throws when it is missing or empty.
inline std::string first_line(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) {
    throw std::runtime_error(file.string() + " is missing or empty: is redis-server running (scripts/redis-server.sh "
                                             "start, or the redis_start CTest fixture)?");
  }
  return line;
}

/// The URL of the fixture's redis-server. Throws when there is none: run
/// the test through ctest.
inline redis::url fixture_redis() {
  const char* state = std::getenv("STOREWATCH_REDIS_STATE_DIR");
  if (state == nullptr || *state == '\0') {
    throw std::runtime_error("no redis-server for this test: run it through ctest (its redis_start fixture starts one "
                             "and sets STOREWATCH_REDIS_STATE_DIR)");
  }
  return redis::parse_url("redis://127.0.0.1:" + first_line(std::filesystem::path(state) / "redis.port"), nullptr);
}

/// A redis-server of the test's own, in a fresh folder; stopped at scope end.
class own_redis {
 public:
  own_redis() { start("0"); }
  ~own_redis() {
    try {
      script("stop");
    } catch (...) {
    }
  }
  own_redis(const own_redis&) = delete;
  own_redis& operator=(const own_redis&) = delete;

  redis::url url() const { return redis::parse_url("redis://127.0.0.1:" + port_, nullptr); }

  /// SIGKILL, and waits until it is gone.
  void kill() {
    const auto pid = std::stoi(first_line(state_.path() / "redis.pid"));
    ::kill(pid, SIGKILL);
    if (!wait_for([&] { return ::kill(pid, 0) != 0 || zombie(pid); })) throw std::runtime_error("redis-server survived SIGKILL");
  }
  /// SIGSTOP: it still accepts connections (the kernel does) and answers
  /// nothing until `resume`.
  void pause() { ::kill(std::stoi(first_line(state_.path() / "redis.pid")), SIGSTOP); }
  /// SIGCONT after `pause`.
  void resume() { ::kill(std::stoi(first_line(state_.path() / "redis.pid")), SIGCONT); }
  /// Starts it again on the same port.
  void restart() { start(port_); }

 private:
  static bool zombie(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with("State:")) return line.find('Z') != std::string::npos;
    }
    return true;
  }

  void start(const std::string& port) {
    script("start", port);
    port_ = first_line(state_.path() / "redis.port");
  }

  void script(const std::string& command, const std::string& port = "0") {
    spawn_options options;
    options.environment = environment_with(
        {"STOREWATCH_REDIS_STATE_DIR=" + state_.path().string(), "STOREWATCH_REDIS_PORT=" + port});
    options.out = child_stream::null();
    process run({STOREWATCH_REDIS_SCRIPT, command}, options);
    if (!run.wait(std::chrono::seconds(30)) || !run.succeeded()) {
      throw std::runtime_error(std::string("scripts/redis-server.sh ") + command + " failed: " + run.status_text());
    }
  }

  temp_dir state_{temp_dir::place::temp, "storewatch-redis-"};
  std::string port_;
};

}  // namespace storewatch::test_support
