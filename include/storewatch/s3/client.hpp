/// \file
/// A client for one S3 store (bucket and key prefix): signed GET, PUT,
/// DELETE, HEAD and ListObjectsV2 requests, retried with backoff, as
/// coroutines on the caller's executor.
//
// Each attempt is signed anew (SigV4 signs the time). Errors never show a
// credential, the Authorization header, the string to sign or the canonical
// request: messages are built from the method, bucket and key, the HTTP
// status, and the Code and Message of the server's error document (with any
// credential that appears in them replaced by "<redacted>").
#pragma once

#include <storewatch/backoff.hpp>
#include <storewatch/detail/config.hpp>
#include <storewatch/detail/files.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/diagnostics.hpp>
#include <storewatch/error.hpp>
#include <storewatch/s3/config.hpp>
#include <storewatch/s3/credentials.hpp>
#include <storewatch/s3/http.hpp>
#include <storewatch/s3/sigv4.hpp>
#include <storewatch/s3/xml.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <iomanip>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace storewatch::s3 {

/// Settings of a `basic_client`.
struct client_options {
  /// Timeouts, fixed addresses and the connection limit of the transport.
  http_options http{};
  /// The delays between attempts of a request (jittered, growing, capped at
  /// `max`, which also caps a server's Retry-After).
  backoff_policy retry{std::chrono::milliseconds{100}, std::chrono::milliseconds{5'000}, 2.0, 0.2};
  /// Most attempts of one request, the first included; at least 1.
  int max_attempts = 8;
  /// Longest time from the first attempt of a request until the client
  /// gives up on it: no retry starts after it, and each attempt's timeout is
  /// cut to what is left of it. Keep it well under 30 s: the journal
  /// tolerates records that land up to 30 s late. Not for the streamed
  /// requests of `put_file` and `get_to_file` (see there).
  std::chrono::milliseconds retry_budget{20'000};
  /// `put_file` uploads a file larger than this in parts (multipart
  /// upload), one no larger in one streamed PUT.
  std::uint64_t multipart_threshold = 16ull << 20;
  /// The size of each part of a multipart upload but the last. S3 wants at
  /// least 5 MiB (smaller only for servers that accept it, as tests do) and
  /// at most 10,000 parts: for a file over 10,000 parts the part size grows.
  std::uint64_t part_size = 16ull << 20;
  /// How temporary credentials (`config::credentials_from` other than
  /// `keys`) are fetched and refreshed.
  credential_options credentials{};
};

/// One ListObjectsV2 request. Names are relative to the store's key prefix.
struct list_request {
  std::string prefix{};              ///< only names starting with this
  std::string start_after{};         ///< only names after this (ignored by s3rver with a continuation token)
  std::string continuation_token{};  ///< `list_page::next_continuation_token` of the previous page
  std::string delimiter{};           ///< e.g. "/": group names into common prefixes
  int max_keys = 1000;               ///< most objects in the page (0-1000; S3 caps it at 1000)
};

/// Requests sent by a client, for benchmarks ("requests per poll"). Every
/// attempt counts under its method, retries included.
struct request_counts {
  std::uint64_t get = 0;       ///< GET object requests
  std::uint64_t put = 0;       ///< PUT object requests
  std::uint64_t remove = 0;    ///< DELETE object requests
  std::uint64_t head = 0;      ///< HEAD object requests
  std::uint64_t list = 0;      ///< ListObjectsV2 requests
  std::uint64_t retries = 0;   ///< attempts that were retries
  std::uint64_t failures = 0;  ///< operations that threw (cancellation not counted)
  std::uint64_t multipart = 0;  ///< Create-, Complete- and AbortMultipartUpload requests (parts count as PUT)
  /// DeleteObjects requests (`remove_many`); last, so that aggregate
  /// initialisers keep their meaning.
  std::uint64_t remove_batches = 0;
};

namespace detail {

/// What a test's fault injector makes an attempt end with instead of its
/// real outcome: a transport error, or (when `transport` is empty) a response.
struct injected_outcome {
  std::error_code transport{};  ///< e.g. `make_http_error(CURLE_COULDNT_CONNECT)`
  http_response response{};     ///< used when `transport` is empty
};

#ifdef STOREWATCH_TESTING
/// A test seam, as detail/sys.hpp's fault injector is for system calls,
/// compiled only with STOREWATCH_TESTING (the library's test programs):
/// when one is installed, every attempt of every client asks it, and an
/// answer stands in for the attempt's outcome, which is then retried or
/// reported as a real one would be.
class request_fault_injector {
 public:
  using outcome = injected_outcome;
  virtual ~request_fault_injector() = default;
  /// Called before each attempt of `method` ("GET", "PUT", "DELETE",
  /// "HEAD"; a listing is "LIST"; a DeleteObjects request is "POST" on
  /// "?delete=<number of keys>") on object `name` (relative to the key
  /// prefix; the listed prefix for a LIST). An answer replaces the attempt:
  /// nothing is sent.
  virtual std::optional<outcome> before(std::string_view /*method*/, std::string_view /*name*/) {
    return std::nullopt;
  }
  /// Called after an attempt was sent and answered with `response` (not
  /// after one `before` replaced, nor after a transport failure or
  /// cancellation). An answer replaces the response: "the request was
  /// executed, its response lost" is a transport error such as
  /// `make_http_error(CURLE_RECV_ERROR)`.
  virtual std::optional<outcome> after(std::string_view /*method*/, std::string_view /*name*/,
                                       const http_response& /*response*/) {
    return std::nullopt;
  }
};

/// The installed injector, or null.
inline std::atomic<request_fault_injector*> request_faults{nullptr};

/// What the installed injector makes of an attempt, if anything.
inline std::optional<injected_outcome> inject(std::string_view method, std::string_view name) {
  auto* const faults = request_faults.load();
  return faults ? faults->before(method, name) : std::nullopt;
}

/// What the installed injector makes of the response to an attempt, if anything.
inline std::optional<injected_outcome> inject_after(std::string_view method, std::string_view name,
                                                    const http_response& response) {
  auto* const faults = request_faults.load();
  return faults ? faults->after(method, name, response) : std::nullopt;
}
#else
inline std::optional<injected_outcome> inject(std::string_view, std::string_view) { return std::nullopt; }
inline std::optional<injected_outcome> inject_after(std::string_view, std::string_view, const http_response&) {
  return std::nullopt;
}
#endif

/// What to do after one attempt.
enum class attempt_verdict {
  done,   ///< the response is final: hand it to the caller (whatever its status)
  retry,  ///< a transient failure: try again after a delay
  fail,   ///< a transport failure that retrying would not fix
};

/// The verdict on an attempt, and why.
struct attempt_outcome {
  attempt_verdict verdict = attempt_verdict::done;
  std::string reason{};  ///< for retry and fail: what went wrong, for an error message
  std::optional<std::chrono::milliseconds> retry_after{};  ///< the server's Retry-After, if any
};

/// True for the curl codes of a connection that failed, broke or timed out:
/// worth another attempt.
inline bool is_transient_transport_error(int curl_code) noexcept {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

/// True for a response saying the credentials it was signed with expired
/// or are not (or no longer) valid: HTTP 403 ExpiredToken, InvalidToken or
/// ExpiredTokenException. Temporary credentials are then fetched anew.
inline bool is_expired_credentials(const http_response& response) {
  if (response.status != 403) return false;
  const auto error = parse_error_body(response.body);
  return error && (error->code == "ExpiredToken" || error->code == "InvalidToken" ||
                   error->code == "ExpiredTokenException");
}

/// True for the HTTP statuses that mean "try again": 429, 500, 502, 503, 504.
inline bool is_retryable_status(long status) noexcept {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/// True for the S3 error codes that mean "try again" whatever the status.
/// (ConditionalRequestConflict: AWS's 409 for a conditional write that raced
/// another; the retry then gets the real answer.)
inline bool is_retryable_s3_code(std::string_view code) noexcept {
  return code == "SlowDown" || code == "InternalError" || code == "RequestTimeout" ||
         code == "ConditionalRequestConflict";
}

/// The delta-seconds of a Retry-After value ("1", " 30 "); std::nullopt
/// for an HTTP-date (not parsed: the backoff delay applies) or anything else.
inline std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  std::uint64_t seconds = 0;
  if (value.empty() || value.size() > 9 || !storewatch::detail::parse_decimal(value, seconds)) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds) * 1000);
}

/// The time an HTTP-date in the preferred form ("Sun, 06 Nov 1994 08:49:37
/// GMT", as servers send in Date) or an ISO 8601 UTC time
/// ("1994-11-06T08:49:37Z", fractions of a second ignored, as S3's
/// ServerTime) names; std::nullopt for anything else.
inline std::optional<std::chrono::system_clock::time_point> parse_server_time(std::string_view text) {
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto number = [&](std::size_t at, std::size_t digits, int& out) {
    if (at + digits > text.size()) return false;
    std::uint64_t value = 0;
    if (!storewatch::detail::parse_decimal(text.substr(at, digits), value)) return false;
    out = static_cast<int>(value);
    return true;
  };
  const auto is = [&](std::size_t at, char c) { return at < text.size() && text[at] == c; };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() == 29 && text.substr(25) == " GMT" && is(3, ',') && is(4, ' ') && is(7, ' ') && is(11, ' ') &&
      is(16, ' ') && is(19, ':') && is(22, ':')) {
    const auto name = text.substr(8, 3);
    for (int m = 0; m < 12; ++m) month = months[m] == name ? m + 1 : month;
    if (!number(5, 2, day) || !number(12, 4, year) || !number(17, 2, hour) || !number(20, 2, minute) ||
        !number(23, 2, second)) {
      return std::nullopt;
    }
  } else if (text.size() >= 20 && text.back() == 'Z' && is(4, '-') && is(7, '-') && is(10, 'T') && is(13, ':') &&
             is(16, ':') && (text.size() == 20 || is(19, '.'))) {
    if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day) || !number(11, 2, hour) ||
        !number(14, 2, minute) || !number(17, 2, second)) {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  return std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

/// How far a server's clock may be from ours (signing time) before a 403
/// that is not RequestTimeTooSkewed is taken for one: S3 allows 15 minutes.
inline constexpr std::chrono::minutes clock_skew_limit{5};

/// The clock offset (server minus local) to sign with after `response`,
/// when it is a 403 that a skewed clock explains: RequestTimeTooSkewed
/// (the server's time from its ServerTime, else its Date header), or any
/// other 403 whose Date is more than `clock_skew_limit` from `local_now` +
/// `offset` (the time the client signs with). std::nullopt otherwise, or
/// when the server gives no time it can read.
inline std::optional<std::chrono::milliseconds> clock_correction(const http_response& response,
                                                                 std::chrono::system_clock::time_point local_now,
                                                                 std::chrono::milliseconds offset) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (response.status != 403) return std::nullopt;
  const auto error = parse_error_body(response.body);
  const bool skewed = error && error->code == "RequestTimeTooSkewed";
  std::optional<std::chrono::system_clock::time_point> server;
  if (skewed && !error->server_time.empty()) server = parse_server_time(error->server_time);
  if (const auto* date = response.header("date"); !server && date) server = parse_server_time(*date);
  if (!server) return std::nullopt;
  const auto corrected = duration_cast<milliseconds>(*server - local_now);
  const auto off = corrected - offset;
  if (!skewed && off <= clock_skew_limit && off >= -clock_skew_limit) return std::nullopt;
  return corrected;
}

/// The metadata header that marks a conditional PUT as one call's own, so
/// that a retry meeting 412 can tell its own earlier attempt from another
/// writer's object (names lower-cased, as responses give them).
inline constexpr std::string_view write_mark_header = "x-amz-meta-storewatch-write";

/// Base64 of the MD5 of `data`: a Content-MD5 value. Throws
/// std::runtime_error if OpenSSL fails.
inline std::string md5_base64(std::string_view data) {
  unsigned char md5[16];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), md5, &length, EVP_md5(), nullptr) != 1 || length != sizeof md5) {
    throw std::runtime_error("S3: MD5 failed in OpenSSL");
  }
  unsigned char text[25];
  EVP_EncodeBlock(text, md5, sizeof md5);
  return std::string(reinterpret_cast<const char*>(text), 24);
}

