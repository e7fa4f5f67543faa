// How fast does a listener catch up on a long journal, and how fast can a
// store write durably? Each figure is a ratio to a baseline run in the same
// process:
//
//   catch-up    `cat` of the journal's segment files to /dev/null (the bytes,
//               no parsing)  vs  journal_source polls (read + checksum + JSON
//               parse)  vs  an event_listener delivering every event to a
//               handler (read + parse + deliver)
//   durability  write + fsync of one record-sized line to a plain file, K
//               times  vs  local_store::publish_event and ::create_file, K
//               times (each durable before it returns)
//
// Usage: journal_catchup [events (default 1000000) [durable operations (default 200)]]
#include "bench_common.hpp"

#include <storewatch/storewatch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include <fcntl.h>
#include <unistd.h>

namespace {

using namespace storewatch::bench;

// Writes `count` SHARE events to bob123's journal in large batches (setup,
// not measured). Returns the journal's size in bytes.
std::uintmax_t fill_journal(const std::filesystem::path& root, std::size_t count) {
  storewatch::journal_appender writer(root);
  for (std::size_t i = 0; i < count; ++i) {
    storewatch::event e;
    e.name = "SHARE";
    e.data = storewatch::versioned_path{"SharedEvents/file-" + std::to_string(i) + ".txt", "alice222",
                                        1761135341619 + static_cast<std::int64_t>(i)}
                 .to_string();
    e.id = "bench-writer-" + std::to_string(i);
    e.actor = "alice222";
    e.occurred_at = storewatch::timestamp{std::chrono::milliseconds{1761135341619 + static_cast<std::int64_t>(i)}};
    writer.add("bob123", e);
  }
  writer.flush();
  std::uintmax_t bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root / "journals" / "bob123")) {
    if (entry.is_regular_file() && entry.path().extension() == ".log") bytes += entry.file_size();
  }
  return bytes;
}

double time_cat(const std::filesystem::path& journal) {
  const std::string command = "cat '" + journal.string() + "'/*/*.log > /dev/null";
  const auto start = clock_type::now();
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "journal_catchup: '%s' failed\n", command.c_str());
    std::exit(1);
  }
  return seconds_since(start);
}

double time_source(const std::filesystem::path& root, std::size_t count) {
  asio::io_context io;
  storewatch::local_store store(io.get_executor(), root, "bob123");
  auto source = store.events();
  std::string cursor;
  std::size_t seen = 0;
  const auto start = clock_type::now();
  for (;;) {
    auto result = source.poll(cursor, 4096);
    if (result.events.empty()) break;
    seen += result.events.size();
    cursor = std::move(result.next_cursor);
  }
  const double took = seconds_since(start);
  if (seen != count) {
    std::fprintf(stderr, "journal_catchup: source read %zu of %zu events\n", seen, count);
    std::exit(1);
  }
  return took;
}

double time_listener(const std::filesystem::path& root, std::size_t count) {
  asio::io_context io;
  storewatch::local_store store(io.get_executor(), root, "bob123");
  auto source = store.events();
  storewatch::listener_options options;
  options.poller.batch_size = 4096;
  storewatch::event_listener listener(io.get_executor(), source, options);
  std::size_t seen = 0;
  std::size_t bytes = 0;
  listener.add_event_listener([&](const storewatch::event& e) {
    bytes += e.data.size();
    if (++seen == count) listener.stop();
  });
  const auto start = clock_type::now();
  listener.start();
  io.run();
  const double took = seconds_since(start);
  if (seen != count || bytes == 0) {
    std::fprintf(stderr, "journal_catchup: listener delivered %zu of %zu events\n", seen, count);
    std::exit(1);
  }
  return took;
}

double time_raw_fsync(const std::filesystem::path& dir, std::size_t operations) {
  const auto file = dir / "raw.log";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const std::string line(200, 'x');
  const auto start = clock_type::now();
  for (std::size_t i = 0; i < operations; ++i) {
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fsync(fd) != 0) {
      std::perror("journal_catchup: raw write");
      std::exit(1);
    }
  }
  const double took = seconds_since(start);
  ::close(fd);
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const std::size_t operations = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200;
  if (events == 0 || operations == 0) {
    std::fprintf(stderr, "usage: %s [events [durable operations]]\n", argv[0]);
    return 2;
  }

  scratch_dir scratch;
  const auto bytes = fill_journal(scratch.path, events);
  const auto journal = scratch.path / "journals" / "bob123";
  time_cat(journal);  // warm the page cache for every reader alike
  const double cat = time_cat(journal);
  const double source = time_source(scratch.path, events);
  const double listener = time_listener(scratch.path, events);

  std::printf("catch-up of %zu events (%.1f MB of journal, page cache warm)\n", events, bytes / 1e6);
  std::printf("  %-34s %10.3f s %12.0f events/s  ratio %6.2f\n", "cat > /dev/null (baseline)", cat, events / cat, 1.0);
  std::printf("  %-34s %10.3f s %12.0f events/s  ratio %6.2f\n", "journal_source (read+parse)", source,
              events / source, cat / source);
  std::printf("  %-34s %10.3f s %12.0f events/s  ratio %6.2f\n", "event_listener (read+parse+deliver)", listener,
              events / listener, cat / listener);

  asio::io_context io;
  storewatch::local_store alice(io.get_executor(), scratch.path, "alice222");
  const double raw = time_raw_fsync(scratch.path, operations);
  auto start = clock_type::now();
  for (std::size_t i = 0; i < operations; ++i) alice.publish_event("BENCH", std::to_string(i), {"bob123"});
  const double publish = seconds_since(start);
  start = clock_type::now();
  for (std::size_t i = 0; i < operations; ++i) alice.create_file("bench/file.txt", std::string(200, 'y'));
  const double create = seconds_since(start);

  std::printf("durable operations, %zu each\n", operations);
  std::printf("  %-34s %10.3f s %12.0f ops/s     ratio %6.2f\n", "write+fsync 200 B (baseline)", raw,
              operations / raw, 1.0);
  std::printf("  %-34s %10.3f s %12.0f ops/s     ratio %6.2f\n", "publish_event to 1 user", publish,
              operations / publish, raw / publish);
  std::printf("  %-34s %10.3f s %12.0f ops/s     ratio %6.2f\n", "create_file 200 B", create, operations / create,
              raw / create);
}
