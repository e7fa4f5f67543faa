// Does storewatch stall its user's event loop? An io_context runs a 1 ms
// periodic timer while store work runs on the same io_context: N durable
// creates one after another, and (separately) one poll that catches up on a
// journal of M events. Each is run with the blocking work on the io_context
// (the default) and on a 2-thread pool (`blocking_executor`); the creates
// also on a 1-thread pool. Reported: the timer's p99 and worst lateness,
// against the same timer alone (the baseline, same round). Two controls,
// with no storewatch code, tell what the machine itself costs the timer: the
// same file system calls as the creates on a plain std::thread, and posted
// one at a time to the pool and completed on the io_context with Asio alone.
// Rounds interleave everything; with several, a summary gives the median of
// each p99 ratio. Each round also says where the late ticks came from
// (print_attribution).
//
// Usage: loop_stall [--realtime-loop] [--pin] [--profile] [--worker-nice N]
//        [creates (default 1000) [catch-up events (default 100000, 0: none)
//        [rounds (default 1)]]]
#include "bench_common.hpp"

#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace storewatch::bench;
using namespace std::chrono_literals;

/// A span of time on the io_context's thread.
struct span {
  clock_type::time_point from, to;
};

/// A 1 ms periodic timer on `io` that notes how late each tick fires.
class ticker {
 public:
  explicit ticker(asio::io_context& io) : timer_(io) {}

  void start() {
    next_ = clock_type::now() + 1ms;
    arm();
  }
  void stop() {
    // A tick that is due but has not run yet was held up by the work: it
    // counts with the lateness it has now.
    if (const auto now = clock_type::now(); now > next_) note(now);
    stopped_ = true;
    timer_.cancel();
  }
  const std::vector<double>& lateness_ms() const { return lateness_; }
  /// From each tick's due time to when it ran, in the order of lateness_ms().
  const std::vector<span>& waits() const { return waits_; }

 private:
  void arm() {
    timer_.expires_at(next_);
    timer_.async_wait([this](std::error_code ec) {
      if (ec || stopped_) return;
      const auto now = clock_type::now();
      note(now);
      next_ += 1ms;
      if (next_ < now) next_ = now + 1ms;  // a missed tick is counted once, as the lateness above
      arm();
    });
  }

  void note(clock_type::time_point now) {
    lateness_.push_back(std::chrono::duration<double, std::milli>(now - next_).count());
    waits_.push_back({next_, now});
  }

  asio::steady_timer timer_;
  clock_type::time_point next_;
  std::vector<double> lateness_;
  std::vector<span> waits_;
  bool stopped_ = false;
};

struct result {
  double p99 = 0;
  double worst = 0;
  double seconds = 0;
  // What the io_context's thread did meanwhile (for the attribution line):
  std::vector<double> lateness;  // ms, each tick
  std::vector<span> waits;       // each tick's due time to when it ran
  std::vector<span> completions; // each completion handler of the work, start to end
  double loop_cpu_ms = 0;        // the thread's CPU time in io.run()
  long preempted = 0;            // its involuntary context switches in io.run()
  long yielded = 0;              // its voluntary ones (waits in epoll or on a lock)
};

/// The calling thread's CPU time, in ms.
double thread_cpu_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

/// Runs `f()`, or ends the program with what it threw.
template <class F>
auto or_exit(F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "loop_stall: %s\n", error.what());
    std::exit(1);
  }
}

/// Runs `work(done)` on `io` beside a ticker until `done` is called.
result measure(asio::io_context& io, const std::function<void(std::function<void()>)>& work) {
  ticker tick(io);
  tick.start();
  const auto started = clock_type::now();
  double seconds = 0;
  work([&] {
    seconds = seconds_since(started);
    tick.stop();
  });
  io.restart();
  rusage before{}, after{};
  ::getrusage(RUSAGE_THREAD, &before);
  const double cpu = thread_cpu_ms();
  io.run();
  ::getrusage(RUSAGE_THREAD, &after);
  result r;
  r.loop_cpu_ms = thread_cpu_ms() - cpu;
  r.preempted = after.ru_nivcsw - before.ru_nivcsw;
  r.yielded = after.ru_nvcsw - before.ru_nvcsw;
  r.lateness = tick.lateness_ms();
  r.waits = tick.waits();
  r.p99 = percentile(r.lateness, 0.99);
  r.worst = r.lateness.empty() ? 0 : *std::max_element(r.lateness.begin(), r.lateness.end());
  r.seconds = seconds;
  return r;
}

