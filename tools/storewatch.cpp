// storewatch: act on a store and follow its events from a shell.
//
// The store is a folder (local_store) or, when built with STOREWATCH_TOOL_S3,
// an S3 bucket and key prefix (s3::s3_store, `--store s3://bucket/prefix`).
// The commands are written once, over either store: `complete` drives a
// store's asynchronous operation to its end on the tool's io_context.
//
// Exit status: 0 success, 1 runtime error (one line on stderr naming the path,
// user or S3 request; also a tail whose standard output closed or whose
// checkpoint cannot be saved), 2 usage error (naming the argument, option or
// environment variable), 3 `share`, `unshare` or `delete` matched none of
// your versions, 124 `tail --timeout` expired before `--count` events
// arrived. Nothing goes to stdout on error.
#include "cli.hpp"
#include "terminal_text.hpp"
#include "time_text.hpp"

#include <storewatch/storewatch.hpp>
#ifdef STOREWATCH_TOOL_S3
#include <storewatch/s3/store.hpp>
#endif

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <climits>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

namespace {

using namespace storewatch;
using cli::runtime_failure;
using cli::usage_error;

constexpr std::string_view default_root = "storewatch-demo";
constexpr std::size_t tail_checkpoint_every = 64;
constexpr std::uint64_t default_max_size = 64ull << 20;
/// `share`, `unshare` or `delete` matched none of the user's versions.
constexpr int status_nothing_matched = 3;

const std::vector<cli::option_spec> selection_options{
    {"recursive", false, "every path under PREFIX, not only the file or one folder's direct children"},
    {"since", true, "only versions created at or after T (epoch ms or ISO 8601)", "T"},
    {"until", true, "only versions created at or before T", "T"},
};

std::vector<cli::option_spec> with_selection(std::vector<cli::option_spec> options) {
  options.insert(options.end(), selection_options.begin(), selection_options.end());
  return options;
}

/// `options` and those `tail` and `watch` share, with their own help for
/// --names, --prefix and --interval.
std::vector<cli::option_spec> with_follow(std::vector<cli::option_spec> options, std::string_view names_help,
                                          std::string_view prefix_help, std::string_view interval_help) {
  options.insert(options.end(),
                 {{"names", true, names_help, "NAMES"},
                  {"prefix", true, prefix_help, "P"},
                  {"format", true, "json (one object per line) or text (default: text on a terminal)", "FORMAT"},
                  {"count", true, "exit 0 after N events", "N"},
                  {"timeout", true, "give up after SECONDS; exit 124 if --count events have not arrived", "SECONDS"},
                  {"interval", true, interval_help, "SECONDS"}});
  return options;
}

const std::vector<cli::command_spec>& commands() {
  static const std::vector<cli::command_spec> table{
      {"init", "", 0, 0, {}, "create the store (a folder store's root); every other command needs one"},
      {"create", "PATH [FILE|-]", 1, 2,
       {{"max-size", true, "refuse input larger than BYTES (suffix K, M or G for KiB, MiB, GiB; default 64M)",
         "BYTES"}},
       "store FILE (or stdin) as a new version of PATH; prints the version"},
      {"share", "PREFIX", 1, 1, with_selection({{"with", true, "users to share with: U1[,U2...]", "USERS"}}),
       "share your versions under PREFIX; prints each version (status 3 if none matched)"},
      {"unshare", "PREFIX", 1, 1, with_selection({{"with", true, "users to stop sharing with: U1[,U2...]", "USERS"}}),
       "stop sharing your versions under PREFIX; prints each version (status 3 if none matched)"},
      {"delete", "PREFIX", 1, 1, with_selection({}),
       "delete your versions under PREFIX; prints each version (status 3 if none matched)"},
      {"publish", "NAME [DATA]", 1, 2, {{"to", true, "users to notify: U1[,U2...]", "USERS"}},
       "send an application event NAME with DATA to users"},
      {"ls", "[PREFIX]", 0, 1, {{"recursive", false, "list everything under PREFIX"}},
       "list the versions you can read"},
      {"cat", "VERSIONED_PATH", 1, 1, {}, "print the bytes of a version you can read"},
      {"tail", "", 0, 0,
       with_follow({{"from-start", false, "start at the beginning of your journal (default: at its end)"},
                    {"checkpoint", true, "resume after the last event printed, and save progress to FILE", "FILE"}},
                   "only these event names: CREATE,SHARE,...", "only events whose data starts with P",
                   "poll interval in SECONDS, more than 0 (default 0.2)"),
       "print your events as they happen"},
      {"stats", "", 0, 0, {}, "event count, writers, journal bytes and oldest/newest event per user"},
      {"watch", "DIR", 1, 1,
       with_follow({{"state", true,
                     "keep the watch's journal, snapshot and checkpoint in FOLDER: a restarted watch prints what "
                     "changed while it was down, and nothing twice",
                     "FOLDER"},
                    {"include", true,
                     "only files matching these globs: G1[,G2...] (a glob with '/' matches the relative path)",
                     "GLOBS"},
                    {"exclude", true, "leave out files and folders matching these globs", "GLOBS"},
                    {"no-hidden", false, "leave out names starting with '.'"},
                    {"no-symlinks", false, "leave out symbolic links (they are never followed anyway)"},
                    {"flat", false, "only DIR's own entries, not the folders below it"},
                    {"existing", false, "on the first run, print what is already there as CREATE"},
                    {"settle", true, "SECONDS a folder must be quiet before it is rescanned (default 0.05)",
                     "SECONDS"}},
                   "only these event names: CREATE,MODIFY,DELETE,RENAME", "only paths starting with P",
                   "poll interval in SECONDS, the safety net under inotify, more than 0 (default 1)"),
       "print the changes in a directory tree as they happen (no store needed)"},
  };
  return table;
}

/// What `COMMAND --help` adds after the options, for the commands whose
/// behaviour differs on an S3 store.
const std::map<std::string_view, std::string_view>& command_notes() {
  static const std::map<std::string_view, std::string_view> notes{
      {"ls", "On an s3:// store a user the store does not know simply has no files (a folder store says\n"
             "the user is unknown: it checks the user's folders; S3 has none to check).\n"},
      {"cat", "On an s3:// store the user is not checked first: a version that is not yours or shared\n"
              "with you is \"cannot read\" (exit 1), as on a folder store.\n"},
      {"tail", "Without --from-start or a --checkpoint file that exists, the tail first reads to the\n"
               "journal's end and prints only what comes after; a new --checkpoint file records that\n"
               "position before anything is printed. S3 has no change notifications: each\n"
               "--interval is one LIST request while nothing is new.\n"},
      {"stats", "Reads every user's journal from the start. On an s3:// store: users are the folders under\n"
                "journals/, bytes the size of their journal objects, writers the store objects that wrote them\n"
                "(per the object names); one LIST per 1000 objects plus one GET per object.\n"},
  };
  return notes;
}

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: storewatch [--store LOCATION] [--endpoint URL] [--user NAME] COMMAND [ARGS]\n"
               "       storewatch COMMAND --help | --help | --version\n\n"
               "  --store LOCATION  the store: a folder, or s3://bucket[/prefix]\n"
               "                    (default: $STOREWATCH_STORE, else $STOREWATCH_ROOT, else ./%s)\n"
               "  --root DIR        the same as --store\n"
               "  --endpoint URL    the S3 service for an s3:// store, http(s)://host[:port]\n"
               "                    (default: $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else AWS in $AWS_REGION)\n"
               "  --user NAME       who acts (default: $STOREWATCH_USER)\n\n"
               "An s3:// store takes its credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
               "AWS_SESSION_TOKEN, and its region from AWS_REGION (else AWS_DEFAULT_REGION, else us-east-1).\n"
               "\ncommands:\n",
               std::string(default_root).c_str());
  for (const auto& c : commands()) {
    std::fprintf(out, "  %-8s %-16s %s\n", std::string(c.name).c_str(), std::string(c.positionals).c_str(),
                 std::string(c.summary).c_str());
  }
}

