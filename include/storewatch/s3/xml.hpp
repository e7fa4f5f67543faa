/// \file
/// Decoding the XML bodies of S3 responses: a ListObjectsV2 page, the
/// `<Error>` document of a failed request and a DeleteObjects result; and
/// the body of a DeleteObjects request.
//
// pugixml builds the tree; this file only walks it. Elements are matched by
// local name, whatever their namespace or prefix: AWS declares
// xmlns="http://s3.amazonaws.com/doc/2006-03-01/", s3rver declares
// xmlns="http://doc.s3.amazonaws.com/2006-03-01/" on listings and none on
// errors, and a prefixed "s3:Key" is the same element as "Key".
//
// pugixml is not validating and never reads a DTD, so entity declarations
// are not expanded (no "billion laughs", no external entities). Two of its
// leniencies would change what a value means and are checked before it
// parses: it stops at a NUL byte as if the body ended there, and it decodes a
// character reference to U+0000 (which truncates the value) or above
// U+10FFFF (which wraps around modulo 2^32: "&#4294967361;" is "A").
#pragma once

#include <storewatch/detail/text.hpp>

#include <pugixml.hpp>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace storewatch::s3 {

/// One object of a listing: a `<Contents>` element.
struct object_entry {
  /// The object's key, with the XML escapes decoded once (never twice, and
  /// never URL-decoded); non-empty, valid UTF-8.
  std::string key{};
  /// The object's size in bytes (`<Size>`).
  std::uint64_t size = 0;
  /// The ETag without its surrounding double quotes
  /// ("a96c1f1d9a51d38375f4684cc2b32b34"); empty when the element is absent.
  std::string etag{};
  /// `<LastModified>` as given ("2026-11-27T08:52:41.000Z"); empty when absent.
  std::string last_modified{};

  /// Member-wise equality.
  friend bool operator==(const object_entry&, const object_entry&) = default;
};

/// One page of a ListObjectsV2 response (`GET /bucket?list-type=2`).
///
/// Every string is valid UTF-8. The echoed request parameters (`bucket`,
/// `prefix`, `delimiter`, `start_after`, `continuation_token`) are empty when
/// the response leaves them out.
struct list_page {
  /// The objects (`<Contents>`), in the order of the response.
  std::vector<object_entry> objects{};
  /// The common prefixes (`<CommonPrefixes><Prefix>`), in the order of the
  /// response; each non-empty. s3rver repeats some on the next page:
  /// de-duplicate across pages.
  std::vector<std::string> common_prefixes{};
  /// `<IsTruncated>`: true when there is a next page.
  bool truncated = false;
  /// `<NextContinuationToken>`: the `continuation-token` of the next page;
  /// never empty when `truncated`.
  std::string next_continuation_token{};
  /// `<ContinuationToken>`: the token this page was requested with.
  std::string continuation_token{};
  /// `<StartAfter>`: the `start-after` this page was requested with (s3rver
  /// leaves it out when a continuation token was given).
  std::string start_after{};
  /// `<KeyCount>` as sent, or -1 when absent. AWS counts objects and common
  /// prefixes; s3rver counts objects only.
  int key_count = -1;
  /// `<MaxKeys>` as sent, or -1 when absent.
  int max_keys = -1;
  /// `<Name>`: the bucket.
  std::string bucket{};
  /// `<Prefix>`: the `prefix` this page was requested with.
  std::string prefix{};
  /// `<Delimiter>`: the `delimiter` this page was requested with.
  std::string delimiter{};
  /// `<EncodingType>`: "url" when the request asked for `encoding-type=url`,
  /// in which case keys, prefixes and `start_after` are URL-encoded and are
  /// returned here still encoded.
  std::string encoding_type{};

  /// Member-wise equality.
  friend bool operator==(const list_page&, const list_page&) = default;
};

/// The `<Error>` document of a failed S3 request. A field is empty when the
/// document leaves it out (s3rver sends no RequestId). Values are as given,
/// not checked: quote them (they may be any bytes) before showing them.
struct s3_error {
  std::string code{};        ///< `<Code>`: "NoSuchKey", "SignatureDoesNotMatch", "SlowDown", ...
  std::string message{};     ///< `<Message>`: the server's explanation, for people
  std::string key{};         ///< `<Key>`: the object's key, for errors about one object
  std::string bucket{};      ///< `<BucketName>`: the bucket, for errors such as NoSuchBucket
  std::string request_id{};  ///< `<RequestId>`: what AWS support asks for
  std::string server_time{};  ///< `<ServerTime>` of RequestTimeTooSkewed: the server's clock, ISO 8601

