// Administration: `stats`, each user's journal (events, writers, bytes,
// oldest and newest event) on either kind of store.
#include "commands.hpp"
#include "output.hpp"
#include "store.hpp"
#include "sync.hpp"

#include <storewatch/store/inventory.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace storewatch::cli {
namespace {

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
    report_problems(batch);
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
                s.oldest ? format_time(*s.oldest).c_str() : "-", s.newest ? format_time(*s.newest).c_str() : "-");
    total_bytes += s.bytes;
    total_events += s.events;
  }
  std::printf("%-16s %8zu %8s %12ju\n", "total", total_events, "", total_bytes);
  return 0;
}

/// Each user's journal footprint with the events counted from its start.
template <class OpenSource>
int print_counted(asio::io_context& io, const std::map<std::string, journal_footprint>& footprints,
                  OpenSource open_source) {
  std::map<std::string, journal_summary> users;
  for (const auto& [user, footprint] : footprints) {
    auto& summary = users[user];
    summary.bytes = footprint.bytes;
    summary.writers = footprint.writers;
    auto source = open_source(user);
    count_events(io, source, summary);
  }
  return print_stats(users);
}

int run_local_stats(const invocation& c, asio::io_context& io) {
  const std::filesystem::path root = c.store.text;
  return print_counted(io, journal_inventory(root), [&](const std::string& user) {
    return journal_source(io.get_executor(), root / "journals" / user);
  });
}

#ifdef STOREWATCH_WITH_S3
/// `stats` on an S3 store: a LIST of its journals, then each read from the start.
int run_s3_stats(asio::io_context& io, const s3::config& config) {
  std::map<std::string, journal_footprint> footprints;
  {
    s3::client client(io.get_executor(), config);
    footprints = run_coroutine(io, s3::journal_inventory(client));
  }
  return print_counted(io, footprints, [&](const std::string& user) {
    return s3::s3_journal_source(io.get_executor(), config, user);
  });
}

#endif

int run_stats(invocation& c) {
  asio::io_context io;
  check_location(c, false);
  check_s3_support(c);
#ifdef STOREWATCH_WITH_S3
  if (is_s3(c)) {
    return run_s3_stats(io, with_usage_errors(c, [&] { return s3_store_config(c.store.text, store_options(c)); }));
  }
#endif
  require_root(c);
  return run_local_stats(c, io);
}

}  // namespace

void add_stats_command(command_line& line) {
  line.add({"stats", "", 0, 0, "event count, writers, journal bytes and oldest/newest event per user",
            "Reads every user's journal from the start. On an s3:// store: users are the folders under\n"
            "journals/, bytes the size of their journal objects, writers the store objects that wrote them\n"
            "(per the object names); one LIST per 1000 objects plus one GET per object.\n",
            run_stats});
}

}  // namespace storewatch::cli
