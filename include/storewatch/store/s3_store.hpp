/// \file
/// `s3_store`: the versioned file store with per-user event journals, kept
/// in an S3-compatible bucket.
//
// The keys, under the configuration's key prefix:
//
//   versions/<owner>/<path>✹<owner>_<ms>              the bytes of each version
//   shares/<user>/<owner>/<path>✹<owner>_<ms>         empty: shared with <user>
//   grants/<owner>/<path>✹<owner>_<ms>/<user>         empty: the same share, found from the version
//   journals/<user>/...                                see store/s3_journal.hpp
//
// Every step is a PUT or DELETE of its own object, so any number of store
// objects, on any number of machines, may use one bucket at once without a
// lock. An object store has no rename, so an operation that fails part way
// puts back what it changed with further requests (see `basic_s3_store`).
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/journal/format.hpp>
#include <storewatch/journal/layout.hpp>
#include <storewatch/detail/names.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/s3_compaction.hpp>
#include <storewatch/detail/sys.hpp>
#include <storewatch/diagnostics.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/hints.hpp>
#include <storewatch/s3/client.hpp>
#include <storewatch/store/s3_journal.hpp>
#include <storewatch/store/rules.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace storewatch::s3 {

/// Options of an S3 store.
struct s3_store_options {
  /// The HTTP and retry settings of the store's client (and of the sources
  /// `events()` makes, unless their options say otherwise).
  client_options client{};
  /// How far ahead of the server's clock (learnt from its Date headers) this
  /// store's clock may be and still write journal records; beyond it a
  /// writing operation fails with `errc::store_io_failed` saying so, for its
  /// records would hide other writers' from readers. Keep it at most the
  /// readers' `s3_journal_options::late_window`. While it is on, a clock
  /// behind the server's stamps journal records with the server's instead,
  /// so that they stay in readers' windows. 0 turns both off.
  std::chrono::milliseconds max_clock_ahead{60'000};
  /// How long after the stamp of a journal record object (the server's
  /// clock when its operation stored its records) that object may still be
  /// written, or removed by the operation's take-back: a writing operation
  /// starts no PUT of a record object that, with the take-back after it
  /// (each within `client_options::retry_budget`), could end later, and
  /// fails, rolled back, with `errc::store_io_failed` saying so. A
  /// compaction folds only records stamped at least this long before the
  /// server's clock, and refuses an `s3_compact_options::settled` below it:
  /// so a compacted range of a journal never changes. Give every store
  /// object that writes to or compacts a bucket the same value; keep it
  /// more than twice the retry budget and under the readers'
  /// `s3_journal_options::late_window`. 0 turns the check off (then no
  /// compaction may run while anything writes).
  std::chrono::milliseconds journal_landing_limit = detail::default_landing_limit;
  /// Wake-up hints (e.g. a `redis::hint_publisher`): after an operation's
  /// journal records are stored, one hint per user they went to, so that
  /// those users' listeners poll at once. Never before the records are
  /// stored, and a hint that cannot be sent never fails the operation.
  /// Empty: no hints; listeners find the records at their next poll.
  std::shared_ptr<hint_publisher> hints{};
};

/// What `basic_s3_store::async_compact` does to every user's journal.
struct s3_compact_options {
  /// Retention: removes the journal records stamped more than this long
  /// ago, leaving a floor marker so that a listener whose cursor is older
  /// gets a GAP event. None: keeps every record.
  std::optional<std::chrono::seconds> remove_older_than{};
  /// Folds the record objects stamped this long before both the server's
  /// clock (as this store's client learns it from the Date headers; this
  /// machine's clock where it is earlier or not known) and the journal's
  /// newest record into segments, objects of up to `segment_objects`
  /// records each, so that catching up costs one GET per segment (see
  /// store/s3_journal.hpp). At least the store's
  /// `s3_store_options::journal_landing_limit` (55 s), or the compaction
  /// fails (`errc::store_io_failed`, its message naming both settings,
  /// before any request): then no record object appears in, or is taken
  /// back from, a range after it was folded. At least the readers'
  /// `s3_journal_options::late_window` too, so that a reader that has read
  /// the newest record never lists a segment again.
  std::chrono::milliseconds settled{60'000};
  /// Most record objects in one segment (1 to 1000).
  std::size_t segment_objects = 1000;
};

/// A store in an S3-compatible bucket, opened as one user: the operations
/// and semantics of `basic_local_store` (DESIGN.md, "Store semantics").
///
/// Every operation is an initiating function with completion signature
/// `void(std::error_code, Result)`, run as a coroutine of requests on the
/// store's executor (libcurl on Asio: no thread). It completes after the
/// objects it wrote and its journal records are stored (S3 acknowledges a
/// PUT once the object is durable). Errors are those of `basic_local_store`,
/// plus `errc::store_access_denied` when the bucket refuses the
/// credentials; requests that fail with 5xx, 429 or a lost connection are
/// retried (see `client_options`), and `errc::store_io_failed` means the
/// retries ran out. Which request or argument: each operation has an
/// overload taking a `diagnostics&` before the token, which receives that
/// operation's own account just before its handler runs, on the handler's
/// executor; `last_error()` holds the last one to complete (use diagnostics
/// with concurrent operations).
///
/// An operation that fails puts back what it changed: the objects it wrote
/// are removed, the share markers it removed are written again, and its
/// journal records are removed (a listener may have read one meanwhile, as
/// with `basic_local_store`). That includes the request that failed, which
/// the server may have executed with its response lost (a new version is
/// removed only if it carries the create's write mark, never another
/// writer's object of that name). A delete writes its DELETE records first and
/// then removes the objects: if removing fails, the events are out and the
/// versions still readable, and running the delete again finishes it.
///
/// Cancellation: each operation follows its handler's associated
/// cancellation slot (terminal cancellation), which stops the request in
/// flight or the wait before a retry; the operation then completes with
/// `asio::error::operation_aborted`. What it had written is then as after a
/// failure: a create, share, unshare or publish is put back whole (the undo
/// requests themselves are not cancelled); a delete cancelled before its
/// DELETE records are stored changes nothing, and after that leaves the
/// events out and the versions readable until a delete runs again; a compact
/// may have removed some old records, behind the floor marker it wrote
/// first, so that readers still get their GAP. A writing operation waiting
/// for the one before it completes when its turn comes, without a request.
/// Reads have nothing to undo.
///
/// Writing operations of one store object run one after another, in the
/// order they were started; reads run at once. Not thread-safe: use one
/// store object from one strand. Several store objects, also on several
/// machines, may share one bucket. The store must outlive its pending
/// operations.
///
/// Retried requests are harmless: a repeated PUT stores the same bytes
/// under the same name again, a repeated DELETE finds nothing, and a
/// create's conditional PUT that meets 412 on a retry reads the object's
/// metadata back and takes it as its own when an earlier attempt of that
/// PUT stored it (`basic_client::put`), so a lost response never leaves a
/// second, unannounced version.
///
/// What S3-compatible servers differ in: two store objects creating one
/// path in one millisecond get distinct versions only where the server
/// honours `If-None-Match: *` on PUT (AWS S3, MinIO). The first create of
/// bytes (not of a file) by a store object finds out (it stores the new
/// version a second time with the condition: a 412 means honoured) and
/// `conditional_writes()` tells. Where
/// the condition is ignored (s3rver), such creates overwrite one another:
/// one version survives and each announces it. That is accepted, not
/// refused: it needs one user writing one path from two store objects in
/// the same millisecond; use such a server for tests.
template <class Executor = asio::any_io_executor>
class basic_s3_store {
 public:
  /// The executor type.
  using executor_type = Executor;
  /// A list of versions, sorted by path, then creation time.
  using versions = std::vector<versioned_path>;
  /// The completion token of a call that names none.
  using default_token = asio::default_completion_token_t<executor_type>;

