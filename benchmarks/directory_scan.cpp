// The directory source at scale, each figure against a baseline in the same
// run:
//
//   rescan   an unchanged tree of N files: the source's rescan (list and
//            stat every entry, diff against the snapshot)  vs
//            `find DIR -printf '%i %s %T@ %p\n' > /dev/null` (what the
//            kernel needs to list and stat it, plus find's printing); and,
//            when python3-watchdog is installed, watchdog's DirectorySnapshot
//            of the same tree as a peer figure
//   memory   heap bytes the snapshot holds per file (mallinfo2 before and
//            after the first scan), against the bytes of the file names
//   burst    B files created as fast as one thread can, while a listener
//            runs: events/s delivered  vs  files/s created
//
// Usage: directory_scan [files (default 100000) [burst files (default 100000)]]
#include "bench_common.hpp"

#include <storewatch/storewatch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

namespace {

using namespace storewatch::bench;
namespace fs = std::filesystem;

void touch(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  ::close(fd);
}

/// N files, 100 to a folder, folders 50 to a parent: a tree like a project's.
struct tree_shape {
  std::size_t name_bytes = 0;  // of the files' names
  std::size_t folders = 0;
};

tree_shape make_tree(const fs::path& root, long files) {
  tree_shape shape;
  for (long i = 0; i < files; ++i) {
    const auto folder = root / ("group" + std::to_string(i / 5000)) / ("dir" + std::to_string(i / 100));
    if (i % 5000 == 0) ++shape.folders;
    if (i % 100 == 0) {
      fs::create_directories(folder);
      ++shape.folders;
    }
    const std::string name = "file-" + std::to_string(i) + ".dat";
    touch(folder / name);
    shape.name_bytes += name.size();
  }
  return shape;
}

/// One poll of a source without wake-ups: a full rescan (list and stat
/// every entry, diff against the snapshot). Returns the events it found.
std::size_t rescan(asio::io_context& io, storewatch::directory_source& source, std::string& cursor) {
  auto result = storewatch::test_support::run_coroutine(io, source.async_poll(cursor, 1u << 30, asio::use_awaitable), bench_limit);
  cursor = std::move(result.next_cursor);
  return result.events.size();
}

double run_shell(const std::string& command) {
  const auto start = clock_type::now();
  if (std::system(command.c_str()) != 0) return -1;
  return seconds_since(start);
}

void rescan_and_memory(long files) {
  scratch_dir dir;
  const auto shape = make_tree(dir.path, files);
  const auto entries = static_cast<std::size_t>(files) + shape.folders;
  asio::io_context io;
  storewatch::directory_options options;
  options.wake_ups = false;  // every poll rescans the whole tree
  const auto heap_before = ::mallinfo2().uordblks;
  storewatch::directory_source source(io.get_executor(), dir.path, options);
  std::string cursor;
  const auto first_start = clock_type::now();
  rescan(io, source, cursor);  // the first scan sets the baseline silently
  const double first = seconds_since(first_start);
  const auto heap_after = ::mallinfo2().uordblks;

  // Page cache warm for everyone: one untimed find first.
  const std::string find = "find '" + dir.path.string() + "' -printf '%i %s %T@ %p\\n' > /dev/null";
  run_shell(find);
  double best_find = 1e9, best_rescan = 1e9;
  for (int round = 0; round < 3; ++round) {
    best_find = std::min(best_find, run_shell(find));
    const auto start = clock_type::now();
    const auto changes = rescan(io, source, cursor);
    best_rescan = std::min(best_rescan, seconds_since(start));
    if (changes != 0) std::fprintf(stderr, "directory_scan: an unchanged tree gave %zu changes\n", changes);
  }
  std::printf("tree: %ld files in %zu folders (%zu entries)\n", files, shape.folders, entries);
  std::printf("%-52s %10s %8s\n", "rescan of the unchanged tree (best of 3)", "seconds", "ratio");
  std::printf("%-52s %10.3f %8.2f\n", "find -printf '%i %s %T@ %p' (baseline)", best_find, 1.0);
  std::printf("%-52s %10.3f %8.2f\n", "directory source poll = rescan (list, stat, diff)", best_rescan,
              best_rescan / best_find);
  const double watchdog = run_shell("/usr/bin/python3 -c 'import watchdog' 2>/dev/null") < 0
                              ? -1
                              : run_shell("/usr/bin/python3 -c 'from watchdog.utils.dirsnapshot import DirectorySnapshot; "
                                          "DirectorySnapshot(\"" + dir.path.string() + "\")'");
  if (watchdog >= 0) {
    std::printf("%-52s %10.3f %8.2f\n", "python3-watchdog DirectorySnapshot (peer, 1 run)", watchdog,
                watchdog / best_find);
  } else {
    std::printf("(no peer figure: python3-watchdog is not installed)\n");
  }
  std::printf("first scan (builds the snapshot): %.3f s\n", first);
  const double per_file = static_cast<double>(heap_after - heap_before) / static_cast<double>(entries);
  const double names = static_cast<double>(shape.name_bytes) / static_cast<double>(files);
  std::printf("snapshot heap: %.1f bytes per entry, of which names average %.1f bytes: %.1f bytes besides the name\n",
              per_file, names, per_file - names);
}

void burst(long files) {
  scratch_dir dir;
  const auto root = dir.path / "tree";
  fs::create_directories(root);
  asio::io_context io;
  storewatch::directory_source source(io.get_executor(), root);
  storewatch::listener_options options;
  options.poller.poll_interval = std::chrono::seconds(1);
  storewatch::event_listener listener(io.get_executor(), source, options);
  long received = 0;
  listener.add_event_listener([&](const storewatch::event&) {
    if (++received == files) listener.stop();
  });
  listener.start();
  while (listener.stats().polls < 1) io.run_one();

  const auto start = clock_type::now();
  double created_after = 0;
  std::thread writer([&] {
    for (long i = 0; i < files; ++i) touch(root / ("f" + std::to_string(i)));
    created_after = seconds_since(start);
  });
  while (listener.running()) io.run_one();
  const double delivered_after = seconds_since(start);
  writer.join();
  std::printf("%-52s %10s %8s\n", "burst of creates", "per s", "ratio");
  std::printf("%-52s %10.0f %8.2f\n", "files created by one thread (baseline)", files / created_after, 1.0);
  std::printf("%-52s %10.0f %8.2f\n", "CREATE events delivered to a handler", files / delivered_after,
              created_after / delivered_after);
}

}  // namespace

int main(int argc, char** argv) {
  const long files = argc > 1 ? std::atol(argv[1]) : 100000;
  const long burst_files = argc > 2 ? std::atol(argv[2]) : 100000;
  if (files <= 0 || burst_files <= 0) {
    std::fprintf(stderr, "usage: directory_scan [files [burst files]]\n");
    return 2;
  }
  try {
    rescan_and_memory(files);
    burst(burst_files);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "directory_scan: %s\n", error.what());
    return 1;
  }
}
