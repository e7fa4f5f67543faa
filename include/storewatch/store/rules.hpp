/// \file
/// The store's rules, written once for every kind of store: what a
/// `selection` matches, which files an operation changes, who gets which
/// event, and who may read what (DESIGN.md, "Store semantics").
///
/// Everything here is a pure decision on plain values: no I/O, no executor,
/// no files. A store (`local_store`, `s3::s3_store`) finds what an operation
/// needs to know (the owner's versions, who holds a share of them), asks
/// `rules::decide` for the plan, and carries the plan out with its own I/O.
#pragma once

#include <storewatch/detail/names.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

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

/// The store's decisions as pure functions, for the stores that carry them
/// out and for tests. An operation goes in, with what the store found; a
/// `plan` comes out: the changes to make and the events to append, in
/// order, or the error to refuse the operation with.
namespace rules {

/// A list of versions.
using versions = std::vector<versioned_path>;

/// The operations that change a store.
enum class operation_kind {
  create,   ///< a new version of `path`
  share,    ///< share the selected versions with `users`
  unshare,  ///< stop sharing the selected versions with `users`
  delete_,  ///< delete the selected versions
  publish,  ///< an application event to `users`
};

/// An operation, as plain values; each kind reads the fields named for it.
struct operation {
  operation_kind kind = operation_kind::create;  ///< what it does
  std::string actor{};               ///< the user the store acts as: the owner of what it creates or selects
  std::string path{};                ///< create: the new version's path
  std::int64_t now_ms = 0;           ///< create: the time to stamp the version with (ms since the epoch)
  selection which{};                 ///< share, unshare, delete: which of the actor's versions
  std::vector<std::string> users{};  ///< share, unshare, publish: the users named
  std::string event_name{};          ///< publish: the event's name
  std::string data{};                ///< publish: the event's data
};

/// A create of `path` by `actor`, stamped `now_ms`. (The factories build
/// an operation member by member: g++ 12 at -O3 warns, falsely, that a
/// designated initializer leaving `which` to its default reads it
/// uninitialized.)
inline operation create_operation(std::string actor, std::string path, std::int64_t now_ms) {
  operation op;
  op.kind = operation_kind::create;
  op.actor = std::move(actor);
  op.path = std::move(path);
  op.now_ms = now_ms;
  return op;
}

/// A share, unshare or delete (`kind`) by `actor` of the versions `which`
/// selects, naming `users` (share and unshare).
inline operation selection_operation(operation_kind kind, std::string actor, selection which,
                                     std::vector<std::string> users = {}) {
  operation op;
  op.kind = kind;
  op.actor = std::move(actor);
  op.which = std::move(which);
  op.users = std::move(users);
  return op;
}

/// A publish by `actor` of the event `name` with `data` to `users`.
inline operation publish_operation(std::string actor, std::vector<std::string> users, std::string name,
                                   std::string data) {
  operation op;
  op.kind = operation_kind::publish;
  op.actor = std::move(actor);
  op.users = std::move(users);
  op.event_name = std::move(name);
  op.data = std::move(data);
  return op;
}

/// What an operation needs to know of the store, as the store found it.
struct store_state {
  /// The actor's versions (share, unshare, delete); versions the selection
  /// leaves out, or of another owner, are ignored.
  versions owned{};
  /// Who holds a share of each version, by the version's name
  /// (`versioned_path::to_string()`). Share and unshare read the named
  /// users' shares of the selected versions; delete reads every grantee.
  std::map<std::string, std::set<std::string>> grantees{};
};

/// A change to the store's files (or objects).
enum class change {
  none,            ///< nothing: the step only announces
  add_version,     ///< store the version's bytes under its name
  remove_version,  ///< remove the version's bytes
  add_share,       ///< mark the version shared with the step's user
  remove_share,    ///< remove that mark
};

/// One step of a plan: a change, and the event that announces it.
struct step {
  change what = change::none;  ///< the change to make before the event is appended
  versioned_path version{};    ///< the version changed (none for a published event)
  std::string user{};          ///< whose share is added or removed, and whose journal gets the event
  std::string event_name{};    ///< CREATE, SHARE, UNSHARE, DELETE, or a published name
  std::string data{};          ///< the event's data: the version's name, or what was published
};

/// What an operation does: its steps in order, or the error it is refused
/// with (then there are no steps).
struct plan {
  std::optional<std::system_error> refused{};  ///< why the operation is refused, if it is
  std::vector<step> steps{};                   ///< the changes and events, in order
  versions selected{};                         ///< share, unshare, delete: the versions selected
};

/// Throws `refusal`, if there is one.
inline void throw_if_refused(const std::optional<std::system_error>& refusal) {
  if (refusal) throw *refusal;
}

/// Orders versions by path, then creation time, then owner.
inline bool by_path_then_time(const versioned_path& a, const versioned_path& b) {
  return std::tie(a.path, a.timestamp_ms, a.user) < std::tie(b.path, b.timestamp_ms, b.user);
}

/// The versions of `listed` that `owner` owns and `which` matches, sorted
/// by path, then creation time.
inline versions select(const selection& which, std::string_view owner, versions listed) {
  std::erase_if(listed, [&](const versioned_path& v) { return v.user != owner || !which.matches(v); });
  std::sort(listed.begin(), listed.end(), by_path_then_time);
  return listed;
}

/// Why the store refuses `op` whatever it holds, or none. Checked before the
/// store is read: a path, prefix, user name, event name or data that is not
/// valid, as `detail/names.hpp` defines them.
inline std::optional<std::system_error> refusal(const operation& op) {
  const auto users_error = [&]() -> std::optional<std::system_error> {
    for (const auto& u : op.users) {
      if (auto error = storewatch::detail::user_error(u)) return error;
    }
    return std::nullopt;
  };
  switch (op.kind) {
    case operation_kind::create:
      return storewatch::detail::path_error(op.path);
    case operation_kind::share:
    case operation_kind::unshare:
      if (auto error = storewatch::detail::path_error(op.which.prefix, true)) return error;
      return users_error();
    case operation_kind::delete_:
      return storewatch::detail::path_error(op.which.prefix, true);
    case operation_kind::publish:
      if (auto error = storewatch::detail::application_event_error(op.event_name, op.data)) return error;
      return users_error();
  }
  return std::nullopt;
}

/// A step that makes `what` to `version` and announces it to `user` with
/// the event `name`, whose data is the version's name.
inline step file_step(change what, const versioned_path& version, const std::string& user, std::string_view name) {
  return step{what, version, user, std::string(name), version.to_string()};
}

/// The plan for `op` on a store that holds `state`:
/// - create: the version `path✹actor_now`, CREATE to the actor;
/// - share: per selected version and named user, the share added (unless
///   held already: then the change is none) and SHARE to that user, also
///   when it was shared already;
/// - unshare: per selected version and named user who holds it, the share
///   removed and UNSHARE to that user; users who do not hold it get nothing;
/// - delete: per selected version, the version removed with DELETE to the
///   owner, then each grantee's share removed with DELETE to that grantee;
/// - publish: the event to each named user, in the order named.
/// The actor naming themselves in a share or unshare is passed over; a user
/// named twice is handled twice, each time as the store is by then.
inline plan decide(const operation& op, const store_state& state = {}) {
  plan result;
  result.refused = refusal(op);
  if (result.refused) return result;
  switch (op.kind) {
    case operation_kind::create:
      result.steps.push_back(
          file_step(change::add_version, {op.path, op.actor, op.now_ms}, op.actor, event_name::create));
      break;
    case operation_kind::share:
    case operation_kind::unshare: {
      const bool share = op.kind == operation_kind::share;
      result.selected = select(op.which, op.actor, state.owned);
      auto holders = state.grantees;  // as the steps so far leave them
      for (const auto& version : result.selected) {
        auto& holding = holders[version.to_string()];
        for (const auto& u : op.users) {
          if (u == op.actor) continue;
          const bool holds = holding.contains(u);
          if (share) {
            result.steps.push_back(
                file_step(holds ? change::none : change::add_share, version, u, event_name::share));
            holding.insert(u);
          } else if (holds) {
            result.steps.push_back(file_step(change::remove_share, version, u, event_name::unshare));
            holding.erase(u);
          }
        }
      }
      break;
    }
    case operation_kind::delete_:
      result.selected = select(op.which, op.actor, state.owned);
      for (const auto& version : result.selected) {
        result.steps.push_back(file_step(change::remove_version, version, op.actor, event_name::delete_));
        if (const auto held = state.grantees.find(version.to_string()); held != state.grantees.end()) {
          for (const auto& grantee : held->second) {
            result.steps.push_back(file_step(change::remove_share, version, grantee, event_name::delete_));
          }
        }
      }
      break;
    case operation_kind::publish:
      for (const auto& u : op.users) result.steps.push_back(step{change::none, {}, u, op.event_name, op.data});
      break;
  }
  return result;
}

/// A create's version name was taken (by another writer, in the same
/// millisecond): the version moves to the next millisecond, its event with it.
inline void next_millisecond(step& create) {
  ++create.version.timestamp_ms;
  create.data = create.version.to_string();
}

/// What reading a version needs: the error it is refused with whatever the
/// store holds, or whether the reader must hold a share of it.
struct read_access {
  std::optional<std::system_error> refused{};  ///< an invalid path or owner name
  bool needs_share = false;                    ///< the reader does not own it
};

/// Who may read `version`: its owner, and the users it is shared with.
inline read_access check_read(std::string_view reader, const versioned_path& version) {
  read_access access;
  access.refused = storewatch::detail::path_error(version.path);
  if (!access.refused && version.user != reader) {
    access.refused = storewatch::detail::user_error(version.user);
    access.needs_share = true;
  }
  return access;
}

/// The error for a read the reader may not make, or of a version that does
/// not exist: the same for both, so that a reader learns nothing of
/// versions not shared with them.
inline std::system_error read_denied(const std::string& reader, const versioned_path& version) {
  return std::system_error(errc::permission_denied, reader + " cannot read " +
                                                        storewatch::detail::quote(version.to_string()) +
                                                        ": it does not exist or is not shared with " + reader);
}

/// Why listing under `prefix` is refused, or none.
inline std::optional<std::system_error> list_refusal(std::string_view prefix) {
  return storewatch::detail::path_error(prefix, true);
}

/// What `reader` sees under `which`: their own versions (from `owned`, a
/// listing of theirs) and the versions shared with them (`shared`, whose
/// owners the store has checked), sorted by path, time, owner.
inline versions visible(std::string_view reader, const selection& which, versions owned, const versions& shared) {
  auto found = select(which, reader, std::move(owned));
  for (const auto& version : shared) {
    if (which.matches(version)) found.push_back(version);
  }
  std::sort(found.begin(), found.end(), by_path_then_time);
  return found;
}

}  // namespace rules
}  // namespace storewatch
