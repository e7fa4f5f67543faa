// How fast does a reader catch up on a long S3 journal, how many requests
// does that take, and what does an idle poll cost afterwards?
//
// Setup (not measured): alice222 publishes N events to bob123 with
// s3_store::async_publish_event from 8 store objects at once, under a fresh
// key prefix: N journal objects, one per publish, as a store writes them.
// Then each reader starts from the empty cursor:
//
//   baseline   a bare S3 client LISTs bob123's journal folder and GETs every
//              object, 8 GETs at once (the width s3_journal_source fetches
//              with): the requests any reader of one-object-per-operation
//              journals must make, without cursor, re-listing or parsing.
//              The S3 readers' ratio is their events/s over this one's, so
//              it says what the journal adds to the server's own cost (on
//              s3rver the server is most of it, and a ratio to a local
//              journal would mostly measure s3rver).
//   source     s3_journal_source::async_poll in a loop, 1000 events a poll
//   listener   an event_listener, batch 1000, every event to a handler
//   local      the same N events read from a local_store journal in a temp
//              folder, by journal_source (1000 a poll) and an event_listener
//              (batch 1000): ratio S3/local, what a bucket costs a reader.
//
// Then the idle cost: K polls with nothing new from the caught-up cursor.
//
// Then compaction: s3_store::async_compact folds every record but the newest
// into segments (settled 0: as if the whole history were older than the late
// window), and the source catches up from the empty cursor again: events/s
// with and without compaction (ratio in the same run), GETs per 1000
// events, and the idle polls after it (one LIST each).
// With --compact-every K the compacted journal is another one: the setup
// also publishes the same N events under a second fresh key prefix, K at a
// time, and compacts that journal after every K and after the last (as an
// operator running `storewatch compact` while the journal grows would,
// except that here nothing writes while a compaction runs, so settled 0),
// so no compaction meets more than about K record objects (each folds
// only records stamped before the newest and before the server's clock as
// its client knows it, to within about a second, and leaves the rest to the
// next; the last leaves them as objects). The baseline and
// the uncompacted readers read the first journal's N record objects; the
// compacted catch-up reads the second, and the compaction figures are the
// sum of its compactions.
// A poll lists the journal from the late window (s3_journal_options::
// late_window, 60 s) before the newest event it delivered: one LIST while
// fewer than 1000 objects are in that window. With more, an idle poll lists
// only what follows the newest, one LIST, except the first of a fresh source
// and every 12th, which list the window: one LIST per 1000 objects in it
// (detail::s3_listing_plan). When the setup wrote 1000 or more objects in the
// last 60 s of its run, the benchmark also waits until the window has
// passed, publishes one event, reads it, and measures K idle polls again:
// the steady state of a listener after a burst.
//
// Every figure comes from one run of the program: it prints the sizes each
// is from, which readers it timed, and for the idle polls how old the newest
// object was (whether the late window had passed).
//
// Usage: s3_catchup [events (default 100000) [mode (default all)]] [--request-timeout SECONDS]
//                   [--compact-every K]
//   mode: all | source | listener | baseline | compacted: the S3 readers
//   timed (the baseline, the local readers and the idle polls always run;
//   without an S3 reader, the idle polls start from the cursor a reader
//   would have after the catch-up, made from the listing). `all` and
//   `source` also compact and read again; `compacted` does only that after
//   the baseline. On s3rver a LIST costs time in proportion to the objects
//   in the folder, so 100,000 events take hours to catch up on there
//   without compaction: `baseline` or `compacted` measures the rest.
//   --compact-every K: the compacted journal grown and compacted every K
//   events (above), for the modes that compact. s3rver deletes a key in
//   time in proportion to its folder's objects, so compacting N objects at
//   once takes time in proportion to N squared (36 min at 30,000 on a
//   loaded 2-core machine), and K at a time N times K.
//   --request-timeout SECONDS: each request's timeout (http_options::
//   request_timeout, default 10 s) for the readers, the baseline and the
//   compaction, with a retry budget (client_options::retry_budget) of twice
//   that, at least its default 20 s. Not for the writers of the setup and of
//   the settling event: their budget is bounded by the journal's landing
//   limit (s3_store_options::journal_landing_limit). s3rver takes time in
//   proportion to the objects in a folder for each LIST page and for each
//   key of a DeleteObjects (it reads the folder after every delete), so at
//   tens of thousands of events it needs more than the default.
// The store: STOREWATCH_S3_ENDPOINT, STOREWATCH_S3_BUCKET and AWS_* (as
// `scripts/s3-server.sh start` exports them), else the s3rver of the CTest
// fixture (STOREWATCH_S3_STATE_DIR). The objects are left under the prefixes
// (the fixture's s3rver_stop removes s3rver's data).
#include "bench_common.hpp"

