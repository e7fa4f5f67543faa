// A child process for tests and benchmarks: started with posix_spawn, each
// standard stream inherited, /dev/null, a file or a pipe the parent reads;
// waited for with a bound; killed and reaped at scope end if still
// running, so a failed test leaves no process behind. Failures to start
// throw std::system_error.
#pragma once

#include "run.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace storewatch::test_support {

/// Where one of a child's standard streams goes.
struct child_stream {
  enum class kind { inherit, null, pipe, file };
  kind how = kind::inherit;
  std::filesystem::path file{};  ///< for `kind::file`
  bool append = false;           ///< for `kind::file`: append, else truncate

  static child_stream inherited() { return {}; }
  static child_stream null() { return {kind::null}; }
  /// Read by the parent: `process::out()` / `err()`.
  static child_stream piped() { return {kind::pipe}; }
  /// For stdout or stderr.
  static child_stream to_file(std::filesystem::path file, bool append = false) {
    return {kind::file, std::move(file), append};
  }
};

/// How to start a child.
struct spawn_options {
  /// Its environment, "NAME=value" each; none: this process's.
  std::optional<std::vector<std::string>> environment{};
  /// Bytes for its stdin, through a pipe closed after them, written before
  /// the constructor returns (beyond what a pipe holds, 64 KiB, that waits
  /// for the child to read them or exit); without, stdin is `in`.
  std::optional<std::string> input{};
  /// Look a program named without a '/' up on this process's PATH
  /// (posix_spawnp); otherwise argv[0] is a path.
  bool search_path = false;
  child_stream in{};
  child_stream out{};
  child_stream err{};
};

/// This process's environment less the variables named in `unset` and
/// those `set` replaces, followed by `set` ("NAME=value" each).
inline std::vector<std::string> environment_with(const std::vector<std::string>& set,
                                                 const std::vector<std::string>& unset = {}) {
  const auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  const auto dropped = [&](std::string_view entry) {
    const auto name = name_of(entry);
    return std::find(unset.begin(), unset.end(), name) != unset.end() ||
           std::any_of(set.begin(), set.end(), [&](const std::string& e) { return name_of(e) == name; });
  };
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (!dropped(*e)) env.emplace_back(*e);
  }
  env.insert(env.end(), set.begin(), set.end());
  return env;
}

