// storewatch: act on a store and follow its events from a shell.
//
// Exit status: 0 success, 1 runtime error (one line on stderr naming the path
// or user), 2 usage error (naming the argument), 124 `tail --timeout` expired
// before `--count` events arrived. Nothing goes to stdout on error.
#include "cli.hpp"
#include "time_text.hpp"

#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using namespace storewatch;
using cli::runtime_failure;
using cli::usage_error;

constexpr std::string_view default_root = "storewatch-demo";
constexpr std::size_t tail_checkpoint_every = 64;

const std::vector<cli::option_spec> selection_options{
    {"recursive", false, "every path under PREFIX, not only the file or one folder's direct children"},
    {"since", true, "only versions created at or after T (epoch ms or ISO 8601)"},
    {"until", true, "only versions created at or before T"},
};

std::vector<cli::option_spec> with_selection(std::vector<cli::option_spec> options) {
  options.insert(options.end(), selection_options.begin(), selection_options.end());
  return options;
}

const std::vector<cli::command_spec>& commands() {
  static const std::vector<cli::command_spec> table{
      {"create", "PATH [FILE|-]", 1, 2, {}, "store FILE (or stdin) as a new version of PATH; prints the version"},
      {"share", "PREFIX", 1, 1, with_selection({{"with", true, "users to share with: U1[,U2...]"}}),
       "share your versions under PREFIX; prints each version"},
      {"unshare", "PREFIX", 1, 1, with_selection({{"with", true, "users to stop sharing with: U1[,U2...]"}}),
       "stop sharing your versions under PREFIX; prints each version"},
      {"delete", "PREFIX", 1, 1, with_selection({}), "delete your versions under PREFIX; prints each version"},
      {"publish", "NAME [DATA]", 1, 2, {{"to", true, "users to notify: U1[,U2...]"}},
       "send an application event NAME with DATA to users"},
      {"ls", "[PREFIX]", 0, 1, {{"recursive", false, "list everything under PREFIX"}},
       "list the versions you can read"},
      {"cat", "VERSIONED_PATH", 1, 1, {}, "print the bytes of a version you can read"},
      {"tail", "", 0, 0,
       {{"from-start", false, "start at the beginning of your journal (default: at its end)"},
        {"checkpoint", true, "resume after the last event printed, and save progress to FILE"},
        {"names", true, "only these event names: CREATE,SHARE,..."},
        {"prefix", true, "only events whose data starts with P"},
        {"format", true, "json (one object per line) or text (default: text on a terminal)"},
        {"count", true, "exit 0 after N events"},
        {"timeout", true, "give up after SECONDS; exit 124 if --count events have not arrived"},
        {"interval", true, "poll interval in SECONDS (default 0.2)"}},
       "print your events as they happen"},
      {"stats", "", 0, 0, {}, "journal size, writers, oldest/newest event and event count per user"},
      {"watch", "DIR", 1, 1,
       {{"state", true, "keep the watch's journal, snapshot and checkpoint in FOLDER: a restarted watch "
                        "prints what changed while it was down, and nothing twice"},
        {"include", true, "only files matching these globs: G1[,G2...] (a glob with '/' matches the relative path)"},
        {"exclude", true, "leave out files and folders matching these globs"},
        {"no-hidden", false, "leave out names starting with '.'"},
        {"no-symlinks", false, "leave out symbolic links (they are never followed anyway)"},
        {"flat", false, "only DIR's own entries, not the folders below it"},
        {"existing", false, "on the first run, print what is already there as CREATE"},
        {"settle", true, "SECONDS a folder must be quiet before it is rescanned (default 0.05)"},
        {"names", true, "only these event names: CREATE,MODIFY,DELETE,RENAME"},
        {"prefix", true, "only paths starting with P"},
        {"format", true, "json (one object per line) or text (default: text on a terminal)"},
        {"count", true, "exit 0 after N events"},
        {"timeout", true, "give up after SECONDS; exit 124 if --count events have not arrived"},
        {"interval", true, "poll interval in SECONDS, the safety net under inotify (default 1)"}},
       "print the changes in a directory tree as they happen (no store needed)"},
  };
  return table;
}

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: storewatch [--root DIR] [--user NAME] COMMAND [ARGS]\n"
               "       storewatch COMMAND --help | --help | --version\n\n"
               "  --root DIR    the store (default: $STOREWATCH_ROOT, else ./%s)\n"
               "  --user NAME   who acts (default: $STOREWATCH_USER)\n\ncommands:\n",
               std::string(default_root).c_str());
  for (const auto& c : commands()) {
    std::fprintf(out, "  %-8s %-16s %s\n", std::string(c.name).c_str(), std::string(c.positionals).c_str(),
                 std::string(c.summary).c_str());
  }
}

