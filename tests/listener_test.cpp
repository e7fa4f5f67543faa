// event_listener: both handler forms, filters, order, throwing handlers,
// changes from inside handlers, stop, checkpoints (clean restart and crash),
// counters and error reporting.
#include "common/fixture.hpp"
#include "common/recording_source.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace listener_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

using name_and_data = std::pair<std::string, std::string>;

/// Options for a listener that polls once and then relies on wake-ups.
listener_options quiet_options() {
  listener_options options;
  options.poller.poll_interval = 1h;
  return options;
}

std::vector<std::string> ids_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.id);
  return out;
}

std::vector<std::string> data_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

std::vector<std::string> slice(const std::vector<std::string>& all, std::size_t from, std::size_t to) {
  return {all.begin() + static_cast<std::ptrdiff_t>(from), all.begin() + static_cast<std::ptrdiff_t>(to)};
}

/// Publishes `count` CREATE events with data `prefix0`, `prefix1`, ...; returns their ids.
std::vector<std::string> publish_numbered(memory_source& source, const std::string& prefix, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    std::string data = prefix;
    data += std::to_string(i);
    ids.push_back(source.publish("CREATE", std::move(data)));
  }
  return ids;
}

/// Stops `listener` from outside and runs `io` until it is idle.
void stop_and_drain(asio::io_context& io, event_listener& listener) {
  listener.stop();
  run_to_idle(io);
  CHECK_FALSE(listener.running());
}

/// Redirects file descriptor 2 to a file until `finish()`.
class stderr_capture {
 public:
  explicit stderr_capture(std::filesystem::path file) : file_(std::move(file)) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~stderr_capture() { restore(); }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;

  std::string finish() {
    restore();
    std::ifstream in(file_);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::filesystem::path file_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("both handler forms get every event in source order, ids are distinct, listener_count counts") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  CHECK(listener.listener_count() == 0);

  std::vector<name_and_data> by_view;
  std::vector<event> by_event;
  const auto view_id = listener.add_event_listener(
      [&](std::string_view name, std::string_view data) { by_view.emplace_back(std::string(name), std::string(data)); });
  const auto event_id = listener.add_event_listener([&](const event& e) { by_event.push_back(e); });
  CHECK(view_id != event_id);
  CHECK(listener.listener_count() == 2);

  std::vector<std::string> ids;
  ids.push_back(source.publish("CREATE", "docs/a.txt"));
  ids.push_back(source.publish("SHARE", "docs/a.txt"));
  ids.push_back(source.publish("DELETE", "docs/b.txt"));
  listener.start();
  CHECK(listener.running());
  REQUIRE(run_until(io, [&] { return by_event.size() == 3; }));
  // Published while the listener idles: the wake-up delivers them.
  ids.push_back(source.publish("UNSHARE", "docs/a.txt"));
  ids.push_back(source.publish("my.app.EVENT", "anything at all"));
  REQUIRE(run_until(io, [&] { return by_event.size() == 5 && by_view.size() == 5; }));

  const std::vector<name_and_data> expected{{"CREATE", "docs/a.txt"},
                                            {"SHARE", "docs/a.txt"},
                                            {"DELETE", "docs/b.txt"},
                                            {"UNSHARE", "docs/a.txt"},
                                            {"my.app.EVENT", "anything at all"}};
  CHECK(by_view == expected);
  std::vector<name_and_data> seen_by_event;
  for (const auto& e : by_event) seen_by_event.emplace_back(e.name, e.data);
  CHECK(seen_by_event == expected);
  CHECK(ids_of(by_event) == ids);

  // Ids are never reused, even after a removal.
  CHECK(listener.remove_event_listener(view_id));
  const auto third_id = listener.add_event_listener([](const event&) {});
  CHECK(third_id != view_id);
  CHECK(third_id != event_id);
  CHECK(listener.listener_count() == 2);

  stop_and_drain(io, listener);
  CHECK(by_event.size() == 5);
}

TEST_CASE("filters: by names, by path prefix, both, an empty filter gets everything") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());

  std::vector<event> all, by_names, by_prefix, by_both;
  listener.add_event_listener([&](const event& e) { all.push_back(e); });
  listener.add_event_listener([&](const event& e) { by_names.push_back(e); }, {.names = {"SHARE", "DELETE"}});
  listener.add_event_listener([&](const event& e) { by_prefix.push_back(e); }, {.prefix = "Shared/"});
  event_filter both;
  both.names = {"DELETE"};
  both.prefix = "Shared/";
  listener.add_event_listener([&](std::string_view, std::string_view data) { by_both.push_back(make_event("", std::string(data))); },
                              both);

  source.publish("CREATE", "Shared/a.txt");   // 0
  source.publish("SHARE", "Shared/a.txt");    // 1
  source.publish("SHARE", "Other/b.txt");     // 2
  source.publish("DELETE", "Other/b.txt");    // 3
  source.publish("DELETE", "Shared/a.txt");   // 4
  source.publish("UNSHARE", "Shared/c.txt");  // 5
  source.publish("DELETE", "SharedX/d.txt");  // 6: "Shared/" is not a prefix of "SharedX/"
  listener.start();
  REQUIRE(run_until(io, [&] { return all.size() == 7; }));

  CHECK(data_of(all) == std::vector<std::string>{"Shared/a.txt", "Shared/a.txt", "Other/b.txt", "Other/b.txt",
                                                 "Shared/a.txt", "Shared/c.txt", "SharedX/d.txt"});
  std::vector<name_and_data> names_seen;
  for (const auto& e : by_names) names_seen.emplace_back(e.name, e.data);
  CHECK(names_seen == std::vector<name_and_data>{{"SHARE", "Shared/a.txt"},
                                                 {"SHARE", "Other/b.txt"},
                                                 {"DELETE", "Other/b.txt"},
                                                 {"DELETE", "Shared/a.txt"},
                                                 {"DELETE", "SharedX/d.txt"}});
  std::vector<name_and_data> prefix_seen;
  for (const auto& e : by_prefix) prefix_seen.emplace_back(e.name, e.data);
  CHECK(prefix_seen == std::vector<name_and_data>{{"CREATE", "Shared/a.txt"},
                                                  {"SHARE", "Shared/a.txt"},
                                                  {"DELETE", "Shared/a.txt"},
                                                  {"UNSHARE", "Shared/c.txt"}});
  CHECK(data_of(by_both) == std::vector<std::string>{"Shared/a.txt"});
  stop_and_drain(io, listener);
}

