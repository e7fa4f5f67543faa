// How fast does a listener catch up on a long journal, and how fast can a
// store write durably? Each figure is a ratio to a baseline run in the same
// process:
//
//   catch-up    the irreducible work, in this process: read the segment
//               files in 1 MiB chunks, find each record's end and check its
//               crc32 (zlib), no decoding  vs  journal_source polls (read +
//               checksum + decode)  vs  an event_listener delivering every
//               event to a handler (read + decode + deliver); the listener
//               is also given as a ratio to the journal_source alone
//   durability  write + fsync of one record-sized line to a plain file, K
//               times  vs  local_store::publish_event and ::create_file, K
//               times (each durable before it returns)
//
// Usage: journal_catchup [events (default 1000000) [durable operations (default 200)]]
//
// The catch-up steps are never inlined, so a profiler can count each alone:
// valgrind --tool=callgrind --toggle-collect='*time_listener*' journal_catchup ...
#include "bench_common.hpp"

#include <storewatch/storewatch.hpp>

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

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

// Whether `line` (newline excluded) is "<crc32 in 8 hex digits> <bytes>"
// with a matching checksum: what a reader must check before it trusts a
// record, and nothing more.
bool record_intact(std::string_view line) {
  std::uint32_t expected = 0;
  if (line.size() < 10 || line[8] != ' ' ||
      std::from_chars(line.data(), line.data() + 8, expected, 16).ptr != line.data() + 8) {
    return false;
  }
  const auto body = line.substr(9);
  return ::crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())) == expected;
}

// The baseline: reads every segment of `journal` (each writer folder's .log
// files, in name order) in 1 MiB chunks and checks every record. Exits
// with 1 unless it finds `count` intact records.
[[gnu::noinline]] double time_scan(const std::filesystem::path& journal, std::size_t count) {
  std::vector<std::filesystem::path> segments;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(journal)) {
    if (entry.is_regular_file() && entry.path().extension() == ".log") segments.push_back(entry.path());
  }
  std::sort(segments.begin(), segments.end());
  std::size_t records = 0;
  std::size_t broken = 0;
  std::vector<char> buffer(1 << 20);
  const auto start = clock_type::now();
  for (const auto& segment : segments) {
    const int fd = ::open(segment.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::perror("journal_catchup: open segment");
      std::exit(1);
    }
    std::size_t held = 0;  // bytes of an unfinished record kept at the buffer's start
    for (;;) {
      if (held == buffer.size()) buffer.resize(buffer.size() * 2);
      const auto got = ::read(fd, buffer.data() + held, buffer.size() - held);
      if (got < 0) {
        std::perror("journal_catchup: read segment");
        std::exit(1);
      }
      if (got == 0) break;
      const std::string_view bytes(buffer.data(), held + static_cast<std::size_t>(got));
      std::size_t begin = 0;
      for (std::size_t end; (end = bytes.find('\n', begin)) != std::string_view::npos; begin = end + 1) {
        ++(record_intact(bytes.substr(begin, end - begin)) ? records : broken);
      }
      held = bytes.size() - begin;
      std::memmove(buffer.data(), buffer.data() + begin, held);
    }
    ::close(fd);
    if (held > 0) ++broken;
  }
  const double took = seconds_since(start);
  if (records != count || broken != 0) {
    std::fprintf(stderr, "journal_catchup: the scan found %zu intact records of %zu (%zu broken)\n", records, count,
                 broken);
    std::exit(1);
  }
  return took;
}

[[gnu::noinline]] double time_source(const std::filesystem::path& root, std::size_t count) {
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

[[gnu::noinline]] double time_listener(const std::filesystem::path& root, std::size_t count) {
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
  time_scan(journal, events);  // warm the page cache for every reader alike
  const double scan = time_scan(journal, events);
  const double source = time_source(scratch.path, events);
  const double listener = time_listener(scratch.path, events);

  std::printf("catch-up of %zu events (%.1f MB of journal, page cache warm)\n", events, bytes / 1e6);
  std::printf("  %-38s %8.3f s %12.0f events/s  ratio %6.2f\n", "read + find records + crc32 (baseline)", scan,
              events / scan, 1.0);
  std::printf("  %-38s %8.3f s %12.0f events/s  ratio %6.2f\n", "journal_source (read+check+decode)", source,
              events / source, scan / source);
  std::printf("  %-38s %8.3f s %12.0f events/s  ratio %6.2f\n", "event_listener (read+decode+deliver)", listener,
              events / listener, scan / listener);
  std::printf("event_listener/journal_source ratio: %.2f\n", source / listener);

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
