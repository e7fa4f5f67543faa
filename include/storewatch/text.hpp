/// \file
/// Names and untrusted text as the stores check and show them: for programs
/// that check a path or user before a store sees it, or print what a store
/// or a directory holds.
#pragma once

#include <storewatch/detail/names.hpp>
#include <storewatch/detail/text.hpp>

#include <string>
#include <string_view>

namespace storewatch {

/// Throws `std::system_error(errc::invalid_path)` naming `path` and its
/// problem unless the stores accept it as a file path (`as_prefix`: as a
/// selection's prefix, which may end with '/').
inline void validate_path(std::string_view path, bool as_prefix = false) { detail::validate_path(path, as_prefix); }

/// Throws `std::system_error(errc::invalid_user)` naming `user` unless it is
/// a valid user name (1-64 characters of A-Z a-z 0-9 . _ -, not "." or "..").
inline void validate_user(std::string_view user) { detail::validate_user(user); }

/// `text` with every character a terminal would act on or hide escaped:
/// control bytes and bytes of invalid UTF-8 as `\xHH`, C1 controls, the
/// line and paragraph separators (U+2028, U+2029) and invisible formatting
/// characters (bidirectional overrides, zero-width characters) as `\uHHHH`. Backslashes are left as they are.
inline std::string displayable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  detail::append_displayable(out, text);
  return out;
}

/// `text` in double quotes, escaped as by `displayable` (quotes and
/// backslashes too), cut after `limit` bytes: safe in an error message
/// whatever it holds.
inline std::string quote(std::string_view text, std::size_t limit = 200) { return detail::quote(text, limit); }

}  // namespace storewatch