void print_command_usage(const cli::command_spec& c) {
  std::printf("usage: storewatch [--store LOCATION] [--user NAME] %s%s%s%s\n\n%s\n", std::string(c.name).c_str(),
              c.positionals.empty() ? "" : " ", std::string(c.positionals).c_str(),
              c.options.empty() ? "" : " [OPTIONS]", std::string(c.summary).c_str());
  for (const auto& o : c.options) {
    const auto option = std::string(o.name) + (o.takes_value ? " " + std::string(o.value_name) : "");
    std::printf("  --%-18s %s\n", option.c_str(), std::string(o.help).c_str());
  }
  if (const auto note = command_notes().find(c.name); note != command_notes().end()) {
    std::printf("\n%.*s", static_cast<int>(note->second.size()), note->second.data());
  }
}

/// Where the store is, and what said so (for error messages).
struct store_location {
  std::string text = std::string(default_root);
  std::string origin = "the default";  // "option '--store'", "STOREWATCH_ROOT", ...

  bool is_s3() const { return text.starts_with("s3://"); }
  std::filesystem::path root() const { return text; }
};

struct context {
  store_location store;
  std::optional<std::string> endpoint;  // --endpoint
  std::string user;
  const cli::command_spec* command = nullptr;
  cli::parsed_args args;
};

timestamp parse_time_option(const cli::parsed_args& args, std::string_view name) {
  const auto text = *args.get(name);
  if (auto t = cli::parse_time(text)) return *t;
  throw usage_error("option '--" + std::string(name) + "': '" + text +
                    "' is not a time (epoch milliseconds or ISO 8601 such as 2025-10-22T12:15:41Z)");
}

selection parse_selection(const context& c) {
  selection which{c.args.positionals.at(0), c.args.has("recursive")};
  if (c.args.has("since")) which.since = parse_time_option(c.args, "since");
  if (c.args.has("until")) which.until = parse_time_option(c.args, "until");
  if (which.since && which.until && *which.since > *which.until) {
    throw usage_error("option '--since' (" + *c.args.get("since") + ") is after option '--until' (" +
                      *c.args.get("until") + "): nothing could match");
  }
  return which;
}

std::vector<std::string> required_users(const context& c, std::string_view option) {
  const auto text = c.args.get(option);
  if (!text) throw usage_error("'" + std::string(c.command->name) + "' needs --" + std::string(option) + " U1[,U2...]");
  return cli::split_list(*text, option);
}

// Checks of a folder store, made before it is opened. An S3 store has no
// folders to look at: see `command_notes`.

void require_root(const context& c) {
  std::error_code ec;
  const auto status = std::filesystem::status(c.store.root(), ec);
  if (std::filesystem::is_directory(status)) return;
  const std::string where = "store root " + c.store.text + " (from " + c.store.origin + ")";
  if (std::filesystem::exists(status)) throw runtime_failure(where + " is not a folder");
  throw runtime_failure(where + " does not exist; run 'storewatch init' to create a store there, or name "
                        "another with --store or STOREWATCH_STORE");
}