/// A running child process (see the file comment).
class process {
 public:
  /// Starts `argv` (argv[0] a path, or see `search_path`) as `options`
  /// say. The child starts with SIGPIPE, SIGTERM and SIGINT at their
  /// defaults and no signal blocked.
  explicit process(std::vector<std::string> argv, const spawn_options& options = {}) {
    if (argv.empty()) throw std::invalid_argument("process: no program");
    // Writing to a child that has exited must not kill this process.
    if (options.input) {
      static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
      if (!sigpipe_ignored) throw std::system_error(errno, std::generic_category(), "ignoring SIGPIPE");
    }
    pipe_ends in_pipe, out_pipe, err_pipe;
    if (options.input) in_pipe.open();
    if (options.out.how == child_stream::kind::pipe) out_pipe.open();
    if (options.err.how == child_stream::kind::pipe) err_pipe.open();

    posix_spawn_file_actions_t actions;
    check(::posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init");
    int result = options.input ? ::posix_spawn_file_actions_adddup2(&actions, in_pipe.read, 0)
                               : redirect(actions, 0, options.in, -1);
    if (result == 0) result = redirect(actions, 1, options.out, out_pipe.write);
    if (result == 0) result = redirect(actions, 2, options.err, err_pipe.write);

    posix_spawnattr_t attributes;
    check(::posix_spawnattr_init(&attributes), "posix_spawnattr_init");
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigemptyset(&none);
    if (result == 0) result = ::posix_spawnattr_setsigdefault(&attributes, &defaults);
    if (result == 0) result = ::posix_spawnattr_setsigmask(&attributes, &none);
    if (result == 0) result = ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> arg_pointers;
    for (auto& a : argv) arg_pointers.push_back(a.data());
    arg_pointers.push_back(nullptr);
    std::vector<std::string> env = options.environment ? *options.environment : std::vector<std::string>{};
    std::vector<char*> env_pointers;
    for (auto& e : env) env_pointers.push_back(e.data());
    env_pointers.push_back(nullptr);

    if (result == 0) {
      const auto spawn = options.search_path ? ::posix_spawnp : ::posix_spawn;
      result = spawn(&pid_, argv.front().c_str(), &actions, &attributes, arg_pointers.data(),
                     options.environment ? env_pointers.data() : environ);
    }
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    check(result, "spawning " + argv.front());
    // Readable once the child has exited, so `wait` wakes then, not at its
    // next check (a benchmark times the commands it waits for). -1 on a
    // kernel without pidfds: `wait` then checks every 2 ms. (A system call:
    // glibc 2.36's <sys/pidfd.h> lacks extern "C".)
    pid_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    // The child's ends, closed here: the pipes must end when the child does
    // (a write to its stdin then fails instead of blocking on a full pipe).
    pipe_ends::close(in_pipe.read);
    pipe_ends::close(out_pipe.write);
    pipe_ends::close(err_pipe.write);

    out_fd_ = out_pipe.take_read();
    err_fd_ = err_pipe.take_read();
    if (out_fd_ >= 0) ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    if (err_fd_ >= 0) ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
    if (options.input) {
      std::string_view rest = *options.input;
      while (!rest.empty()) {
        const auto written = ::write(in_pipe.write, rest.data(), rest.size());
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) break;  // the child went away; its status says why
        rest.remove_prefix(static_cast<std::size_t>(written));
      }
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
    if (pid_fd_ >= 0) ::close(pid_fd_);
  }

  pid_t pid() const { return pid_; }

  /// Reads what the piped stdout and stderr have, waiting at most `limit`
  /// for some.
  void pump(std::chrono::milliseconds limit = std::chrono::milliseconds(5)) {
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

  /// Waits (at most `limit`) for the process to exit and its piped output
  /// to end, reading that output meanwhile; false if `limit` passed first
  /// (the process is left running).
  bool wait(steady::duration limit) {
    const auto ended = [&] { return exited() && out_fd_ < 0 && err_fd_ < 0; };
    return wait_for(ended, limit, [&] {
      if (out_fd_ < 0 && err_fd_ < 0) {
        pollfd child_exit{pid_fd_, POLLIN, 0};  // a negative fd is ignored: a plain 2 ms sleep
        ::poll(&child_exit, 1, 2);
      } else {
        pump(exited() ? std::chrono::milliseconds(1) : std::chrono::milliseconds(5));
      }
    });
  }

  /// Its wait status (waitpid's), once reaped.
  std::optional<int> wait_status() const { return status_; }
  /// Its exit status, or 128 + the signal that ended it; -1 while running.
  int exit_code() const {
    if (!status_) return -1;
    if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
    if (WIFSIGNALED(*status_)) return 128 + WTERMSIG(*status_);
    return -1;
  }
  /// Exited normally with status 0.
  bool succeeded() const { return status_ && WIFEXITED(*status_) && WEXITSTATUS(*status_) == 0; }
  bool killed_by(int signal) const { return status_ && WIFSIGNALED(*status_) && WTERMSIG(*status_) == signal; }
  /// How it ended, for messages: "running", "exit 3", "signal 9".
  std::string status_text() const {
    if (!status_) return "running";
    if (WIFEXITED(*status_)) return "exit " + std::to_string(WEXITSTATUS(*status_));
    if (WIFSIGNALED(*status_)) return "signal " + std::to_string(WTERMSIG(*status_));
    return "wait status " + std::to_string(*status_);
  }

  /// Sends `signal`; throws std::system_error when it cannot.
  void signal(int signal) {
    if (::kill(pid_, signal) != 0) {
      throw std::system_error(errno, std::generic_category(), "kill " + std::to_string(pid_));
    }
  }

  /// Whether the process's main thread is asleep (state S): waiting in its
  /// event loop, or blocked writing to a full pipe.
  bool sleeping() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'S';
  }

  /// What the piped stdout and stderr said so far (see `pump`).
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  /// A pipe's two ends, closed at scope end unless taken.
  struct pipe_ends {
    int read = -1, write = -1;
    void open() {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
      read = fds[0];
      write = fds[1];
    }
    int take_read() { return std::exchange(read, -1); }
    static void close(int& fd) {
      if (fd >= 0) ::close(std::exchange(fd, -1));
    }
    ~pipe_ends() {
      close(read);
      close(write);
    }
  };

  static void check(int result, const std::string& what) {
    if (result != 0) throw std::system_error(result, std::generic_category(), what);
  }

  /// Points `fd` of the child where `target` says (`pipe_write`: the write
  /// end of its pipe). 0 or an error number.
  static int redirect(posix_spawn_file_actions_t& actions, int fd, const child_stream& target, int pipe_write) {
    switch (target.how) {
      case child_stream::kind::inherit: return 0;
      case child_stream::kind::null:
        return ::posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
      case child_stream::kind::pipe: return ::posix_spawn_file_actions_adddup2(&actions, pipe_write, fd);
      case child_stream::kind::file:
        return ::posix_spawn_file_actions_addopen(&actions, fd, target.file.c_str(),
                                                  O_WRONLY | O_CREAT | (target.append ? O_APPEND : O_TRUNC), 0644);
    }
    return EINVAL;
  }

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
  int pid_fd_ = -1;
  std::string out_, err_;
};

}  // namespace storewatch::test_support
