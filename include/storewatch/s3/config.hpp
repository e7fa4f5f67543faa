/// \file
/// Where an S3 store lives and how to reach it: endpoint, region, bucket,
/// key prefix, addressing style, credentials and CA bundle, given explicitly
/// or resolved as the AWS CLI does (see s3/resolve.hpp).
///
/// Names and keys. On AWS's endpoints (host names ending in .amazonaws.com
/// or .amazonaws.com.cn, and no endpoint at all) a bucket name follows AWS's
/// rules: 3-63 characters of a-z 0-9 . -, starting and ending with a letter
/// or digit, no "..", not an IPv4 address. Other endpoints (MinIO, Ceph,
/// Google Cloud Storage, s3rver) get a looser rule that GCS's names fit:
/// 3-222 characters of a-z 0-9 . - _, starting and ending with a letter or
/// digit, no "..", no dot-separated part longer than 63, not an IPv4
/// address; with virtual-hosted addressing the name must also be a host
/// name (no '_'). An object key (the key prefix as a folder, then the
/// store's own names) is at most 1,024 bytes, S3's limit: the key prefix at
/// most 512, and s3_store refuses a store path whose longest key would not
/// fit, naming the path.
//
// Errors are std::invalid_argument whose message starts with the field or
// environment variable at fault ("AWS_ENDPOINT_URL: ...", "bucket: ...").
// No message ever shows a credential, and none shows a URL's user part.
#pragma once

#include <storewatch/detail/text.hpp>
#include <storewatch/s3/sigv4.hpp>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>

namespace storewatch::s3 {

/// How a bucket appears in a request.
enum class addressing_style {
  automatic,       ///< virtual-hosted on AWS's endpoints, except over https for a bucket name with a dot
                   ///< (which AWS's wildcard certificate would not cover); path-style for any other
                   ///< endpoint (MinIO, Ceph, s3rver: `bucket.host` rarely resolves there)
  path,            ///< http://endpoint/bucket/key (MinIO, s3rver and other servers on one host name)
  virtual_hosted,  ///< http://bucket.endpoint/key (AWS's preferred style)
};

/// An S3 service endpoint: `https://s3.eu-west-1.amazonaws.com`,
/// `http://127.0.0.1:9000`, `http://[::1]:9000`.
struct endpoint {
  std::string scheme = "https";  ///< "http" or "https"
  std::string host{};            ///< lower-case DNS name, IPv4 address, or IPv6 address without brackets
  std::uint16_t port = 443;      ///< TCP port; default 443 (`parse_endpoint` gives 80 for http without a port)

  /// True when `host` is an IPv4 or IPv6 address, or "localhost".
  bool is_ip_address_or_localhost() const {
    unsigned char address[16];
    return s3::detail::to_lower_ascii(host) == "localhost" || ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), address) == 1;
  }

  /// True when `host` is one of AWS's: it ends in .amazonaws.com or
  /// .amazonaws.com.cn (or is empty: AWS's endpoint for the region).
  bool is_aws() const {
    const auto h = s3::detail::to_lower_ascii(host);
    return h.empty() || h.ends_with(".amazonaws.com") || h.ends_with(".amazonaws.com.cn");
  }

  /// The Host header value for `host_name` on this endpoint: IPv6
  /// addresses in brackets, ":port" unless it is the scheme's default.
  std::string authority(std::string_view host_name) const {
    std::string text = host_name.find(':') == std::string_view::npos ? std::string(host_name)
                                                                     : '[' + std::string(host_name) + ']';
    if (port != (scheme == "http" ? 80 : 443)) text += ':' + std::to_string(port);
    return text;
  }
  /// The Host header value for requests to `host` itself.
  std::string authority() const { return authority(host); }
};

namespace detail {

inline std::invalid_argument config_error(std::string_view field, const std::string& what) {
  return std::invalid_argument(std::string(field) + ": " + what);
}

/// True for a DNS host name: labels of A-Z a-z 0-9 - _ joined by dots.
inline bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  char previous = '.';
  for (const char c : host) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_';
    if (!word && !(c == '.' && previous != '.')) return false;
    previous = c;
  }
  return true;
}

}  // namespace detail

