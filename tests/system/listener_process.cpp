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
#include <storewatch/s3/store.hpp>
#include <storewatch/storewatch.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "listener_process: %s\nusage: listener_process --root DIR --checkpoint FILE --output FILE "
               "[--checkpoint-every N] [--poll-ms MS] [--fsync-output 1|0] [--batch-size N]\n",
               why);
  std::exit(2);
}

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
  for (int i = 1; i < argc; ++i) {
    const std::string_view option = argv[i];
    if (i + 1 >= argc) usage("an option lacks its value");
    const char* value = argv[++i];
    if (option == "--root") {
      root = value;
    } else if (option == "--checkpoint") {
      checkpoint = value;
    } else if (option == "--output") {
      output = value;
    } else if (option == "--checkpoint-every") {
      checkpoint_every = std::atoll(value);
    } else if (option == "--poll-ms") {
      poll_ms = std::atoll(value);
    } else if (option == "--fsync-output") {
      fsync_output = std::string_view(value) != "0";
    } else if (option == "--batch-size") {
      batch_size = std::atoll(value);
    } else {
      usage("unknown option");
    }
  }
  if (root.empty() || checkpoint.empty() || output.empty() || checkpoint_every < 1 || poll_ms < 1 || batch_size < 0) {
    usage("--root, --checkpoint and --output are required");
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
    if (root.starts_with("s3://")) {
      storewatch::s3::s3_store store(io.get_executor(), storewatch::s3::config_from_environment(root), "bob123");
      listen(io, signals, store, std::move(options), fd, fsync_output);
    } else {
      storewatch::local_store store(io.get_executor(), root, "bob123");
      listen(io, signals, store, std::move(options), fd, fsync_output);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "listener_process: %s\n", error.what());
    ::close(fd);
    return 1;
  }
  ::close(fd);
  return 0;
}
