// Threads: the library starts none of its own, and on a multi-threaded
// io_context a strand keeps handlers serial, in order, with nothing lost.
// Meant to run under ThreadSanitizer as well.
#include "common/fixture.hpp"
#include "common/recording_source.hpp"

#include <array>
#include <atomic>
#include <charconv>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace threads_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

std::string label(const char* prefix, int i) {
  std::string out = prefix;
  out += std::to_string(i);
  return out;
}

void rethrow_if(std::exception_ptr error) {
  if (error) std::rethrow_exception(error);
}

/// Threads that run `io.run()`; `join()` reports whether every run()
/// returned on its own within `limit` (if not, it stops the io_context so
/// the test can end).
class io_runners {
 public:
  io_runners(asio::io_context& io, int count) : io_(io) {
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this] {
        io_.run();
        returned_.fetch_add(1);
      });
    }
  }
  io_runners(const io_runners&) = delete;
  io_runners& operator=(const io_runners&) = delete;
  ~io_runners() {
    if (!threads_.empty()) join(std::chrono::seconds{0});
  }

  bool join(std::chrono::steady_clock::duration limit = generous) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    const auto count = static_cast<int>(threads_.size());
    while (returned_.load() < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const bool on_its_own = returned_.load() == count;
    if (!on_its_own) io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    return on_its_own;
  }

 private:
  asio::io_context& io_;
  std::vector<std::thread> threads_;
  std::atomic<int> returned_{0};
};

}  // namespace

// Keep this test first: it compares thread counts, so it must not run while
// threads of an earlier test are still being reaped.
TEST_CASE("no hidden threads: a whole life cycle runs on the thread that runs the io_context") {
  const auto before = thread_count();
  const auto main_thread = std::this_thread::get_id();
  std::vector<std::size_t> counts;  // taken during the run, on the io_context's thread
  std::size_t off_thread = 0;       // samples taken on another thread
  const auto sample = [&] {
    counts.push_back(thread_count());
    if (std::this_thread::get_id() != main_thread) ++off_thread;
  };
  {
    temp_dir dir;
    const auto checkpoint_file = dir.path() / "listener.checkpoint";
    asio::io_context io;
    memory_source source(io.get_executor(), {.epoch = "life"});
    error_log errors;
    const backoff_policy backoff{.initial = 5ms, .max = 20ms, .multiplier = 2.0, .jitter = 0.5};

    listener_options options;
    options.poller.poll_interval = 1h;  // only wake-ups and retries can deliver in time
    options.poller.backoff = backoff;
    options.checkpoint = checkpoint_file;
    options.on_error = errors.handler();
    event_listener listener(io.get_executor(), source, options);
    event_stream stream(io, 2);
    poller poller(source, stream, {.poll_interval = 1h, .backoff = backoff, .on_error = errors.handler()});
    CHECK(thread_count() == before);

    std::vector<std::string> heard, streamed;
    listener.add_event_listener([&](std::string_view, std::string_view data) {
      sample();
      heard.emplace_back(data);
    });
    for (int i = 0; i < 3; ++i) source.publish("CREATE", label("f", i));
    source.fail_next_polls(2);  // the first poll of each poller fails and is retried after a backoff

    listener.start();
    poller.start();
    std::error_code end;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (;;) {
            auto [ec, e] = co_await stream.async_next(asio::experimental::as_tuple(asio::use_awaitable));
            if (ec) {
              end = ec;
              co_return;
            }
            sample();
            streamed.push_back(e.data);
          }
        },
        rethrow_if);
    CHECK(thread_count() == before);

    REQUIRE(run_until(io, [&] { return heard.size() == 3 && streamed.size() == 3; }));
    CHECK(errors.entries.size() == 2);
    for (const auto& [ec, message] : errors.entries) CHECK(ec == errc::source_unavailable);
    CHECK(listener.stats().poll_errors + stream.stats().snapshot().poll_errors == 2);
    CHECK(listener.stats().retries + stream.stats().snapshot().retries == 2);
    CHECK(thread_count() == before);

    // Idle, both pollers waiting for a wake-up (the interval is an hour).
    run_until(io, [] { return false; }, 30ms);
    asio::post(io, sample);
    source.publish("SHARE", "woken");
    REQUIRE(run_until(io, [&] { return heard.size() == 4 && streamed.size() == 4; }));
    CHECK(heard.back() == "woken");
    CHECK(streamed.back() == "woken");
    CHECK(thread_count() == before);

    listener.stop();
    poller.stop();
    run_to_idle(io);
    CHECK(thread_count() == before);
    CHECK(end == errc::end_of_stream);
    CHECK_FALSE(listener.running());
    CHECK_FALSE(poller.running());
    REQUIRE(std::filesystem::exists(checkpoint_file));
    CHECK(storewatch::load_checkpoint(checkpoint_file)->cursor == "life:4");
  }
  CHECK(thread_count() == before);
  REQUIRE(counts.size() == 9);  // 4 listener handler calls, 4 stream events, 1 posted handler
  for (const auto count : counts) CHECK(count == before);
  CHECK(off_thread == 0);
}

