// local_store_options::blocking_executor and
// journal_source_options::blocking_executor: the blocking part of store
// operations and journal polls runs on an executor the user owns (here an
// asio::thread_pool), while the io_context serves other work; completions
// still come through the io_context, in order, exactly once.
//
// "Blocking" is made observable through the system-call seam: a held call
// waits (with a generous bound) until a timer on the io_context releases it,
// which can only happen if the io_context's thread is free meanwhile.
#include "common/faults.hpp"
#include "common/fixture.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace blocking_executor_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

/// Holds the first `what` call on a path containing `path_part` until
/// `release()` (or `generous` passes), noting the thread it was made on.
class held_call final : public detail::sys::fault_injector {
 public:
  held_call(fault_call what, std::string path_part) : what_(what), path_part_(std::move(path_part)) {
    detail::sys::injector.store(this, std::memory_order_release);
  }
  ~held_call() override {
    release();
    detail::sys::injector.store(nullptr, std::memory_order_release);
  }
  held_call(const held_call&) = delete;
  held_call& operator=(const held_call&) = delete;

  detail::sys::verdict decide(fault_call what, const char* path) override {
    if (what != what_ || std::string_view(path).find(path_part_) == std::string_view::npos) return {};
    std::unique_lock lock(mutex_);
    if (held_) return {};
    held_ = true;
    thread_ = std::this_thread::get_id();
    released_in_time_ = changed_.wait_for(lock, generous, [this] { return released_; });
    return {};
  }

  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

  bool held() const {
    std::lock_guard lock(mutex_);
    return held_;
  }
  /// The held call waited until release(), not until the bound.
  bool released_in_time() const {
    std::lock_guard lock(mutex_);
    return released_in_time_;
  }
  std::thread::id thread() const {
    std::lock_guard lock(mutex_);
    return thread_;
  }

 private:
  fault_call what_;
  std::string path_part_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  bool released_ = false;
  bool released_in_time_ = false;
  std::thread::id thread_;
};

/// Releases `call` from a timer on `io` once the call is held: the timer
/// runs only while the io_context's thread is free.
void release_from_timer(asio::io_context& io, held_call& call, asio::steady_timer& timer, bool& fired) {
  timer.expires_after(1ms);
  timer.async_wait([&io, &call, &timer, &fired](std::error_code) {
    if (!call.held()) {
      release_from_timer(io, call, timer, fired);
      return;
    }
    fired = true;
    call.release();
  });
}

}  // namespace