void print_command_usage(const cli::command_spec& c) {
  std::printf("usage: storewatch [--root DIR] [--user NAME] %s %s%s\n\n%s\n", std::string(c.name).c_str(),
              std::string(c.positionals).c_str(), c.options.empty() ? "" : " [OPTIONS]",
              std::string(c.summary).c_str());
  for (const auto& o : c.options) {
    std::printf("  --%-12s %s\n", (std::string(o.name) + (o.takes_value ? " X" : "")).c_str(),
                std::string(o.help).c_str());
  }
}

struct context {
  std::filesystem::path root;
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
  return which;
}

std::vector<std::string> required_users(const context& c, std::string_view option) {
  const auto text = c.args.get(option);
  if (!text) throw usage_error("'" + std::string(c.command->name) + "' needs --" + std::string(option) + " U1[,U2...]");
  return cli::split_list(*text, option);
}

void require_root(const context& c) {
  std::error_code ec;
  if (!std::filesystem::is_directory(c.root, ec)) {
    throw runtime_failure("store root " + c.root.string() + " does not exist (use --root or STOREWATCH_ROOT)");
  }
}

void require_known_user(const context& c) {
  require_root(c);
  std::error_code ec;
  for (const char* part : {"journals", "versions", "shares"}) {
    if (std::filesystem::exists(c.root / part / c.user, ec)) return;
  }
  throw runtime_failure("user " + c.user + " is not known to the store at " + c.root.string() +
                        " (no journal, files or shares)");
}

