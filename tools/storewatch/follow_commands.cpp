// Following events as they happen: `tail` (a user's journal in a store)
// and `watch` (a directory tree, no store needed), printed as JSON lines or
// text until --count, --timeout, a signal or a closed output.
#include "commands.hpp"
#include "hint_option.hpp"
#include "output.hpp"
#include "store.hpp"
#include "sync.hpp"
#include "tail_start.hpp"

#include <storewatch/hints.hpp>
#include <storewatch/store/inventory.hpp>
#ifdef STOREWATCH_WITH_REDIS
#include <storewatch/redis/hints.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <unistd.h>

namespace storewatch::cli {
namespace {

constexpr std::size_t tail_checkpoint_every = 64;

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

/// The options `tail` and `watch` share.
struct follow_options {
  std::optional<std::string> names, prefix, format, count, timeout, interval;

  /// Adds them to `app`, with their own help for --names, --prefix and --interval.
  void add_to(CLI::App& app, const std::string& names_help, const std::string& prefix_help,
              const std::string& interval_help) {
    add_value(app, "names", names, names_help, "NAMES");
    add_value(app, "prefix", prefix, prefix_help, "P");
    add_value(app, "format", format, "json (one object per line) or text (default: text on a terminal)", "FORMAT");
    add_value(app, "count", count, "exit 0 after N events", "N");
    add_value(app, "timeout", timeout, "give up after SECONDS; exit 124 if --count events have not arrived", "SECONDS");
    add_value(app, "interval", interval, interval_help, "SECONDS");
  }

