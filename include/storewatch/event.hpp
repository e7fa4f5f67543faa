/// \file
/// The event delivered to listeners, and the versioned paths file events carry.
#pragma once

#include <storewatch/error.hpp>
#include <storewatch/detail/text.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <system_error>

namespace storewatch {

/// The names of the events storewatch itself produces. Applications may
/// publish events under any other name.
namespace event_name {
/// A version was created; `data` is its versioned path. Goes to the owner.
inline constexpr std::string_view create = "CREATE";
/// A version was shared with the receiving user; `data` is its versioned path.
inline constexpr std::string_view share = "SHARE";
/// A version is no longer shared with the receiving user; `data` is its
/// versioned path.
inline constexpr std::string_view unshare = "UNSHARE";
/// A version was deleted; `data` is its versioned path. Goes to the owner and
/// every user it was shared with. (`delete_`: `delete` is a keyword.)
inline constexpr std::string_view delete_ = "DELETE";
/// Events were lost before this listener could read them (for example, a
/// journal was compacted past its cursor); `data` says which range.
inline constexpr std::string_view gap = "GAP";
/// (directory_source) A file's content or metadata changed, or it was
/// replaced in place (an editor's save); `data` is its path relative to the
/// watched root.
inline constexpr std::string_view modify = "MODIFY";
/// (directory_source) An entry moved within the watched tree; `data` is its
/// new relative path, `attributes["from"]` the old one. A directory's move
/// is one RENAME.
inline constexpr std::string_view rename = "RENAME";
}  // namespace event_name

/// Milliseconds since the Unix epoch, UTC.
using timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

/// The separator between a path and its version: U+2739, UTF-8 E2 9C B9.
inline constexpr std::string_view version_separator = "\xE2\x9C\xB9";

/// One version of a file: `path✹user_timestampms`, for example
/// `SharedEvents/a.txt✹alice222_1761135341619`.
struct versioned_path {
  std::string path;            ///< the file's path in the store
  std::string user;            ///< who created this version (may contain '_')
  std::int64_t timestamp_ms{};  ///< when, in milliseconds since the epoch

  /// The text form, `path✹user_timestampms`.
  std::string to_string() const {
    std::string out;
    out.reserve(path.size() + version_separator.size() + user.size() + 21);
    out += path;
    out += version_separator;
    out += user;
    out += '_';
    out += std::to_string(timestamp_ms);
    return out;
  }

  /// `timestamp_ms` as a `timestamp`.
  timestamp created_at() const { return timestamp{std::chrono::milliseconds{timestamp_ms}}; }

  /// Parses `text`; never throws for bad input. On failure returns nullopt
  /// and, when `why` is given, stores a message naming the problem.
  /// Rejected: invalid UTF-8, NUL bytes, no ✹ or more than one, an empty
  /// path or user, a timestamp that is missing, not all digits, has a
  /// leading zero, or is too large for 64 bits. So a parsed path formats
  /// back to exactly the text it came from.
  static std::optional<versioned_path> try_parse(std::string_view text, std::string* why = nullptr);

  /// Parses `text`, throwing `std::system_error` with
  /// `errc::invalid_versioned_path` and a message naming the problem.
  static versioned_path parse(std::string_view text) {
    std::string why;
    auto parsed = try_parse(text, &why);
    if (!parsed) throw std::system_error(errc::invalid_versioned_path, why);
    return std::move(*parsed);
  }

  /// Equal when path, user and timestamp are.
  friend bool operator==(const versioned_path&, const versioned_path&) = default;
};

namespace detail {

/// The parts of a versioned path, viewing the text they were parsed from.
struct versioned_path_parts {
  std::string_view path;
  std::string_view user;
  std::int64_t timestamp_ms{};
};

/// Parses `text` as `versioned_path::try_parse` does (the same checks, the
/// same messages), without copying the parts: for checks that only look.
inline std::optional<versioned_path_parts> parse_versioned_path(std::string_view text, std::string* why) {
  const auto fail = [&](std::string_view reason) -> std::optional<versioned_path_parts> {
    if (why) *why = "invalid versioned path " + detail::quote(text) + ": " + std::string(reason);
    return std::nullopt;
  };
  if (!detail::is_valid_utf8(text)) return fail("not valid UTF-8");
  if (text.find('\0') != std::string_view::npos) return fail("contains a NUL byte");
  const auto separator = text.find(version_separator);
  if (separator == std::string_view::npos) return fail("no version separator U+2739");
  const auto suffix = text.substr(separator + version_separator.size());
  if (suffix.find(version_separator) != std::string_view::npos) {
    return fail("more than one version separator U+2739");
  }
  if (separator == 0) return fail("empty path before U+2739");
  const auto underscore = suffix.rfind('_');
  if (underscore == std::string_view::npos) return fail("no '_' between user and timestamp");
  if (underscore == 0) return fail("empty user");
  const auto digits = suffix.substr(underscore + 1);
  if (digits.empty()) return fail("empty timestamp");
  for (const char c : digits) {
    if (c < '0' || c > '9') return fail("timestamp is not a decimal number");
  }
  if (digits.size() > 1 && digits.front() == '0') return fail("timestamp has a leading zero");
  // All digits: parse_decimal fails only past 20 digits or 64 bits unsigned.
  std::uint64_t value = 0;
  if (!parse_decimal(digits, value) || value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return fail("timestamp does not fit in 64 bits");
  }
  return versioned_path_parts{text.substr(0, separator), suffix.substr(0, underscore),
                              static_cast<std::int64_t>(value)};
}

}  // namespace detail

inline std::optional<versioned_path> versioned_path::try_parse(std::string_view text, std::string* why) {
  const auto parts = detail::parse_versioned_path(text, why);
  if (!parts) return std::nullopt;
  return versioned_path{std::string(parts->path), std::string(parts->user), parts->timestamp_ms};
}

/// A notification of something that happened in a store.
///
/// File events (CREATE, SHARE, UNSHARE, DELETE) carry a versioned path in
/// `data`; application events carry whatever their publisher chose.
struct event {
  std::string name;        ///< "CREATE", "SHARE", ... or an application's own name
  std::string data;        ///< the versioned path, or an application's payload
  std::string id;          ///< unique and stable: a repeat after a crash has the same id
  std::string actor;       ///< the user who caused the event (may be empty)
  timestamp occurred_at{};  ///< when it happened, by the actor's clock
  /// Anything else the source attached; null when there is nothing.
  nlohmann::json attributes{};
  /// Where the source resumes after this event, when the event ends a poll
  /// batch; empty otherwise. Set by the poller, used for checkpoints, not
  /// part of the JSON form.
  std::string cursor{};
  /// With `cursor`: the ids of events past it that a run before a restart
  /// already delivered (the poller still filters them out), so a checkpoint
  /// at this event keeps them. Set by the poller, not part of the JSON form.
  std::vector<std::string> delivered_past_cursor{};

