// End-to-end latency of an event_listener on an S3 journal, and what its
// polls cost in requests. The S3 journal has no change notification: a
// listener finds new events by polling, so its latency is set by the poll
// interval. The poller waits the interval after each poll short of a full
// batch, so polls start every interval + one poll's time; an event
// published at a random moment waits half of that on average, then for the
// poll that reads it (LIST + GET).
//
// Baseline, measured in the same run on the same events: a raw poll loop
// with a bare s3::client (the client the source uses, the same store) at
// the same interval, doing LIST + GET itself: it lists bob123's journal
// folder after the newest object it has, GETs each new object, and waits
// the interval after each poll, unless it found a full page of 1000 (the
// poller waits after each poll short of its batch, 256 by default). It does
// no cursor, late window or decoding: what any poller of this journal must
// do. The publishes run one after another (one object each, names ordered
// by their stamps), so the loop's k-th new object is event k.
//
// One process, one io_context: alice222's s3_store publishes M events to
// bob123 at random gaps (uniform over 0.3-1.7 poll intervals, so that
// publishes do not keep step with the polls); an event_listener on bob123's
// journal and the raw loop both read them. Latency = from the publish's
// completion (its PUT acknowledged) to the handler running, or to the raw
// loop holding the object's body, both steady_clock (a delivery that comes
// before the publish's completion is seen counts as 0). Each poll's requests
// are counted (LIST, GET): idle polls (nothing new), busy ones, and all
// requests of the run per event. A p99 is printed from 100 samples on; the
// maximum always.
//
// Two runs, each under a fresh key prefix: a 100 ms poll interval, and the
// default (poller_options::poll_interval, 5 s; about 6 s per event).
//
// Hints mode (`s3_latency hints ...`, built with storewatch::redis): the
// listeners in another process, with and without Redis wake-up hints, on
// the same publishes. This process's alice222 s3_store, with a
// redis::hint_publisher, publishes each event to two users, bobhinted and
// bobplain, at random gaps (uniform over 0.3-1.7 poll intervals); a child
// process (this program, `listen` mode) runs an event_listener on each
// user's journal at the same interval, bobhinted's source woken by a
// redis::hint_subscriber, bobplain's not (the baseline). Latency = from the
// publish's completion in this process to the handler running in the
// child, both CLOCK_MONOTONIC (comparable between processes). Requests per
// event: each source's client().counts() over the run (LIST + GET, retries
// included), from the child's first polls on. bobhinted's source has the
// default s3_journal_options::hinted_poll_interval (60 s): while its hints
// are live its poller polls when a hint comes and otherwise every 60 s, so
// a hinted poll stands in for the interval's.
//
// Usage: s3_latency [events at 100 ms (default 100; 0: skip) [events at the default interval (default 0: skip)]]
//        s3_latency hints [events (default 100) [interval ms (default: poller_options' 5000)]]
// The store: STOREWATCH_S3_ENDPOINT, STOREWATCH_S3_BUCKET and AWS_* (as
// `scripts/s3-server.sh start` exports them), else the s3rver of the CTest
// fixture (STOREWATCH_S3_STATE_DIR). Hints mode's Redis: STOREWATCH_REDIS_URL
// (as `scripts/redis-server.sh start` exports it), else the redis-server of
// the CTest fixture (STOREWATCH_REDIS_STATE_DIR).
#include "bench_common.hpp"

#include "support/process.hpp"
#include "support/s3_server.hpp"

#include <storewatch/store/s3_store.hpp>
#include <storewatch/storewatch.hpp>
#ifdef STOREWATCH_WITH_REDIS
#include <storewatch/redis/hints.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace storewatch::bench;
namespace s3 = storewatch::s3;