  /// The store type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_s3_store<OtherExecutor>;  ///< the store on `OtherExecutor`
  };

  /// Opens the store `where` describes as `user`. Throws
  /// std::invalid_argument (naming the field) for a bad configuration and
  /// `std::system_error` (`errc::invalid_user`) for a bad user name. Makes no
  /// request.
  basic_s3_store(const executor_type& executor, config where, std::string user, s3_store_options options = {})
      : executor_(executor),
        user_(std::move(user)),
        options_(std::move(options)),
        client_(std::make_unique<basic_client<Executor>>(executor, std::move(where), options_.client)),
        writer_(storewatch::detail::make_writer_name(), options_.max_clock_ahead, options_.journal_landing_limit) {
    storewatch::detail::validate_user(user_);
  }

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }
  /// The user this store object acts as.
  const std::string& user() const noexcept { return user_; }
  /// Where the store is.
  const config& configuration() const noexcept { return client_->configuration(); }
  /// The store's client, for its request counts.
  const basic_client<Executor>& client() const noexcept { return *client_; }
  /// What the last failed operation to complete said: the request or
  /// argument at fault. With operations pending at once, pass each its own
  /// `diagnostics` instead: another failure may replace this text before
  /// you read it.
  const std::string& last_error() const noexcept { return last_error_; }
  /// Whether the server honours `If-None-Match: *` on PUT, as this store
  /// object's first create found out; std::nullopt before one succeeded.
  std::optional<bool> conditional_writes() const noexcept { return conditional_writes_; }

