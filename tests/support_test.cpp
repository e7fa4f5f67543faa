// The test-support library (tests/support/) that every test and benchmark
// leans on: child processes, bounded runs of an io_context, temp dirs.
#include "common/fixture.hpp"
#include "support/process.hpp"
#include "support/text.hpp"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <signal.h>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace support_test {

using namespace storewatch::test_support;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE("support: a child's piped stdout and stderr, its stdin and its exit status") {
  spawn_options options;
  options.input = "from the parent\n";
  options.out = child_stream::piped();
  options.err = child_stream::piped();
  process child({"/bin/sh", "-c", "cat; echo oops >&2; exit 3"}, options);
  REQUIRE(child.wait(generous));
  CHECK(child.out() == "from the parent\n");
  CHECK(child.err() == "oops\n");
  CHECK(child.exit_code() == 3);
  CHECK_FALSE(child.succeeded());
  CHECK(child.status_text() == "exit 3");
}

TEST_CASE("support: an input larger than a pipe holds, to a child that exits without reading it all") {
  spawn_options options;
  options.input = std::string(1 << 20, 'x');
  options.out = child_stream::piped();
  process child({"/bin/sh", "-c", "head -c 10; exit 4"}, options);  // the constructor returns
  REQUIRE(child.wait(generous));
  CHECK(child.out() == "xxxxxxxxxx");
  CHECK(child.exit_code() == 4);
}

TEST_CASE("support: a child's environment, and its output to files") {
  temp_dir dir;
  const auto out = dir.path() / "out";
  const auto err = dir.path() / "err";
  {
    spawn_options options;
    options.environment = environment_with({"SUPPORT_TEST_A=one"}, {"HOME"});
    options.out = child_stream::to_file(out);
    options.err = child_stream::to_file(err, true);
    process child({"/bin/sh", "-c", "echo \"$SUPPORT_TEST_A/${HOME:-unset}\"; echo first >&2"}, options);
    REQUIRE(child.wait(generous));
    CHECK(child.succeeded());
  }
  {
    spawn_options options;
    options.out = child_stream::to_file(out);
    options.err = child_stream::to_file(err, true);
    process child({"/bin/sh", "-c", "echo second >&2"}, options);
    REQUIRE(child.wait(generous));
  }
  CHECK(read_text(out).empty());  // truncated by the second child
  CHECK(split_lines(read_text(err)) == std::vector<std::string>{"first", "second"});
}

TEST_CASE("support: a wait that runs out leaves the child running, and a signal ends it") {
  spawn_options options;
  options.out = child_stream::piped();
  process child({"/bin/sh", "-c", "echo started; exec sleep 60"}, options);
  CHECK_FALSE(child.wait(50ms));
  CHECK(child.exit_code() == -1);
  CHECK(wait_for([&] { return child.out() == "started\n"; }, generous, [&] { child.pump(); }));
  child.signal(SIGTERM);
  REQUIRE(child.wait(generous));
  CHECK(child.killed_by(SIGTERM));
  CHECK(child.exit_code() == 128 + SIGTERM);
}

TEST_CASE("support: a program that cannot be started throws") {
  CHECK_THROWS_AS(process({"/nonexistent/storewatch-support-test"}), std::system_error);
}

TEST_CASE("support: run_coroutine returns the value, rethrows the exception, and takes a lambda") {
  asio::io_context io;
  auto answer = []() -> asio::awaitable<int> { co_return 42; };
  CHECK(run_coroutine(io, answer()) == 42);
  auto fails = []() -> asio::awaitable<void> {
    throw std::logic_error("from the coroutine");
    co_return;
  };
  CHECK_THROWS_AS(run_coroutine(io, fails()), std::logic_error);
  int steps = 0;
  run_coroutine(io, [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
    co_await timer.async_wait(asio::use_awaitable);
    ++steps;
  });
  CHECK(steps == 1);
}

TEST_CASE("support: run_until stops when the condition holds, or at the limit, or when idle if asked") {
  asio::io_context io;
  int ran = 0;
  for (int i = 0; i < 5; ++i) asio::post(io, [&] { ++ran; });
  CHECK(run_until(io, [&] { return ran == 2; }));
  CHECK(ran == 2);  // checked after every handler
  CHECK(run_until(io, [&] { return ran == 5; }));
  const auto started = steady::now();
  CHECK_FALSE(run_until(io, [] { return false; }, 30ms));
  CHECK(steady::now() - started >= 30ms);
  CHECK_FALSE(run_until(io, [] { return false; }, generous, when_idle::give_up));
  CHECK(steady::now() - started < generous);
}

TEST_CASE("support: a temp dir is fresh and goes with what it holds") {
  fs::path kept;
  {
    temp_dir a;
    temp_dir b(temp_dir::place::memory, "storewatch-support-");
    CHECK(a.path() != b.path());
    CHECK(fs::is_directory(a.path()));
    CHECK(b.path().filename().string().starts_with("storewatch-support-"));
    fs::create_directories(a.path() / "x" / "y");
    kept = a.path();
  }
  CHECK_FALSE(fs::exists(kept));
}

}  // namespace support_test
