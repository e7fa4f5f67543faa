// Helpers of the multi-process tests: spawning, killing and reaping helper
// processes, reading what they write, and bounded waits.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace storewatch::test {

/// Generous: sanitizer builds on a loaded 2-core machine.
inline constexpr std::chrono::seconds process_limit{240};

inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The complete lines of `file` (a last line without its newline is still
/// being written, so it is left out).
inline std::vector<std::string> complete_lines(const std::filesystem::path& file) {
  const auto text = read_text(file);
  std::vector<std::string> lines;
  std::size_t at = 0;
  for (;;) {
    const auto newline = text.find('\n', at);
    if (newline == std::string::npos) break;
    lines.push_back(text.substr(at, newline - at));
    at = newline + 1;
  }
  return lines;
}

inline std::size_t count_lines(const std::filesystem::path& file) {
  const auto text = read_text(file);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

/// Reads a file another process appends to, a few new complete lines at a
/// time: each `take()` returns the lines completed since the last one.
class line_reader {
 public:
  explicit line_reader(std::filesystem::path file) : file_(std::move(file)) {}

  std::vector<std::string> take() {
    std::vector<std::string> lines;
    std::ifstream in(file_, std::ios::binary);
    if (!in) return lines;  // not created yet
    in.seekg(static_cast<std::streamoff>(offset_));
    char buffer[65536];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
      const auto got = static_cast<std::size_t>(in.gcount());
      offset_ += got;
      partial_.append(buffer, got);
    }
    std::size_t at = 0;
    for (auto newline = partial_.find('\n'); newline != std::string::npos; newline = partial_.find('\n', at)) {
      lines.push_back(partial_.substr(at, newline - at));
      at = newline + 1;
    }
    partial_.erase(0, at);
    return lines;
  }

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  std::uintmax_t offset_ = 0;
  std::string partial_;  // bytes of a line not yet complete
};

/// A child process, killed and reaped at scope end if still running (so a
/// failed test leaves no process behind).
class child {
 public:
  /// Starts `argv` with stdout to `out` (truncated) and stderr appended to `err`.
  child(const std::vector<std::string>& argv, const std::filesystem::path& out, const std::filesystem::path& err) {
    posix_spawn_file_actions_t actions;
    REQUIRE(::posix_spawn_file_actions_init(&actions) == 0);
    REQUIRE(::posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644) == 0);
    REQUIRE(::posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644) == 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int spawned = ::posix_spawn(&pid_, argv.front().c_str(), &actions, nullptr, args.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    INFO("spawning " << argv.front());
    REQUIRE(spawned == 0);
    err_ = err;
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int ignored = 0;
      ::waitpid(pid_, &ignored, 0);
    }
  }

  pid_t pid() const { return pid_; }
  bool exited() const { return status_.has_value(); }

  /// Reaps the process if it has exited; true once it has.
  bool poll() {
    if (status_) return true;
    int status = 0;
    const auto reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) status_ = status;
    return status_.has_value();
  }

  /// Waits (bounded) for the process to exit; returns its wait status.
  int wait(std::chrono::steady_clock::duration limit = process_limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!poll()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        FAIL("process " << pid_ << " did not exit within "
                        << std::chrono::duration_cast<std::chrono::seconds>(limit).count() << " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return *status_;
  }

  void kill(int signal) { REQUIRE(::kill(pid_, signal) == 0); }

  /// Exited normally with status 0.
  bool succeeded() const { return status_ && WIFEXITED(*status_) && WEXITSTATUS(*status_) == 0; }
  bool killed_by(int signal) const { return status_ && WIFSIGNALED(*status_) && WTERMSIG(*status_) == signal; }
  std::string stderr_text() const { return read_text(err_); }

  /// How it ended, for messages: "running", "exit 3", "signal 9".
  std::string status_text() const {
    if (!status_) return "running";
    if (WIFEXITED(*status_)) return "exit " + std::to_string(WEXITSTATUS(*status_));
    if (WIFSIGNALED(*status_)) return "signal " + std::to_string(WTERMSIG(*status_));
    return "wait status " + std::to_string(*status_);
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path err_;
};

/// Waits (bounded, polling every few ms) for `condition`.
inline bool wait_for(const std::function<bool()>& condition,
                     std::chrono::steady_clock::duration limit = process_limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

/// The data of a writer process's event, "<writer>:<sequence>", as (writer,
/// sequence); nullopt when it is not that.
inline std::optional<std::pair<std::string, long long>> parse_data(const std::string& data) {
  const auto colon = data.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= data.size()) return std::nullopt;
  const auto digits = data.substr(colon + 1);
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  return std::make_pair(data.substr(0, colon), std::stoll(digits));
}

/// The sequence numbers a writer process printed (= whose publish_event
/// completed).
inline std::vector<long long> printed_sequences(const std::filesystem::path& file) {
  std::vector<long long> out;
  for (const auto& line : complete_lines(file)) out.push_back(std::stoll(line));
  return out;
}

}  // namespace storewatch::test
