/// \file
/// `redis::url`: where a Redis server is, parsed from
/// `redis://[[user][:password]@]host[:port][/db]`.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace storewatch::redis {

/// The environment variable `parse_url` takes the password from when the
/// URL has none, so that it stays out of command lines and process lists.
inline constexpr const char* password_variable = "STOREWATCH_REDIS_PASSWORD";

/// A Redis server and how to log in to it.
struct url {
  std::string host{};         ///< name or address (an IPv6 address without its brackets)
  std::uint16_t port = 6379;  ///< TCP port
  unsigned db = 0;            ///< database number (SELECT); pub/sub channels are the same in every one
  std::string user{};         ///< ACL user (Redis 6+); empty: AUTH with the password alone
  std::string password{};     ///< empty: no AUTH

  /// `redis://host:port/db`, with the user but never the password: for
  /// messages.
  std::string text() const {
    const bool v6 = host.find(':') != std::string::npos;
    std::string out = "redis://";
    if (!user.empty()) out += user + '@';
    out += v6 ? '[' + host + ']' : host;
    return out + ':' + std::to_string(port) + '/' + std::to_string(db);
  }
};

namespace detail {

// Decodes %XX escapes in `part` (the URL's `what`); throws naming it.
inline std::string percent_decoded(std::string_view part, std::string_view what, std::string_view whole) {
  std::string out;
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (part[i] != '%') {
      out += part[i];
      continue;
    }
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int high = i + 2 < part.size() ? hex(part[i + 1]) : -1;
    const int low = i + 2 < part.size() ? hex(part[i + 2]) : -1;
    if (high < 0 || low < 0) {
      throw std::invalid_argument("Redis URL " + std::string(whole) + ": the " + std::string(what) +
                                  " has a '%' not followed by two hex digits");
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// The decimal number `digits` if it lies in [min, max], else -1.
inline long long parse_number(std::string_view digits, long long min, long long max) {
  if (digits.empty() || digits.size() > 10) return -1;
  long long value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value < min || value > max ? -1 : value;
}

}  // namespace detail

/// Parses `redis://[[user][:password]@]host[:port][/db]` (port 6379 and db 0
/// by default; user and password may hold %XX escapes; an IPv6 address in
/// brackets). Without a password in the URL, the one in the environment
/// variable `password_from` (default `STOREWATCH_REDIS_PASSWORD`) is used
/// when set; pass nullptr to read none. A user needs a password. Throws std::invalid_argument naming
/// the part at fault (the message never repeats the password). `rediss://`
/// (TLS) is refused: Debian 12's hiredis 0.14 has no TLS.
inline url parse_url(std::string_view text, const char* password_from = password_variable) {
  // The URL as messages show it: everything but a password.
  std::string shown(text);
  if (const auto scheme_end = shown.find("://"); scheme_end != std::string::npos) {
    const auto at = shown.rfind('@');
    const auto colon = shown.find(':', scheme_end + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      shown.replace(colon + 1, at - colon - 1, "***");
    }
  }
  const auto fail = [&](const std::string& why) -> std::invalid_argument {
    return std::invalid_argument("Redis URL " + shown + ": " + why);
  };
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) throw fail("not a URL: expected redis://host[:port][/db]");
  const auto scheme = text.substr(0, scheme_end);
  if (scheme == "rediss") {
    throw fail("rediss:// (Redis over TLS) is not available: Debian 12's hiredis 0.14 has no TLS support; "
               "use redis:// on a trusted network or through a TLS tunnel");
  }
  if (scheme != "redis") throw fail("the scheme '" + std::string(scheme) + "' is not redis://");
  auto rest = text.substr(scheme_end + 3);
  // The user information ends at the last '@', taken off before anything
  // else: a password may hold '/', '?' or '#' unescaped (base64 ones do), and
  // no part of it may reach a message.
  std::optional<std::string_view> userinfo;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
  }
  if (const auto extra = rest.find_first_of("?#"); extra != std::string_view::npos) {
    throw fail("a query or fragment ('" + std::string(rest.substr(extra)) + "') is not supported");
  }
  const auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  const auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);

  url out;
  if (userinfo) {
    const auto colon = userinfo->find(':');
    out.user = detail::percent_decoded(userinfo->substr(0, colon), "user name", shown);
    if (colon != std::string_view::npos) {
      out.password = detail::percent_decoded(userinfo->substr(colon + 1), "password", shown);
      if (out.password.empty()) throw fail("the password after ':' is empty");
    }
  }

  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw fail("the IPv6 address has no closing ']'");
    out.host = authority.substr(1, close - 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      throw fail("'" + std::string(after) + "' after the IPv6 address is not ':port'");
    }
    if (!after.empty()) port = after.substr(1);
    if (after == ":") throw fail("the port after ':' is empty");
  } else {
    const auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) throw fail("the port after ':' is empty");
    }
  }
  if (out.host.empty()) throw fail("the host is empty");
  if (out.host.find_first_of(" /@%") != std::string::npos) throw fail("the host '" + out.host + "' is not a host name");
  if (!port.empty()) {
    const auto number = detail::parse_number(port, 1, 65535);
    if (number < 0) throw fail("the port '" + std::string(port) + "' is not a number from 1 to 65535");
    out.port = static_cast<std::uint16_t>(number);
  }
  if (!path.empty()) {
    const auto number = detail::parse_number(path, 0, 2147483647);
    if (number < 0) throw fail("the database '" + std::string(path) + "' after the host is not a number");
    out.db = static_cast<unsigned>(number);
  }
  if (out.password.empty() && password_from != nullptr) {
    if (const char* from_environment = std::getenv(password_from); from_environment && *from_environment) {
      out.password = from_environment;
    }
  }
  if (!out.user.empty() && out.password.empty()) {
    throw fail("the user '" + out.user + "' has no password: give it as user:password@ or in " +
               (password_from != nullptr ? std::string(password_from) : std::string("the URL")));
  }
  return out;
}

}  // namespace storewatch::redis