TEST_CASE("each event goes to every handler in registration order before the next event") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  std::vector<std::pair<int, std::string>> sequence;
  listener.add_event_listener([&](const event& e) { sequence.emplace_back(1, e.data); });
  listener.add_event_listener([&](std::string_view, std::string_view data) { sequence.emplace_back(2, std::string(data)); });
  listener.add_event_listener([&](const event& e) { sequence.emplace_back(3, e.data); });
  publish_numbered(source, "f", 4);
  listener.start();
  REQUIRE(run_until(io, [&] { return sequence.size() == 12; }));
  std::vector<std::pair<int, std::string>> expected;
  for (int i = 0; i < 4; ++i) {
    for (int handler = 1; handler <= 3; ++handler) expected.emplace_back(handler, "f" + std::to_string(i));
  }
  CHECK(sequence == expected);
  stop_and_drain(io, listener);
}

TEST_CASE("a throwing handler is reported with the event and the exception, the others and later events go on") {
  asio::io_context io;
  memory_source source(io.get_executor());
  error_log errors;
  auto options = quiet_options();
  options.on_error = errors.handler();
  event_listener listener(io.get_executor(), source, options);

  std::vector<std::string> first, second, third;
  listener.add_event_listener([&](const event& e) {
    first.push_back(e.data);
    if (e.data == "Shared/b.txt") throw std::runtime_error("disk full while indexing");
  });
  listener.add_event_listener([&](std::string_view, std::string_view data) {
    second.emplace_back(data);
    if (data == "Shared/c.txt") throw 42;
  });
  listener.add_event_listener([&](const event& e) { third.push_back(e.data); });

  source.publish("CREATE", "Shared/a.txt");
  const auto b_id = source.publish("SHARE", "Shared/b.txt");
  const auto c_id = source.publish("DELETE", "Shared/c.txt");
  source.publish("CREATE", "Shared/d.txt");
  listener.start();
  REQUIRE(run_until(io, [&] { return third.size() == 4; }));

  const std::vector<std::string> expected{"Shared/a.txt", "Shared/b.txt", "Shared/c.txt", "Shared/d.txt"};
  CHECK(first == expected);
  CHECK(second == expected);
  CHECK(third == expected);

  REQUIRE(errors.entries.size() == 2);
  CHECK(errors.entries[0].first == errc::handler_failed);
  CHECK_THAT(errors.entries[0].second, Catch::Contains("SHARE") && Catch::Contains("Shared/b.txt") &&
                                           Catch::Contains("disk full while indexing") && Catch::Contains(b_id));
  CHECK(errors.entries[1].first == errc::handler_failed);
  CHECK_THAT(errors.entries[1].second, Catch::Contains("DELETE") && Catch::Contains("Shared/c.txt") &&
                                           Catch::Contains("not derived from std::exception") &&
                                           Catch::Contains(c_id));
  const auto s = listener.stats();
  CHECK(s.handler_errors == 2);
  CHECK(s.delivered == 4);
  CHECK(listener.running());
  stop_and_drain(io, listener);
}

