// The --hints option of `tail` and of the store commands: Redis wake-up
// hints for an s3:// store (storewatch::redis). `tail` subscribes, the store
// commands publish and flush before the tool exits.
#pragma once

#include "cli.hpp"

#ifdef STOREWATCH_WITH_REDIS
#include <storewatch/redis/url.hpp>
#endif

#include <optional>
#include <stdexcept>
#include <string>

namespace storewatch::cli {

/// What `--help` says of --URL's syntax.
inline constexpr const char* hints_url_help =
    "(redis://[[user][:password]@]host[:port][/db]; password also from STOREWATCH_REDIS_PASSWORD)";

/// The usage error of --hints on a folder store.
[[noreturn]] inline void refuse_hints_on_folder() {
  throw usage_error("option '--hints': hints are for s3:// stores (a folder store wakes its listeners itself)");
}

/// The usage error of --hints in a tool built without storewatch::redis.
[[noreturn]] inline void refuse_hints_without_redis() {
  throw usage_error("option '--hints': this storewatch was built without Redis hints (storewatch::redis, "
                    "which needs hiredis)");
}

/// What a store command given --hints says when the Redis server cannot
/// be reached: the command exits soon after, so it does not reconnect; its
/// hints are lost and only bring no poll forward.
inline constexpr const char* hints_lost_note =
    "this command's hints are not delivered; the recipients' listeners find the change at their next poll";

#ifdef STOREWATCH_WITH_REDIS
/// The server --hints names; a URL that is none is a usage error naming
/// the option (never showing a password).
inline redis::url hints_url(const std::string& text) {
  try {
    return redis::parse_url(text);
  } catch (const std::invalid_argument& error) {
    throw usage_error(std::string("option '--hints': ") + error.what());
  }
}
#endif

}  // namespace storewatch::cli
