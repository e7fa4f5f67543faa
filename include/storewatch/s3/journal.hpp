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
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/gap.hpp>
#include <storewatch/journal/format.hpp>
#include <storewatch/detail/names.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/sys.hpp>
#include <storewatch/detail/text.hpp>
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

using storewatch::detail::parse_decimal;
using storewatch::detail::quote;
using storewatch::detail::take_field;

inline constexpr std::size_t stamp_digits = 13;   // milliseconds since 1970 up to the year 2286
inline constexpr std::size_t object_digits = 20;  // any 64-bit number
inline constexpr std::string_view floor_suffix = "!floor";  // '!' sorts before the '-' of records

/// `number` in decimal, zero-padded to `width` digits.
inline std::string padded(std::uint64_t number, std::size_t width) {
  auto digits = std::to_string(number);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return digits;
}

/// The folder of `user`'s journal, relative to the store's key prefix.
inline std::string journal_folder(std::string_view user) { return "journals/" + std::string(user) + "/"; }

/// One entry of a journal folder, decoded from its name.
struct journal_entry {
  enum class kind { record, floor } what = kind::record;
  std::uint64_t stamp = 0;   ///< the writer's clock (record) or the retention limit (floor), in ms
  std::string writer{};      ///< records only
  std::uint64_t object = 0;  ///< records only
};

inline std::string record_name(std::string_view user, std::uint64_t stamp, std::string_view writer,
                               std::uint64_t object) {
  return journal_folder(user) + padded(stamp, stamp_digits) + '-' + std::string(writer) + '-' +
         padded(object, object_digits);
}

inline std::string floor_name(std::string_view user, std::uint64_t stamp) {
  return journal_folder(user) + padded(stamp, stamp_digits) + std::string(floor_suffix);
}

/// Decodes `name`, relative to its journal folder; nullopt when it is no
/// journal entry.
inline std::optional<journal_entry> parse_journal_entry(std::string_view name) {
  journal_entry entry;
  if (name.size() <= stamp_digits || !parse_decimal(name.substr(0, stamp_digits), entry.stamp)) return std::nullopt;
  name.remove_prefix(stamp_digits);
  if (name == floor_suffix) {
    entry.what = journal_entry::kind::floor;
    return entry;
  }
  // "-<writer>-<object>"; the writer may itself contain '-'.
  if (name.size() < object_digits + 3 || name.front() != '-' || name[name.size() - object_digits - 1] != '-') {
    return std::nullopt;
  }
  const auto writer = name.substr(1, name.size() - object_digits - 2);
  if (!storewatch::detail::is_writer_name(writer) || !parse_decimal(name.substr(name.size() - object_digits), entry.object)) {
    return std::nullopt;
  }
  entry.writer = std::string(writer);
  return entry;
}

/// A decoded S3 journal cursor: "s1;<horizon>;<floor>;<writer>=<object>[:<records>]@<stamp>;...".
///
/// - horizon: the newest stamp delivered (0: nothing yet);
/// - floor: the newest retention limit seen (reported as a GAP once);
/// - per writer still within the late window: its last object delivered
///   wholly, or (":<records>") the number of records of it delivered so far,
///   and that object's stamp.
struct s3_cursor {
  struct position {
    std::uint64_t object = 0;
    std::uint64_t records = 0;  ///< records of `object` delivered; `whole` when all
    std::uint64_t stamp = 0;
    static constexpr std::uint64_t whole = UINT64_MAX;
  };

  std::uint64_t horizon = 0;
  std::uint64_t floor = 0;
  std::map<std::string, position, std::less<>> writers;

  /// True for a cursor of a reader that has read something: events before
  /// its position are not "from the start" any more.
  bool resuming() const { return horizon != 0 || floor != 0 || !writers.empty(); }

  std::string encode() const {
    std::string out = "s1;" + std::to_string(horizon) + ';' + std::to_string(floor);
    for (const auto& [writer, at] : writers) {
      out += ';';
      out += writer;
      out += '=';
      out += std::to_string(at.object);
      if (at.records != position::whole) out += ':' + std::to_string(at.records);
      out += '@';
      out += std::to_string(at.stamp);
    }
    return out;
  }