/// What the server's clock reads minus the local one, as narrowed down by
/// the Date headers of responses. A Date has whole seconds and the server
/// wrote it somewhere between sending the request and receiving the
/// response, so each response says the offset lies in [Date - received,
/// Date + 1 s - sent]; the bounds of consecutive responses are intersected,
/// and start afresh when they stop overlapping (a clock was set).
struct clock_estimate {
  std::chrono::milliseconds low{0};   ///< the offset is at least this
  std::chrono::milliseconds high{0};  ///< and at most this
  bool known = false;

  /// Adds a response with header `date`, its request sent at `sent` and
  /// answered at `received` (local clock).
  void add(std::string_view date, std::chrono::system_clock::time_point sent,
           std::chrono::system_clock::time_point received) {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    const auto server = parse_server_time(date);
    if (!server || received < sent) return;
    const auto lower = duration_cast<milliseconds>(*server - received);
    const auto upper = duration_cast<milliseconds>(*server + std::chrono::seconds{1} - sent);
    if (!known || std::max(low, lower) > std::min(high, upper)) {
      low = lower;
      high = upper;
      known = true;
      return;
    }
    low = std::max(low, lower);
    high = std::min(high, upper);
  }
};

/// An S3 error code as shown in a message: as it is when it is a plain word
/// (A-Z a-z 0-9 .), quoted otherwise.
inline std::string show_code(std::string_view code) {
  const bool plain = !code.empty() && code.size() <= 64 && std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.';
  });
  return plain ? std::string(code) : storewatch::detail::quote(code, 64);
}

/// `text` with every occurrence of a credential replaced by "<redacted>".
inline std::string redact(std::string text, const credentials& who) {
  for (const std::string* secret : {&who.access_key_id, &who.secret_access_key, &who.session_token}) {
    if (secret->empty()) continue;
    for (auto at = text.find(*secret); at != std::string::npos; at = text.find(*secret, at)) {
      text.replace(at, secret->size(), "<redacted>");
      at += 10;
    }
  }
  return text;
}

/// "HTTP 403 SignatureDoesNotMatch: "<message>"" for a response, from its
/// status and error document (or the start of a body that is not one).
inline std::string describe_response(const http_response& response, const credentials& who) {
  std::string text = "HTTP " + std::to_string(response.status);
  if (const auto error = parse_error_body(response.body)) {
    if (!error->code.empty()) text += ' ' + show_code(redact(error->code, who));
    if (!error->message.empty()) text += ": " + storewatch::detail::quote(redact(error->message, who));
  } else if (!response.body.empty()) {
    text += ": " + storewatch::detail::quote(redact(response.body, who), 120);
  }
  return text;
}

/// "<curl's detail> (<curl code's message>)" for a failed transfer.
inline std::string describe_transport(std::error_code ec, const http_response& response, const credentials& who) {
  const auto code_text = ec.message();
  if (response.error_text.empty()) return code_text;
  auto text = redact(response.error_text, who);
  if (text.find(code_text) == std::string::npos) text += " (" + code_text + ')';
  return text;
}