  /// Member-wise equality.
  friend bool operator==(const s3_error&, const s3_error&) = default;
};

/// A key a DeleteObjects request did not delete: an `<Error>` element of
/// its `<DeleteResult>`.
struct delete_error {
  std::string key{};      ///< `<Key>`, as sent (the full S3 key)
  std::string code{};     ///< `<Code>`: "AccessDenied", "InternalError", ...
  std::string message{};  ///< `<Message>`
};

namespace detail {

/// What is wrong with `body` that pugixml would not notice, or "" when
/// nothing is: a NUL byte, or a character reference to U+0000, a surrogate
/// or a value above U+10FFFF. (Also applied inside CDATA sections and
/// comments, where such text is literal; S3 sends neither.)
inline std::string xml_bytes_problem(std::string_view body) {
  if (const auto nul = body.find('\0'); nul != std::string_view::npos) {
    return "NUL byte at byte " + std::to_string(nul);
  }
  for (auto at = body.find("&#"); at != std::string_view::npos; at = body.find("&#", at + 2)) {
    std::size_t i = at + 2;
    const bool hex = i < body.size() && body[i] == 'x';
    if (hex) ++i;
    const std::size_t first_digit = i;
    std::uint32_t value = 0;
    for (; i < body.size(); ++i) {
      const char c = body[i];
      std::uint32_t digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<std::uint32_t>(c - '0');
      } else if (hex && c >= 'a' && c <= 'f') {
        digit = static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (hex && c >= 'A' && c <= 'F') {
        digit = static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        break;
      }
      // Saturate above U+10FFFF, where pugixml's own arithmetic wraps.
      value = value > 0x10FFFF ? value : value * (hex ? 16 : 10) + digit;
    }
    // pugixml decodes exactly "&#digits;" and "&#xhexdigits;"; anything
    // else stays literal text.
    if (i == first_digit || i >= body.size() || body[i] != ';') continue;
    if (value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
      return "character reference " + storewatch::detail::quote(body.substr(at, i + 1 - at), 40) + " at byte " +
             std::to_string(at) + " is not a character";
    }
  }
  return {};
}

/// Parses `body` into `document`; returns "" or what is wrong ("the body is
/// empty", "not XML: ...", "more than one root element").
inline std::string load_xml(pugi::xml_document& document, std::string_view body) {
  if (body.empty()) return "the body is empty";
  if (auto problem = xml_bytes_problem(body); !problem.empty()) return "not XML: " + problem;
  // Whitespace-only text is kept: " " is a valid key.
  const auto result = document.load_buffer(body.data(), body.size(), pugi::parse_default | pugi::parse_ws_pcdata,
                                           pugi::encoding_utf8);
  if (!result) {
    return std::string("not XML: ") + result.description() + " at byte " +
           std::to_string(static_cast<long long>(result.offset));
  }
  // pugixml accepts a fragment with several top-level elements; XML does not.
  int roots = 0;
  for (const auto node : document.children()) roots += node.type() == pugi::node_element ? 1 : 0;
  if (roots > 1) return "more than one root element";
  return {};
}

/// The local part of an element name: "Key" of "s3:Key".
inline std::string_view local_name(const pugi::xml_node& node) {
  const std::string_view name = node.name();
  const auto colon = name.rfind(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

/// The text of `node`: its text and CDATA children joined (a comment may
/// split text in two). False when it has child elements.
inline bool element_text(const pugi::xml_node& node, std::string& text) {
  text.clear();
  for (const auto child : node.children()) {
    if (child.type() == pugi::node_element) return false;
    if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) text += child.value();
  }
  return true;
}

/// The first child element of `parent` with local name `name`, or a null node.
inline pugi::xml_node first_child(const pugi::xml_node& parent, std::string_view name) {
  for (const auto child : parent.children()) {
    if (child.type() == pugi::node_element && local_name(child) == name) return child;
  }
  return {};
}

/// `text` without leading and trailing XML white space (space, tab, CR, LF),
/// which XML Schema ignores around numbers and booleans.
inline std::string_view trim_xml_space(std::string_view text) {
  constexpr std::string_view space = " \t\r\n";
  const auto first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(space) + 1 - first);
}

/// Sets `value` to the text of the first child element of `parent` named
/// `name`; to "" when it has child elements; leaves it when there is none.
inline void child_text(const pugi::xml_node& parent, std::string_view name, std::string& value) {
  const auto node = first_child(parent, name);
  if (node && !element_text(node, value)) value.clear();
}

/// `text` as XML character data: & < > escaped, and CR as a reference
/// (a parser would read a literal one as LF).
inline std::string escape_text(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '\r') {
      out += "&#13;";
    } else {
      out += c;
    }
  }
  return out;
}

