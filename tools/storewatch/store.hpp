// The store a command acts on: the checks of the global options, and of a
// folder store before it is opened, then `open_store`. The commands are
// written once, over either kind of store (`with_store`).
#pragma once

#include "cli.hpp"

#include <storewatch/store/open_store.hpp>
#include <storewatch/text.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace storewatch::cli {

inline bool is_s3(const invocation& c) { return is_s3_location(c.store.text); }

/// The checks of --store, --endpoint and (when the command acts as someone)
/// --user that every store command makes first.
inline void check_location(const invocation& c, bool needs_user) {
  if (c.store.text.find("://") != std::string::npos && !is_s3(c)) {
    throw usage_error(c.store.origin + ": '" + c.store.text + "' is neither a folder nor s3://bucket[/prefix]");
  }
  if (!is_s3(c)) {
    for (const auto& [given, name] : {std::pair{c.endpoint.has_value(), "--endpoint"},
                                      std::pair{c.region.has_value(), "--region"},
                                      std::pair{c.profile.has_value(), "--profile"},
                                      std::pair{c.addressing == "path", "--path-style"},
                                      std::pair{c.addressing == "virtual", "--virtual-hosted"}}) {
      if (!given) continue;
      throw usage_error("option '" + std::string(name) + "' is only for an s3:// store, and the store is the folder " +
                        c.store.text);
    }
  }
  if (!needs_user) return;  // a bad STOREWATCH_USER does not stop stats or init
  if (c.user.empty()) throw usage_error("'" + c.command->name + "' needs --user NAME (or STOREWATCH_USER)");
  try {
    validate_user(c.user);
  } catch (const std::system_error& error) {
    throw usage_error(c.user_origin + ": " + error.what());
  }
}

/// An s3:// store in a tool built without S3 is a usage error.
inline void check_s3_support(const invocation& c) {
  if (is_s3(c) && !has_s3_stores) {
    throw usage_error(c.store.origin + ": '" + c.store.text +
                      "' is an S3 store, but this storewatch was built without S3 support "
                      "(build it with STOREWATCH_BUILD_S3=ON)");
  }
}

// Checks of a folder store, made before it is opened, so that a mistyped
// location is an error instead of a new, empty store. An S3 store has no
// folders to look at: see the notes of `ls` and `cat`.

inline void require_root(const invocation& c) {
  std::error_code ec;
  const auto status = std::filesystem::status(c.store.text, ec);
  if (std::filesystem::is_directory(status)) return;
  const std::string where = "store root " + c.store.text + " (from " + c.store.origin + ")";
  if (std::filesystem::exists(status)) throw runtime_failure(where + " is not a folder");
  throw runtime_failure(where + " does not exist; run 'storewatch init' to create a store there, or name "
                        "another with --store or STOREWATCH_STORE");
}

inline void require_known_user(const invocation& c) {
  require_root(c);
  std::error_code ec;
  for (const char* part : {"journals", "versions", "shares"}) {
    if (std::filesystem::exists(std::filesystem::path(c.store.text) / part / c.user, ec)) return;
  }
  throw runtime_failure("user " + c.user + " is not known to the store at " + c.store.text +
                        " (no journal, files or shares)");
}

/// What `open_store` needs besides the location: the S3 options.
inline open_store_options store_options(const invocation& c) {
  open_store_options options;
  if (c.endpoint) options.endpoint = *c.endpoint;
  options.endpoint_origin = "option '--endpoint'";
  if (c.region) options.region = *c.region;
  options.region_origin = "option '--region'";
  if (c.profile) options.profile = *c.profile;
  options.profile_origin = "option '--profile'";
  options.addressing = c.addressing;
  return options;
}

/// Runs `open` (which makes an s3:// store's configuration), with each
/// error in that configuration as a usage error naming the option or
/// environment variable at fault; no message shows a credential.
template <class Open>
auto with_usage_errors(const invocation& c, Open open) {
  try {
    return open();
  } catch (const std::invalid_argument& error) {
    std::string why = error.what();
    if (why.starts_with("store URL: ")) throw usage_error(c.store.origin + ": " + why.substr(11));
    throw usage_error(why);
  }
}

/// Opens the store `c` names as its user, after the checks above (a folder
/// store must exist; with `known_user`, the user must be known to it), and
/// returns `use(store)`, for a local or an S3 store.
template <class Use>
int with_store(const invocation& c, asio::io_context& io, bool known_user, Use use) {
  check_location(c, true);
  check_s3_support(c);
  if (!is_s3(c)) known_user ? require_known_user(c) : require_root(c);
  auto store =
      with_usage_errors(c, [&] { return open_store(io.get_executor(), c.store.text, c.user, store_options(c)); });
  return std::visit(use, store);
}

}  // namespace storewatch::cli
