/// \file
/// `local_store`: the embedded versioned file store with per-user event journals.
//
//   <root>/versions/<owner>/<path>✹<owner>_<ms>            the bytes of each version
//   <root>/shares/<user>/<owner>/<path>✹<owner>_<ms>       empty: shared with <user>
//   <root>/journals/<user>/...                              see journal/layout.hpp
//
// Every step is a create, link, rename or unlink of its own file, so several
// processes (also on several machines over a shared mount) may use one store
// at once, and no lock can be left held by a process that dies.
#pragma once

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/files.hpp>
#include <storewatch/detail/intent_log.hpp>
#include <storewatch/journal/format.hpp>
#include <storewatch/detail/names.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/diagnostics.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/journal/reader.hpp>
#include <storewatch/journal/writer.hpp>
#include <storewatch/store/rules.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <unistd.h>

namespace storewatch {

/// Options of a local store.
struct local_store_options {
  /// Journal segments are closed and a new one started past this size.
  std::uint64_t segment_bytes = 64ull << 20;
  /// Where the blocking part of each operation (file I/O, fsync) runs: an
  /// executor you own, say an `asio::thread_pool`'s, so that the store's
  /// executor (your event loop) goes on serving other work meanwhile. The
  /// store runs its operations there one at a time, in the order they were
  /// started, and completes each through its own executor as before. Empty
  /// (the default): the store's executor, so the library starts no thread.
  /// The sources from `events()` poll there too.
  asio::any_io_executor blocking_executor{};
};

/// A store rooted at a directory, opened as one user.
///
/// Every operation is an initiating function with completion signature
/// `void(std::error_code, Result)`. It does blocking file I/O on the store's
/// executor, or on `local_store_options::blocking_executor` when one is
/// given, and completes after the files and the events it wrote are durable
/// (fsync). Errors are `errc::invalid_path`, `errc::invalid_user`,
/// `errc::invalid_event_name`, `errc::invalid_event`,
/// `errc::permission_denied` or `errc::store_io_failed`. Which file or
/// argument, and which step: each operation has an overload taking a
/// `diagnostics&` before the token, which receives that operation's own
/// account; `last_error()` holds the last one to complete (use diagnostics
/// with concurrent operations). An operation that fails changes nothing:
/// the files it made or removed and the records it appended are put back
/// (an event a listener read before the failure can still be delivered, as
/// the record was readable for that moment). A process killed in the
/// middle of an operation leaves what it had under way written down
/// (detail/intent_log.hpp): the next store object, of any user, to write to
/// the store (at its first operation that writes, then at most once a
/// second, and at each `async_compact`) finishes it when any of its events
/// reached a journal, appending the others with their ids, and undoes it
/// otherwise, so that files and journals agree and the operation happened
/// wholly or not at all. That record is not fsynced: it survives the death
/// of the process, not a crash of the machine between a change and its
/// events being durable. The handler runs after the operation, never inside
/// the initiating call, on its associated executor (default: the store's).
/// Operations cannot be cancelled: once posted, each runs to the end.
/// Not thread-safe: use one store object from one strand; with a blocking
/// executor, do not call the blocking member functions while an operation
/// is pending. Several store objects, also in several processes, may share
/// one root. The store must outlive its pending operations.
template <class Executor = asio::any_io_executor>
class basic_local_store {
 public:
  /// The executor type; operations and completions without an associated
  /// executor run on it.
  using executor_type = Executor;
  /// A list of versions, sorted by path, then creation time.
  using versions = std::vector<versioned_path>;
  /// The completion token of a call that names none.
  using default_token = asio::default_completion_token_t<executor_type>;

  /// The store type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_local_store<OtherExecutor>;  ///< the store on `OtherExecutor`
  };