/// A text element that may appear at most once in its parent.
struct single_field {
  std::string_view name;  ///< its local name
  std::string text{};     ///< its text, once seen
  bool seen = false;      ///< whether it was seen
};

/// The error of a bad ListObjectsV2 response: "S3 ListObjectsV2 response: <what>".
inline std::system_error list_error(const std::string& what) {
  return std::system_error(std::make_error_code(std::errc::bad_message), "S3 ListObjectsV2 response: " + what);
}

/// Takes `node` into the one of `fields` with its name, if any, checking it
/// appears once, holds only text, and that text is UTF-8. `where` names the
/// parent in messages (" in Contents"; "" for the root).
inline void take_field(const pugi::xml_node& node, std::initializer_list<single_field*> fields,
                       std::string_view where) {
  using storewatch::detail::quote;
  const auto name = local_name(node);
  for (auto* field : fields) {
    if (field->name != name) continue;
    const std::string what(field->name);
    if (field->seen) throw list_error("more than one " + what + " element" + std::string(where));
    field->seen = true;
    if (!element_text(node, field->text)) throw list_error(what + " has child elements" + std::string(where));
    if (!storewatch::detail::is_valid_utf8(field->text)) {
      throw list_error(what + ' ' + quote(field->text) + " is not UTF-8" + std::string(where));
    }
    return;
  }
}

/// The value of `field` as a decimal from 0 to `max`.
inline std::uint64_t field_number(const single_field& field, std::uint64_t max, std::string_view where) {
  std::uint64_t value = 0;
  if (!storewatch::detail::parse_decimal(trim_xml_space(field.text), value) || value > max) {
    throw list_error(std::string(field.name) + ' ' + storewatch::detail::quote(field.text) + " is not a number" +
                     (max < UINT64_MAX ? " from 0 to " + std::to_string(max) : std::string()) + std::string(where));
  }
  return value;
}

/// Reads one `<Contents>` element.
inline object_entry read_contents(const pugi::xml_node& contents) {
  single_field key{"Key"}, size{"Size"}, etag{"ETag"}, last_modified{"LastModified"};
  for (const auto child : contents.children()) {
    if (child.type() == pugi::node_element) take_field(child, {&key, &size, &etag, &last_modified}, " in Contents");
  }
  if (!key.seen) throw list_error("Contents element without Key");
  if (key.text.empty()) throw list_error("Contents element with an empty Key");
  const std::string for_key = " (Key " + storewatch::detail::quote(key.text) + ")";
  if (!size.seen) throw list_error("Contents element without Size" + for_key);
  object_entry entry;
  entry.size = field_number(size, UINT64_MAX, " in Contents" + for_key);
  entry.key = std::move(key.text);
  entry.etag = std::move(etag.text);
  if (entry.etag.size() >= 2 && entry.etag.front() == '"' && entry.etag.back() == '"') {
    entry.etag = entry.etag.substr(1, entry.etag.size() - 2);
  }
  entry.last_modified = std::move(last_modified.text);
  return entry;
}

/// Reads one `<CommonPrefixes>` element: its one `<Prefix>`.
inline std::string read_common_prefix(const pugi::xml_node& common) {
  single_field prefix{"Prefix"};
  for (const auto child : common.children()) {
    if (child.type() == pugi::node_element) take_field(child, {&prefix}, " in CommonPrefixes");
  }
  if (!prefix.seen) throw list_error("CommonPrefixes element without Prefix");
  if (prefix.text.empty()) throw list_error("CommonPrefixes element with an empty Prefix");
  return std::move(prefix.text);
}

}  // namespace detail