TEST_CASE("blocking executor: a store operation's fsync runs on the pool while the io_context serves a timer, and "
          "the completion comes on the io_context's thread") {
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  local_store store(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
  held_call fsync(fault_call::fsync, dir.path().string());
  asio::steady_timer timer(io);
  bool timer_fired = false;
  release_from_timer(io, fsync, timer, timer_fired);

  std::optional<versioned_path> made;
  std::thread::id completed_on;
  store.async_create_file("docs/a.txt", "alpha", [&](std::error_code ec, versioned_path version) {
    CHECK_FALSE(ec);
    made = version;
    completed_on = std::this_thread::get_id();
  });
  REQUIRE(run_until(io, [&] { return made.has_value(); }));
  CHECK(timer_fired);
  CHECK(fsync.released_in_time());  // the io_context was free while the fsync was held
  CHECK(fsync.thread() != std::this_thread::get_id());
  CHECK(completed_on == std::this_thread::get_id());
  CHECK(store.read_file(*made) == "alpha");
  pool.join();
}

TEST_CASE("blocking executor: a journal poll reads on the pool while the io_context serves a timer") {
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  local_store alice(io.get_executor(), dir.path(), "alice222");
  alice.publish_event("NOTE", "hello", {"bob123"});
  local_store bob(io.get_executor(), dir.path(), "bob123", {.blocking_executor = pool.get_executor()});
  auto source = bob.events();  // polls on the store's blocking executor
  held_call read(fault_call::read, (dir.path() / "journals" / "bob123").string());
  asio::steady_timer timer(io);
  bool timer_fired = false;
  release_from_timer(io, read, timer, timer_fired);

  std::optional<poll_result> result;
  source.async_poll("", 100, [&](std::error_code ec, poll_result r) {
    CHECK_FALSE(ec);
    result = std::move(r);
  });
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  CHECK(timer_fired);
  CHECK(read.released_in_time());
  CHECK(read.thread() != std::this_thread::get_id());
  REQUIRE(result->events.size() == 1);
  CHECK(result->events[0].data == "hello");
  pool.join();
}

TEST_CASE("blocking executor: a directory source's scan and journal writes run on the pool while the io_context "
          "serves a timer") {
  temp_dir root, state;
  {
    std::ofstream file(root.path() / "a.txt");
    file << "alpha";
  }
  asio::io_context io;
  asio::thread_pool pool(4);
  directory_options options;
  options.state_dir = state.path();
  options.report_existing = true;
  options.blocking_executor = pool.get_executor();
  directory_source source(io.get_executor(), root.path(), options);
  held_call fsync(fault_call::fsync, state.path().string());  // the first poll's journal write
  asio::steady_timer timer(io);
  bool timer_fired = false;
  release_from_timer(io, fsync, timer, timer_fired);

  std::optional<poll_result> result;
  std::thread::id completed_on;
  source.async_poll("", 100, [&](std::error_code ec, poll_result r) {
    CHECK_FALSE(ec);
    result = std::move(r);
    completed_on = std::this_thread::get_id();
  });
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  CHECK(timer_fired);
  CHECK(fsync.released_in_time());
  CHECK(fsync.thread() != std::this_thread::get_id());
  CHECK(completed_on == std::this_thread::get_id());
  REQUIRE(result->events.size() == 1);
  CHECK(result->events[0].name == event_name::create);
  CHECK(result->events[0].data == "a.txt");

  // A new file: found by waiting for a change on the io_context (inotify),
  // then polling on the pool, as the poller does.
  {
    std::ofstream file(root.path() / "b.txt");
    file << "beta";
  }
  bool found = false;
  std::exception_ptr failed;
  asio::co_spawn(
      io,
      [&, cursor = result->next_cursor]() mutable -> asio::awaitable<void> {
        while (!found) {
          co_await source.async_wait_for_change(cursor, asio::use_awaitable);
          const auto batch = co_await source.async_poll(cursor, 100, asio::use_awaitable);
          cursor = batch.next_cursor;
          for (const auto& e : batch.events) found = found || e.data == "b.txt";
        }
      },
      [&](std::exception_ptr e) { failed = e; });
  REQUIRE(run_until(io, [&] { return found || failed; }));
  CHECK_FALSE(failed);
  pool.join();
}

TEST_CASE("blocking executor: operations started together on a 4-thread pool run one at a time, complete in the "
          "order started, once each, and io_context::run() waits for them") {
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(4);
  local_store store(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
  constexpr int count = 40;
  std::vector<std::string> completed;
  for (int i = 0; i < count; ++i) {
    const auto data = "e" + std::to_string(i);
    if (i % 2 == 0) {
      store.async_publish_event("NOTE", data, {"bob123"}, [&completed, data](std::error_code ec, std::vector<std::string>) {
        CHECK_FALSE(ec);
        completed.push_back(data);
      });
    } else {
      store.async_create_file("docs/" + data + ".txt", data, [&completed, data](std::error_code ec, versioned_path) {
        CHECK_FALSE(ec);
        completed.push_back(data);
      });
    }
  }
  io.run();  // returns only when every operation has completed: they count as work
  REQUIRE(completed.size() == count);
  for (int i = 0; i < count; ++i) CHECK(completed[static_cast<std::size_t>(i)] == "e" + std::to_string(i));

  // The journal has the events in the order the operations were started.
  journal_source source(io.get_executor(), dir.path() / "journals" / "bob123");
  std::vector<std::string> published;
  for (const auto& e : source.poll("", 1000).events) published.push_back(e.data);
  std::vector<std::string> expected;
  for (int i = 0; i < count; i += 2) expected.push_back("e" + std::to_string(i));
  CHECK(published == expected);
  pool.join();
}

namespace {

/// An io_context's executor that counts the work submitted to it from any
/// thread but `home`.
class watched_executor {
 public:
  watched_executor(asio::io_context& io, std::atomic<int>& foreign, std::thread::id home)
      : inner_(io.get_executor()), foreign_(&foreign), home_(home) {}

  asio::execution_context& query(asio::execution::context_t) const noexcept { return inner_.context(); }
  static constexpr asio::execution::blocking_t query(asio::execution::blocking_t) noexcept {
    return asio::execution::blocking.never;
  }
  watched_executor require(asio::execution::blocking_t::never_t) const noexcept { return *this; }

  template <class Function>
  void execute(Function&& f) const {
    if (std::this_thread::get_id() != home_) ++*foreign_;
    asio::execution::execute(inner_, std::forward<Function>(f));
  }
  bool operator==(const watched_executor& other) const noexcept { return inner_ == other.inner_; }
  bool operator!=(const watched_executor& other) const noexcept { return !(*this == other); }

 private:
  asio::io_context::executor_type inner_;
  std::atomic<int>* foreign_;
  std::thread::id home_;
};

}  // namespace

TEST_CASE("blocking executor: completions come back from the pool without its threads submitting work to the "
          "io_context, whose thread would then wait for the io_context's lock") {
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  std::atomic<int> foreign{0};
  const asio::any_io_executor watched(watched_executor(io, foreign, std::this_thread::get_id()));
  local_store store(watched, dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
  constexpr int count = 20;
  std::vector<int> completed;
  for (int i = 0; i < count; ++i) {
    store.async_publish_event("NOTE", "e" + std::to_string(i), {"alice222"},
                              [&completed, i](std::error_code ec, std::vector<std::string>) {
                                CHECK_FALSE(ec);
                                completed.push_back(i);
                              });
  }
  REQUIRE(run_until(io, [&] { return completed.size() == count; }));
  for (int i = 0; i < count; ++i) CHECK(completed[static_cast<std::size_t>(i)] == i);

  auto source = store.events();  // polls on the same pool
  std::optional<poll_result> polled;
  source.async_poll("", 100, [&](std::error_code ec, poll_result r) {
    CHECK_FALSE(ec);
    polled = std::move(r);
  });
  REQUIRE(run_until(io, [&] { return polled.has_value(); }));
  CHECK(polled->events.size() == count);
  CHECK(foreign.load() == 0);
  io.run();  // nothing is left pending: returns
  pool.join();
}

namespace {

/// An io_context's executor that counts its live copies holding the
/// io_context's work (`outstanding_work.tracked`), which it also holds.
class counted_executor {
 public:
  counted_executor(asio::io_context& io, std::atomic<int>& tracked) : inner_(io.get_executor()), tracked_(&tracked) {}
  counted_executor(const counted_executor& other) noexcept : inner_(other.inner_), tracked_(other.tracked_), holds_(other.holds_) {
    if (holds_) ++*tracked_;
  }
  counted_executor& operator=(const counted_executor& other) noexcept {
    counted_executor copy(other);
    std::swap(inner_, copy.inner_);
    std::swap(tracked_, copy.tracked_);
    std::swap(holds_, copy.holds_);
    return *this;
  }
  ~counted_executor() {
    if (holds_) --*tracked_;
  }

  asio::execution_context& query(asio::execution::context_t) const noexcept {
    return asio::query(inner_, asio::execution::context);
  }
  static constexpr asio::execution::blocking_t query(asio::execution::blocking_t) noexcept {
    return asio::execution::blocking.never;
  }
  counted_executor require(asio::execution::blocking_t::never_t) const noexcept { return *this; }
  counted_executor require(asio::execution::outstanding_work_t::tracked_t) const {
    counted_executor copy(*this);
    if (!copy.holds_) {
      copy.inner_ = asio::prefer(inner_, asio::execution::outstanding_work.tracked);
      copy.holds_ = true;
      ++*tracked_;
    }
    return copy;
  }

  template <class Function>
  void execute(Function&& f) const {
    asio::execution::execute(inner_, std::forward<Function>(f));
  }
  bool operator==(const counted_executor& other) const noexcept { return inner_ == other.inner_; }
  bool operator!=(const counted_executor& other) const noexcept { return !(*this == other); }

 private:
  asio::any_io_executor inner_;
  std::atomic<int>* tracked_;
  bool holds_ = false;
};

/// A completion handler whose copies left behind by moves note, when
/// destroyed off `home`, the number of `counted_executor` copies holding
/// the io_context's work at that moment (the least seen).
struct work_watching_handler {
  std::atomic<int>* tracked;
  std::atomic<int>* least_seen;
  std::thread::id home;
  bool* completed;
  bool moved_from = false;

  work_watching_handler(std::atomic<int>& t, std::atomic<int>& least, bool& done)
      : tracked(&t), least_seen(&least), home(std::this_thread::get_id()), completed(&done) {}
  work_watching_handler(work_watching_handler&& other) noexcept
      : tracked(other.tracked), least_seen(other.least_seen), home(other.home), completed(other.completed) {
    other.moved_from = true;
  }
  work_watching_handler& operator=(work_watching_handler&&) = delete;
  ~work_watching_handler() {
    if (!moved_from || std::this_thread::get_id() == home) return;
    const int now = tracked->load();
    for (int least = least_seen->load(); now < least && !least_seen->compare_exchange_weak(least, now);) {
    }
  }
  void operator()(std::error_code ec, const local_store::versions&) const {
    CHECK_FALSE(ec);
    *completed = true;
  }
};

}  // namespace

TEST_CASE("blocking executor: an operation's work holds the io_context's work until all of it is destroyed on the "
          "pool's thread, so run() cannot return before") {
  // Else run() may return, and the io_context be destroyed, while the pool's
  // thread still destroys what the operation kept: copies of the store's
  // executor (a strand's last copy reaches into the io_context's strand
  // service), the handler's moved-from shell, the call's arguments. Before,
  // the tracked copy went first.
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(1);
  {
    // The relay's own read is made on the first store's executor: a plain one.
    local_store first(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
    bool listed = false;
    first.async_list_files("", true, [&](std::error_code, local_store::versions) { listed = true; });
    REQUIRE(run_until(io, [&] { return listed; }));
  }
  std::atomic<int> tracked{0};
  std::atomic<int> least_seen{1000};
  local_store store(asio::any_io_executor(counted_executor(io, tracked)), dir.path(), "alice222",
                    {.blocking_executor = pool.get_executor()});
  bool completed = false;
  // Bound to the plain executor, so only the operation's own tracked copy counts.
  store.async_list_files("", true, asio::bind_executor(io.get_executor(), work_watching_handler(tracked, least_seen, completed)));
  run_to_idle(io);
  pool.join();  // the work is destroyed
  CHECK(completed);
  CHECK(least_seen.load() >= 1);  // the shell went while the work was held
  CHECK(least_seen.load() != 1000);  // and went on the pool's thread
  CHECK(tracked.load() == 0);
}

TEST_CASE("blocking executor: a failing operation on the pool completes with its error and the message names the "
          "file") {
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  local_store store(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
  fault_plan plan;
  plan.fail(fault_call::fsync, dir.path().string(), EIO);
  std::optional<std::error_code> result;
  store.async_create_file("docs/a.txt", "alpha", [&](std::error_code ec, versioned_path) { result = ec; });
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  CHECK(*result == errc::store_io_failed);
  CHECK_THAT(store.last_error(), Catch::Contains(dir.path().string()));
  pool.join();
}

TEST_CASE("blocking executor: a poll whose call throws something other than a system_error completes once, with "
          "store_io_failed and the exception's text, on the pool or on the io_context") {
  // The record check is the user's code, and may throw anything. Before, the
  // exception left the pool's thread (std::terminate), or without a pool
  // left run() with the handler never called.
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  local_store alice(io.get_executor(), dir.path(), "alice222");
  alice.publish_event("NOTE", "hello", {"bob123"});
  const bool on_pool = GENERATE(true, false);
  INFO((on_pool ? "on a pool" : "on the io_context"));
  journal_source_options options;
  options.record_check = [](const event&) -> std::string { throw std::runtime_error("the check broke"); };
  if (on_pool) options.blocking_executor = pool.get_executor();
  journal_source source(io.get_executor(), dir.path() / "journals" / "bob123", options);
  int completions = 0;
  std::error_code result;
  source.async_poll("", 100, [&](std::error_code ec, poll_result) {
    ++completions;
    result = ec;
  });
  run_to_idle(io);
  CHECK(completions == 1);
  CHECK(result == errc::store_io_failed);
  CHECK_THAT(source.last_error(), Catch::Contains("the check broke"));
  pool.join();
}

TEST_CASE("diagnostics: two pending operations that fail at different files and steps each get their own account, "
          "also in last_error() when their handler runs") {
  temp_dir dir;
  asio::io_context io;
  asio::io_context handlers;  // run only once both operations have failed
  asio::thread_pool pool(4);
  local_store store(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
  fault_plan plan;
  plan.fail(fault_call::open, "/first/", EACCES, -1);
  plan.fail(fault_call::fsync, "/second/", EIO, -1);
  diagnostics first, second;
  std::vector<std::error_code> codes(2);
  std::vector<std::string> last_error_seen(2);
  const auto handler = [&](std::size_t which) {
    return asio::bind_executor(handlers, [&, which](std::error_code ec, versioned_path) {
      codes[which] = ec;
      last_error_seen[which] = store.last_error();
    });
  };
  store.async_create_file("first/a.txt", "alpha", first, handler(0));
  store.async_create_file("second/b.txt", "beta", second, handler(1));
  run_to_idle(io);
  CHECK(first.message().empty());  // filled on the handler's executor, not where the operation ran
  run_to_idle(handlers);
  CHECK(codes[0] == errc::store_io_failed);
  CHECK(codes[1] == errc::store_io_failed);
  CHECK_THAT(first.message(), Catch::Contains("/first/") && Catch::Contains("open") && !Catch::Contains("/second/"));
  CHECK_THAT(second.message(), Catch::Contains("/second/") && Catch::Contains("fsync") && !Catch::Contains("/first/"));
  CHECK(last_error_seen[0] == first.message());
  CHECK(last_error_seen[1] == second.message());
  CHECK(store.last_error() == second.message());

  // A success empties the account it is given.
  plan.clear();
  std::optional<std::error_code> done;
  store.async_create_file("first/a.txt", "alpha", first, [&](std::error_code ec, versioned_path) { done = ec; });
  REQUIRE(run_until(io, [&] { return done.has_value(); }));
  CHECK_FALSE(*done);
  CHECK(first.message().empty());
  pool.join();
}

namespace {

/// A memory source of `count` CREATE events in epoch "e1", and a listener's
/// options with a checkpoint file saved on a pool, polling only when woken.
struct checkpointed_source {
  explicit checkpointed_source(int count) {
    for (int i = 0; i < count; ++i) ids.push_back(source.publish("CREATE", "f" + std::to_string(i)));
    options.poller.poll_interval = 1h;
    options.checkpoint = file;
    options.blocking_executor = pool.get_executor();
  }

  temp_dir dir;
  std::filesystem::path file = dir.path() / "bob.checkpoint";
  asio::io_context io;
  asio::thread_pool pool{2};
  memory_source source{io.get_executor(), {.epoch = "e1"}};
  std::vector<std::string> ids;
  listener_options options;
};

}  // namespace

TEST_CASE("blocking executor: a listener's checkpoint saves run on the pool, delivery goes on while one is held, "
          "and stop() ends delivery only after the last state is written") {
  checkpointed_source setup(40);
  auto& [dir, file, io, pool, source, ids, options] = setup;
  options.poller.batch_size = 8;
  options.checkpoint_every = 4;
  std::vector<std::string> errors;
  options.on_error = [&](std::error_code, std::string_view what) { errors.emplace_back(what); };
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e.id); });
  listener.start();  // its first save (a new file) is start()'s own, on this thread

  // The next save's fsync is held on the pool: all 40 events still arrive.
  held_call fsync(fault_call::fsync, dir.path().string());
  REQUIRE(run_until(io, [&] { return got.size() == ids.size() && fsync.held(); }));
  CHECK(got == ids);
  CHECK(fsync.thread() != std::this_thread::get_id());
  CHECK(load_checkpoint(file)->cursor.empty());  // only start()'s save is written so far

  // Stopping waits for the held save, then writes the last state.
  listener.stop();
  io.poll();
  CHECK(listener.running());
  fsync.release();
  run_to_idle(io);
  CHECK_FALSE(listener.running());
  CHECK(fsync.released_in_time());
  CHECK(errors.empty());
  REQUIRE(listener.saved_checkpoint());
  CHECK(listener.saved_checkpoint()->unsaved() == 0);
  const auto saved = *load_checkpoint(file);
  CHECK(saved.cursor == "e1:40");
  CHECK(saved.delivered_ids.empty());
  pool.join();
}

TEST_CASE("blocking executor: a checkpoint save that fails on the pool is reported naming the file, and the next "
          "save writes the state") {
  checkpointed_source setup(12);
  auto& [dir, file, io, pool, source, ids, options] = setup;
  std::vector<std::pair<std::error_code, std::string>> errors;
  options.on_error = [&](std::error_code ec, std::string_view what) { errors.emplace_back(ec, what); };
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e.id); });
  listener.start();
  {
    fault_plan faults;
    faults.fail(fault_call::fsync, dir.path().string(), EIO);
    REQUIRE(run_until(io, [&] { return got.size() == ids.size() && !errors.empty(); }));
  }
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].first == errc::checkpoint_failed);
  CHECK(errors[0].second.find(file.string()) != std::string::npos);

  listener.stop();
  run_to_idle(io);
  CHECK(errors.size() == 1);
  CHECK(load_checkpoint(file)->cursor == "e1:12");
  pool.join();
}