std::string read_input(const std::string& name) {
  if (name == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  auto bytes = detail::read_whole_file(name, errc::store_io_failed, "input file");
  if (!bytes) throw runtime_failure("input file " + name + " does not exist");
  return std::move(*bytes);
}

void print_versions(const std::vector<versioned_path>& versions) {
  for (const auto& v : versions) std::printf("%s\n", v.to_string().c_str());
}

/// Writes all of `line` to standard output, unbuffered. A tail's SIGTERM
/// interrupts a write blocked on a full pipe (Asio installs its handler
/// without SA_RESTART), and stdio drops its buffer on that EINTR: the event
/// would count as printed but never reach the reader. This loop retries
/// instead. If stdout fails for good, the process ends at once without
/// saving its checkpoint, so the next run prints the event again, as after
/// a SIGKILL.
void print_line(std::string line) {
  line += '\n';
  std::string_view rest = line;
  while (!rest.empty()) {
    const auto written = ::write(STDOUT_FILENO, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) {
      std::fprintf(stderr, "storewatch: writing an event to standard output: %s\n", std::strerror(errno));
      std::_Exit(1);
    }
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
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

/// One readable line: time, name and actor aligned, then the data.
std::string event_text(const event& e) {
  std::string name = e.name, actor = e.actor;
  name.resize(std::max<std::size_t>(name.size(), 8), ' ');
  actor.resize(std::max<std::size_t>(actor.size(), 10), ' ');
  std::string data = e.data;
  if (e.name == event_name::rename && e.attributes.is_object() && e.attributes.contains("from") &&
      e.attributes["from"].is_string()) {
    data = e.attributes["from"].get<std::string>() + " -> " + data;
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

/// Seconds as milliseconds; anything beyond a century counts as a century
/// (and `inf` too), so no conversion overflows.
std::chrono::milliseconds to_duration(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(seconds, 3.2e9) * 1000));
}

/// Option `--NAME` as a non-negative number, if given.
std::optional<double> number_option(const cli::parsed_args& args, std::string_view name) {
  const auto text = args.get(name);
  if (!text) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text->c_str(), &end);
  if (text->empty() || *end != '\0' || !(value >= 0)) {
    throw usage_error("option '--" + std::string(name) + "': '" + *text + "' is not a non-negative number");
  }
  return value;
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
  settings.interval =
      std::max(to_duration(number_option(args, "interval").value_or(default_interval)), std::chrono::milliseconds(1));
  if (const auto names = args.get("names")) settings.filter.names = cli::split_list(*names, "names");
  settings.filter.prefix = args.get("prefix").value_or("");
  return settings;
}

/// Prints `source`'s events until --count, --timeout, SIGINT or SIGTERM;
/// returns the exit status.
template <class Source>
int follow(asio::io_context& io, Source& source, listener_options options, const follow_settings& settings) {
  options.poller.poll_interval = settings.interval;
  options.on_error = [](std::error_code, std::string_view message) {
    std::fprintf(stderr, "storewatch: %.*s\n", static_cast<int>(message.size()), message.data());
  };
  std::optional<event_listener> listener;
  try {
    listener.emplace(io.get_executor(), source, options);
  } catch (const std::system_error& error) {
    throw runtime_failure(error.what());
  }
  std::uint64_t printed = 0;
  listener->add_event_listener(
      [&](const event& e) {
        print_line(settings.json ? event_json(e) : event_text(e));
        if (settings.count && ++printed == *settings.count) listener->stop();
      },
      settings.filter);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) listener->stop();
  });
  bool timed_out = false;
  asio::steady_timer timer(io);
  if (settings.timeout) {
    timer.expires_after(*settings.timeout);
    timer.async_wait([&](std::error_code ec) {
      if (ec) return;
      timed_out = true;
      listener->stop();
    });
  }
  if (settings.count && *settings.count == 0) return 0;
  listener->start();
  while (listener->running()) io.run_one();
  signals.cancel();
  timer.cancel();
  io.run();
  return timed_out && settings.count ? 124 : 0;
}

int run_tail(context& c, local_store& store, asio::io_context& io) {
  require_root(c);
  const auto settings = parse_follow(c.args, 0.2);
  detail::ensure_journal(c.root / "journals" / c.user);  // listening makes the user known
  auto source = store.events();
  listener_options options;
  options.checkpoint_every = tail_checkpoint_every;
  if (const auto file = c.args.get("checkpoint")) options.checkpoint = *file;
  if (!c.args.has("from-start")) {
    // Start at the journal's end as it is now: read past everything there.
    std::string cursor;
    for (;;) {
      auto batch = source.poll(cursor, 4096);
      cursor = std::move(batch.next_cursor);
      if (batch.events.empty()) break;
    }
    options.start_cursor = cursor;
  }
  return follow(io, source, std::move(options), settings);
}

int run_watch(context& c, asio::io_context& io) {
  const std::filesystem::path dir = c.args.positionals[0];
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw runtime_failure("directory " + dir.string() + " does not exist");
  const auto settings = parse_follow(c.args, 1.0);
  directory_options source_options;
  source_options.recursive = !c.args.has("flat");
  source_options.hidden = !c.args.has("no-hidden");
  source_options.symlinks = !c.args.has("no-symlinks");
  source_options.report_existing = c.args.has("existing");
  if (const auto globs = c.args.get("include")) source_options.include = cli::split_list(*globs, "include");
  if (const auto globs = c.args.get("exclude")) source_options.exclude = cli::split_list(*globs, "exclude");
  if (const auto settle = number_option(c.args, "settle")) source_options.settle = to_duration(*settle);
  listener_options options;
  options.checkpoint_every = tail_checkpoint_every;
  if (const auto state = c.args.get("state")) {
    source_options.state_dir = *state;
    options.checkpoint = std::filesystem::path(*state) / "checkpoint";
  }
  std::optional<directory_source> source;
  try {
    source.emplace(io.get_executor(), dir, std::move(source_options));
  } catch (const std::system_error& error) {
    throw runtime_failure(error.what());
  }
  return follow(io, *source, std::move(options), settings);
}