/// Decodes the body of a ListObjectsV2 response (`GET /bucket?list-type=2`)
/// sent with status 200.
///
/// The body is read as UTF-8, as S3 sends it. Elements are matched by local
/// name, in any namespace. Unknown elements (Owner, StorageClass,
/// ChecksumAlgorithm, ...) are ignored; XML white space around numbers and
/// booleans is allowed.
///
/// Throws std::system_error with `std::errc::bad_message` and a message
/// "S3 ListObjectsV2 response: <what is wrong>", naming the element at
/// fault, when:
/// - the body is empty, is not well-formed XML ("not XML: <pugixml's
///   description> at byte N"), has a NUL byte or a character reference that
///   is not a character (`&#0;`), or has more than one root element;
/// - the root element is not ListBucketResult;
/// - IsTruncated is missing or is not "true" or "false";
/// - IsTruncated is true and NextContinuationToken is missing or empty;
/// - a Contents element lacks Key or Size, its Key is empty, or its Size is
///   not an unsigned decimal that fits in 64 bits;
/// - a CommonPrefixes element lacks Prefix or its Prefix is empty;
/// - KeyCount or MaxKeys is not a decimal from 0 to INT_MAX;
/// - an element read here appears twice in one parent, holds child
///   elements, or holds text that is not UTF-8.
inline list_page parse_list_objects_v2(std::string_view body) {
  using detail::list_error;
  using storewatch::detail::quote;
  pugi::xml_document document;
  if (const auto problem = detail::load_xml(document, body); !problem.empty()) throw list_error(problem);
  const auto root = document.document_element();
  if (detail::local_name(root) != "ListBucketResult") {
    std::string what = "root element is " + quote(root.name());
    std::string code;
    if (detail::local_name(root) == "Error" && detail::element_text(detail::first_child(root, "Code"), code) &&
        !code.empty()) {
      what += " (an S3 error, code " + quote(code) + ")";
    }
    throw list_error(what + ", not ListBucketResult");
  }

  list_page page;
  detail::single_field truncated{"IsTruncated"}, next_token{"NextContinuationToken"}, token{"ContinuationToken"},
      start_after{"StartAfter"}, key_count{"KeyCount"}, max_keys{"MaxKeys"}, bucket{"Name"}, prefix{"Prefix"},
      delimiter{"Delimiter"}, encoding_type{"EncodingType"};
  for (const auto child : root.children()) {
    if (child.type() != pugi::node_element) continue;
    const auto name = detail::local_name(child);
    if (name == "Contents") {
      page.objects.push_back(detail::read_contents(child));
    } else if (name == "CommonPrefixes") {
      page.common_prefixes.push_back(detail::read_common_prefix(child));
    } else {
      detail::take_field(child,
                         {&truncated, &next_token, &token, &start_after, &key_count, &max_keys, &bucket, &prefix,
                          &delimiter, &encoding_type},
                         "");
    }
  }

  if (!truncated.seen) throw list_error("no IsTruncated element");
  const auto truncated_value = detail::trim_xml_space(truncated.text);
  if (truncated_value != "true" && truncated_value != "false") {
    throw list_error("IsTruncated " + quote(truncated.text) + " is not true or false");
  }
  page.truncated = truncated_value == "true";
  if (page.truncated && next_token.text.empty()) {
    throw list_error(next_token.seen ? "IsTruncated is true but NextContinuationToken is empty"
                                     : "IsTruncated is true but there is no NextContinuationToken");
  }
  if (key_count.seen) page.key_count = static_cast<int>(detail::field_number(key_count, INT_MAX, ""));
  if (max_keys.seen) page.max_keys = static_cast<int>(detail::field_number(max_keys, INT_MAX, ""));
  page.next_continuation_token = std::move(next_token.text);
  page.continuation_token = std::move(token.text);
  page.start_after = std::move(start_after.text);
  page.bucket = std::move(bucket.text);
  page.prefix = std::move(prefix.text);
  page.delimiter = std::move(delimiter.text);
  page.encoding_type = std::move(encoding_type.text);
  return page;
}

/// Decodes the body of a failed S3 request: an `<Error>` document (root
/// element with local name Error, in any namespace or none). Takes the first
/// Code, Message, Key, BucketName, RequestId and ServerTime children; other
/// children (HostId, Resource, StringToSign, ...) are ignored.
///
/// Returns std::nullopt when the body is empty, is not well-formed XML or its
/// root element is not Error (an HTML page from a proxy, or a HEAD response,
/// which has no body). Never throws: it runs on error paths (a memory
/// allocation failure also gives std::nullopt).
inline std::optional<s3_error> parse_error_body(std::string_view body) noexcept {
  try {
    pugi::xml_document document;
    if (!detail::load_xml(document, body).empty()) return std::nullopt;
    const auto root = document.document_element();
    if (detail::local_name(root) != "Error") return std::nullopt;
    s3_error error;
    detail::child_text(root, "Code", error.code);
    detail::child_text(root, "Message", error.message);
    detail::child_text(root, "Key", error.key);
    detail::child_text(root, "BucketName", error.bucket);
    detail::child_text(root, "RequestId", error.request_id);
    detail::child_text(root, "ServerTime", error.server_time);
    return error;
  } catch (...) {
    return std::nullopt;
  }
}