void require_known_user(const context& c) {
  require_root(c);
  std::error_code ec;
  for (const char* part : {"journals", "versions", "shares"}) {
    if (std::filesystem::exists(c.store.root() / part / c.user, ec)) return;
  }
  throw runtime_failure("user " + c.user + " is not known to the store at " + c.store.text +
                        " (no journal, files or shares)");
}

/// One rule for every command but `init`: the store must exist already,
/// so that a mistyped location is an error instead of a new, empty store.
void check_local_store(const context& c) {
  const auto name = c.command->name;
  if (name == "ls" || name == "cat") {
    require_known_user(c);
  } else {
    require_root(c);
  }
}

/// `init`: makes the store's root folder (and its parents) and its
/// journals folder; a store that exists already is left as it is.
int run_init(const context& c) {
  const auto root = c.store.root();
  std::error_code ec;
  if (std::filesystem::exists(root, ec) && !std::filesystem::is_directory(root, ec)) {
    throw runtime_failure("store root " + c.store.text + " (from " + c.store.origin + ") is not a folder");
  }
  const bool existed = std::filesystem::is_directory(root / "journals", ec);
  std::filesystem::create_directories(root / "journals", ec);
  if (ec) throw runtime_failure("cannot create the store at " + c.store.text + ": " + ec.message());
  std::printf(existed ? "the store at %s exists already\n" : "created a store at %s\n",
              cli::terminal_text(c.store.text).c_str());
  return 0;
}

/// A store operation that failed: its error code and the store's
/// `last_error()` (which names the file, user or request).
struct store_failure : std::runtime_error {
  store_failure(std::error_code code, const std::string& what) : std::runtime_error(what), code(code) {}
  std::error_code code;
};

/// Runs `io` until it has run `done()` true. Every pending operation keeps
/// work on `io`, so it does not run dry before.
void run_until(asio::io_context& io, const std::function<bool()>& done) {
  io.restart();
  while (!done()) {
    if (io.run_one() == 0 && !done()) {
      throw std::logic_error("the event loop ran out of work before an operation ended");
    }
  }
}

/// Starts an asynchronous operation with `start(handler)` and runs `io`
/// until it completes; returns its result, or throws `store_failure` with
/// `last_error()`. Works for any store or source: the commands below are
/// written once for both kinds of store.
template <class Result, class Start, class LastError>
Result complete(asio::io_context& io, Start start, LastError last_error) {
  std::optional<std::pair<std::error_code, Result>> outcome;
  start([&outcome](std::error_code ec, Result result) { outcome.emplace(ec, std::move(result)); });
  run_until(io, [&] { return outcome.has_value(); });
  if (outcome->first) {
    const std::string what = last_error();
    throw store_failure(outcome->first, what.empty() ? outcome->first.message() : what);
  }
  return std::move(outcome->second);
}

/// One poll of `source`, run to its end.
template <class Source>
poll_result poll_once(asio::io_context& io, Source& source, const std::string& cursor, std::size_t max_events) {
  return complete<poll_result>(
      io, [&](auto handler) { source.async_poll(cursor, max_events, std::move(handler)); },
      [&source] { return source.last_error(); });
}

/// Runs the coroutine `work` on `io` to its end; returns its value or
/// rethrows what it threw.
template <class T>
T run_coroutine(asio::io_context& io, asio::awaitable<T> work) {
  std::optional<T> value;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr thrown, T result) {
    failure = thrown;
    if (!thrown) value.emplace(std::move(result));
    done = true;
  });
  run_until(io, [&] { return done; });
  if (failure) std::rethrow_exception(failure);
  return std::move(*value);
}

/// `--max-size`: bytes, or KiB, MiB or GiB with a K, M or G suffix.
std::uint64_t parse_size_option(const cli::parsed_args& args) {
  const auto text = args.get("max-size");
  if (!text) return default_max_size;
  std::string digits = *text;
  std::uint64_t unit = 1;
  if (!digits.empty()) {
    const auto suffix = std::string("KMG").find(digits.back());
    if (suffix != std::string::npos) {
      unit = 1ull << (10 * (suffix + 1));
      digits.pop_back();
    }
  }
  std::uint64_t value = 0;
  if (!detail::parse_decimal(digits, value) || value > UINT64_MAX / unit) {
    throw usage_error("option '--max-size': '" + *text + "' is not a size (bytes, or a number with K, M or G)");
  }
  return value * unit;
}

/// "64 MiB", "1000 bytes": a size for messages.
std::string size_text(std::uint64_t bytes) {
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

/// Reads the input file `name` ("-": stdin) a block at a time, holding at
/// most `max_size` bytes: a larger input (or an endless one, /dev/zero) is
/// an error as soon as it passes the limit.
std::string read_input(const std::string& name, std::uint64_t max_size) {
  const bool standard_input = name == "-";
  const std::string what = standard_input ? std::string("standard input") : "input file " + name;
  detail::unique_fd opened;
  if (!standard_input) {
    opened = detail::unique_fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!opened) {
      if (errno == ENOENT) throw runtime_failure("input file " + name + " does not exist");
      throw runtime_failure(what + ": " + std::strerror(errno));
    }
  }
  const int fd = standard_input ? STDIN_FILENO : opened.get();
  std::string bytes;
  char block[65536];
  for (;;) {
    const auto got = ::read(fd, block, sizeof block);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw runtime_failure(what + ": " + std::strerror(errno));
    if (got == 0) break;
    if (bytes.size() + static_cast<std::size_t>(got) > max_size) {
      throw runtime_failure(what + " is larger than " + size_text(max_size) +
                            " (the --max-size limit; give a larger --max-size to store it)");
    }
    bytes.append(block, static_cast<std::size_t>(got));
  }
  return bytes;
}

