/// \file
/// Temporary credentials from a `credential_source`: a credential_process
/// command, STS AssumeRoleWithWebIdentity, container credentials or EC2
/// instance metadata (IMDSv2), fetched when first needed and again before
/// they expire, as coroutines on the client's executor.
//
// Nothing here blocks the io_context or starts a thread: HTTP goes through
// basic_http_client (libcurl on Asio), a credential_process child's stdout is
// read through a posix::stream_descriptor and its exit is awaited on a pidfd.
// (Small files, the web identity token and a container's authorization file,
// are read directly, as the stores read theirs.) Errors name the source and
// what went wrong, never a key, a secret, a token or an authorization value.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/s3/config.hpp>
#include <storewatch/s3/http.hpp>
#include <storewatch/s3/sigv4.hpp>
#include <storewatch/s3/xml.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>  // environ (C++ compilers define _GNU_SOURCE)

namespace storewatch::s3 {

/// Settings of the credential provider of a client (`client_options::credentials`).
struct credential_options {
  /// How long before temporary credentials expire they are replaced: the
  /// first request after `expiration - refresh_margin` fetches new ones
  /// (or, for credentials given for less than twice the margin, the first
  /// after half their life).
  std::chrono::milliseconds refresh_margin{5 * 60'000};
  /// After a refresh failed while the old credentials were still valid,
  /// they are used for this long before the next try (never past their expiry).
  std::chrono::milliseconds refresh_retry{10'000};
  /// Longest run of a credential_process command; it is killed after it.
  std::chrono::milliseconds process_timeout{30'000};
  /// Most bytes a credential_process command may print; it is killed beyond.
  std::size_t max_process_output = 64 * 1024;
  /// Longest time for one HTTP request to STS, a container endpoint or the
  /// instance metadata service.
  std::chrono::milliseconds http_timeout{5'000};
  /// Longest time to connect to the instance metadata service (short: off
  /// EC2 nothing answers there).
  std::chrono::milliseconds metadata_connect_timeout{1'000};
  /// A file of PEM CA certificates to verify an https source (STS, a
  /// container endpoint) with; empty: the system's. A client passes its
  /// store's `config::ca_bundle` unless this names one.
  std::string ca_file{};
};

/// Credentials with the time they expire, if they do.
struct temporary_credentials {
  s3::credentials keys{};                                          ///< what requests are signed with
  std::optional<std::chrono::system_clock::time_point> expiration{};  ///< none: they do not expire
};

namespace detail {

/// Parses an ISO-8601 UTC time as credential sources give it:
/// "2026-12-04T18:00:00Z", with optional fractional seconds and a "Z",
/// "+hh:mm" or "-hh:mm" zone. std::nullopt when it is not one.
inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  using namespace std::chrono;
  std::size_t at = 0;
  const auto number = [&](std::size_t digits, int& value) {
    if (at + digits > text.size()) return false;
    value = 0;
    for (std::size_t i = 0; i < digits; ++i) {
      const char c = text[at + i];
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    at += digits;
    return true;
  };
  const auto literal = [&](char c) { return at < text.size() && text[at] == c ? (++at, true) : false; };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!number(4, y) || !literal('-') || !number(2, mo) || !literal('-') || !number(2, d)) return std::nullopt;
  if (!literal('T') && !literal('t') && !literal(' ')) return std::nullopt;
  if (!number(2, h) || !literal(':') || !number(2, mi) || !literal(':') || !number(2, s)) return std::nullopt;
  milliseconds fraction{0};
  if (literal('.')) {
    int scale = 100, digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      fraction += milliseconds((text[at++] - '0') * scale);
      scale /= 10;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  minutes offset{0};
  if (literal('Z') || literal('z')) {
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const bool minus = text[at++] == '-';
    int oh = 0, om = 0;
    if (!number(2, oh) || !literal(':') || !number(2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = minutes(oh * 60 + om) * (minus ? -1 : 1);
  } else {
    return std::nullopt;
  }
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (at != text.size() || !date.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return system_clock::time_point(sys_days(date) + hours(h) + minutes(mi) + seconds(s) + fraction - offset);
}

/// What is wrong with `keys` ("AccessKeyId is empty"), or "" when nothing
/// is: the same rules as `validate` applies to fixed keys. `names` are the
/// source's field names for the key id, secret and token.
inline std::string credentials_problem(const credentials& keys, const std::array<std::string_view, 3>& names) {
  try {
    check_credential(keys.access_key_id, names[0], true, true);
    check_credential(keys.secret_access_key, names[1], true, false);
    check_credential(keys.session_token, names[2], false, false);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

/// Which JSON document `credentials_from_json` reads.
enum class json_credentials_format {
  process,    ///< credential_process: Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration
  container,  ///< container and instance metadata: AccessKeyId, SecretAccessKey, Token, Expiration
};

/// The credentials in a JSON document from a credential source. Throws
/// std::runtime_error saying what is wrong (never showing a value but the
/// Version, Code or Expiration).
inline temporary_credentials credentials_from_json(std::string_view text, json_credentials_format format) {
  using storewatch::detail::quote;
  const bool process = format == json_credentials_format::process;
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) throw std::runtime_error("the output is not JSON");
  if (!json.is_object()) throw std::runtime_error("the JSON is not an object");
  const auto string_field = [&](const char* name, bool required) {
    const auto found = json.find(name);
    if (found == json.end() || found->is_null()) {
      if (required) throw std::runtime_error(std::string("the JSON has no ") + name);
      return std::string();
    }
    if (!found->is_string()) throw std::runtime_error(std::string("the JSON's ") + name + " is not a string");
    return found->get<std::string>();
  };
  if (process) {
    const auto version = json.find("Version");
    if (version == json.end()) throw std::runtime_error("the JSON has no Version (expected 1)");
    if (!version->is_number_integer() || version->get<long long>() != 1) {
      const auto shown = version->is_number() ? version->dump() : quote(version->dump(), 40);
      throw std::runtime_error("the JSON's Version is " + shown + ", expected 1");
    }
  } else if (const auto code = string_field("Code", false); !code.empty() && code != "Success") {
    throw std::runtime_error("the answer's Code is " + quote(code, 64) + ", not Success");
  }
  const char* token_name = process ? "SessionToken" : "Token";
  temporary_credentials result;
  result.keys.access_key_id = string_field("AccessKeyId", true);
  result.keys.secret_access_key = string_field("SecretAccessKey", true);
  result.keys.session_token = string_field(token_name, false);
  if (auto problem = credentials_problem(result.keys, {"AccessKeyId", "SecretAccessKey", token_name});
      !problem.empty()) {
    throw std::runtime_error("the JSON's " + problem);
  }
  if (const auto expiration = string_field("Expiration", false); !expiration.empty()) {
    result.expiration = parse_iso8601(expiration);
    if (!result.expiration) throw std::runtime_error("the Expiration " + quote(expiration, 64) + " is not an ISO-8601 time");
  }
  return result;
}

/// What `e` says without the ": <its code's message>" that libstdc++ adds,
/// for a message that goes into another.
inline std::string what_without_code(const std::system_error& e) {
  std::string text = e.what();
  const auto suffix = ": " + e.code().message();
  if (text.ends_with(suffix)) text.erase(text.size() - suffix.size());
  return text;
}

/// When credentials fetched at `now` that expire at `expiration` are
/// replaced: `margin` before they expire, or after half their life when
/// that is later (so that short-lived ones are not fetched for every request).
inline std::chrono::system_clock::time_point refresh_time(std::chrono::system_clock::time_point now,
                                                          std::chrono::system_clock::time_point expiration,
                                                          std::chrono::milliseconds margin) {
  return std::max(expiration - margin, now + (expiration - now) / 2);
}

/// How a source is named in messages: its kind and, when known, its origin
/// ("credential_process (profile 'dev' in /root/.aws/config)").
inline std::string source_name(const credential_source& source) {
  std::string name;
  switch (source.what) {
    case credential_source::kind::keys: name = "fixed credentials"; break;
    case credential_source::kind::process: name = "credential_process"; break;
    case credential_source::kind::web_identity: name = "web identity (STS AssumeRoleWithWebIdentity)"; break;
    case credential_source::kind::container: name = "container credentials"; break;
    case credential_source::kind::instance_metadata: name = "instance metadata (IMDSv2)"; break;
  }
  if (!source.origin.empty()) name += " (" + source.origin + ')';
  return name;
}

/// The content of a small file (at most 64 KiB), without trailing white
/// space; throws std::runtime_error naming the file. `what` says what it
/// holds ("the web identity token file").
inline std::string read_small_file(const std::string& path, std::string_view what) {
  using storewatch::detail::quote;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(what) + ' ' + quote(path) + " cannot be read");
  std::string text;
  text.resize(64 * 1024 + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) throw std::runtime_error(std::string(what) + ' ' + quote(path) + " cannot be read");
  if (text.size() > 64 * 1024) throw std::runtime_error(std::string(what) + ' ' + quote(path) + " is over 64 KiB");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
    text.pop_back();
  }
  if (text.empty()) throw std::runtime_error(std::string(what) + ' ' + quote(path) + " is empty");
  return text;
}

/// A `/bin/sh -c command` child with stdout on a pipe, in a process group
/// of its own, with a pidfd that becomes readable when it exits. If it is
/// destroyed before being reaped, its group is killed (SIGKILL) and it is
/// reaped (at once: nothing outlives SIGKILL).
class shell_child {
 public:
  /// Starts `command`; stdin is /dev/null, stderr this process's. Throws
  /// std::runtime_error saying which call failed.
  explicit shell_child(const std::string& command) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw system_failure("pipe2");
    out_ = fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attributes);
    int result = ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (result == 0) result = ::posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigemptyset(&none);
    if (result == 0) result = ::posix_spawnattr_setsigdefault(&attributes, &defaults);
    if (result == 0) result = ::posix_spawnattr_setsigmask(&attributes, &none);
    if (result == 0) result = ::posix_spawnattr_setpgroup(&attributes, 0);
    if (result == 0) {
      result = ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                                           POSIX_SPAWN_SETPGROUP);
    }
    std::string shell = "/bin/sh", dash_c = "-c", line = command;
    char* argv[] = {shell.data(), dash_c.data(), line.data(), nullptr};
    if (result == 0) result = ::posix_spawn(&pid_, shell.c_str(), &actions, &attributes, argv, environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    ::close(fds[1]);
    if (result != 0) {
      pid_ = -1;
      ::close(std::exchange(out_, -1));
      errno = result;
      throw system_failure("posix_spawn /bin/sh");
    }
    // glibc 2.36's <sys/pidfd.h> lacks extern "C": the system call itself.
    pid_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pid_fd_ < 0 && errno == ESRCH) {
      status_ = 0;  // already reaped by the system (SIGCHLD ignored): its status is unknown
    } else if (pid_fd_ < 0) {
      const auto failure = system_failure("pidfd_open");
      end();
      throw failure;
    }
  }
  shell_child(const shell_child&) = delete;
  shell_child& operator=(const shell_child&) = delete;
  ~shell_child() { end(); }

  /// The read end of its stdout, handed over (to a stream_descriptor).
  int take_output() { return std::exchange(out_, -1); }
  /// The pidfd, handed over; -1 when it was reaped already.
  int take_pid_fd() { return std::exchange(pid_fd_, -1); }
  /// Kills its process group (the shell and what it started).
  void kill() const { ::kill(-pid_, SIGKILL); }
  /// Reaps it if it has exited; true once it has. (When SIGCHLD is
  /// ignored the system reaps it: its status is then unknown, taken as 0.)
  bool reap() {
    int status = 0;
    if (status_) return true;
    const auto reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) status_ = status;
    if (reaped < 0 && errno == ECHILD) status_ = 0;
    return status_.has_value();
  }
  /// How it ended, for messages: "" for exit status 0, else "exited with
  /// status 3", "was killed by signal 9".
  std::string failure() const {
    if (!status_) return "did not end";
    if (WIFEXITED(*status_)) {
      return WEXITSTATUS(*status_) == 0 ? std::string() : "exited with status " + std::to_string(WEXITSTATUS(*status_));
    }
    if (WIFSIGNALED(*status_)) return "was killed by signal " + std::to_string(WTERMSIG(*status_));
    return "ended with wait status " + std::to_string(*status_);
  }

 private:
  /// Kills and reaps it unless reaped; closes what is still open.
  void end() {
    if (pid_ > 0 && !status_) {
      kill();
      int ignored = 0;
      while (::waitpid(pid_, &ignored, 0) < 0 && errno == EINTR) {
      }
      status_ = ignored;
    }
    if (out_ >= 0) ::close(std::exchange(out_, -1));
    if (pid_fd_ >= 0) ::close(std::exchange(pid_fd_, -1));
  }

  static std::runtime_error system_failure(const char* call) {
    return std::runtime_error(std::string(call) + " failed: " + std::generic_category().message(errno));
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int pid_fd_ = -1;
  std::optional<int> status_{};
};

}  // namespace detail

/// Turns a `credential_source` into credentials, and keeps them fresh.
///
/// `current()` returns the credentials to sign with: fetched on first use,
/// and again once they are within `credential_options::refresh_margin` of
/// expiring or were rejected (`reject`). Concurrent callers wait for one
/// fetch. A refresh that fails while the old credentials are still valid
/// keeps them (tried again after `refresh_retry`); once they have expired
/// the failure is an error.
///
/// Errors (thrown as std::system_error): `errc::store_access_denied`, whose
/// message names the source and says what went wrong ("container
/// credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI): http://...: HTTP 500");
/// `asio::error::operation_aborted` when cancelled. Cancellation: follows the
/// awaiting coroutine's cancellation state; a cancelled fetch kills its
/// process or aborts its request, and a waiting caller takes over.
///
/// Not thread-safe: use it from its executor's thread or strand. It must
/// outlive the operations it runs.
template <class Executor = asio::any_io_executor>
class basic_credential_provider {
 public:
  /// The executor of the provider's I/O.
  using executor_type = Executor;

  /// A provider of `source` on `executor`. Throws std::invalid_argument for
  /// a `keys` source (those need no provider) or a source missing what its
  /// kind needs (a command, a role and token file, a URI).
  basic_credential_provider(const executor_type& executor, credential_source source, credential_options options = {})
      : source_(checked(std::move(source))),
        options_(options),
        name_(detail::source_name(source_)),
        http_(executor, transport_options(source_, options_)),
        wake_(executor) {}

  basic_credential_provider(const basic_credential_provider&) = delete;
  basic_credential_provider& operator=(const basic_credential_provider&) = delete;

  /// The executor of the provider's I/O.
  executor_type get_executor() const noexcept { return http_.get_executor(); }
  /// The source.
  const credential_source& source() const noexcept { return source_; }
  /// How messages name the source.
  const std::string& name() const noexcept { return name_; }

  /// The credentials to sign a request with now (see the class comment).
  asio::awaitable<credentials> current() {
    for (;;) {
      const auto now = std::chrono::system_clock::now();
      if (have_ && !rejected_ && now < refresh_at_) co_return held_.keys;
      if (!fetching_) {
        co_await refresh(now);
        continue;
      }
      // Another caller is fetching: wait for it, then take its outcome.
      const auto generation = generation_;
      std::error_code woken;  // operation_aborted: the fetch ended
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, woken));
      const auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none) {
        throw std::system_error(asio::error::operation_aborted, name_ + ": cancelled");
      }
      if (generation_ != generation && last_failure_) std::rethrow_exception(last_failure_);
    }
  }

  /// A number that changes each time `current()` gets new credentials;
  /// read right after it, it names the ones it returned (for `reject`).
  std::uint64_t serial() const noexcept { return serial_; }

  /// Makes the next `current()` fetch new credentials, if the ones numbered
  /// `serial` are still the current ones (a server said they expired or are
  /// invalid; many requests saying so cause one fetch).
  void reject(std::uint64_t serial) noexcept {
    if (serial == serial_) rejected_ = true;
  }

  /// The credentials last fetched (empty before the first), to keep them
  /// out of messages.
  const credentials& last() const noexcept { return held_.keys; }
  /// When the credentials last fetched expire, if they do.
  std::optional<std::chrono::system_clock::time_point> expiration() const noexcept { return held_.expiration; }
  /// Fetches started so far, failed ones included.
  std::uint64_t fetches() const noexcept { return fetches_; }

  /// Fetches credentials from the source once, whatever is held. Throws
  /// std::system_error (`errc::store_access_denied`) naming the source.
  asio::awaitable<temporary_credentials> fetch() {
    ++fetches_;
    try {
      temporary_credentials fetched;
      switch (source_.what) {
        case credential_source::kind::process: fetched = co_await from_process(); break;
        case credential_source::kind::web_identity: fetched = co_await from_web_identity(); break;
        case credential_source::kind::container: fetched = co_await from_container(); break;
        case credential_source::kind::instance_metadata: fetched = co_await from_instance_metadata(); break;
        case credential_source::kind::keys: throw std::runtime_error("not a source to fetch from");
      }
      // Taken, they would be fetched again for every request.
      if (fetched.expiration && *fetched.expiration <= std::chrono::system_clock::now()) {
        throw std::runtime_error("the credentials it gave have expired already");
      }
      co_return fetched;
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::operation_aborted) throw;
      throw std::system_error(make_error_code(errc::store_access_denied), name_ + ": " + detail::what_without_code(e));
    } catch (const std::exception& e) {
      throw std::system_error(make_error_code(errc::store_access_denied), name_ + ": " + e.what());
    }
  }