TEST_CASE("without on_error, a throwing handler costs one line on stderr and delivery goes on") {
  temp_dir dir;
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  std::vector<std::string> got;
  listener.add_event_listener([&](const event& e) {
    got.push_back(e.data);
    if (got.size() == 1) throw std::logic_error("handler bug");
  });
  source.publish("CREATE", "a.txt");
  source.publish("CREATE", "b.txt");
  std::string printed;
  {
    stderr_capture capture(dir.path() / "stderr.txt");
    listener.start();
    const bool delivered = run_until(io, [&] { return got.size() == 2; });
    printed = capture.finish();
    REQUIRE(delivered);
  }
  INFO("stderr: " << printed);
  CHECK(std::count(printed.begin(), printed.end(), '\n') == 1);
  CHECK_THAT(printed, Catch::StartsWith("storewatch: ") && Catch::Contains("handler bug") && Catch::Contains("a.txt"));
  CHECK(listener.stats().handler_errors == 1);
  stop_and_drain(io, listener);
}

TEST_CASE("a handler that removes itself gets no further events") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  std::vector<std::string> quitter, witness;
  listener_id quitter_id = 0;
  quitter_id = listener.add_event_listener([&](const event& e) {
    quitter.push_back(e.data);
    if (quitter.size() == 2) CHECK(listener.remove_event_listener(quitter_id));
  });
  listener.add_event_listener([&](const event& e) { witness.push_back(e.data); });
  publish_numbered(source, "f", 5);
  listener.start();
  REQUIRE(run_until(io, [&] { return witness.size() == 5; }));
  CHECK(quitter == std::vector<std::string>{"f0", "f1"});
  CHECK(listener.listener_count() == 1);
  // Later events, published after the removal, do not reach it either.
  source.publish("CREATE", "f5");
  REQUIRE(run_until(io, [&] { return witness.size() == 6; }));
  CHECK(quitter.size() == 2);
  stop_and_drain(io, listener);
}

TEST_CASE("a later handler removed during event k still gets event k, and none after") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  std::vector<std::string> remover, removed, witness;
  listener_id removed_id = 0;
  listener.add_event_listener([&](const event& e) {
    remover.push_back(e.data);
    if (e.data == "f1") CHECK(listener.remove_event_listener(removed_id));
  });
  removed_id = listener.add_event_listener([&](const event& e) { removed.push_back(e.data); });
  listener.add_event_listener([&](const event& e) { witness.push_back(e.data); });
  publish_numbered(source, "f", 4);
  listener.start();
  REQUIRE(run_until(io, [&] { return witness.size() == 4; }));
  CHECK(remover == std::vector<std::string>{"f0", "f1", "f2", "f3"});
  CHECK(removed == std::vector<std::string>{"f0", "f1"});  // the change applies from the next event
  CHECK(witness == std::vector<std::string>{"f0", "f1", "f2", "f3"});
  CHECK(listener.listener_count() == 2);
  stop_and_drain(io, listener);
}

TEST_CASE("a handler added during event k first gets event k+1") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  std::vector<std::string> adder, added;
  listener.add_event_listener([&](const event& e) {
    adder.push_back(e.data);
    if (e.data == "f1") listener.add_event_listener([&](const event& later) { added.push_back(later.data); });
  });
  publish_numbered(source, "f", 4);
  listener.start();
  REQUIRE(run_until(io, [&] { return adder.size() == 4 && added.size() == 2; }));
  CHECK(added == std::vector<std::string>{"f2", "f3"});
  CHECK(listener.listener_count() == 2);
  stop_and_drain(io, listener);
  CHECK(adder.size() == 4);
  CHECK(added.size() == 2);
}

