/// \file
/// AWS Signature Version 4 (SigV4) for S3: the canonical request, the string
/// to sign, the signing key and the headers that make a request signed.
//
// The steps, from the AWS documentation ("Create a signed AWS API request"):
//   1. canonical request: method, URI-encoded path, sorted encoded query,
//      sorted lower-case headers with trimmed values, their names, payload hash
//   2. string to sign: "AWS4-HMAC-SHA256", the time, the credential scope
//      (date/region/service/aws4_request) and the SHA-256 of step 1
//   3. signing key: HMAC-SHA256 chained over the date, region, service and
//      "aws4_request", starting from "AWS4" + the secret access key
//   4. signature: hex HMAC-SHA256 of step 2 with the key of step 3
//
// S3 differs from other services in two ways this signer follows: the path
// is encoded once and never normalized ("a//b" and "a/./b" are distinct
// keys), and requests carry an X-Amz-Content-Sha256 header.
#pragma once

#include <storewatch/detail/text.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <ctime>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace storewatch::s3 {

/// An HTTP header: name and value.
using header = std::pair<std::string, std::string>;
/// A query parameter: name and value, neither URI-encoded.
using query_parameter = std::pair<std::string, std::string>;

/// The hex SHA-256 of an empty payload.
inline constexpr std::string_view empty_payload_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The payload hash of a request whose body is not signed.
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";

/// An access key and its secret, plus the session token of temporary
/// credentials. Deliberately not printable (there is no `operator<<`): no
/// part of it is ever put into a log line or an error message.
struct credentials {
  std::string access_key_id;      ///< the public key id, sent in the Authorization header
  std::string secret_access_key;  ///< the secret that derives the signing key; never sent
  std::string session_token;      ///< empty for long-term credentials
};

/// What SigV4 signs of an HTTP request.
struct request {
  /// The HTTP method, signed as given ("GET", "PUT", ...); default "GET".
  std::string method = "GET";
  /// The path as the object store names it, not URI-encoded
  /// ("/bucket/a b.txt"). The signer encodes it with `encode_path`, and the
  /// request must go on the wire with that same encoding. Never normalized.
  std::string path = "/";
  /// Query parameters, not URI-encoded, in any order; a name may repeat. A
  /// parameter without a value ("?uploads") has an empty value.
  std::vector<query_parameter> query{};
  /// The headers to sign, in any order; names are case-insensitive and may
  /// repeat (their values are joined with ',' in order). Must include Host.
  /// Headers not listed here may still be sent, unsigned.
  std::vector<header> headers{};
  /// Hex SHA-256 of the body (`sha256_hex(body)`), or `unsigned_payload`.
  std::string payload_hash = std::string(empty_payload_sha256);
};

/// Where and when a request is signed.
struct signing_parameters {
  /// The region in the credential scope; default "us-east-1".
  std::string region = "us-east-1";
  /// The service in the credential scope; default "s3".
  std::string service = "s3";
  /// The signing time; S3 rejects requests more than 15 minutes off its clock.
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();
  /// Add and sign X-Amz-Content-Sha256 (S3 requires it; other services,
  /// and the generic SigV4 test suite, do not use it).
  bool content_sha256_header = true;
};

/// A signed request: the headers to add, and the intermediate texts (compare
/// them with the CanonicalRequest and StringToSign of an S3
/// SignatureDoesNotMatch error to see what differed).
///
/// With a session token, `canonical_request` and `headers` hold the token:
/// never log them as they are.
struct signing_result {
  std::string canonical_request;  ///< the canonical request that was signed (step 1)
  std::string string_to_sign;     ///< the string to sign (step 2), whose HMAC is the signature
  std::string authorization;      ///< the value of the Authorization header
  /// The headers to add to the request, in this order and as far as the
  /// request lacks them: X-Amz-Date, X-Amz-Content-Sha256,
  /// X-Amz-Security-Token; then always Authorization.
  std::vector<header> headers;
};

/// A SHA-256 or HMAC-SHA256 value.
using digest = std::array<unsigned char, 32>;

/// Lower-case hex of `bytes`.
inline std::string to_hex(const digest& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  text.reserve(bytes.size() * 2);
  for (const unsigned char b : bytes) {
    text += digits[b >> 4];
    text += digits[b & 0xF];
  }
  return text;
}

/// SHA-256 of `data`. Throws std::runtime_error if OpenSSL fails.
inline digest sha256(std::string_view data) {
  digest out{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != out.size()) {
    throw std::runtime_error("sigv4: SHA-256 failed in OpenSSL");
  }
  return out;
}

/// Lower-case hex SHA-256 of `data`: the payload hash of a body.
inline std::string sha256_hex(std::string_view data) { return to_hex(sha256(data)); }

