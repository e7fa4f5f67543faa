// Callback listeners, in the reference system's vocabulary.
//
// Three listeners on one event_listener: an audit logger that appends every
// event to a file, a security monitor that only sees SHARE and DELETE, and
// per-name counters. Events come from an in-memory source that this program
// feeds itself; the listener polls it on the io_context of this thread.
//
// Usage: callback_listeners [AUDIT_LOG_FILE]   (default: audit.log)
#include <storewatch/storewatch.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  const std::string audit_file = argc > 1 ? argv[1] : "audit.log";

  asio::io_context io;
  storewatch::memory_source source(io.get_executor());
  storewatch::event_listener listener(io.get_executor(), source, {.poller = {.poll_interval = 1s}});

  // 1. Audit logger: every event, one JSON object per line.
  std::ofstream audit(audit_file, std::ios::app);
  listener.add_event_listener([&](const storewatch::event& e) { audit << nlohmann::json(e).dump() << '\n'; });

  // 2. Security monitor: only SHARE and DELETE, with the old (name, data) signature.
  listener.add_event_listener(
      [](std::string_view name, std::string_view data) {
        std::printf("security: %-6.*s %.*s\n", static_cast<int>(name.size()), name.data(),
                    static_cast<int>(data.size()), data.data());
      },
      {.names = {"SHARE", "DELETE"}});

  // 3. Counters per event name; stops the listener once the demo's events are in.
  std::map<std::string, int> counts;
  constexpr int expected = 7;
  int seen = 0;
  listener.add_event_listener([&](const storewatch::event& e) {
    ++counts[e.name];
    if (++seen == expected) listener.stop();
  });

  listener.start();

  // Alice's activity, as a store would report it to Bob.
  const auto version = [](const char* path, std::int64_t ms) {
    return storewatch::versioned_path{path, "alice222", ms}.to_string();
  };
  source.publish("CREATE", version("SharedEvents/plan.md", 1761135341619), "alice222");
  source.publish("CREATE", version("SharedEvents/budget.xlsx", 1761135342001), "alice222");
  source.publish("SHARE", version("SharedEvents/plan.md", 1761135341619), "alice222");
  source.publish("SHARE", version("SharedEvents/budget.xlsx", 1761135342001), "alice222");
  source.publish("REVIEW_REQUESTED", R"({"file": "SharedEvents/plan.md"})", "alice222");
  source.publish("UNSHARE", version("SharedEvents/budget.xlsx", 1761135342001), "alice222");
  source.publish("DELETE", version("SharedEvents/budget.xlsx", 1761135342001), "alice222");

  io.run();  // returns when the listener has stopped

  std::printf("counts:");
  for (const auto& [name, count] : counts) std::printf(" %s=%d", name.c_str(), count);
  const auto stats = listener.stats();
  std::printf("\ndelivered %llu events, %llu handler errors; audit log: %s\n",
              static_cast<unsigned long long>(stats.delivered), static_cast<unsigned long long>(stats.handler_errors),
              audit_file.c_str());
}