TEST_CASE("a multi-threaded io_context: a strand keeps handlers serial, each publisher's order is kept, nothing lost") {
  constexpr int publishers = 2;
  constexpr int per_publisher = 5000;
  constexpr int total = publishers * per_publisher;
  constexpr int io_threads = 4;

  asio::io_context io;
  auto strand = asio::make_strand(io);
  memory_source source(strand, {.epoch = "mt"});

  std::mutex errors_mutex;
  std::vector<std::string> errors;  // guarded by errors_mutex
  listener_options options;
  options.poller.poll_interval = 100ms;  // a safety net; wake-ups do the work
  options.poller.batch_size = 64;
  options.capacity = 128;
  options.on_error = [&](std::error_code ec, std::string_view message) {
    std::lock_guard lock(errors_mutex);
    errors.push_back(ec.message() + ": " + std::string(message));
  };
  basic_event_listener<asio::strand<asio::io_context::executor_type>> listener(strand, source, options);

  // Handlers may only touch these plain variables because the strand keeps
  // them serial; ThreadSanitizer checks that claim.
  std::array<int, publishers> next{};
  std::string first_disorder;
  int foreign = 0;

  std::atomic<int> in_handler{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> off_strand{0};
  std::atomic<int> disorders{0};
  std::atomic<int> delivered{0};
  std::atomic<long> extra_calls{0};

  const auto enter = [&] {
    if (in_handler.fetch_add(1) != 0) overlaps.fetch_add(1);
    if (!strand.running_in_this_thread()) off_strand.fetch_add(1);
  };
  const auto leave = [&] { in_handler.fetch_sub(1); };

  listener.add_event_listener([&](const event& e) {
    enter();
    // data is "p<publisher>-<index>"
    int publisher = -1, index = -1;
    const auto dash = e.data.find('-');
    if (e.data.size() > 1 && e.data[0] == 'p' && dash != std::string::npos) {
      std::from_chars(e.data.data() + 1, e.data.data() + dash, publisher);
      std::from_chars(e.data.data() + dash + 1, e.data.data() + e.data.size(), index);
    }
    if (publisher < 0 || publisher >= publishers) {
      ++foreign;
    } else {
      if (index != next[static_cast<std::size_t>(publisher)]) {
        if (disorders.fetch_add(1) == 0) {
          first_disorder = e.data + " while expecting index " + std::to_string(next[static_cast<std::size_t>(publisher)]);
        }
      }
      next[static_cast<std::size_t>(publisher)] = index + 1;
    }
    leave();
    delivered.fetch_add(1);
  });

  std::atomic<bool> done{false};

  asio::post(strand, [&] { listener.start(); });
  io_runners runners(io, io_threads);

  std::vector<std::thread> writers;
  for (int p = 0; p < publishers; ++p) {
    writers.emplace_back([&, p] {
      std::string prefix = "p";
      prefix += std::to_string(p);
      prefix += '-';
      for (int i = 0; i < per_publisher; ++i) source.publish("CREATE", label(prefix.c_str(), i));
    });
  }

  // Extra listeners come and go while events are delivered.
  std::atomic<long> churns{0};
  std::atomic<int> failed_removals{0};
  std::thread churner([&] {
    while (!done) {
      const auto a = listener.add_event_listener([&](const event&) {
        enter();
        extra_calls.fetch_add(1);
        leave();
      });
      const auto b = listener.add_event_listener(
          [&](std::string_view, std::string_view) {
            enter();
            extra_calls.fetch_add(1);
            leave();
          },
          {.names = {"CREATE"}, .prefix = "p1-"});
      std::this_thread::yield();
      if (!listener.remove_event_listener(a)) failed_removals.fetch_add(1);
      if (!listener.remove_event_listener(b)) failed_removals.fetch_add(1);
      churns.fetch_add(1);
    }
  });

  // An operator reads the counters meanwhile.
  std::atomic<long> stats_reads{0};
  std::atomic<int> stats_regressions{0};
  std::thread watcher([&] {
    std::uint64_t last = 0;
    while (!done) {
      const auto s = listener.stats();
      if (s.delivered < last) stats_regressions.fetch_add(1);
      last = s.delivered;
      stats_reads.fetch_add(1);
      std::this_thread::sleep_for(100us);
    }
  });

  const auto deadline = std::chrono::steady_clock::now() + generous;
  while (delivered.load() < total && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  const int delivered_before_stop = delivered.load();

  asio::post(strand, [&] { listener.stop(); });
  done = true;
  for (auto& t : writers) t.join();
  churner.join();
  watcher.join();

  // io.run() must return on its own once the listener has stopped.
  const bool returned_on_its_own = runners.join();

  CHECK(delivered_before_stop == total);
  CHECK(returned_on_its_own);
  CHECK(overlaps.load() == 0);
  CHECK(off_strand.load() == 0);
  INFO("first out-of-order event: " << first_disorder);
  CHECK(disorders.load() == 0);
  CHECK(foreign == 0);
  for (int p = 0; p < publishers; ++p) {
    INFO("publisher " << p);
    CHECK(next[static_cast<std::size_t>(p)] == per_publisher);
  }
  CHECK(delivered.load() == total);
  CHECK(churns.load() > 0);
  CHECK(failed_removals.load() == 0);
  CHECK(listener.listener_count() == 1);
  CHECK(stats_reads.load() > 0);
  CHECK(stats_regressions.load() == 0);
  const auto s = listener.stats();
  CHECK(s.delivered == static_cast<std::uint64_t>(total));
  CHECK(s.enqueued == static_cast<std::uint64_t>(total));
  CHECK(s.duplicates == 0);
  CHECK(s.gaps == 0);
  CHECK(s.problems == 0);
  CHECK(s.handler_errors == 0);
  CHECK_FALSE(listener.running());
  std::lock_guard lock(errors_mutex);
  CHECK(errors.empty());
}

TEST_CASE("a multi-threaded io_context loses no wake-up: with an hour's poll interval, events still arrive promptly") {
  // Publishing from other threads while the poller re-arms its wait races
  // the source's wake-up against the new wait. Whatever the interleaving,
  // a later publish must still wake the poller: no event may wait for the
  // poll interval. Several rounds, since the race is a matter of timing.
  constexpr int publishers = 2;
  constexpr int per_publisher = 5000;
  constexpr int total = publishers * per_publisher;
  for (int round = 0; round < 3; ++round) {
    asio::io_context io;
    auto strand = asio::make_strand(io);
    memory_source source(strand, {.epoch = "wake"});
    listener_options options;
    options.poller.poll_interval = std::chrono::hours(1);
    options.poller.batch_size = 64;
    options.capacity = 128;
    options.on_error = [](std::error_code, std::string_view) {};
    basic_event_listener<asio::strand<asio::io_context::executor_type>> listener(strand, source, options);
    std::atomic<int> delivered{0};
    listener.add_event_listener([&](const event&) { delivered.fetch_add(1); });
    asio::post(strand, [&] { listener.start(); });
    io_runners runners(io, 4);

    // Handlers come and go meanwhile, as in the test above; the extra
    // thread also makes the interleavings more varied.
    std::atomic<bool> done{false};
    std::thread churner([&] {
      while (!done) {
        const auto id = listener.add_event_listener([](const event&) {});
        std::this_thread::yield();
        listener.remove_event_listener(id);
      }
    });
    std::vector<std::thread> writers;
    for (int p = 0; p < publishers; ++p) {
      writers.emplace_back([&, p] {
        for (int i = 0; i < per_publisher; ++i) {
          source.publish("CREATE", label(p == 0 ? "a" : "b", i));
          std::this_thread::sleep_for(20us);  // let the poller catch up and wait again, often
        }
      });
    }
    for (auto& t : writers) t.join();
    const auto published = std::chrono::steady_clock::now();
    // A wake-up takes about a millisecond; allow plenty for a loaded machine.
    while (delivered.load() < total && std::chrono::steady_clock::now() - published < 5s) {
      std::this_thread::sleep_for(1ms);
    }
    const int delivered_in_time = delivered.load();
    done = true;
    churner.join();
    asio::post(strand, [&] { listener.stop(); });
    const bool returned_on_its_own = runners.join();
    INFO("round " << round);
    CHECK(returned_on_its_own);
    REQUIRE(delivered_in_time == total);
  }
}

TEST_CASE("a local store's journal on a 4-thread io_context and a strand: handlers added, removed and all "
          "removed from other threads during delivery, every event once, in each writer's order") {
  constexpr int writers = 2;
  constexpr int per_writer = 600;
  constexpr int total = writers * per_writer;

  temp_dir dir;
  asio::io_context io;
  auto strand = asio::make_strand(io);
  using strand_type = asio::strand<asio::io_context::executor_type>;
  basic_local_store<strand_type> bob(strand, dir.path(), "bob123");
  auto source = bob.events();
  std::mutex errors_mutex;
  std::vector<std::string> errors;  // guarded by errors_mutex
  listener_options options;
  options.poller.poll_interval = 50ms;
  options.on_error = [&](std::error_code, std::string_view message) {
    std::lock_guard lock(errors_mutex);
    errors.emplace_back(message);
  };
  basic_event_listener<strand_type> listener(strand, source, options);
  auto second_source = bob.events();
  basic_event_listener<strand_type> second(strand, second_source, options);

  // Touched only by handlers, which the strand keeps serial (TSan checks).
  std::array<int, writers> next{};
  int disorders = 0;
  std::atomic<int> delivered{0};
  listener.add_event_listener([&](const event& e) {
    // data is "w<writer>-<index>"
    const auto dash = e.data.find('-');
    int writer = -1, index = -1;
    std::from_chars(e.data.data() + 1, e.data.data() + dash, writer);
    std::from_chars(e.data.data() + dash + 1, e.data.data() + e.data.size(), index);
    if (writer < 0 || writer >= writers || index != next[static_cast<std::size_t>(writer)]) ++disorders;
    if (writer >= 0 && writer < writers) next[static_cast<std::size_t>(writer)] = index + 1;
    delivered.fetch_add(1);
  });

  asio::post(strand, [&] {
    listener.start();
    second.start();
  });
  io_runners runners(io, 4);

  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {  // each thread its own store object: its own journal writer
      asio::io_context own;
      local_store alice(own.get_executor(), dir.path(), "alice222");
      for (int i = 0; i < per_writer; ++i) {
        alice.publish_event("note", "w" + std::to_string(w) + "-" + std::to_string(i), {"bob123"});
      }
    });
  }
  // Extra handlers come and go on this listener; on a second one, over its
  // own source object, handlers are added and swept away with
  // remove_all_event_listeners.
  std::atomic<bool> done{false};
  std::atomic<long> extra_calls{0};
  std::atomic<int> failed_removals{0};
  std::atomic<int> rounds{0};
  std::thread churner([&] {
    while (!done) {
      const auto a = listener.add_event_listener([&](const event&) { extra_calls.fetch_add(1); });
      const auto b = listener.add_event_listener([&](std::string_view, std::string_view) { extra_calls.fetch_add(1); },
                                                 {.names = {"note"}, .prefix = "w1-"});
      std::this_thread::yield();
      if (!listener.remove_event_listener(b)) failed_removals.fetch_add(1);
      if (!listener.remove_event_listener(a)) failed_removals.fetch_add(1);
      rounds.fetch_add(1);
    }
  });
  std::atomic<int> sweeps{0};
  std::thread sweeper([&] {
    for (int added = 1; !done; ++added) {
      second.add_event_listener([&](const event&) { extra_calls.fetch_add(1); });
      if (added % 8 == 0) {
        second.remove_all_event_listeners();
        sweeps.fetch_add(1);
      }
      std::this_thread::yield();
    }
    second.remove_all_event_listeners();
  });

  for (auto& t : threads) t.join();
  const auto deadline = std::chrono::steady_clock::now() + generous;
  while (delivered.load() < total && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  done = true;
  churner.join();
  sweeper.join();
  const int delivered_before_stop = delivered.load();
  asio::post(strand, [&] {
    listener.stop();
    second.stop();
  });
  CHECK(runners.join());

  CHECK(delivered_before_stop == total);
  CHECK(sweeps.load() > 0);
  CHECK(second.listener_count() == 0);
  CHECK(disorders == 0);
  for (const auto n : next) CHECK(n == per_writer);
  CHECK(rounds.load() > 0);
  CHECK(failed_removals.load() == 0);
  CHECK(listener.listener_count() == 1);
  CHECK(listener.stats().duplicates == 0);
  std::lock_guard lock(errors_mutex);
  CHECK(errors.empty());
}

TEST_CASE("a stream on one strand, its consumer's handler bound to another, on a 2-thread io_context: "
          "every event once, in order") {
  // The buffer belongs to the stream's strand; a handler bound elsewhere
  // must get its event handed over, not take it from the buffer on its own
  // strand while the producer pushes (ThreadSanitizer checks that).
  asio::io_context io;
  auto producer_strand = asio::make_strand(io);
  auto consumer_strand = asio::make_strand(io);
  event_stream stream(producer_strand, 4);
  constexpr int total = 2000;
  std::vector<std::string> taken;  // on the consumer's strand
  std::atomic<int> failures{0};
  std::function<void()> next = [&] {
    stream.async_next(asio::bind_executor(consumer_strand, [&](std::error_code ec, event e) {
      if (ec || !consumer_strand.running_in_this_thread()) ++failures;
      if (ec) return;
      taken.push_back(e.id);
      if (static_cast<int>(taken.size()) < total) asio::post(producer_strand, next);
    }));
  };
  // The producer: try_push while there is room, else async_push.
  std::function<void(int)> produce = [&](int i) {
    for (; i < total; ++i) {
      auto e = make_event("CREATE", label("f", i), label("id-", i));
      if (!stream.try_push(e)) {
        stream.async_push(std::move(e), asio::bind_executor(producer_strand, [&, i](std::error_code ec) {
          if (ec) {
            ++failures;
            return;
          }
          produce(i + 1);
        }));
        return;
      }
    }
  };
  asio::post(producer_strand, next);
  asio::post(producer_strand, [&] { produce(0); });
  io_runners runners(io, 2);
  CHECK(runners.join());  // both threads ran out of work: every event was taken
  CHECK(failures.load() == 0);
  REQUIRE(static_cast<int>(taken.size()) == total);
  for (int i = 0; i < total; ++i) CHECK(taken[static_cast<std::size_t>(i)] == label("id-", i));
}

}  // namespace threads_test