  /// As `basic_local_store::async_create_file`.
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file(std::string path, std::string bytes, CompletionToken&& token = default_token{}) {
    return run<versioned_path>(nullptr, std::forward<CompletionToken>(token), true, &basic_s3_store::create_file,
                               std::move(path), std::move(bytes));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file(std::string path, std::string bytes, diagnostics& diag,
                         CompletionToken&& token = default_token{}) {
    return run<versioned_path>(&diag, std::forward<CompletionToken>(token), true, &basic_s3_store::create_file,
                               std::move(path), std::move(bytes));
  }

  /// As `async_create_file`, with the bytes of the file `source`, streamed
  /// (see `basic_client::put_file`): memory stays bounded whatever its
  /// size, and a file over `client_options::multipart_threshold` goes up as
  /// a multipart upload. The version and its CREATE event are those of
  /// `async_create_file`. The file must not change until this completes.
  /// Errors: also `errc::store_io_failed` when the file cannot be read.
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file_from(std::string path, std::filesystem::path source,
                              CompletionToken&& token = default_token{}) {
    return run<versioned_path>(nullptr, std::forward<CompletionToken>(token), true,
                               &basic_s3_store::create_file_from, std::move(path), std::move(source));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file_from(std::string path, std::filesystem::path source, diagnostics& diag,
                              CompletionToken&& token = default_token{}) {
    return run<versioned_path>(&diag, std::forward<CompletionToken>(token), true, &basic_s3_store::create_file_from,
                               std::move(path), std::move(source));
  }

  /// As `basic_local_store::async_share_files`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_share_files(selection which, std::vector<std::string> users, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), true, &basic_s3_store::share_files,
                         std::move(which), std::move(users), true);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_share_files(selection which, std::vector<std::string> users, diagnostics& diag,
                         CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), true, &basic_s3_store::share_files,
                         std::move(which), std::move(users), true);
  }

  /// As `basic_local_store::async_unshare_files`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_unshare_files(selection which, std::vector<std::string> users, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), true, &basic_s3_store::share_files,
                         std::move(which), std::move(users), false);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_unshare_files(selection which, std::vector<std::string> users, diagnostics& diag,
                           CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), true, &basic_s3_store::share_files,
                         std::move(which), std::move(users), false);
  }

  /// As `basic_local_store::async_delete_files`. Completes with the
  /// versions selected; one deleted meanwhile by another store object is
  /// announced by both.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_delete_files(selection which, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), true, &basic_s3_store::delete_files,
                         std::move(which));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_delete_files(selection which, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), true, &basic_s3_store::delete_files,
                         std::move(which));
  }

  /// As `basic_local_store::async_read_file`.
  template <asio::completion_token_for<void(std::error_code, std::string)> CompletionToken = default_token>
  auto async_read_file(versioned_path version, CompletionToken&& token = default_token{}) {
    return run<std::string>(nullptr, std::forward<CompletionToken>(token), false, &basic_s3_store::read_file,
                            std::move(version));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::string)> CompletionToken = default_token>
  auto async_read_file(versioned_path version, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return run<std::string>(&diag, std::forward<CompletionToken>(token), false, &basic_s3_store::read_file,
                            std::move(version));
  }

  /// As `async_read_file`, but the bytes go to the file `destination`,
  /// streamed (see `basic_client::get_to_file`): memory stays bounded
  /// whatever the size. They are written next to it and renamed over it at
  /// the end, so a failure leaves `destination` as it was. Completes with
  /// the number of bytes. Completion signature:
  /// `void(std::error_code, std::uint64_t)`.
  /// Errors: also `errc::store_io_failed` when the file cannot be written.
  template <asio::completion_token_for<void(std::error_code, std::uint64_t)> CompletionToken = default_token>
  auto async_read_file_to(versioned_path version, std::filesystem::path destination,
                          CompletionToken&& token = default_token{}) {
    return run<std::uint64_t>(nullptr, std::forward<CompletionToken>(token), false, &basic_s3_store::read_file_to,
                              std::move(version), std::move(destination));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::uint64_t)> CompletionToken = default_token>
  auto async_read_file_to(versioned_path version, std::filesystem::path destination, diagnostics& diag,
                          CompletionToken&& token = default_token{}) {
    return run<std::uint64_t>(&diag, std::forward<CompletionToken>(token), false, &basic_s3_store::read_file_to,
                              std::move(version), std::move(destination));
  }

  /// As `basic_local_store::async_list_files`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_list_files(std::string prefix, bool recursive, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), false, &basic_s3_store::list_files,
                         std::move(prefix), recursive);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_list_files(std::string prefix, bool recursive, diagnostics& diag,
                        CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), false, &basic_s3_store::list_files,
                         std::move(prefix), recursive);
  }

  /// As `basic_local_store::async_publish_event`.
  template <asio::completion_token_for<void(std::error_code, std::vector<std::string>)> CompletionToken = default_token>
  auto async_publish_event(std::string name, std::string data, std::vector<std::string> users,
                           CompletionToken&& token = default_token{}) {
    return run<std::vector<std::string>>(nullptr, std::forward<CompletionToken>(token), true,
                                         &basic_s3_store::publish_event, std::move(name), std::move(data),
                                         std::move(users));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::vector<std::string>)> CompletionToken = default_token>
  auto async_publish_event(std::string name, std::string data, std::vector<std::string> users, diagnostics& diag,
                           CompletionToken&& token = default_token{}) {
    return run<std::vector<std::string>>(&diag, std::forward<CompletionToken>(token), true,
                                         &basic_s3_store::publish_event, std::move(name), std::move(data),
                                         std::move(users));
  }

  /// Removes the journal records stamped more than `age` ago from every
  /// user's journal, leaving a floor marker so that a listener whose cursor
  /// is older gets a GAP event, and folds the rest older than a minute into
  /// segments: `async_compact(options)` with `remove_older_than = age` and
  /// the other options' defaults. Completes with the number of journal
  /// objects removed (folded records included). Costs per journal with old
  /// records one LIST page per 1000 objects, one PUT (the floor) and one
  /// DeleteObjects request per 200 objects removed, and for records folded
  /// one GET each and per segment one PUT.
  /// Completion signature: `void(std::error_code, std::size_t)`.
  template <asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken = default_token>
  auto async_compact(std::chrono::seconds age, CompletionToken&& token = default_token{}) {
    return async_compact(s3_compact_options{age}, std::forward<CompletionToken>(token));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken = default_token>
  auto async_compact(std::chrono::seconds age, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return async_compact(s3_compact_options{age}, diag, std::forward<CompletionToken>(token));
  }
  /// Compacts every user's journal as `options` say: retention, then
  /// records into segments (the design is at the top of store/s3_journal.hpp).
  /// Safe to run from any machine at any time, with writers, readers and
  /// other compactions running: each segment is written before the records
  /// it holds are removed, and a compaction that stopped anywhere is
  /// finished by the next. Completes with the number of journal objects
  /// removed. Completion signature: `void(std::error_code, std::size_t)`.
  template <asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken = default_token>
  auto async_compact(s3_compact_options options, CompletionToken&& token = default_token{}) {
    return run<std::size_t>(nullptr, std::forward<CompletionToken>(token), true, &basic_s3_store::compact, options);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken = default_token>
  auto async_compact(s3_compact_options options, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return run<std::size_t>(&diag, std::forward<CompletionToken>(token), true, &basic_s3_store::compact, options);
  }

  /// This user's journal, as a source for a poller or listener: a new
  /// source object (with its own client) on the store's executor. Unless
  /// `options` has its own `record_check`, records no store writes are
  /// reported as corrupt and not delivered.
  basic_s3_journal_source<Executor> events(s3_journal_options options = {}) const {
    if (!options.record_check) {
      options.record_check = [user = user_](const event& e) { return storewatch::detail::store_record_problem(user, e); };
    }
    return basic_s3_journal_source<Executor>(executor_, client_->configuration(), user_, std::move(options));
  }

 private:
  // An operation's changes: its journal records, and the steps that undo
  // what it changed in the bucket.
  class transaction {
   public:
    transaction(detail::s3_journal_writer& writer, basic_client<Executor>& client) : writer_(writer), client_(client) {}

    /// `step` undoes a change made so far; it is run, newest first, if the
    /// operation fails. A step that fails is skipped.
    void on_failure(std::function<asio::awaitable<void>()> step) { undo_.push_back(std::move(step)); }

    /// Runs `body(*this)`, then stores the records; undoes everything if
    /// either fails, and rethrows.
    template <class Result, class Body>
    asio::awaitable<Result> run(Body body) {
      std::exception_ptr failure;
      std::optional<Result> result;
      try {
        result.emplace(co_await body(*this));
        co_await writer_.commit(client_);
      } catch (...) {
        failure = std::current_exception();
      }
      if (failure) {
        // Cancelled or not, the undo runs to the end: it puts the bucket back.
        co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
        co_await writer_.take_back(client_);
        for (auto step = undo_.rbegin(); step != undo_.rend(); ++step) {
          try {
            co_await (*step)();
          } catch (const std::exception&) {  // best effort, as local_store's undo
          }
        }
        std::rethrow_exception(failure);
      }
      co_return std::move(*result);
    }

   private:
    detail::s3_journal_writer& writer_;
    basic_client<Executor>& client_;
    std::vector<std::function<asio::awaitable<void>()>> undo_;
  };

  static std::string version_name(const versioned_path& version) {
    return "versions/" + version.user + '/' + version.to_string();
  }
  static std::string share_name(const std::string& grantee, const versioned_path& version) {
    return "shares/" + grantee + '/' + version.user + '/' + version.to_string();
  }
  static std::string grant_name(const versioned_path& version, const std::string& grantee) {
    return "grants/" + version.user + '/' + version.to_string() + '/' + grantee;
  }

  // Refuses a version whose longest key (a share's or grant's, for a grantee
  // of the longest name) would pass S3's key limit under the key prefix, so
  // that a file made now can be shared later.
  void check_key_length(const versioned_path& version) const {
    const auto prefix = key_prefix(configuration());
    const auto longest =
        prefix.size() + share_name(std::string(storewatch::detail::max_user_bytes, 'u'), version).size();
    if (longest <= max_key_bytes) return;
    throw std::system_error(errc::invalid_path,
                            "invalid path " + storewatch::detail::quote(version.path) + ": its S3 keys would be up to " +
                                std::to_string(longest) + " bytes under the key prefix " +
                                storewatch::detail::quote(prefix) + ", and S3 allows " +
                                std::to_string(max_key_bytes) + " (use a shorter path or key prefix)");
  }

  // Every object name under `prefix`, following continuation tokens and
  // dropping the repeats some servers send across pages.
  asio::awaitable<std::vector<std::string>> list_all(std::string prefix) {
    std::set<std::string> names;
    list_request request;
    request.prefix = std::move(prefix);
    for (;;) {
      auto page = co_await client_->list(request);
      for (auto& object : page.objects) names.insert(std::move(object.key));
      if (!page.truncated) break;
      request.continuation_token = std::move(page.next_continuation_token);
    }
    co_return std::vector<std::string>(std::make_move_iterator(names.begin()), std::make_move_iterator(names.end()));
  }

  // The versions stored under `folder` ("versions/<owner>/" or
  // "shares/<user>/") whose path starts with `path_prefix`, owned by the
  // owner the name says (for "shares/", the first component after the folder).
  asio::awaitable<versions> list_versions(std::string folder, const std::string& path_prefix, bool owner_in_name) {
    versions found;
    for (const auto& name : co_await list_all(folder + path_prefix)) {
      std::string_view rest = std::string_view(name).substr(folder.size());
      std::string_view owner;
      if (owner_in_name) {
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) continue;
        owner = rest.substr(0, slash);
        rest.remove_prefix(slash + 1);
      }
      auto version = versioned_path::try_parse(rest);
      if (!version || (owner_in_name && version->user != owner)) continue;
      found.push_back(std::move(*version));
    }
    co_return found;
  }

  asio::awaitable<versions> own_selection(const selection& which) {
    auto listed = co_await list_versions("versions/" + user_ + '/', which.prefix, false);
    co_return rules::select(which, user_, std::move(listed));
  }

  // Appends the event `step` announces; returns its id.
  std::string append(const rules::step& step) {
    event e;
    e.id = writer_.next_id();
    e.name = step.event_name;
    e.data = step.data;
    e.actor = user_;
    e.occurred_at = storewatch::detail::sys::now();
    writer_.append(step.user, storewatch::detail::encode_record(e));
    return e.id;
  }

  // Carries out `planned` (throwing its refusal) in a transaction: makes each
  // step's change and appends its event. Returns the ids of the events.
  // (`source`, when given, holds a new version's bytes instead of `bytes`.)
  asio::awaitable<std::vector<std::string>> carry_out(rules::plan& planned, std::string_view bytes = {},
                                                      const std::filesystem::path* source = nullptr) {
    rules::throw_if_refused(planned.refused);
    auto ids = co_await transaction(writer_, *client_).template run<std::vector<std::string>>(
        [this, &planned, &bytes, source](transaction& change) -> asio::awaitable<std::vector<std::string>> {
          std::vector<std::string> ids;
          for (auto& step : planned.steps) {
            co_await apply(change, step, bytes, source);
            ids.push_back(append(step));
          }
          co_return ids;
        });
    // The records are stored: now the hints, one per recipient.
    if (options_.hints) {
      std::set<std::string_view> recipients;
      for (const auto& step : planned.steps) {
        if (recipients.insert(step.user).second) options_.hints->publish(step.user);
      }
    }
    co_return ids;
  }

  // Makes the change `step` names (`bytes`: a new version's), to be undone
  // if `change` fails. Removing a version is not here: see delete_files.
  // Each undo is registered before its request: a request that failed may
  // still have been executed, its response lost.
  asio::awaitable<void> apply(transaction& change, rules::step& step, std::string_view bytes,
                              const std::filesystem::path* source) {
    const auto& u = step.user;
    const auto& version = step.version;
    switch (step.what) {
      case rules::change::add_version: {
        const std::string body(bytes);
        for (bool stored = false; !stored;) {
          std::string name = version_name(version);
          std::string mark = client_->new_write_mark(body);
          std::exception_ptr failure;
          try {
            stored = co_await put_version(name, body, source, mark);
          } catch (...) {
            failure = std::current_exception();
          }
          if (failure) {
            // Its object, if stored, carries its mark; another writer's may have the name.
            change.on_failure([this, name = std::move(name), mark = std::move(mark)]() {
              return client_->remove_marked(name, mark);
            });
            std::rethrow_exception(failure);
          }
          if (!stored) rules::next_millisecond(step);
        }
        change.on_failure([this, name = version_name(version)]() { return client_->remove(name); });
        if (!conditional_writes_ && source == nullptr) {
          // The probe (on a create of bytes, not of a file, which would be
          // sent twice): the same bytes again, under a new write mark.
          const bool stored_again = co_await client_->put(version_name(version), body, true);
          conditional_writes_ = !stored_again;
        }
        recent_creates_[version.path] = version.timestamp_ms;
        break;
      }
      case rules::change::add_share:
        change.on_failure([this, u, version]() { return client_->remove(grant_name(version, u)); });
        co_await client_->put(grant_name(version, u), "");
        change.on_failure([this, u, version]() { return client_->remove(share_name(u, version)); });
        co_await client_->put(share_name(u, version), "");
        break;
      case rules::change::remove_share:
        change.on_failure([this, u, version]() -> asio::awaitable<void> {
          co_await client_->put(grant_name(version, u), "");
          co_await client_->put(share_name(u, version), "");
        });
        co_await client_->remove(share_name(u, version));
        co_await client_->remove(grant_name(version, u));
        break;
      case rules::change::none:
      case rules::change::remove_version:
        break;
    }
  }

  // Stores a new version's bytes: `body`, or the file `source` streamed.
  asio::awaitable<bool> put_version(std::string name, const std::string& body, const std::filesystem::path* source,
                                    std::string mark) {
    if (source) co_return co_await client_->put_file(std::move(name), *source, true, std::move(mark));
    co_return co_await client_->put(std::move(name), body, true, std::move(mark));
  }

  asio::awaitable<versioned_path> create_file(std::string path, std::string bytes) {
    co_return co_await create_version(std::move(path), bytes, nullptr);
  }

  asio::awaitable<versioned_path> create_file_from(std::string path, std::filesystem::path source) {
    const std::string_view no_bytes;
    co_return co_await create_version(std::move(path), no_bytes, &source);
  }

  // A create: of `bytes`, or of the file `source` when given.
  asio::awaitable<versioned_path> create_version(std::string path, std::string_view bytes,
                                                 const std::filesystem::path* source) {
    auto stamp = storewatch::detail::sys::now().time_since_epoch().count();
    // One path made twice in one millisecond by this object: the second a
    // millisecond later (other objects: If-None-Match, where honoured).
    std::erase_if(recent_creates_, [&](const auto& entry) { return entry.second < stamp; });
    if (const auto last = recent_creates_.find(path); last != recent_creates_.end()) {
      stamp = std::max(stamp, last->second + 1);
    }
    auto planned = rules::decide(rules::create_operation(user_, std::move(path), stamp));
    if (!planned.refused) check_key_length(planned.steps.front().version);
    co_await carry_out(planned, bytes, source);
    co_return planned.steps.front().version;
  }

  asio::awaitable<versions> share_files(selection which, std::vector<std::string> users, bool share) {
    const auto op = rules::selection_operation(
        share ? rules::operation_kind::share : rules::operation_kind::unshare, user_, std::move(which), std::move(users));
    rules::throw_if_refused(rules::refusal(op));
    rules::store_state state;
    state.owned = co_await own_selection(op.which);
    // What each named user holds already: listed, not learned from
    // conditional writes, which not every server honours.
    for (const auto& u : std::set<std::string>(op.users.begin(), op.users.end())) {
      if (u == user_) continue;
      const auto held = co_await list_all("shares/" + u + '/' + user_ + '/' + op.which.prefix);
      for (const auto& version : state.owned) {
        if (std::binary_search(held.begin(), held.end(), share_name(u, version))) {
          state.grantees[version.to_string()].insert(u);
        }
      }
    }
    auto planned = rules::decide(op, state);
    co_await carry_out(planned);
    co_return planned.selected;
  }

  asio::awaitable<versions> delete_files(selection which) {
    const auto op = rules::selection_operation(rules::operation_kind::delete_, user_, std::move(which));
    rules::throw_if_refused(rules::refusal(op));
    rules::store_state state;
    state.owned = co_await own_selection(op.which);
    // Who each selected version is shared with, from its grants.
    const std::string grants = "grants/" + user_ + '/';
    for (const auto& name : co_await list_all(grants + op.which.prefix)) {
      const auto slash = name.rfind('/');
      if (slash == std::string::npos || slash < grants.size()) continue;
      state.grantees[name.substr(grants.size(), slash - grants.size())].insert(name.substr(slash + 1));
    }
    auto planned = rules::decide(op, state);
    // The DELETE events first (the steps' changes wait), then the objects,
    // in reverse: each version's markers before the version, so that a
    // failure leaves versions to delete again, never lost events.
    rules::plan announce{std::nullopt, planned.steps, {}};
    for (auto& step : announce.steps) step.what = rules::change::none;
    co_await carry_out(announce);
    for (auto step = planned.steps.rbegin(); step != planned.steps.rend(); ++step) {
      if (step->what == rules::change::remove_share) {
        co_await client_->remove(share_name(step->user, step->version));
        co_await client_->remove(grant_name(step->version, step->user));
      } else {
        co_await client_->remove(version_name(step->version));
      }
    }
    co_return planned.selected;
  }

  // Throws unless this user may read `version` (a share is asked for).
  asio::awaitable<void> check_read_access(const versioned_path& version) {
    const auto access = rules::check_read(user_, version);
    rules::throw_if_refused(access.refused);
    if (access.needs_share && !co_await client_->exists(share_name(user_, version))) {
      throw rules::read_denied(user_, version);
    }
  }

  asio::awaitable<std::uint64_t> read_file_to(versioned_path version, std::filesystem::path destination) {
    co_await check_read_access(version);
    const auto size = co_await client_->get_to_file(version_name(version), std::move(destination));
    if (!size) throw rules::read_denied(user_, version);
    co_return *size;
  }

  asio::awaitable<std::string> read_file(versioned_path version) {
    co_await check_read_access(version);
    auto bytes = co_await client_->get(version_name(version));
    if (!bytes) throw rules::read_denied(user_, version);
    co_return std::move(*bytes);
  }

  asio::awaitable<versions> list_files(std::string prefix, bool recursive) {
    rules::throw_if_refused(rules::list_refusal(prefix));
    auto owned = co_await list_versions("versions/" + user_ + '/', prefix, false);
    const auto shared = co_await list_versions("shares/" + user_ + '/', "", true);
    co_return rules::visible(user_, selection{std::move(prefix), recursive}, std::move(owned), shared);
  }

  asio::awaitable<std::vector<std::string>> publish_event(std::string name, std::string data,
                                                          std::vector<std::string> users) {
    auto planned = rules::decide(rules::publish_operation(user_, std::move(users), std::move(name), std::move(data)));
    co_return co_await carry_out(planned);
  }

  asio::awaitable<std::size_t> compact(s3_compact_options options) {
    if (options.settled < options_.journal_landing_limit) {
      throw std::invalid_argument(
          "s3_compact_options::settled (" + std::to_string(options.settled.count()) +
          " ms) is below s3_store_options::journal_landing_limit (" +
          std::to_string(options_.journal_landing_limit.count()) +
          " ms): records stamped that recently may still be written or taken back, and a segment must never miss "
          "one or hold one taken back");
    }
    auto now = storewatch::detail::sys::now().time_since_epoch().count();
    const auto age = options.remove_older_than.value_or(std::chrono::seconds(0));
    const auto limit = !options.remove_older_than
                           ? 0
                           : static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - std::chrono::milliseconds(age).count()));
    // The users with a journal: the folders under journals/.
    std::set<std::string> users;
    list_request request;
    request.prefix = "journals/";
    request.delimiter = "/";
    for (;;) {
      auto page = co_await client_->list(request);
      for (const auto& folder : page.common_prefixes) {
        const auto user = folder.substr(request.prefix.size(), folder.size() - request.prefix.size() - 1);
        if (storewatch::detail::user_problem(user).empty()) users.insert(user);
      }
      if (!page.truncated) break;
      request.continuation_token = std::move(page.next_continuation_token);
    }
    std::size_t removed = 0;
    for (const auto& user : users) {
      const auto folder = detail::journal_folder(user);
      std::vector<std::string> old, kept;
      bool older_records = false;
      for (auto& name : co_await list_all(folder)) {
        const auto entry = detail::parse_journal_entry(std::string_view(name).substr(folder.size()));
        if (!entry || entry->stamp >= limit) {
          kept.push_back(std::move(name));
          continue;
        }
        older_records = older_records || entry->what != detail::journal_entry::kind::floor;
        old.push_back(std::move(name));
      }
      if (older_records) {
        // The floor first: a reader that finds records missing also finds it.
        co_await client_->put(detail::floor_name(user, limit), "");
        co_await remove_all(folder, old);
        removed += static_cast<std::size_t>(std::count_if(
            old.begin(), old.end(), [](const std::string& name) { return !name.ends_with(detail::floor_suffix); }));
      }
      // The server's clock at its earliest, learnt from the listing's Date
      // headers: a compacting machine whose clock is ahead must not fold
      // records that writers may still write or take back.
      if (const auto offset = client_->observed_clock_offset()) {
        const auto server = std::chrono::duration_cast<std::chrono::milliseconds>(
            (std::chrono::system_clock::now() + *offset - client_->observed_clock_error()).time_since_epoch());
        now = std::min<std::int64_t>(now, server.count());
      }
      const auto settled = static_cast<std::uint64_t>(std::max<std::int64_t>(0, options.settled.count()));
      const auto cutoff = detail::compaction_cutoff(folder, kept, static_cast<std::uint64_t>(std::max<std::int64_t>(0, now)), settled);
      removed += co_await fold_into_segments(user, detail::plan_compaction(folder, kept, cutoff, options.segment_objects));
    }
    co_return removed;
  }

  // Carries out a compaction plan for `user`'s journal: first removes the
  // records left beside the segments that hold them, then writes each run
  // as a segment and removes its records. A segment is written before any
  // of its records is removed, and they are removed newest first, so that
  // at every step the records left in a segment's range are its oldest:
  // a reader delivers them, then the rest from the segment. Returns the
  // number of record objects removed.
  asio::awaitable<std::size_t> fold_into_segments(const std::string& user, detail::s3_compaction_plan plan) {
    const auto folder = detail::journal_folder(user);
    std::size_t removed = 0;
    for (auto& leftover : plan.leftovers) {
      const auto body = co_await client_->get(leftover.segment);
      std::string why;
      const auto members = body ? detail::decode_segment(*body, why) : std::nullopt;
      if (!members) continue;  // gone (retention) or unreadable: leave its range alone
      std::set<std::string, std::less<>> held;
      for (const auto& member : *members) held.insert(folder + std::string(member.name));
      std::vector<std::string> doomed;
      for (auto key = leftover.records.rbegin(); key != leftover.records.rend(); ++key) {
        if (held.contains(*key)) doomed.push_back(*key);
      }
      co_await remove_all(folder, doomed);
      removed += doomed.size();
    }
    for (auto& run : plan.runs) {
      const auto bodies = co_await detail::get_each(*client_, run);
      // Records gone since the listing (another compaction folded them, or
      // retention removed them): the segment ends before the first, so it
      // holds consecutive records only.
      std::vector<std::pair<std::string, std::string>> members;
      for (std::size_t i = 0; i < run.size() && bodies[i]; ++i) members.emplace_back(run[i].substr(folder.size()), *bodies[i]);
      if (members.empty()) continue;
      auto name = detail::segment_name(user, members.front().first, members.back().first);
      co_await client_->put(std::move(name), detail::encode_segment(members));
      std::vector<std::string> doomed;
      for (auto member = members.rbegin(); member != members.rend(); ++member) doomed.push_back(folder + member->first);
      co_await remove_all(folder, doomed);
      removed += doomed.size();
    }
    co_return removed;
  }

  // Removes the objects `names` with DeleteObjects requests, in their
  // order, one after another; throws when one is not removed. Requests of
  // detail::delete_batch (200) keys; one that times out on every attempt
  // (a slow server: s3rver takes keys x folder size) is sent again as
  // requests of half as many keys, down to detail::min_delete_batch, and
  // the rest follow at the smaller size. That keeps the order safe: a
  // request that timed out may have been executed, or be executing still,
  // but it only removes its own keys, which the smaller requests remove
  // again (a key already gone is not an error), and no later key is sent
  // before all of them were acknowledged. So the records left in a
  // segment's range are still its oldest.
  asio::awaitable<void> remove_all(const std::string& folder, std::vector<std::string> names) {
    std::size_t batch = detail::delete_batch;
    std::vector<delete_error> failed;
    for (std::size_t first = 0; first < names.size() && failed.empty();) {
      const auto end = std::min(names.size(), first + batch);
      std::vector<std::string> some(names.begin() + static_cast<std::ptrdiff_t>(first),
                                    names.begin() + static_cast<std::ptrdiff_t>(end));
      bool timed_out = false;
      try {
        failed = co_await client_->remove_many(std::move(some));
      } catch (const request_timed_out&) {
        batch = detail::smaller_delete_batch(batch);
        if (batch == 0) throw;
        timed_out = true;
      }
      if (!timed_out) first = end;
    }
    if (!failed.empty()) {
      throw std::system_error(make_error_code(errc::store_io_failed),
                              "S3 DeleteObjects in " + folder + ": " + std::to_string(failed.size()) +
                                  " not deleted, first " + storewatch::detail::quote(failed.front().key) + ": " +
                                  detail::show_code(failed.front().code) + ' ' +
                                  storewatch::detail::quote(failed.front().message));
    }
  }

  // Runs the coroutine member `operation` with `args` on the store's
  // executor and completes `token` with its result or the code of the
  // exception it threw, whose text goes to `last_error_` and `diag`; the
  // handler's cancellation slot reaches the request in flight or the wait
  // before a retry. Writing operations wait for the one before them.
  template <class Result, class CompletionToken, class Operation, class... Args>
  auto run(diagnostics* diag, CompletionToken&& token, bool writes, Operation operation, Args... args) {
    auto call = storewatch::detail::member_call(this, operation, std::move(args)...);
    return storewatch::detail::async_coroutine<Result>(
        executor_, {last_error_, diag},
        [this, writes, call = std::move(call)]() mutable -> asio::awaitable<Result> {
          if (!writes) co_return co_await call();
          co_await turn();
          std::exception_ptr failure;
          Result result{};
          try {
            result = co_await call();
          } catch (...) {
            failure = std::current_exception();
          }
          next_turn();
          if (failure) std::rethrow_exception(failure);
          co_return result;
        },
        std::forward<CompletionToken>(token));
  }

  // Waits until no other writing operation of this store object runs.
  asio::awaitable<void> turn() {
    if (!writing_) {
      writing_ = true;
      co_return;
    }
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          waiting_.push_back([shared]() { std::move (*shared)(); });
        },
        asio::use_awaitable);
  }

  // Lets the next waiting writing operation run.
  void next_turn() {
    if (waiting_.empty()) {
      writing_ = false;
      return;
    }
    asio::post(executor_, std::move(waiting_.front()));
    waiting_.pop_front();
  }

  executor_type executor_;
  std::string user_;
  s3_store_options options_;
  std::unique_ptr<basic_client<Executor>> client_;  // in a box: the source or store stays movable
  detail::s3_journal_writer writer_;
  std::string last_error_;
  bool writing_ = false;
  std::deque<std::function<void()>> waiting_;
  std::map<std::string, std::int64_t> recent_creates_;  // path -> stamp of this object's newest version, while not past
  std::optional<bool> conditional_writes_;               // see conditional_writes()
};

/// The S3 store on `asio::any_io_executor`.
using s3_store = basic_s3_store<>;

}  // namespace storewatch::s3