TEST_CASE("blocking executor: a checkpoint save whose state cannot be written as JSON is reported naming the file, "
          "not thrown on the pool's thread") {
  // A source's ids are its own text; this one is not UTF-8. The save of the
  // state that lists it as delivered fails; the next (past the cursor after
  // it) succeeds. Before, the encoder's exception left the pool's thread and
  // ended the process (std::terminate).
  checkpointed_source setup(0);
  auto& [dir, file, io, pool, source, ids, options] = setup;
  event odd;
  odd.name = "CREATE";
  odd.data = "odd";
  odd.id = "id-\xFF";
  source.publish(odd);
  source.publish("CREATE", "after");
  options.checkpoint_every = 1;  // a save after each event: the first lists the odd id
  std::vector<std::pair<std::error_code, std::string>> errors;
  options.on_error = [&](std::error_code ec, std::string_view what) { errors.emplace_back(ec, what); };
  event_listener listener(io.get_executor(), source, options);
  std::vector<std::string> got;
  listener.add_event_listener([&](const event& e) { got.push_back(e.data); });
  listener.start();
  REQUIRE(run_until(io, [&] { return got.size() == 2 && !errors.empty(); }));
  listener.stop();
  run_to_idle(io);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].first == errc::checkpoint_failed);
  CHECK_THAT(errors[0].second, Catch::Contains(file.string()) && Catch::Contains("UTF-8"));
  CHECK(load_checkpoint(file)->cursor == "e1:2");
  pool.join();
}

