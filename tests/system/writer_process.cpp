// A writer process for the system tests: opens the store at --root (a
// folder: a local_store; "s3://bucket/prefix": an s3_store, the endpoint and
// credentials from the environment) as user --user (default alice222) and publishes --count application events
// "NOTE" to bob123, with data "<name>:<sequence>", one publish_event each.
// After each publish_event has completed (the event is durable) it prints
// "<sequence>\n" to stdout and flushes, so a test that kills it knows which
// events were complete. SIGTERM (or SIGINT) stops it cleanly: the publish
// under way completes and is printed, and the process exits 0.
//
//   storewatch_writer_process --root DIR --name writer0 --count 10000
//                             [--user alice222] [--interval-us 0] [--segment-bytes N]
#include <storewatch/store/open_store.hpp>
#include <storewatch/storewatch.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

#include <signal.h>

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void request_stop(int) { stop_requested = 1; }

/// SIGTERM and SIGINT end the loop after the publish under way (SA_RESTART:
/// a signal does not fail the file I/O in progress).
void stop_on_signals() {
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
}

/// Publishes `count` events through `store`, each waited for on `io`.
template <class Store>
void publish(asio::io_context& io, Store& store, const std::string& name, long long count, long long interval_us) {
  const std::vector<std::string> users{"bob123"};
  for (long long sequence = 0; sequence < count && stop_requested == 0; ++sequence) {
    std::string data = name;
    data += ':';
    data += std::to_string(sequence);
    std::error_code failure;
    bool done = false;
    store.async_publish_event("NOTE", data, users, [&](std::error_code ec, const std::vector<std::string>&) {
      failure = ec;
      done = true;
    });
    io.restart();
    while (!done) io.run_one();
    if (failure) throw std::system_error(failure, store.last_error());
    std::printf("%lld\n", sequence);
    std::fflush(stdout);
    if (interval_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(interval_us));
  }
}

}  // namespace

int main(int argc, char** argv) {
  stop_on_signals();
  std::string root;
  std::string name;
  std::string user = "alice222";
  long long count = -1;
  long long interval_us = 0;
  unsigned long long segment_bytes = 0;
  CLI::App app{"A writer process for the system tests", "writer_process"};
  app.add_option("--root", root, "the store: a folder or s3://bucket/prefix")->type_name("DIR")->required();
  app.add_option("--name", name, "the writer's name, in each event's data")->type_name("NAME")->required();
  app.add_option("--count", count, "how many events to publish")->type_name("N")->required()->check(
      CLI::NonNegativeNumber);
  app.add_option("--user", user, "who publishes")->type_name("USER");
  app.add_option("--interval-us", interval_us, "pause after each event")->type_name("US");
  app.add_option("--segment-bytes", segment_bytes, "a folder store's journal segment size")->type_name("BYTES");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  try {
    asio::io_context io;
    storewatch::open_store_options options;
    if (segment_bytes > 0) options.local.segment_bytes = segment_bytes;
    auto store = storewatch::open_store(io.get_executor(), root, user, options);
    std::visit([&](auto& opened) { publish(io, opened, name, count, interval_us); }, store);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "writer_process %s: %s\n", name.c_str(), error.what());
    return 1;
  }
  return 0;
}