void print_versions(const std::vector<versioned_path>& versions) {
  for (const auto& v : versions) std::printf("%s\n", cli::terminal_text(v.to_string()).c_str());
}

std::string event_json(const event& e) {
  nlohmann::json j{{"id", e.id},
                        {"name", e.name},
                        {"data", e.data},
                        {"actor", e.actor},
                        {"occurred_at", cli::format_time(e.occurred_at)}};
  if (!e.attributes.is_null()) j["attributes"] = e.attributes;
  // Data is bytes; what is not UTF-8 is shown as U+FFFD rather than failing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// One readable line: time, name and actor aligned, then the data; every
/// field escaped for the terminal (`cli::terminal_text`), so no event can
/// print a line of its own or control the terminal.
std::string event_text(const event& e) {
  std::string name = cli::terminal_text(e.name), actor = cli::terminal_text(e.actor);
  name.resize(std::max<std::size_t>(name.size(), 8), ' ');
  actor.resize(std::max<std::size_t>(actor.size(), 10), ' ');
  std::string data = cli::terminal_text(e.data);
  if (e.name == event_name::rename && e.attributes.is_object() && e.attributes.contains("from") &&
      e.attributes["from"].is_string()) {
    data = cli::terminal_text(e.attributes["from"].get<std::string>()) + " -> " + data;
  }
  return cli::format_time(e.occurred_at) + "  " + name + " " + actor + " " + data;
}

/// What `tail` and `watch` share: how to print, when to stop.
struct follow_settings {
  bool json = true;
  std::optional<std::uint64_t> count;
  std::optional<std::chrono::milliseconds> timeout;
  std::chrono::milliseconds interval{200};
  event_filter filter;
};

/// Seconds as milliseconds; anything beyond a century counts as a century,
/// so no conversion overflows.
std::chrono::milliseconds to_duration(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(seconds, 3.2e9) * 1000));
}

/// Option `--NAME` as a plain decimal number, if given.
std::optional<double> number_option(const cli::parsed_args& args, std::string_view name) {
  const auto text = args.get(name);
  if (!text) return std::nullopt;
  return cli::parse_decimal_option(*text, name);
}

follow_settings parse_follow(const cli::parsed_args& args, double default_interval) {
  follow_settings settings;
  const auto format = args.get("format").value_or(::isatty(STDOUT_FILENO) ? "text" : "json");
  if (format != "json" && format != "text") throw usage_error("option '--format': '" + format + "' is not json or text");
  settings.json = format == "json";
  if (const auto count = number_option(args, "count")) {
    if (*count != static_cast<double>(static_cast<std::uint64_t>(*count))) {
      throw usage_error("option '--count': '" + *args.get("count") + "' is not a whole number");
    }
    settings.count = static_cast<std::uint64_t>(*count);
  }
  if (const auto timeout = number_option(args, "timeout")) settings.timeout = to_duration(*timeout);
  settings.interval = to_duration(number_option(args, "interval").value_or(default_interval));
  if (settings.interval <= std::chrono::milliseconds(0)) {
    throw usage_error("option '--interval': '" + *args.get("interval") +
                      "' is too short (the poll interval is at least 0.001 seconds)");
  }
  if (const auto names = args.get("names")) settings.filter.names = cli::split_list(*names, "names");
  settings.filter.prefix = args.get("prefix").value_or("");
  return settings;
}

/// Standard output as a tail writes it: a line at a time, waiting on the
/// io_context (not in a blocking write) while a pipe or terminal is full,
/// so SIGINT, SIGTERM and --timeout end the wait at once. A pipe is written
/// PIPE_BUF bytes at a time once writable, so those writes never block.
/// Files and devices epoll cannot wait on are written directly: they do
/// not block for long.
class line_output {
 public:
  explicit line_output(asio::io_context& io) : waiter_(io) {
    struct stat status {};
    const bool can_block = ::fstat(STDOUT_FILENO, &status) == 0 &&
                           (S_ISFIFO(status.st_mode) || S_ISSOCK(status.st_mode) || ::isatty(STDOUT_FILENO));
    const int copy = can_block ? ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0) : -1;
    std::error_code ec;
    if (copy >= 0) waiter_.assign(copy, ec);
    if (copy >= 0 && ec) ::close(copy);  // written directly, then
  }

  /// Writes all of `line` (with its newline). Completes with
  /// `operation_aborted` when `cancel()` came first, else the error of the
  /// write, if any (EPIPE: the reader has gone). A line longer than
  /// PIPE_BUF that is cancelled half-way stays torn on the output; it is
  /// not recorded as written, so a resumed tail prints it again whole.
  asio::awaitable<std::error_code> write(std::string line) {
    std::string_view rest = line;
    while (!rest.empty()) {
      if (cancelled_) co_return asio::error::operation_aborted;
      if (waiter_.is_open()) {
        const auto [ec] = co_await waiter_.async_wait(asio::posix::stream_descriptor::wait_write,
                                                      asio::experimental::as_tuple(asio::use_awaitable));
        if (cancelled_) co_return asio::error::operation_aborted;
        if (ec) co_return ec;
      }
      const auto chunk = waiter_.is_open() ? std::min<std::size_t>(rest.size(), PIPE_BUF) : rest.size();
      const auto written = ::write(STDOUT_FILENO, rest.data(), chunk);
      if (written < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (written < 0) co_return std::error_code(errno, std::system_category());
      rest.remove_prefix(static_cast<std::size_t>(written));
    }
    co_return std::error_code{};
  }

  /// Completes when the reader of a pipe has gone (or a terminal hung up)
  /// while nothing is being written; never for output that is not pollable.
  void async_wait_closed(std::function<void()> closed) {
    if (!waiter_.is_open()) return;
    waiter_.async_wait(asio::posix::stream_descriptor::wait_error, [this, closed](std::error_code ec) {
      if (ec) return;
      pollfd check{STDOUT_FILENO, 0, 0};
      if (::poll(&check, 1, 0) == 1 && (check.revents & (POLLERR | POLLHUP))) {
        closed();
      } else if (!cancelled_) {
        async_wait_closed(closed);
      }
    });
  }

  /// Ends a wait in progress, and every later write, with operation_aborted.
  void cancel() {
    cancelled_ = true;
    std::error_code ignored;
    waiter_.cancel(ignored);
  }

 private:
  asio::posix::stream_descriptor waiter_;  // a duplicate of stdout, for waiting only
  bool cancelled_ = false;
};