TEST_CASE("remove_all_event_listeners from inside a handler: event k finishes, nothing after") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  std::vector<std::string> first, second;
  listener.add_event_listener([&](const event& e) {
    first.push_back(e.data);
    if (e.data == "f2") listener.remove_all_event_listeners();
  });
  listener.add_event_listener([&](const event& e) { second.push_back(e.data); });
  publish_numbered(source, "f", 5);
  listener.start();
  // `delivered` counts events the listener took; handlers run right after.
  REQUIRE(run_until(io, [&] { return listener.stats().delivered == 5; }));
  CHECK(first == std::vector<std::string>{"f0", "f1", "f2"});
  CHECK(second == std::vector<std::string>{"f0", "f1", "f2"});
  CHECK(listener.listener_count() == 0);

  // The listener still runs: a handler added now gets new events.
  std::vector<std::string> newcomer;
  listener.add_event_listener([&](const event& e) { newcomer.push_back(e.data); });
  source.publish("CREATE", "f5");
  REQUIRE(run_until(io, [&] { return newcomer.size() == 1; }));
  CHECK(newcomer == std::vector<std::string>{"f5"});
  CHECK(first.size() == 3);
  CHECK(second.size() == 3);
  stop_and_drain(io, listener);
}

TEST_CASE("a removed handler is destroyed when the removal returns, not kept until the next event") {
  // What a handler holds (a socket, a file, a reference to an object about
  // to go) must go with it while the listener waits for events.
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source, quiet_options());
  auto first = std::make_shared<int>(1), second = std::make_shared<int>(2);
  const std::weak_ptr<int> first_held = first, second_held = second;
  int calls = 0;
  const auto id = listener.add_event_listener([held = std::move(first), &calls](const event&) { ++calls; });
  listener.add_event_listener([held = std::move(second), &calls](const event&) { ++calls; });
  publish_numbered(source, "f", 1);
  listener.start();
  REQUIRE(run_until(io, [&] { return calls == 2; }));
  io.poll();  // the delivery loop now waits for the next event
  REQUIRE_FALSE(first_held.expired());
  CHECK(listener.remove_event_listener(id));
  CHECK(first_held.expired());
  REQUIRE_FALSE(second_held.expired());
  listener.remove_all_event_listeners();
  CHECK(second_held.expired());
  stop_and_drain(io, listener);
}

TEST_CASE("a handler removed while the listener yields between runs of buffered events is destroyed when the "
          "removal returns") {
  // 200 buffered events: the delivery loop yields to the executor every 64;
  // the removal runs in the first yield, posted by the other handler.
  asio::io_context io;
  memory_source source(io.get_executor());
  publish_numbered(source, "f", 200);
  event_listener listener(io.get_executor(), source, quiet_options());
  auto held = std::make_shared<int>(1);
  const std::weak_ptr<int> watch = held;
  const auto victim = listener.add_event_listener([held = std::move(held)](const event&) {});
  int delivered = 0;
  std::optional<int> removed_after;  // events delivered when the removal ran
  bool gone_at_removal = false;
  listener.add_event_listener([&](const event&) {
    const int count = ++delivered;
    asio::post(io, [&, count] {
      // Only in a yield: the next event was not delivered before this ran.
      if (removed_after || delivered != count) return;
      removed_after = count;
      CHECK(listener.remove_event_listener(victim));
      gone_at_removal = watch.expired();
    });
  });
  listener.start();
  REQUIRE(run_until(io, [&] { return delivered == 200; }));
  REQUIRE(removed_after.has_value());
  INFO("removed after event " << *removed_after);
  CHECK(*removed_after < 200);
  CHECK(gone_at_removal);
  stop_and_drain(io, listener);
}

TEST_CASE("remove_event_listener returns false for an id it does not know") {
  asio::io_context io;
  memory_source source(io.get_executor());
  event_listener listener(io.get_executor(), source);
  CHECK_FALSE(listener.remove_event_listener(1));
  const auto id = listener.add_event_listener([](const event&) {});
  CHECK_FALSE(listener.remove_event_listener(id + 1000));
  CHECK(listener.listener_count() == 1);
  CHECK(listener.remove_event_listener(id));
  CHECK_FALSE(listener.remove_event_listener(id));
  CHECK(listener.listener_count() == 0);
}

TEST_CASE("stop() with a 5 s poll interval returns the io_context to idle in well under a second") {
  asio::io_context io;
  memory_source source(io.get_executor());
  listener_options options;
  options.poller.poll_interval = 5s;
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e.data); });
  publish_numbered(source, "f", 3);
  listener.start();
  REQUIRE(run_until(io, [&] { return got.size() == 3; }));
  io.poll();  // let the poller settle into its wait
  CHECK(listener.running());
  listener.stop();
  const auto took = run_to_idle(io);
  CHECK(took < 500ms);
  CHECK_FALSE(listener.running());
  CHECK(got == std::vector<std::string>{"f0", "f1", "f2"});
}

