/// \file
/// The per-user event journals of an `s3_store`, and `s3_journal_source`,
/// which polls one of them.
//
// An object store has no append and no rename, so a journal is a folder of
// immutable objects, one per operation and user, named so that listing the
// folder in key order lists them oldest first:
//
//   journals/<user>/<ms:13 digits>-<writer>-<n:20 digits>-<prev:13 digits>
//                                the records one operation wrote for <user>, as
//                                lines: the writer's object number <n> for this
//                                user (1, 2, 3, ...), <prev> the stamp of its
//                                object <n - 1> (0 for the first)
//   journals/<user>/<ms:13 digits>-<writer>-<object:20 digits>
//                                the same, as written before sequenced names (<object>
//                                counts the writer's objects for all users): still
//                                read, with no check of missing objects
//   journals/<user>/<ms:13 digits>!floor
//                                retention removed the records stamped before
//                                <ms> (listed before the records of <ms>)
//   journals/<user>/<last record name>~<first record name>
//                                a segment: the record objects from <first> to
//                                <last> (names as above, relative to the
//                                folder) that a compaction folded into one
//                                object, each as a line "<name> <bytes>" and
//                                its body; it sorts right after <last>
//
// <ms> is the writer's clock when it wrote the object, made non-decreasing
// per writer and, once the server's clock is known (from the Date headers),
// never behind it; <writer> names one store object (host, process, random part).
// A PUT is atomic, so no reader sees a torn object, and writers share
// nothing, so they need no lock. Readers of older versions report the
// numbered names as "not a journal record": upgrade readers first.
//
// A reader lists from its horizon H (the newest stamp it delivered) minus a
// window W (`s3_journal_options::late_window`, 60 s), or from the server's
// clock minus W when H is ahead of it (a writer's clock ahead; the server's
// clock comes from the Date headers of the reader's responses), and skips
// the objects its cursor says it delivered: per writer, the last object (and
// how many of its records). So an object that lands with an older stamp
// than H (its writer's clock is behind, or its PUT was retried) is still
// read as long as it is less than W older. One stamped earlier than that is
// not listed; the next object of its writer shows the hole (its number is
// not the one after the last the cursor holds, or the writer is unknown and
// <prev> recent), and the reader delivers a GAP naming the writer and the
// objects. The cursor remembers a writer for 10 W after its last object.
// A writer refuses to write while its clock is more than W ahead of the
// server's (`s3_store_options::max_clock_ahead`, from the Date headers),
// since its stamps would push H forward and hide everyone else's records
// from readers that cannot tell the server's time yet.
//
// A poll with nothing new is one LIST request: while more than 1000 objects
// are under W old, it lists only what follows H, and every 12th such poll,
// and each that finds something new, lists the window
// (`detail::s3_listing_plan`). New events cost one GET per object, fetched
// several at a time.
//
// Compaction into segments (`s3_store::async_compact`, `s3_compact_options`)
// makes catching up cost one GET per segment instead of one per object. It
// may run from any machine at any time, beside writers, readers and other
// compactions, and stop at any request:
//
// - It folds only record objects stamped `settled` (60 s, at least the
//   landing limit below) before both the server's clock and the journal's
//   newest record, in runs of consecutive keys (up
//   to 1000 objects) that are in no existing segment's range, and writes
//   each run as one immutable segment named after its last and first
//   records; only once that PUT succeeded does it remove the run's objects,
//   newest first (DeleteObjects). So at every step the records still
//   listed in a segment's range are its oldest, and come before it in key
//   order. A compaction that stopped leaves both; the next one finds the
//   records in the segment's range, GETs the segment to learn which it
//   holds, and removes those (a record in the range that it does not hold
//   landed later and stays). Two compactions racing write the same segment
//   (same name, same bytes) or two, the later over what the earlier left.
// - A reader takes a segment where the listing puts it, after its last
//   record, and reads its members, and the record objects listed in its
//   range (left by a compaction that stopped, or landed there later), in
//   name order, as if they were listed at their own names: those at or
//   before the listing's start, and those its cursor says it delivered,
//   are passed over; a record in the range that the segment does not hold
//   is delivered in its place, not skipped. So a record read before the
//   compaction, or from a record object not removed yet, or from another
//   segment, is delivered once, and each writer's records in order. A
//   reader whose cursor is inside a segment's range lists it (its name
//   sorts with its last record, at or after the reader's window), and
//   resumes inside it, inside an object too. The cursor names the last
//   segment read to its end, so that later polls do not fetch it again,
//   and the source keeps the last segment's body, so that polls of a few
//   events each read one segment with one GET.
// - A record object listed but gone when fetched ends the poll before it
//   (the next poll lists again and finds the segment that holds it),
//   unless it was gone at the previous poll too (retention, or an
//   operation taken back): the source remembers every object a poll found
//   gone, so two or more that stay listed do not end polls in turns.
// - An idle poll stays one LIST: segments hold only records `settled`
//   before the newest, so a caught-up reader whose late window is at most
//   that does not list them, and one whose window is longer skips them by
//   its cursor.
// - What it rests on: no record object appears in, or is taken back from,
//   a range after a compaction folded it. A writer stamps an operation's
//   records once (never behind the server's clock) and then PUTs one object
//   per recipient, one after another; before each PUT it checks, by the
//   server's clock at its latest, that this PUT and the DeleteObjects that
//   would take the operation back (each within the client's `retry_budget`)
//   end within `s3_store_options::journal_landing_limit` (55 s) of the
//   stamp, and otherwise fails, rolled back, saying so. A compaction folds
//   only records stamped `settled` before the server's clock (its own
//   where earlier: a compacting machine whose clock is ahead folds no
//   more), and refuses a `settled` below its store's landing limit. A
//   writer's clock ahead of the server's (up to `max_clock_ahead`) only
//   makes its records look younger, so they are folded later; one behind is
//   corrected by stamping with the server's clock. The landing limit is
//   under the readers' late window (60 s), so a reader whose horizon is no
//   further ahead of the server's clock than that margin lists every
//   record that lands (otherwise the GAP above). It also rests on each
//   DeleteObjects request (200 keys, the newest first) removing its keys all
//   or none, and on no key being sent before every key of the requests
//   before it was acknowledged gone: a request that times out (a slow
//   server) may still be running on the server while its keys are sent
//   again as requests of half as many, down to 10, but no older key is sent
//   until all of them are acknowledged. Should a record land in a
//   folded range all the same (a writer with the check off, or a different
//   limit), readers deliver it with the segment's members in name order;
//   one that lands after a reader read the segment is delivered if its
//   writer has no later object the reader read, and otherwise was already
//   reported with a GAP (its number was missing). A DeleteObjects that removes some
//   objects and fails others is reported as a failure, and the next
//   compaction removes the rest. A cursor made from the listing alone
//   (`async_end_cursor`) does not know the writers that only segments name,
//   so a writer whose last object is in a segment less than 10 W before the
//   newest record may bring a false GAP to a reader starting there.
//
// Readers of older versions report segments as "not a journal record":
// upgrade readers before compacting.
//
// The names, the cursor, and what a poll decides from the listing and the
// objects (detail::s3_merge) are in detail/s3_merge.hpp, and what a
// compaction folds (detail::plan_compaction) in detail/s3_compaction.hpp,
// free of I/O; the source below and the store only make the requests.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/names.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/s3_merge.hpp>
#include <storewatch/detail/sys.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/hints.hpp>
#include <storewatch/s3/client.hpp>
#include <storewatch/source.hpp>