  /// Decodes `text` (empty: from the start); nullopt with `why` when it is
  /// not an S3 journal cursor.
  static std::optional<s3_cursor> decode(std::string_view text, std::string& why) {
    s3_cursor cursor;
    if (text.empty()) return cursor;
    if (!text.starts_with("s1;")) {
      why = "does not start with \"s1;\"";
      return std::nullopt;
    }
    if (text.ends_with(';')) {
      why = "ends with ';'";
      return std::nullopt;
    }
    text.remove_prefix(3);
    const auto next_field = [&text] { return take_field(text); };
    if (!parse_decimal(next_field(), cursor.horizon) || !parse_decimal(next_field(), cursor.floor)) {
      why = "has a bad horizon or floor";
      return std::nullopt;
    }
    while (!text.empty()) {
      const auto field = next_field();
      const auto equals = field.find('=');
      const auto at = field.find('@');
      const auto bad = [&] {
        why = "has a bad writer entry " + quote(field);
        return std::nullopt;
      };
      if (equals == std::string_view::npos || at == std::string_view::npos || at < equals) return bad();
      const auto writer = field.substr(0, equals);
      auto number = field.substr(equals + 1, at - equals - 1);
      position where;
      where.records = position::whole;
      if (const auto colon = number.find(':'); colon != std::string_view::npos) {
        if (!parse_decimal(number.substr(colon + 1), where.records) || where.records == position::whole) return bad();
        number = number.substr(0, colon);
      }
      if (!storewatch::detail::is_writer_name(writer) || !parse_decimal(number, where.object) ||
          !parse_decimal(field.substr(at + 1), where.stamp) || cursor.writers.contains(writer)) {
        return bad();
      }
      cursor.writers.emplace(std::string(writer), where);
    }
    return cursor;
  }
};

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
/// top of s3/journal.hpp): an `event_source` for a poller or listener.
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
        options_(std::move(options)),
        client_(std::make_unique<basic_client<Executor>>(executor, std::move(where), options_.client)) {
    storewatch::detail::validate_user(user_);
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
  // What a poll walks: the folder's entries in key order, each with the
  // body of a record object once fetched.
  struct item {
    std::string name;  // relative to the store's key prefix
    detail::journal_entry entry;
    std::optional<std::string> body{};
  };

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

  static event gap(std::string what) { return storewatch::detail::make_gap(std::move(what)); }

  std::string where() const { return "S3 journal " + quote_journal(); }
  std::string quote_journal() const {
    const auto& c = client_->configuration();
    return "s3://" + c.bucket + '/' + key_prefix(c) + detail::journal_folder(user_);
  }

  asio::awaitable<poll_result> poll(std::string cursor_text, std::size_t max_events) {
    poll_result result;
    std::string why;
    auto cursor = detail::s3_cursor::decode(cursor_text, why);
    if (!cursor) {
      result.problems.push_back({errc::invalid_cursor, where() + ": cursor " + detail::quote(cursor_text) + " " + why +
                                                           "; reading from the oldest records kept"});
      result.events.push_back(gap("cursor " + detail::quote(cursor_text) + " was not understood"));
      cursor.emplace();
    }
    const bool resuming = cursor->resuming();
    const auto window = static_cast<std::uint64_t>(std::max<std::int64_t>(0, options_.late_window.count()));
    const auto folder = detail::journal_folder(user_);
    list_request request;
    request.prefix = folder;
    if (cursor->horizon > window) request.start_after = folder + detail::padded(cursor->horizon - window, detail::stamp_digits);

    bool more = true;
    while (more && result.events.size() < max_events) {
      auto page = co_await client_->list(request);
      more = page.truncated;
      request.continuation_token = page.next_continuation_token;
      std::vector<item> items;
      for (auto& object : page.objects) {
        auto entry = object.key.starts_with(folder) ? detail::parse_journal_entry(std::string_view(object.key).substr(folder.size()))
                                                    : std::nullopt;
        if (!entry) {
          if (reported_.insert(object.key).second) {
            result.problems.push_back({errc::corrupt_record, where() + ": object " + detail::quote(object.key) +
                                                                 " is not a journal record; skipped"});
          }
          continue;
        }
        if (entry->what == detail::journal_entry::kind::record && delivered(*cursor, *entry)) continue;
        items.push_back({std::move(object.key), std::move(*entry)});
      }
      // Walk the page in order, fetching the records ahead a few objects at a time.
      for (std::size_t next = 0, fetched = 0; next < items.size() && result.events.size() < max_events; ++next) {
        if (next == fetched) fetched = co_await fetch(items, next, max_events - result.events.size());
        auto& [name, entry, body] = items[next];
        if (entry.what == detail::journal_entry::kind::floor) {
          if (entry.stamp > cursor->floor) {
            if (resuming) {
              result.events.push_back(gap(quote_journal() + ": records stamped before " + std::to_string(entry.stamp) +
                                          " ms were removed by retention; some may not have been read"));
            }
            cursor->floor = entry.stamp;
          }
          continue;
        }
        if (!body) continue;  // removed since the listing: a failed operation taken back, or retention (its floor follows)
        read_object(name, entry, *body, *cursor, result, max_events);
      }
    }
    // Writers whose last object is older than the window are not listed
    // again: forget them (a later object of theirs is new to the cursor).
    std::erase_if(cursor->writers, [&](const auto& writer) {
      return writer.second.records == detail::s3_cursor::position::whole && writer.second.stamp + window < cursor->horizon;
    });
    result.next_cursor = cursor->encode();
    co_return result;
  }

  static bool delivered(const detail::s3_cursor& cursor, const detail::journal_entry& entry) {
    const auto known = cursor.writers.find(entry.writer);
    if (known == cursor.writers.end()) return false;
    const auto& at = known->second;
    return entry.object < at.object || (entry.object == at.object && at.records == detail::s3_cursor::position::whole);
  }

  // Fetches the bodies of up to `budget` record objects from `items[from]`
  // on (fewer when a floor comes first), several at a time; returns the
  // index after the last one fetched.
  asio::awaitable<std::size_t> fetch(std::vector<item>& items, std::size_t from, std::size_t budget) {
    std::vector<item*> batch;
    std::size_t end = from;
    for (; end < items.size() && batch.size() < std::min(budget, fetch_batch); ++end) {
      if (items[end].entry.what == detail::journal_entry::kind::record) batch.push_back(&items[end]);
    }
    std::size_t next = 0;
    const auto worker = [this, &batch, &next]() -> asio::awaitable<void> {
      while (next < batch.size()) {
        auto* target = batch[next++];
        target->body = co_await client_->get(target->name);
      }
    };
    using namespace asio::experimental::awaitable_operators;
    co_await (worker() && worker() && worker() && worker() && worker() && worker() && worker() && worker());
    co_return end;
  }

  void read_object(const std::string& name, const detail::journal_entry& entry, std::string_view body,
                   detail::s3_cursor& cursor, poll_result& result, std::size_t max_events) {
    auto& at = cursor.writers[entry.writer];
    std::uint64_t skip = at.object == entry.object && at.records != detail::s3_cursor::position::whole ? at.records : 0;
    at.object = entry.object;
    at.stamp = entry.stamp;
    cursor.horizon = std::max(cursor.horizon, entry.stamp);
    std::uint64_t index = 0;
    std::size_t line_number = 0;
    while (!body.empty()) {
      ++line_number;
      const auto newline = body.find('\n');
      const auto line = body.substr(0, newline);
      body = newline == std::string_view::npos ? std::string_view{} : body.substr(newline + 1);
      if (index++ < skip) continue;
      if (result.events.size() >= max_events) {
        at.records = index - 1;
        return;
      }
      std::string why = newline == std::string_view::npos ? "no newline at the end" : "";
      auto e = why.empty() ? storewatch::detail::decode_record(line, why) : std::nullopt;
      if (e && options_.record_check) why = options_.record_check(*e);
      if (e && why.empty()) {
        result.events.push_back(std::move(*e));
      } else {
        result.problems.push_back({errc::corrupt_record, where() + ": object " + detail::quote(name) + " line " +
                                                             std::to_string(line_number) + ": " + why + "; skipped"});
      }
    }
    at.records = detail::s3_cursor::position::whole;
  }

  static constexpr std::size_t fetch_batch = 32;  // objects fetched ahead of delivery, 8 at a time

  executor_type executor_;
  std::string user_;
  s3_journal_options options_;
  std::unique_ptr<basic_client<Executor>> client_;  // in a box: the source or store stays movable
  std::string last_error_;
  std::set<std::string> reported_;  // keys that are no journal entry, reported once
};

/// The S3 journal source on `asio::any_io_executor`.
using s3_journal_source = basic_s3_journal_source<>;

}  // namespace storewatch::s3