TEST_CASE("stop() from inside a handler: no later event reaches a handler, and io_context::run returns") {
  asio::io_context io;
  memory_source source(io.get_executor());
  listener_options options;
  options.poller.poll_interval = 5s;
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> got, after_stopper;
  listener.add_event_listener([&](const event& e) {
    got.push_back(e.data);
    if (e.data == "f2") {
      listener.stop();
      CHECK(listener.running());  // it ends once this event has been handled
    }
  });
  listener.add_event_listener([&](const event& e) { after_stopper.push_back(e.data); });
  publish_numbered(source, "f", 6);
  listener.start();
  const auto took = run_to_idle(io);
  CHECK(took < 5s);  // not the poll interval: the stop ended the wait
  CHECK_FALSE(listener.running());
  CHECK(got == std::vector<std::string>{"f0", "f1", "f2"});
  CHECK(after_stopper == std::vector<std::string>{"f0", "f1", "f2"});  // event k still completes
  // Three events reached the handlers; the counter must say so.
  CHECK(listener.stats().delivered == 3);
  listener.stop();  // a second stop is harmless
  run_to_idle(io);
}

TEST_CASE("a listener restarted from its checkpoint delivers every event exactly once, in order") {
  temp_dir dir;
  const auto file = dir.path() / "listener.checkpoint";
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "e1"});
  constexpr std::size_t total = 50;
  constexpr std::size_t stop_after = 23;  // 3 batches of 7, then 2 into the 4th
  auto ids = publish_numbered(source, "f", static_cast<int>(total));
  const auto options = [&] {
    auto o = quiet_options();
    o.poller.batch_size = 7;
    o.capacity = 4;
    o.checkpoint = file;
    return o;
  };

  std::vector<std::string> got_a;
  {
    event_listener a(io.get_executor(), source, options());
    a.add_event_listener([&](const event& e) {
      got_a.push_back(e.id);
      if (got_a.size() == stop_after) a.stop();
    });
    a.start();
    run_to_idle(io);
    CHECK_FALSE(a.running());
    CHECK(got_a == slice(ids, 0, stop_after));
    REQUIRE(a.saved_checkpoint());
    CHECK(a.saved_checkpoint()->unsaved() == 0);  // saved on stop
  }

  const auto saved = *load_checkpoint(file);
  // Stopped mid-batch: the cursor after the 3rd batch, and the ids delivered past it.
  CHECK(saved.cursor == "e1:21");
  CHECK(saved.delivered_ids == slice(ids, 21, stop_after));

  std::vector<std::string> got_b;
  {
    event_listener b(io.get_executor(), source, options());
    b.add_event_listener([&](const event& e) { got_b.push_back(e.id); });
    b.start();
    REQUIRE(run_until(io, [&] { return got_b.size() >= total - stop_after; }));
    io.poll();
    stop_and_drain(io, b);
    CHECK(b.stats().duplicates == saved.delivered_ids.size());
    CHECK(b.stats().duplicates > 0);
    CHECK(b.stats().gaps == 0);
  }
  auto all = got_a;
  all.insert(all.end(), got_b.begin(), got_b.end());
  CHECK(all == ids);

  const auto after_b = *load_checkpoint(file);
  CHECK(after_b.cursor == "e1:50");
  CHECK(after_b.delivered_ids.empty());

  // A third listener from the same checkpoint gets only what is new.
  std::vector<std::string> got_c;
  event_listener c(io.get_executor(), source, options());
  c.add_event_listener([&](const event& e) { got_c.push_back(e.id); });
  c.start();
  REQUIRE(run_until(io, [&] { return c.stats().polls >= 1; }));
  io.poll();
  CHECK(got_c.empty());
  const auto new_id = source.publish("CREATE", "f50");
  REQUIRE(run_until(io, [&] { return !got_c.empty(); }));
  io.poll();
  stop_and_drain(io, c);
  CHECK(got_c == std::vector<std::string>{new_id});
  CHECK(c.stats().duplicates == 0);
}