/// The ticker alone for `seconds`.
result alone(double seconds) {
  asio::io_context io;
  asio::steady_timer end(io);
  return measure(io, [&](std::function<void()> done) {
    end.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds)));
    end.async_wait([done](std::error_code) { done(); });
  });
}

/// Runs `count` operations on `io` beside a ticker, one after another:
/// `start(n, completed)` starts the n-th, which calls `completed()` on `io`.
result one_after_another(asio::io_context& io, std::size_t count,
                         const std::function<void(std::size_t, std::function<void()>)>& start) {
  std::size_t made = 0;
  std::vector<span> completions;
  completions.reserve(count);
  std::function<void()> finish;
  std::function<void()> next = [&] {
    start(made, [&] {
      const auto begun = clock_type::now();
      if (++made == count) {
        finish();
      } else {
        next();
      }
      completions.push_back({begun, clock_type::now()});
    });
  };
  auto r = measure(io, [&](std::function<void()> done) {
    finish = std::move(done);
    next();
  });
  r.completions = std::move(completions);
  return r;
}

/// `count` creates, each started when the previous completed.
result creates(std::size_t count, std::optional<asio::thread_pool::executor_type> pool) {
  scratch_dir dir;
  asio::io_context io;
  storewatch::local_store_options options;
  if (pool) options.blocking_executor = *pool;
  storewatch::local_store store(io.get_executor(), dir.path, "alice222", options);
  return one_after_another(io, count, [&](std::size_t n, std::function<void()> completed) {
    store.async_create_file("docs/f" + std::to_string(n) + ".txt", "payload",
                            [completed](std::error_code ec, storewatch::versioned_path) {
                              if (ec) std::fprintf(stderr, "loop_stall: create failed: %s\n", ec.message().c_str());
                              completed();
                            });
  });
}

/// The file system calls of one durable create, made directly (no
/// storewatch code): the controls' work. As the store does it: a temporary
/// file written and fsynced, linked to its name and unlinked, the folder
/// fsynced, a 96-byte record appended to a journal and fsynced.
class raw_creates {
 public:
  explicit raw_creates(const std::filesystem::path& root) : folder_(root / "docs") {
    std::filesystem::create_directories(folder_);
    journal_ = ::open((root / "journal").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (journal_ < 0) fail("open", root / "journal");
  }
  ~raw_creates() { ::close(journal_); }
  raw_creates(const raw_creates&) = delete;
  raw_creates& operator=(const raw_creates&) = delete;

  /// One create, of a file named after `n`; throws on failure.
  void create(std::size_t n) {
    struct stat info {};
    if (::stat(folder_.c_str(), &info) != 0) fail("stat", folder_);
    const auto temporary = folder_ / ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("open", temporary);
    const bool written = ::write(fd, "payload", 7) == 7 && ::fsync(fd) == 0;
    if (::close(fd) != 0 || !written) fail("write, fsync or close", temporary);
    const auto name = folder_ / ("f" + std::to_string(n) + ".txt");
    if (::link(temporary.c_str(), name.c_str()) != 0) fail("link", name);
    if (::unlink(temporary.c_str()) != 0) fail("unlink", temporary);
    const int folder_fd = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd < 0) fail("open", folder_);
    const bool synced = ::fsync(folder_fd) == 0;
    if (::close(folder_fd) != 0 || !synced) fail("fsync", folder_);
    const std::string record(95, 'r');
    if (::fstat(journal_, &info) != 0 || ::pwrite(journal_, (record + "\n").data(), 96, journal_end_) != 96 ||
        ::fsync(journal_) != 0) {
      fail("append", folder_.parent_path() / "journal");
    }
    journal_end_ += 96;
  }

 private:
  [[noreturn]] static void fail(const char* action, const std::filesystem::path& file) {
    throw std::system_error(errno, std::generic_category(), std::string("loop_stall control: ") + action + " " +
                                                                file.string());
  }

  std::filesystem::path folder_;
  int journal_ = -1;
  off_t journal_end_ = 0;
};

/// Puts the calling thread in the ordinary (time-shared) scheduling class,
/// whatever the thread that started it had (see --realtime-loop).
void ordinary_scheduling() {
  const sched_param ordinary{};
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &ordinary);
}