#include <asio/compose.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch::s3 {
namespace detail {

/// `s3_store_options::journal_landing_limit` by default: how long after its
/// stamp a journal record object may still be written or taken back.
inline constexpr std::chrono::milliseconds default_landing_limit{55'000};

/// Gets the bodies of the objects `keys` names (nullopt: gone), 8
/// requests at a time.
template <class Client>
asio::awaitable<std::vector<std::optional<std::string>>> get_each(Client& client, const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> bodies(keys.size());
  std::size_t next = 0;
  const auto worker = [&client, &keys, &bodies, &next]() -> asio::awaitable<void> {
    while (next < keys.size()) {
      const auto at = next++;
      bodies[at] = co_await client.get(keys[at]);
    }
  };
  using namespace asio::experimental::awaitable_operators;
  co_await (worker() && worker() && worker() && worker() && worker() && worker() && worker() && worker());
  co_return bodies;
}

/// Appends one operation's records to users' journals as one writer, and
/// makes them durable as one object per user, numbered per user (sequenced
/// names) so that readers see one they missed. Not thread-safe.
class s3_journal_writer {
 public:
  /// A writer named `name` that refuses to write while its clock is more
  /// than `max_ahead` ahead of the server's (0: never refuses), and that
  /// makes every change to an object it stamped (its PUT, and the removal
  /// that takes it back) within `landing_limit` of the stamp, by the
  /// server's clock (`s3_store_options::journal_landing_limit`).
  explicit s3_journal_writer(std::string name, std::chrono::milliseconds max_ahead = std::chrono::milliseconds{60'000},
                             std::chrono::milliseconds landing_limit = default_landing_limit)
      : name_(std::move(name)), max_ahead_(max_ahead), landing_limit_(landing_limit) {}

  const std::string& name() const noexcept { return name_; }

  /// A new event id: "<writer>-<n>".
  std::string next_id() { return name_ + "-" + std::to_string(++records_); }

  /// Adds a record line (`encode_record`) to the pending operation.
  void append(const std::string& user, std::string_view line) { pending_[user] += line; }

  /// Writes the pending records, one object per user; throws (leaving
  /// what it wrote for `take_back`) when a PUT fails.
  template <class Client>
  asio::awaitable<void> commit(Client& client) {
    std::uint64_t server = 0;
    if (!pending_.empty()) server = co_await check_clock(client);
    const auto now = static_cast<std::uint64_t>(std::max<std::int64_t>(0, storewatch::detail::sys::now().time_since_epoch().count()));
    // Non-decreasing, whatever the clock does, and not behind the server's
    // clock: a writer whose clock is behind would stamp its records out of
    // readers' late windows.
    stamp_ = std::max({stamp_, now, server});
    for (const auto& [user, lines] : pending_) {
      check_landing(client);
      auto& last = sequences_[user];
      const auto before = last;
      auto name = sequenced_record_name(user, stamp_, name_, last.number + 1, last.stamp);
      last = {last.number + 1, stamp_};
      written_.push_back({user, name, before});
      co_await client.put(std::move(name), lines);
    }
    pending_.clear();
    written_.clear();
  }

  /// Forgets the pending records and removes the objects a failed `commit`
  /// wrote (the one that failed included: its PUT may have been executed),
  /// in one DeleteObjects request, so that the removal too ends within the
  /// landing limit (see `check_landing`). Best effort: never throws.
  template <class Client>
  asio::awaitable<void> take_back(Client& client) {
    pending_.clear();
    auto written = std::move(written_);
    written_.clear();
    if (written.empty()) co_return;
    std::vector<std::string> names;
    for (const auto& object : written) names.push_back(object.name);
    try {
      const auto failed = co_await client.remove_many(std::move(names));
      for (const auto& object : written) {
        const bool kept = std::any_of(failed.begin(), failed.end(), [&](const auto& f) { return f.key == object.name; });
        if (!kept) sequences_[object.user] = object.before;  // its number is free again: no hole
      }
    } catch (const std::exception&) {  // left behind: a reader may see them, as it may have already
    }
  }

 private:
  struct sequence {
    std::uint64_t number = 0;  // of the last object written for the user
    std::uint64_t stamp = 0;   // and its stamp
  };
  struct written_object {
    std::string user;
    std::string name;
    sequence before;  // the user's sequence before it
  };

  // Refuses (errc::store_io_failed) to stamp records while this writer's
  // clock is ahead of the server's by more than `max_ahead_`: readers list
  // from their newest record's stamp minus the late window, so such records
  // would hide other writers' from them. The server's clock comes from the
  // Date headers the client saw; with none yet, one HEAD asks. Returns the
  // server's clock (at its earliest, in ms), or 0 when it is not known.
  template <class Client>
  asio::awaitable<std::uint64_t> check_clock(Client& client) {
    if (max_ahead_.count() <= 0) co_return 0;
    if (!client.observed_clock_offset()) {
      auto any_key = journal_folder(pending_.begin()->first);  // named: g++ 12 and temporaries in co_await
      co_await client.exists(std::move(any_key));
    }
    const auto offset = client.observed_clock_offset();
    if (!offset) co_return 0;  // a server that sends no Date: nothing to compare with
    const auto server = std::chrono::system_clock::now() + *offset;
    const auto ahead = std::chrono::duration_cast<std::chrono::milliseconds>(storewatch::detail::sys::now() - server) -
                       client.observed_clock_error();
    if (ahead <= max_ahead_) {
      const auto earliest = std::chrono::duration_cast<std::chrono::milliseconds>(server.time_since_epoch()) -
                            client.observed_clock_error();
      co_return static_cast<std::uint64_t>(std::max<std::int64_t>(0, earliest.count()));
    }
    const auto& where = client.configuration();
    throw std::system_error(make_error_code(errc::store_io_failed),
                            "S3 journal writer " + name_ + ": this machine's clock is " + seconds(ahead) +
                                " ahead of the clock of the S3 server " +
                                (where.endpoint.host.empty() ? "of region " + where.region
                                                             : where.endpoint.scheme + "://" + where.endpoint.authority()) +
                                " (from its Date header), more than the late window of " +
                                seconds(max_ahead_) +
                                "; records stamped with it would hide other writers' records from readers, so "
                                "none is written: set this machine's clock right (NTP)");
  }

  // Refuses (errc::store_io_failed) to start a PUT of an object stamped
  // `stamp_` unless that PUT, and the DeleteObjects that would take the
  // operation back after it, can end (each within the client's
  // `retry_budget`) before the stamp plus the landing limit, by the
  // server's clock at its latest (the local clock where it is not known, or
  // the clock check is off).
  // Compactions fold only records stamped at least that long before the
  // server's clock (`s3_compact_options::settled` is at least the limit),
  // so no record object of a journal appears or disappears in a range a
  // compaction has folded, and readers, whose late window is longer, list
  // each record that lands.
  template <class Client>
  void check_landing(Client& client) const {
    if (landing_limit_.count() <= 0) return;
    auto latest = std::chrono::time_point_cast<std::chrono::milliseconds>(storewatch::detail::sys::now());
    // With the clock check off the stamps follow this machine's clock, and
    // so does the limit: it then bounds how long the operation takes.
    const char* clock = "this machine's clock";
    if (const auto offset = client.observed_clock_offset(); offset && max_ahead_.count() > 0) {
      clock = "the server's clock";
      latest = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()) + *offset +
               client.observed_clock_error();
    }
    const auto budget = client.options().retry_budget;
    const auto ends = latest.time_since_epoch() + 2 * budget;
    const auto limit = std::chrono::milliseconds(static_cast<std::int64_t>(stamp_)) + landing_limit_;
    if (ends <= limit) return;
    const auto late = std::max(std::chrono::milliseconds(0),
                               latest.time_since_epoch() - std::chrono::milliseconds(static_cast<std::int64_t>(stamp_)));
    throw std::system_error(
        make_error_code(errc::store_io_failed),
        "S3 journal writer " + name_ + ": the operation's journal records were stamped " + seconds(late) +
            " ago (by " + clock + "), and one more PUT and its take-back (2 x the client's retry_budget of " +
            seconds(budget) + ") could end after s3_store_options::journal_landing_limit (" + seconds(landing_limit_) +
            ") from their stamp, when a compaction may have folded their range; the operation is rolled back: "
            "retry it (a slow or failing S3 server, or a retry_budget too long for the landing limit)");
  }

  static std::string seconds(std::chrono::milliseconds d) {
    return std::to_string(d.count() / 1000) + '.' + std::to_string(d.count() % 1000 / 100) + " s";
  }

  std::string name_;
  std::chrono::milliseconds max_ahead_;
  std::chrono::milliseconds landing_limit_;
  std::uint64_t records_ = 0;
  std::uint64_t stamp_ = 0;
  std::map<std::string, std::string> pending_;
  std::map<std::string, sequence> sequences_;  // per user
  std::vector<written_object> written_;
};

}  // namespace detail

/// Options of an S3 journal source.
struct s3_journal_options {
  /// How much older than the newest delivered record a record may be and
  /// still be delivered: it covers writers' clocks disagreeing and PUTs
  /// that land late after retries (the client gives up after
  /// `client_options::retry_budget`, 20 s by default). Each poll lists the
  /// records of this window again, so a larger window costs more listing.
  std::chrono::milliseconds late_window{60'000};
  /// Checks each record's event, as `journal_source_options::record_check`:
  /// a non-empty answer makes it a corrupt record, reported and skipped.
  std::function<std::string(const event&)> record_check{};
  /// The HTTP and retry settings of the source's client.
  client_options client{};
  /// Wake-up hints (e.g. a `redis::hint_subscriber`): a hint for the
  /// source's user completes `async_wait_for_change`, so that a poller
  /// polls at once instead of at its interval. Hints are never trusted:
  /// one only brings a poll forward. Empty: the source only polls. The
  /// source shares the subscriber: it keeps it (and its connection) until
  /// the source is destroyed; close a `redis::hint_subscriber` to end its
  /// connection sooner.
  std::shared_ptr<hint_subscriber> hints{};
  /// The least time between two polls that hints bring: a hint after a
  /// quiet spell brings a poll at once, while the hints that follow within
  /// this time make one poll together at its end. Bounds the LIST requests
  /// a flood of hints (a busy writer, or forged ones) can cause to about one
  /// per spacing; the price is that a record written soon after another
  /// may reach listeners up to this much later. Zero: every hint may bring
  /// a poll. Must not be negative.
  std::chrono::milliseconds min_hint_spacing{100};
  /// The safety-net interval while hints are live: a poller that waits for
  /// this source's wake-ups waits this long between polls (or its own
  /// `poller_options::poll_interval`, if longer) while `hints` says it is
  /// delivering the user's hints (`hint_subscriber::live`: connected, the
  /// subscription confirmed), and its own interval otherwise. When the
  /// subscription is lost the source wakes the poller, which polls and goes
  /// back to its own interval at once; when the subscriber is closed (which
  /// calls no listener), within about a second, at which the source checks
  /// `hint_subscriber::live` while the poller waits longer.
  /// A hinted poll per event then stands in for the interval's polls, so
  /// that hints cost no more requests than polling (docs/cost-model.md);
  /// the interval bounds how late an event whose hint was lost (or never
  /// sent: a writer without hints) arrives.
  /// Zero: the poller's interval always. Must not be negative.
  std::chrono::milliseconds hinted_poll_interval{60'000};
};

/// Polls one user's journal in an S3 store (its layout is described at the
/// top of store/s3_journal.hpp): an `event_source` for a poller or listener.
///
/// Cursor: "s1;<horizon>;<floor>;<writer>=<object>@<stamp>;...". A cursor
/// older than what retention kept yields a GAP event. Records that fail
/// their checksum or `record_check` are reported in `poll_result::problems`
/// with the object's key and line and skipped.
///
/// Requests run on the source's executor through its own client (libcurl
/// on Asio: no thread). Not thread-safe: use it from one thread or strand.
/// It must outlive its pending operations. It is a `waitable_source`: with
/// `s3_journal_options::hints` a poller polls when a hint for its user
/// arrives, and still at an interval: `hinted_poll_interval` while the
/// hints are live, its own otherwise (a `paced_source`); without, the wait
/// ends only when cancelled, and the poller polls at its interval.
template <class Executor = asio::any_io_executor>
class basic_s3_journal_source {
 public:
  /// The executor type.
  using executor_type = Executor;

  /// The source type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_s3_journal_source<OtherExecutor>;  ///< the source on `OtherExecutor`
  };

  /// A source for `user`'s journal in the store `where` describes. Throws
  /// std::invalid_argument (naming the field) for a bad configuration and
  /// `std::system_error` (`errc::invalid_user`) for a bad user name.
  basic_s3_journal_source(const executor_type& executor, config where, std::string user,
                          s3_journal_options options = {})
      : executor_(executor),
        user_(std::move(user)),
        client_(std::make_unique<basic_client<Executor>>(executor, std::move(where), std::move(options.client))),
        hinted_(std::make_shared<hint_state>(executor)) {
    storewatch::detail::validate_user(user_);
    const auto& c = client_->configuration();
    merge_.folder = detail::journal_folder(user_);
    merge_.journal = "s3://" + c.bucket + '/' + key_prefix(c) + merge_.folder;
    merge_.late_window = options.late_window;
    merge_.record_check = std::move(options.record_check);
    if (options.min_hint_spacing < std::chrono::milliseconds::zero()) {
      throw std::invalid_argument("s3_journal_options::min_hint_spacing: " +
                                  std::to_string(options.min_hint_spacing.count()) + " ms is negative");
    }
    hinted_.state->spacing = options.min_hint_spacing;
    if (options.hinted_poll_interval < std::chrono::milliseconds::zero()) {
      throw std::invalid_argument("s3_journal_options::hinted_poll_interval: " +
                                  std::to_string(options.hinted_poll_interval.count()) + " ms is negative");
    }
    hinted_poll_interval_ = options.hinted_poll_interval;
    if (options.hints) {
      hints_ = std::move(options.hints);
      hinted_.state->hints = hints_;
      hinted_.state->user = user_;
      if (hinted_poll_interval_ > std::chrono::milliseconds::zero()) {
        hinted_.state->recheck = std::min(hinted_poll_interval_, hint_state::max_recheck);
      }
      // On the subscriber's executor: the state is the source's, so on to its own.
      hint_registration_ = hints_->listen(user_, [executor, state = std::weak_ptr<hint_state>(hinted_.state)] {
        asio::post(executor, [state] {
          if (const auto hinted = state.lock()) hinted->notice();
        });
      });
    }
  }

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }
  /// The user whose journal this is.
  const std::string& user() const noexcept { return user_; }
  /// The source's client, for its request counts.
  const basic_client<Executor>& client() const noexcept { return *client_; }