 private:
  using timer_type =
      asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;

  static credential_source checked(credential_source source) {
    const auto need = [&](const std::string& value, const char* field) {
      if (value.empty()) {
        throw std::invalid_argument(detail::source_name(source) + ": " + field + " is empty");
      }
    };
    switch (source.what) {
      case credential_source::kind::keys:
        throw std::invalid_argument("fixed credentials need no credential provider");
      case credential_source::kind::process: need(source.command, "command"); break;
      case credential_source::kind::web_identity:
        need(source.role_arn, "role_arn");
        need(source.token_file, "token_file");
        break;
      case credential_source::kind::container: need(source.uri, "uri"); break;
      case credential_source::kind::instance_metadata: break;
    }
    return source;
  }

  static http_options transport_options(const credential_source& source, const credential_options& options) {
    http_options http;
    http.request_timeout = options.http_timeout;
    http.ca_file = options.ca_file;
    http.connect_timeout = source.what == credential_source::kind::instance_metadata
                               ? options.metadata_connect_timeout
                               : std::min(options.http_timeout, http.connect_timeout);
    return http;
  }

  /// Fetches (as the one caller doing so) and takes the outcome; throws
  /// when the fetch failed and nothing valid is held.
  asio::awaitable<void> refresh(std::chrono::system_clock::time_point now) {
    fetching_ = true;
    wake_.expires_at(timer_type::time_point::max());
    // Whatever happens, the waiters wake up and look (unless the provider is
    // gone: a coroutine frame destroyed with its io_context after it).
    struct done_guard {
      basic_credential_provider& self;
      std::weak_ptr<int> alive;
      ~done_guard() {
        if (alive.expired()) return;
        self.fetching_ = false;
        self.wake_.cancel();
      }
    } guard{*this, alive_};
    std::exception_ptr failure;
    try {
      auto fresh = co_await fetch();
      now = std::chrono::system_clock::now();
      held_ = std::move(fresh);
      have_ = true;
      rejected_ = false;
      ++serial_;
      refresh_at_ = held_.expiration ? detail::refresh_time(now, *held_.expiration, options_.refresh_margin)
                                     : std::chrono::system_clock::time_point::max();
      last_failure_ = nullptr;
      ++generation_;
      co_return;
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::operation_aborted) throw;
      failure = std::current_exception();
    }
    ++generation_;
    now = std::chrono::system_clock::now();
    const bool valid = have_ && !rejected_ && (!held_.expiration || now < *held_.expiration);
    if (valid) {
      // Keep what still works; try again a little later.
      last_failure_ = nullptr;
      refresh_at_ = now + options_.refresh_retry;
      if (held_.expiration) refresh_at_ = std::min(refresh_at_, *held_.expiration);
      co_return;
    }
    last_failure_ = failure;
    std::rethrow_exception(failure);
  }

