// How fast do events move through storewatch, compared with a raw Asio channel?
//
// Usage: stream_throughput [events_per_round [rounds [case]]]   (defaults 200000, 5, all)
//
// Every case moves the same N pre-built events between coroutines on one
// io_context (one thread) and is timed from io_context::run() until the
// consumer holds the N-th event. The consumer always co_awaits one event at
// a time; the producers come in two kinds, and each storewatch path is
// compared with a raw channel whose producer works the same way:
//
//   raw channel, try_send    asio::experimental::channel<void(error_code,
//                            event)>, capacity 1024: try_send, co_await
//                            async_send when full -> co_await async_receive
//   raw channel, async_send  the same channel: co_await async_send for every
//                            event -> co_await async_receive
//   raw channel, try_send,   as "raw channel, try_send", on an io_context that
//     with a timer           also has an (idle) asio::steady_timer, as the
//                            poller's io_context has the poller's: a timer
//                            gives Asio's scheduler its reactor task, which it
//                            then runs (an epoll_wait system call) between
//                            posted handlers; without one it never does
//   event_stream, try_push   storewatch::event_stream, capacity 1024:
//                            try_push, co_await async_push when full (as the
//                            poller does) -> co_await async_next
//   event_stream, async_push co_await async_push for every event ->
//                            co_await async_next
//   poller pipeline          memory_source (preloaded) -> poller (batch 1024,
//                            try_push / async_push) -> event_stream ->
//                            co_await async_next
//   listener xK              event_listener over a memory_source with K
//                            handlers
//
// Baselines: "event_stream, async_push" against "raw channel, async_send";
// every other case against "raw channel, try_send". The pipeline and the
// listeners have a timer on their io_context (the poller's) and that
// baseline has none, so they are also compared like for like, against "raw
// channel, try_send, with a timer" (column "vs timer", and the "(with timer)"
// lines). The floors (benchmarks/floors.txt) hold the ratios to the
// timer-less baseline: the stricter, which a path that goes back to one
// scheduler round (and system call) per event fails.

// Since 2026-12-05 a co_await of event_stream::async_next with use_awaitable
// takes a buffered event without suspending, while the raw channel's
// async_receive completes through a posted handler (a scheduler round) per
// event: the difference is the point of that change, and why the stream
// cases can run at several times the channel's rate.
//
// The cases run round-robin (one round of every case, then the next round),
// so a slow phase of this shared machine hits all of them alike. Reported:
// the median events/s over the rounds, and the median of the per-round
// ratios to the case's baseline in the same round. Every case must deliver
// all N events with the right payload bytes, or the program exits with 1.
//
// `case` (a case's number, 1-8, in the order above) runs only that case, and
// no warm-up, for a profiler: valgrind --tool=callgrind
// --toggle-collect='*run_timed*' counts only what the timed part executes.
#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using storewatch::event;

constexpr std::size_t channel_capacity = 1024;
constexpr std::int64_t first_timestamp_ms = 1761135341619;

std::vector<event> make_events(std::size_t n) {
  std::vector<event> events;
  events.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto number = std::to_string(i);
    const auto ms = first_timestamp_ms + static_cast<std::int64_t>(i);
    event e;
    e.name = "CREATE";
    e.data.append("SharedEvents/file-").append(number).append(".txt");
    e.data.append(storewatch::version_separator).append("alice222_").append(std::to_string(ms));
    e.id.append("evt-alice222-").append(number);
    e.actor = "alice222";
    e.occurred_at = storewatch::timestamp{std::chrono::milliseconds{ms}};
    events.push_back(std::move(e));
  }
  return events;
}

// What a consumer saw: how many events, their payload bytes (so the work
// cannot be optimised away and the right events are checked), and when the
// last one arrived.
struct tally {
  std::size_t events = 0;
  std::uint64_t bytes = 0;
  clock_type::time_point last{};

  void add(const event& e) {
    ++events;
    bytes += e.data.size();
  }
};

struct outcome {
  double seconds = 0;
  std::vector<tally> consumers;  // one per consumer / handler
};

