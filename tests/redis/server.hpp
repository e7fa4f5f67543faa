// The redis-server the hint tests use: the CTest fixture's
// (STOREWATCH_REDIS_STATE_DIR), or one of a test's own, started, killed with
// SIGKILL and restarted on its port through scripts/redis-server.sh.
#pragma once

#include <storewatch/redis/url.hpp>

#include <hiredis/hiredis.h>

#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <vector>
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

/// Runs one command (`words`, sent as they are) on a connection of its own
/// to `where`, logged in when `where` has a password; returns the reply as
/// text (an error's with "ERR:" before it). Throws when the server cannot
/// be reached.
inline std::string redis_command(const redis::url& where, const std::vector<std::string>& words) {
  redisContext* context = redisConnect(where.host.c_str(), where.port);
  if (context == nullptr || context->err != 0) {
    const std::string why = context != nullptr ? context->errstr : "out of memory";
    if (context != nullptr) redisFree(context);
    throw std::runtime_error("cannot reach " + where.text() + ": " + why);
  }
  const auto run = [context](const std::vector<std::string>& command) {
    std::vector<const char*> pointers;
    std::vector<std::size_t> sizes;
    for (const auto& word : command) {
      pointers.push_back(word.data());
      sizes.push_back(word.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(command.size()), pointers.data(), sizes.data()));
    if (reply == nullptr) throw std::runtime_error(std::string("Redis command failed: ") + context->errstr);
    std::string text;
    switch (reply->type) {
      case REDIS_REPLY_INTEGER: text = std::to_string(reply->integer); break;
      case REDIS_REPLY_ERROR: text = "ERR:" + std::string(reply->str, reply->len); break;
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS: text.assign(reply->str, reply->len); break;
      default: break;
    }
    freeReplyObject(reply);
    return text;
  };
  std::string result;
  try {
    if (!where.password.empty()) {
      result = where.user.empty() ? run({"AUTH", where.password}) : run({"AUTH", where.user, where.password});
    }
    if (!result.starts_with("ERR:")) result = run(words);
  } catch (...) {
    redisFree(context);
    throw;
  }
  redisFree(context);
  return result;
}

/// The connections the server at `where` has accepted so far
/// (`INFO stats` total_connections_received), the one that asks included:
/// between two calls, others made the difference less one.
inline long long redis_connections_received(const redis::url& where) {
  const auto info = redis_command(where, {"INFO", "stats"});
  const std::string field = "total_connections_received:";
  const auto at = info.find(field);
  if (at == std::string::npos) throw std::runtime_error("INFO stats has no " + field + " " + info);
  return std::stoll(info.substr(at + field.size()));
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

  /// Gives the server a password (requirepass): a client without it is
  /// refused (NOAUTH). Returns the URL that logs in.
  redis::url require_password(const std::string& password) const {
    if (redis_command(url(), {"CONFIG", "SET", "requirepass", password}) != "OK") {
      throw std::runtime_error("redis-server refused CONFIG SET requirepass");
    }
    auto login = url();
    login.password = password;
    return login;
  }

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