  /// Runs the command and reads its JSON.
  asio::awaitable<temporary_credentials> from_process() {
    using namespace asio::experimental::awaitable_operators;
    detail::shell_child child(source_.command);
    asio::posix::stream_descriptor output(get_executor(), child.take_output());
    asio::posix::stream_descriptor exited(get_executor());
    if (const auto pid_fd = child.take_pid_fd(); pid_fd >= 0) exited.assign(pid_fd);
    std::string text;
    bool too_large = false;
    asio::steady_timer timer(get_executor(), options_.process_timeout);
    auto finished = co_await ((read_output(output, child, text, too_large) && wait_exit(exited, child)) ||
                              timer.async_wait(asio::use_awaitable));
    if (finished.index() == 1) {
      child.kill();
      co_await wait_exit(exited, child);
      throw std::runtime_error("the command did not finish within " + std::to_string(options_.process_timeout.count()) +
                               " ms and was killed");
    }
    if (too_large) {
      throw std::runtime_error("the command printed more than " + std::to_string(options_.max_process_output) +
                               " bytes and was killed");
    }
    if (auto failed = child.failure(); !failed.empty()) throw std::runtime_error("the command " + failed);
    co_return detail::credentials_from_json(text, detail::json_credentials_format::process);
  }

  /// Reads the child's stdout to its end into `text`, or kills the child
  /// when it says more than `max_process_output`.
  asio::awaitable<void> read_output(asio::posix::stream_descriptor& output, detail::shell_child& child,
                                    std::string& text, bool& too_large) {
    std::array<char, 4096> chunk;
    for (;;) {
      auto [ec, got] = co_await output.async_read_some(asio::buffer(chunk),
                                                       asio::experimental::as_tuple(asio::use_awaitable));
      text.append(chunk.data(), got);
      if (text.size() > options_.max_process_output) {
        too_large = true;
        child.kill();
        co_return;
      }
      if (ec == asio::error::operation_aborted) throw std::system_error(ec);
      if (ec) co_return;  // end of output (or a read error: the JSON then tells)
    }
  }