/// The verdict on an attempt that completed with `ec` and `response`
/// (`ec` not operation_aborted).
inline attempt_outcome classify_attempt(std::error_code ec, const http_response& response, const credentials& who) {
  attempt_outcome outcome;
  if (ec) {
    outcome.verdict = ec.category() == http_category() && is_transient_transport_error(ec.value())
                          ? attempt_verdict::retry
                          : attempt_verdict::fail;
    outcome.reason = describe_transport(ec, response, who);
    return outcome;
  }
  bool retry = is_retryable_status(response.status);
  if (!retry && response.status >= 400) {
    const auto error = parse_error_body(response.body);
    retry = error && is_retryable_s3_code(error->code);
  }
  if (!retry) return outcome;
  outcome.verdict = attempt_verdict::retry;
  outcome.reason = describe_response(response, who);
  if (const auto* value = response.header("retry-after")) outcome.retry_after = parse_retry_after(*value);
  return outcome;
}

/// The wait before attempt `failures` + 1: the policy's backoff delay, or the
/// server's Retry-After if longer, never more than `policy.max`.
inline std::chrono::milliseconds retry_delay(const backoff_policy& policy, unsigned failures, double random,
                                             std::optional<std::chrono::milliseconds> retry_after) {
  auto delay = storewatch::detail::backoff_delay(policy, failures, random);
  if (retry_after) delay = std::max(delay, std::min(*retry_after, policy.max));
  return delay;
}

/// `text` for a message: as it is when it is printable UTF-8 of at most 200
/// bytes, quoted otherwise.
inline std::string show_name(std::string_view text) {
  const bool plain = text.size() <= 200 && storewatch::detail::is_valid_utf8(text) &&
                     !s3::detail::has_control_character(text) && text.find('"') == std::string_view::npos;
  return plain ? std::string(text) : storewatch::detail::quote(text);
}

/// Hex SHA-256 of `length` bytes of the open file `fd` from `offset` on,
/// read a block at a time (a streamed body's payload hash). Throws
/// `errc::store_io_failed` naming `file` when it cannot read them all.
inline std::string sha256_file_hex(int fd, std::uint64_t offset, std::uint64_t length,
                                   const std::filesystem::path& file) {
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
  const auto block = std::make_unique<char[]>(1 << 16);
  for (std::uint64_t done = 0; done < length;) {
    const auto wanted = static_cast<std::size_t>(std::min<std::uint64_t>(1 << 16, length - done));
    const auto got = ::pread(fd, block.get(), wanted, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      throw storewatch::detail::file_error(make_error_code(errc::store_io_failed), "input file", file, "read",
                                           got == 0 ? EIO : errno);
    }
    if (EVP_DigestUpdate(context.get(), block.get(), static_cast<std::size_t>(got)) != 1) throw std::bad_alloc();
    done += static_cast<std::uint64_t>(got);
  }
  digest out{};
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(context.get(), out.data(), &size) != 1) throw std::bad_alloc();
  return to_hex(out);
}

/// The part size for a file of `size` bytes: `wanted`, or more when the
/// file would need over 10,000 parts (S3's limit); at least 1.
inline std::uint64_t multipart_part_size(std::uint64_t size, std::uint64_t wanted) noexcept {
  constexpr std::uint64_t max_parts = 10'000;
  return std::max<std::uint64_t>({wanted, (size + max_parts - 1) / max_parts, 1});
}

/// The UploadId of an InitiateMultipartUploadResult document, or "" when
/// it has none.
inline std::string parse_upload_id(std::string_view body) {
  pugi::xml_document document;
  if (!load_xml(document, body).empty()) return {};
  const auto root = document.document_element();
  std::string id;
  if (local_name(root) != "InitiateMultipartUploadResult") return {};
  if (!element_text(first_child(root, "UploadId"), id)) return {};
  return id;
}

/// The CompleteMultipartUpload document for parts 1..n with these ETags.
inline std::string complete_multipart_body(const std::vector<std::string>& etags) {
  std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (std::size_t i = 0; i < etags.size(); ++i) {
    body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + escape_text(etags[i]) +
            "</ETag></Part>";
  }
  return body + "</CompleteMultipartUpload>";
}

}  // namespace detail

/// What a request throws when it gave up after its last attempt timed out
/// (`http_options::request_timeout`, or what was left of
/// `client_options::retry_budget`): code `errc::store_io_failed`, as for
/// any request whose retries ran out, in a type of its own so that a caller
/// may try smaller requests instead (compaction's DeleteObjects does). The
/// server may have executed the request, or may still be executing it.
class request_timed_out : public std::system_error {
 public:
  using std::system_error::system_error;
};

/// A client for the S3 store of a `config`: its bucket, under its key prefix.
///
/// Object names given to it are relative to the key prefix
/// (`object_key(config, name)` is the S3 key), and listings return them so.
/// Requests are signed with SigV4 and retried with backoff on connection
/// failures and timeouts, HTTP 429, 500, 502, 503, 504, and the S3 error
/// codes SlowDown, InternalError and RequestTimeout (and
/// ConditionalRequestConflict), honouring a Retry-After given in seconds (an
/// HTTP-date is ignored), up to `client_options::max_attempts` attempts within
/// `client_options::retry_budget`. A 403 that a skewed local clock explains
/// is sent again at once with the server's time (see `clock_offset()`).
///
/// Each attempt is signed with `config::credentials`, or, when
/// `config::credentials_from` names another source, with the temporary
/// credentials a `basic_credential_provider` keeps fresh for the client (a
/// 403 ExpiredToken, InvalidToken or ExpiredTokenException gets them fetched
/// anew and one more attempt).
///
/// Errors are thrown as `std::system_error`, whose message names the method,
/// bucket and key ("S3 GET s3://bucket/prefix/key: HTTP 500 InternalError:
/// "..." (gave up after 8 attempts in 3200 ms)"; when the last attempt failed
/// without an answer, e.g. cut short by the retry budget, the server's last
/// retryable answer follows its reason: "(the server's last answer: HTTP 503
/// SlowDown: ...)"):
/// - `errc::store_access_denied` for HTTP 403 (wrong or expired credentials,
///   a policy, a skewed clock);
/// - `errc::store_access_denied` also when temporary credentials
///   (`config::credentials_from`) cannot be fetched: the message names their
///   source and says why;
/// - `errc::store_io_failed` for other unexpected statuses, a transport
///   failure that is not transient (a host name that does not resolve, a TLS
///   certificate that does not verify), retries exhausted (as
///   `request_timed_out` when the last attempt timed out), or a malformed
///   listing;
/// - `asio::error::operation_aborted` when cancelled.
///
/// Each operation comes two ways: as a coroutine member (`get`, `put`, ...)
/// to `co_await` from a coroutine on the client's executor, which throws the
/// errors above; and as an initiating function (`async_get`, `async_put`,
/// ...) that takes any completion token (a callback, `use_awaitable`,
/// `deferred`, `use_future`; by default the executor's default token, so
/// `asio::use_awaitable_t<>::as_default_on_t<client>` needs none) and
/// completes with `void(std::error_code, Result)` (`void(std::error_code)`
/// for the removals): the same errors as codes, their text in the overload
/// taking a `diagnostics&`. An initiating
/// function runs the coroutine on the client's executor and completes on the
/// handler's associated executor (default: the client's), never inside the
/// call.
///
/// Cancellation: every operation can be cancelled, for every one waits on
/// requests. A coroutine member follows its awaiting coroutine's
/// cancellation state (terminal by default); an initiating function its
/// handler's associated cancellation slot (terminal). Either stops the
/// request in flight or the wait before a retry, and the operation
/// completes with `asio::error::operation_aborted`. What a request sent
/// before the cancellation did stays done (a PUT or DELETE the server
/// executed is not undone): the object is as it was or as the request left
/// it. `put_file` aborts its multipart upload, if it started one;
/// `get_to_file` leaves `destination` as it was. The client works on after
/// a cancellation.
///
/// Not thread-safe: use it from its executor's thread or strand (handlers
/// may be bound to any executor). Many operations may run at once (each is
/// its own coroutine). The client must outlive them; destroying it aborts
/// the requests in flight.
template <class Executor = asio::any_io_executor>
class basic_client {
 public:
  /// The executor of the client's I/O.
  using executor_type = Executor;
  /// The completion token of an initiating function that names none.
  using default_token = asio::default_completion_token_t<executor_type>;