/// Prints `source`'s events until --count, --timeout, SIGINT, SIGTERM or a
/// closed output; returns the exit status. With `saved` (the tail's or the
/// watch's checkpoint, locked), starts where it says and records in it
/// exactly the events that were written out in full, saving every
/// `tail_checkpoint_every` events, whenever it has caught up, and at the
/// end. A checkpoint that cannot be saved ends the run with status 1, said
/// once. A failed or closed output ends it with status 1 too, without a
/// last save: lines still in a pipe whose reader has gone were never read,
/// so the next run prints them again, as after a SIGKILL.
template <class Source>
int follow(asio::io_context& io, Source& source, std::optional<checkpoint>& saved, std::string start_cursor,
           const follow_settings& settings) {
  std::optional<std::string> failure;  // the first error that ends the run
  const auto fail = [&](std::string message) {
    if (!failure) failure = std::move(message);
  };
  checkpoint_state from{std::move(start_cursor), {}};
  if (saved) {
    if (saved->exists()) {
      from = saved->state();
    } else {
      saved->reset(from);  // a new checkpoint records the starting position first
      try {
        saved->save();
      } catch (const std::system_error& error) {
        throw runtime_failure(error.what());
      }
    }
  }
  if (settings.count && *settings.count == 0) return 0;
  // A reader that has gone is an error of the write (EPIPE), reported with
  // status 1 as the README says, not a silent death by SIGPIPE (141).
  std::signal(SIGPIPE, SIG_IGN);

  event_stream stream(io.get_executor());
  poller_options poll_options;
  poll_options.poll_interval = settings.interval;
  poll_options.on_error = [](std::error_code, std::string_view message) {
    std::fprintf(stderr, "storewatch: %.*s\n", static_cast<int>(message.size()), message.data());
  };
  poller poll_loop(source, stream, poll_options);
  line_output output(io);
  bool stopping = false;
  const auto stop = [&] {
    if (stopping) return;
    stopping = true;
    output.cancel();
    poll_loop.stop();
  };
  const auto save = [&] {
    if (!saved || saved->unsaved() == 0 || failure) return;
    try {
      saved->save();
    } catch (const std::system_error& error) {
      fail(error.what());
      stop();
    }
  };

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) stop();
  });
  bool timed_out = false;
  asio::steady_timer timer(io);
  if (settings.timeout) {
    timer.expires_after(*settings.timeout);
    timer.async_wait([&](std::error_code ec) {
      if (ec) return;
      timed_out = true;
      stop();
    });
  }
  output.async_wait_closed([&] {
    fail("standard output was closed");
    stop();
  });

  bool delivered_all = false;
  const auto print_events = [&]() -> asio::awaitable<void> {
    std::uint64_t printed = 0;
    while (!stopping) {
      auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
      if (ec || stopping) break;  // the end, or taken after a stop: not written, not recorded
      if (settings.filter.matches(e)) {
        // Not `co_await f(cond ? a : b)`: g++ 12 frees such temporaries twice.
        std::string line = settings.json ? event_json(e) : event_text(e);
        line += '\n';
        const auto written = co_await output.write(std::move(line));
        if (written == asio::error::operation_aborted) break;  // stopped while waiting to write
        if (written) {
          fail("writing an event to standard output: " + written.message());
          stop();
          break;
        }
        ++printed;
      }
      if (saved) saved->record(e);
      if (settings.count && printed == *settings.count) {
        stop();
        break;
      }
      if (saved && (saved->unsaved() >= tail_checkpoint_every || !stream.ready())) save();
    }
    save();
    stop();
    delivered_all = true;
  };
  poll_loop.start(std::move(from));
  asio::co_spawn(io, print_events(), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  });
  run_until(io, [&] { return delivered_all && !poll_loop.running(); });
  signals.cancel();
  timer.cancel();
  output.cancel();
  io.run();
  if (failure) {
    std::fprintf(stderr, "storewatch: %s\n", failure->c_str());
    return 1;
  }
  return timed_out && settings.count ? 124 : 0;
}