/// Parses an endpoint URL, `scheme://host[:port][/]`, with `field` (such as
/// "AWS_ENDPOINT_URL") first in any error. A path, query, fragment or user
/// part is rejected.
inline endpoint parse_endpoint(std::string_view url, std::string_view field = "endpoint") {
  using storewatch::detail::quote;
  const auto fail = [&](const std::string& what) { return detail::config_error(field, what); };
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    throw fail("expected http://host[:port] or https://host[:port], got " + quote(url));
  }
  endpoint result;
  result.scheme = s3::detail::to_lower_ascii(url.substr(0, scheme_end));
  if (result.scheme != "http" && result.scheme != "https") {
    throw fail("the scheme must be http or https, not " + quote(url.substr(0, scheme_end)));
  }
  result.port = result.scheme == "http" ? 80 : 443;
  auto rest = url.substr(scheme_end + 3);
  const auto authority_end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, authority_end);
  // A user part may hold a password: say what is wrong, not what it is.
  if (authority.find('@') != std::string_view::npos) throw fail("a user part (user@host) is not supported");
  if (authority_end != std::string_view::npos && rest.substr(authority_end) != "/") {
    throw fail("a path, query or fragment is not supported: " + quote(rest.substr(authority_end)));
  }

  std::string_view port_text;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw fail("missing ']' after the IPv6 address");
    result.host = std::string(authority.substr(1, close - 1));
    unsigned char address[16];
    if (::inet_pton(AF_INET6, result.host.c_str(), address) != 1) {
      throw fail("bad IPv6 address " + quote(result.host));
    }
    const auto after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) throw fail("unexpected text after ']': " + quote(after));
    if (!after.empty()) port_text = after.substr(1);
    if (after == ":") throw fail("empty port");
  } else {
    const auto colon = authority.find(':');
    result.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) throw fail("empty port");
    }
    if (result.host.empty()) throw fail("the host is empty");
    if (!detail::is_host_name(result.host)) throw fail("bad host name " + quote(result.host));
  }
  result.host = s3::detail::to_lower_ascii(result.host);
  if (!port_text.empty()) {
    std::uint64_t port = 0;
    if (!storewatch::detail::parse_decimal(port_text, port) || port == 0 || port > 65535) {
      throw fail("the port must be 1-65535, not " + quote(port_text));
    }
    result.port = static_cast<std::uint16_t>(port);
  }
  return result;
}

/// AWS's S3 endpoint for `region`: `%https://s3.<region>.amazonaws.com`.
inline endpoint aws_endpoint(std::string_view region) {
  return endpoint{"https", "s3." + std::string(region) + ".amazonaws.com", 443};
}

/// The bucket and key prefix of a store URL.
struct store_location {
  std::string bucket;  ///< the bucket name: "my-bucket" in s3://my-bucket/logs
  std::string prefix;  ///< as written after the bucket: "", "logs", "logs/"
};