// Runs `io` until it has no work left; returns the time from the start of
// run() to the last delivery. Never inlined, so a profiler can count what
// it runs (see the usage above).
[[gnu::noinline]] double run_timed(asio::io_context& io, const tally& last_consumer) {
  const auto start = clock_type::now();
  io.run();
  return std::chrono::duration<double>(last_consumer.last - start).count();
}

void rethrow_on_error(std::exception_ptr error) {
  if (error) std::rethrow_exception(error);
}

// ---------------------------------------------------------------- raw channel

using raw_channel = asio::experimental::channel<void(std::error_code, event)>;

// try_send, and co_await async_send when the channel is full (a failed
// try_send leaves the event as it was).
asio::awaitable<void> raw_try_produce(raw_channel& channel, std::vector<event>& events) {
  for (auto& e : events) {
    if (channel.try_send(std::error_code{}, std::move(e))) continue;
    co_await channel.async_send(std::error_code{}, std::move(e), asio::use_awaitable);
  }
}

asio::awaitable<void> raw_async_produce(raw_channel& channel, std::vector<event>& events) {
  for (auto& e : events) co_await channel.async_send(std::error_code{}, std::move(e), asio::use_awaitable);
}

asio::awaitable<void> raw_consume(raw_channel& channel, std::size_t n, tally& seen) {
  while (seen.events < n) {
    const event e = co_await channel.async_receive(asio::use_awaitable);
    seen.add(e);
  }
  seen.last = clock_type::now();
}

template <asio::awaitable<void> (*Produce)(raw_channel&, std::vector<event>&), bool WithTimer = false>
outcome run_raw_channel(const std::vector<event>& prebuilt) {
  std::vector<event> events = prebuilt;  // moved out while timed
  outcome result{0, std::vector<tally>(1)};
  asio::io_context io;
  // Never waited on: it only gives the io_context's scheduler the reactor
  // task the poller's timer gives the pipeline's.
  std::optional<asio::steady_timer> timer;
  if constexpr (WithTimer) timer.emplace(io);
  raw_channel channel(io, channel_capacity);
  asio::co_spawn(io, Produce(channel, events), rethrow_on_error);
  asio::co_spawn(io, raw_consume(channel, events.size(), result.consumers[0]), rethrow_on_error);
  result.seconds = run_timed(io, result.consumers[0]);
  return result;
}

// --------------------------------------------------------------- event_stream

// The producer half of poller::loop: try_push, async_push when full.
asio::awaitable<void> stream_try_produce(storewatch::event_stream& stream, std::vector<event>& events) {
  for (auto& e : events) {
    if (stream.try_push(e)) continue;
    auto [push_error] = co_await stream.async_push(std::move(e), asio::experimental::as_tuple(asio::use_awaitable));
    if (push_error) throw std::system_error(push_error, "async_push");
  }
}

asio::awaitable<void> stream_async_produce(storewatch::event_stream& stream, std::vector<event>& events) {
  for (auto& e : events) {
    auto [push_error] = co_await stream.async_push(std::move(e), asio::experimental::as_tuple(asio::use_awaitable));
    if (push_error) throw std::system_error(push_error, "async_push");
  }
}

asio::awaitable<void> stream_consume(storewatch::event_stream& stream, std::size_t n, tally& seen) {
  while (seen.events < n) {
    const event e = co_await stream.async_next(asio::use_awaitable);
    seen.add(e);
  }
  seen.last = clock_type::now();
}

template <asio::awaitable<void> (*Produce)(storewatch::event_stream&, std::vector<event>&)>
outcome run_event_stream(const std::vector<event>& prebuilt) {
  std::vector<event> events = prebuilt;
  outcome result{0, std::vector<tally>(1)};
  asio::io_context io;
  storewatch::event_stream stream(io.get_executor(), channel_capacity);
  asio::co_spawn(io, Produce(stream, events), rethrow_on_error);
  asio::co_spawn(io, stream_consume(stream, events.size(), result.consumers[0]), rethrow_on_error);
  result.seconds = run_timed(io, result.consumers[0]);
  return result;
}

// ------------------------------------------------------------ poller pipeline

void preload(storewatch::memory_source& source, const std::vector<event>& prebuilt) {
  for (const auto& e : prebuilt) source.publish(e);
}

