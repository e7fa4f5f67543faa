/// \file
/// The per-user event journals of an `s3_store`, and `s3_journal_source`,
/// which polls one of them.
//
// An object store has no append and no rename, so a journal is a folder of
// immutable objects, one per operation and user, named so that listing the
// folder in key order lists them oldest first:
//
//   journals/<user>/<ms:13 digits>-<writer>-<object:20 digits>   the records one operation
//                                                                 wrote for <user>, as lines
//   journals/<user>/<ms:13 digits>!floor                          retention removed the records
//                                                                 stamped before <ms> (listed
//                                                                 before the records of <ms>)
//
// <ms> is the writer's clock when it wrote the object, made non-decreasing
// per writer; <writer> names one store object (host, process, random part);
// <object> counts that writer's objects. A PUT is atomic, so no reader sees
// a torn object, and writers share nothing, so they need no lock.
//
// A reader lists from its horizon H (the newest stamp it delivered) minus a
// window W (`s3_journal_options::late_window`, 60 s), and skips the objects
// its cursor says it delivered: per writer, the last object (and how many
// of its records). So an object that lands with an older stamp than H —
// its writer's clock is behind, or its PUT was retried — is still read as
// long as it is less than W older. A poll with nothing new is one LIST
// request (while fewer than 1000 objects are under W old); new events cost
// one GET per object, fetched several at a time.
//
// The names, the cursor, and what a poll decides from the listing and the
// objects (detail::s3_merge) are in detail/s3_merge.hpp, free of I/O; the
// source below only makes the requests.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/names.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/s3_merge.hpp>
#include <storewatch/detail/sys.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/s3/client.hpp>
#include <storewatch/source.hpp>

#include <asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch::s3 {
namespace detail {

/// Appends one operation's records to users' journals as one writer, and
/// makes them durable as one object per user. Not thread-safe.
class s3_journal_writer {
 public:
  explicit s3_journal_writer(std::string name) : name_(std::move(name)) {}

  const std::string& name() const noexcept { return name_; }

  /// A new event id: "<writer>-<n>".
  std::string next_id() { return name_ + "-" + std::to_string(++records_); }

  /// Adds a record line (`encode_record`) to the pending operation.
  void append(const std::string& user, std::string_view line) { pending_[user] += line; }

  /// Writes the pending records, one object per user; throws (leaving
  /// what it wrote for `take_back`) when a PUT fails.
  template <class Client>
  asio::awaitable<void> commit(Client& client) {
    const auto now = static_cast<std::uint64_t>(std::max<std::int64_t>(0, storewatch::detail::sys::now().time_since_epoch().count()));
    stamp_ = std::max(stamp_, now);  // non-decreasing, whatever the clock does
    for (const auto& [user, lines] : pending_) {
      auto name = record_name(user, stamp_, name_, ++objects_);
      written_.push_back(name);
      co_await client.put(std::move(name), lines);
    }
    pending_.clear();
    written_.clear();
  }

  /// Forgets the pending records and removes the objects a failed `commit`
  /// wrote. Best effort: never throws.
  template <class Client>
  asio::awaitable<void> take_back(Client& client) {
    pending_.clear();
    auto written = std::move(written_);
    written_.clear();
    for (auto& name : written) {
      try {
        co_await client.remove(std::move(name));
      } catch (const std::exception&) {  // left behind: a reader may see it, as it may have already
      }
    }
  }

 private:
  std::string name_;
  std::uint64_t records_ = 0;
  std::uint64_t objects_ = 0;
  std::uint64_t stamp_ = 0;
  std::map<std::string, std::string> pending_;
  std::vector<std::string> written_;
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
/// It must outlive its pending operations.
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
        client_(std::make_unique<basic_client<Executor>>(executor, std::move(where), std::move(options.client))) {
    storewatch::detail::validate_user(user_);
    const auto& c = client_->configuration();
    merge_.folder = detail::journal_folder(user_);
    merge_.journal = "s3://" + c.bucket + '/' + key_prefix(c) + merge_.folder;
    merge_.late_window = options.late_window;
    merge_.record_check = std::move(options.record_check);
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
          auto slot = asio::get_associated_cancellation_slot(handler);
          asio::co_spawn(executor_, poll(std::move(cursor), max_events),
                         asio::bind_cancellation_slot(
                             slot, [this, h = std::move(handler)](std::exception_ptr failure, poll_result result) mutable {
                               std::error_code ec;
                               if (failure) {
                                 ec = to_error(failure);
                                 result = {};
                               }
                               storewatch::detail::post_completion(executor_, std::move(h), ec, std::move(result));
                             }));
        },
        token, std::string(cursor), max_events);
  }

  /// What the last failed `async_poll` said: the request and the reason.
  const std::string& last_error() const noexcept { return last_error_; }

 private:
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
    detail::s3_merge merge(merge_, reported_, cursor, max_events);
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
      } else if (step.what == detail::s3_merge_step::kind::fetch) {
        auto bodies = co_await fetch(step.keys);
        merge.on_bodies(std::move(bodies));
      } else {
        co_return merge.finish();
      }
    }
  }

  // Gets the bodies of the objects `keys` names (nullopt: gone), 8 requests
  // at a time.
  asio::awaitable<std::vector<std::optional<std::string>>> fetch(const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> bodies(keys.size());
    std::size_t next = 0;
    const auto worker = [this, &keys, &bodies, &next]() -> asio::awaitable<void> {
      while (next < keys.size()) {
        const auto at = next++;
        bodies[at] = co_await client_->get(keys[at]);
      }
    };
    using namespace asio::experimental::awaitable_operators;
    co_await (worker() && worker() && worker() && worker() && worker() && worker() && worker() && worker());
    co_return bodies;
  }

  executor_type executor_;
  std::string user_;
  std::unique_ptr<basic_client<Executor>> client_;  // in a box: the source or store stays movable
  detail::s3_merge_settings merge_;
  std::string last_error_;
  std::set<std::string> reported_;  // keys that are no journal entry, reported once
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
  detail::s3_cursor cursor;
  for (const auto& name : names) {
    const auto entry = detail::parse_journal_entry(name);
    if (!entry || entry->what != detail::journal_entry::kind::record) continue;
    auto& at = cursor.writers[entry->writer];
    if (entry->object >= at.object) at = {entry->object, detail::s3_cursor::position::whole, entry->stamp};
    cursor.horizon = std::max(cursor.horizon, entry->stamp);
  }
  return cursor.encode();
}

}  // namespace storewatch::s3
