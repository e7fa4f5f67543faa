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
#include <storewatch/journal/format.hpp>
#include <storewatch/detail/names.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/journal/reader.hpp>
#include <storewatch/journal/writer.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace storewatch {

/// Which of the owner's versions an operation touches.
struct selection {
  /// A path prefix. With `recursive`, every path that starts with it; without,
  /// the file it names, or the files directly in the folder it names.
  std::string prefix{};
  bool recursive = true;  ///< see `prefix`
  std::optional<timestamp> since{};  ///< inclusive lower bound on a version's creation time
  std::optional<timestamp> until{};  ///< inclusive upper bound

  /// True when `v` is selected (who owns it is not checked here).
  bool matches(const versioned_path& v) const {
    if (since && v.created_at() < *since) return false;
    if (until && v.created_at() > *until) return false;
    if (recursive) return v.path.starts_with(prefix);
    if (v.path == prefix) return true;
    std::string_view folder = prefix;
    if (folder.ends_with('/')) folder.remove_suffix(1);
    const auto slash = v.path.rfind('/');
    const std::string_view parent = slash == std::string::npos ? std::string_view{} : std::string_view(v.path).substr(0, slash);
    return parent == folder;
  }
};

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
/// `errc::permission_denied` or `errc::store_io_failed`; `last_error()` then
/// says which file or argument. An operation that fails changes nothing:
/// the files it made or removed and the records it appended are put back
/// (an event a listener read before the failure can still be delivered, as
/// the record was readable for that moment). The handler runs after the
/// operation, never inside the initiating call, on its associated executor
/// (default: the store's). Operations cannot be cancelled: once posted,
/// each runs to the end.
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

  /// What the last failed operation said: the file or argument at fault.
  /// Set just before that operation's handler runs (on the handler's
  /// executor), so a handler reading it finds its own operation's account,
  /// also when several operations are pending.
  const std::string& last_error() const noexcept { return last_error_; }

  /// Stores `bytes` as a new version of `path`, owned by this user; a CREATE
  /// event goes to this user. Completes with the new version's name. Two
  /// versions of one path made in the same millisecond get distinct names
  /// (the second is stamped a millisecond later).
  /// Completion signature: `void(std::error_code, versioned_path)`.
  /// Errors: `errc::invalid_path`, `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, versioned_path)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_create_file(std::string path, std::string bytes,
                         CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<versioned_path>(std::forward<CompletionToken>(token),
                               [this, path = std::move(path), bytes = std::move(bytes)] {
                                 return create_file(path, bytes);
                               });
  }

  /// Shares this user's versions that `which` selects with `users`; each
  /// named user gets a SHARE event per version, also when it was shared with
  /// them already. Naming oneself does nothing. Completes with the versions.
  /// Completion signature: `void(std::error_code, versions)`.
  /// Errors: `errc::invalid_path` (the prefix), `errc::invalid_user`,
  /// `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_share_files(selection which, std::vector<std::string> users,
                         CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<versions>(std::forward<CompletionToken>(token),
                         [this, which = std::move(which), users = std::move(users)] {
                           return share_files(which, users, true);
                         });
  }

  /// Stops sharing the selected versions with `users`; each user who had a
  /// version gets an UNSHARE event for it. Completes with the versions
  /// selected. Completion signature: `void(std::error_code, versions)`.
  /// Errors: as `async_share_files`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_unshare_files(selection which, std::vector<std::string> users,
                           CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<versions>(std::forward<CompletionToken>(token),
                         [this, which = std::move(which), users = std::move(users)] {
                           return share_files(which, users, false);
                         });
  }

  /// Deletes the selected versions; the owner and every user they were
  /// shared with get a DELETE event. Completes with the versions deleted.
  /// Completion signature: `void(std::error_code, versions)`.
  /// Errors: `errc::invalid_path` (the prefix), `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_delete_files(selection which,
                          CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<versions>(std::forward<CompletionToken>(token),
                         [this, which = std::move(which)] { return delete_files(which); });
  }

  /// The bytes of a version this user owns or that is shared with them;
  /// `errc::permission_denied` otherwise, also when it does not exist.
  /// Completion signature: `void(std::error_code, std::string)`.
  /// Errors: also `errc::invalid_path`, `errc::invalid_user` (the owner's
  /// name), `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, std::string)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_read_file(versioned_path version,
                       CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<std::string>(std::forward<CompletionToken>(token),
                            [this, version = std::move(version)] { return read_file(version); });
  }

  /// The versions this user can read (own and shared) under `prefix`, as a
  /// `selection` with `recursive` selects them; sorted by path, time, owner.
  /// Completion signature: `void(std::error_code, versions)`.
  /// Errors: `errc::invalid_path` (the prefix); folders that cannot be read
  /// are skipped.
  template <asio::completion_token_for<void(std::error_code, versions)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_list_files(std::string prefix, bool recursive,
                        CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<versions>(std::forward<CompletionToken>(token),
                         [this, prefix = std::move(prefix), recursive] { return list_files(prefix, recursive); });
  }

  /// Appends an application event `name` with `data` to the journals of
  /// `users`. Completes with the event ids, one per user.
  /// Completion signature: `void(std::error_code, std::vector<std::string>)`.
  /// Errors: `errc::invalid_event_name` (also for the store's own names),
  /// `errc::invalid_event` (data not UTF-8 or over 64 KiB),
  /// `errc::invalid_user`, `errc::store_io_failed`.
  template <asio::completion_token_for<void(std::error_code, std::vector<std::string>)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_publish_event(std::string name, std::string data, std::vector<std::string> users,
                           CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<std::vector<std::string>>(
        std::forward<CompletionToken>(token),
        [this, name = std::move(name), data = std::move(data), users = std::move(users)] {
          return publish_event(name, data, users);
        });
  }

  /// Removes journal segments older than `age` (never a writer's newest) from
  /// every user's journal. A listener whose cursor pointed into them gets a
  /// GAP event. Completes with the number of segments removed.
  /// Completion signature: `void(std::error_code, std::size_t)`. Files it
  /// cannot inspect or remove are skipped, not reported.
  template <asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_compact(std::chrono::seconds age,
                     CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return run<std::size_t>(std::forward<CompletionToken>(token), [this, age] {
      std::size_t removed = 0;
      const auto cutoff = std::filesystem::file_time_type::clock::now() - age;
      std::error_code ec;
      for (std::filesystem::directory_iterator it(root_ / "journals", ec), end; !ec && it != end; it.increment(ec)) {
        removed += detail::compact_journal(it->path(), cutoff);
      }
      return removed;
    });
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
    detail::validate_path(path);
    versioned_path version{path, user_, detail::sys::now().time_since_epoch().count()};
    const auto target_of = [&] { return own_versions() / version.to_string(); };
    const auto folder = target_of().parent_path();
    detail::make_directories(folder, errc::store_io_failed, store_what);
    const auto temporary = detail::write_temporary(folder / (std::string(detail::reserved_prefix) + writer_.name()),
                                                   bytes, errc::store_io_failed, store_what);
    // link() never replaces: a name taken in this millisecond (by us or by
    // another process) moves the version to the next one.
    for (;;) {
      if (detail::sys::link(temporary.c_str(), target_of().c_str()) == 0) break;
      if (errno != EEXIST) {
        const int error_number = errno;
        detail::sys::unlink(temporary.c_str());
        throw detail::file_error(errc::store_io_failed, store_what, target_of(), "link", error_number);
      }
      ++version.timestamp_ms;
    }
    detail::sys::unlink(temporary.c_str());
    transaction change(writer_);
    change.on_failure([target = target_of()] { detail::sys::unlink(target.c_str()); });
    detail::fsync_directory(folder, errc::store_io_failed, store_what);
    append(user_, make_event(event_name::create, version.to_string()));
    change.commit();
    return version;
  }

  /// `async_share_files` (`share` true) or `async_unshare_files` (false),
  /// blocking; throws `std::system_error`.
  versions share_files(const selection& which, const std::vector<std::string>& users, bool share) {
    detail::validate_path(which.prefix, true);
    for (const auto& u : users) detail::validate_user(u);
    const auto selected = own_selection(which);
    transaction change(writer_);
    for (const auto& version : selected) {
      for (const auto& u : users) {
        if (u == user_) continue;
        const auto marker = share_marker(u, version);
        if (share) {
          detail::make_directories(marker.parent_path(), errc::store_io_failed, store_what);
          detail::unique_fd fd(detail::sys::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
          if (fd) {
            change.on_failure([marker] { detail::sys::unlink(marker.c_str()); });
          } else if (errno != EEXIST) {  // an already shared version is announced again
            throw detail::file_error(errc::store_io_failed, store_what, marker, "create", errno);
          }
          detail::fsync_directory(marker.parent_path(), errc::store_io_failed, store_what);
          append(u, make_event(event_name::share, version.to_string()));
        } else if (detail::sys::unlink(marker.c_str()) == 0) {
          change.on_failure([marker] {
            detail::unique_fd(detail::sys::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
          });
          detail::fsync_directory(marker.parent_path(), errc::store_io_failed, store_what);
          append(u, make_event(event_name::unshare, version.to_string()));
        } else if (errno != ENOENT) {
          throw detail::file_error(errc::store_io_failed, store_what, marker, "unlink", errno);
        }
      }
    }
    change.commit();
    return selected;
  }

  /// `async_delete_files`, blocking; throws `std::system_error`.
  ///
  /// Each file (the version and its share markers) is first renamed to a
  /// reserved name, which reads and lists skip, so that a failure before the
  /// DELETE events are durable can rename it back; after that the renamed
  /// files are removed.
  versions delete_files(const selection& which) {
    detail::validate_path(which.prefix, true);
    const auto selected = own_selection(which);
    transaction change(writer_);
    std::set<std::filesystem::path> folders;  // whose renames must be made durable
    std::vector<std::filesystem::path> removed;
    const auto remove = [&](const std::filesystem::path& file) {
      auto away = file.parent_path() / (std::string(detail::reserved_prefix) + "deleted-" + file.filename().native());
      if (detail::sys::rename(file.c_str(), away.c_str()) != 0) {
        if (errno == ENOENT) return false;  // deleted meanwhile by another writer, who reports it
        throw detail::file_error(errc::store_io_failed, store_what, file, "rename", errno);
      }
      change.on_failure([file, away] { detail::sys::rename(away.c_str(), file.c_str()); });
      folders.insert(file.parent_path());
      removed.push_back(std::move(away));
      return true;
    };
    versions deleted;
    for (const auto& version : selected) {
      if (!remove(own_versions() / version.to_string())) continue;
      deleted.push_back(version);
      append(user_, make_event(event_name::delete_, version.to_string()));
      for (const auto& grantee : grantees_of(version)) {
        if (remove(share_marker(grantee, version))) append(grantee, make_event(event_name::delete_, version.to_string()));
      }
    }
    for (const auto& folder : folders) detail::fsync_directory(folder, errc::store_io_failed, store_what);
    change.commit();
    // Done: the renamed files are invisible; removing them is tidying, and
    // one left behind (by a failure here or a crash) is harmless.
    for (const auto& file : removed) detail::sys::unlink(file.c_str());
    return deleted;
  }

  /// `async_read_file`, blocking; throws `std::system_error`.
  std::string read_file(const versioned_path& version) {
    detail::validate_path(version.path);
    const auto denied = [&] {
      return std::system_error(errc::permission_denied, user_ + " cannot read " + detail::quote(version.to_string()) +
                                                            ": it does not exist or is not shared with " + user_);
    };
    if (version.user != user_) {
      detail::validate_user(version.user);
      struct stat info {};
      if (::stat(share_marker(user_, version).c_str(), &info) != 0) throw denied();
    }
    auto bytes = detail::read_whole_file(root_ / "versions" / version.user / version.to_string(),
                                         errc::store_io_failed, store_what);
    if (!bytes) throw denied();
    return std::move(*bytes);
  }

  /// `async_list_files`, blocking; throws `std::system_error`.
  versions list_files(const std::string& prefix, bool recursive) {
    detail::validate_path(prefix, true);
    const selection which{prefix, recursive};
    auto found = own_selection(which);
    std::error_code ec;
    const auto shared_root = root_ / "shares" / user_;
    for (std::filesystem::directory_iterator owners(shared_root, ec), end; !ec && owners != end; owners.increment(ec)) {
      const auto owner = owners->path().filename().native();
      for (auto& version : walk_versions(owners->path(), owner)) {
        if (which.matches(version)) found.push_back(std::move(version));
      }
    }
    std::sort(found.begin(), found.end(), [](const versioned_path& a, const versioned_path& b) {
      return std::tie(a.path, a.timestamp_ms, a.user) < std::tie(b.path, b.timestamp_ms, b.user);
    });
    return found;
  }

  /// `async_publish_event`, blocking; throws `std::system_error`.
  std::vector<std::string> publish_event(const std::string& name, const std::string& data,
                                         const std::vector<std::string>& users) {
    detail::validate_application_event(name, data);
    for (const auto& u : users) detail::validate_user(u);
    std::vector<std::string> ids;
    transaction change(writer_);
    for (const auto& u : users) ids.push_back(append(u, make_event(name, data)));
    change.commit();
    return ids;
  }

 private:
  static constexpr std::string_view store_what = "store";

  template <class Result, class CompletionToken, class Operation>
  auto run(CompletionToken&& token, Operation operation) {
    return detail::async_blocking_call<Result>(executor_, blocking_, last_error_, std::move(operation),
                                               std::forward<CompletionToken>(token));
  }

  // An operation's changes: its journal records, and the steps that undo its
  // file changes. Unless committed (records made durable), they are undone
  // when it goes out of scope, so that a failed operation leaves the files
  // and the journals as they were.
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
    /// Makes the records durable; throws (and undoes everything) if it
    /// cannot, saying also what could not be undone.
    void commit() {
      try {
        writer_.sync();
      } catch (const std::system_error& error) {
        const auto left = undo();
        if (left.empty()) throw;
        throw std::system_error(error.code(), error.what() + left);
      }
      done_ = true;
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
    bool done_ = false;
  };

  std::filesystem::path own_versions() const { return root_ / "versions" / user_; }

  std::filesystem::path share_marker(const std::string& grantee, const versioned_path& version) const {
    return root_ / "shares" / grantee / version.user / version.to_string();
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
    versions found;
    for (auto& version : walk_versions(own_versions(), user_)) {
      if (which.matches(version)) found.push_back(std::move(version));
    }
    std::sort(found.begin(), found.end(), [](const versioned_path& a, const versioned_path& b) {
      return std::tie(a.path, a.timestamp_ms) < std::tie(b.path, b.timestamp_ms);
    });
    return found;
  }

  std::vector<std::string> grantees_of(const versioned_path& version) const {
    std::vector<std::string> users;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(root_ / "shares", ec), end; !ec && it != end; it.increment(ec)) {
      const auto grantee = it->path().filename().native();
      struct stat info {};
      if (::stat(share_marker(grantee, version).c_str(), &info) == 0) users.push_back(grantee);
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

  // Appends `e` to `user`'s journal with a fresh id; returns the id.
  std::string append(const std::string& user, event e) {
    e.id = writer_.name() + "-" + std::to_string(writer_.next_sequence());
    writer_.append(user, detail::encode_record(e));
    return e.id;
  }

  executor_type executor_;
  std::filesystem::path root_;
  std::string user_;
  detail::journal_writer writer_;
  asio::any_io_executor blocking_executor_;  // as given: the sources' polls run there
  asio::any_io_executor blocking_;           // a strand on it: operations one at a time
  std::string last_error_;
};

/// The local store on `asio::any_io_executor`.
using local_store = basic_local_store<>;

}  // namespace storewatch