/// HMAC-SHA256 of `data` under `key`. Throws std::runtime_error if OpenSSL
/// fails (the message never shows the key).
inline digest hmac_sha256(std::string_view key, std::string_view data) {
  digest out{};
  unsigned int length = 0;
  if (key.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &length) == nullptr ||
      length != out.size()) {
    throw std::runtime_error("sigv4: HMAC-SHA256 failed in OpenSSL");
  }
  return out;
}

/// `key` as the key argument of `hmac_sha256`.
inline std::string_view as_key(const digest& key) noexcept {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

/// `text` percent-encoded the SigV4 way: every byte but A-Z a-z 0-9 - _ . ~
/// becomes %XX (upper-case hex); '/' too unless `keep_slash`.
inline std::string uri_encode(std::string_view text, bool keep_slash = false) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 0xF];
    }
  }
  return out;
}

/// A raw path as it goes into the canonical request and on the wire: each
/// byte encoded but '/', nothing normalized.
inline std::string encode_path(std::string_view path) { return uri_encode(path, true); }

/// The canonical query string: names and values encoded, sorted by encoded
/// name and then by encoded value, joined as "a=1&b=&c=3". Also the query
/// to send, so that what is sent is what was signed.
inline std::string canonical_query(const std::vector<query_parameter>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) encoded.emplace_back(uri_encode(name), uri_encode(value));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

/// `time` in the X-Amz-Date form, "20150830T123600Z" (UTC).
inline std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  char text[32];
  if (::gmtime_r(&seconds, &utc) == nullptr || std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc) != 16) {
    throw std::invalid_argument("sigv4: signing time out of range");
  }
  return text;
}