namespace detail {

/// The bucket name rules of an endpoint (see the file comment).
enum class bucket_rules {
  aws,         ///< AWS's: 3-63 characters of a-z 0-9 . -
  other,       ///< other endpoints: 3-222 characters of a-z 0-9 . - _, parts of at most 63
  host_label,  ///< other endpoints with virtual-hosted addressing: as `other`, without '_'
};

/// Checks an S3 bucket name by `rules`: also, always, starting and ending
/// with a letter or digit, no "..", not an IPv4 address.
inline void check_bucket(std::string_view bucket, std::string_view field, bucket_rules rules = bucket_rules::aws) {
  using storewatch::detail::quote;
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  const bool aws = rules == bucket_rules::aws;
  const std::size_t longest = aws ? 63 : 222;
  bool ok = bucket.size() >= 3 && bucket.size() <= longest && alnum(bucket.front()) && alnum(bucket.back()) &&
            bucket.find("..") == std::string_view::npos;
  std::size_t part = 0;
  for (const char c : bucket) {
    ok = ok && (alnum(c) || c == '.' || c == '-' || (c == '_' && rules == bucket_rules::other));
    part = c == '.' ? 0 : part + 1;
    ok = ok && part <= 63;
  }
  unsigned char address[4];
  if (ok && ::inet_pton(AF_INET, std::string(bucket).c_str(), address) == 1) ok = false;
  if (!ok) {
    const std::string rule =
        aws ? "on AWS use 3-63 characters of a-z 0-9 . -"
            : rules == bucket_rules::other
                  ? "use 3-222 characters of a-z 0-9 . - _ (at most 63 between dots)"
                  : "with virtual-hosted addressing use 3-222 characters of a-z 0-9 . - (at most 63 between dots)";
    throw config_error(field, "bad bucket name " + quote(bucket) + ": " + rule +
                                  ", starting and ending with a letter or digit");
  }
}

/// Checks a key prefix: UTF-8 without control characters, not starting with
/// '/', no empty folder names ("a//b").
inline void check_prefix(std::string_view prefix, std::string_view field) {
  using storewatch::detail::quote;
  if (!storewatch::detail::is_valid_utf8(prefix) || has_control_character(prefix) || prefix.starts_with('/') ||
      prefix.find("//") != std::string_view::npos || prefix.size() > 512) {
    throw config_error(field, "bad key prefix " + quote(prefix) +
                                  ": use up to 512 bytes of UTF-8 without control characters, a leading '/' or '//'");
  }
}

/// Checks a region name: 1-64 characters of a-z A-Z 0-9 - _ (it goes into
/// host names and the credential scope).
inline void check_region(std::string_view region, std::string_view field) {
  bool ok = !region.empty() && region.size() <= 64;
  for (const char c : region) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
  }
  if (!ok) {
    throw config_error(field, "bad region " + storewatch::detail::quote(region) +
                                  ": use 1-64 characters of a-z A-Z 0-9 - _");
  }
}

/// Checks one credential without ever showing it.
inline void check_credential(std::string_view value, std::string_view field, bool required, bool id) {
  if (value.empty()) {
    if (required) throw config_error(field, "is empty");
    return;
  }
  if (has_control_character(value)) throw config_error(field, "has a control character");
  if (id && value.find_first_of(" \t/,") != std::string_view::npos) {
    throw config_error(field, "has a blank, '/' or ','");
  }
}

}  // namespace detail

/// Parses a store URL, `s3://bucket` or `s3://bucket/prefix`. The prefix is
/// taken as written, without percent-decoding (as the AWS CLI does). The
/// bucket name is checked by the loosest rules (`validate` applies the
/// endpoint's).
inline store_location parse_store_url(std::string_view url) {
  constexpr std::string_view field = "store URL";
  constexpr std::string_view scheme = "s3://";
  if (!url.starts_with(scheme)) {
    throw detail::config_error(field, "expected s3://bucket[/prefix], got " + storewatch::detail::quote(url));
  }
  const auto rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  store_location location;
  location.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) location.prefix = std::string(rest.substr(slash + 1));
  detail::check_bucket(location.bucket, field, detail::bucket_rules::other);
  detail::check_prefix(location.prefix, field);
  return location;
}