/// The checkpoint FILE, locked for this run: a second tail or watch on the
/// same file, a folder that does not exist or a file that is not a
/// checkpoint is a runtime error naming it.
std::optional<checkpoint> open_checkpoint(const std::optional<std::filesystem::path>& file) {
  std::optional<checkpoint> saved;
  if (!file) return saved;
  try {
    saved.emplace(*file);
  } catch (const std::system_error& error) {
    throw runtime_failure(error.what());
  }
  return saved;
}

int run_watch(context& c, asio::io_context& io) {
  const std::filesystem::path dir = c.args.positionals[0];
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw runtime_failure("directory " + cli::terminal_text(dir.string()) + " does not exist");
  }
  const auto settings = parse_follow(c.args, 1.0);
  directory_options source_options;
  source_options.recursive = !c.args.has("flat");
  source_options.hidden = !c.args.has("no-hidden");
  source_options.symlinks = !c.args.has("no-symlinks");
  source_options.report_existing = c.args.has("existing");
  if (const auto globs = c.args.get("include")) source_options.include = cli::split_list(*globs, "include");
  if (const auto globs = c.args.get("exclude")) source_options.exclude = cli::split_list(*globs, "exclude");
  if (const auto settle = number_option(c.args, "settle")) source_options.settle = to_duration(*settle);
  std::optional<std::filesystem::path> checkpoint_file;
  if (const auto state = c.args.get("state")) {
    source_options.state_dir = *state;
    checkpoint_file = std::filesystem::path(*state) / "checkpoint";
  }
  std::optional<directory_source> source;
  try {
    source.emplace(io.get_executor(), dir, std::move(source_options));
  } catch (const std::system_error& error) {
    throw runtime_failure(error.what());
  }
  auto saved = open_checkpoint(checkpoint_file);
  return follow(io, *source, saved, "", settings);
}

// What listening needs of each kind of store before its journal is read.
void prepare_journal(const local_store& store) {
  detail::ensure_journal(store.root() / "journals" / store.user());  // listening makes the user known
}
#ifdef STOREWATCH_TOOL_S3
void prepare_journal(const s3::s3_store&) {}  // an S3 journal needs no folder
#endif

template <class Store>
int run_tail(context& c, asio::io_context& io, Store& store) {
  const auto settings = parse_follow(c.args, 0.2);
  std::optional<std::filesystem::path> checkpoint_file;
  if (const auto file = c.args.get("checkpoint")) checkpoint_file = *file;
  // Locked before anything else: a second tail on the file, or one in a
  // folder that does not exist, fails here. A file that exists is where
  // the tail resumes, even one that holds the journal's beginning: this
  // tail saved it there when it first started.
  auto saved = open_checkpoint(checkpoint_file);
  prepare_journal(store);
  auto source = store.events();
  const bool resuming = saved && saved->exists();
  std::string cursor = resuming ? saved->state().cursor : "";
  if (!c.args.has("from-start") && !resuming) {
    // Start at the journal's end as it is now: read past everything there.
    for (;;) {
      auto batch = poll_once(io, source, cursor, 4096);
      cursor = std::move(batch.next_cursor);
      if (batch.events.empty()) break;
    }
  } else {
    // One poll where the tail will start, so that a store that cannot
    // be read (refused credentials, a missing bucket) fails the command at
    // once instead of being retried for ever.
    poll_once(io, source, cursor, 1);
  }
  return follow(io, source, saved, resuming ? "" : cursor, settings);
}

/// What `share`, `unshare` and `delete` print: each version they acted on;
/// when there was none, a line on stderr and status 3 (as grep says "no
/// match"), since versions of other users or under another prefix are
/// never touched.
int print_matched(const context& c, const std::vector<versioned_path>& versions) {
  print_versions(versions);
  if (!versions.empty()) return 0;
  std::string selected = detail::quote(c.args.positionals.at(0));
  if (c.args.has("recursive")) selected += ", recursive";
  if (const auto since = c.args.get("since")) selected += ", since " + *since;
  if (const auto until = c.args.get("until")) selected += ", until " + *until;
  std::fprintf(stderr, "storewatch: %s: none of your versions matched %s\n", std::string(c.command->name).c_str(),
               cli::terminal_text(selected).c_str());
  return status_nothing_matched;
}

/// Runs the command `c` names on `store`, a local or an S3 store.
template <class Store>
int run_store_command(context& c, asio::io_context& io, Store& store) {
  const auto name = c.command->name;
  const auto& args = c.args;
  const auto last_error = [&store] { return store.last_error(); };
  using versions = std::vector<versioned_path>;
  if (name == "create") {
    detail::validate_path(args.positionals[0]);  // before reading what may be a large input
    auto bytes = read_input(args.positionals.size() > 1 ? args.positionals[1] : "-", parse_size_option(args));
    const auto version = complete<versioned_path>(
        io, [&](auto handler) { store.async_create_file(args.positionals[0], std::move(bytes), std::move(handler)); },
        last_error);
    print_versions({version});
  } else if (name == "share" || name == "unshare") {
    auto users = required_users(c, "with");
    auto which = parse_selection(c);
    return print_matched(c, complete<versions>(
        io,
        [&](auto handler) {
          if (name == "share") {
            store.async_share_files(std::move(which), std::move(users), std::move(handler));
          } else {
            store.async_unshare_files(std::move(which), std::move(users), std::move(handler));
          }
        },
        last_error));
  } else if (name == "delete") {
    auto which = parse_selection(c);
    return print_matched(c, complete<versions>(
        io, [&](auto handler) { store.async_delete_files(std::move(which), std::move(handler)); }, last_error));
  } else if (name == "publish") {
    auto users = required_users(c, "to");
    const auto ids = complete<std::vector<std::string>>(
        io,
        [&](auto handler) {
          store.async_publish_event(args.positionals[0], args.positionals.size() > 1 ? args.positionals[1] : "",
                                    std::move(users), std::move(handler));
        },
        last_error);
    for (const auto& id : ids) std::printf("%s\n", id.c_str());
  } else if (name == "ls") {
    print_versions(complete<versions>(
        io,
        [&](auto handler) {
          store.async_list_files(args.positionals.empty() ? "" : args.positionals[0], args.has("recursive"),
                                 std::move(handler));
        },
        last_error));
  } else if (name == "cat") {
    std::string why;
    auto version = versioned_path::try_parse(args.positionals[0], &why);
    if (!version) throw usage_error(why);
    const auto bytes = complete<std::string>(
        io, [&](auto handler) { store.async_read_file(std::move(*version), std::move(handler)); }, last_error);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  } else if (name == "tail") {
    return run_tail(c, io, store);
  }
  return 0;
}