/// --pin: the CPUs of the io_context's thread (`loop`) and of the threads
/// doing the blocking work (pools, the control's thread); -1: unpinned.
struct pinning {
  int loop = -1;
  int workers = -1;
};
pinning pins;

/// --worker-nice N: the nice value of the threads doing blocking work (pools,
/// the control's thread); without it every thread keeps the nice value the
/// process was started with, and none is changed (lowering one needs
/// privileges: a run under `nice` must not fail for want of them).
std::optional<int> worker_nice;

/// Gives the calling thread the nice value `value`, if any (Linux: per thread).
void set_nice(std::optional<int> value) {
  if (!value) return;
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), *value) != 0) {
    std::fprintf(stderr, "loop_stall: --worker-nice: cannot set nice %d: %s\n", *value,
                 std::generic_category().message(errno).c_str());
    std::exit(1);
  }
}

/// Pins the calling thread to `cpu` (unless -1).
void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (const int error = pthread_setaffinity_np(pthread_self(), sizeof set, &set); error != 0) {
    std::fprintf(stderr, "loop_stall: --pin: cannot pin a thread to CPU %d: %s\n", cpu,
                 std::generic_category().message(error).c_str());
    std::exit(1);
  }
}

/// Control: `count` raw creates one after another on a plain std::thread,
/// which tells the io_context only when all are done. What the timer suffers
/// from the file system calls alone, on this machine.
result control_thread(std::size_t count) {
  scratch_dir dir;
  raw_creates files(dir.path);
  asio::io_context io;
  std::thread writer;
  auto r = measure(io, [&](std::function<void()> done) {
    writer = std::thread([&io, &files, count, done] {
      ordinary_scheduling();
      pin_to(pins.workers);
      set_nice(worker_nice);
      for (std::size_t n = 0; n < count; ++n) or_exit([&] { files.create(n); });
      asio::post(io, done);
    });
  });
  writer.join();
  return r;
}

/// Control: `count` raw creates, each posted from the io_context to `pool`
/// when the previous one's completion (a post back) ran on the io_context:
/// the store's hand-off with Asio alone, no storewatch code.
result control_pool(std::size_t count, asio::thread_pool::executor_type pool) {
  scratch_dir dir;
  raw_creates files(dir.path);
  asio::io_context io;
  return one_after_another(io, count, [&](std::size_t n, std::function<void()> completed) {
    asio::post(pool, [&files, &io, n, completed, work = asio::make_work_guard(io)] {
      or_exit([&] { files.create(n); });
      asio::post(io, completed);
    });
  });
}

/// One poll of a journal of `events` events, all in one batch.
result catch_up(std::size_t events, std::optional<asio::thread_pool::executor_type> pool, bool& complete) {
  scratch_dir dir;
  {
    storewatch::journal_appender writer(dir.path);
    for (std::size_t i = 0; i < events; ++i) {
      storewatch::event e;
      e.name = "NOTE";
      e.data = "event " + std::to_string(i);
      e.id = "bench-writer-" + std::to_string(i);
      e.actor = "alice222";
      e.occurred_at = storewatch::timestamp{std::chrono::milliseconds{1761135341619}};
      writer.add("bob123", e);
    }
    writer.flush();
  }
  asio::io_context io;
  storewatch::journal_source_options options;
  if (pool) options.blocking_executor = *pool;
  storewatch::journal_source source(io.get_executor(), dir.path / "journals" / "bob123", options);
  return measure(io, [&](std::function<void()> done) {
    source.async_poll("", events, [&complete, events, done](std::error_code ec, storewatch::poll_result r) {
      complete = !ec && r.events.size() == events;
      done();
    });
  });
}

struct row {
  std::string what;
  std::vector<result> runs;  // one per round
};

void print_row(const std::string& what, const result& r, const result& base) {
  std::printf("%-44s %8.2f %8.2f %8.1f %8.1f %8.2f\n", what.c_str(), r.p99, r.worst,
              base.p99 > 0 ? r.p99 / base.p99 : 0.0, base.worst > 0 ? r.worst / base.worst : 0.0, r.seconds);
}