struct run_figures {
  std::chrono::milliseconds interval{};
  std::size_t events = 0;
  std::vector<double> latencies_ms;
  std::vector<double> raw_latencies_ms;  // the baseline's, by event
  std::uint64_t raw_lists = 0, raw_gets = 0;
  double seconds = 0;  // from the first publish to the last delivery
  std::size_t idle_polls = 0, busy_polls = 0;
  std::uint64_t idle_lists = 0, idle_gets = 0, busy_lists = 0, busy_gets = 0;
  double idle_poll_seconds = 0, busy_poll_seconds = 0;  // summed over the polls
  std::uint64_t retries = 0;
  std::size_t errors = 0;
};

/// Publishes `count` events ("0", "1", ...) to bob123, `gap` apart each,
/// and notes when each publish completed.
asio::awaitable<void> publish_events(s3::s3_store& alice, std::size_t count, std::function<double()> gap,
                                     std::vector<clock_type::time_point>& published, bool& done,
                                     std::vector<std::string> users = {"bob123"}) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (std::size_t i = 0; i < count; ++i) {
    timer.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(gap())));
    co_await timer.async_wait(asio::use_awaitable);
    co_await alice.async_publish_event("PING", std::to_string(i), users, asio::use_awaitable);
    published[i] = clock_type::now();
  }
  done = true;
}

/// Gaps between publishes, in seconds: uniform over 0.3-1.7 `interval`s,
/// so that publishes do not keep step with the polls.
std::function<double()> random_gaps(std::chrono::milliseconds interval) {
  return [random = std::minstd_rand{std::random_device{}()}, spread = std::uniform_real_distribution<double>{0.3, 1.7},
          interval_s = std::chrono::duration<double>(interval).count()]() mutable {
    return interval_s * spread(random);
  };
}

