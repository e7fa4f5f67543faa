// Helpers of the multi-process tests: spawning, killing and reaping helper
// processes, reading what they write, and bounded waits (on
// tests/support/).
#pragma once

#include "support/process.hpp"
#include "support/text.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <signal.h>

namespace storewatch::test {

/// Generous: sanitizer builds on a loaded 2-core machine.
inline constexpr std::chrono::seconds process_limit{240};

using test_support::read_text;

/// The complete lines of `file` (a last line without its newline is still
/// being written, so it is left out).
inline std::vector<std::string> complete_lines(const std::filesystem::path& file) {
  return test_support::split_lines(read_text(file));
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

/// A helper process (tests/support/process.hpp), killed and reaped at
/// scope end if still running (so a failed test leaves no process behind).
class child {
 public:
  /// Starts `argv` with stdout to `out` (truncated) and stderr appended to `err`.
  child(const std::vector<std::string>& argv, const std::filesystem::path& out, const std::filesystem::path& err)
      : process_(argv, options(out, err)), err_(err) {}

  pid_t pid() const { return process_.pid(); }
  bool exited() const { return process_.wait_status().has_value(); }

  /// Reaps the process if it has exited; true once it has.
  bool poll() { return process_.exited(); }

  /// Waits (bounded) for the process to exit; returns its wait status.
  int wait(std::chrono::steady_clock::duration limit = process_limit) {
    if (!process_.wait(limit)) {
      process_.signal(SIGKILL);
      FAIL("process " << pid() << " did not exit within "
                      << std::chrono::duration_cast<std::chrono::seconds>(limit).count() << " s");
    }
    return *process_.wait_status();
  }

  void kill(int signal) { process_.signal(signal); }

  /// Exited normally with status 0.
  bool succeeded() const { return process_.succeeded(); }
  bool killed_by(int signal) const { return process_.killed_by(signal); }
  std::string stderr_text() const { return read_text(err_); }
  /// How it ended, for messages: "running", "exit 3", "signal 9".
  std::string status_text() const { return process_.status_text(); }

 private:
  static test_support::spawn_options options(const std::filesystem::path& out, const std::filesystem::path& err) {
    test_support::spawn_options o;
    o.out = test_support::child_stream::to_file(out);
    o.err = test_support::child_stream::to_file(err, true);
    return o;
  }

  test_support::process process_;
  std::filesystem::path err_;
};

/// Waits (bounded, polling every few ms) for `condition`.
inline bool wait_for(const std::function<bool()>& condition,
                     std::chrono::steady_clock::duration limit = process_limit) {
  return test_support::wait_for(condition, limit);
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
