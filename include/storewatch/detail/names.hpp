// Validation of what users put into a store: paths, user names, event names.
#pragma once

#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace storewatch::detail {

inline constexpr std::size_t max_path_bytes = 1024;
inline constexpr std::size_t max_component_bytes = 160;  // leaves room for "✹user_ms" within NAME_MAX
inline constexpr std::size_t max_user_bytes = 64;
inline constexpr std::size_t max_event_name_bytes = 128;
inline constexpr std::size_t max_event_data_bytes = 64 * 1024;
/// Names the store uses for its own temporary files; user paths may not.
inline constexpr std::string_view reserved_prefix = ".storewatch-";

/// Why `text` (valid UTF-8) would not look like what it is, or empty: a
/// control character (C0, DEL or C1), or an invisible formatting character
/// (a zero-width character, a bidirectional override or isolate, U+FEFF)
/// that can make "doc\u202etxt.exe" show as "docexe.txt".
inline std::string hidden_character_problem(std::string_view text) {
  while (!text.empty()) {
    // Printable ASCII (0x20-0x7E) has nothing to decode: skipped eight
    // bytes at a time (no byte below 0x20, none at or above 0x7F), then
    // byte by byte.
    if (text.size() >= 8) {
      std::uint64_t word;
      std::memcpy(&word, text.data(), sizeof word);
      constexpr std::uint64_t ones = 0x0101010101010101u;
      constexpr std::uint64_t high = 0x8080808080808080u;
      const bool printable = ((((word - 0x20 * ones) & ~word) | word | (word + ones)) & high) == 0;
      if (printable) {
        text.remove_prefix(8);
        continue;
      }
    }
    if (text.front() >= 0x20 && text.front() < 0x7F) {
      text.remove_prefix(1);
      continue;
    }
    const auto c = decode_utf8(text);
    if (c.length == 0) return "is not valid UTF-8";
    if (is_control(c.code) || is_invisible_formatting(c.code)) {
      const auto code = "U+" + code_point_hex(c.code);
      return is_control(c.code) ? "contains a control character (" + code + ")"
                                : "contains an invisible formatting character (" + code +
                                      ": zero-width or bidirectional text control)";
    }
    text.remove_prefix(c.length);
  }
  return {};
}

/// Why `path` is not a valid store path, or empty when it is.
/// `as_prefix` allows the empty path and a trailing '/' (selections).
inline std::string path_problem(std::string_view path, bool as_prefix = false) {
  if (path.empty()) return as_prefix ? std::string{} : "is empty";
  if (path.size() > max_path_bytes) return "is longer than " + std::to_string(max_path_bytes) + " bytes";
  if (!is_valid_utf8(path)) return "is not valid UTF-8";
  if (path.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (path.front() == '/') return "starts with '/' (paths are relative to the store)";
  if (path.find(version_separator) != std::string_view::npos) return "contains the version separator U+2739";
  if (auto problem = hidden_character_problem(path); !problem.empty()) return problem;
  std::string_view rest = path;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const auto component = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (component.empty()) {
      return "has an empty component ('//')";  // a prefix's one trailing '/' ends the loop instead
    } else if (component == "..") {
      return "has a '..' component";
    } else if (component == ".") {
      return "has a '.' component";
    } else if (component.size() > max_component_bytes) {
      return "has a component longer than " + std::to_string(max_component_bytes) + " bytes";
    } else if (component.starts_with(reserved_prefix)) {
      return "has a component starting with \"" + std::string(reserved_prefix) + "\" (reserved)";
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  if (!as_prefix && path.back() == '/') return "ends with '/' (name a file)";
  return {};
}

/// The `errc::invalid_path` error naming the path and the problem, or none.
inline std::optional<std::system_error> path_error(std::string_view path, bool as_prefix = false) {
  if (auto problem = path_problem(path, as_prefix); !problem.empty()) {
    return std::system_error(errc::invalid_path, "invalid path " + quote(path) + ": " + problem);
  }
  return std::nullopt;
}

/// Throws `path_error`, if any.
inline void validate_path(std::string_view path, bool as_prefix = false) {
  if (auto error = path_error(path, as_prefix)) throw *error;
}

/// Why `user` is not a valid user name (1-64 characters of A-Z a-z 0-9 . _ -,
/// not "." or ".."), or empty when it is.
inline std::string user_problem(std::string_view user) {
  if (user.empty()) return "is empty";
  if (user.size() > max_user_bytes) return "is longer than 64 characters";
  if (user == "." || user == "..") return "is a reserved name";
  for (const char c : user) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return "may only contain A-Z a-z 0-9 . _ -";
  }
  return {};
}

/// The `errc::invalid_user` error naming `user`, or none when it is a valid
/// user name.
inline std::optional<std::system_error> user_error(std::string_view user) {
  if (auto problem = user_problem(user); !problem.empty()) {
    return std::system_error(errc::invalid_user, "invalid user name " + quote(user) + ": " + problem);
  }
  return std::nullopt;
}

/// Throws `user_error`, if any.
inline void validate_user(std::string_view user) {
  if (auto error = user_error(user)) throw *error;
}

/// Why `name` cannot be an application event's name (1-128 printable ASCII
/// characters without spaces, none of the store's own names), or empty.
inline std::string event_name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > max_event_name_bytes) return "is longer than 128 characters";
  for (const char c : name) {
    if (c <= 0x20 || c >= 0x7F) return "may only contain printable ASCII characters without spaces";
  }
  for (const auto reserved : {event_name::create, event_name::share, event_name::unshare, event_name::delete_,
                              event_name::gap}) {
    if (name == reserved) return "is one of the store's own event names (CREATE, SHARE, UNSHARE, DELETE, GAP)";
  }
  return {};
}