  /// Opens the store at `root` as `user`; its folders are made when first
  /// needed. Throws `std::system_error` (`errc::invalid_user`) for an
  /// invalid user name.
  basic_local_store(const executor_type& executor, std::filesystem::path root, std::string user,
                    local_store_options options = {})
      : executor_(executor),
        root_(std::move(root)),
        user_(std::move(user)),
        writer_(root_ / "journals", detail::make_writer_name(), options.segment_bytes),
        intents_(root_, writer_.name()),
        blocking_executor_(options.blocking_executor),
        blocking_(options.blocking_executor ? asio::any_io_executor(asio::make_strand(options.blocking_executor))
                                            : asio::any_io_executor()) {
    detail::validate_user(user_);
  }

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }
  /// The user this store object acts as.
  const std::string& user() const noexcept { return user_; }
  /// The store's root folder.
  const std::filesystem::path& root() const noexcept { return root_; }

  /// What the last failed operation to complete said: the file or argument
  /// at fault. Set just before that operation's handler runs, on the
  /// handler's executor. With operations pending at once, pass each its own
  /// `diagnostics` instead: another failure may replace this text before
  /// you read it.
  const std::string& last_error() const noexcept { return last_error_; }

  /// Stores `bytes` as a new version of `path`, owned by this user; a CREATE
  /// event goes to this user. Completes with the new version's name. Two
  /// versions of one path made in the same millisecond get distinct names
  /// (the second is stamped a millisecond later).
  /// Completion signature: `void(std::error_code, versioned_path)`.
  /// Errors: `errc::invalid_path`, `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file(std::string path, std::string bytes, CompletionToken&& token = default_token{}) {
    return run<versioned_path>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::create_file,
                               std::move(path), std::move(bytes));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file(std::string path, std::string bytes, diagnostics& diag,
                         CompletionToken&& token = default_token{}) {
    return run<versioned_path>(&diag, std::forward<CompletionToken>(token), &basic_local_store::create_file,
                               std::move(path), std::move(bytes));
  }

  /// As `async_create_file`, with the bytes of the file `source`, copied a
  /// block at a time (memory stays bounded whatever its size). The version
  /// and its CREATE event are those of `async_create_file`. The file must
  /// not change until this completes.
  /// Errors: also `errc::store_io_failed` when the file cannot be read.
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file_from(std::string path, std::filesystem::path source,
                              CompletionToken&& token = default_token{}) {
    return run<versioned_path>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::create_file_from,
                               std::move(path), std::move(source));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken = default_token>
  auto async_create_file_from(std::string path, std::filesystem::path source, diagnostics& diag,
                              CompletionToken&& token = default_token{}) {
    return run<versioned_path>(&diag, std::forward<CompletionToken>(token), &basic_local_store::create_file_from,
                               std::move(path), std::move(source));
  }

  /// Shares this user's versions that `which` selects with `users`; each
  /// named user gets a SHARE event per version, also when it was shared with
  /// them already. Naming oneself does nothing. Completes with the versions.
  /// Completion signature: `void(std::error_code, versions)`.
  /// Errors: `errc::invalid_path` (the prefix), `errc::invalid_user`,
  /// `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_share_files(selection which, std::vector<std::string> users, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::share_files,
                         std::move(which), std::move(users), true);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_share_files(selection which, std::vector<std::string> users, diagnostics& diag,
                         CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), &basic_local_store::share_files, std::move(which),
                         std::move(users), true);
  }

  /// Stops sharing the selected versions with `users`; each user who had a
  /// version gets an UNSHARE event for it. Completes with the versions
  /// selected. Completion signature: `void(std::error_code, versions)`.
  /// Errors: as `async_share_files`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_unshare_files(selection which, std::vector<std::string> users, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::share_files,
                         std::move(which), std::move(users), false);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_unshare_files(selection which, std::vector<std::string> users, diagnostics& diag,
                           CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), &basic_local_store::share_files, std::move(which),
                         std::move(users), false);
  }

  /// Deletes the selected versions; the owner and every user they were
  /// shared with get a DELETE event. Completes with the versions deleted.
  /// Completion signature: `void(std::error_code, versions)`.
  /// Errors: `errc::invalid_path` (the prefix), `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_delete_files(selection which, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::delete_files,
                         std::move(which));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_delete_files(selection which, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), &basic_local_store::delete_files,
                         std::move(which));
  }

  /// The bytes of a version this user owns or that is shared with them;
  /// `errc::permission_denied` otherwise, also when it does not exist.
  /// Completion signature: `void(std::error_code, std::string)`.
  /// Errors: also `errc::invalid_path`, `errc::invalid_user` (the owner's
  /// name), `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, std::string)> CompletionToken = default_token>
  auto async_read_file(versioned_path version, CompletionToken&& token = default_token{}) {
    return run<std::string>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::read_file,
                            std::move(version));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::string)> CompletionToken = default_token>
  auto async_read_file(versioned_path version, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return run<std::string>(&diag, std::forward<CompletionToken>(token), &basic_local_store::read_file,
                            std::move(version));
  }

  /// As `async_read_file`, but the bytes go to the file `destination`,
  /// copied a block at a time (memory stays bounded whatever the size). They
  /// are written next to it and renamed over it at the end, so a failure
  /// leaves `destination` as it was. Completes with the number of bytes.
  /// Completion signature: `void(std::error_code, std::uint64_t)`.
  /// Errors: as `async_read_file`.
  template <asio::completion_token_for<void(std::error_code, std::uint64_t)> CompletionToken = default_token>
  auto async_read_file_to(versioned_path version, std::filesystem::path destination,
                          CompletionToken&& token = default_token{}) {
    return run<std::uint64_t>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::read_file_to,
                              std::move(version), std::move(destination));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::uint64_t)> CompletionToken = default_token>
  auto async_read_file_to(versioned_path version, std::filesystem::path destination, diagnostics& diag,
                          CompletionToken&& token = default_token{}) {
    return run<std::uint64_t>(&diag, std::forward<CompletionToken>(token), &basic_local_store::read_file_to,
                              std::move(version), std::move(destination));
  }

  /// The versions this user can read (own and shared) under `prefix`, as a
  /// `selection` with `recursive` selects them; sorted by path, time, owner.
  /// Completion signature: `void(std::error_code, versions)`.
  /// Errors: `errc::invalid_path` (the prefix); folders that cannot be read
  /// are skipped.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_list_files(std::string prefix, bool recursive, CompletionToken&& token = default_token{}) {
    return run<versions>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::list_files,
                         std::move(prefix), recursive);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken = default_token>
  auto async_list_files(std::string prefix, bool recursive, diagnostics& diag,
                        CompletionToken&& token = default_token{}) {
    return run<versions>(&diag, std::forward<CompletionToken>(token), &basic_local_store::list_files, std::move(prefix),
                         recursive);
  }

  /// Appends an application event `name` with `data` to the journals of
  /// `users`. Completes with the event ids, one per user.
  /// Completion signature: `void(std::error_code, std::vector<std::string>)`.
  /// Errors: `errc::invalid_event_name` (also for the store's own names),
  /// `errc::invalid_event` (data not UTF-8 or over 64 KiB),
  /// `errc::invalid_user`, `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, std::vector<std::string>)> CompletionToken = default_token>
  auto async_publish_event(std::string name, std::string data, std::vector<std::string> users,
                           CompletionToken&& token = default_token{}) {
    return run<std::vector<std::string>>(nullptr, std::forward<CompletionToken>(token),
                                         &basic_local_store::publish_event, std::move(name), std::move(data),
                                         std::move(users));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::vector<std::string>)> CompletionToken = default_token>
  auto async_publish_event(std::string name, std::string data, std::vector<std::string> users, diagnostics& diag,
                           CompletionToken&& token = default_token{}) {
    return run<std::vector<std::string>>(&diag, std::forward<CompletionToken>(token), &basic_local_store::publish_event,
                                         std::move(name), std::move(data), std::move(users));
  }

  /// Removes journal segments older than `age` (never a writer's newest) from
  /// every user's journal. A listener whose cursor pointed into them gets a
  /// GAP event. Completes with the number of segments removed.
  /// Completion signature: `void(std::error_code, std::size_t)`. Files it
  /// cannot inspect or remove are skipped, not reported.
  template <asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken = default_token>
  auto async_compact(std::chrono::seconds age, CompletionToken&& token = default_token{}) {
    return run<std::size_t>(nullptr, std::forward<CompletionToken>(token), &basic_local_store::compact, age);
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken = default_token>
  auto async_compact(std::chrono::seconds age, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return run<std::size_t>(&diag, std::forward<CompletionToken>(token), &basic_local_store::compact, age);
  }

  /// This user's journal, as a source for a poller or listener: a new
  /// source object on the store's executor. Unless `options` has its own
  /// `record_check`, records no store writes (a file event with a bad path,
  /// or not from the version's owner, a GAP, a bad event name or actor) are
  /// reported as corrupt and not delivered.
  basic_journal_source<Executor> events(journal_source_options options = {}) const {
    if (!options.record_check) {
      options.record_check = [user = user_](const event& e) { return detail::store_record_problem(user, e); };
    }
    if (!options.blocking_executor) options.blocking_executor = blocking_executor_;
    return basic_journal_source<Executor>(executor_, root_ / "journals" / user_, std::move(options));
  }

  // The blocking operations behind the async ones; they throw std::system_error.

  /// `async_create_file`, blocking the calling thread; throws
  /// `std::system_error`.
  versioned_path create_file(const std::string& path, std::string_view bytes) {
    auto planned = rules::decide(rules::create_operation(user_, path, detail::sys::now().time_since_epoch().count()));
    return carry_out(planned, bytes).front().step.version;
  }

  /// `async_create_file_from`, blocking; throws `std::system_error`.
  versioned_path create_file_from(const std::string& path, const std::filesystem::path& source) {
    auto planned = rules::decide(rules::create_operation(user_, path, detail::sys::now().time_since_epoch().count()));
    return carry_out(planned, {}, &source).front().step.version;
  }

  /// `async_share_files` (`share` true) or `async_unshare_files` (false),
  /// blocking; throws `std::system_error`.
  versions share_files(const selection& which, const std::vector<std::string>& users, bool share) {
    const auto op = rules::selection_operation(
        share ? rules::operation_kind::share : rules::operation_kind::unshare, user_, which, users);
    rules::throw_if_refused(rules::refusal(op));
    rules::store_state state{own_selection(which), {}};
    // A share is planned as if nobody held one yet: each marker is then made
    // with O_EXCL at the last moment, an existing one accepted, so a share
    // that another writer removes meanwhile is made again, not announced
    // without its marker. An unshare needs to know who holds one.
    if (!share) {
      for (const auto& version : state.owned) {
        for (const auto& u : users) {
          if (holds(u, version)) state.grantees[version.to_string()].insert(u);
        }
      }
    }
    auto planned = rules::decide(op, state);
    carry_out(planned);
    return planned.selected;
  }

  /// `async_delete_files`, blocking; throws `std::system_error`.
  ///
  /// Each file (the version and its share markers) is first renamed to a
  /// reserved name, which reads and lists skip, so that a failure before the
  /// DELETE events are durable can rename it back; after that the renamed
  /// files are removed.
  versions delete_files(const selection& which) {
    const auto op = rules::selection_operation(rules::operation_kind::delete_, user_, which);
    rules::throw_if_refused(rules::refusal(op));
    rules::store_state state{own_selection(which), {}};
    for (const auto& version : state.owned) {
      for (auto& grantee : grantees_of(version)) state.grantees[version.to_string()].insert(std::move(grantee));
    }
    auto planned = rules::decide(op, state);
    versions deleted;
    for (const auto& done : carry_out(planned)) {
      if (done.step.what == rules::change::remove_version) deleted.push_back(done.step.version);
    }
    return deleted;
  }

  /// `async_read_file_to`, blocking; throws `std::system_error`.
  std::uint64_t read_file_to(const versioned_path& version, const std::filesystem::path& destination) {
    check_read_access(version);
    auto partial = destination;
    partial += ".storewatch-part";
    const auto size = copy_file(version_file(version), partial, false);
    if (!size) throw rules::read_denied(user_, version);
    if (detail::sys::rename(partial.c_str(), destination.c_str()) != 0) {
      const int error_number = errno;
      detail::sys::unlink(partial.c_str());
      throw detail::file_error(errc::store_io_failed, store_what, destination, "rename", error_number);
    }
    return *size;
  }

  /// `async_read_file`, blocking; throws `std::system_error`.
  std::string read_file(const versioned_path& version) {
    check_read_access(version);
    auto bytes = detail::read_whole_file(version_file(version), errc::store_io_failed, store_what);
    if (!bytes) throw rules::read_denied(user_, version);
    return std::move(*bytes);
  }

  /// `async_list_files`, blocking; throws `std::system_error`.
  versions list_files(const std::string& prefix, bool recursive) {
    rules::throw_if_refused(rules::list_refusal(prefix));
    versions shared;
    std::error_code ec;
    const auto shared_root = root_ / "shares" / user_;
    for (std::filesystem::directory_iterator owners(shared_root, ec), end; !ec && owners != end; owners.increment(ec)) {
      for (auto& version : walk_versions(owners->path(), owners->path().filename().native())) {
        shared.push_back(std::move(version));
      }
    }
    return rules::visible(user_, selection{prefix, recursive}, walk_versions(own_versions(), user_), shared);
  }

  /// `async_compact`, blocking.
  std::size_t compact(std::chrono::seconds age) {
    settle_dead_writers();
    std::size_t removed = 0;
    const auto cutoff = std::filesystem::file_time_type::clock::now() - age;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(root_ / "journals", ec), end; !ec && it != end; it.increment(ec)) {
      removed += detail::compact_journal(it->path(), cutoff);
    }
    return removed;
  }

  /// `async_publish_event`, blocking; throws `std::system_error`.
  std::vector<std::string> publish_event(const std::string& name, const std::string& data,
                                         const std::vector<std::string>& users) {
    auto planned = rules::decide(rules::publish_operation(user_, users, name, data));
    std::vector<std::string> ids;
    for (auto& done : carry_out(planned)) ids.push_back(std::move(done.id));
    return ids;
  }

 private:
  static constexpr std::string_view store_what = "store";

  // Runs the blocking member `operation` with `args` (see
  // detail::async_blocking_call); a failure's account also goes to `diag`.
  template <class Result, class CompletionToken, class Operation, class... Args>
  auto run(diagnostics* diag, CompletionToken&& token, Operation operation, Args... args) {
    auto call = [this, operation, arguments = std::make_tuple(std::move(args)...)] {
      return std::apply([this, operation](const auto&... a) { return (this->*operation)(a...); }, arguments);
    };
    return detail::async_blocking_call<Result>(executor_, blocking_, {last_error_, diag}, std::move(call),
                                               std::forward<CompletionToken>(token));
  }

  // An operation's changes: its journal records, the steps that undo its
  // file changes, and the folders whose entries must be made durable.
  // Unless committed (records made durable), they are undone when it goes
  // out of scope, so that a failed operation leaves the files and the
  // journals as they were.
  class transaction {
   public:
    explicit transaction(detail::journal_writer& writer) : writer_(writer) {}
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction() {
      if (!done_) undo();
    }

    /// `step` (which must not throw) undoes a change made so far.
    void on_failure(std::function<void()> step) { undo_.push_back(std::move(step)); }
    /// `step` (which must not throw) tidies up once the records are durable.
    void after_commit(std::function<void()> step) { tidy_.push_back(std::move(step)); }
    /// `folder` had an entry made or removed; `make_durable` syncs it.
    void touched(std::filesystem::path folder) { folders_.insert(std::move(folder)); }
    /// Makes the changes to the touched folders durable (before any record
    /// that announces them is written).
    void make_durable() {
      for (const auto& folder : folders_) detail::fsync_directory(folder, errc::store_io_failed, store_what);
    }
    /// Makes the records durable; throws (and undoes everything) if it
    /// cannot, saying also what could not be undone. Then tidies up.
    void commit() {
      try {
        writer_.sync();
      } catch (const std::system_error& error) {
        const auto left = undo();
        if (left.empty()) throw;
        throw std::system_error(error.code(), error.what() + left);
      }
      done_ = true;
      for (const auto& step : tidy_) step();
    }

   private:
    std::string undo() noexcept {
      done_ = true;
      auto left = writer_.take_back();
      for (auto step = undo_.rbegin(); step != undo_.rend(); ++step) (*step)();
      return left;
    }

    detail::journal_writer& writer_;
    std::vector<std::function<void()>> undo_;
    std::vector<std::function<void()>> tidy_;
    std::set<std::filesystem::path> folders_;
    bool done_ = false;
  };

  // A step carried out, and the id of the event that announced it.
  struct done_step {
    rules::step step;
    std::string id;
  };

  // Carries out `planned` (throwing its refusal): makes every change, makes
  // the changes durable, then appends the events of the steps made and makes
  // them durable; undoes everything if any of that fails. A removal found
  // made already was made by another writer, who announces it; a version
  // found deleted so takes the removal of its shares with it.
  // (`source`, when given, holds a new version's bytes instead of `bytes`.)
  std::vector<done_step> carry_out(rules::plan& planned, std::string_view bytes = {},
                                   const std::filesystem::path* source = nullptr) {
    rules::throw_if_refused(planned.refused);
    if (!last_settled_ || std::chrono::steady_clock::now() - *last_settled_ >= std::chrono::seconds(1)) {
      settle_dead_writers();
    }
    // The intent log is emptied last, after `change` is committed or undone.
    intents_.begin();
    struct end_of_operation {
      detail::intent_log& log;
      ~end_of_operation() { log.end(); }
    } ending{intents_};
    transaction change(writer_);
    std::vector<done_step> done;
    const versioned_path* gone = nullptr;
    for (auto& step : planned.steps) {
      if (gone && step.version == *gone) continue;
      if (apply(change, step, bytes, source)) {
        done.push_back({step, {}});
      } else if (step.what == rules::change::remove_version) {
        gone = &step.version;
      }
    }
    change.make_durable();
    announce(done);
    change.commit();
    return done;
  }

  // Finishes or undoes the operations that dead store objects left under
  // way (detail/intent_log.hpp).
  void settle_dead_writers() {
    detail::recover_intents(root_, writer_.name(), writer_);
    last_settled_ = std::chrono::steady_clock::now();
  }

  // Appends the events of the steps `done` (setting their ids), after
  // writing them and where they go into the intent log.
  void announce(std::vector<done_step>& done) {
    if (done.empty()) return;
    std::map<std::string, std::string> lines;  // by user, in order
    std::vector<std::string> records;
    for (auto& made : done) {
      auto e = make_event(made.step.event_name, made.step.data);
      e.id = made.id = writer_.name() + "-" + std::to_string(writer_.next_sequence());
      records.push_back(detail::encode_record(e));
      lines[made.step.user] += records.back();
    }
    auto where = nlohmann::json::array();
    for (const auto& [user, text] : lines) {
      const auto [file, at] = writer_.position(user);
      where.push_back({{"user", user}, {"file", intents_.relative(file)}, {"at", at}, {"lines", text}});
    }
    intents_.note({{"kind", "announce"}, {"records", std::move(where)}});
    for (std::size_t i = 0; i < done.size(); ++i) writer_.append(done[i].step.user, records[i]);
  }

  // Makes the change `step` names (`bytes`: a new version's), to be undone
  // unless `change` commits. False when a removal finds it made already.
  bool apply(transaction& change, rules::step& step, std::string_view bytes, const std::filesystem::path* source) {
    switch (step.what) {
      case rules::change::none:
        return true;
      case rules::change::add_version:
        add_version(change, step, bytes, source);
        return true;
      case rules::change::add_share:
        add_share(change, share_marker(step.user, step.version));
        return true;
      case rules::change::remove_version:
        return remove(change, version_file(step.version));
      case rules::change::remove_share:
        return remove(change, share_marker(step.user, step.version));
    }
    return true;
  }

  void add_version(transaction& change, rules::step& step, std::string_view bytes,
                   const std::filesystem::path* source) {
    const auto folder = version_file(step.version).parent_path();
    detail::make_directories(folder, errc::store_io_failed, store_what);
    const auto name = folder / (std::string(detail::reserved_prefix) + writer_.name());
    auto temporary = name;
    temporary += ".tmp";
    intents_.note({{"kind", "temp"}, {"path", intents_.relative(temporary)}});
    change.on_failure([temporary] { detail::sys::unlink(temporary.c_str()); });
    if (source) {
      if (!copy_file(*source, temporary, true, "input file")) {
        throw detail::file_error(errc::store_io_failed, "input file", *source, "open", ENOENT);
      }
    } else {
      detail::write_temporary(name, bytes, errc::store_io_failed, store_what);
    }
    // link() never replaces: a name taken in this millisecond (by us or by
    // another process) moves the version to the next one.
    for (;;) {
      const auto target = version_file(step.version);
      intents_.note({{"kind", "version"}, {"path", intents_.relative(target)}, {"temp", intents_.relative(temporary)}});
      if (detail::sys::link(temporary.c_str(), target.c_str()) == 0) break;
      if (errno != EEXIST) throw detail::file_error(errc::store_io_failed, store_what, target, "link", errno);
      rules::next_millisecond(step);
    }
    const auto target = version_file(step.version);
    change.on_failure([target] { detail::sys::unlink(target.c_str()); });
    change.touched(folder);
    intents_.note({{"kind", "linked"}, {"path", intents_.relative(target)}});
    detail::sys::unlink(temporary.c_str());
  }

  // A marker is a hard link to this operation's own file (intent_log::
  // share_link), so that recovering from a crash removes only the markers
  // this operation made.
  void add_share(transaction& change, const std::filesystem::path& marker) {
    detail::make_directories(marker.parent_path(), errc::store_io_failed, store_what);
    const auto& original = intents_.share_link();
    intents_.note({{"kind", "marker"}, {"path", intents_.relative(marker)}, {"temp", intents_.relative(original)}});
    const auto make = [&] { return detail::sys::link(original.c_str(), marker.c_str()) == 0 ? 0 : errno; };
    int error = make();
    // A marker there may be a dead writer's, which settling its log removes
    // (after this operation's SHARE, had that been left for later).
    if (error == EEXIST && detail::recover_intents(root_, writer_.name(), writer_) > 0) error = make();
    if (error == 0) {
      change.on_failure([marker] { detail::sys::unlink(marker.c_str()); });
    } else if (error != EEXIST) {  // EEXIST: shared meanwhile by another writer, as planned
      throw detail::file_error(errc::store_io_failed, store_what, marker, "link", error);
    }
    change.touched(marker.parent_path());
  }

  // Renames `file` (a version or a share marker) to a reserved name, which
  // reads and lists skip, so that a failure before the events are durable
  // can rename it back; once they are, it is removed. False when `file` is
  // gone already.
  bool remove(transaction& change, const std::filesystem::path& file) {
    // This writer's own name for it, so that recovering from a crash puts
    // back only what this operation removed.
    auto away = file.parent_path() / (std::string(detail::reserved_prefix) + "deleted-" + writer_.name() + "-" +
                                      std::to_string(++removals_));
    intents_.note({{"kind", "away"}, {"path", intents_.relative(away)}, {"from", intents_.relative(file)}});
    if (detail::sys::rename(file.c_str(), away.c_str()) != 0) {
      if (errno == ENOENT) return false;
      throw detail::file_error(errc::store_io_failed, store_what, file, "rename", errno);
    }
    change.on_failure([file, away] { detail::sys::rename(away.c_str(), file.c_str()); });
    change.touched(file.parent_path());
    // Removing the renamed file is tidying: one left behind (by a failure
    // there or a crash) is harmless.
    change.after_commit([away] { detail::sys::unlink(away.c_str()); });
    return true;
  }

  // Throws unless this user may read `version`.
  void check_read_access(const versioned_path& version) const {
    const auto access = rules::check_read(user_, version);
    rules::throw_if_refused(access.refused);
    if (access.needs_share && !holds(user_, version)) throw rules::read_denied(user_, version);
  }

  // Copies the file `from` to a new file `to` (replaced if there) a block at
  // a time, with an fsync if `durable`; returns the bytes copied, or
  // std::nullopt when `from` does not exist. On failure `to` is removed.
  // (`from_what` names `from` in messages.)
  static std::optional<std::uint64_t> copy_file(const std::filesystem::path& from, const std::filesystem::path& to,
                                                bool durable, std::string_view from_what = store_what) {
    detail::unique_fd in(detail::sys::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) {
      if (errno == ENOENT) return std::nullopt;
      throw detail::file_error(errc::store_io_failed, from_what, from, "open", errno);
    }
    detail::unique_fd out(detail::sys::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out) throw detail::file_error(errc::store_io_failed, store_what, to, "open", errno);
    const auto fail = [&](const std::filesystem::path& file, std::string_view what, const char* action) {
      const int error_number = errno;
      out.reset();
      detail::sys::unlink(to.c_str());
      return detail::file_error(errc::store_io_failed, what, file, action, error_number);
    };
    std::uint64_t size = 0;
    const auto block = std::make_unique<char[]>(1 << 16);
    for (;;) {
      const auto got = detail::sys::read(in.get(), block.get(), 1 << 16, from.c_str());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw fail(from, from_what, "read");
      if (got == 0) break;
      if (!detail::write_all(out.get(), std::string_view(block.get(), static_cast<std::size_t>(got)), to)) {
        throw fail(to, store_what, "write");
      }
      size += static_cast<std::uint64_t>(got);
    }
    if (durable && detail::sys::fsync(out.get(), to.c_str()) != 0) throw fail(to, store_what, "fsync");
    if (::close(out.release()) != 0) throw fail(to, store_what, "close");
    return size;
  }

  std::filesystem::path own_versions() const { return root_ / "versions" / user_; }

  std::filesystem::path version_file(const versioned_path& version) const {
    return root_ / "versions" / version.user / version.to_string();
  }

  std::filesystem::path share_marker(const std::string& grantee, const versioned_path& version) const {
    return root_ / "shares" / grantee / version.user / version.to_string();
  }

  bool holds(const std::string& grantee, const versioned_path& version) const {
    struct stat info {};
    return ::stat(share_marker(grantee, version).c_str(), &info) == 0;
  }

  // Every version stored under `folder` (a versions/<owner> or
  // shares/<user>/<owner> tree), skipping temporary files.
  static versions walk_versions(const std::filesystem::path& folder, const std::string& owner) {
    versions found;
    std::error_code ec;
    for (std::filesystem::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      const auto name = it->path().filename().native();
      if (name.starts_with(detail::reserved_prefix)) continue;
      auto version = versioned_path::try_parse(it->path().lexically_relative(folder).generic_string());
      if (version && version->user == owner) found.push_back(std::move(*version));
    }
    return found;
  }

  versions own_selection(const selection& which) const {
    return rules::select(which, user_, walk_versions(own_versions(), user_));
  }

  std::vector<std::string> grantees_of(const versioned_path& version) const {
    std::vector<std::string> users;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(root_ / "shares", ec), end; !ec && it != end; it.increment(ec)) {
      auto grantee = it->path().filename().native();
      if (holds(grantee, version)) users.push_back(std::move(grantee));
    }
    return users;
  }

  event make_event(std::string_view name, std::string data) {
    event e;
    e.name = name;
    e.data = std::move(data);
    e.actor = user_;
    e.occurred_at = detail::sys::now();
    return e;
  }

  executor_type executor_;
  std::filesystem::path root_;
  std::string user_;
  detail::journal_writer writer_;
  detail::intent_log intents_;
  // when this store object last settled the operations of dead writers
  std::optional<std::chrono::steady_clock::time_point> last_settled_;
  std::uint64_t removals_ = 0;  // numbers the renamed copies of removed files
  asio::any_io_executor blocking_executor_;  // as given: the sources' polls run there
  asio::any_io_executor blocking_;           // a strand on it: operations one at a time
  std::string last_error_;
};

/// The local store on `asio::any_io_executor`.
using local_store = basic_local_store<>;

}  // namespace storewatch
