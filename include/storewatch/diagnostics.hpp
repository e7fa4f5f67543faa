/// \file
/// `diagnostics`: the account of one failed operation, handed to that
/// operation alone.
#pragma once

#include <string>
#include <utility>

namespace storewatch {

namespace detail {
struct diagnostics_access;
}  // namespace detail

/// What one failed operation said: the file, request or argument at fault
/// and the step that failed. Pass one to the overload of an initiating
/// function that takes it (the argument before the completion token); the
/// operation fills it just before its handler runs, on the handler's
/// executor, and empties it when it succeeds. Unlike an object's
/// `last_error()`, which holds the account of whichever operation completed
/// last, each pending operation keeps its own here. It must outlive the
/// operation, and not be shared by two pending operations.
class diagnostics {
 public:
  /// The account of the failure; empty after a success.
  const std::string& message() const noexcept { return message_; }
  /// Empties it.
  void clear() noexcept { message_.clear(); }

 private:
  friend struct detail::diagnostics_access;
  std::string message_;
};

namespace detail {

/// The library's way to fill a `diagnostics`.
struct diagnostics_access {
  static void set(diagnostics& diag, std::string message) { diag.message_ = std::move(message); }
};

}  // namespace detail
}  // namespace storewatch