  /// Reads up to `max_events` new events after `cursor`.
  /// Completion signature: `void(std::error_code, poll_result)`.
  /// Errors: `errc::store_io_failed` or `errc::store_access_denied` when
  /// the store cannot be read after the client's retries (`last_error()`
  /// says which request and why); the poller retries. A malformed cursor
  /// is reported as a problem and answered with a GAP event; reading then
  /// starts from the oldest records kept.
  /// Cancellation: terminal, through the handler's cancellation slot: the
  /// requests in flight are abandoned and the poll completes with
  /// `operation_aborted`. The handler runs on its associated executor
  /// (default: the source's), never inside this call.
  template <asio::completion_token_for<void(std::error_code, poll_result)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_poll(std::string_view cursor, std::size_t max_events,
                  CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code, poll_result)>(
        [this](auto handler, std::string cursor, std::size_t max_events) {
          spawn(poll(std::move(cursor), max_events), std::move(handler));
        },
        token, std::string(cursor), max_events);
  }

  /// The cursor of the journal's end as it is now: polled from it, the
  /// source yields only what is written after. Made from the listing alone
  /// (one LIST request per 1000 objects), reading no object; the retention
  /// floors listed count as seen, so they bring no GAP.
  /// Completion signature: `void(std::error_code, std::string)`. Errors and
  /// cancellation as `async_poll`'s.
  template <asio::completion_token_for<void(std::error_code, std::string)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_end_cursor(CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code, std::string)>(
        [this](auto handler) { spawn(end_cursor(), std::move(handler)); }, token);
  }

  /// Completes when a hint for the source's user has arrived
  /// (`s3_journal_options::hints`) since the last wait completed, or (when
  /// they were live as it began, so the poller may wait its
  /// `hinted_poll_interval`) when they are no longer live, checked every
  /// second; without hints, only when cancelled. A hint
  /// says nothing about the journal: the poll that follows finds out. A
  /// hint less than `s3_journal_options::min_hint_spacing` after the last
  /// wait a hint completed completes this one when that time is up (with
  /// every other hint that came meanwhile). The cursor is not used.
  /// Completion signature: `void(std::error_code)`; `operation_aborted`
  /// when cancelled, or when the source is destroyed or assigned to. The
  /// handler never runs inside this call; it runs on its associated
  /// executor (default: the source's). One wait at a time; the source may
  /// be moved while it is pending.
  /// Cancellation: terminal, partial, total.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_wait_for_change(std::string_view /*cursor*/,
                             CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    // The wait holds the hint state, never the source: a source moved
    // meanwhile has taken the state along.
    return asio::async_compose<CompletionToken, void(std::error_code)>(
        // Live as the wait begins (right after the poller asked
        // poll_interval): the poller may wait its longer hinted interval, so
        // the wait checks that they stay live (a closed subscriber calls no
        // listener).
        [state = hinted_.state, executor = executor_, started = false,
         live_at_start = hinted_.state && hinted_.state->recheck > std::chrono::milliseconds::zero() &&
                         hinted_.state->live()](auto& self, std::error_code = {}) mutable {
          if (!started) {  // never complete inside the initiating call
            started = true;
            self.reset_cancellation_state(asio::enable_total_cancellation());
            asio::post(executor, std::move(self));
            return;
          }
          auto& hinted = *state;
          const bool cancelled = self.get_cancellation_state().cancelled() != asio::cancellation_type::none;
          hinted.spacing_wait = false;
          if (hinted.closed) {
            self.complete(asio::error::operation_aborted);
          } else if (hinted.pending) {
            const auto now = asio::steady_timer::clock_type::now();
            const auto due = hinted.last_wake + hinted.spacing;
            if (due <= now) {
              hinted.pending = false;
              hinted.last_wake = now;
              self.complete(std::error_code{});
            } else if (cancelled) {
              self.complete(asio::error::operation_aborted);  // the hint stays for the next wait
            } else {
              // Too soon after the last: wait out the spacing, hints meanwhile
              // only set `pending` again.
              hinted.spacing_wait = true;
              hinted.change.expires_at(due);
              hinted.change.async_wait(std::move(self));
            }
          } else if (cancelled) {
            self.complete(asio::error::operation_aborted);
          } else if (live_at_start && !hinted.live()) {
            // The hints were live when the wait began (the poller may wait
            // its hinted interval) and are gone (a closed subscriber, which
            // calls no listener): poll now, and at the poller's own interval
            // after.
            self.complete(std::error_code{});
          } else if (live_at_start) {
            // Cancelled by a hint or by the caller; else checks again then.
            hinted.change.expires_after(hinted.recheck);
            hinted.change.async_wait(std::move(self));
          } else {
            hinted.change.expires_at(asio::steady_timer::time_point::max());
            hinted.change.async_wait(std::move(self));  // cancelled by a hint, or by the caller
          }
        },
        token, executor_);
  }

  /// How long a poller whose interval is `configured` should wait for a
  /// hint before it polls anyway (`paced_source`): the longer of
  /// `configured` and `s3_journal_options::hinted_poll_interval` while the
  /// hints are live (`hint_subscriber::live`) and were when the last poll
  /// started (a hint lost before the subscription was confirmed may be for
  /// a record that poll did not find), else `configured`.
  /// A query: it changes nothing. A wait that began with the hints live
  /// checks every second (or `hinted_poll_interval`, if shorter) that they
  /// still are, and completes when they are not, so that the poller polls
  /// and goes back to `configured` within about a second even when the
  /// subscriber calls no listener (`redis::hint_subscriber::close`).
  std::chrono::milliseconds poll_interval(std::chrono::milliseconds configured) const {
    if (!live_at_poll_ || !hints_->live(user_)) return configured;
    return std::max(configured, hinted_poll_interval_);
  }

  /// What the last failed `async_poll` said: the request and the reason.
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  // Where hints land: a flag for the next wait, and a timer whose pending
  // wait a hint cancels (it never expires) unless the wait is for the end
  // of the spacing. Shared with the hint callback and a pending wait, which
  // may outlive the source or follow it when it is moved.
  struct hint_state {
    explicit hint_state(const Executor& executor) : change(executor, asio::steady_timer::time_point::max()) {}
    void notice() {
      pending = true;
      if (!spacing_wait) change.cancel();
    }
    // The source is gone: a pending wait completes with operation_aborted.
    void close() {
      closed = true;
      change.cancel();
    }
    bool live() const {
      const auto subscriber = hints.lock();
      return subscriber && subscriber->live(user);
    }
    bool pending = false;       // a hint came since the last wait a hint completed
    bool spacing_wait = false;  // the pending wait is for the spacing's end
    bool closed = false;
    std::chrono::milliseconds spacing{};
    // How often a wait that began with the hints live checks that they
    // still are: the hinted interval, at most max_recheck; zero without
    // hints or with a zero hinted interval (the poller's own always).
    static constexpr std::chrono::milliseconds max_recheck{1000};
    std::chrono::milliseconds recheck{};
    std::weak_ptr<hint_subscriber> hints;  // the source's, for `live`
    std::string user;
    asio::steady_timer::time_point last_wake = asio::steady_timer::time_point::min();
    asio::steady_timer change;
  };

  // The source's hint state: closed when the source is destroyed or
  // assigned to, taken along when it is moved.
  struct hint_state_owner {
    std::shared_ptr<hint_state> state;
    explicit hint_state_owner(std::shared_ptr<hint_state> made) : state(std::move(made)) {}
    hint_state_owner(hint_state_owner&& other) noexcept = default;
    hint_state_owner& operator=(hint_state_owner&& other) noexcept {
      if (this != &other) {
        if (state) state->close();
        state = std::move(other.state);
      }
      return *this;
    }
    ~hint_state_owner() {
      if (state) state->close();
    }
  };

  // Runs `work` on the source's executor, cancelled through the handler's
  // slot, and completes `handler` with its error and value (empty on error).
  template <class T, class Handler>
  void spawn(asio::awaitable<T> work, Handler handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    asio::co_spawn(executor_, std::move(work),
                   asio::bind_cancellation_slot(slot, [this, h = std::move(handler)](std::exception_ptr failure,
                                                                                      T result) mutable {
                     std::error_code ec;
                     if (failure) {
                       ec = to_error(failure);
                       result = {};
                     }
                     storewatch::detail::post_completion(executor_, std::move(h), ec, std::move(result));
                   }));
  }

  asio::awaitable<std::string> end_cursor() {
    std::vector<std::string> names;
    list_request request;
    request.prefix = merge_.folder;
    for (;;) {
      auto page = co_await client_->list(request);
      for (auto& object : page.objects) {
        if (object.key.starts_with(merge_.folder)) names.push_back(object.key.substr(merge_.folder.size()));
      }
      if (!page.truncated) break;
      request.continuation_token = std::move(page.next_continuation_token);
    }
    co_return detail::cursor_after(names, true).encode();
  }

  std::error_code to_error(std::exception_ptr failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::system_error& error) {
      last_error_ = error.what();
      return error.code();
    } catch (const std::exception& error) {
      last_error_ = "S3 journal of " + user_ + ": " + error.what();
      return errc::store_io_failed;
    }
  }

  // Makes the requests the merge (detail/s3_merge.hpp) asks for and hands
  // it the answers; the merge decides everything else.
  asio::awaitable<poll_result> poll(std::string cursor, std::size_t max_events) {
    // Before the listing: what was written earlier, this poll finds; what
    // comes later, a live subscription hints.
    live_at_poll_ = hints_ && hints_->live(user_);
    detail::s3_poll_hints hints;
    hints.tail_first = plan_.tail_first();
    hints.gone = gone_;
    if (const auto offset = client_->observed_clock_offset()) {
      const auto server = std::chrono::system_clock::now() + *offset - client_->observed_clock_error();
      hints.server_now = static_cast<std::uint64_t>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(server.time_since_epoch()).count()));
    }
    detail::s3_merge merge(merge_, reported_, cursor, max_events, hints);
    for (;;) {
      const auto& step = merge.next();
      if (step.what == detail::s3_merge_step::kind::list) {
        list_request request;
        request.prefix = step.prefix;
        request.start_after = step.start_after;
        request.continuation_token = step.continuation_token;
        auto page = co_await client_->list(request);
        detail::s3_listing_page listed;
        listed.truncated = page.truncated;
        listed.continuation_token = std::move(page.next_continuation_token);
        for (auto& object : page.objects) listed.keys.push_back(std::move(object.key));
        merge.on_page(std::move(listed));
      } else if (step.what == detail::s3_merge_step::kind::fetch && step.segment && step.keys.front() == segment_.first) {
        merge.on_bodies({segment_.second});  // a segment never changes: read its body again from memory
      } else if (step.what == detail::s3_merge_step::kind::fetch) {
        auto bodies = co_await detail::get_each(*client_, step.keys);
        if (step.segment && bodies.front()) segment_ = {step.keys.front(), *bodies.front()};
        merge.on_bodies(std::move(bodies));
      } else {
        plan_.after(merge);
        gone_ = merge.gone();
        co_return merge.finish();
      }
    }
  }

  executor_type executor_;
  std::string user_;
  std::unique_ptr<basic_client<Executor>> client_;  // in a box: the source or store stays movable
  detail::s3_merge_settings merge_;
  std::string last_error_;
  std::set<std::string> reported_;  // keys that are no journal entry, reported once
  detail::s3_listing_plan plan_;     // when a poll lists only the journal's tail
  std::set<std::string> gone_;       // what the last poll found gone (s3_merge::gone)
  std::pair<std::string, std::string> segment_;  // the last segment fetched, and its body: a poll that stopped
                                                 // inside it resumes there without a GET
  hint_state_owner hinted_;
  std::chrono::milliseconds hinted_poll_interval_{};  // s3_journal_options::hinted_poll_interval
  bool live_at_poll_ = false;                         // the hints were live when the last poll started
  std::shared_ptr<hint_subscriber> hints_;  // shared: kept while the source is
  hint_registration hint_registration_;     // after hinted_ and hints_: ends before them
};

/// The S3 journal source on `asio::any_io_executor`.
using s3_journal_source = basic_s3_journal_source<>;

/// The key prefix, under the store's own prefix, of `user`'s journal
/// objects (`journals/<user>/`).
inline std::string journal_prefix(std::string_view user) { return detail::journal_folder(user); }

/// The writer's clock, in milliseconds since the epoch, that names the
/// journal record object `name` (a key relative to `journal_prefix`); none
/// for a retention marker or a key that is no journal object.
inline std::optional<std::uint64_t> journal_record_stamp(std::string_view name) {
  const auto entry = detail::parse_journal_entry(name);
  if (!entry || entry->what != detail::journal_entry::kind::record) return std::nullopt;
  return entry->stamp;
}

/// The cursor of a reader that has delivered every journal record object in
/// `names` (keys relative to `journal_prefix`): a source polled from it
/// yields only what was written after them. Other keys are passed over.
inline std::string cursor_after(const std::vector<std::string>& names) {
  return detail::cursor_after(names, false).encode();
}

}  // namespace storewatch::s3