  /// What they say; throws usage_error naming the option at fault.
  follow_settings settings(double default_interval) const {
    follow_settings settings;
    const auto how = format.value_or(::isatty(STDOUT_FILENO) ? "text" : "json");
    if (how != "json" && how != "text") throw usage_error("option '--format': '" + how + "' is not json or text");
    settings.json = how == "json";
    if (count) {
      const auto n = parse_decimal_option(*count, "count");
      if (n != static_cast<double>(static_cast<std::uint64_t>(n))) {
        throw usage_error("option '--count': '" + *count + "' is not a whole number");
      }
      settings.count = static_cast<std::uint64_t>(n);
    }
    if (timeout) settings.timeout = to_duration(parse_decimal_option(*timeout, "timeout"));
    settings.interval = to_duration(interval ? parse_decimal_option(*interval, "interval") : default_interval);
    if (settings.interval <= std::chrono::milliseconds(0)) {
      throw usage_error("option '--interval': '" + *interval +
                        "' is too short (the poll interval is at least 0.001 seconds)");
    }
    if (names) settings.filter.names = split_list(*names, "names");
    settings.filter.prefix = prefix.value_or("");
    return settings;
  }
};

struct tail_options {
  bool from_start = false;
  std::optional<std::string> checkpoint;
  std::optional<std::string> hints;  // --hints redis://...
  std::optional<std::string> hinted_interval;  // --hinted-interval SECONDS
  follow_options follow;
};

struct watch_options {
  std::optional<std::string> state, include, exclude, settle;
  bool no_hidden = false, no_symlinks = false, flat = false, existing = false;
  follow_options follow;
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
           const follow_settings& settings, const std::function<void()>& on_stopped = {}) {
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
  poll_options.on_error = [](std::error_code, std::string_view message) { report_problem(message); };
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
  if (on_stopped) on_stopped();  // e.g. closes a hint connection, so that io.run() below returns
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

/// The FILE or FOLDER of option `option`, when given; an empty name is a
/// usage error (a checkpoint would be "", locked as ".lock" in the current
/// folder; a state folder "" is none at all, so nothing would be kept).
std::optional<std::filesystem::path> path_option(const std::optional<std::string>& text, std::string_view option) {
  if (!text) return std::nullopt;
  if (text->empty()) throw usage_error("option '--" + std::string(option) + "' has an empty name");
  return std::filesystem::path(*text);
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

int run_watch(invocation& c, const watch_options& o) {
  asio::io_context io;
  const std::filesystem::path dir = c.positionals[0];
  std::error_code ec;
  const auto status = std::filesystem::status(dir, ec);
  if (!std::filesystem::is_directory(status)) {
    const auto name = terminal_text(dir.string());
    throw runtime_failure(std::filesystem::exists(status) ? name + " is not a directory"
                                                          : "directory " + name + " does not exist");
  }
  const auto settings = o.follow.settings(1.0);
  directory_options source_options;
  source_options.recursive = !o.flat;
  source_options.hidden = !o.no_hidden;
  source_options.symlinks = !o.no_symlinks;
  source_options.report_existing = o.existing;
  if (o.include) source_options.include = split_list(*o.include, "include");
  if (o.exclude) source_options.exclude = split_list(*o.exclude, "exclude");
  if (o.settle) source_options.settle = to_duration(parse_decimal_option(*o.settle, "settle"));
  std::optional<std::filesystem::path> checkpoint_file;
  if (const auto state = path_option(o.state, "state")) {
    source_options.state_dir = *state;
    checkpoint_file = *state / "checkpoint";
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
  ensure_journal(store);  // listening makes the user known
}
#ifdef STOREWATCH_WITH_S3
void prepare_journal(const s3::s3_store&) {}  // an S3 journal needs no folder
#endif

// --hinted-interval: seconds, 0 or more, and only with --hints; empty
// when not given (the library's default then).
std::optional<std::chrono::milliseconds> hinted_interval(const tail_options& o) {
  if (!o.hinted_interval) return std::nullopt;
  const auto& text = *o.hinted_interval;
  if (text.starts_with('-')) {
    // A negative number is refused as such; anything else as not a number.
    try {
      parse_decimal_option(std::string_view(text).substr(1), "hinted-interval");
    } catch (const usage_error&) {
      parse_decimal_option(text, "hinted-interval");  // throws, naming the whole value
    }
    throw usage_error("option '--hinted-interval': '" + text + "' is negative (0 polls at --interval always)");
  }
  const auto interval = to_duration(parse_decimal_option(text, "hinted-interval"));
  if (!o.hints) throw usage_error("option '--hinted-interval': needs --hints (it is the interval while hints are live)");
  return interval;
}

// The journal source of `store`, woken by the hints `hints` names when
// given (polling every `hinted` while they are live, when given);
// `close_hints` is then set to what closes the hint connection (the source
// shares the subscriber, so dropping ours would not). Only an S3 store
// takes hints: a folder store's listeners are woken by inotify.
template <class Store>
auto tail_source(asio::io_context&, Store& store, const std::optional<std::string>& hints,
                 std::optional<std::chrono::milliseconds>, std::function<void()>&) {
  if (hints) refuse_hints_on_folder();
  return store.events();
}
#ifdef STOREWATCH_WITH_S3
auto tail_source(asio::io_context& io, s3::s3_store& store, const std::optional<std::string>& hints,
                 std::optional<std::chrono::milliseconds> hinted, std::function<void()>& close_hints) {
  if (!hints) return store.events();
#ifdef STOREWATCH_WITH_REDIS
  auto subscriber = std::make_shared<redis::hint_subscriber>(io.get_executor(), hints_url(*hints));
  close_hints = [subscriber] { subscriber->close(); };
  s3::s3_journal_options options;
  options.hints = std::move(subscriber);
  if (hinted) options.hinted_poll_interval = *hinted;
  return store.events(std::move(options));
#else
  (void)io;
  (void)hinted;
  (void)close_hints;
  refuse_hints_without_redis();
#endif
}
#endif

template <class Store>
int run_tail(const tail_options& o, asio::io_context& io, Store& store) {
  const auto settings = o.follow.settings(default_tail_interval(store));
  const auto hinted = hinted_interval(o);
  const auto checkpoint_file = path_option(o.checkpoint, "checkpoint");
  // Locked before anything else: a second tail on the file, or one in a
  // folder that does not exist, fails here. A file that exists is where
  // the tail resumes, even one that holds the journal's beginning: this
  // tail saved it there when it first started.
  auto saved = open_checkpoint(checkpoint_file);
  prepare_journal(store);
  std::function<void()> close_hints;
  auto source = tail_source(io, store, o.hints, hinted, close_hints);
  const bool resuming = saved && saved->exists();
  std::string cursor = resuming ? saved->state().cursor : "";
  if (!o.from_start && !resuming) {
    // Start at the journal's end as it is now.
    cursor = end_cursor(io, source);
  } else {
    // One poll where the tail will start, so that a store that cannot
    // be read (refused credentials, a missing bucket) fails the command at
    // once instead of being retried for ever.
    poll_once(io, source, cursor, 1);
  }
  return follow(io, source, saved, resuming ? "" : cursor, settings, [&close_hints] {
    if (close_hints) close_hints();
  });
}

}  // namespace

void add_tail_command(command_line& line) {
  auto t = std::make_shared<tail_options>();
  auto& tail = line.add({"tail", "", 0, 0, "print your events as they happen",
                         "Without --from-start or a --checkpoint file that exists, the tail first reads to the\n"
                         "journal's end and prints only what comes after; a new --checkpoint file records that\n"
                         "position before anything is printed. S3 has no change notifications: each\n"
                         "--interval is one LIST request while nothing is new, and starting at the end\n"
                         "lists the journal without reading it.\n",
                         [t](invocation& c) {
                           asio::io_context io;
                           return with_store(c, io, false, [&](auto& store) { return run_tail(*t, io, store); });
                         }});
  add_flag(tail, "from-start", t->from_start, "start at the beginning of your journal (default: at its end)");
  add_value(tail, "checkpoint", t->checkpoint, "resume after the last event printed, and save progress to FILE",
            "FILE");
  add_value(tail, "hints", t->hints,
            std::string("on an s3:// store, also poll as soon as a writer's hint arrives through Redis pub/sub at "
                        "URL ") + hints_url_help,
            "URL");
  add_value(tail, "hinted-interval", t->hinted_interval,
            "with --hints, poll every SECONDS while the hints are live (default 60; --interval if longer; 0: "
            "--interval always)",
            "SECONDS");
  t->follow.add_to(tail, "only these event names: CREATE,SHARE,...", "only events whose data starts with P",
                   "poll interval in SECONDS, more than 0 (default 5 on S3, 0.2 on a folder store)");
}

void add_watch_command(command_line& line) {
  auto w = std::make_shared<watch_options>();
  auto& watch = line.add({"watch", "DIR", 1, 1,
                          "print the changes in a directory tree as they happen (no store needed)", "",
                          [w](invocation& c) { return run_watch(c, *w); }});
  add_value(watch, "state", w->state,
            "keep the watch's journal, snapshot and checkpoint in FOLDER: a restarted watch prints what changed while "
            "it was down, and nothing twice",
            "FOLDER");
  add_value(watch, "include", w->include,
            "only files matching these globs: G1[,G2...] (a glob with '/' matches the relative path)", "GLOBS");
  add_value(watch, "exclude", w->exclude, "leave out files and folders matching these globs", "GLOBS");
  add_flag(watch, "no-hidden", w->no_hidden, "leave out names starting with '.'");
  add_flag(watch, "no-symlinks", w->no_symlinks, "leave out symbolic links (they are never followed anyway)");
  add_flag(watch, "flat", w->flat, "only DIR's own entries, not the folders below it");
  add_flag(watch, "existing", w->existing, "on the first run, print what is already there as CREATE");
  add_value(watch, "settle", w->settle, "SECONDS a folder must be quiet before it is rescanned (default 0.05)",
            "SECONDS");
  w->follow.add_to(watch, "only these event names: CREATE,MODIFY,DELETE,RENAME", "only paths starting with P",
                   "poll interval in SECONDS, the safety net under inotify, more than 0 (default 1)");
}

}  // namespace storewatch::cli
