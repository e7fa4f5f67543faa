// local_store's own tests: the durable on-disk shape, the async wrappers,
// wake-ups and network file systems. What every store must do (the
// semantics table, selection, reading and listing, validation, two writers,
// the journal as a listener's source) is in store_suite_test.cpp, which
// runs against local_store too; the randomized access model is in
// access_model_test.cpp.
#include "common/fixture.hpp"
#include "common/store.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace local_store_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// Every event of `store`'s user's journal, from the start.
std::vector<event> all_events(const local_store& store) { return journal_reader(store).take(); }

}  // namespace

TEST_CASE("durable shape: after create_file the version file is in place and no temporary is left") {
  asio::io_context io;
  temp_dir dir;
  local_store alice(io.get_executor(), dir.path(), "alice222");
  local_store bob(io.get_executor(), dir.path(), "bob123");
  const auto temporaries = [&] {
    std::vector<std::string> found;
    for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
      const auto name = entry.path().filename().string();
      if (name.find(".storewatch-") != std::string::npos || name.ends_with(".tmp")) {
        found.push_back(entry.path().string());
      }
    }
    return found;
  };
  const auto deep = alice.create_file("docs/deep/x.txt", "deep bytes");
  {
    const auto file = dir.path() / "versions" / "alice222" / deep.to_string();
    CHECK(file.parent_path() == dir.path() / "versions" / "alice222" / "docs" / "deep");
    INFO(file);
    REQUIRE(fs::is_regular_file(file));
    std::ifstream in(file, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()) == "deep bytes");
    CHECK(temporaries().empty());
  }
  const auto top = alice.create_file("top.txt", std::string(100000, 'z'));
  CHECK(fs::file_size(dir.path() / "versions" / "alice222" / top.to_string()) == 100000);
  CHECK(temporaries().empty());
  for (int i = 0; i < 20; ++i) alice.create_file("top.txt", "again");
  const auto empty = bob.create_file("bob.txt", "");
  alice.share_files(chosen("", true), {"bob123"}, true);
  alice.publish_event("note", "x", {"bob123", "carol"});
  alice.delete_files(chosen("docs/", true));
  CHECK(temporaries().empty());
  CHECK_FALSE(fs::exists(dir.path() / "versions" / "alice222" / deep.to_string()));
  CHECK(fs::is_regular_file(dir.path() / "versions" / "bob123" / empty.to_string()));
  CHECK(bob.read_file(empty).empty());
}

