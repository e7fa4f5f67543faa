/// \file
/// The error codes of storewatch and their std::error_category.
#pragma once

#include <string>
#include <system_error>

namespace storewatch {

/// Errors reported by storewatch operations, in the "storewatch" category.
enum class errc : int {
  end_of_stream = 1,       ///< the stream was closed and every buffered event has been taken
  stopped,                 ///< the poller or listener was stopped
  invalid_versioned_path,  ///< text is not of the form path✹user_timestampms
  invalid_event,           ///< an event (or its JSON) lacks a required field or has a bad one,
                           ///< or published data is not UTF-8 or is over 64 KiB
  invalid_cursor,          ///< a cursor or checkpoint could not be decoded
  source_unavailable,      ///< a source failed to poll; the poller retries with backoff
  checkpoint_failed,       ///< a checkpoint file could not be read or written
  handler_failed,          ///< an event handler threw; other handlers still got the event
  invalid_path,            ///< a store path is empty, absolute or too long, or has ".", ".." or empty
                           ///< components, NUL, control characters, U+2739, a ".storewatch-" name or bad UTF-8
  invalid_user,            ///< a user name is empty, too long, "." or "..", or has characters other than A-Z a-z 0-9 . _ -
  invalid_event_name,      ///< an application event name is empty, too long, not printable ASCII,
                           ///< has a space, or is one of the store's own (CREATE, ..., GAP)
  permission_denied,       ///< the version does not exist or is not visible to this user
  corrupt_record,          ///< a journal record failed its checksum or could not be decoded
  store_io_failed,         ///< a file of the store could not be read or written
  wake_ups_unavailable,    ///< a source cannot signal changes here (turned off, no inotify, or a network
                           ///< file system whose other machines' writes inotify does not see): poll instead
  store_access_denied,     ///< the object store refused the request (HTTP 403): wrong or expired credentials,
                           ///< a policy that denies it, or a clock too far off for the signature
  poller_failed,           ///< the poll loop ended on an exception that was not a std::system_error
                           ///< (say, std::bad_alloc); the stream ends with this code
};

namespace detail {

class error_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "storewatch"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::end_of_stream:
        return "end of stream: the event stream was closed and all buffered events were taken";
      case errc::stopped:
        return "stopped: the poller or listener was stopped";
      case errc::invalid_versioned_path:
        return "invalid versioned path: expected 'path\u2739user_timestampms'";
      case errc::invalid_event:
        return "invalid event: a required field is missing or malformed";
      case errc::invalid_cursor:
        return "invalid cursor: the cursor or checkpoint text could not be decoded";
      case errc::source_unavailable:
        return "source unavailable: polling the source failed (will retry)";
      case errc::checkpoint_failed:
        return "checkpoint failed: the checkpoint file could not be read or written";
      case errc::handler_failed:
        return "an event handler threw an exception";
      case errc::invalid_path:
        return "invalid path: use a relative '/'-separated path without '..', NUL or U+2739";
      case errc::invalid_user:
        return "invalid user name: use 1-64 characters of A-Z a-z 0-9 . _ -";
      case errc::invalid_event_name:
        return "invalid event name: use 1-128 printable ASCII characters";
      case errc::permission_denied:
        return "permission denied: the version does not exist or is not shared with this user";
      case errc::corrupt_record:
        return "corrupt journal record (skipped)";
      case errc::store_io_failed:
        return "a file of the store could not be read or written";
      case errc::wake_ups_unavailable:
        return "wake-ups unavailable: change notifications are turned off or cannot see every write here "
               "(no inotify, or a network file system)";
      case errc::store_access_denied:
        return "access denied by the object store: check the credentials, the bucket policy and the clock";
      case errc::poller_failed:
        return "the poller ended on an unexpected exception (rethrown from the executor's run())";
    }
    return "storewatch error " + std::to_string(value);
  }
};

}  // namespace detail

/// The "storewatch" error category.
inline const std::error_category& error_category() noexcept {
  static const detail::error_category_impl instance;
  return instance;
}

/// `e` as a `std::error_code` in `error_category()`; found by argument-dependent
/// lookup, so `std::error_code ec = errc::stopped;` works.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace storewatch

/// Makes `storewatch::errc` convertible to `std::error_code`.
template <>
struct std::is_error_code_enum<storewatch::errc> : std::true_type {};