outcome run_pipeline(const std::vector<event>& prebuilt) {
  outcome result{0, std::vector<tally>(1)};
  asio::io_context io;
  storewatch::memory_source source(io.get_executor());
  preload(source, prebuilt);
  storewatch::event_stream stream(io.get_executor(), channel_capacity);
  storewatch::poller<storewatch::memory_source> poller(source, stream, {.batch_size = channel_capacity});
  poller.start();
  asio::co_spawn(io, stream_consume(stream, prebuilt.size(), result.consumers[0]), [&poller](std::exception_ptr error) {
    poller.stop();  // the poller is waiting for more events; end it so run() returns
    rethrow_on_error(error);
  });
  result.seconds = run_timed(io, result.consumers[0]);
  return result;
}

// ------------------------------------------------------------------- listener

outcome run_listener(const std::vector<event>& prebuilt, std::size_t handlers) {
  outcome result{0, std::vector<tally>(handlers)};
  asio::io_context io;
  storewatch::memory_source source(io.get_executor());
  preload(source, prebuilt);
  storewatch::listener_options options;
  options.poller.batch_size = channel_capacity;
  options.capacity = channel_capacity;
  storewatch::event_listener listener(io.get_executor(), source, std::move(options));
  const auto n = prebuilt.size();
  for (std::size_t h = 0; h < handlers; ++h) {
    tally& seen = result.consumers[h];
    if (h + 1 < handlers) {
      listener.add_event_listener([&seen](const event& e) { seen.add(e); });
    } else {  // the last handler sees each event last: it ends the run
      listener.add_event_listener([&seen, &listener, n](const event& e) {
        seen.add(e);
        if (seen.events == n) {
          seen.last = clock_type::now();
          listener.stop();
        }
      });
    }
  }
  listener.start();
  result.seconds = run_timed(io, result.consumers.back());
  return result;
}

// ------------------------------------------------------------------- driver

