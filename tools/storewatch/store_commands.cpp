// The store operations: init, create, share, unshare, delete, publish, ls
// and cat. Each is written once, over either kind of store (`with_store`),
// and drives the store's asynchronous operation to its end (`complete`).
#include "commands.hpp"
#include "hint_option.hpp"
#include "output.hpp"
#include "store.hpp"
#include "sync.hpp"

#include <storewatch/text.hpp>
#ifdef STOREWATCH_WITH_REDIS
#include <storewatch/redis/hints.hpp>
#endif

#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace storewatch::cli {
namespace {

constexpr std::uint64_t default_max_size = 64ull << 20;
/// `share`, `unshare` or `delete` matched none of the user's versions.
constexpr int status_nothing_matched = 3;

/// `init`: makes the store's root folder (and its parents) and its
/// journals folder; a store that exists already is left as it is.
int run_init(const invocation& c) {
  check_location(c, false);
  if (is_s3(c)) {
    throw usage_error("'init' makes a folder store; an s3:// store is its bucket, made with your S3 tools (" +
                      c.store.text + ")");
  }
  const std::filesystem::path root = c.store.text;
  std::error_code ec;
  if (std::filesystem::exists(root, ec) && !std::filesystem::is_directory(root, ec)) {
    throw runtime_failure("store root " + c.store.text + " (from " + c.store.origin + ") is not a folder");
  }
  const bool existed = std::filesystem::is_directory(root / "journals", ec);
  std::filesystem::create_directories(root / "journals", ec);
  if (ec) throw runtime_failure("cannot create the store at " + c.store.text + ": " + ec.message());
  std::printf(existed ? "the store at %s exists already\n" : "created a store at %s\n",
              terminal_text(c.store.text).c_str());
  return 0;
}

/// `--max-size`: bytes, or KiB, MiB or GiB with a K, M or G suffix.
std::uint64_t parse_size_option(const std::optional<std::string>& text) {
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
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  const bool plain = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
  if (!plain || ec != std::errc{} || end != digits.data() + digits.size() || value > UINT64_MAX / unit) {
    throw usage_error("option '--max-size': '" + *text + "' is not a size (bytes, or a number with K, M or G)");
  }
  return value * unit;
}

/// "64 MiB", "1000 bytes": a size for messages.
std::string size_text(std::uint64_t bytes) {
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

/// An input file's descriptor, closed at the end of its scope.
struct input_file {
  int fd = -1;
  input_file() = default;
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;
  ~input_file() {
    if (fd >= 0) ::close(fd);
  }
};

/// Reads the input file `name` ("-": stdin) a block at a time, holding at
/// most `max_size` bytes: a larger input (or an endless one, /dev/zero) is
/// an error as soon as it passes the limit.
std::string read_input(const std::string& name, std::uint64_t max_size) {
  const bool standard_input = name == "-";
  const std::string what = standard_input ? std::string("standard input") : "input file " + name;
  input_file opened;
  if (!standard_input) {
    opened.fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (opened.fd < 0) {
      if (errno == ENOENT) throw runtime_failure("input file " + name + " does not exist");
      throw runtime_failure(what + ": " + std::strerror(errno));
    }
  }
  const int fd = standard_input ? STDIN_FILENO : opened.fd;
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

/// The options that select versions: share, unshare and delete.
struct selection_options {
  bool recursive = false;
  std::optional<std::string> since, until;

  void add_to(CLI::App& app) {
    add_flag(app, "recursive", recursive, "every path under PREFIX, not only the file or one folder's direct children");
    add_value(app, "since", since, "only versions created at or after T (epoch ms or ISO 8601)", "T");
    add_value(app, "until", until, "only versions created at or before T", "T");
  }

  /// The selection of `prefix`; throws usage_error for a time that is
  /// none, or a --since after the --until.
  selection of(const std::string& prefix) const {
    selection which{prefix, recursive};
    if (since) which.since = time_option(*since, "since");
    if (until) which.until = time_option(*until, "until");
    if (which.since && which.until && *which.since > *which.until) {
      throw usage_error("option '--since' (" + *since + ") is after option '--until' (" + *until +
                        "): nothing could match");
    }
    return which;
  }

  /// How the selection reads in a message.
  std::string describe(const std::string& prefix) const {
    std::string selected = storewatch::quote(prefix);
    if (recursive) selected += ", recursive";
    if (since) selected += ", since " + *since;
    if (until) selected += ", until " + *until;
    return selected;
  }

  static timestamp time_option(const std::string& text, std::string_view name) {
    if (auto t = parse_time(text)) return *t;
    throw usage_error("option '--" + std::string(name) + "': '" + text +
                      "' is not a time (epoch milliseconds or ISO 8601 such as 2025-10-22T12:15:41Z)");
  }
};

/// The users of --with or --to: one or more, comma-separated.
std::vector<std::string> required_users(const invocation& c, const std::optional<std::string>& text,
                                        std::string_view option) {
  if (!text) throw usage_error("'" + c.command->name + "' needs --" + std::string(option) + " U1[,U2...]");
  return split_list(*text, option);
}

/// What `share`, `unshare` and `delete` print: each version they acted on;
/// when there was none, a line on stderr and status 3 (as grep says "no
/// match"), since versions of other users or under another prefix are
/// never touched.
int print_matched(const invocation& c, const selection_options& options, const std::vector<versioned_path>& versions) {
  print_versions(versions);
  if (!versions.empty()) return 0;
  std::fprintf(stderr, "storewatch: %s: none of your versions matched %s\n", c.command->name.c_str(),
               terminal_text(options.describe(c.positionals.at(0))).c_str());
  return status_nothing_matched;
}

using versions = std::vector<versioned_path>;

/// How long a store command given --hints waits at most, after its
/// operation, for the Redis server to take its hints (a first connection
/// still being made, a server that does not answer).
constexpr std::chrono::seconds hints_flush_bound{5};

#ifdef STOREWATCH_WITH_REDIS
/// Waits until the Redis server at `where` has taken every hint `publisher`
/// was given (or lost them: its error handler said so), so that the tool
/// does not exit with them; never fails the command.
void flush_hints(asio::io_context& io, redis::hint_publisher& publisher, const redis::url& where) {
  std::optional<std::error_code> flushed;
  publisher.async_flush(hints_flush_bound, [&flushed](std::error_code ec) { flushed = ec; });
  run_until(io, [&] { return flushed.has_value(); });
  if (*flushed == std::errc::timed_out) {
    std::fprintf(stderr,
                 "storewatch: the Redis server at %s did not take the hints within %lld s; the recipients' "
                 "listeners find the change at their next poll\n",
                 terminal_text(where.text()).c_str(), static_cast<long long>(hints_flush_bound.count()));
  }
}
#endif

/// Runs `operation(store, handler)` on the store `c` names, to its end.
/// The operation reads its arguments itself, after the store's checks, so
/// that a store that is not there is the error even when they are wrong.
/// With `hints` (--hints URL, an s3:// store only), the store publishes a
/// hint per recipient through that Redis server, flushed before this
/// returns.
template <class Result, class Operation>
Result on_store(const invocation& c, bool known_user, Operation operation,
                const std::optional<std::string>& hints = std::nullopt) {
  asio::io_context io;
  std::optional<Result> result;
  const auto run = [&](auto& store) {
    result.emplace(complete<Result>(
        io, [&](auto handler) { operation(store, std::move(handler)); }, [&store] { return store.last_error(); }));
    return 0;
  };
  if (!hints) {
    with_store(c, io, known_user, run);
    return std::move(*result);
  }
  check_location(c, true);
  check_s3_support(c);
  if (!is_s3(c)) refuse_hints_on_folder();
#if defined(STOREWATCH_WITH_S3) && defined(STOREWATCH_WITH_REDIS)
  const auto where = hints_url(*hints);
  redis::hint_options hint_options;
  hint_options.outage_note = hints_lost_note;
  auto publisher = std::make_shared<redis::hint_publisher>(io.get_executor(), where, std::move(hint_options));
  {
    s3::s3_store_options options;
    options.hints = publisher;
    s3::s3_store store(io.get_executor(), with_usage_errors(c, [&] {
                         return s3_store_config(c.store.text, store_options(c));
                       }),
                       c.user, std::move(options));
    run(store);
  }
  flush_hints(io, *publisher, where);
  return std::move(*result);
#else
  refuse_hints_without_redis();
#endif
}

/// Adds --hints URL to a store command that writes journal records.
void add_hints_option(CLI::App& app, std::optional<std::string>& into) {
  add_value(app, "hints", into,
            std::string("on an s3:// store, wake the recipients' listeners through Redis pub/sub at URL ") +
                hints_url_help + "; the command waits (up to " + std::to_string(hints_flush_bound.count()) +
                " s) until the server has the hints",
            "URL");
}

void add_sharing(command_line& line, const std::string& name, const std::string& with_help, const std::string& summary,
                 bool share) {
  struct options {
    std::optional<std::string> with, hints;
    selection_options selection;
  };
  auto o = std::make_shared<options>();
  const auto run = [o, share](invocation& c) {
    const auto matched = on_store<versions>(c, false, [&](auto& store, auto handler) {
      auto users = required_users(c, o->with, "with");
      auto which = o->selection.of(c.positionals[0]);
      if (share) {
        store.async_share_files(std::move(which), std::move(users), std::move(handler));
      } else {
        store.async_unshare_files(std::move(which), std::move(users), std::move(handler));
      }
    }, o->hints);
    return print_matched(c, o->selection, matched);
  };
  auto& app = line.add({name, "PREFIX", 1, 1, summary, "", run});
  add_value(app, "with", o->with, with_help, "USERS");
  o->selection.add_to(app);
  add_hints_option(app, o->hints);
}

}  // namespace

void add_store_commands(command_line& line) {
  line.add({"init", "", 0, 0, "create the store (a folder store's root); every other command needs one", "",
            run_init});

  struct create_options {
    std::optional<std::string> max_size, hints;
  };
  auto creating = std::make_shared<create_options>();
  auto& create = line.add({"create", "PATH [FILE|-]", 1, 2,
                           "store FILE (or stdin) as a new version of PATH; prints the version",
                           "A regular FILE is streamed to the store whatever its size (on S3, a multipart upload\n"
                           "past 16 MiB); standard input or any other FILE is read into memory, up to --max-size.\n",
                           [creating](invocation& c) {
                             print_versions({on_store<versioned_path>(c, false, [&](auto& store, auto handler) {
                               const auto& path = c.positionals[0];
                               validate_path(path);  // before reading what may be a large input
                               const auto input = c.positionals.size() > 1 ? c.positionals[1] : "-";
                               // Checked whatever the input: a malformed limit is never ignored.
                               const auto max_size = parse_size_option(creating->max_size);
                               std::error_code ec;
                               if (input != "-" && std::filesystem::is_regular_file(input, ec)) {
                                 store.async_create_file_from(path, input, std::move(handler));
                                 return;
                               }
                               auto bytes = read_input(input, max_size);
                               store.async_create_file(path, std::move(bytes), std::move(handler));
                             }, creating->hints)});
                             return 0;
                           }});
  add_hints_option(create, creating->hints);
  add_value(create, "max-size", creating->max_size,
            "refuse standard input (or a FILE that is not a regular file) larger than BYTES (suffix K, M or G "
            "for KiB, MiB, GiB; default 64M)", "BYTES");

  add_sharing(line, "share", "users to share with: U1[,U2...]",
              "share your versions under PREFIX; prints each version (status 3 if none matched)", true);
  add_sharing(line, "unshare", "users to stop sharing with: U1[,U2...]",
              "stop sharing your versions under PREFIX; prints each version (status 3 if none matched)", false);

  struct delete_options {
    selection_options selection;
    std::optional<std::string> hints;
  };
  auto deleting = std::make_shared<delete_options>();
  auto& remove = line.add({"delete", "PREFIX", 1, 1,
                           "delete your versions under PREFIX; prints each version (status 3 if none matched)", "",
                           [deleting](invocation& c) {
                             const auto matched = on_store<versions>(c, false, [&](auto& store, auto handler) {
                               store.async_delete_files(deleting->selection.of(c.positionals[0]), std::move(handler));
                             }, deleting->hints);
                             return print_matched(c, deleting->selection, matched);
                           }});
  deleting->selection.add_to(remove);
  add_hints_option(remove, deleting->hints);

  struct publish_options {
    std::optional<std::string> to, hints;
  };
  auto publishing = std::make_shared<publish_options>();
  auto& publish = line.add({"publish", "NAME [DATA]", 1, 2, "send an application event NAME with DATA to users", "",
                            [publishing](invocation& c) {
                              const auto data = c.positionals.size() > 1 ? c.positionals[1] : "";
                              using ids = std::vector<std::string>;
                              const auto published = on_store<ids>(c, false, [&](auto& store, auto handler) {
                                auto users = required_users(c, publishing->to, "to");
                                store.async_publish_event(c.positionals[0], data, std::move(users),
                                                          std::move(handler));
                              }, publishing->hints);
                              for (const auto& id : published) std::printf("%s\n", id.c_str());
                              return 0;
                            }});
  add_value(publish, "to", publishing->to, "users to notify: U1[,U2...]", "USERS");
  add_hints_option(publish, publishing->hints);

  struct compact_options {
    std::optional<std::string> older_than, settled;
  };
  auto compaction = std::make_shared<compact_options>();
  auto& compact = line.add(
      {"compact", "", 0, 0,
       "compact every user's journal; prints the number of journal objects removed",
       "--older-than removes the records older than SECONDS (retention: a reader that had not read them gets\n"
       "a GAP). On an s3:// store it also folds the records stamped --settled SECONDS (default 60, the\n"
       "readers' late window; at least 55, the journal landing limit) before both the newest and the S3\n"
       "server's clock into segments, so that catching up costs one GET per segment; safe to run from any\n"
       "machine at any time, and again after a failure. A folder store needs --older-than.\n",
       [compaction](invocation& c) {
         const auto seconds_of = [](const std::optional<std::string>& text, std::string_view option) {
           const auto seconds = parse_decimal_option(*text, option);
           // Beyond this (31,700 years) the milliseconds, and the time
           // before now they name, would overflow.
           constexpr double most = 1e12;
           if (seconds > most) {
             throw usage_error("option '--" + std::string(option) + "': '" + *text +
                               "' is more seconds than the store's clock counts (at most 1000000000000)");
           }
           return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
         };
         const auto removed = on_store<std::size_t>(c, false, [&](auto& store, auto handler) {
           std::optional<std::chrono::seconds> age;
           if (compaction->older_than) {
             age = std::chrono::duration_cast<std::chrono::seconds>(seconds_of(compaction->older_than, "older-than"));
           }
           if constexpr (std::is_same_v<std::decay_t<decltype(store)>, local_store>) {
             if (compaction->settled) throw usage_error("option '--settled' is only for an s3:// store");
             if (!age) throw usage_error("'compact' on a folder store needs --older-than SECONDS");
             store.async_compact(*age, std::move(handler));
           }
#ifdef STOREWATCH_WITH_S3
           else {
             s3::s3_compact_options options;
             options.remove_older_than = age;
             if (compaction->settled) options.settled = seconds_of(compaction->settled, "settled");
             if (options.settled < s3::detail::default_landing_limit) {
               throw usage_error("option '--settled': " + *compaction->settled +
                                 " s is below the journal landing limit of " +
                                 std::to_string(s3::detail::default_landing_limit.count() / 1000) +
                                 " s: writers may still write or take back records stamped that recently");
             }
             store.async_compact(options, std::move(handler));
           }
#endif
         });
         std::printf("%zu\n", removed);
         return 0;
       }});
  add_value(compact, "older-than", compaction->older_than, "remove the journal records older than SECONDS",
            "SECONDS");
  add_value(compact, "settled", compaction->settled,
            "s3:// stores: fold records stamped SECONDS before the newest into segments (default 60, at least 55)", "SECONDS");

  auto recursive = std::make_shared<bool>(false);
  auto& ls = line.add({"ls", "[PREFIX]", 0, 1, "list the versions you can read",
                       "On an s3:// store a user the store does not know simply has no files (a folder store says\n"
                       "the user is unknown: it checks the user's folders; S3 has none to check).\n",
                       [recursive](invocation& c) {
                         const auto prefix = c.positionals.empty() ? "" : c.positionals[0];
                         print_versions(on_store<versions>(c, true, [&](auto& store, auto handler) {
                           store.async_list_files(prefix, *recursive, std::move(handler));
                         }));
                         return 0;
                       }});
  add_flag(ls, "recursive", *recursive, "list everything under PREFIX");

  line.add({"cat", "VERSIONED_PATH", 1, 1, "print the bytes of a version you can read",
            "On an s3:// store the user is not checked first: a version that is not yours or shared\n"
            "with you is \"cannot read\" (exit 1), as on a folder store.\n",
            [](invocation& c) {
              const auto bytes = on_store<std::string>(c, true, [&](auto& store, auto handler) {
                std::string why;
                auto version = versioned_path::try_parse(c.positionals[0], &why);
                if (!version) throw usage_error(why);
                store.async_read_file(std::move(*version), std::move(handler));
              });
              std::fwrite(bytes.data(), 1, bytes.size(), stdout);
              return 0;
            }});
}

}  // namespace storewatch::cli
