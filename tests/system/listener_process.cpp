// A listener process for the system tests: an event_listener on bob123's
// journal in the store at --root (a folder, or "s3://bucket/prefix" with the
// endpoint and credentials from the environment), resuming from --checkpoint. Each delivered
// event is appended to --output as one line "<id> <data>\n" and the file is
// fsynced before the handler returns, so a line in the output means "the
// handler finished with this event". SIGTERM (or SIGINT) stops the listener
// (which saves the checkpoint) and the process exits 0.
// With --fsync-output 0 the line is written (not fsynced) before the handler
// returns: it still survives a SIGKILL of this process, though not a crash of
// the machine, and delivery need not wait for the disk (the crash soak: with
// an fsync per line, one listener delivered fewer events than one writer
// published).
//
// --batch-size sets the poller's batch_size (default: the library's).
//
//   storewatch_listener_process --root DIR --checkpoint FILE --output FILE
//                               [--checkpoint-every 256] [--poll-ms 10]
//                               [--fsync-output 1] [--batch-size N]
#include <storewatch/store/open_store.hpp>
#include <storewatch/storewatch.hpp>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fcntl.h>
#include <unistd.h>

namespace {

void write_line(int fd, const std::string& line, bool durably) {
  std::string_view rest = line;
  while (!rest.empty()) {
    const auto written = ::write(fd, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      std::perror("listener_process: write");
      std::_Exit(3);
    }
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
  if (durably && ::fsync(fd) != 0) {
    std::perror("listener_process: fsync");
    std::_Exit(3);
  }
}

/// Listens to `store`'s journal until SIGTERM or SIGINT.
template <class Store>
void listen(asio::io_context& io, asio::signal_set& signals, Store& store, storewatch::listener_options options, int fd,
            bool fsync_output) {
  auto source = store.events();
  storewatch::event_listener listener(io.get_executor(), source, std::move(options));
  listener.add_event_listener([fd, fsync_output](const storewatch::event& e) {
    std::string line = e.id;
    line += ' ';
    line += e.data;
    line += '\n';
    write_line(fd, line, fsync_output);
  });
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) listener.stop();
  });
  listener.start();
  io.run();
}

}  // namespace

int main(int argc, char** argv) {
  std::string root;
  std::string checkpoint;
  std::string output;
  long long checkpoint_every = 256;
  long long poll_ms = 10;
  bool fsync_output = true;
  long long batch_size = 0;  // the library's default
  CLI::App app{"A listener process for the system tests", "listener_process"};
  app.add_option("--root", root, "the store: a folder or s3://bucket/prefix")->type_name("DIR")->required();
  app.add_option("--checkpoint", checkpoint, "the listener's checkpoint")->type_name("FILE")->required();
  app.add_option("--output", output, "where each delivered event is appended")->type_name("FILE")->required();
  app.add_option("--checkpoint-every", checkpoint_every, "events between checkpoint saves")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  app.add_option("--poll-ms", poll_ms, "the poll interval")->type_name("MS")->check(CLI::PositiveNumber);
  app.add_option("--fsync-output", fsync_output, "fsync each output line (1) or only write it (0)")
      ->type_name("1|0");
  app.add_option("--batch-size", batch_size, "the poller's batch size (0: the library's)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }

  const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror("listener_process: open output");
    return 1;
  }
  try {
    asio::io_context io;
    // First: a SIGTERM that comes while the store is being opened waits
    // for the listener instead of killing the process.
    asio::signal_set signals(io, SIGTERM, SIGINT);
    storewatch::listener_options options;
    options.checkpoint = checkpoint;
    options.checkpoint_every = static_cast<std::size_t>(checkpoint_every);
    options.poller.poll_interval = std::chrono::milliseconds(poll_ms);
    if (batch_size > 0) options.poller.batch_size = static_cast<std::size_t>(batch_size);
    auto store = storewatch::open_store(io.get_executor(), root, "bob123");
    std::visit([&](auto& opened) { listen(io, signals, opened, std::move(options), fd, fsync_output); }, store);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "listener_process: %s\n", error.what());
    ::close(fd);
    return 1;
  }
  ::close(fd);
  return 0;
}