  /// The parsed versioned path in `data`, or nullopt when `data` is not one.
  std::optional<versioned_path> path() const { return versioned_path::try_parse(data); }

  /// Compares every member but `cursor` and `delivered_past_cursor`, which
  /// depend on how the event was read.
  friend bool operator==(const event& a, const event& b) {
    return a.name == b.name && a.data == b.data && a.id == b.id && a.actor == b.actor &&
           a.occurred_at == b.occurred_at && a.attributes == b.attributes;
  }
};

/// JSON form: {"id", "name", "data", "actor", "occurred_at" (integer
/// milliseconds since the epoch), "attributes" (only when not null)}.
inline void to_json(nlohmann::json& j, const event& e) {
  j = nlohmann::json{{"id", e.id},
                     {"name", e.name},
                     {"data", e.data},
                     {"actor", e.actor},
                     {"occurred_at", e.occurred_at.time_since_epoch().count()}};
  if (!e.attributes.is_null()) j["attributes"] = e.attributes;
}

/// Reads the JSON form. "id", "name", "data" and "occurred_at" are required;
/// "actor" and "attributes" are optional; other fields are ignored, so
/// newer writers can add fields. Throws `std::system_error` with
/// `errc::invalid_event` and a message naming the missing or bad field.
inline void from_json(const nlohmann::json& j, event& e) {
  const auto fail = [](const std::string& message) {
    throw std::system_error(errc::invalid_event, "event JSON: " + message);
  };
  if (!j.is_object()) fail(std::string("expected an object, got ") + j.type_name());
  const auto text_field = [&](const char* field, bool required) -> std::string {
    const auto it = j.find(field);
    if (it == j.end()) {
      if (required) fail(std::string("missing required field \"") + field + "\"");
      return {};
    }
    if (!it->is_string()) fail(std::string("field \"") + field + "\" must be a string, got " + it->type_name());
    return it->get<std::string>();
  };
  event result;
  result.id = text_field("id", true);
  result.name = text_field("name", true);
  result.data = text_field("data", true);
  result.actor = text_field("actor", false);
  const auto when = j.find("occurred_at");
  if (when == j.end()) fail("missing required field \"occurred_at\"");
  if (!when->is_number_integer()) {
    fail(std::string("field \"occurred_at\" must be integer milliseconds since the epoch, got ") + when->type_name());
  }
  if (when->is_number_unsigned() && when->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    fail("field \"occurred_at\" is out of range: " + when->dump());
  }
  result.occurred_at = timestamp{std::chrono::milliseconds{when->get<std::int64_t>()}};
  if (result.name.empty()) fail("field \"name\" must not be empty");
  if (result.id.empty()) fail("field \"id\" must not be empty");
  if (const auto attributes = j.find("attributes"); attributes != j.end()) result.attributes = *attributes;
  e = std::move(result);
}

/// Parses one event from JSON text; errors (syntax or fields) are thrown as
/// `std::system_error` with `errc::invalid_event`, naming the byte offset or
/// the field.
inline event parse_event_json(std::string_view text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    throw std::system_error(errc::invalid_event,
                            "event JSON: syntax error at byte " + std::to_string(error.byte) + ": " + error.what());
  } catch (const nlohmann::json::exception& error) {
    // A number beyond a double's range is out_of_range, not a parse_error.
    throw std::system_error(errc::invalid_event, std::string("event JSON: ") + error.what());
  }
  return j.get<event>();
}

}  // namespace storewatch