struct journal_summary {
  std::uintmax_t bytes = 0;
  std::size_t writers = 0;
  std::size_t events = 0;
  std::optional<timestamp> oldest, newest;
};

/// Counts the events of `source` (a user's journal) from the start, GAP
/// events aside.
template <class Source>
void count_events(asio::io_context& io, Source& source, journal_summary& summary) {
  std::string cursor;
  for (;;) {
    auto batch = poll_once(io, source, cursor, 4096);
    for (const auto& e : batch.events) {
      if (e.name == event_name::gap) continue;
      ++summary.events;
      if (!summary.oldest || e.occurred_at < *summary.oldest) summary.oldest = e.occurred_at;
      if (!summary.newest || e.occurred_at > *summary.newest) summary.newest = e.occurred_at;
    }
    cursor = std::move(batch.next_cursor);
    if (batch.events.empty()) break;
  }
}

int print_stats(const std::map<std::string, journal_summary>& users) {
  std::printf("%-16s %8s %8s %12s  %-24s  %-24s\n", "user", "events", "writers", "bytes", "oldest", "newest");
  std::uintmax_t total_bytes = 0;
  std::size_t total_events = 0;
  for (const auto& [user, s] : users) {
    std::printf("%-16s %8zu %8zu %12ju  %-24s  %-24s\n", user.c_str(), s.events, s.writers, s.bytes,
                s.oldest ? cli::format_time(*s.oldest).c_str() : "-", s.newest ? cli::format_time(*s.newest).c_str() : "-");
    total_bytes += s.bytes;
    total_events += s.events;
  }
  std::printf("%-16s %8zu %8s %12ju\n", "total", total_events, "", total_bytes);
  return 0;
}

int run_local_stats(context& c, asio::io_context& io) {
  std::map<std::string, journal_summary> users;
  std::error_code ec;
  const auto journals = c.store.root() / "journals";
  for (std::filesystem::directory_iterator it(journals, ec), end; !ec && it != end; it.increment(ec)) {
    const auto user = it->path().filename().string();
    auto& summary = users[user];
    for (const auto& writer : detail::list_writers(it->path())) {
      ++summary.writers;
      for (const auto segment : detail::list_segments(it->path() / writer)) {
        summary.bytes += std::filesystem::file_size(it->path() / writer / detail::segment_name(segment), ec);
      }
    }
    journal_source source(io.get_executor(), it->path());
    count_events(io, source, summary);
  }
  return print_stats(users);
}

#ifdef STOREWATCH_TOOL_S3
/// The users with a journal (the folders under journals/), each with the
/// bytes of its journal objects and the writers named in their keys.
asio::awaitable<std::map<std::string, journal_summary>> s3_journal_inventory(s3::client& client) {
  std::map<std::string, journal_summary> users;
  s3::list_request folders;
  folders.prefix = "journals/";
  folders.delimiter = "/";
  for (;;) {
    auto page = co_await client.list(folders);
    for (const auto& folder : page.common_prefixes) {
      if (!folder.starts_with(folders.prefix) || !folder.ends_with('/')) continue;
      const auto user = folder.substr(folders.prefix.size(), folder.size() - folders.prefix.size() - 1);
      if (detail::user_problem(user).empty()) users[user];
    }
    if (!page.truncated) break;
    folders.continuation_token = std::move(page.next_continuation_token);
  }
  for (auto& [user, summary] : users) {
    const auto folder = s3::detail::journal_folder(user);
    s3::list_request objects;
    objects.prefix = folder;
    std::set<std::string> seen, writers;  // some servers repeat keys across pages
    for (;;) {
      auto page = co_await client.list(objects);
      for (const auto& object : page.objects) {
        if (!seen.insert(object.key).second) continue;
        summary.bytes += object.size;
        const auto entry = s3::detail::parse_journal_entry(std::string_view(object.key).substr(folder.size()));
        if (entry && entry->what == s3::detail::journal_entry::kind::record) writers.insert(entry->writer);
      }
      if (!page.truncated) break;
      objects.continuation_token = std::move(page.next_continuation_token);
    }
    summary.writers = writers.size();
  }
  co_return users;
}

