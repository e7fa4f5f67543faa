// What the tests that run programs against both fixtures share: how a child
// process reaches the S3 store, and how many clients subscribe to a channel.
#pragma once

#include <storewatch/redis/url.hpp>
#include <storewatch/s3/config.hpp>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <hiredis/hiredis.h>

#include <string>

namespace storewatch::test_support {

/// How a test runs a program against the S3 store `where`: its credentials
/// in the environment (and no AWS files: `dir` holds none), stdin empty,
/// stdout and stderr piped.
inline spawn_options s3_process_options(const s3::config& where, const temp_dir& dir) {
  spawn_options options;
  options.environment = environment_with(
      {"AWS_ACCESS_KEY_ID=" + where.credentials.access_key_id,
       "AWS_SECRET_ACCESS_KEY=" + where.credentials.secret_access_key, "AWS_REGION=" + where.region,
       "AWS_CONFIG_FILE=" + (dir.path() / "none").string(),
       "AWS_SHARED_CREDENTIALS_FILE=" + (dir.path() / "none").string()},
      {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STOREWATCH_STORE"});
  options.in = child_stream::null();
  options.out = child_stream::piped();
  options.err = child_stream::piped();
  return options;
}

/// The store URL and endpoint of `where`, as the programs' options say them.
inline std::string store_url(const s3::config& where) {
  auto prefix = where.prefix;
  prefix.pop_back();  // the trailing '/'
  return "s3://" + where.bucket + '/' + prefix;
}
inline std::string endpoint_url(const s3::config& where) {
  return where.endpoint.scheme + "://" + where.endpoint.authority();
}

/// How many clients of the Redis server at `where` subscribe to `channel`.
inline long long subscriber_count(const redis::url& where, const std::string& channel) {
  redisContext* admin = redisConnect(where.host.c_str(), where.port);
  REQUIRE(admin != nullptr);
  REQUIRE(admin->err == 0);
  auto* reply = static_cast<redisReply*>(redisCommand(admin, "PUBSUB NUMSUB %s", channel.c_str()));
  REQUIRE(reply != nullptr);
  const long long count = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 ? reply->element[1]->integer : -1;
  freeReplyObject(reply);
  redisFree(admin);
  return count;
}

}  // namespace storewatch::test_support