#include "support/s3_server.hpp"

#include <storewatch/store/s3_store.hpp>
#include <storewatch/storewatch.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using namespace storewatch::bench;
namespace s3 = storewatch::s3;

const std::string reader_user = "bob123";
const std::string writer_user = "alice222";
const std::string bench_event = "BENCH";
constexpr std::size_t batch = 1000;         // events per poll, every reader
constexpr std::size_t store_objects = 8;    // concurrent writers in the setup
constexpr std::size_t fetch_width = 8;      // GETs at once, as s3_journal_source fetches
constexpr int idle_polls = 5;
constexpr std::uint64_t late_window_ms = 60'000;  // s3_journal_options::late_window's default

const std::string settle_data = "settle";  // the event `settle` publishes

/// The client settings of every client but the writers' (--request-timeout).
s3::client_options reader_client{};

/// The options of a reading or compacting store: `reader_client`.
s3::s3_store_options reader_store_options() {
  s3::s3_store_options options;
  options.client = reader_client;
  return options;
}

std::string event_data(std::size_t i) { return "SharedEvents/file-" + std::to_string(i) + ".txt"; }

/// The events a reader delivered, by the number in their data; throws on
/// an event the setup did not write, or one delivered twice.
class tally {
 public:
  explicit tally(std::size_t count) : seen_(count, false) {}

  void add(const storewatch::event& e) {
    if (e.name == bench_event && e.data == settle_data) return;  // published by `settle`, not by the setup
    constexpr std::string_view head = "SharedEvents/file-";
    const std::string_view data = e.data;
    std::size_t i = 0;
    bool ok = e.name == bench_event && e.actor == writer_user && data.starts_with(head) && data.ends_with(".txt");
    if (ok) {
      const auto digits = data.substr(head.size(), data.size() - head.size() - 4);
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
      ok = ec == std::errc{} && end == digits.data() + digits.size() && i < seen_.size() && !seen_[i];
    }
    if (!ok) throw std::runtime_error("unexpected or repeated event " + e.name + " " + e.data);
    seen_[i] = true;
    ++count_;
  }
  std::size_t count() const noexcept { return count_; }

 private:
  std::vector<bool> seen_;
  std::size_t count_ = 0;
};

/// Runs what is left on `io` (a stopped listener's loop, cancelled
/// requests), so that the objects it refers to may go.
void drain(asio::io_context& io) {
  io.restart();
  io.run_for(std::chrono::seconds(30));
  if (!io.stopped()) std::fprintf(stderr, "s3_catchup: warning: work still pending after 30 s\n");
}

/// Runs `work` on `io` to its end; rethrows what it threw.
void run(asio::io_context& io, asio::awaitable<void> work) {
  storewatch::test_support::run_coroutine(io, std::move(work), bench_limit);
}

s3::request_counts operator+(const s3::request_counts& a, const s3::request_counts& b) {
  return {a.get + b.get,         a.put + b.put,         a.remove + b.remove,     a.head + b.head,
          a.list + b.list,       a.retries + b.retries, a.failures + b.failures, a.multipart + b.multipart,
          a.remove_batches + b.remove_batches};
}

// ---- setup -----------------------------------------------------------------

struct write_figures {
  double seconds = 0;
  double publish_seconds = 0;  // summed over publishes: mean latency = this / N
  s3::request_counts counts{};
};