  /// The client type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_client<OtherExecutor>;  ///< the client on `OtherExecutor`
  };

  /// A client for `store` on `executor`. Throws std::invalid_argument naming
  /// the field when `validate(store)` finds a fault.
  basic_client(const executor_type& executor, s3::config store, client_options options = {})
      : config_(checked(std::move(store))),
        options_(std::move(options)),
        prefix_(key_prefix(config_)),
        http_(executor, transport_options(options_.http, config_)) {
    if (options_.max_attempts < 1) options_.max_attempts = 1;
    if (config_.credentials_from.what != credential_source::kind::keys) {
      auto fetching = options_.credentials;
      if (fetching.ca_file.empty()) fetching.ca_file = config_.ca_bundle;
      credentials_ = std::make_unique<basic_credential_provider<Executor>>(executor, config_.credentials_from,
                                                                          std::move(fetching));
    }
  }

  basic_client(const basic_client&) = delete;
  basic_client& operator=(const basic_client&) = delete;

  /// The executor of the client's I/O.
  executor_type get_executor() const noexcept { return http_.get_executor(); }

  /// `options` with the store's CA bundle, unless they name one.
  static http_options transport_options(http_options options, const s3::config& store) {
    if (options.ca_file.empty()) options.ca_file = store.ca_bundle;
    return options;
  }

  /// The store's configuration (with its credentials: do not print it).
  const s3::config& configuration() const noexcept { return config_; }

  /// The options in effect.
  const client_options& options() const noexcept { return options_; }

  /// What is added to the local clock to get the server's, as learnt from a
  /// server that found the request time skewed; zero until then. Requests
  /// are signed with the local clock plus this. A 403 RequestTimeTooSkewed,
  /// or any 403 whose Date is more than 5 minutes from the signing time,
  /// sets it from the server's time (ServerTime, else Date), and the request
  /// is sent again at once, once per request.
  std::chrono::milliseconds clock_offset() const noexcept { return clock_offset_; }

  /// What the server's clock reads minus the local clock
  /// (`std::chrono::system_clock`), as learnt from the Date headers of the
  /// responses so far; none before the first. Its error is at most
  /// `observed_clock_error()` (half a second for Date's whole seconds,
  /// plus half a round trip).
  std::optional<std::chrono::milliseconds> observed_clock_offset() const noexcept {
    if (!observed_clock_.known) return std::nullopt;
    return observed_clock_.low + (observed_clock_.high - observed_clock_.low) / 2;
  }

  /// How far `observed_clock_offset()` may be from the truth.
  std::chrono::milliseconds observed_clock_error() const noexcept {
    return (observed_clock_.high - observed_clock_.low) / 2;
  }

  /// The requests sent so far.
  request_counts counts() const noexcept { return counts_; }

  /// The object `name`'s content, or std::nullopt when it does not exist
  /// (404 NoSuchKey; a 404 NoSuchBucket is an error).
  asio::awaitable<std::optional<std::string>> get(std::string name) {
    const operation op = object_operation("GET", name, &request_counts::get);
    auto response = co_await execute(op);
    if (response.status / 100 == 2) co_return std::optional<std::string>(std::move(response.body));
    if (response.status == 404 && !is_no_such_bucket(response)) co_return std::nullopt;
    throw failure(op, response);
  }

  /// Stores `body` as object `name`. With `if_absent`, only if no object has
  /// that name (`If-None-Match: *`): returns false when one has (412). AWS
  /// and MinIO honour the condition; s3rver ignores it and overwrites
  /// (returning true). Returns true otherwise.
  ///
  /// A conditional PUT carries metadata naming this write
  /// (`x-amz-meta-storewatch-write`: `mark`, by default a new
  /// `new_write_mark(body)`). On 412 the object is read back (HEAD): when it
  /// carries that mark, an earlier attempt of this call stored it and its
  /// response was lost, and the result is true. An unconditional PUT needs
  /// no mark: repeating it stores the same bytes again.
  asio::awaitable<bool> put(std::string name, std::string body, bool if_absent = false, std::string mark = {}) {
    operation op = object_operation("PUT", name, &request_counts::put);
    if (if_absent) {
      op.headers.emplace_back("If-None-Match", "*");
      if (mark.empty()) mark = new_write_mark(body);
      op.headers.emplace_back(std::string(detail::write_mark_header), mark);
    }
    op.body = std::move(body);
    const auto response = co_await execute(op);
    if (response.status / 100 == 2) co_return true;
    if (if_absent && response.status == 412) co_return co_await marked(name, mark);
    throw failure(op, response);
  }

  /// Deletes the objects `names` with DeleteObjects requests (`POST
  /// /bucket?delete`, quiet mode, Content-MD5), up to 1000 names per
  /// request, one request after another; missing objects are not an error.
  /// Returns the objects the server did not delete, each with its error
  /// (`delete_error::key` relative to the key prefix); empty when all went.
  /// Throws as the other requests do when a request fails as a whole, and
  /// `errc::store_io_failed` for a response that is not a DeleteResult.
  asio::awaitable<std::vector<delete_error>> remove_many(std::vector<std::string> names) {
    std::vector<delete_error> failed;
    for (std::size_t first = 0; first < names.size(); first += 1000) {
      std::vector<std::string> keys;
      for (std::size_t i = first; i < std::min(names.size(), first + 1000); ++i) keys.push_back(prefix_ + names[i]);
      operation op;
      op.method = "POST";
      op.counter = &request_counts::remove_batches;
      op.target = bucket_target(config_);
      op.query.emplace_back("delete", "");
      op.body = delete_objects_body(keys);
      op.headers.emplace_back("Content-MD5", detail::md5_base64(op.body));
      op.headers.emplace_back("Content-Type", "application/xml");
      op.label = "DeleteObjects s3://" + config_.bucket + '/' + detail::show_name(keys.front()) +
                 (keys.size() > 1 ? " and " + std::to_string(keys.size() - 1) + " more" : std::string());
      op.fault_method = "POST";
      op.fault_name = "?delete=" + std::to_string(keys.size());
      const auto response = co_await execute(op);
      if (response.status / 100 != 2) throw failure(op, response);
      std::vector<delete_error> errors;
      try {
        errors = parse_delete_result(response.body);
      } catch (const std::system_error& e) {
        ++counts_.failures;
        throw std::system_error(make_error_code(errc::store_io_failed), "S3 " + op.label + ": " + e.what());
      }
      for (auto& error : errors) {
        if (error.key.starts_with(prefix_)) error.key.erase(0, prefix_.size());
        failed.push_back(std::move(error));
      }
    }
    co_return failed;
  }

  /// A write mark for a conditional `put` of `body`: a token no other call
  /// or client uses, and the body's SHA-256.
  std::string new_write_mark(std::string_view body) {
    return write_token_ + '-' + std::to_string(++writes_) + '-' + sha256_hex(body);
  }

  /// Deletes object `name` if it carries the write mark `mark` (HEAD, then
  /// DELETE): puts back a conditional `put` that failed, whose attempts may
  /// have stored it, and never another writer's object of that name.
  asio::awaitable<void> remove_marked(std::string name, std::string mark) {
    const bool ours = co_await marked(name, mark);  // awaited into a local: g++ 12 miscompiles it in the `if`
    if (ours) co_await remove(name);
  }

  /// Stores the content of the file `source` as object `name`, streaming
  /// it: memory stays a few blocks whatever the file's size. A file of at
  /// most `client_options::multipart_threshold` bytes goes in one PUT, a
  /// larger one as a multipart upload of `part_size` parts
  /// (CreateMultipartUpload, UploadPart each, CompleteMultipartUpload with
  /// their ETags). Each body (the PUT, or each part) is read once to hash it
  /// for the signature, then again while it is sent, and is retried on its
  /// own: a failed part sends that part again, not the file. Streamed
  /// requests have no total timeout and no `retry_budget` (a large part on a
  /// slow link takes what it takes): `max_attempts` bounds the attempts and
  /// `http_options::low_speed_limit` each attempt. On any failure or
  /// cancellation after CreateMultipartUpload the upload is aborted
  /// (AbortMultipartUpload, not itself cancelled; best effort: if that
  /// fails too, the parts stay until a bucket lifecycle rule removes them).
  /// `if_absent`: as `put`, the condition on the PUT or on
  /// CompleteMultipartUpload (returns false on 412, after aborting, unless
  /// the object carries this call's write mark `mark`, given to the PUT or
  /// CreateMultipartUpload; by default a new one). The
  /// file must not change while it is sent (one that shrinks fails the
  /// request). Errors: as `put`, and `errc::store_io_failed` when the file
  /// cannot be opened or read.
  asio::awaitable<bool> put_file(std::string name, std::filesystem::path source, bool if_absent = false,
                                 std::string mark = {}) {
    if (if_absent && mark.empty()) mark = write_token_ + '-' + std::to_string(++writes_);
    const storewatch::detail::unique_fd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat info {};
    if (!fd || ::fstat(fd.get(), &info) != 0) {
      throw storewatch::detail::file_error(make_error_code(errc::store_io_failed), "input file", source, "open", errno);
    }
    const auto size = static_cast<std::uint64_t>(info.st_size);
    if (size <= options_.multipart_threshold) {
      operation op = object_operation("PUT", name, &request_counts::put);
      if (if_absent) {
        op.headers.emplace_back("If-None-Match", "*");
        op.headers.emplace_back(std::string(detail::write_mark_header), mark);
      }
      stream_from(op, fd.get(), 0, size, source);
      const auto response = co_await execute(op);
      if (response.status / 100 == 2) co_return true;
      if (if_absent && response.status == 412) co_return co_await marked(name, mark);
      throw failure(op, response);
    }
    const auto upload_id = co_await create_multipart_upload(name, mark);
    std::exception_ptr failed;
    bool stored = false;
    try {
      stored = co_await upload_parts(name, upload_id, fd.get(), size, source, if_absent);
      if (!stored) stored = co_await marked(name, mark);  // 412: an earlier attempt of the completion stored it?
    } catch (...) {
      failed = std::current_exception();
    }
    if (failed || !stored) {
      // Cancelled or not, the abort runs: it frees the parts stored so far.
      co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
      co_await abort_multipart_upload(name, upload_id);
    }
    if (failed) std::rethrow_exception(failed);
    co_return stored;
  }

  /// Writes the content of object `name` to the file `destination`,
  /// streaming it (memory stays a few blocks whatever its size); returns
  /// its size, or std::nullopt when it does not exist (as `get`). The bytes go to
  /// "<destination>.storewatch-part", renamed to `destination` (replacing
  /// any file there) once all have arrived: a failure leaves `destination`
  /// as it was. The download has no total timeout and no `retry_budget`
  /// (see `put_file`); a retry starts it again from the first byte.
  /// Errors: as `get`, and `errc::store_io_failed` when the file cannot be
  /// written.
  asio::awaitable<std::optional<std::uint64_t>> get_to_file(std::string name, std::filesystem::path destination) {
    auto partial = destination;
    partial += ".storewatch-part";
    storewatch::detail::unique_fd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
      throw storewatch::detail::file_error(make_error_code(errc::store_io_failed), "file", partial, "open", errno);
    }
    operation op = object_operation("GET", name, &request_counts::get);
    op.download_fd = fd.get();
    std::exception_ptr failed;
    http_response response;
    try {
      response = co_await execute(op);
    } catch (...) {
      failed = std::current_exception();
    }
    const auto write_error = [&](const char* action) {
      const int error_number = errno;
      ::unlink(partial.c_str());
      return storewatch::detail::file_error(make_error_code(errc::store_io_failed), "file", partial, action,
                                            error_number);
    };
    if (!failed && response.status / 100 == 2) {
      if (::ftruncate(fd.get(), static_cast<off_t>(response.body_size)) != 0) throw write_error("truncate");
      if (::close(fd.release()) != 0) throw write_error("close");
      if (::rename(partial.c_str(), destination.c_str()) != 0) throw write_error("rename");
      co_return response.body_size;
    }
    fd.reset();
    ::unlink(partial.c_str());
    if (failed) std::rethrow_exception(failed);
    if (response.status == 404 && !is_no_such_bucket(response)) co_return std::nullopt;
    throw failure(op, response);
  }

  /// Deletes object `name`; a missing object is not an error (204 and 404
  /// are both success; 404 NoSuchBucket is an error).
  asio::awaitable<void> remove(std::string name) {
    const operation op = object_operation("DELETE", name, &request_counts::remove);
    const auto response = co_await execute(op);
    if (response.status / 100 == 2) co_return;
    if (response.status == 404 && !is_no_such_bucket(response)) co_return;
    throw failure(op, response);
  }

  /// Whether object `name` exists (HEAD; 404 gives false; a HEAD response
  /// has no body, so a missing bucket also gives false).
  asio::awaitable<bool> exists(std::string name) {
    const operation op = object_operation("HEAD", name, &request_counts::head);
    const auto response = co_await execute(op);
    if (response.status / 100 == 2) co_return true;
    if (response.status == 404) co_return false;
    throw failure(op, response);
  }

  /// One page of a ListObjectsV2 listing (`list-type=2`), with the names in
  /// `objects[].key` and `common_prefixes` (and the echoed `prefix` and
  /// `start_after`) relative to the store's key prefix. Throws
  /// std::invalid_argument when `max_keys` is negative;
  /// `errc::store_io_failed` when the response is malformed or returns a
  /// key outside the key prefix.
  asio::awaitable<list_page> list(list_request request) {
    if (request.max_keys < 0) throw std::invalid_argument("max_keys: must not be negative");
    operation op;
    op.method = "GET";
    op.counter = &request_counts::list;
    op.target = bucket_target(config_);
    op.query.emplace_back("list-type", "2");
    op.query.emplace_back("max-keys", std::to_string(request.max_keys));
    const auto prefix = prefix_ + request.prefix;
    if (!prefix.empty()) op.query.emplace_back("prefix", prefix);
    if (!request.start_after.empty()) op.query.emplace_back("start-after", prefix_ + request.start_after);
    if (!request.continuation_token.empty()) op.query.emplace_back("continuation-token", request.continuation_token);
    if (!request.delimiter.empty()) op.query.emplace_back("delimiter", request.delimiter);
    op.label = "LIST s3://" + config_.bucket + '/' + detail::show_name(prefix);
    op.fault_method = "LIST";
    op.fault_name = request.prefix;
    if (!request.start_after.empty()) op.label += " start-after " + storewatch::detail::quote(request.start_after);
    if (!request.delimiter.empty()) op.label += " delimiter " + storewatch::detail::quote(request.delimiter);
    if (!request.continuation_token.empty()) {
      op.label += " continuation-token " + storewatch::detail::quote(request.continuation_token, 100);
    }

    const auto response = co_await execute(op);
    if (response.status / 100 != 2) throw failure(op, response);
    list_page page;
    try {
      page = parse_list_objects_v2(response.body);
    } catch (const std::system_error& e) {
      ++counts_.failures;
      throw std::system_error(make_error_code(errc::store_io_failed), "S3 " + op.label + ": " + e.what());
    }
    for (auto& object : page.objects) object.key = relative(op, object.key);
    for (auto& common : page.common_prefixes) common = relative(op, common);
    if (page.prefix.starts_with(prefix_)) page.prefix.erase(0, prefix_.size());
    if (page.start_after.starts_with(prefix_)) page.start_after.erase(0, prefix_.size());
    co_return page;
  }

  /// As `get`, with any completion token.
  /// Completion signature: `void(std::error_code, std::optional<std::string>)`.
  template <asio::completion_token_for<void(std::error_code, std::optional<std::string>)> CompletionToken =
                default_token>
  auto async_get(std::string name, CompletionToken&& token = default_token{}) {
    return launch<std::optional<std::string>>(nullptr, std::forward<CompletionToken>(token), &basic_client::get,
                                              std::move(name));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::optional<std::string>)> CompletionToken =
                default_token>
  auto async_get(std::string name, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return launch<std::optional<std::string>>(&diag, std::forward<CompletionToken>(token), &basic_client::get,
                                              std::move(name));
  }

  /// As `put` with a new write mark, with any completion token.
  /// Completion signature: `void(std::error_code, bool)`.
  template <asio::completion_token_for<void(std::error_code, bool)> CompletionToken = default_token>
  auto async_put(std::string name, std::string body, bool if_absent, CompletionToken&& token = default_token{}) {
    return launch<bool>(nullptr, std::forward<CompletionToken>(token), &basic_client::put, std::move(name),
                        std::move(body), if_absent, std::string());
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, bool)> CompletionToken = default_token>
  auto async_put(std::string name, std::string body, bool if_absent, diagnostics& diag,
                 CompletionToken&& token = default_token{}) {
    return launch<bool>(&diag, std::forward<CompletionToken>(token), &basic_client::put, std::move(name),
                        std::move(body), if_absent, std::string());
  }

  /// As `put_file` with a new write mark, with any completion token.
  /// Completion signature: `void(std::error_code, bool)`.
  template <asio::completion_token_for<void(std::error_code, bool)> CompletionToken = default_token>
  auto async_put_file(std::string name, std::filesystem::path source, bool if_absent,
                      CompletionToken&& token = default_token{}) {
    return launch<bool>(nullptr, std::forward<CompletionToken>(token), &basic_client::put_file, std::move(name),
                        std::move(source), if_absent, std::string());
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, bool)> CompletionToken = default_token>
  auto async_put_file(std::string name, std::filesystem::path source, bool if_absent, diagnostics& diag,
                      CompletionToken&& token = default_token{}) {
    return launch<bool>(&diag, std::forward<CompletionToken>(token), &basic_client::put_file, std::move(name),
                        std::move(source), if_absent, std::string());
  }

  /// As `get_to_file`, with any completion token.
  /// Completion signature: `void(std::error_code, std::optional<std::uint64_t>)`.
  template <asio::completion_token_for<void(std::error_code, std::optional<std::uint64_t>)> CompletionToken =
                default_token>
  auto async_get_to_file(std::string name, std::filesystem::path destination,
                         CompletionToken&& token = default_token{}) {
    return launch<std::optional<std::uint64_t>>(nullptr, std::forward<CompletionToken>(token),
                                                &basic_client::get_to_file, std::move(name), std::move(destination));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::optional<std::uint64_t>)> CompletionToken =
                default_token>
  auto async_get_to_file(std::string name, std::filesystem::path destination, diagnostics& diag,
                         CompletionToken&& token = default_token{}) {
    return launch<std::optional<std::uint64_t>>(&diag, std::forward<CompletionToken>(token),
                                                &basic_client::get_to_file, std::move(name), std::move(destination));
  }

  /// As `remove`, with any completion token.
  /// Completion signature: `void(std::error_code)`.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken = default_token>
  auto async_remove(std::string name, CompletionToken&& token = default_token{}) {
    return launch<void>(nullptr, std::forward<CompletionToken>(token), &basic_client::remove, std::move(name));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code)> CompletionToken = default_token>
  auto async_remove(std::string name, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return launch<void>(&diag, std::forward<CompletionToken>(token), &basic_client::remove, std::move(name));
  }

  /// As `remove_marked`, with any completion token.
  /// Completion signature: `void(std::error_code)`.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken = default_token>
  auto async_remove_marked(std::string name, std::string mark, CompletionToken&& token = default_token{}) {
    return launch<void>(nullptr, std::forward<CompletionToken>(token), &basic_client::remove_marked, std::move(name),
                        std::move(mark));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code)> CompletionToken = default_token>
  auto async_remove_marked(std::string name, std::string mark, diagnostics& diag,
                           CompletionToken&& token = default_token{}) {
    return launch<void>(&diag, std::forward<CompletionToken>(token), &basic_client::remove_marked, std::move(name),
                        std::move(mark));
  }

  /// As `remove_many`, with any completion token.
  /// Completion signature: `void(std::error_code, std::vector<delete_error>)`.
  template <asio::completion_token_for<void(std::error_code, std::vector<delete_error>)> CompletionToken =
                default_token>
  auto async_remove_many(std::vector<std::string> names, CompletionToken&& token = default_token{}) {
    return launch<std::vector<delete_error>>(nullptr, std::forward<CompletionToken>(token),
                                             &basic_client::remove_many, std::move(names));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, std::vector<delete_error>)> CompletionToken =
                default_token>
  auto async_remove_many(std::vector<std::string> names, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return launch<std::vector<delete_error>>(&diag, std::forward<CompletionToken>(token), &basic_client::remove_many,
                                             std::move(names));
  }

  /// As `exists`, with any completion token.
  /// Completion signature: `void(std::error_code, bool)`.
  template <asio::completion_token_for<void(std::error_code, bool)> CompletionToken = default_token>
  auto async_exists(std::string name, CompletionToken&& token = default_token{}) {
    return launch<bool>(nullptr, std::forward<CompletionToken>(token), &basic_client::exists, std::move(name));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, bool)> CompletionToken = default_token>
  auto async_exists(std::string name, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return launch<bool>(&diag, std::forward<CompletionToken>(token), &basic_client::exists, std::move(name));
  }

  /// As `list`, with any completion token (a negative `max_keys` completes
  /// with `errc::store_io_failed`).
  /// Completion signature: `void(std::error_code, list_page)`.
  template <asio::completion_token_for<void(std::error_code, list_page)> CompletionToken = default_token>
  auto async_list(list_request request, CompletionToken&& token = default_token{}) {
    return launch<list_page>(nullptr, std::forward<CompletionToken>(token), &basic_client::list, std::move(request));
  }
  /// As above; a failure's account also goes to `diag` (see `diagnostics`).
  template <asio::completion_token_for<void(std::error_code, list_page)> CompletionToken = default_token>
  auto async_list(list_request request, diagnostics& diag, CompletionToken&& token = default_token{}) {
    return launch<list_page>(&diag, std::forward<CompletionToken>(token), &basic_client::list, std::move(request));
  }

 private:
  /// Runs the coroutine member `operation` with `args` on the client's
  /// executor as an initiating function (see `detail::async_coroutine`).
  template <class Result, class CompletionToken, class Operation, class... Args>
  auto launch(diagnostics* diag, CompletionToken&& token, Operation operation, Args... args) {
    return storewatch::detail::async_coroutine<Result>(get_executor(), storewatch::detail::error_account(diag),
                                                       storewatch::detail::member_call(this, operation,
                                                                                       std::move(args)...),
                                                       std::forward<CompletionToken>(token));
  }

  /// One request, as retried: what is signed and sent, and how it is named.
  struct operation {
    std::string method{};
    std::string label{};  // "GET s3://bucket/prefix/key"
    std::uint64_t request_counts::*counter = nullptr;
    request_target target{};
    std::vector<query_parameter> query{};
    std::vector<header> headers{};  // besides Host and the signature's
    std::string body{};
    std::string fault_method{};  // the method and name a request_fault_injector is told
    std::string fault_name{};
    std::optional<http_body_source> upload{};  // a streamed body (then `body` is empty)
    std::string upload_hash{};                 // its SHA-256, hashed from the file
    int download_fd = -1;                      // a 2xx body goes to this file
  };

  // Whether object `name` carries the write mark `mark` (HEAD; a missing
  // object does not).
  asio::awaitable<bool> marked(const std::string& name, const std::string& mark) {
    const operation op = object_operation("HEAD", name, &request_counts::head);
    const auto response = co_await execute(op);
    if (response.status == 404) co_return false;
    if (response.status / 100 != 2) throw failure(op, response);
    const auto* found = response.header(detail::write_mark_header);
    co_return found != nullptr && *found == mark;
  }

  // 16 hex digits from the system's random source: with a counter, a token
  // no other client's write marks share.
  static std::string random_token() {
    std::random_device source;
    std::ostringstream text;
    text << std::hex << std::setfill('0') << std::setw(8) << source() << std::setw(8) << source();
    return text.str();
  }

  /// Makes `op` send `length` bytes of `fd` from `offset` as its body.
  static void stream_from(operation& op, int fd, std::uint64_t offset, std::uint64_t length,
                          const std::filesystem::path& file) {
    op.upload = http_body_source{fd, offset, length};
    op.upload_hash = detail::sha256_file_hex(fd, offset, length, file);
  }

  /// A multipart-upload request on object `name`: `query` says which.
  operation multipart_operation(std::string method, const std::string& name, std::string action,
                                std::vector<query_parameter> query, std::uint64_t request_counts::*counter) const {
    operation op = object_operation(std::move(method), name, counter);
    op.query = std::move(query);
    op.label = action + ' ' + op.label.substr(op.method.size() + 1);
    op.fault_method = std::move(action);
    return op;
  }

  /// CreateMultipartUpload of `name` (with the write mark `mark`, if any):
  /// its upload id.
  asio::awaitable<std::string> create_multipart_upload(const std::string& name, const std::string& mark) {
    auto op = multipart_operation("POST", name, "CreateMultipartUpload", {{"uploads", ""}},
                                  &request_counts::multipart);
    if (!mark.empty()) op.headers.emplace_back(std::string(detail::write_mark_header), mark);
    const auto response = co_await execute(op);
    if (response.status / 100 != 2) throw failure(op, response);
    auto id = detail::parse_upload_id(response.body);
    if (id.empty()) {
      ++counts_.failures;
      throw std::system_error(make_error_code(errc::store_io_failed),
                              "S3 " + op.label + ": the response has no UploadId");
    }
    co_return id;
  }

  /// UploadPart of each part of the file, then CompleteMultipartUpload;
  /// false when `if_absent` and the object exists (412).
  asio::awaitable<bool> upload_parts(const std::string& name, const std::string& upload_id, int fd,
                                     std::uint64_t size, const std::filesystem::path& source, bool if_absent) {
    const auto part_size = detail::multipart_part_size(size, options_.part_size);
    std::vector<std::string> etags;
    for (std::uint64_t offset = 0; offset < size || etags.empty(); offset += part_size) {
      const auto number = std::to_string(etags.size() + 1);
      auto op = multipart_operation("PUT", name, "UploadPart " + number,
                                    {{"partNumber", number}, {"uploadId", upload_id}}, &request_counts::put);
      op.fault_method = "UploadPart";
      stream_from(op, fd, offset, std::min(part_size, size - offset), source);
      const auto response = co_await execute(op);
      const auto* etag = response.header("etag");
      if (response.status / 100 != 2) throw failure(op, response);
      if (etag == nullptr || etag->empty()) {
        ++counts_.failures;
        throw std::system_error(make_error_code(errc::store_io_failed),
                                "S3 " + op.label + ": the response has no ETag");
      }
      etags.push_back(*etag);
    }
    auto op = multipart_operation("POST", name, "CompleteMultipartUpload", {{"uploadId", upload_id}},
                                  &request_counts::multipart);
    op.body = detail::complete_multipart_body(etags);
    op.headers.emplace_back("Content-Type", "application/xml");
    if (if_absent) op.headers.emplace_back("If-None-Match", "*");
    const auto response = co_await execute(op);
    if (if_absent && response.status == 412) co_return false;
    // A 200 may still carry an Error document (S3 sends its status before
    // it has assembled the object).
    if (response.status / 100 != 2 || parse_error_body(response.body)) throw failure(op, response);
    co_return true;
  }

  /// AbortMultipartUpload, best effort: a failure is not reported (the
  /// operation reports its own).
  asio::awaitable<void> abort_multipart_upload(const std::string& name, const std::string& upload_id) {
    const auto op = multipart_operation("DELETE", name, "AbortMultipartUpload", {{"uploadId", upload_id}},
                                        &request_counts::multipart);
    try {
      co_await execute(op);
    } catch (const std::exception&) {
    }
  }

  static s3::config checked(s3::config store) {
    validate(store);
    return store;
  }

  operation object_operation(std::string method, const std::string& name,
                             std::uint64_t request_counts::*counter) const {
    operation op;
    const auto key = object_key(config_, name);
    op.target = object_target(config_, key);
    op.label = method + " s3://" + config_.bucket + '/' + detail::show_name(key);
    op.fault_method = method;
    op.fault_name = name;
    op.method = std::move(method);
    op.counter = counter;
    return op;
  }

  static bool is_no_such_bucket(const http_response& response) {
    const auto error = parse_error_body(response.body);
    return error && error->code == "NoSuchBucket";
  }

  /// The error for a final response the operation did not expect.
  std::system_error failure(const operation& op, const http_response& response) {
    ++counts_.failures;
    const auto code = response.status == 403 ? errc::store_access_denied : errc::store_io_failed;
    return std::system_error(make_error_code(code),
                             "S3 " + op.label + ": " + detail::describe_response(response, signing_keys()));
  }

  std::string relative(const operation& op, std::string& key) {
    if (!key.starts_with(prefix_)) {
      ++counts_.failures;
      throw std::system_error(make_error_code(errc::store_io_failed),
                              "S3 " + op.label + ": the listing returned " + storewatch::detail::quote(key) +
                                  ", which is outside the key prefix " + storewatch::detail::quote(prefix_));
    }
    return key.substr(prefix_.size());
  }

  /// The credentials requests are signed with now, to keep out of messages:
  /// the fixed ones, or the provider's latest.
  const credentials& signing_keys() const noexcept {
    return credentials_ ? credentials_->last() : config_.credentials;
  }

  /// The provider's current credentials for an attempt of `op`; its
  /// failure as the operation's ("S3 GET s3://b/k: container credentials
  /// (...): ...").
  asio::awaitable<credentials> fetched_keys(const operation& op) {
    try {
      co_return co_await credentials_->current();
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::operation_aborted) {
        throw std::system_error(e.code(), "S3 " + op.label + ": cancelled");
      }
      ++counts_.failures;
      throw std::system_error(e.code(), "S3 " + op.label + ": " + detail::what_without_code(e));
    }
  }

  /// The signed HTTP request of one attempt of `op`.
  http_request signed_request(const operation& op, const std::string& payload_hash, std::chrono::milliseconds timeout,
                              const credentials& keys) const {
    s3::request to_sign;
    to_sign.method = op.method;
    to_sign.path = op.target.path;
    to_sign.query = op.query;
    to_sign.headers.reserve(op.headers.size() + 1);
    to_sign.headers.emplace_back("Host", op.target.host);
    to_sign.headers.insert(to_sign.headers.end(), op.headers.begin(), op.headers.end());
    to_sign.payload_hash = payload_hash;
    signing_parameters parameters;
    parameters.region = config_.region;
    parameters.time = std::chrono::system_clock::now() + clock_offset_;
    auto signature = sign(to_sign, keys, parameters);

    http_request request;
    request.method = op.method;
    request.url = target_url(config_, op.target, op.query);
    request.headers = std::move(to_sign.headers);
    for (auto& h : signature.headers) request.headers.push_back(std::move(h));
    request.body = op.body;
    request.timeout = timeout;
    return request;
  }

  static std::string seconds_text(std::chrono::steady_clock::duration d) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms < 10'000) return std::to_string(ms) + " ms";
    return std::to_string(ms / 1000) + '.' + std::to_string(ms % 1000 / 100) + " s";
  }

  /// Sends `op` until an attempt gives a final response (returned, whatever
  /// its status), retrying transient failures. With temporary credentials,
  /// a 403 saying they expired gets them fetched anew and one more attempt.
  asio::awaitable<http_response> execute(const operation& op) {
    using asio::experimental::as_tuple;
    const auto started = std::chrono::steady_clock::now();
    const bool streamed = op.upload || op.download_fd >= 0;
    const auto payload_hash = op.upload ? op.upload_hash : sha256_hex(op.body);
    // A streamed transfer is bounded by the low-speed limit, not in time.
    const auto budget = streamed ? std::chrono::milliseconds(0) : options_.retry_budget;
    bool credentials_renewed = false;
    bool clock_corrected = false;
    // The server's last retryable answer ("HTTP 503 SlowDown: ..."): named
    // when a later attempt fails without one (e.g. cut short by the budget).
    std::string last_answer;
    for (unsigned attempt = 1;; ++attempt) {
      const auto elapsed =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      // Each attempt gets at most what is left of the budget.
      auto timeout = streamed ? std::chrono::milliseconds(0) : options_.http.request_timeout;
      if (budget.count() > 0) {
        const auto left = std::max(budget - elapsed, std::chrono::milliseconds(1));
        if (timeout.count() <= 0 || left < timeout) timeout = left;
      }
      credentials fetched;
      std::uint64_t serial = 0;
      if (credentials_) {
        fetched = co_await fetched_keys(op);
        serial = credentials_->serial();
      }
      const auto& keys = credentials_ ? fetched : config_.credentials;
      auto request = signed_request(op, payload_hash, timeout, keys);
      request.upload = op.upload;
      request.download_fd = op.download_fd;
      ++(counts_.*op.counter);
      std::error_code ec;
      http_response response;
      auto injected = detail::inject(op.fault_method, op.fault_name);
      if (injected) {
        ec = injected->transport;
        response = std::move(injected->response);
      } else {
        const auto sent = std::chrono::system_clock::now();
        std::tie(ec, response) = co_await http_.async_perform(std::move(request), as_tuple(asio::use_awaitable));
        if (!ec) {
          if (auto lost = detail::inject_after(op.fault_method, op.fault_name, response)) {
            ec = lost->transport;
            response = std::move(lost->response);
          }
        }
        if (const auto* date = response.header("date"); date && !ec) {
          observed_clock_.add(*date, sent, std::chrono::system_clock::now());
        }
      }
      if (ec == asio::error::operation_aborted) {
        throw std::system_error(ec, "S3 " + op.label + ": cancelled");
      }
      // A 403 for a skewed clock: sign with the server's time and try again
      // at once, once per request (that retry is not counted as an attempt).
      if (!ec && !clock_corrected) {
        if (const auto offset = detail::clock_correction(response, std::chrono::system_clock::now(), clock_offset_)) {
          clock_offset_ = *offset;
          clock_corrected = true;
          ++counts_.retries;
          --attempt;
          continue;
        }
      }
      auto outcome = detail::classify_attempt(ec, response, keys);
      if (outcome.verdict == detail::attempt_verdict::done && credentials_ && !credentials_renewed &&
          detail::is_expired_credentials(response)) {
        credentials_renewed = true;
        credentials_->reject(serial);
        ++counts_.retries;
        continue;
      }
      if (outcome.verdict == detail::attempt_verdict::done) co_return std::move(response);
      if (outcome.verdict == detail::attempt_verdict::fail) {
        ++counts_.failures;
        throw std::system_error(make_error_code(errc::store_io_failed), "S3 " + op.label + ": " + outcome.reason);
      }
      const auto delay = detail::retry_delay(options_.retry, attempt, unit_(random_), outcome.retry_after);
      const auto spent = std::chrono::steady_clock::now() - started;
      if (attempt >= static_cast<unsigned>(options_.max_attempts) || (budget.count() > 0 && spent + delay >= budget)) {
        ++counts_.failures;
        auto what = "S3 " + op.label + ": " + outcome.reason;
        if (ec && !last_answer.empty()) what += " (the server's last answer: " + last_answer + ")";
        what += " (gave up after " + std::to_string(attempt) + (attempt == 1 ? " attempt" : " attempts") + " in " +
                seconds_text(spent) + ")";
        if (ec == std::errc::timed_out) throw request_timed_out(make_error_code(errc::store_io_failed), what);
        throw std::system_error(make_error_code(errc::store_io_failed), what);
      }
      if (!ec) last_answer = outcome.reason;
      ++counts_.retries;
      timer_type timer(http_.get_executor(), delay);
      auto [wait_error] = co_await timer.async_wait(as_tuple(asio::use_awaitable));
      if (wait_error) throw std::system_error(asio::error::operation_aborted, "S3 " + op.label + ": cancelled");
    }
  }

  using timer_type =
      asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;

  s3::config config_;
  client_options options_;
  std::string prefix_;
  basic_http_client<Executor> http_;
  std::unique_ptr<basic_credential_provider<Executor>> credentials_;  // none for fixed keys
  request_counts counts_{};
  std::chrono::milliseconds clock_offset_{0};
  detail::clock_estimate observed_clock_{};
  std::string write_token_ = random_token();  // see put's write marks
  std::uint64_t writes_ = 0;
  std::minstd_rand random_{std::random_device{}()};
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
};

/// The S3 client on `asio::any_io_executor`.
using client = basic_client<>;

}  // namespace storewatch::s3