TEST_CASE("clean restarts over a journal whose polls do not reach every writer: an event delivered before "
          "a restart is never delivered again") {
  // A journal cursor holds a position per writer and a batch is filled from
  // the first writers; the ids a checkpoint lists past its cursor must
  // survive a later checkpoint whose cursor has not reached them.
  temp_dir dir;
  const auto file = dir.path() / "bob.checkpoint";
  asio::io_context io;
  local_store one(io.get_executor(), dir.path(), "alice222");
  local_store two(io.get_executor(), dir.path(), "alice222");
  one.publish_event("NOTE", "probe", {"bob123"});
  const auto b_id = two.publish_event("NOTE", "probe", {"bob123"}).front();
  // The journal reads writer slots in name order; `one` wrote first, so it took w0.
  local_store& first = one;
  local_store& second = two;
  const auto publish = [](local_store& store, const std::string& data) {
    return store.publish_event("NOTE", data, {"bob123"}).front();
  };
  const auto s0 = publish(second, "s0");
  publish(second, "s1");
  local_store bob(io.get_executor(), dir.path(), "bob123");
  auto options = quiet_options();
  options.poller.batch_size = 4;
  options.checkpoint = file;
  options.checkpoint_every = 1;
  // Runs a listener from the checkpoint until a handler has seen `last`
  // (then stops it from inside the handler); returns the data delivered.
  const auto run = [&](const std::string& last) {
    auto source = bob.events();
    event_listener listener(io.get_executor(), source, options);
    std::vector<std::string> got;
    listener.add_event_listener([&](const event& e) {
      got.push_back(e.data);
      if (e.data == last) listener.stop();
    });
    listener.start();
    run_to_idle(io);
    return got;
  };
  CHECK(run("s0") == std::vector<std::string>{"probe", "probe", "s0"});
  for (int i = 1; i <= 8; ++i) publish(first, "f" + std::to_string(i));
  // One batch of the first writer: its probe (a repeat) and f1-f3.
  CHECK(run("f3") == std::vector<std::string>{"f1", "f2", "f3"});
  // Past the new cursor: the second writer's probe and s0, delivered by the first run.
  auto pending = load_checkpoint(file)->delivered_ids;
  std::sort(pending.begin(), pending.end());
  CHECK(pending == std::vector<std::string>{b_id, s0});
  CHECK(run("s1") == std::vector<std::string>{"f4", "f5", "f6", "f7", "f8", "s1"});
}

TEST_CASE("after a crash, the events repeated from the checkpoint are at most checkpoint_every, with the same ids") {
  temp_dir dir;
  const auto file = dir.path() / "listener.checkpoint";
  const auto crash_copy = dir.path() / "crashed.checkpoint";
  asio::io_context io;
  memory_source source(io.get_executor(), {.epoch = "e2"});
  constexpr std::size_t total = 30;
  constexpr std::size_t every = 5;
  constexpr std::size_t crash_after = 12;
  const auto ids = publish_numbered(source, "f", static_cast<int>(total));

  std::vector<std::string> got_a;
  std::int64_t behind = 0;
  {
    auto options = quiet_options();
    options.capacity = 64;  // the whole backlog fits: the handlers stay behind the poller
    options.checkpoint = file;
    options.checkpoint_every = every;
    event_listener a(io.get_executor(), source, options);
    a.add_event_listener([&](const event& e) {
      got_a.push_back(e.id);
      if (got_a.size() == crash_after) {
        // What a crash right after this delivery would leave on disk.
        behind = a.stats().queue_depth;
        if (std::filesystem::exists(file)) std::filesystem::copy_file(file, crash_copy);
        a.stop();
      }
    });
    a.start();
    run_to_idle(io);
  }
  CHECK(behind > 0);  // the consumer was behind, so only checkpoint_every forced saves
  REQUIRE(got_a == slice(ids, 0, crash_after));

  std::vector<std::string> got_b;
  std::size_t ids_in_copy = 0;
  {
    auto options = quiet_options();
    options.checkpoint = crash_copy;
    event_listener b(io.get_executor(), source, options);
    REQUIRE(b.saved_checkpoint());
    ids_in_copy = b.saved_checkpoint()->state().delivered_ids.size();
    b.add_event_listener([&](const event& e) { got_b.push_back(e.id); });
    b.start();
    REQUIRE(run_until(io, [&] { return !got_b.empty() && got_b.back() == ids.back(); }));
    io.poll();
    stop_and_drain(io, b);
    CHECK(b.stats().duplicates == ids_in_copy);
  }
  // B resumes somewhere in A's deliveries and goes to the end, in order.
  REQUIRE(got_b.size() <= total);
  const auto resumed_at = total - got_b.size();
  CHECK(got_b == slice(ids, resumed_at, total));
  // Every event at least once; the repeats are A's last ones, with the same ids.
  CHECK(resumed_at <= crash_after);
  const auto repeats = crash_after - resumed_at;
  INFO("repeated " << repeats << " events");
  CHECK(repeats >= 1);  // the event being handled at the crash was not yet saved
  CHECK(repeats <= every);
  CHECK(slice(got_a, resumed_at, crash_after) == slice(got_b, 0, repeats));
}