/// Where `r`'s late ticks (later than `threshold` ms) come from: how many
/// waited while a completion handler of the work ran on the io_context's
/// thread (the loop was busy with our work), the others having waited for
/// the thread to get a core or to wake (the machine); and what the thread
/// did per operation.
void print_attribution(const std::string& what, const result& r, double threshold) {
  std::size_t late = 0, behind = 0;
  for (std::size_t i = 0; i < r.lateness.size(); ++i) {
    if (r.lateness[i] <= threshold) continue;
    ++late;
    const auto& wait = r.waits[i];
    // The first completion that ends after the tick was due.
    const auto c = std::lower_bound(r.completions.begin(), r.completions.end(), wait.from,
                                    [](const span& s, clock_type::time_point t) { return s.to < t; });
    if (c != r.completions.end() && c->from < wait.to) ++behind;
  }
  std::vector<double> handler_us;
  for (const auto& c : r.completions) {
    handler_us.push_back(std::chrono::duration<double, std::micro>(c.to - c.from).count());
  }
  const double ops = r.completions.empty() ? 1.0 : static_cast<double>(r.completions.size());
  std::printf("  %s: ticks > %.2f ms: %zu of %zu, %zu of them during a completion handler; "
              "handler median %.1f us, p99 %.1f us; loop thread %.1f us CPU per op, "
              "%.2f involuntary and %.2f voluntary switches per op\n",
              what.c_str(), threshold, late, r.lateness.size(), behind, percentile(handler_us, 0.5),
              percentile(handler_us, 0.99), r.loop_cpu_ms * 1e3 / ops, static_cast<double>(r.preempted) / ops,
              static_cast<double>(r.yielded) / ops);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const auto half = values.size() / 2;
  return values.size() % 2 ? values[half] : (values[half - 1] + values[half]) / 2;
}

