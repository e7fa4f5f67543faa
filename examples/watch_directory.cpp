// Watch a directory tree and print its changes, with co_await.
//
// A directory_source diffs snapshots of the tree, woken by inotify; a poller
// moves its events into an event_stream; a coroutine prints them until
// Ctrl-C. With a state folder, a restart prints what changed while the
// program was not running, and nothing it printed before.
//
// Usage: watch_directory DIR [STATE_FOLDER]
#include <storewatch/storewatch.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <string_view>

namespace {

asio::awaitable<void> print_changes(storewatch::event_stream& stream) {
  for (;;) {
    auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // end of stream: the poller stopped
    if (e.name == storewatch::event_name::rename) {
      std::printf("%-7s %s -> %s\n", e.name.c_str(), e.attributes["from"].get<std::string>().c_str(), e.data.c_str());
    } else {
      std::printf("%-7s %s (%s)\n", e.name.c_str(), e.data.c_str(), e.attributes["kind"].get<std::string>().c_str());
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  CLI::App app{"Prints the changes in the tree DIR as they happen, until Ctrl-C. With STATE_FOLDER, a restart "
               "prints what changed while it was not running, and nothing twice.",
               "watch_directory"};
  std::string dir;
  std::string state_folder;
  app.add_option("DIR", dir, "the tree to watch")->required();
  app.add_option("STATE_FOLDER", state_folder, "where the watch keeps its journal and snapshot");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;  // 0 for --help, 2 for a usage error
  }
  try {
    asio::io_context io;
    storewatch::directory_options options;
    if (!state_folder.empty()) options.state_dir = state_folder;
    storewatch::directory_source source(io.get_executor(), dir, options);
    storewatch::event_stream stream(io.get_executor());
    storewatch::poller_options poll;
    poll.poll_interval = 1s;  // the safety net; inotify wakes it sooner
    storewatch::poller poller(source, stream, poll);
    poller.start();

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { poller.stop(); });
    asio::co_spawn(io, print_changes(stream), asio::detached);
    std::printf("watching %s (Ctrl-C to stop)\n", dir.c_str());
    std::fflush(stdout);
    io.run();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "watch_directory: %s\n", error.what());
    return 1;
  }
}