TEST_CASE("async wrappers: use_awaitable, plain callbacks completed later, errors with last_error") {
  asio::io_context io;
  temp_dir dir;
  local_store alice(io.get_executor(), dir.path(), "alice222");
  local_store bob(io.get_executor(), dir.path(), "bob123");

  SECTION("use_awaitable: every operation, and an error thrown as std::system_error") {
    struct outcome {
      versioned_path created;
      std::vector<versioned_path> shared, unshared, deleted, listed;
      std::string read_by_bob;
      std::vector<std::string> ids;
      failure denied;
      bool done = false;
    } out;
    const auto script = [&]() -> asio::awaitable<void> {
      std::string path = "async/a.txt";
      std::string bytes = "async bytes";
      auto create = alice.async_create_file(std::move(path), std::move(bytes), asio::use_awaitable);
      out.created = co_await std::move(create);
      std::vector<std::string> with_bob(1, "bob123");
      auto share = alice.async_share_files(chosen("async/", true), with_bob, asio::use_awaitable);
      out.shared = co_await std::move(share);
      auto read = bob.async_read_file(out.created, asio::use_awaitable);
      out.read_by_bob = co_await std::move(read);
      std::string prefix = "async";
      auto list = bob.async_list_files(std::move(prefix), true, asio::use_awaitable);
      out.listed = co_await std::move(list);
      auto unshare = alice.async_unshare_files(chosen("async/a.txt", false), with_bob, asio::use_awaitable);
      out.unshared = co_await std::move(unshare);
      auto read_again = bob.async_read_file(out.created, asio::use_awaitable);
      try {
        co_await std::move(read_again);
      } catch (const std::system_error& error) {
        out.denied = {error.code(), error.what()};
      }
      std::string name = "note";
      std::string data = "hello";
      auto publish = alice.async_publish_event(std::move(name), std::move(data), with_bob, asio::use_awaitable);
      out.ids = co_await std::move(publish);
      auto remove = alice.async_delete_files(chosen("", true), asio::use_awaitable);
      out.deleted = co_await std::move(remove);
      out.done = true;
    };
    asio::co_spawn(io, script(), [](std::exception_ptr error) {
      if (error) std::rethrow_exception(error);
    });
    REQUIRE(run_until(io, [&] { return out.done; }));
    CHECK(out.created.path == "async/a.txt");
    CHECK(texts_of(out.shared) == std::vector<std::string>{text(out.created)});
    CHECK(out.read_by_bob == "async bytes");
    CHECK(texts_of(out.listed) == std::vector<std::string>{text(out.created)});
    CHECK(texts_of(out.unshared) == std::vector<std::string>{text(out.created)});
    CHECK(out.denied.code == errc::permission_denied);
    CHECK(out.ids.size() == 1);
    CHECK(texts_of(out.deleted) == std::vector<std::string>{text(out.created)});
    CHECK(names_of(all_events(bob)) == std::vector<std::string>{"SHARE", "UNSHARE", "note"});
    CHECK(names_of(all_events(alice)) == std::vector<std::string>{"CREATE", "DELETE"});
  }

  SECTION("a plain callback is never called inside the initiating function") {
    bool called = false;
    std::error_code result_ec = make_error_code(errc::stopped);
    versioned_path result;
    alice.async_create_file("cb.txt", "callback", [&](std::error_code ec, versioned_path v) {
      called = true;
      result_ec = ec;
      result = std::move(v);
    });
    CHECK_FALSE(called);
    REQUIRE(run_until(io, [&] { return called; }));
    CHECK_FALSE(result_ec);
    CHECK(result.path == "cb.txt");
    CHECK(alice.read_file(result) == "callback");

    bool listed = false;
    std::vector<versioned_path> found;
    alice.async_list_files("", true, [&](std::error_code ec, std::vector<versioned_path> v) {
      CHECK_FALSE(ec);
      found = std::move(v);
      listed = true;
    });
    CHECK_FALSE(listed);
    REQUIRE(run_until(io, [&] { return listed; }));
    CHECK(texts_of(found) == std::vector<std::string>{text(result)});
  }

  SECTION("an error: ec set, an empty result, last_error names the argument") {
    bool called = false;
    std::error_code result_ec;
    alice.async_create_file("../escape.txt", "x", [&](std::error_code ec, versioned_path v) {
      called = true;
      result_ec = ec;
      CHECK(v.path.empty());
    });
    CHECK_FALSE(called);
    REQUIRE(run_until(io, [&] { return called; }));
    CHECK(result_ec == errc::invalid_path);
    CHECK_THAT(alice.last_error(), Catch::Contains("\"../escape.txt\""));

    called = false;
    alice.async_share_files(chosen("", true), {"bob 1"}, [&](std::error_code ec, std::vector<versioned_path>) {
      called = true;
      result_ec = ec;
    });
    REQUIRE(run_until(io, [&] { return called; }));
    CHECK(result_ec == errc::invalid_user);
    CHECK_THAT(alice.last_error(), Catch::Contains("\"bob 1\""));

    called = false;
    alice.async_publish_event("bad name", "x", {"bob123"}, [&](std::error_code ec, std::vector<std::string> ids) {
      called = true;
      result_ec = ec;
      CHECK(ids.empty());
    });
    REQUIRE(run_until(io, [&] { return called; }));
    CHECK(result_ec == errc::invalid_event_name);
    CHECK_THAT(alice.last_error(), Catch::Contains("\"bad name\""));
    CHECK(all_events(alice).empty());
    CHECK(all_events(bob).empty());
  }
}

TEST_CASE("wake-ups off (or a network file system): the listener polls at its interval and says so once") {
  asio::io_context io;
  temp_dir dir;
  local_store alice(io.get_executor(), dir.path(), "alice222");
  local_store bob(io.get_executor(), dir.path(), "bob123");
  auto source = bob.events({.wake_ups = false});
  listener_options options;
  options.poller.poll_interval = 10ms;
  std::vector<std::string> errors;
  options.on_error = [&](std::error_code, std::string_view message) { errors.emplace_back(message); };
  event_listener listener(io.get_executor(), source, options);
  std::vector<event> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e); });
  listener.start();
  for (int i = 0; i < 5; ++i) alice.publish_event("NOTE", std::to_string(i), {"bob123"});
  REQUIRE(run_until(io, [&] { return got.size() == 5; }));
  const auto polls = listener.stats().polls;
  REQUIRE(run_until(io, [&] { return listener.stats().polls >= polls + 5; }));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::Matchers::Contains("polling every 10 ms") &&
                            Catch::Matchers::Contains("wake-ups unavailable"));
  CHECK_THAT(source.last_error(), Catch::Matchers::Contains((dir.path() / "journals" / "bob123").string()));
  listener.stop();
  run_to_idle(io);
}

TEST_CASE("network file systems are recognised by their statfs magic numbers, a temp folder is local") {
  CHECK(detail::network_file_system_name(0x6969) == "nfs");
  CHECK(detail::network_file_system_name(0xFF534D42) == "cifs");
  CHECK(detail::network_file_system_name(0x65735546) == "fuse");
  CHECK_FALSE(detail::network_file_system_name(0xEF53));      // ext4
  CHECK_FALSE(detail::network_file_system_name(0x01021994));  // tmpfs
  temp_dir dir;
  CHECK_FALSE(detail::network_file_system(dir.path()));
}

}  // namespace local_store_test