/// Removes `flag` from the arguments; whether it was there.
bool take_flag(int& argc, char** argv, std::string_view flag) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) != flag) continue;
    std::copy(argv + i + 1, argv + argc + 1, argv + i);  // argv[argc] is the null pointer
    --argc;
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // --realtime-loop: the io_context's thread (this one) runs SCHED_FIFO, so
  // that no other thread on the machine keeps it from a core: the lateness
  // left is then its own work and what it waits for (a lock, a system call),
  // not the scheduler's choice. A diagnostic for a loaded machine; needs
  // root or CAP_SYS_NICE. The pool's and the control's threads stay ordinary.
  const bool realtime_loop = take_flag(argc, argv, "--realtime-loop");
  // --pin: the io_context's thread on CPU 0, every thread doing blocking
  // work (the pools', the control's) on CPU 1: an experiment on CPU
  // contention between them (other programs and kernel threads still run
  // anywhere).
  if (take_flag(argc, argv, "--pin")) pins = {0, 1};
  // --profile: only the creates on the 2-thread pool, beside the timer, once:
  // a run to watch with perf or strace (the io_context's thread is the main
  // thread).
  const bool profile = take_flag(argc, argv, "--profile");
  // --worker-nice N: the threads doing blocking work run at nice N (19: the
  // lowest), the io_context's thread at the process's own: whether the loop's
  // thread then wins the CPU from them on a machine with few cores.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view(argv[i]) != "--worker-nice") continue;
    const std::string_view value = argv[i + 1];
    int nice = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), nice);
    if (error != std::errc{} || end != value.data() + value.size() || nice < -20 || nice > 19) {
      std::fprintf(stderr, "loop_stall: --worker-nice: '%s' is not a nice value (-20 to 19)\n", argv[i + 1]);
      return 2;
    }
    worker_nice = nice;
    std::copy(argv + i + 2, argv + argc + 1, argv + i);
    argc -= 2;
    break;
  }
  const std::size_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000;
  const std::size_t events = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100000;
  const std::size_t rounds = argc > 3 ? std::max<std::size_t>(1, std::strtoull(argv[3], nullptr, 10)) : 1;
  // The pools are started first, so that their threads inherit the
  // workers' CPU and ordinary scheduling.
  errno = 0;
  const int own_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  if (errno != 0) {
    std::fprintf(stderr, "loop_stall: cannot read the nice value: %s\n", std::generic_category().message(errno).c_str());
    return 1;
  }
  pin_to(pins.workers);
  set_nice(worker_nice);
  asio::thread_pool pool(2);
  asio::thread_pool pool1(1);
  pin_to(pins.loop);
  set_nice(worker_nice ? std::optional(own_nice) : std::nullopt);
  if (realtime_loop) {
    const sched_param first{1};
    if (const int error = pthread_setschedparam(pthread_self(), SCHED_FIFO, &first); error != 0) {
      std::fprintf(stderr, "loop_stall: --realtime-loop: cannot make the io_context's thread SCHED_FIFO: %s\n",
                   std::generic_category().message(error).c_str());
      return 1;
    }
  }
  const auto with_pool = [&] { return std::optional(pool.get_executor()); };
  if (profile) {
    const auto r = or_exit([&] { return creates(count, with_pool()); });
    std::printf("%zu creates on a 2-thread pool: timer p99 %.3f ms, worst %.3f ms, %.2f s\n", count, r.p99, r.worst,
                r.seconds);
    print_attribution("creates, 2-thread pool", r, 0.1);
    pool.join();
    pool1.join();
    return 0;
  }
  const std::string n = std::to_string(count), m = std::to_string(events);

  // Each round runs everything once, interleaved, so that a change in the
  // machine's load falls on all alike; ratios are to that round's baseline.
  // With 0 catch-up events, the polls are left out.
  std::vector<row> rows{{"timer alone (baseline)", {}},
                        {n + " creates, on the io_context", {}},
                        {n + " creates, on a 2-thread pool", {}},
                        {"control: " + n + " raw creates, std::thread", {}},
                        {"control: " + n + " raw creates, pool + post", {}},
                        {n + " creates, on a 1-thread pool", {}}};
  if (events > 0) {
    rows.push_back({m + "-event poll, on the io_context", {}});
    rows.push_back({m + "-event poll, on a 2-thread pool", {}});
  }
  bool complete = true;
  for (std::size_t round = 0; round < rounds; ++round) {
    const auto on_pool = or_exit([&] { return creates(count, with_pool()); });
    const auto base = alone(std::max(on_pool.seconds, 1.0));
    const auto thread_control = or_exit([&] { return control_thread(count); });
    const auto pool_control = or_exit([&] { return control_pool(count, pool.get_executor()); });
    const auto on_loop = or_exit([&] { return creates(count, std::nullopt); });
    const auto on_pool1 = or_exit([&] { return creates(count, std::optional(pool1.get_executor())); });
    std::vector<result> in_order{base, on_loop, on_pool, thread_control, pool_control, on_pool1};
    if (events > 0) {
      bool loop_complete = false, pool_complete = false;
      in_order.push_back(or_exit([&] { return catch_up(events, std::nullopt, loop_complete); }));
      in_order.push_back(or_exit([&] { return catch_up(events, with_pool(), pool_complete); }));
      complete = complete && loop_complete && pool_complete;
    }
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i].runs.push_back(in_order[i]);
    std::printf("round %zu of %zu: 1 ms timer lateness (ms); ratio to the timer alone\n", round + 1, rounds);
    std::printf("%-44s %8s %8s %8s %8s %8s\n", "", "p99", "worst", "p99 x", "worst x", "seconds");
    for (const auto& r : rows) print_row(r.what, r.runs.back(), base);
    std::printf("creates on the pool / std::thread control: p99 %.2fx, worst %.2fx\n",
                on_pool.p99 / thread_control.p99, on_pool.worst / thread_control.worst);
    print_attribution("timer alone", base, 2 * base.p99);
    print_attribution("std::thread control", thread_control, 2 * base.p99);
    print_attribution("creates, 2-thread pool", on_pool, 2 * base.p99);
    print_attribution("creates, 1-thread pool", on_pool1, 2 * base.p99);
    print_attribution("pool + post control", pool_control, 2 * base.p99);
    std::fflush(stdout);
  }
  pool.join();
  pool1.join();
  if (rounds > 1) {
    std::printf("median over %zu rounds of each round's p99 ratio\n", rounds);
    for (const auto& r : rows) {
      std::vector<double> to_base, to_control;
      for (std::size_t i = 0; i < rounds; ++i) {
        to_base.push_back(r.runs[i].p99 / rows[0].runs[i].p99);
        to_control.push_back(r.runs[i].p99 / rows[3].runs[i].p99);
      }
      std::printf("%-44s  to the timer alone %6.2fx (%.2f-%.2f)   to the std::thread control %6.2fx\n",
                  r.what.c_str(), median(to_base), *std::min_element(to_base.begin(), to_base.end()),
                  *std::max_element(to_base.begin(), to_base.end()), median(to_control));
    }
  }
  if (!complete) {
    std::fprintf(stderr, "loop_stall: a catch-up poll did not return every event\n");
    return 1;
  }
  return 0;
}
