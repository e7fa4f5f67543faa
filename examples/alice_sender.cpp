// Alice's side of the two-user demo: create a file, share it with bob123,
// pause so that Bob sees the SHARE first, then delete it. The store is a
// directory (--root DIR) or an S3 bucket (--store s3://bucket/prefix); `act`
// is the same for both. On S3, --hints redis://... publishes a wake-up hint
// for Bob after each operation, and waits for Redis to have them before
// exiting.
#include "demo_options.hpp"

#include <storewatch/storewatch.hpp>

#include <cstdio>

namespace {

template <class Store>
asio::awaitable<void> act(Store& store, const std::string& friend_name, std::chrono::milliseconds pause,
                          demo::hint_sender& hints) {
  using asio::use_awaitable;
  // Arguments as named variables, not temporaries in the co_await (the g++ 12
  // advice in docs/known-limits.md).
  const std::string path = "SharedEvents/alice_to_bob.txt";
  const std::string greeting = "Hello Bob, from Alice.\n";
  const auto version = co_await store.async_create_file(path, greeting, use_awaitable);
  std::printf("%s created %s\n", store.user().c_str(), version.to_string().c_str());

  storewatch::selection file{path, false};
  std::vector<std::string> with{friend_name};
  const auto shared = co_await store.async_share_files(file, with, use_awaitable);
  std::printf("%s shared %zu version(s) with %s\n", store.user().c_str(), shared.size(), friend_name.c_str());
  std::fflush(stdout);

  asio::steady_timer timer(store.get_executor(), pause);
  co_await timer.async_wait(use_awaitable);

  const auto deleted = co_await store.async_delete_files(file, use_awaitable);
  std::printf("%s deleted %zu version(s)\n", store.user().c_str(), deleted.size());
  co_await hints.flush();  // the hints leave with this process otherwise
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, demo::option> options{
      {"user", {"user", "alice222", "who acts"}},
      {"to", {"to", "bob123", "who the file is shared with"}},
      {"pause", {"pause", "2", "seconds between sharing and deleting"}},
  };
  demo::add_store_options(options);
  demo::parse(argc, argv, options, "Alice: creates a file, shares it with Bob, then deletes it.");
  try {
    asio::io_context io;
    const auto pause = std::chrono::milliseconds(static_cast<long long>(std::stod(options["pause"].value) * 1000));
    demo::hint_sender hints(io, options);
    demo::with_store(
        io, options, options["user"].value,
        [&](auto& store) {
          asio::co_spawn(io, act(store, options["to"].value, pause, hints), [&](std::exception_ptr error) {
            io.stop();  // done: the Redis connection of --hints would keep io.run() going
            if (!error) return;
            try {
              std::rethrow_exception(error);
            } catch (const std::system_error&) {
              throw std::runtime_error(store.last_error());  // names the file, request or argument at fault
            }
          });
          io.run();
        },
        hints.publisher());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "alice_sender: %s\n", error.what());
    return 1;
  }
}