namespace {

/// Waits (up to `generous`) until `done()` holds, off the io_context: for a
/// thread of the pool to have finished its part.
template <class Done>
bool wait_for(Done done) {
  const auto limit = std::chrono::steady_clock::now() + generous;
  while (!done()) {
    if (std::chrono::steady_clock::now() > limit) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST_CASE("completion relay: completions delivered while a wake-up is pending share it, and each runs once, in "
          "the order delivered") {
  asio::io_context io;
  auto& relay = detail::completion_relay::of(io.get_executor());
  constexpr int count = 500;
  std::vector<detail::completion_relay::expectation> expected;
  for (int i = 0; i < count; ++i) expected.push_back(relay.expect(io.get_executor()));
  REQUIRE(expected.back());
  std::vector<int> ran;
  std::thread deliverer([&] {
    for (int i = 0; i < count; ++i) expected[static_cast<std::size_t>(i)].release()->deliver([&ran, i] { ran.push_back(i); });
  });
  deliverer.join();
  // The io_context's thread has not read the eventfd meanwhile: one write
  // woke it for all (one per delivery before the relay coalesced them).
  CHECK(relay.wake_ups_written() == 1);
  io.run();  // returns once every expected completion has run
  REQUIRE(ran.size() == count);
  for (int i = 0; i < count; ++i) CHECK(ran[static_cast<std::size_t>(i)] == i);

  // A later delivery writes again: the flag was cleared by the read.
  auto one_more = relay.expect(io.get_executor());
  bool last = false;
  std::thread([&] { one_more.release()->deliver([&last] { last = true; }); }).join();
  io.restart();
  io.run();
  CHECK(last);
  CHECK(relay.wake_ups_written() == 2);
}

TEST_CASE("completion relay: a handler that throws leaves the other completions of its wake-up to run once each") {
  asio::io_context io;
  auto& relay = detail::completion_relay::of(io.get_executor());
  auto first = relay.expect(io.get_executor());
  auto second = relay.expect(io.get_executor());
  auto third = relay.expect(io.get_executor());
  std::vector<int> ran;
  std::thread([&] {
    first.release()->deliver([&ran] { ran.push_back(1); });
    second.release()->deliver([&ran] {
      ran.push_back(2);
      throw std::runtime_error("handler failed");
    });
    third.release()->deliver([&ran] { ran.push_back(3); });
  }).join();
  CHECK_THROWS_AS(io.run(), std::runtime_error);  // as a handler's exception leaves run()
  io.restart();
  io.run();  // the third, still pending, runs now; nothing runs twice
  CHECK(ran == std::vector<int>{1, 2, 3});
}

TEST_CASE("blocking executor: two pool completions of one wake-up whose handlers throw leave run() one at a time, "
          "and a handler that stops the io_context stops the other's") {
  temp_dir dir;
  asio::io_context io;
  auto& relay = detail::completion_relay::of(io.get_executor());
  std::vector<std::string> ran;
  {
    asio::thread_pool pool(2);
    local_store store(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
    for (const std::string name : {"docs/a.txt", "docs/b.txt"}) {
      store.async_create_file(name, "alpha", [&ran, name](std::error_code, versioned_path) {
        ran.push_back(name);
        throw std::runtime_error(name);
      });
    }
    pool.join();  // both delivered to the relay, which the loop has not read yet
    CHECK(relay.wake_ups_written() == 1);
    std::vector<std::string> thrown;
    for (int run = 0; run < 3 && thrown.size() < 2; ++run) {
      try {
        io.restart();
        io.run();
      } catch (const std::runtime_error& e) {
        thrown.push_back(e.what());  // an asio::multiple_exceptions would say "multiple exceptions"
      }
    }
    CHECK(thrown == ran);  // each exception, in the order the handlers ran
    CHECK(ran.size() == 2);
  }
  ran.clear();
  {
    asio::thread_pool pool(2);
    local_store store(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
    for (const std::string name : {"docs/c.txt", "docs/d.txt"}) {
      store.async_create_file(name, "alpha", [&ran, &io, name](std::error_code, versioned_path) {
        ran.push_back(name);
        io.stop();
      });
    }
    pool.join();
    io.restart();
    io.run();  // the first handler stops it: the second waits for the next run()
    CHECK(ran.size() == 1);
    io.restart();
    io.run();
    CHECK(ran.size() == 2);
  }
}

TEST_CASE("blocking executor: a completion from the pool runs its handler in the same turn of the event loop as "
          "the relay's read, not after another epoll_wait") {
  temp_dir dir;
  asio::io_context io;
  asio::thread_pool pool(2);
  local_store store(io.get_executor(), dir.path(), "alice222", {.blocking_executor = pool.get_executor()});
  auto& relay = detail::completion_relay::of(io.get_executor());
  std::optional<std::error_code> result;
  store.async_create_file("docs/a.txt", "alpha", [&](std::error_code ec, versioned_path) { result = ec; });
  REQUIRE(wait_for([&] { return relay.wake_ups_written() == 1; }));
  // One handler of the io_context's: the relay's read, which runs the
  // completion (before, it posted it, and one more turn ran it).
  CHECK(io.run_one() == 1);
  REQUIRE(result.has_value());
  CHECK_FALSE(*result);
  pool.join();
}

}  // namespace blocking_executor_test