TEST_CASE("a corrupt checkpoint file makes the constructor throw invalid_cursor naming the file") {
  temp_dir dir;
  asio::io_context io;
  memory_source source(io.get_executor());
  const auto check_rejected = [&](const std::string& name, const std::string& content) {
    const auto file = dir.path() / name;
    {
      std::ofstream out(file, std::ios::binary);
      out << content;
    }
    auto options = quiet_options();
    options.checkpoint = file;
    INFO("checkpoint content: " << content);
    try {
      event_listener listener(io.get_executor(), source, options);
      FAIL("the listener accepted a corrupt checkpoint");
    } catch (const std::system_error& error) {
      CHECK(error.code() == errc::invalid_cursor);
      CHECK_THAT(error.what(), Catch::Contains(file.string()));
    }
  };
  check_rejected("syntax.checkpoint", "{\"format\": 1, \"cursor\": ");
  check_rejected("garbage.checkpoint", std::string("\x00\xff\x13garbage", 10));
  check_rejected("wrong-type.checkpoint", R"({"format": 1, "cursor": 7, "delivered_after_cursor": []})");
  check_rejected("future-format.checkpoint", R"({"format": 2, "cursor": "", "delivered_after_cursor": []})");
  CHECK(io.poll() == 0);  // nothing was started
}

TEST_CASE("the listener's counters: delivered, poll errors and retries, all events arrive despite failed polls") {
  asio::io_context io;
  memory_source source(io.get_executor());
  error_log errors;
  auto options = quiet_options();
  options.poller.backoff = {.initial = 1ms, .max = 5ms};
  options.on_error = errors.handler();
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e.data); });
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back("f" + std::to_string(i));
  publish_numbered(source, "f", 10);
  source.fail_next_polls(2);
  listener.start();
  REQUIRE(run_until(io, [&] { return got.size() == 10; }));
  CHECK(got == expected);
  auto s = listener.stats();
  CHECK(s.delivered == 10);
  CHECK(s.enqueued == 10);
  CHECK(s.queue_depth == 0);
  CHECK(s.poll_errors == 2);
  CHECK(s.retries == 2);
  CHECK(s.polls >= 1);
  CHECK(s.handler_errors == 0);
  CHECK(s.duplicates == 0);

  source.publish("CREATE", "f10");
  REQUIRE(run_until(io, [&] { return got.size() == 11; }));
  CHECK(listener.stats().delivered == 11);
  stop_and_drain(io, listener);
  CHECK(listener.stats().delivered == 11);
}

TEST_CASE("poll failures reach the listener's on_error") {
  asio::io_context io;
  memory_source source(io.get_executor());
  error_log errors;
  auto options = quiet_options();
  options.poller.backoff = {.initial = 1ms, .max = 5ms};
  bool poller_handler_called = false;
  options.poller.on_error = [&](std::error_code, std::string_view) { poller_handler_called = true; };  // replaced
  options.on_error = errors.handler();
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e.data); });
  source.publish("CREATE", "a.txt");
  source.fail_next_polls(3, make_error_code(std::errc::host_unreachable));
  listener.start();
  REQUIRE(run_until(io, [&] { return got.size() == 1; }));
  REQUIRE(errors.entries.size() == 3);
  for (const auto& [ec, message] : errors.entries) {
    CHECK(ec == std::errc::host_unreachable);
    CHECK_THAT(message, Catch::Contains("poll failed") && Catch::Contains("retrying in"));
  }
  CHECK_THAT(errors.entries[2].second, Catch::Contains("3 in a row"));
  CHECK_FALSE(poller_handler_called);
  CHECK(listener.stats().poll_errors == 3);
  stop_and_drain(io, listener);
}

