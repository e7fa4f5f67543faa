// Bob's side of the two-user demo: listen to bob123's journal in a store and
// print the SHARE, UNSHARE and DELETE events Alice's actions send him.
//
// The store is a directory (--root DIR) or an S3 bucket (--store
// s3://bucket/prefix); the listening code is the same for both. On S3,
// --hints redis://... wakes Bob as soon as Alice's hint arrives, instead of
// at his next poll. Each line says how long after the event happened (by
// its timestamp) Bob printed it.
// Resumes from its checkpoint, so a restarted Bob neither misses nor repeats
// an event; Ctrl-C or SIGTERM stops it cleanly (checkpoint saved).
#include "demo_options.hpp"

#include <storewatch/storewatch.hpp>

#include <cstdio>

namespace {

/// Listens to `store`'s user's journal until SIGINT or SIGTERM.
template <class Store>
void listen(asio::io_context& io, Store& store, const std::string& where, const std::filesystem::path& checkpoint,
            std::chrono::milliseconds interval, std::shared_ptr<storewatch::hint_subscriber>& hints) {
  const std::string& user = store.user();
  auto journal = demo::journal_of(store, hints);
  storewatch::listener_options listening;
  listening.poller.poll_interval = interval;
  listening.checkpoint = checkpoint;
  storewatch::event_listener listener(io.get_executor(), journal, listening);

  listener.add_event_listener(
      [&](const storewatch::event& e) {
        const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now() - e.occurred_at);
        std::printf("%s received %s: %s (%lld ms after it happened)\n", user.c_str(), e.name.c_str(), e.data.c_str(),
                    static_cast<long long>(delay.count()));
        std::fflush(stdout);
      },
      {.names = {"SHARE", "UNSHARE", "DELETE"}});

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (ec) return;
    listener.stop();
    hints.reset();  // its Redis connection would keep io.run() going
  });

  listener.start();
  std::printf("%s is listening to %s (Ctrl-C to stop)\n", user.c_str(), where.c_str());
  std::fflush(stdout);
  io.run();  // until a signal stops the listener
  std::printf("%s stopped; delivered %llu events; checkpoint %s\n", user.c_str(),
              static_cast<unsigned long long>(listener.stats().delivered), checkpoint.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, demo::option> options{
      {"user", {"user", "bob123", "whose events to follow"}},
      {"checkpoint", {"checkpoint", "", "checkpoint file (default: ROOT/USER.checkpoint; ./USER.checkpoint for S3)"}},
      {"interval",
       {"interval", "",
        "poll interval in seconds (default: 0.1; on S3 1, or with --hints the library's 5: hints wake Bob)"}},
  };
  demo::add_store_options(options);
  demo::parse(argc, argv, options, "Bob: prints the file events shared with him, as they happen.");
  const auto where = demo::store_location(options);
  const bool s3 = demo::is_s3(options);
  const std::string user = options["user"].value;
  const std::filesystem::path checkpoint =
      !options["checkpoint"].value.empty() ? std::filesystem::path(options["checkpoint"].value)
      : s3                                 ? std::filesystem::path(user + ".checkpoint")
                                           : std::filesystem::path(where) / (user + ".checkpoint");

  try {
    asio::io_context io;
    auto hints = demo::hint_receiver(io, options);
    const auto default_interval = hints ? storewatch::poller_options{}.poll_interval
                                  : s3  ? std::chrono::milliseconds(1000)
                                        : std::chrono::milliseconds(100);
    const auto interval =
        options["interval"].value.empty() ? default_interval : demo::seconds_option(options["interval"]);
    demo::with_store(io, options, user,
                     [&](auto& store) { listen(io, store, where, checkpoint, interval, hints); });
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bob_listener: %s\n", error.what());
    return 1;
  }
}