/// The baseline (see the file comment): polls bob123's journal with
/// `client`, `interval` apart, until `count` objects are
/// read or `stop` is set; notes when each object's body arrived.
asio::awaitable<void> raw_poll_loop(s3::client& client, std::chrono::milliseconds interval, std::size_t count,
                                    std::vector<clock_type::time_point>& arrived, const bool& stop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  s3::list_request request;
  request.prefix = s3::journal_prefix("bob123");
  std::size_t received = 0;
  while (received < count && !stop) {
    std::vector<std::string> fresh;
    request.continuation_token.clear();
    for (;;) {
      auto page = co_await client.list(request);
      for (auto& object : page.objects) fresh.push_back(std::move(object.key));
      if (!page.truncated) break;
      request.continuation_token = std::move(page.next_continuation_token);
    }
    for (const auto& name : fresh) {
      const auto body = co_await client.get(name);
      if (!body) throw std::runtime_error("object " + name + " is gone");
      if (received < count) arrived[received++] = clock_type::now();
    }
    if (!fresh.empty()) request.start_after = fresh.back();
    if (fresh.size() < 1000) {  // as the poller: at once again only after a full batch
      timer.expires_after(interval);
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
}

run_figures measure(std::chrono::milliseconds interval, std::size_t count) {
  const auto where = storewatch::test_support::test_server_config();  // a fresh key prefix
  asio::io_context io;
  s3::s3_store alice(io.get_executor(), where, "alice222");
  s3::s3_store bob(io.get_executor(), where, "bob123");
  auto source = bob.events();
  counting_source counted(source);
  s3::client raw_client(io.get_executor(), where);

  run_figures out;
  out.interval = interval;
  out.events = count;
  storewatch::listener_options options;
  options.poller.poll_interval = interval;
  options.on_error = [&](std::error_code, std::string_view message) {
    std::fprintf(stderr, "s3_latency: listener: %.*s\n", static_cast<int>(message.size()), message.data());
    ++out.errors;
  };
  storewatch::event_listener listener(io.get_executor(), counted, options);
  std::vector<clock_type::time_point> published(count), arrived(count);
  std::vector<bool> seen(count, false);
  std::size_t received = 0;
  clock_type::time_point last_arrival;
  listener.add_event_listener([&](const storewatch::event& e) {
    const auto at = clock_type::now();
    std::size_t i = count;
    try {
      i = std::stoul(e.data);
    } catch (const std::exception&) {
    }
    if (e.name != "PING" || i >= count || seen[i]) {
      std::fprintf(stderr, "s3_latency: unexpected or repeated event %s %s\n", e.name.c_str(), e.data.c_str());
      ++out.errors;
      return;
    }
    seen[i] = true;
    arrived[i] = at;
    last_arrival = at;
    if (++received == count) listener.stop();
  });
  listener.start();
  // Listening (one poll done) before the first publish.
  run_until(io, [&] { return !counted.polls().empty(); });
  const auto polls_before = counted.polls().size();
  std::vector<clock_type::time_point> raw_arrived(count);
  bool raw_stop = false, raw_done = false;
  std::exception_ptr raw_failure;
  asio::co_spawn(io, raw_poll_loop(raw_client, interval, count, raw_arrived, raw_stop), [&](std::exception_ptr e) {
    raw_failure = e;
    raw_done = true;
  });

  bool written = false;
  std::exception_ptr failure;
  const auto start = clock_type::now();
  asio::co_spawn(io, publish_events(alice, count, random_gaps(interval), published, written),
                 [&](std::exception_ptr e) {
                   failure = e;
                   if (e) {
                     written = true;
                     listener.stop();
                   }
                 });
  run_until(io, [&] { return written; });
  // Every event should arrive within a few intervals of its publish; if
  // some never do, stop and report them missing.
  const auto deadline = clock_type::now() + 3 * interval + std::chrono::seconds(30);
  const auto finished = [&] { return !listener.running() && counted.in_flight() == 0 && raw_done; };
  while (!finished() && clock_type::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
  listener.stop();
  raw_stop = true;
  run_until(io, finished);
  io.restart();
  io.run_for(std::chrono::seconds(30));  // the stopped loop's last steps
  if (failure) std::rethrow_exception(failure);
  if (raw_failure) std::rethrow_exception(raw_failure);
  out.seconds = std::chrono::duration<double>(last_arrival - start).count();

  const auto after_publish_ms = [&](clock_type::time_point at, std::size_t i) {
    return std::max(0.0, std::chrono::duration<double, std::milli>(at - published[i]).count());
  };
  out.raw_latencies_ms.assign(count, -1);
  for (std::size_t i = 0; i < count; ++i) {
    if (seen[i]) out.latencies_ms.push_back(after_publish_ms(arrived[i], i));
    if (raw_arrived[i] != clock_type::time_point{}) out.raw_latencies_ms[i] = after_publish_ms(raw_arrived[i], i);
  }
  out.raw_lists = raw_client.counts().list;
  out.raw_gets = raw_client.counts().get;
  const auto& polls = counted.polls();
  for (std::size_t p = polls_before; p < polls.size(); ++p) {
    if (polls[p].events == 0) {
      ++out.idle_polls;
      out.idle_lists += polls[p].lists;
      out.idle_gets += polls[p].gets;
      out.idle_poll_seconds += polls[p].seconds;
    } else {
      ++out.busy_polls;
      out.busy_lists += polls[p].lists;
      out.busy_gets += polls[p].gets;
      out.busy_poll_seconds += polls[p].seconds;
    }
  }
  out.retries = source.client().counts().retries;
  return out;
}

/// Prints a latency table's header; returns what prints one of its rows
/// (median/interval with `decimals` decimals).
auto latency_table(double interval_ms, int decimals) {
  std::printf("  %-46s %8s %10s %10s %10s %16s\n", "", "samples", "median ms", "p99 ms", "max ms",
              "median/interval");
  return [interval_ms, decimals](const char* what, const latency_summary& s) {
    std::printf("  %-46s %8zu %10.1f %10s %10.1f %16.*f\n", what, s.samples, s.median, p99_text(s, "%.1f").c_str(),
                s.max, decimals, s.median / interval_ms);
  };
}

void print(const run_figures& r) {
  const double interval_ms = static_cast<double>(r.interval.count());
  const auto ours = summarize(r.latencies_ms);
  const auto raw = summarize(r.raw_latencies_ms);
  const auto per = [](std::uint64_t n, std::size_t d) { return d == 0 ? 0.0 : static_cast<double>(n) / d; };
  std::printf("poll interval %.0f ms, %zu events over %.1f s, each read by both:\n", interval_ms, r.events,
              r.seconds);
  const auto row = latency_table(interval_ms, 2);
  row("raw LIST + GET loop, same client (baseline)", raw);
  row("event_listener handler", ours);
  if (raw.median > 0) {
    std::printf("  ratio to baseline: median %.2f", ours.median / raw.median);
    if (ours.samples >= 100 && raw.samples >= 100) std::printf(", p99 %.2f", ours.p99 / raw.p99);
    std::printf(", max %.2f (lower is faster)\n", ours.max / raw.max);
  }
  const auto mean_ms = [](double seconds, std::size_t n) { return n == 0 ? 0.0 : seconds * 1000 / n; };
  std::printf("  listener's idle polls %4zu: LIST %.2f GET %.2f per poll, %6.1f ms each\n", r.idle_polls,
              per(r.idle_lists, r.idle_polls), per(r.idle_gets, r.idle_polls),
              mean_ms(r.idle_poll_seconds, r.idle_polls));
  std::printf("  listener's busy polls %4zu: LIST %.2f GET %.2f per poll, %6.1f ms each\n", r.busy_polls,
              per(r.busy_lists, r.busy_polls), per(r.busy_gets, r.busy_polls),
              mean_ms(r.busy_poll_seconds, r.busy_polls));
  const auto requests = r.idle_lists + r.idle_gets + r.busy_lists + r.busy_gets;
  std::printf("  listener's requests per event: %.2f (LIST %.2f, GET %.2f)%s\n", per(requests, r.events),
              per(r.idle_lists + r.busy_lists, r.events), per(r.idle_gets + r.busy_gets, r.events),
              r.retries != 0 ? "  (with retries)" : "");
  std::printf("  baseline's requests per event: %.2f (LIST %.2f, GET %.2f)\n", per(r.raw_lists + r.raw_gets, r.events),
              per(r.raw_lists, r.events), per(r.raw_gets, r.events));
}

#ifdef STOREWATCH_WITH_REDIS
// ---- hints mode ----

const std::string hinted_user = "bobhinted", plain_user = "bobplain";

/// The Redis server: STOREWATCH_REDIS_URL, else the CTest fixture's.
storewatch::redis::url bench_redis() {
  if (const char* url = std::getenv("STOREWATCH_REDIS_URL"); url != nullptr && *url != '\0') {
    return storewatch::redis::parse_url(url);
  }
  const char* state = std::getenv("STOREWATCH_REDIS_STATE_DIR");
  std::ifstream in(std::string(state == nullptr ? "" : state) + "/redis.port");
  std::string port;
  if (state == nullptr || !in || !std::getline(in, port) || port.empty()) {
    throw std::runtime_error("no Redis server: set STOREWATCH_REDIS_URL (scripts/redis-server.sh start), or run "
                             "through ctest (its redis_start fixture sets STOREWATCH_REDIS_STATE_DIR)");
  }
  return storewatch::redis::parse_url("redis://127.0.0.1:" + port + "/0");
}

/// The child (`listen PREFIX EVENTS INTERVAL_MS`): listens to bobhinted's
/// journal (woken by hints) and bobplain's (not) under PREFIX; prints
/// "ready" once both have polled and the subscriber is subscribed, then
/// "H|P <event> <CLOCK_MONOTONIC ns>" per delivery, and at the end
/// "requests H|P <LIST> <GET>" since "ready".
int listen_child(const std::string& prefix, std::size_t count, std::chrono::milliseconds interval) {
  auto where = storewatch::test_support::test_server_config();
  where.prefix = prefix;
  asio::io_context io;
  auto subscriber = std::make_shared<storewatch::redis::hint_subscriber>(io.get_executor(), bench_redis());
  s3::s3_store hinted_bob(io.get_executor(), where, hinted_user), plain_bob(io.get_executor(), where, plain_user);
  s3::s3_journal_options hinted_options;
  hinted_options.hints = subscriber;
  auto hinted_source = hinted_bob.events(std::move(hinted_options));
  auto plain_source = plain_bob.events();
  counting_source hinted_counted(hinted_source), plain_counted(plain_source);
  storewatch::listener_options options;
  options.poller.poll_interval = interval;
  options.on_error = [](std::error_code, std::string_view message) {
    std::fprintf(stderr, "s3_latency listen: %.*s\n", static_cast<int>(message.size()), message.data());
  };
  storewatch::event_listener hinted(io.get_executor(), hinted_counted, options);
  storewatch::event_listener plain(io.get_executor(), plain_counted, options);
  std::size_t delivered = 0;
  const auto handler = [&](const char* tag) {
    return [&, tag](const storewatch::event& e) {
      if (e.name != "PING") return;
      std::printf("%s %s %lld\n", tag, e.data.c_str(), static_cast<long long>(now_ns()));
      std::fflush(stdout);
      ++delivered;
    };
  };
  hinted.add_event_listener(handler("H"));
  plain.add_event_listener(handler("P"));
  hinted.start();
  plain.start();
  run_until(io, [&] {
    return !hinted_counted.polls().empty() && !plain_counted.polls().empty() && subscriber->ready();
  });
  const auto hinted_before = hinted_source.client().counts(), plain_before = plain_source.client().counts();
  std::printf("ready\n");
  std::fflush(stdout);
  // Until every event arrived twice, or well after the last should have.
  const auto deadline = clock_type::now() + 2 * interval * static_cast<long>(count) + std::chrono::seconds(60);
  while (delivered < 2 * count && clock_type::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
  hinted.stop();
  plain.stop();
  subscriber.reset();
  io.run_for(std::chrono::seconds(5));  // the stopped loops' last steps
  const auto hinted_after = hinted_source.client().counts(), plain_after = plain_source.client().counts();
  std::printf("requests H %llu %llu\n", static_cast<unsigned long long>(hinted_after.list - hinted_before.list),
              static_cast<unsigned long long>(hinted_after.get - hinted_before.get));
  std::printf("requests P %llu %llu\n", static_cast<unsigned long long>(plain_after.list - plain_before.list),
              static_cast<unsigned long long>(plain_after.get - plain_before.get));
  return delivered == 2 * count ? 0 : 1;
}

struct hinted_figures {
  std::vector<double> hinted_ms, plain_ms;  // by event; -1: missing
  std::uint64_t hinted_lists = 0, hinted_gets = 0, plain_lists = 0, plain_gets = 0;
  std::uint64_t hints_sent = 0, hints_dropped = 0;
  double seconds = 0;
};

/// The parent: publishes while the child listens (see the file comment).
hinted_figures measure_hints(const char* self, std::size_t count, std::chrono::milliseconds interval) {
  const auto where = storewatch::test_support::test_server_config();  // a fresh key prefix
  asio::io_context io;
  auto publisher = std::make_shared<storewatch::redis::hint_publisher>(io.get_executor(), bench_redis());
  s3::s3_store_options store_options;
  store_options.hints = publisher;
  s3::s3_store alice(io.get_executor(), where, "alice222", std::move(store_options));
  run_until(io, [&] { return publisher->ready(); });

  namespace ts = storewatch::test_support;
  ts::spawn_options spawn;
  spawn.in = ts::child_stream::null();
  spawn.out = ts::child_stream::piped();
  ts::process child({self, "listen", where.prefix, std::to_string(count), std::to_string(interval.count())}, spawn);
  if (!ts::wait_for([&] { return child.out().find("ready\n") != std::string::npos || child.exited(); },
                    std::chrono::minutes(5), [&] { child.pump(); }) ||
      child.out().find("ready\n") == std::string::npos) {
    throw std::runtime_error("the listening process did not get ready: " + child.status_text());
  }

  std::vector<clock_type::time_point> published(count);
  bool written = false;
  std::exception_ptr failure;
  const auto start = clock_type::now();
  asio::co_spawn(io, publish_events(alice, count, random_gaps(interval), published, written, {hinted_user, plain_user}),
                 [&](std::exception_ptr e) {
                   failure = e;
                   written = true;
                 });
  // Running the publisher (and reading the child's lines) until every
  // event is written, then until the child is done.
  while (!written) {
    io.run_one_for(std::chrono::milliseconds(5));
    child.pump(std::chrono::milliseconds(0));
  }
  if (failure) std::rethrow_exception(failure);
  // The last hint leaves only while this io_context runs: flushed, as a
  // writer about to stop must.
  bool flushed = false;
  publisher->async_flush(std::chrono::seconds(30), [&](std::error_code) { flushed = true; });
  run_until(io, [&] { return flushed; });
  if (!child.wait(3 * interval + std::chrono::seconds(90))) throw std::runtime_error("the listening process hung");

  hinted_figures out;
  out.hinted_ms.assign(count, -1);
  out.plain_ms.assign(count, -1);
  out.hints_sent = publisher->sent();
  out.hints_dropped = publisher->dropped();
  std::istringstream lines(child.out());
  std::string tag;
  clock_type::time_point last = start;
  while (lines >> tag) {
    if (tag == "ready") continue;
    if (tag == "requests") {
      std::string which;
      std::uint64_t lists = 0, gets = 0;
      lines >> which >> lists >> gets;
      (which == "H" ? out.hinted_lists : out.plain_lists) = lists;
      (which == "H" ? out.hinted_gets : out.plain_gets) = gets;
      continue;
    }
    std::size_t i = count;
    long long ns = 0;
    lines >> i >> ns;
    if (i >= count) throw std::runtime_error("the listening process printed " + tag + " " + std::to_string(i));
    const clock_type::time_point at{std::chrono::nanoseconds(ns)};
    last = std::max(last, at);
    (tag == "H" ? out.hinted_ms : out.plain_ms)[i] =
        std::max(0.0, std::chrono::duration<double, std::milli>(at - published[i]).count());
  }
  out.seconds = std::chrono::duration<double>(last - start).count();
  if (!child.succeeded()) throw std::runtime_error("the listening process failed: " + child.status_text());
  return out;
}

void print_hints(const hinted_figures& r, std::chrono::milliseconds interval) {
  const double interval_ms = static_cast<double>(interval.count());
  const auto hinted = summarize(r.hinted_ms), plain = summarize(r.plain_ms);
  const auto events = r.hinted_ms.size();
  std::printf("poll interval %.0f ms, %zu events over %.1f s, each to both users; listeners in another process:\n",
              interval_ms, events, r.seconds);
  const auto row = latency_table(interval_ms, 4);
  row("no hints: polls at the interval (baseline)", plain);
  const auto safety_net = std::to_string(s3::s3_journal_options{}.hinted_poll_interval.count() / 1000);
  row(("hints via Redis pub/sub, " + safety_net + " s while live").c_str(), hinted);
  if (plain.median > 0) {
    std::printf("  hinted/baseline: median %.4f", hinted.median / plain.median);
    if (hinted.samples >= 100 && plain.samples >= 100) {
      std::printf(", p99 %.4f; p99/interval %.4f", hinted.p99 / plain.p99, hinted.p99 / interval_ms);
    }
    std::printf(" (lower is faster)\n");
  }
  // The slowest hinted deliveries beside the same events' unhinted ones:
  // close to them, the hint did not bring the poll; far below, it was late.
  std::vector<std::size_t> order(events);
  for (std::size_t i = 0; i < events; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return r.hinted_ms[a] > r.hinted_ms[b]; });
  std::printf("  slowest with hints:");
  for (std::size_t k = 0; k < std::min<std::size_t>(3, events); ++k) {
    std::printf(" event %zu %.1f ms (no hints %.1f ms)%s", order[k], r.hinted_ms[order[k]], r.plain_ms[order[k]],
                k + 1 < std::min<std::size_t>(3, events) ? "," : "\n");
  }
  const auto per = [&](std::uint64_t n) { return events == 0 ? 0.0 : static_cast<double>(n) / events; };
  std::printf("  requests per event, no hints: %.2f (LIST %.2f, GET %.2f)\n", per(r.plain_lists + r.plain_gets),
              per(r.plain_lists), per(r.plain_gets));
  std::printf("  requests per event, hints:    %.2f (LIST %.2f, GET %.2f); hints sent %llu, dropped %llu\n",
              per(r.hinted_lists + r.hinted_gets), per(r.hinted_lists), per(r.hinted_gets),
              static_cast<unsigned long long>(r.hints_sent), static_cast<unsigned long long>(r.hints_dropped));
}

int run_hints_mode(int argc, char** argv) {
  const long events = argc > 2 ? std::atol(argv[2]) : 100;
  const long interval_ms = argc > 3 ? std::atol(argv[3]) : storewatch::poller_options{}.poll_interval.count();
  if (events <= 0 || interval_ms <= 0) {
    std::fprintf(stderr, "usage: %s hints [events (default 100) [interval ms (default 5000)]]\n", argv[0]);
    return 2;
  }
  const std::chrono::milliseconds interval(interval_ms);
  std::printf("end-to-end latency: s3_store publish completed -> event_listener handler in another process, "
              "with and without Redis hints\n");
  const auto r = measure_hints(argv[0], static_cast<std::size_t>(events), interval);
  print_hints(r, interval);
  const auto hinted = summarize(r.hinted_ms).samples, plain = summarize(r.plain_ms).samples;
  if (hinted != r.hinted_ms.size() || plain != r.plain_ms.size()) {
    std::fprintf(stderr, "s3_latency: %zu (hinted) and %zu (no hints) of %ld events arrived\n", hinted, plain, events);
    return 1;
  }
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string_view(argv[1]) == "hints" || std::string_view(argv[1]) == "listen")) {
#ifdef STOREWATCH_WITH_REDIS
    try {
      if (std::string_view(argv[1]) == "listen" && argc == 5) {
        return listen_child(argv[2], static_cast<std::size_t>(std::atol(argv[3])),
                            std::chrono::milliseconds(std::atol(argv[4])));
      }
      return run_hints_mode(argc, argv);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "s3_latency: %s\n", error.what());
      return 1;
    }
#else
    std::fprintf(stderr, "s3_latency: hints mode needs the Redis component (storewatch::redis)\n");
    return 2;
#endif
  }
  const long fast_events = argc > 1 ? std::atol(argv[1]) : 100;
  const long slow_events = argc > 2 ? std::atol(argv[2]) : 0;
  if (fast_events < 0 || slow_events < 0 || fast_events + slow_events == 0) {
    std::fprintf(stderr, "usage: %s [events at 100 ms (0: skip) [events at the default interval (0: skip)]]\n", argv[0]);
    return 2;
  }
  try {
    std::printf("end-to-end latency: s3_store publish completed -> event_listener handler, one process\n");
    std::vector<run_figures> runs;
    if (fast_events > 0) {
      runs.push_back(measure(std::chrono::milliseconds(100), static_cast<std::size_t>(fast_events)));
      print(runs.back());
    }
    if (slow_events > 0) {
      runs.push_back(measure(storewatch::poller_options{}.poll_interval, static_cast<std::size_t>(slow_events)));
      print(runs.back());
    }
    for (const auto& r : runs) {
      const auto raw_samples = summarize(r.raw_latencies_ms).samples;
      if (r.latencies_ms.size() != r.events || raw_samples != r.events || r.errors != 0) {
        std::fprintf(stderr, "s3_latency: %zu (baseline: %zu) of %zu events arrived, %zu errors\n",
                     r.latencies_ms.size(), raw_samples, r.events, r.errors);
        return 1;
      }
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "s3_latency: %s\n", error.what());
    return 1;
  }
  return 0;
}