int run_s3_stats(asio::io_context& io, const s3::config& config) {
  std::map<std::string, journal_summary> users;
  {
    s3::client client(io.get_executor(), config);
    users = run_coroutine(io, s3_journal_inventory(client));
  }
  for (auto& [user, summary] : users) {
    s3::s3_journal_source source(io.get_executor(), config, user);
    count_events(io, source, summary);
  }
  return print_stats(users);
}

/// The configuration of the s3:// store `c` names. Everything wrong in it
/// is a usage error naming the option or environment variable at fault;
/// no message shows a credential.
s3::config s3_config(const context& c) {
  try {
    s3::parse_store_url(c.store.text);
  } catch (const std::invalid_argument& error) {
    std::string why = error.what();
    if (why.starts_with("store URL: ")) why.erase(0, 11);
    throw usage_error(c.store.origin + ": " + why);
  }
  try {
    if (c.endpoint) {
      s3::parse_endpoint(*c.endpoint, "option '--endpoint'");
      // The variable config_from_environment reads first: --endpoint wins
      // over the environment, with the one parser.
      ::setenv("AWS_ENDPOINT_URL_S3", c.endpoint->c_str(), 1);
    }
    return s3::config_from_environment(c.store.text);
  } catch (const std::invalid_argument& error) {
    throw usage_error(error.what());
  }
}
#endif

int run_command(context& c) {
  const auto name = c.command->name;
  asio::io_context io;
  if (name == "watch") return run_watch(c, io);
  if (c.store.text.find("://") != std::string::npos && !c.store.is_s3()) {
    throw usage_error(c.store.origin + ": '" + c.store.text + "' is neither a folder nor s3://bucket[/prefix]");
  }
  if (c.endpoint && !c.store.is_s3()) {
    throw usage_error("option '--endpoint' is only for an s3:// store, and the store is the folder " + c.store.text);
  }
  if (name != "stats" && name != "init" && c.user.empty()) {
    throw usage_error("'" + std::string(name) + "' needs --user NAME (or STOREWATCH_USER)");
  }
  if (c.store.is_s3() && name == "init") {
    throw usage_error("'init' makes a folder store; an s3:// store is its bucket, made with your S3 tools (" +
                      c.store.text + ")");
  }
  if (c.store.is_s3()) {
#ifdef STOREWATCH_TOOL_S3
    const auto config = s3_config(c);
    if (name == "stats") return run_s3_stats(io, config);
    s3::s3_store store(io.get_executor(), config, c.user);
    return run_store_command(c, io, store);
#else
    throw usage_error(c.store.origin + ": '" + c.store.text +
                      "' is an S3 store, but this storewatch was built without S3 support "
                      "(build it with STOREWATCH_BUILD_S3=ON)");
#endif
  }
  if (name == "init") return run_init(c);
  check_local_store(c);
  if (name == "stats") return run_local_stats(c, io);
  local_store store(io.get_executor(), c.store.root(), c.user);
  return run_store_command(c, io, store);
}

bool is_usage_code(std::error_code code) {
  return code == errc::invalid_path || code == errc::invalid_user || code == errc::invalid_event_name ||
         code == errc::invalid_event;
}

}  // namespace

int main(int argc, char** argv) {
  context c;
  const auto from_environment = [&](const char* variable) {
    const char* value = std::getenv(variable);
    if (!value || !*value) return false;
    c.store = {value, variable};
    return true;
  };
  if (!from_environment("STOREWATCH_STORE")) from_environment("STOREWATCH_ROOT");
  const char* user_env = std::getenv("STOREWATCH_USER");
  c.user = user_env ? user_env : "";
  std::vector<std::string> rest;
  try {
    int i = 1;
    for (; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        print_usage(stdout);
        return 0;
      }
      if (arg == "--version") {
        std::printf("storewatch %s\n", STOREWATCH_VERSION_STRING);
        return 0;
      }
      // Global options: "--name value" or "--name=value".
      std::string option(arg), value;
      if (const auto equals = arg.find('='); arg.starts_with("--") && equals != std::string_view::npos) {
        option = std::string(arg.substr(0, equals));
        value = std::string(arg.substr(equals + 1));
      } else if (option == "--root" || option == "--store" || option == "--user" || option == "--endpoint") {
        if (i + 1 >= argc) throw usage_error("option '" + option + "' needs a value");
        value = argv[++i];
      }
      if (option == "--root" || option == "--store") {
        c.store = {value, "option '" + option + "'"};
      } else if (option == "--user") {
        c.user = value;
      } else if (option == "--endpoint") {
        c.endpoint = value;
      } else if (arg.starts_with("-")) {
        throw usage_error("unknown option '" + std::string(arg) + "' (see storewatch --help)");
      } else {
        break;
      }
    }
    if (i >= argc) throw usage_error("no command given (see storewatch --help)");
    const std::string_view name = argv[i];
    for (const auto& spec : commands()) {
      if (spec.name == name) c.command = &spec;
    }
    if (!c.command) throw usage_error("unknown command '" + std::string(name) + "' (see storewatch --help)");
    rest.assign(argv + i + 1, argv + argc);
    for (const auto& arg : rest) {
      if (arg == "--") break;
      if (arg == "--help" || arg == "-h") {
        print_command_usage(*c.command);
        return 0;
      }
    }
    c.args = cli::parse(*c.command, rest);
    if (!c.user.empty()) detail::validate_user(c.user);
    return run_command(c);
  } catch (const usage_error& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return 2;
  } catch (const store_failure& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return is_usage_code(error.code) ? 2 : 1;
  } catch (const std::system_error& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return is_usage_code(error.code()) ? 2 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return 1;
  }
}