namespace detail {

inline bool is_space_or_tab(char c) noexcept { return c == ' ' || c == '\t'; }

inline std::string to_lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// A header value as SigV4 signs it: leading and trailing blanks removed,
/// each inner run of blanks made one space.
inline std::string trim_all(std::string_view value) {
  std::string out;
  bool blank = false;
  for (const char c : value) {
    if (is_space_or_tab(c)) {
      blank = !out.empty();
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

/// The canonical (lower-case, sorted, repeats joined) form of `headers`.
inline std::vector<header> canonical_headers(const std::vector<header>& headers) {
  std::vector<header> lowered;
  lowered.reserve(headers.size());
  for (const auto& [name, value] : headers) lowered.emplace_back(to_lower_ascii(name), trim_all(value));
  // Stable: the values of a repeated name stay in the order they were given.
  std::stable_sort(lowered.begin(), lowered.end(), [](const header& a, const header& b) { return a.first < b.first; });
  std::vector<header> merged;
  for (auto& [name, value] : lowered) {
    if (!merged.empty() && merged.back().first == name) {
      merged.back().second += ',';
      merged.back().second += value;
    } else {
      merged.emplace_back(std::move(name), std::move(value));
    }
  }
  return merged;
}

/// The value of header `lower_name` in `headers`, or nullptr.
inline const std::string* find_header(const std::vector<header>& headers, std::string_view lower_name) {
  for (const auto& h : headers) {
    if (to_lower_ascii(h.first) == lower_name) return &h.second;
  }
  return nullptr;
}

/// True when `text` has a control character (CR, LF, NUL, ...), which would
/// split or end a header line.
inline bool has_control_character(std::string_view text) noexcept {
  return std::any_of(text.begin(), text.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7F;
  });
}

}  // namespace detail

/// The canonical request of `r`, signing every header in `r.headers` (so
/// add X-Amz-Date and the like first; `sign` does). Throws
/// std::invalid_argument for an empty method, a path not starting with '/',
/// a header name that is empty or has blanks, ':' or control characters,
/// or a header value with control characters.
inline std::string canonical_request(const request& r) {
  if (r.method.empty() || detail::has_control_character(r.method) || r.method.find(' ') != std::string::npos) {
    throw std::invalid_argument("sigv4: the request method is empty or has blanks or control characters");
  }
  if (!r.path.starts_with('/')) {
    throw std::invalid_argument("sigv4: the request path must start with '/': " + storewatch::detail::quote(r.path));
  }
  for (const auto& [name, value] : r.headers) {
    const auto bad = [&](char c) { return detail::is_space_or_tab(c) || c == ':'; };
    if (name.empty() || detail::has_control_character(name) || std::any_of(name.begin(), name.end(), bad)) {
      throw std::invalid_argument("sigv4: bad header name " + storewatch::detail::quote(name));
    }
    // The value is not shown: it may be a session token.
    if (detail::has_control_character(value)) {
      throw std::invalid_argument("sigv4: the value of header " + storewatch::detail::quote(name) +
                                  " has a control character (fold multi-line values first)");
    }
  }
  const auto headers = detail::canonical_headers(r.headers);
  std::string text = r.method + '\n' + encode_path(r.path) + '\n' + canonical_query(r.query) + '\n';
  std::string names;
  for (const auto& [name, value] : headers) {
    text += name + ':' + value + '\n';
    if (!names.empty()) names += ';';
    names += name;
  }
  text += '\n' + names + '\n' + r.payload_hash;
  return text;
}

/// "20150830/us-east-1/s3/aws4_request" for `date` (YYYYMMDD).
inline std::string credential_scope(std::string_view date, std::string_view region, std::string_view service) {
  return std::string(date) + '/' + std::string(region) + '/' + std::string(service) + "/aws4_request";
}

/// The string to sign for `canonical` under `parameters`.
inline std::string string_to_sign(std::string_view canonical, const signing_parameters& parameters) {
  const auto date_time = amz_date(parameters.time);
  return "AWS4-HMAC-SHA256\n" + date_time + '\n' +
         credential_scope(std::string_view(date_time).substr(0, 8), parameters.region, parameters.service) + '\n' +
         sha256_hex(canonical);
}

/// The signing key for `date` (YYYYMMDD), `region` and `service`. It is as
/// sensitive as the secret for that day, region and service.
inline digest signing_key(std::string_view secret_access_key, std::string_view date, std::string_view region,
                          std::string_view service) {
  std::string first_key = "AWS4";
  first_key += secret_access_key;
  const auto date_key = hmac_sha256(first_key, date);
  OPENSSL_cleanse(first_key.data(), first_key.size());
  const auto region_key = hmac_sha256(as_key(date_key), region);
  const auto service_key = hmac_sha256(as_key(region_key), service);
  return hmac_sha256(as_key(service_key), "aws4_request");
}

/// Signs `r` with `who` under `parameters`. Throws std::invalid_argument,
/// naming the field but never showing a credential, when the credentials
/// lack an access key id or secret, the region or service is empty, `r` has
/// no Host header, `r` already has an X-Amz-Date, X-Amz-Content-Sha256 or
/// X-Amz-Security-Token header that disagrees with `parameters`, its payload
/// hash or `who`, or `canonical_request` rejects `r`.
inline signing_result sign(const request& r, const credentials& who, const signing_parameters& parameters) {
  if (who.access_key_id.empty()) throw std::invalid_argument("sigv4: credentials: the access key id is empty");
  // It goes into the Authorization header: "Credential=<id>/<scope>, ...".
  if (detail::has_control_character(who.access_key_id) ||
      who.access_key_id.find_first_of(" \t/,") != std::string::npos) {
    throw std::invalid_argument("sigv4: credentials: the access key id has a blank, '/', ',' or control character");
  }
  if (who.secret_access_key.empty()) throw std::invalid_argument("sigv4: credentials: the secret access key is empty");
  if (parameters.region.empty()) throw std::invalid_argument("sigv4: the region is empty");
  if (parameters.service.empty()) throw std::invalid_argument("sigv4: the service is empty");
  if (detail::find_header(r.headers, "host") == nullptr) {
    throw std::invalid_argument("sigv4: the request has no Host header");
  }

  signing_result result;
  auto to_sign = r;
  // Adds header `name` = `value` unless the request has it; if it has it,
  // the two must agree (the message names the header, never its value).
  const auto add = [&](std::string_view name, const std::string& value, std::string_view what) {
    if (const auto* given = detail::find_header(r.headers, detail::to_lower_ascii(name))) {
      if (detail::trim_all(*given) != value) {
        throw std::invalid_argument("sigv4: the request's " + std::string(name) + " header differs from " +
                                    std::string(what));
      }
      return;
    }
    to_sign.headers.emplace_back(name, value);
    result.headers.emplace_back(name, value);
  };
  const auto date_time = amz_date(parameters.time);
  add("X-Amz-Date", date_time, "the signing time");
  if (parameters.content_sha256_header) add("X-Amz-Content-Sha256", r.payload_hash, "the payload hash");
  if (!who.session_token.empty()) add("X-Amz-Security-Token", who.session_token, "the session token");

  result.canonical_request = canonical_request(to_sign);
  result.string_to_sign = string_to_sign(result.canonical_request, parameters);
  const auto date = std::string_view(date_time).substr(0, 8);
  const auto key = signing_key(who.secret_access_key, date, parameters.region, parameters.service);
  const auto signature = to_hex(hmac_sha256(as_key(key), result.string_to_sign));

  std::string signed_names;
  for (const auto& [name, value] : detail::canonical_headers(to_sign.headers)) {
    if (!signed_names.empty()) signed_names += ';';
    signed_names += name;
  }
  result.authorization = "AWS4-HMAC-SHA256 Credential=" + who.access_key_id + '/' +
                         credential_scope(date, parameters.region, parameters.service) +
                         ", SignedHeaders=" + signed_names + ", Signature=" + signature;
  result.headers.emplace_back("Authorization", result.authorization);
  return result;
}

}  // namespace storewatch::s3