struct bench_case {
  const char* name;
  std::size_t baseline;  // index of the raw channel case driven the same way
  std::function<outcome(const std::vector<event>&)> run;
  std::vector<double> rates{};   // events/s per round
  std::vector<double> ratios{};  // rate / its baseline's rate in the same round
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const auto mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// Every consumer of `o` must have seen all events of `events` exactly.
bool delivered_all(const char* name, const outcome& o, const std::vector<event>& events, std::uint64_t bytes) {
  bool ok = o.seconds > 0;
  for (std::size_t i = 0; i < o.consumers.size(); ++i) {
    const auto& c = o.consumers[i];
    if (c.events != events.size() || c.bytes != bytes) {
      std::fprintf(stderr, "FAIL %s (consumer %zu): delivered %zu of %zu events, %llu of %llu payload bytes\n", name,
                   i, c.events, events.size(), static_cast<unsigned long long>(c.bytes),
                   static_cast<unsigned long long>(bytes));
      ok = false;
    }
  }
  if (o.seconds <= 0) std::fprintf(stderr, "FAIL %s: no time measured\n", name);
  return ok;
}

std::uint64_t payload_bytes(const std::vector<event>& events) {
  std::uint64_t bytes = 0;
  for (const auto& e : events) bytes += e.data.size();
  return bytes;
}

bool parse_count(const char* text, std::size_t& out) {
  const std::string_view s(text);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size() && out > 0;
}

int run_benchmarks(std::size_t n, std::size_t rounds, std::size_t only) {
  const std::vector<event> events = make_events(n);
  const std::uint64_t bytes = payload_bytes(events);

  constexpr std::size_t raw_try = 0;
  constexpr std::size_t raw_async = 1;
  constexpr std::size_t raw_timer = 2;
  std::vector<bench_case> cases;
  cases.push_back({"raw channel, try_send", raw_try, run_raw_channel<raw_try_produce>});
  cases.push_back({"raw channel, async_send", raw_async, run_raw_channel<raw_async_produce>});
  cases.push_back({"raw, try_send, with timer", raw_try, run_raw_channel<raw_try_produce, true>});
  cases.push_back({"event_stream, try_push", raw_try, run_event_stream<stream_try_produce>});
  cases.push_back({"event_stream, async_push", raw_async, run_event_stream<stream_async_produce>});
  cases.push_back({"poller pipeline", raw_try, run_pipeline});
  cases.push_back({"listener, 1 handler", raw_try, [](const auto& ev) { return run_listener(ev, 1); }});
  cases.push_back({"listener, 3 handlers", raw_try, [](const auto& ev) { return run_listener(ev, 3); }});

  if (only > 0) {  // one case, no warm-up: for a profiler
    if (only > cases.size()) return 2;
    auto& c = cases[only - 1];
    for (std::size_t round = 0; round < rounds; ++round) {
      const outcome o = c.run(events);
      if (!delivered_all(c.name, o, events, bytes)) return 1;
      std::printf("%s: %.0f events/s\n", c.name, static_cast<double>(n) / o.seconds);
    }
    return 0;
  }

  // Warm-up (allocator, page faults, caches): a short round, not reported.
  const std::vector<event> warm_events = make_events(std::min<std::size_t>(n, 20000));
  const std::uint64_t warm_bytes = payload_bytes(warm_events);
  for (auto& c : cases) {
    if (!delivered_all(c.name, c.run(warm_events), warm_events, warm_bytes)) return 1;
  }

  std::vector<std::vector<double>> timer_ratios(cases.size());  // to "raw, try_send, with timer"
  for (std::size_t round = 0; round < rounds; ++round) {
    for (auto& c : cases) {
      const outcome o = c.run(events);
      if (!delivered_all(c.name, o, events, bytes)) return 1;
      c.rates.push_back(static_cast<double>(n) / o.seconds);
    }
    for (std::size_t i = 0; i < cases.size(); ++i) {
      cases[i].ratios.push_back(cases[i].rates.back() / cases[cases[i].baseline].rates.back());
      timer_ratios[i].push_back(cases[i].rates.back() / cases[raw_timer].rates.back());
    }
  }

  std::printf("stream_throughput: %zu events per round, %zu rounds, channel capacity %zu, one thread\n", n, rounds,
              channel_capacity);
  std::printf("%-26s %14s %14s %14s %7s %9s  %s\n", "case", "events/s (med)", "min", "max", "ratio", "vs timer",
              "baseline of ratio");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto [lo, hi] = std::minmax_element(c.rates.begin(), c.rates.end());
    std::printf("%-26s %14.0f %14.0f %14.0f %7.2f %9.2f  %s\n", c.name, median(c.rates), *lo, *hi, median(c.ratios),
                median(timer_ratios[i]), cases[c.baseline].name);
  }
  std::printf("(ratio: median over rounds of events/s divided by its baseline's in the same round; vs timer: the same "
              "against \"raw, try_send, with timer\")\n");
  std::printf("stream/raw channel ratio (try_push vs try_send): %.2f\n", median(cases[3].ratios));
  std::printf("stream/raw channel ratio (async_push vs async_send): %.2f\n", median(cases[4].ratios));
  std::printf("pipeline/raw channel ratio: %.2f\n", median(cases[5].ratios));
  std::printf("listener(1)/raw channel ratio: %.2f\n", median(cases[6].ratios));
  std::printf("listener(3)/raw channel ratio: %.2f\n", median(cases[7].ratios));
  std::printf("raw channel with timer/without ratio: %.2f\n", median(cases[raw_timer].ratios));
  std::printf("pipeline/raw channel (with timer) ratio: %.2f\n", median(timer_ratios[5]));
  std::printf("listener(1)/raw channel (with timer) ratio: %.2f\n", median(timer_ratios[6]));
  std::printf("listener(3)/raw channel (with timer) ratio: %.2f\n", median(timer_ratios[7]));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 200000;
  std::size_t rounds = 5;
  std::size_t only = 0;
  if (argc > 4 || (argc > 1 && !parse_count(argv[1], n)) || (argc > 2 && !parse_count(argv[2], rounds)) ||
      (argc > 3 && (!parse_count(argv[3], only) || only > 8))) {
    std::fprintf(stderr, "usage: %s [events_per_round (default 200000) [rounds (default 5) [case 1-8]]]\n",
                 argv[0]);
    return 2;
  }
  try {
    return run_benchmarks(n, rounds, only);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "FAIL: %s\n", error.what());
    return 1;
  }
}