asio::awaitable<void> publish_share(s3::s3_store& store, std::size_t& next, std::size_t end, write_figures& out,
                                    std::size_t& done) {
  const std::vector<std::string> users{reader_user};
  while (next < end) {
    const auto i = next++;
    const auto started = clock_type::now();
    co_await store.async_publish_event(bench_event, event_data(i), users, asio::use_awaitable);
    out.publish_seconds += seconds_since(started);
    if (++done % 10'000 == 0) std::fprintf(stderr, "s3_catchup: %zu events written\n", done);
  }
}

/// Publishes the events numbered `first` to `end` (not included).
write_figures write_events(const s3::config& where, std::size_t first, std::size_t end) {
  asio::io_context io;
  std::vector<std::unique_ptr<s3::s3_store>> stores;
  for (std::size_t i = 0; i < store_objects; ++i) {
    stores.push_back(std::make_unique<s3::s3_store>(io.get_executor(), where, writer_user));
  }
  write_figures out;
  std::size_t next = first, done = first, finished = 0;
  std::exception_ptr failure;
  const auto start = clock_type::now();
  for (auto& store : stores) {
    asio::co_spawn(io, publish_share(*store, next, end, out, done), [&](std::exception_ptr e) {
      if (e && !failure) failure = e;
      ++finished;
    });
  }
  run_until(io, [&] { return finished == stores.size(); });
  out.seconds = seconds_since(start);
  for (const auto& store : stores) out.counts = out.counts + store->client().counts();
  if (failure) std::rethrow_exception(failure);
  drain(io);
  return out;
}

// ---- baseline: LIST + GET with a bare client -------------------------------

struct raw_figures {
  double list_seconds = 0;
  double get_seconds = 0;
  std::vector<double> page_seconds;
  double get_latency_sum = 0;
  std::vector<std::string> names;  // the journal's objects, relative to the key prefix
  std::size_t records = 0;
  s3::request_counts counts{};
};

asio::awaitable<void> list_journal(s3::client& client, raw_figures& out) {
  s3::list_request request;
  request.prefix = s3::journal_prefix(reader_user);
  for (;;) {
    const auto started = clock_type::now();
    auto page = co_await client.list(request);
    out.page_seconds.push_back(seconds_since(started));
    for (auto& object : page.objects) out.names.push_back(std::move(object.key));
    if (!page.truncated) break;
    request.continuation_token = std::move(page.next_continuation_token);
  }
}

asio::awaitable<void> get_objects(s3::client& client, std::size_t& next, raw_figures& out) {
  while (next < out.names.size()) {
    const auto& name = out.names[next++];
    const auto started = clock_type::now();
    const auto body = co_await client.get(name);
    out.get_latency_sum += seconds_since(started);
    if (!body) throw std::runtime_error("object " + name + " is gone");
    for (const char c : *body) out.records += c == '\n' ? 1 : 0;
  }
}

asio::awaitable<void> get_all(s3::client& client, raw_figures& out) {
  std::size_t next = 0;
  using namespace asio::experimental::awaitable_operators;
  static_assert(fetch_width == 8);
  co_await (get_objects(client, next, out) && get_objects(client, next, out) && get_objects(client, next, out) &&
            get_objects(client, next, out) && get_objects(client, next, out) && get_objects(client, next, out) &&
            get_objects(client, next, out) && get_objects(client, next, out));
}

raw_figures read_raw(const s3::config& where) {
  asio::io_context io;
  s3::client client(io.get_executor(), where, reader_client);
  raw_figures out;
  auto start = clock_type::now();
  run(io, list_journal(client, out));
  out.list_seconds = seconds_since(start);
  start = clock_type::now();
  run(io, get_all(client, out));
  out.get_seconds = seconds_since(start);
  out.counts = client.counts();
  drain(io);
  return out;
}

// ---- the S3 readers --------------------------------------------------------

struct read_figures {
  bool ran = false;
  double seconds = 0;
  std::size_t polls = 0;
  s3::request_counts counts{};
  std::string cursor;  // after the last event
};

asio::awaitable<void> poll_to_end(s3::s3_journal_source& source, tally& seen, std::size_t count, read_figures& out) {
  while (seen.count() < count) {
    auto result = co_await source.async_poll(out.cursor, batch, asio::use_awaitable);
    ++out.polls;
    if (!result.problems.empty()) throw std::runtime_error(result.problems.front().message);
    if (result.events.empty()) {
      throw std::runtime_error("the source found nothing new after " + std::to_string(seen.count()) + " events");
    }
    for (const auto& e : result.events) seen.add(e);
    out.cursor = std::move(result.next_cursor);
  }
}

read_figures read_with_source(const s3::config& where, std::size_t count) {
  asio::io_context io;
  s3::s3_store bob(io.get_executor(), where, reader_user, reader_store_options());
  auto source = bob.events();
  tally seen(count);
  read_figures out;
  out.ran = true;
  const auto start = clock_type::now();
  run(io, poll_to_end(source, seen, count, out));
  out.seconds = seconds_since(start);
  out.counts = source.client().counts();
  drain(io);
  return out;
}

read_figures read_with_listener(const s3::config& where, std::size_t count) {
  asio::io_context io;
  s3::s3_store bob(io.get_executor(), where, reader_user, reader_store_options());
  auto source = bob.events();
  counting_source counted(source);
  storewatch::listener_options options;
  options.poller.batch_size = batch;
  std::string failure;
  options.on_error = [&](std::error_code, std::string_view message) {
    std::fprintf(stderr, "s3_catchup: listener: %.*s\n", static_cast<int>(message.size()), message.data());
    if (failure.empty()) failure = message;
  };
  storewatch::event_listener listener(io.get_executor(), counted, options);
  tally seen(count);
  read_figures out;
  out.ran = true;
  const auto start = clock_type::now();
  listener.add_event_listener([&](const storewatch::event& e) {
    try {
      seen.add(e);
    } catch (const std::exception& error) {
      if (failure.empty()) failure = error.what();
      listener.stop();
    }
    if (!e.cursor.empty()) out.cursor = e.cursor;
    if (seen.count() == count) {
      out.seconds = seconds_since(start);
      out.counts = source.client().counts();
      out.polls = counted.polls().size();
      listener.stop();
    }
  });
  listener.start();
  run_until(io, [&] { return !listener.running(); });
  drain(io);
  if (!failure.empty()) throw std::runtime_error("listener: " + failure);
  if (seen.count() != count) {
    throw std::runtime_error("the listener delivered " + std::to_string(seen.count()) + " of " + std::to_string(count));
  }
  return out;
}

// ---- idle polls ----------------------------------------------------------

struct idle_figures {
  int polls = 0;
  std::uint64_t lists = 0;
  std::uint64_t gets = 0;
  std::uint64_t events = 0;
  double seconds = 0;
};

asio::awaitable<void> poll_idle(counting_source<s3::s3_journal_source>& source, std::string cursor,
                                idle_figures& out) {
  for (int i = 0; i < idle_polls; ++i) {
    auto result = co_await source.async_poll(cursor, batch, asio::use_awaitable);
    cursor = std::move(result.next_cursor);
  }
  for (const auto& poll : source.polls()) {
    ++out.polls;
    out.lists += poll.lists;
    out.gets += poll.gets;
    out.events += poll.events;
    out.seconds += poll.seconds;
  }
}

idle_figures measure_idle(const s3::config& where, const std::string& cursor) {
  asio::io_context io;
  s3::s3_store bob(io.get_executor(), where, reader_user, reader_store_options());
  auto source = bob.events();
  counting_source counted(source);
  idle_figures out;
  run(io, poll_idle(counted, cursor, out));
  drain(io);
  return out;
}

/// Milliseconds since the epoch: the clock of the journal objects' stamps.
std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

/// Waits until the late window has passed since `newest_stamp_ms` (the
/// newest journal object's stamp), publishes one event, reads it from
/// `cursor`, and returns the cursor after it.
std::string settle(const s3::config& where, std::uint64_t newest_stamp_ms, std::string cursor) {
  const auto now_ms = wall_ms;
  const auto until = newest_stamp_ms + late_window_ms + 2000;
  if (now_ms() < until) {
    std::fprintf(stderr, "s3_catchup: waiting %.0f s for the late window to pass\n", (until - now_ms()) / 1000.0);
    std::this_thread::sleep_for(std::chrono::milliseconds(until - now_ms()));  // the window is wall-clock time
  }
  asio::io_context io;
  s3::s3_store alice(io.get_executor(), where, writer_user);
  s3::s3_store bob(io.get_executor(), where, reader_user, reader_store_options());
  auto source = bob.events();
  const std::vector<std::string> users{reader_user};
  const auto publish_and_read = [&]() -> asio::awaitable<void> {  // named: it outlives its coroutine
    co_await alice.async_publish_event(bench_event, settle_data, users, asio::use_awaitable);
    for (;;) {
      auto result = co_await source.async_poll(cursor, batch, asio::use_awaitable);
      cursor = std::move(result.next_cursor);
      if (!result.events.empty()) break;
    }
  };
  run(io, publish_and_read());
  drain(io);
  return cursor;
}

/// The cursor of a reader that has delivered every object in `names`
/// (relative to the key prefix).
std::string caught_up_cursor(const std::vector<std::string>& names) {
  const auto folder = s3::journal_prefix(reader_user);
  std::vector<std::string> relative;
  for (const auto& name : names) relative.push_back(name.substr(std::min(folder.size(), name.size())));
  return s3::cursor_after(relative);
}

// ---- compaction ------------------------------------------------------------

struct compact_figures {
  double seconds = 0;
  std::size_t removed = 0;
  s3::request_counts counts{};
};

/// Folds every record object of the journal but the newest into segments.
compact_figures compact_journal(const s3::config& where) {
  asio::io_context io;
  // Settled 0 (the whole history counts as old) is allowed only for a store
  // that lets its records land at any time after their stamp: nothing
  // writes while this compaction runs.
  auto store_options = reader_store_options();
  store_options.journal_landing_limit = std::chrono::milliseconds(0);
  s3::s3_store alice(io.get_executor(), where, writer_user, store_options);
  s3::s3_compact_options options;
  options.settled = std::chrono::milliseconds(0);
  compact_figures out;
  const auto compact = [&]() -> asio::awaitable<void> {  // named: it outlives its coroutine
    out.removed = co_await alice.async_compact(options, asio::use_awaitable);
  };
  const auto start = clock_type::now();
  try {
    run(io, compact());
  } catch (const std::system_error&) {
    throw std::runtime_error("compaction: " + alice.last_error());  // the failed request, with its reason
  }
  out.seconds = seconds_since(start);
  out.counts = alice.client().counts();
  drain(io);
  return out;
}

/// --compact-every: the journal grown and compacted as an operator would,
/// compacting every so many publishes, so that no compaction meets a large
/// folder (s3rver's deletes cost the folder's size each).
struct grown_figures {
  write_figures written;
  compact_figures compacted;  // summed over the compactions
  std::size_t compactions = 0;
};

/// Publishes `count` events to bob123 under `where`, `every` at a time, and
/// compacts the journal (`compact_journal`) after each `every` and after the
/// last; nothing writes while a compaction runs.
grown_figures write_and_compact(const s3::config& where, std::size_t count, std::size_t every) {
  grown_figures out;
  for (std::size_t first = 0; first < count; first += every) {
    const auto written = write_events(where, first, std::min(count, first + every));
    out.written.seconds += written.seconds;
    out.written.publish_seconds += written.publish_seconds;
    out.written.counts = out.written.counts + written.counts;
    const auto compacted = compact_journal(where);
    out.compacted.seconds += compacted.seconds;
    out.compacted.removed += compacted.removed;
    out.compacted.counts = out.compacted.counts + compacted.counts;
    ++out.compactions;
    std::fprintf(stderr, "s3_catchup: %zu events written, compaction %zu folded %zu objects in %.1f s\n",
                 std::min(count, first + every), out.compactions, compacted.removed, compacted.seconds);
  }
  return out;
}

/// The cursor after all that follows `cursor`: a catch-up that stopped at the
/// setup's last event has not read the one `settle` published after it.
std::string read_to_end(const s3::config& where, std::string cursor) {
  asio::io_context io;
  s3::s3_store bob(io.get_executor(), where, reader_user, reader_store_options());
  auto source = bob.events();
  const auto read = [&]() -> asio::awaitable<void> {  // named: it outlives its coroutine
    for (;;) {
      auto result = co_await source.async_poll(cursor, batch, asio::use_awaitable);
      cursor = std::move(result.next_cursor);
      if (result.events.empty()) break;
    }
  };
  run(io, read());
  drain(io);
  return cursor;
}

// ---- the local baseline --------------------------------------------------

void fill_local_journal(const std::filesystem::path& root, std::size_t count) {
  storewatch::journal_appender writer(root);
  for (std::size_t i = 0; i < count; ++i) {
    storewatch::event e;
    e.name = bench_event;
    e.data = event_data(i);
    e.id = "bench-writer-" + std::to_string(i);
    e.actor = writer_user;
    e.occurred_at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    writer.add(reader_user, e);
  }
  writer.flush();
}

double read_local_source(const std::filesystem::path& root, std::size_t count) {
  asio::io_context io;
  storewatch::local_store bob(io.get_executor(), root, reader_user);
  auto source = bob.events();
  tally seen(count);
  std::string cursor;
  const auto start = clock_type::now();
  while (seen.count() < count) {
    auto result = source.poll(cursor, batch);
    if (result.events.empty()) throw std::runtime_error("local journal_source stopped early");
    for (const auto& e : result.events) seen.add(e);
    cursor = std::move(result.next_cursor);
  }
  return seconds_since(start);
}

double read_local_listener(const std::filesystem::path& root, std::size_t count) {
  asio::io_context io;
  storewatch::local_store bob(io.get_executor(), root, reader_user);
  auto source = bob.events();
  storewatch::listener_options options;
  options.poller.batch_size = batch;
  storewatch::event_listener listener(io.get_executor(), source, options);
  tally seen(count);
  std::string failure;
  double took = 0;
  const auto start = clock_type::now();
  listener.add_event_listener([&](const storewatch::event& e) {
    try {
      seen.add(e);
    } catch (const std::exception& error) {
      failure = error.what();
      listener.stop();
    }
    if (seen.count() == count) {
      took = seconds_since(start);
      listener.stop();
    }
  });
  listener.start();
  io.run();
  if (!failure.empty() || seen.count() != count) throw std::runtime_error("local listener: " + failure);
  return took;
}

// ---- report ----------------------------------------------------------------

void print_reader(const char* what, double seconds, std::size_t events, double baseline_seconds,
                  const s3::request_counts& counts) {
  std::printf("  %-52s %9.2f s %9.0f events/s  ratio %7.3f", what, seconds, events / seconds,
              baseline_seconds / seconds);
  std::printf("  LIST %6llu GET %7llu  per 1000 events: LIST %7.2f GET %7.1f",
              static_cast<unsigned long long>(counts.list), static_cast<unsigned long long>(counts.get),
              counts.list * 1000.0 / events, counts.get * 1000.0 / events);
  if (counts.retries != 0) std::printf("  (%llu retries)", static_cast<unsigned long long>(counts.retries));
  std::printf("\n");
}

void print_idle(const std::string& when, const idle_figures& idle, std::size_t window_objects) {
  std::printf("  %s:\n    %d polls: LIST %.2f, GET %.2f per poll, %.1f ms per poll (objects in the window: %zu)\n",
              when.c_str(), idle.polls, static_cast<double>(idle.lists) / idle.polls,
              static_cast<double>(idle.gets) / idle.polls, idle.seconds * 1000 / idle.polls, window_objects);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::size_t compact_every = 0;  // --compact-every; 0: compact the journal once, after the readers
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg != "--request-timeout" && arg != "--compact-every") {
      positional.emplace_back(arg);
      continue;
    }
    const std::string_view value = i + 1 < argc ? argv[++i] : "";
    std::size_t number = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    const bool whole = ec == std::errc{} && end == value.data() + value.size() && number != 0;
    if (arg == "--compact-every") {
      if (!whole) {
        std::fprintf(stderr, "s3_catchup: --compact-every wants a whole number of events above 0, not \"%.*s\"\n",
                     static_cast<int>(value.size()), value.data());
        return 2;
      }
      compact_every = number;
      continue;
    }
    if (!whole || number > 3600) {
      std::fprintf(stderr, "s3_catchup: --request-timeout wants whole seconds from 1 to 3600, not \"%.*s\"\n",
                   static_cast<int>(value.size()), value.data());
      return 2;
    }
    reader_client.http.request_timeout = std::chrono::seconds(number);
    reader_client.retry_budget = std::max(reader_client.retry_budget, 2 * reader_client.http.request_timeout);
  }
  const std::size_t events = !positional.empty() ? std::strtoull(positional[0].c_str(), nullptr, 10) : 100'000;
  const std::string mode = positional.size() > 1 ? positional[1] : "all";
  const bool compacts = mode == "all" || mode == "source" || mode == "compacted";
  if (events == 0 || positional.size() > 2 ||
      (!compacts && mode != "listener" && mode != "baseline")) {
    std::fprintf(stderr,
                 "usage: %s [events [all|source|listener|baseline|compacted]] [--request-timeout SECONDS] "
                 "[--compact-every EVENTS]\n",
                 argv[0]);
    return 2;
  }
  if (compact_every != 0 && !compacts) {
    std::fprintf(stderr, "s3_catchup: --compact-every is for the modes that compact (all, source, compacted), "
                         "not %s\n", mode.c_str());
    return 2;
  }
  // Each figure is printed when measured: a long run shows its progress.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    const auto where = storewatch::test_support::test_server_config();
    std::printf("one run: %zu events, mode %s (S3 readers timed: %s); every figure below is from this run\n",
                events, mode.c_str(),
                mode == "all" ? "s3_journal_source and event_listener" : mode == "baseline" ? "none" : mode.c_str());
    std::printf("request timeout %lld ms, retry budget %lld ms (readers, baseline, compaction; writers: the defaults)\n",
                static_cast<long long>(reader_client.http.request_timeout.count()),
                static_cast<long long>(reader_client.retry_budget.count()));
    std::printf("store: %s://%s:%u bucket %s, key prefix %s\n", where.endpoint.scheme.c_str(),
                where.endpoint.host.c_str(), where.endpoint.port, where.bucket.c_str(), where.prefix.c_str());

    const auto written = write_events(where, 0, events);
    std::printf("setup: %zu events published to %s by %zu s3_store objects at once in %.1f s "
                "(1 PUT each: %llu PUTs, %llu retries)\n",
                events, reader_user.c_str(), store_objects, written.seconds,
                static_cast<unsigned long long>(written.counts.put),
                static_cast<unsigned long long>(written.counts.retries));

    // --compact-every: the compacted reader's journal, under a key prefix of
    // its own (so the baseline still reads N record objects).
    auto compacted_where = where;
    grown_figures grown;
    if (compact_every != 0) {
      compacted_where.prefix = storewatch::test_support::random_prefix();
      grown = write_and_compact(compacted_where, events, compact_every);
      std::printf("setup: the same %zu events published to %s under key prefix %s, the journal compacted after "
                  "every %zu and after the last (%zu compactions): %.1f s publishing (%llu PUTs, %llu retries), "
                  "%.1f s compacting\n",
                  events, reader_user.c_str(), compacted_where.prefix.c_str(), compact_every, grown.compactions,
                  grown.written.seconds, static_cast<unsigned long long>(grown.written.counts.put),
                  static_cast<unsigned long long>(grown.written.counts.retries), grown.compacted.seconds);
    }

    const auto raw = read_raw(where);
    if (raw.names.size() != events || raw.records != events) {
      throw std::runtime_error("the journal holds " + std::to_string(raw.names.size()) + " objects and " +
                               std::to_string(raw.records) + " records, not " + std::to_string(events));
    }
    const double raw_seconds = raw.list_seconds + raw.get_seconds;
    std::printf("catch-up of %zu events (%zu journal objects) from the empty cursor, %zu events per poll, "
                "each reader once\n",
                events, raw.names.size(), batch);
    print_reader("LIST + GET every object, 8 GETs at once (baseline)", raw_seconds, events, raw_seconds, raw.counts);

    read_figures source_run, listener_run;
    if (mode == "all" || mode == "source") {
      source_run = read_with_source(where, events);
      print_reader("s3_journal_source::async_poll", source_run.seconds, events, raw_seconds, source_run.counts);
    }
    if (mode == "all" || mode == "listener") {
      listener_run = read_with_listener(where, events);
      print_reader("event_listener (s3_journal_source)", listener_run.seconds, events, raw_seconds,
                   listener_run.counts);
    }
    if (!source_run.ran || !listener_run.ran) {
      std::printf("  (not timed in mode %s:%s%s)\n", mode.c_str(), source_run.ran ? "" : " s3_journal_source",
                  listener_run.ran ? "" : " event_listener");
    }

    {
      scratch_dir scratch;
      fill_local_journal(scratch.path, events);
      const double local_source = read_local_source(scratch.path, events);
      const double local_listener = read_local_listener(scratch.path, events);
      std::printf("the same events from a local journal in a temp folder "
                  "(S3/local: the S3 reader's events/s over this)\n");
      const auto print_local = [&](const char* what, double seconds, const read_figures& s3_run) {
        std::printf("  %-52s %9.3f s %9.0f events/s", what, seconds, events / seconds);
        if (s3_run.ran) std::printf("  S3/local %7.4f", seconds / s3_run.seconds);
        std::printf("\n");
      };
      print_local("journal_source::poll", local_source, source_run);
      print_local("event_listener (journal_source)", local_listener, listener_run);
    }

    std::printf("server costs (this client, this machine)\n");
    std::printf("  PUT: %.0f/s with %zu writers, %.2f ms per publish\n", written.counts.put / written.seconds,
                store_objects, written.publish_seconds * 1000 / events);
    std::printf("  GET: %.0f/s with %zu at once, %.2f ms each\n", raw.names.size() / raw.get_seconds, fetch_width,
                raw.get_latency_sum * 1000 / raw.names.size());
    std::printf("  LIST page of up to 1000 keys: %.1f ms mean (first %.1f ms, last %.1f ms), %zu pages\n",
                raw.list_seconds * 1000 / raw.page_seconds.size(), raw.page_seconds.front() * 1000,
                raw.page_seconds.back() * 1000, raw.page_seconds.size());

    // The objects a caught-up reader lists again on every poll: those
    // stamped at most the late window before the newest.
    const auto folder = s3::journal_prefix(reader_user);
    std::vector<std::uint64_t> stamps;
    for (const auto& name : raw.names) {
      const auto stamp = s3::journal_record_stamp(std::string_view(name).substr(folder.size()));
      if (!stamp) throw std::runtime_error("not a journal record object: " + name);
      stamps.push_back(*stamp);
    }
    const std::uint64_t newest = *std::max_element(stamps.begin(), stamps.end());
    std::size_t window_objects = 0;
    for (const auto stamp : stamps) window_objects += stamp + late_window_ms >= newest ? 1 : 0;

    const auto cursor = source_run.ran     ? source_run.cursor
                        : listener_run.ran ? listener_run.cursor
                                           : caught_up_cursor(raw.names);
    std::printf("idle polls after catch-up (late window: %llu s before the newest event delivered)\n",
                static_cast<unsigned long long>(late_window_ms / 1000));
    const auto idle = measure_idle(where, cursor);
    const auto newest_age_s = static_cast<double>(wall_ms() - std::min(wall_ms(), newest)) / 1000.0;
    print_idle("right after the setup's burst, newest object " + std::to_string(static_cast<long>(newest_age_s)) +
                   " s old: the late window had " +
                   (newest_age_s * 1000 >= static_cast<double>(late_window_ms) ? "passed" : "not passed"),
               idle, window_objects);
    // One LIST a poll, plus the further pages of the polls that list the
    // window (the first, then every 12th).
    const auto window_pages = std::max<std::size_t>(1, (window_objects + 999) / 1000);
    const auto most_lists = static_cast<std::uint64_t>(idle.polls) +
                            static_cast<std::uint64_t>(1 + idle.polls / 12) * (window_pages - 1);
    bool ok = idle.events == 0 && idle.gets == 0 && idle.lists >= static_cast<std::uint64_t>(idle.polls) &&
              idle.lists <= most_lists;
    if (window_objects >= 1000) {
      const auto settled_cursor = settle(where, newest, cursor);
      const auto settled = measure_idle(where, settled_cursor);
      print_idle("after waiting for the late window to pass, then 1 more event published and read", settled, 1);
      ok = ok && settled.events == 0 && settled.gets == 0 && settled.lists == static_cast<std::uint64_t>(settled.polls);
    }
    if (!ok) {
      std::fprintf(stderr, "s3_catchup: idle polls made other requests than one LIST each (the window's pages "
                           "on the first and every 12th)\n");
      return 1;
    }

    if (compacts) {
      const auto compacted = compact_every != 0 ? grown.compacted : compact_journal(where);
      if (compact_every != 0) {
        std::printf("compaction (during the setup, under %s): %zu compactions, one after every %zu events "
                    "published and one after the last;\n  in all ",
                    compacted_where.prefix.c_str(), grown.compactions, compact_every);
      } else {
        std::printf("compaction: ");
      }
      std::printf("%zu journal objects folded into segments in %.2f s "
                  "(LIST %llu, GET %llu, PUT %llu, DeleteObjects %llu, %llu retries)\n",
                  compacted.removed, compacted.seconds, static_cast<unsigned long long>(compacted.counts.list),
                  static_cast<unsigned long long>(compacted.counts.get),
                  static_cast<unsigned long long>(compacted.counts.put),
                  static_cast<unsigned long long>(compacted.counts.remove_batches),
                  static_cast<unsigned long long>(compacted.counts.retries));
      const auto after = read_with_source(compacted_where, events);
      std::printf("catch-up of the compacted journal from the empty cursor, %zu events per poll\n", batch);
      print_reader("s3_journal_source::async_poll, compacted", after.seconds, events, raw_seconds, after.counts);
      if (source_run.ran) {
        std::printf("  compacted / not compacted (s3_journal_source events/s): %.2f\n",
                    source_run.seconds / after.seconds);
      }
      const auto idle_after = measure_idle(compacted_where, read_to_end(compacted_where, after.cursor));
      print_idle("idle polls after the compacted catch-up", idle_after, 1);
      if (idle_after.events != 0 || idle_after.gets != 0 ||
          idle_after.lists != static_cast<std::uint64_t>(idle_after.polls)) {
        std::fprintf(stderr, "s3_catchup: idle polls after compaction made other requests than one LIST\n");
        return 1;
      }
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "s3_catchup: %s\n", error.what());
    return 1;
  }
  return 0;
}
