// The two-user demo with hints (issue #20's done-when): Bob's
// bob_listener polls his S3 journal at the default interval (5 s) with
// --hints, and each of Alice's alice_sender runs (separate processes, one
// after the other) has her SHARE printed by Bob within a second of it
// happening. Without the hints a SHARE waits for Bob's next poll, up to 5 s:
// each run starts right after Bob's poll that printed the previous one.
#include "redis/processes.hpp"
#include "redis/server.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/s3_server.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace demo_hints_test {

using namespace storewatch;

#ifdef STOREWATCH_DEMO_BOB
namespace {

// How many times `text` holds `what`.
std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

// The delays Bob printed for his SHARE lines ("... (85 ms after it happened)").
std::vector<long> share_delays(const std::string& output) {
  std::vector<long> delays;
  std::size_t line_start = 0;
  while (line_start < output.size()) {
    auto line_end = output.find('\n', line_start);
    if (line_end == std::string::npos) line_end = output.size();
    const auto line = output.substr(line_start, line_end - line_start);
    const auto open = line.rfind(" (");
    if (line.find(" received SHARE: ") != std::string::npos && open != std::string::npos) {
      delays.push_back(std::stol(line.substr(open + 2)));
    }
    line_start = line_end + 1;
  }
  return delays;
}

}  // namespace

TEST_CASE("the demo on S3 with --hints: Bob at the default 5 s interval prints each of Alice's SHAREs within a second") {
  const auto where = test_support::test_server_config();  // a fresh key prefix
  const auto hints = test_support::fixture_redis();
  const auto suffix = std::to_string(std::random_device{}() % 1000000);
  const auto bob = "bob" + suffix, alice = "alice" + suffix;
  test_support::temp_dir dir;
  const auto options = test_support::s3_process_options(where, dir);
  const std::vector<std::string> store{"--store", test_support::store_url(where), "--endpoint",
                                       test_support::endpoint_url(where), "--hints", hints.text()};
  const auto with_store = [&](std::vector<std::string> command) {
    command.insert(command.end(), store.begin(), store.end());
    return command;
  };

  // No --interval: Bob's default with hints, the library's 5 s.
  test_support::process listener(
      with_store({STOREWATCH_DEMO_BOB, "--user", bob, "--checkpoint", (dir.path() / "bob.checkpoint").string()}),
      options);
  const auto listening = [&] {
    return listener.out().find("is listening") != std::string::npos &&
           test_support::subscriber_count(hints, "storewatch:hints:" + bob) > 0;
  };
  REQUIRE(test_support::wait_for(listening, test_support::generous, [&] { listener.pump(); }));

  constexpr std::size_t runs = 4;
  for (std::size_t run = 1; run <= runs; ++run) {
    test_support::process sender(with_store({STOREWATCH_DEMO_ALICE, "--user", alice, "--to", bob, "--pause", "0.2"}),
                                 options);
    REQUIRE(sender.wait(test_support::generous));
    INFO("alice_sender: " << sender.out() << sender.err());
    REQUIRE(sender.succeeded());
    // Bob has printed this run's DELETE: the next run starts right after
    // the poll that found it, as far from his next poll as can be.
    REQUIRE(test_support::wait_for([&] { return occurrences(listener.out(), " received DELETE: ") == run; },
                                   test_support::generous, [&] { listener.pump(); }));
  }
  INFO("bob_listener: " << listener.out() << listener.err());
  const auto delays = share_delays(listener.out());
  REQUIRE(delays.size() == runs);
  for (const auto delay : delays) CHECK(delay < 1000);
  CHECK(listener.err().empty());
}
#endif

}  // namespace demo_hints_test