/// The `<Credentials>` of an STS AssumeRole* response, as given (the
/// expiration is ISO-8601 text).
struct sts_credentials {
  std::string access_key_id{};      ///< `<AccessKeyId>`
  std::string secret_access_key{};  ///< `<SecretAccessKey>`
  std::string session_token{};      ///< `<SessionToken>`
  std::string expiration{};         ///< `<Expiration>`, e.g. "2026-12-04T18:00:00Z"
};

/// Decodes an STS response such as AssumeRoleWithWebIdentity's:
/// `<...Response><...Result><Credentials>` (any namespace). Throws
/// std::system_error (std::errc::bad_message) saying what is wrong: not XML,
/// an `<ErrorResponse>` (its Code and Message), or no Credentials or no key
/// in them. Never shows the secret or the session token.
inline sts_credentials parse_sts_credentials(std::string_view body) {
  const auto fail = [](const std::string& what) {
    return std::system_error(std::make_error_code(std::errc::bad_message), what);
  };
  pugi::xml_document document;
  if (auto problem = detail::load_xml(document, body); !problem.empty()) throw fail(problem);
  const auto root = document.document_element();
  const auto text_of = [](const pugi::xml_node& parent, std::string_view name) {
    std::string value;
    const auto node = detail::first_child(parent, name);
    if (node && !detail::element_text(node, value)) value.clear();
    return value;
  };
  if (detail::local_name(root) == "ErrorResponse") {
    const auto error = detail::first_child(root, "Error");
    throw fail("STS error " + storewatch::detail::quote(text_of(error, "Code"), 64) + ": " +
               storewatch::detail::quote(text_of(error, "Message"), 200));
  }
  pugi::xml_node result;
  for (const auto child : root.children()) {
    if (child.type() == pugi::node_element && detail::local_name(child).ends_with("Result")) result = child;
  }
  const auto node = detail::first_child(result, "Credentials");
  if (!node) throw fail("no Credentials in the response (root element " + std::string(detail::local_name(root)) + ')');
  sts_credentials credentials{text_of(node, "AccessKeyId"), text_of(node, "SecretAccessKey"),
                              text_of(node, "SessionToken"), text_of(node, "Expiration")};
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    throw fail("the Credentials lack an AccessKeyId or SecretAccessKey");
  }
  return credentials;
}

/// The body of a DeleteObjects request (`POST /bucket?delete`) for `keys`
/// (full S3 keys, at most 1000), in quiet mode: the result lists only the
/// keys that were not deleted. Keys are escaped as XML text.
inline std::string delete_objects_body(const std::vector<std::string>& keys) {
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>";
  for (const auto& key : keys) body += "<Object><Key>" + detail::escape_text(key) + "</Key></Object>";
  body += "</Delete>";
  return body;
}

/// The keys a DeleteObjects response (status 200) says were not deleted:
/// its `<Error>` elements. `<Deleted>` elements (s3rver lists them even in
/// quiet mode) are ignored. Throws std::system_error with
/// `std::errc::bad_message` ("S3 DeleteObjects response: <what>") when the
/// body is not XML or its root is not DeleteResult.
inline std::vector<delete_error> parse_delete_result(std::string_view body) {
  const auto fail = [](const std::string& what) {
    return std::system_error(std::make_error_code(std::errc::bad_message), "S3 DeleteObjects response: " + what);
  };
  pugi::xml_document document;
  if (const auto problem = detail::load_xml(document, body); !problem.empty()) throw fail(problem);
  const auto root = document.document_element();
  if (detail::local_name(root) != "DeleteResult") {
    throw fail("the root element is " + storewatch::detail::quote(detail::local_name(root)) + ", not DeleteResult");
  }
  std::vector<delete_error> errors;
  for (const auto& node : root.children()) {
    if (node.type() != pugi::node_element || detail::local_name(node) != "Error") continue;
    delete_error error;
    detail::child_text(node, "Key", error.key);
    detail::child_text(node, "Code", error.code);
    detail::child_text(node, "Message", error.message);
    errors.push_back(std::move(error));
  }
  return errors;
}

}  // namespace storewatch::s3