struct journal_summary {
  std::uintmax_t bytes = 0;
  std::size_t writers = 0;
  std::size_t events = 0;
  std::optional<timestamp> oldest, newest;
};

int run_stats(context& c, asio::io_context& io) {
  require_root(c);
  std::map<std::string, journal_summary> users;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(c.root / "journals", ec), end; !ec && it != end; it.increment(ec)) {
    const auto user = it->path().filename().string();
    auto& summary = users[user];
    for (const auto& writer : detail::list_writers(it->path())) {
      ++summary.writers;
      for (const auto segment : detail::list_segments(it->path() / writer)) {
        summary.bytes += std::filesystem::file_size(it->path() / writer / detail::segment_name(segment), ec);
      }
    }
    journal_source source(io.get_executor(), it->path());
    std::string cursor;
    for (;;) {
      auto batch = source.poll(cursor, 4096);
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

int run_command(context& c) {
  const auto name = c.command->name;
  asio::io_context io;
  if (name == "stats") return run_stats(c, io);
  if (name == "watch") return run_watch(c, io);
  if (c.user.empty()) throw usage_error("'" + std::string(name) + "' needs --user NAME (or STOREWATCH_USER)");
  if (name == "create" || name == "share" || name == "unshare" || name == "delete" || name == "publish") {
    std::error_code ec;
    if (!std::filesystem::is_directory(c.root.has_parent_path() ? c.root.parent_path() : ".", ec)) {
      throw runtime_failure("store root " + c.root.string() + ": its parent folder does not exist");
    }
  }
  local_store store(io.get_executor(), c.root, c.user);
  const auto& args = c.args;
  if (name == "create") {
    const auto bytes = read_input(args.positionals.size() > 1 ? args.positionals[1] : "-");
    std::printf("%s\n", store.create_file(args.positionals[0], bytes).to_string().c_str());
  } else if (name == "share" || name == "unshare") {
    const auto users = required_users(c, "with");
    print_versions(store.share_files(parse_selection(c), users, name == "share"));
  } else if (name == "delete") {
    print_versions(store.delete_files(parse_selection(c)));
  } else if (name == "publish") {
    const auto users = required_users(c, "to");
    for (const auto& id : store.publish_event(args.positionals[0], args.positionals.size() > 1 ? args.positionals[1] : "", users)) {
      std::printf("%s\n", id.c_str());
    }
  } else if (name == "ls") {
    require_known_user(c);
    print_versions(store.list_files(args.positionals.empty() ? "" : args.positionals[0], args.has("recursive")));
  } else if (name == "cat") {
    require_known_user(c);
    std::string why;
    const auto version = versioned_path::try_parse(args.positionals[0], &why);
    if (!version) throw usage_error(why);
    const auto bytes = store.read_file(*version);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  } else if (name == "tail") {
    return run_tail(c, store, io);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  context c;
  const char* root_env = std::getenv("STOREWATCH_ROOT");
  const char* user_env = std::getenv("STOREWATCH_USER");
  c.root = root_env && *root_env ? root_env : std::string(default_root);
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
      if (arg == "--root" || arg == "--user") {
        if (i + 1 >= argc) throw usage_error("option '" + std::string(arg) + "' needs a value");
        if (arg == "--root") {
          c.root = argv[++i];
        } else {
          c.user = argv[++i];
        }
        continue;
      }
      if (arg.starts_with("--root=")) {
        c.root = std::string(arg.substr(7));
        continue;
      }
      if (arg.starts_with("--user=")) {
        c.user = std::string(arg.substr(7));
        continue;
      }
      if (arg.starts_with("-")) throw usage_error("unknown option '" + std::string(arg) + "' (see storewatch --help)");
      break;
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
  } catch (const std::system_error& error) {
    const auto code = error.code();
    const bool usage = code == errc::invalid_path || code == errc::invalid_user || code == errc::invalid_event_name ||
                       code == errc::invalid_event;
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return usage ? 2 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "storewatch: %s\n", error.what());
    return 1;
  }
}
