// Bob's side of the two-user demo: listen to bob123's journal in a store and
// print the SHARE, UNSHARE and DELETE events Alice's actions send him.
//
// Resumes from its checkpoint, so a restarted Bob neither misses nor repeats
// an event; Ctrl-C or SIGTERM stops it cleanly (checkpoint saved).
#include "demo_options.hpp"

#include <storewatch/storewatch.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  std::map<std::string, demo::option> options{
      {"root", {"root", "storewatch-demo", "the store's directory"}},
      {"user", {"user", "bob123", "whose events to follow"}},
      {"checkpoint", {"checkpoint", "", "checkpoint file (default: ROOT/USER.checkpoint)"}},
      {"interval", {"interval", "100", "poll interval in milliseconds"}},
  };
  demo::parse(argc, argv, options, "Bob: prints the file events shared with him, as they happen.");
  const std::filesystem::path root = options["root"].value;
  const std::string user = options["user"].value;
  const std::filesystem::path checkpoint =
      options["checkpoint"].value.empty() ? root / (user + ".checkpoint") : std::filesystem::path(options["checkpoint"].value);

  try {
    asio::io_context io;
    storewatch::local_store store(io.get_executor(), root, user);
    auto journal = store.events();
    storewatch::listener_options listening;
    listening.poller.poll_interval = std::chrono::milliseconds(std::stoi(options["interval"].value));
    listening.checkpoint = checkpoint;
    storewatch::event_listener listener(io.get_executor(), journal, listening);

    listener.add_event_listener(
        [&](std::string_view name, std::string_view data) {
          std::printf("%s received %.*s: %.*s\n", user.c_str(), static_cast<int>(name.size()), name.data(),
                      static_cast<int>(data.size()), data.data());
          std::fflush(stdout);
        },
        {.names = {"SHARE", "UNSHARE", "DELETE"}});

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
      if (!ec) listener.stop();
    });

    listener.start();
    std::printf("%s is listening to %s (Ctrl-C to stop)\n", user.c_str(), root.c_str());
    std::fflush(stdout);
    io.run();  // until a signal stops the listener
    std::printf("%s stopped; delivered %llu events; checkpoint %s\n", user.c_str(),
                static_cast<unsigned long long>(listener.stats().delivered), checkpoint.c_str());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bob_listener: %s\n", error.what());
    return 1;
  }
}
