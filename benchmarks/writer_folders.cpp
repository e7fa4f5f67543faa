// What a year of CLI use leaves in a journal: N `storewatch publish`
// commands to one user, one after another (each a new process, so a new
// writer), then the journal's writer folders, the size of a listener's
// checkpoint after it has read everything, and the cost of an idle poll.
// Each figure is set against the same after a baseline of few commands,
// measured in the same run: bounded means the ratios stay near 1.
//
// Usage: writer_folders STOREWATCH_TOOL [commands (default 10000) [baseline commands (default 10)]]
// Exits non-zero if an event is missing or repeated.
#include "bench_common.hpp"
#include "support/process.hpp"

#include <storewatch/storewatch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace {

using namespace storewatch::bench;
namespace fs = std::filesystem;

/// Runs `argv` (its stdout to /dev/null) and waits for it; true when it
/// exited with status 0.
bool run_command(std::vector<std::string> argv) {
  storewatch::test_support::spawn_options options;
  options.out = storewatch::test_support::child_stream::null();
  try {
    storewatch::test_support::process command(std::move(argv), options);
    return command.wait(bench_limit) && command.succeeded();
  } catch (const std::system_error&) {
    return false;  // it could not be started
  }
}

struct figures {
  std::size_t commands = 0;
  std::size_t folders = 0;           // writer folders in bob123's journal
  std::uintmax_t checkpoint = 0;     // bytes of a caught-up listener's checkpoint
  double idle_poll_us = 0;           // one poll that finds nothing new
  double seconds = 0;                // wall time of the commands
  bool complete = false;             // every event read back exactly once
};

figures measure(const std::string& tool, std::size_t commands) {
  scratch_dir dir;
  const auto root = dir.path / "store";
  figures out;
  out.commands = commands;
  {
    asio::io_context io;
    storewatch::local_store make_root(io.get_executor(), root, "bob123");  // the store exists
    storewatch::ensure_journal(make_root);
  }
  const auto started = clock_type::now();
  for (std::size_t i = 0; i < commands; ++i) {
    if (!run_command({tool, "--store", root.string(), "--user", "alice222", "publish", "NOTE",
                      "n" + std::to_string(i), "--to", "bob123"})) {
      std::fprintf(stderr, "writer_folders: publish %zu failed\n", i);
      return out;
    }
  }
  out.seconds = seconds_since(started);
  out.folders = storewatch::journal_inventory(root)["bob123"].writers;

  asio::io_context io;
  storewatch::local_store bob(io.get_executor(), root, "bob123");
  auto source = bob.events();
  const auto checkpoint = dir.path / "bob.checkpoint";
  std::set<std::string> seen;
  std::size_t delivered = 0;
  {
    storewatch::listener_options options;
    options.checkpoint = checkpoint;
    options.poller.poll_interval = std::chrono::hours(1);
    storewatch::event_listener listener(io.get_executor(), source, options);
    listener.add_event_listener([&](const storewatch::event& e) {
      ++delivered;
      seen.insert(e.data);
      if (delivered == commands) listener.stop();
    });
    listener.start();
    io.run_for(std::chrono::minutes(5));
  }
  out.complete = delivered == commands && seen.size() == commands;
  out.checkpoint = fs::file_size(checkpoint);

  const auto cursor = storewatch::load_checkpoint(checkpoint)->cursor;
  constexpr int polls = 200;
  const auto poll_started = clock_type::now();
  for (int i = 0; i < polls; ++i) {
    if (!source.poll(cursor, 1000).events.empty()) out.complete = false;
  }
  out.idle_poll_us = seconds_since(poll_started) / polls * 1e6;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: writer_folders STOREWATCH_TOOL [commands [baseline commands]]\n");
    return 2;
  }
  const std::string tool = argv[1];
  const std::size_t commands = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10000;
  const std::size_t baseline_commands = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 10;

  const auto base = measure(tool, baseline_commands);
  const auto many = measure(tool, commands);
  std::printf("%-28s %12s %12s %8s\n", "", (std::to_string(base.commands) + " publishes").c_str(),
              (std::to_string(many.commands) + " publishes").c_str(), "ratio");
  const auto row = [](const char* what, double a, double b) {
    std::printf("%-28s %12.1f %12.1f %8.2f\n", what, a, b, a > 0 ? b / a : 0.0);
  };
  row("writer folders", static_cast<double>(base.folders), static_cast<double>(many.folders));
  row("checkpoint bytes", static_cast<double>(base.checkpoint), static_cast<double>(many.checkpoint));
  row("idle poll (us)", base.idle_poll_us, many.idle_poll_us);
  row("ms per publish command", base.seconds * 1e3 / static_cast<double>(base.commands),
      many.seconds * 1e3 / static_cast<double>(many.commands));
  if (!base.complete || !many.complete) {
    std::fprintf(stderr, "writer_folders: an event was missing or repeated\n");
    return 1;
  }
  return 0;
}
