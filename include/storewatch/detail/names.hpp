// Validation of what users put into a store: paths, user names, event names.
#pragma once

#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>

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

/// Why `path` is not a valid store path, or empty when it is.
/// `as_prefix` allows the empty path and a trailing '/' (selections).
inline std::string path_problem(std::string_view path, bool as_prefix = false) {
  if (path.empty()) return as_prefix ? std::string{} : "is empty";
  if (path.size() > max_path_bytes) return "is longer than " + std::to_string(max_path_bytes) + " bytes";
  if (!is_valid_utf8(path)) return "is not valid UTF-8";
  if (path.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (path.front() == '/') return "starts with '/' (paths are relative to the store)";
  if (path.find(version_separator) != std::string_view::npos) return "contains the version separator U+2739";
  for (const char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return "contains a control character";
  }
  std::string_view rest = path;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const auto component = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (component.empty()) {
      if (!(last || (as_prefix && slash + 1 == rest.size()))) return "has an empty component ('//')";
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

/// Throws `std::system_error(errc::invalid_path)` naming the path and the problem.
inline void validate_path(std::string_view path, bool as_prefix = false) {
  if (auto problem = path_problem(path, as_prefix); !problem.empty()) {
    throw std::system_error(errc::invalid_path, "invalid path " + quote(path) + ": " + problem);
  }
}

/// Throws `std::system_error(errc::invalid_user)` unless `user` is 1-64
/// characters of A-Z a-z 0-9 . _ - (and not "." or "..").
inline void validate_user(std::string_view user) {
  const auto fail = [&](const char* why) {
    throw std::system_error(errc::invalid_user, "invalid user name " + quote(user) + ": " + why);
  };
  if (user.empty()) fail("is empty");
  if (user.size() > max_user_bytes) fail("is longer than 64 characters");
  if (user == "." || user == "..") fail("is a reserved name");
  for (const char c : user) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) fail("may only contain A-Z a-z 0-9 . _ -");
  }
}

/// Throws `std::system_error(errc::invalid_event_name)` unless `name` is
/// 1-128 printable ASCII characters without spaces, other than the store's
/// own event names (so nobody can forge a SHARE or DELETE); and
/// `std::system_error(errc::invalid_event)` for data that is not valid
/// UTF-8 or longer than 64 KiB.
inline void validate_application_event(std::string_view name, std::string_view data) {
  const auto fail = [&](const char* why) {
    throw std::system_error(errc::invalid_event_name, "invalid event name " + quote(name) + ": " + why);
  };
  if (name.empty()) fail("is empty");
  if (name.size() > max_event_name_bytes) fail("is longer than 128 characters");
  for (const char c : name) {
    if (c <= 0x20 || c >= 0x7F) fail("may only contain printable ASCII characters without spaces");
  }
  for (const auto reserved : {event_name::create, event_name::share, event_name::unshare, event_name::delete_,
                              event_name::gap}) {
    if (name == reserved) fail("is one of the store's own event names (CREATE, SHARE, UNSHARE, DELETE, GAP)");
  }
  if (data.size() > max_event_data_bytes) {
    throw std::system_error(errc::invalid_event, "event " + std::string(name) + ": data is longer than 64 KiB");
  }
  if (!is_valid_utf8(data)) {
    throw std::system_error(errc::invalid_event, "event " + std::string(name) + ": data is not valid UTF-8");
  }
}

}  // namespace storewatch::detail