  /// Waits for the child to exit and reaps it.
  static asio::awaitable<void> wait_exit(asio::posix::stream_descriptor& exited, detail::shell_child& child) {
    while (!child.reap()) {
      co_await exited.async_wait(asio::posix::descriptor_base::wait_read, asio::use_awaitable);
    }
  }

  /// One HTTP request; throws std::runtime_error naming `url` when it
  /// cannot be sent or answers other than 200.
  asio::awaitable<http_response> send(std::string method, std::string url, std::vector<header> headers,
                                      std::string body) {
    using storewatch::detail::quote;
    http_request request;
    request.method = std::move(method);
    request.url = url;
    request.headers = std::move(headers);
    request.body = std::move(body);
    auto [ec, response] = co_await http_.async_perform(std::move(request), asio::experimental::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) throw std::system_error(ec);
    if (ec) {
      throw std::runtime_error(quote(url) + ": " + (response.error_text.empty() ? ec.message() : response.error_text));
    }
    if (response.status != 200) {
      std::string text = quote(url) + ": HTTP " + std::to_string(response.status);
      if (const auto error = parse_error_body(response.body); error && !error->code.empty()) {
        text += ' ' + quote(error->code, 64);
      }
      throw std::runtime_error(text);
    }
    co_return std::move(response);
  }