/// `errc::invalid_event_name` unless `name` is 1-128 printable ASCII
/// characters without spaces, other than the store's own event names (so
/// nobody can forge a SHARE or DELETE); `errc::invalid_event` for data that
/// is not valid UTF-8 or longer than 64 KiB; or none.
inline std::optional<std::system_error> application_event_error(std::string_view name, std::string_view data) {
  if (auto problem = event_name_problem(name); !problem.empty()) {
    return std::system_error(errc::invalid_event_name, "invalid event name " + quote(name) + ": " + problem);
  }
  if (data.size() > max_event_data_bytes) {
    return std::system_error(errc::invalid_event, "event " + std::string(name) + ": data is longer than 64 KiB");
  }
  if (!is_valid_utf8(data)) {
    return std::system_error(errc::invalid_event, "event " + std::string(name) + ": data is not valid UTF-8");
  }
  return std::nullopt;
}

/// Throws `application_event_error`, if any.
inline void validate_application_event(std::string_view name, std::string_view data) {
  if (auto error = application_event_error(name, data)) throw *error;
}

/// Why a record in `user`'s journal cannot have been written by a store,
/// or empty when it can. A checksum says a record is whole, not who wrote
/// it: another process with access to the folder could append anything.
/// File events (CREATE, SHARE, UNSHARE, DELETE) carry a valid versioned path
/// and come from its owner: CREATE only into the owner's journal, SHARE and
/// UNSHARE only into other users'. GAP is made by sources, never written.
/// Other events have a valid name and actor; their data is the sender's.
inline std::string store_record_problem(std::string_view user, const event& e) {
  const bool file_event = e.name == event_name::create || e.name == event_name::share ||
                          e.name == event_name::unshare || e.name == event_name::delete_;
  if (e.name == event_name::gap) return "a GAP record (sources make GAP events; stores never write them)";
  if (!file_event) {
    if (auto problem = event_name_problem(e.name); !problem.empty()) return "event name " + quote(e.name) + " " + problem;
    if (auto problem = user_problem(e.actor); !problem.empty()) return "actor " + quote(e.actor) + " " + problem;
    return {};
  }
  std::string why;
  const auto version = parse_versioned_path(e.data, &why);
  if (!version) return e.name + " of " + why;
  if (auto problem = path_problem(version->path); !problem.empty()) {
    return e.name + " of path " + quote(version->path) + ", which " + problem;
  }
  if (auto problem = user_problem(version->user); !problem.empty()) {
    return e.name + " by owner " + quote(version->user) + ", whose name " + problem;
  }
  if (e.actor != version->user) {
    return e.name + " of " + quote(e.data) + " by " + quote(e.actor) + ", who does not own it";
  }
  if (e.name == event_name::create && version->user != user) {
    return "CREATE of " + quote(e.data) + " in the journal of " + quote(user) + ", who does not own it";
  }
  if ((e.name == event_name::share || e.name == event_name::unshare) && version->user == user) {
    return e.name + " of " + quote(e.data) + " to its own owner";
  }
  return {};
}

}  // namespace storewatch::detail
