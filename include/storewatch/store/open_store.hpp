/// \file
/// `open_store`: the store a location names, a folder ("dir") or, in a
/// program that links `storewatch::s3`, an S3 bucket and key prefix
/// ("s3://bucket/prefix"). The s3:// part is compiled only with
/// STOREWATCH_WITH_S3, which linking `storewatch::s3` defines.
#pragma once

#include <storewatch/detail/text.hpp>
#include <storewatch/store/local_store.hpp>
#ifdef STOREWATCH_WITH_S3
#include <storewatch/store/s3_store.hpp>
#endif

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace storewatch {

/// True when this program can open s3:// stores (it links `storewatch::s3`).
#ifdef STOREWATCH_WITH_S3
inline constexpr bool has_s3_stores = true;
#else
inline constexpr bool has_s3_stores = false;
#endif

/// True when `location` names an S3 store: it starts with "s3://".
inline bool is_s3_location(std::string_view location) noexcept { return location.starts_with("s3://"); }

/// How `open_store` reaches an S3 store: settings that beat the
/// environment and the AWS shared files (see `s3::resolve_config`).
struct open_store_options {
  /// The S3 service, http(s)://host[:port]; empty: AWS_ENDPOINT_URL_S3, else
  /// AWS_ENDPOINT_URL, else the profile's endpoint_url, else AWS's endpoint for the region.
  std::string endpoint{};
  /// What an error names as the source of `endpoint` ("option '--endpoint'").
  std::string endpoint_origin = "endpoint";
  /// The region; empty: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's, else us-east-1.
  std::string region{};
  /// What an error names as the source of `region`.
  std::string region_origin = "region";
  /// The profile of ~/.aws/config and ~/.aws/credentials; empty: AWS_PROFILE,
  /// else AWS_DEFAULT_PROFILE, else "default".
  std::string profile{};
  /// What an error names as the source of `profile`.
  std::string profile_origin = "profile";
  /// "path" or "virtual" to force the addressing style; empty: the profile's
  /// `s3 = addressing_style`, else path-style for endpoints that are not AWS's.
  std::string addressing{};
  /// A folder store's options.
  local_store_options local{};
};

#ifdef STOREWATCH_WITH_S3
/// The configuration of the S3 store at `location` ("s3://bucket/prefix"):
/// the settings `options` gives, the rest resolved from the environment and
/// the AWS shared files as the AWS CLI does (see `s3::resolve_config`).
/// Throws std::invalid_argument naming the store URL, option, variable or
/// file and line at fault; no message shows a credential.
inline s3::config s3_store_config(std::string_view location, const open_store_options& options = {}) {
  s3::resolve_options resolve;
  resolve.endpoint = options.endpoint;
  resolve.endpoint_origin = options.endpoint_origin;
  resolve.region = options.region;
  resolve.region_origin = options.region_origin;
  resolve.profile = options.profile;
  resolve.profile_origin = options.profile_origin;
  if (options.addressing == "path") {
    resolve.addressing = s3::addressing_style::path;
  } else if (options.addressing == "virtual") {
    resolve.addressing = s3::addressing_style::virtual_hosted;
  } else if (!options.addressing.empty()) {
    throw std::invalid_argument("addressing: expected path or virtual, not " +
                                storewatch::detail::quote(options.addressing));
  }
  return s3::resolve_config(location, resolve);
}

/// A store `open_store` opened: one of the kinds this program can open.
/// Both have the same operations: `std::visit` with a generic lambda writes
/// the code once for either.
using any_store = std::variant<local_store, s3::s3_store>;
#else
/// A store `open_store` opened: in a program without the S3 component, a
/// folder store.
using any_store = std::variant<local_store>;
#endif

/// Opens the store at `location` as `user` on `executor`: a `local_store`
/// rooted at the folder `location`, or, for "s3://bucket/prefix", an
/// `s3::s3_store` configured by `s3_store_config`. Throws
/// std::invalid_argument for an s3:// location this program cannot open
/// (built without `storewatch::s3`, a malformed URL or endpoint, missing
/// credentials) or an endpoint given for a folder, and
/// `std::system_error(errc::invalid_user)` for an invalid user name.
inline any_store open_store(const asio::any_io_executor& executor, std::string_view location, std::string user,
                            const open_store_options& options = {}) {
  if (is_s3_location(location)) {
#ifdef STOREWATCH_WITH_S3
    return any_store(std::in_place_type<s3::s3_store>, executor, s3_store_config(location, options),
                     std::move(user));
#else
    throw std::invalid_argument(std::string(location) + ": this program was built without S3 support");
#endif
  }
  for (const auto& [value, origin] : {std::pair{&options.endpoint, &options.endpoint_origin},
                                      std::pair{&options.region, &options.region_origin},
                                      std::pair{&options.profile, &options.profile_origin}}) {
    if (value->empty()) continue;
    throw std::invalid_argument(*origin + " is only for an s3:// store, and the store is the folder " +
                                std::string(location));
  }
  if (!options.addressing.empty()) {
    throw std::invalid_argument("addressing is only for an s3:// store, and the store is the folder " +
                                std::string(location));
  }
  return any_store(std::in_place_type<local_store>, executor, std::filesystem::path(location), std::move(user),
                   options.local);
}

}  // namespace storewatch