/// Where a client gets credentials that are not fixed keys: the sources the
/// AWS CLI tries after explicit keys, as the configuration resolver found
/// them. The client turns one into credentials when it needs them, and
/// again before temporary ones expire.
struct credential_source {
  /// Which source.
  enum class kind {
    keys,               ///< `config::credentials`, fixed
    process,            ///< `credential_process`: run `command`, read its JSON from stdout
    web_identity,       ///< STS AssumeRoleWithWebIdentity for `role_arn` with the token in `token_file`
    container,          ///< ECS/EKS container credentials from `uri`, with `authorization`
                        ///< or the content of `authorization_file` as the Authorization header
    instance_metadata,  ///< EC2 instance metadata (IMDSv2) at `uri`
  };
  kind what = kind::keys;           ///< the source
  std::string origin{};             ///< what messages name as its origin: "profile 'dev' in /root/.aws/config"
  std::string command{};            ///< process: the command line, run by /bin/sh
  std::string role_arn{};           ///< web_identity: the role to assume
  std::string token_file{};         ///< web_identity: the file holding the OIDC token
  std::string session_name{};       ///< web_identity: the role session name
  std::string uri{};                ///< container: the full URI; instance_metadata: the endpoint
                                    ///< (http://169.254.169.254); web_identity: the STS endpoint
  std::string authorization{};      ///< container: the Authorization header value
  std::string authorization_file{};  ///< container: a file holding it (read at each refresh)
};

/// How to reach an S3 store.
struct config {
  /// The service endpoint; an empty host means AWS's endpoint for `region`.
  s3::endpoint endpoint{};
  /// The store's region, for signing and for AWS's endpoint when `endpoint.host` is empty; default "us-east-1".
  std::string region = "us-east-1";
  /// The bucket name: on AWS 3-63 characters of a-z 0-9 . -, elsewhere looser (see the file comment).
  std::string bucket{};
  /// Every key of the store starts with this, as a folder: "logs" and
  /// "logs/" both give keys "logs/...". Empty for the whole bucket.
  std::string prefix{};
  /// Path or virtual-hosted style; default automatic: virtual-hosted on AWS, path elsewhere
  /// (see `effective_addressing`).
  addressing_style addressing = addressing_style::automatic;
  /// The keys to sign requests with, when `credentials_from` is `keys`.
  s3::credentials credentials{};
  /// Where the keys come from; default: `credentials` as given.
  credential_source credentials_from{};
  /// A file of PEM CA certificates to verify TLS peers with instead of the
  /// system's store (AWS_CA_BUNDLE, `ca_bundle`); empty: the system's.
  std::string ca_bundle{};
};

/// The endpoint `c` sends its requests to: `c.endpoint`, or AWS's endpoint
/// for `c.region` when `c.endpoint.host` is empty.
inline endpoint effective_endpoint(const config& c) {
  return c.endpoint.host.empty() ? aws_endpoint(c.region) : c.endpoint;
}

/// `c.addressing` with `automatic` resolved to path or virtual-hosted style.
inline addressing_style effective_addressing(const config& c) {
  if (c.addressing != addressing_style::automatic) return c.addressing;
  const auto e = effective_endpoint(c);
  if (!e.is_aws()) return addressing_style::path;
  if (e.scheme == "https" && c.bucket.find('.') != std::string::npos) return addressing_style::path;
  return addressing_style::virtual_hosted;
}

/// Checks `c`, naming the field at fault ("bucket: ...",
/// "credentials.secret_access_key: ..."). Throws std::invalid_argument.
inline void validate(const config& c) {
  if (!c.endpoint.host.empty()) {
    if (c.endpoint.scheme != "http" && c.endpoint.scheme != "https") {
      throw detail::config_error("endpoint", "the scheme must be http or https, not " +
                                                 storewatch::detail::quote(c.endpoint.scheme));
    }
    if (c.endpoint.port == 0) throw detail::config_error("endpoint", "the port must be 1-65535, not 0");
    // The host follows the same rules as in a URL.
    parse_endpoint(c.endpoint.scheme + "://" + c.endpoint.authority(), "endpoint");
  }
  detail::check_region(c.region, "region");
  const auto rules = effective_endpoint(c).is_aws()                                   ? detail::bucket_rules::aws
                     : effective_addressing(c) == addressing_style::virtual_hosted ? detail::bucket_rules::host_label
                                                                                     : detail::bucket_rules::other;
  detail::check_bucket(c.bucket, "bucket", rules);
  detail::check_prefix(c.prefix, "prefix");
  if (c.addressing == addressing_style::virtual_hosted && effective_endpoint(c).is_ip_address_or_localhost()) {
    throw detail::config_error("addressing", "virtual-hosted style needs an endpoint with a DNS name, "
                                             "not an IP address or localhost");
  }
  if (c.credentials_from.what != credential_source::kind::keys) return;
  detail::check_credential(c.credentials.access_key_id, "credentials.access_key_id", true, true);
  detail::check_credential(c.credentials.secret_access_key, "credentials.secret_access_key", true, false);
  detail::check_credential(c.credentials.session_token, "credentials.session_token", false, false);
}