  /// STS AssumeRoleWithWebIdentity with the token file's current content.
  asio::awaitable<temporary_credentials> from_web_identity() {
    const auto token = detail::read_small_file(source_.token_file, "the web identity token file");
    auto session = source_.session_name;
    if (session.empty()) {
      session = "storewatch-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
    }
    std::string body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + uri_encode(source_.role_arn) +
                       "&RoleSessionName=" + uri_encode(session) + "&WebIdentityToken=" + uri_encode(token);
    auto url = source_.uri.empty() ? std::string("https://sts.amazonaws.com") : source_.uri;
    if (url.find('/', url.find("://") + 3) == std::string::npos) url += '/';
    std::vector<header> headers{{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/xml"}};
    std::string method = "POST";
    const auto response = co_await send(std::move(method), url, std::move(headers), std::move(body));
    sts_credentials sts;
    try {
      sts = parse_sts_credentials(response.body);
    } catch (const std::system_error& e) {
      throw std::runtime_error(storewatch::detail::quote(url) + ": " + detail::what_without_code(e));
    }
    temporary_credentials result;
    result.keys = {std::move(sts.access_key_id), std::move(sts.secret_access_key), std::move(sts.session_token)};
    if (auto problem = detail::credentials_problem(result.keys, {"AccessKeyId", "SecretAccessKey", "SessionToken"});
        !problem.empty()) {
      throw std::runtime_error("the STS response's " + problem);
    }
    if (!sts.expiration.empty()) {
      result.expiration = detail::parse_iso8601(sts.expiration);
      if (!result.expiration) throw std::runtime_error("the STS response's Expiration is not an ISO-8601 time");
    }
    co_return result;
  }

  /// GET the container endpoint, with its authorization.
  asio::awaitable<temporary_credentials> from_container() {
    std::vector<header> headers{{"Accept", "application/json"}};
    auto authorization = source_.authorization;
    if (!source_.authorization_file.empty()) {
      authorization = detail::read_small_file(source_.authorization_file, "the authorization token file");
    }
    if (authorization.find_first_of("\r\n") != std::string::npos) {
      throw std::runtime_error("the authorization token has a line break");
    }
    if (!authorization.empty()) headers.emplace_back("Authorization", std::move(authorization));
    std::string method = "GET", none;
    const auto response = co_await send(std::move(method), source_.uri, std::move(headers), none);
    co_return json_answer(source_.uri, response);
  }

  /// IMDSv2: a session token, the role's name, then its credentials.
  asio::awaitable<temporary_credentials> from_instance_metadata() {
    auto base = source_.uri.empty() ? std::string("http://169.254.169.254") : source_.uri;
    while (base.ends_with('/')) base.pop_back();
    std::vector<header> token_headers{{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
    std::string put = "PUT", get = "GET", none;
    const auto token_url = base + "/latest/api/token";
    const auto token = co_await send(put, token_url, std::move(token_headers), none);
    if (token.body.empty() || token.body.find_first_of("\r\n") != std::string::npos) {
      throw std::runtime_error(token_url + " gave no usable token");
    }
    const std::vector<header> headers{{"X-aws-ec2-metadata-token", token.body}};
    const auto roles_url = base + "/latest/meta-data/iam/security-credentials/";
    const auto roles = co_await send(get, roles_url, headers, none);
    const auto role = std::string(detail::trim_blanks(roles.body.substr(0, roles.body.find('\n'))));
    if (role.empty() || role.find_first_of("/?#%\r") != std::string::npos) {
      throw std::runtime_error(roles_url + " names no usable role (no instance profile?)");
    }
    const auto role_url = roles_url + role;
    const auto answer = co_await send(get, role_url, headers, none);
    co_return json_answer(role_url, answer);
  }

  static temporary_credentials json_answer(const std::string& url, const http_response& response) {
    try {
      return detail::credentials_from_json(response.body, detail::json_credentials_format::container);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(storewatch::detail::quote(url) + ": " + e.what());
    }
  }

  credential_source source_;
  credential_options options_;
  std::string name_;
  basic_http_client<Executor> http_;
  timer_type wake_;  // waiters on a fetch in flight; cancelled when it ends
  temporary_credentials held_{};
  bool have_ = false;
  bool rejected_ = false;
  bool fetching_ = false;
  std::chrono::system_clock::time_point refresh_at_{};
  std::uint64_t serial_ = 0;
  std::uint64_t generation_ = 0;  // fetches ended
  std::uint64_t fetches_ = 0;
  std::exception_ptr last_failure_{};
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

/// The credential provider on `asio::any_io_executor`.
using credential_provider = basic_credential_provider<>;

}  // namespace storewatch::s3