TEST_CASE("a listener with a new checkpoint file makes its start durable before start() returns: killed before its "
          "first event, it resumes with exactly the events published since") {
  temp_dir dir;
  const auto file = dir.path() / "bob.checkpoint";
  const auto at_kill = dir.path() / "killed.checkpoint";
  asio::io_context io;
  local_store alice(io.get_executor(), dir.path(), "alice222");
  local_store bob(io.get_executor(), dir.path(), "bob123");
  const auto publish = [&](const std::string& data) { alice.publish_event("NOTE", data, {"bob123"}); };
  for (int i = 0; i < 3; ++i) publish("before" + std::to_string(i));
  auto source = bob.events();
  const auto journal_end = [&] {
    auto cursor = source.poll("", 100000).next_cursor;
    REQUIRE_FALSE(cursor.empty());
    return cursor;
  };
  auto options = quiet_options();
  options.checkpoint = file;
  options.start_cursor = journal_end();  // a tail: start at the end as it is now
  {
    event_listener first(io.get_executor(), source, options);
    first.start();
    // A SIGKILL right now, before any event: what is on disk is all a restart has.
    REQUIRE(std::filesystem::exists(file));
    std::filesystem::copy_file(file, at_kill);
    first.stop();
    run_to_idle(io);
  }
  CHECK(load_checkpoint(at_kill)->cursor == options.start_cursor);

  publish("missed0");
  publish("missed1");
  options.checkpoint = at_kill;
  options.start_cursor = journal_end();  // ignored: the checkpoint exists
  std::vector<std::string> got;
  event_listener second(io.get_executor(), source, options);
  second.add_event_listener([&](const event& e) { got.push_back(e.data); });
  second.start();
  REQUIRE(run_until(io, [&] { return got.size() >= 2; }));
  io.poll();
  stop_and_drain(io, second);
  CHECK(got == std::vector<std::string>{"missed0", "missed1"});
}

TEST_CASE("a GAP delivered before a clean restart is not delivered again: its id comes from what it reports") {
  temp_dir dir;
  const auto file = dir.path() / "bob.checkpoint";
  asio::io_context io;
  local_store alice(io.get_executor(), dir.path(), "alice222", local_store_options{.segment_bytes = 1024});
  local_store bob(io.get_executor(), dir.path(), "bob123");
  const auto publish = [&](int from, int to) {
    for (int i = from; i < to; ++i) alice.publish_event("NOTE", "e" + std::to_string(i), {"bob123"});
  };
  auto options = quiet_options();
  options.checkpoint = file;
  options.checkpoint_every = 1;
  // Runs a listener from the checkpoint until `last(event)` (then stops it
  // from inside the handler); returns what it delivered.
  const auto run = [&](const std::function<bool(const event&)>& last) {
    auto source = bob.events();
    event_listener listener(io.get_executor(), source, options);
    std::vector<event> got;
    listener.add_event_listener([&](const event& e) {
      got.push_back(e);
      if (last(e)) listener.stop();
    });
    listener.start();
    run_to_idle(io);
    return got;
  };
  publish(0, 3);
  CHECK(data_of(run([](const event& e) { return e.data == "e2"; })) == std::vector<std::string>{"e0", "e1", "e2"});
  publish(3, 60);  // several segments; all but the newest are then removed
  REQUIRE(detail::compact_journal(dir.path() / "journals" / "bob123",
                                  std::filesystem::file_time_type::clock::now() + 1h) > 0);
  // Stopped right after the GAP, the first event of a batch: the checkpoint
  // keeps the old cursor and lists the GAP's id as delivered.
  const auto second = run([](const event& e) { return e.name == event_name::gap; });
  REQUIRE(second.size() == 1);
  CHECK(load_checkpoint(file)->delivered_ids == std::vector<std::string>{second[0].id});
  const auto third = run([](const event& e) { return e.data == "e59"; });
  REQUIRE_FALSE(third.empty());
  CHECK(third.back().data == "e59");
  for (const auto& e : third) CHECK(e.name != event_name::gap);
}

TEST_CASE("a listener lets other work on its executor run at least every 65 buffered events") {
  asio::io_context io;
  memory_source source(io.get_executor());
  constexpr int total = 300;
  const auto ids = publish_numbered(source, "f", total);
  event_listener listener(io.get_executor(), source, quiet_options());
  // A handler that re-posts itself counts the executor's turns for others.
  std::size_t ticks = 0;
  bool ticking = true;
  std::function<void()> tick = [&] {
    ++ticks;
    if (ticking) asio::post(io, tick);
  };
  asio::post(io, tick);
  std::vector<std::string> got;
  std::size_t run = 0;
  std::size_t longest_run = 0;
  std::size_t ticks_seen = 0;
  listener.add_event_listener([&](const event& e) {
    got.push_back(e.id);
    if (ticks != ticks_seen) {
      ticks_seen = ticks;
      run = 0;
    }
    longest_run = std::max(longest_run, ++run);
  });
  listener.start();
  REQUIRE(run_until(io, [&] { return got.size() == total; }));
  ticking = false;
  CHECK(got == ids);
  CHECK(longest_run <= 65);
  stop_and_drain(io, listener);
}

}  // namespace listener_test