/// The longest object key S3 accepts, in bytes.
inline constexpr std::size_t max_key_bytes = 1024;

/// The prefix of every key of the store: "" or a folder ending in '/'.
inline std::string key_prefix(const config& c) {
  if (c.prefix.empty() || c.prefix.ends_with('/')) return c.prefix;
  return c.prefix + '/';
}

/// The S3 key of the store's object `name`: `key_prefix(c)` + `name`.
inline std::string object_key(const config& c, std::string_view name) { return key_prefix(c) + std::string(name); }

/// The Host header and path of a request.
struct request_target {
  std::string host;  ///< "bucket.s3.eu-west-1.amazonaws.com", "127.0.0.1:9000", "[::1]:9000"
  std::string path;  ///< not URI-encoded: give it to `request::path` as it is
};

/// Where a request for the bucket itself (such as a listing) goes. `c`
/// should have passed `validate`.
inline request_target bucket_target(const config& c) {
  const auto e = effective_endpoint(c);
  if (effective_addressing(c) == addressing_style::path) return {e.authority(), '/' + c.bucket};
  return {e.authority(c.bucket + '.' + e.host), "/"};
}

/// Where a request for the object with S3 key `key` (see `object_key`) goes.
/// Throws std::invalid_argument for an empty key or one longer than
/// `max_key_bytes`.
inline request_target object_target(const config& c, std::string_view key) {
  if (key.empty()) throw detail::config_error("key", "is empty");
  if (key.size() > max_key_bytes) {
    throw detail::config_error("key", storewatch::detail::quote(key, 60) + " is " + std::to_string(key.size()) +
                                          " bytes; S3 allows at most " + std::to_string(max_key_bytes));
  }
  auto target = bucket_target(c);
  if (!target.path.ends_with('/')) target.path += '/';
  target.path += key;
  return target;
}

/// The URL to send a request for `target` with `query` to, encoded as the
/// signer encodes them, so that what is sent is what was signed.
inline std::string target_url(const config& c, const request_target& target,
                              const std::vector<query_parameter>& query = {}) {
  auto url = effective_endpoint(c).scheme + "://" + target.host + encode_path(target.path);
  if (!query.empty()) url += '?' + canonical_query(query);
  return url;
}

namespace detail {

/// The value of environment variable `name`; unset and empty are the same.
inline std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace detail

/// Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (for
/// temporary credentials) AWS_SESSION_TOKEN. Throws std::invalid_argument
/// naming the variable when the key id or secret is unset or empty, or one
/// is malformed. Other credential sources (~/.aws, instance roles) are not read.
inline credentials credentials_from_environment() {
  credentials result{detail::environment("AWS_ACCESS_KEY_ID"), detail::environment("AWS_SECRET_ACCESS_KEY"),
                     detail::environment("AWS_SESSION_TOKEN")};
  const auto check = [&](const std::string& value, std::string_view name, bool required, bool id) {
    if (required && value.empty()) throw detail::config_error(name, "not set (S3 needs an access key and its secret)");
    detail::check_credential(value, name, required, id);
  };
  check(result.access_key_id, "AWS_ACCESS_KEY_ID", true, true);
  check(result.secret_access_key, "AWS_SECRET_ACCESS_KEY", true, false);
  check(result.session_token, "AWS_SESSION_TOKEN", false, false);
  return result;
}

}  // namespace storewatch::s3

// resolve_config and config_from_environment build on the above.
#include <storewatch/s3/resolve.hpp>
