// Fuzz target: S3 response bodies (storewatch::s3::parse_list_objects_v2 and
// storewatch::s3::parse_error_body).
//
// Properties checked (abort on violation):
// - parse_list_objects_v2 either returns a list_page or throws
//   std::system_error with std::errc::bad_message and a message starting
//   "S3 ListObjectsV2 response: ", as documented; nothing else escapes;
// - it is deterministic: a second parse gives the same page or message;
// - a page's invariants hold: every string is valid UTF-8, every key and
//   common prefix is non-empty, a truncated page has a next continuation
//   token, key_count and max_keys are -1 or more;
// - round trip: the page written back as XML (in AWS's namespace, s3rver's,
//   none, or with an "s3:" prefix, chosen by the input's length) parses to
//   an equal page;
// - parse_error_body never throws (it is noexcept: a throw would terminate)
//   and does not accept a body parse_list_objects_v2 accepts; when it gives
//   an s3_error, parse_list_objects_v2 rejected the body for its root
//   element, and the error written back as XML parses to an equal one.
#include <storewatch/detail/text.hpp>
#include <storewatch/s3/xml.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

namespace {

namespace s3 = storewatch::s3;

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_s3_listing: property violated at line %u: %s\n", static_cast<unsigned>(where.line()),
               what);
  std::abort();
}

constexpr std::string_view message_prefix = "S3 ListObjectsV2 response: ";

// The page, or the message of the documented error. Anything else thrown is
// a violation.
std::variant<s3::list_page, std::string> parse(std::string_view body) {
  try {
    return s3::parse_list_objects_v2(body);
  } catch (const std::system_error& error) {
    if (error.code() != std::errc::bad_message) {
      std::fprintf(stderr, "fuzz_s3_listing: threw %s\n", error.what());
      require(false, "threw a std::system_error other than std::errc::bad_message");
    }
    const std::string message = error.what();
    require(message.starts_with(message_prefix) && message.size() > message_prefix.size(),
            "the message does not start with \"S3 ListObjectsV2 response: \"");
    return message;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "fuzz_s3_listing: threw %s\n", other.what());
    require(false, "threw something other than std::system_error (documented: std::errc::bad_message)");
  }
  return std::string();
}

// `text` as XML character data: & < > escaped, and CR as a reference (a
// raw CR would be read back as LF).
std::string escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\r': out += "&#13;"; break;
      default: out += c;
    }
  }
  return out;
}

// Writes elements with the given name prefix ("" or "s3:").
struct writer {
  std::string prefix;
  std::string out{};

  void element(std::string_view name, std::string_view text) {
    out += '<' + prefix + std::string(name) + '>' + escape(text) + "</" + prefix + std::string(name) + '>';
  }
  void open(std::string_view name) { out += '<' + prefix + std::string(name) + '>'; }
  void close(std::string_view name) { out += "</" + prefix + std::string(name) + '>'; }
};

// The root start tag for style 0-3: AWS's namespace, s3rver's, none, or a prefix.
std::string root_tag(std::string_view name, std::size_t style, std::string& prefix) {
  switch (style % 4) {
    case 0: return '<' + std::string(name) + R"( xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)";
    case 1: return '<' + std::string(name) + R"( xmlns="http://doc.s3.amazonaws.com/2006-03-01/">)";
    case 2: return '<' + std::string(name) + '>';
    default:
      prefix = "s3:";
      return "<s3:" + std::string(name) + R"( xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/">)";
  }
}

std::string write_page(const s3::list_page& page, std::size_t style) {
  std::string prefix;
  const auto start = root_tag("ListBucketResult", style, prefix);
  writer w{prefix};
  w.out = R"(<?xml version="1.0" encoding="UTF-8"?>)" + start;
  w.element("Name", page.bucket);
  w.element("Prefix", page.prefix);
  w.element("Delimiter", page.delimiter);
  w.element("EncodingType", page.encoding_type);
  w.element("StartAfter", page.start_after);
  w.element("ContinuationToken", page.continuation_token);
  w.element("NextContinuationToken", page.next_continuation_token);
  if (page.key_count >= 0) w.element("KeyCount", std::to_string(page.key_count));
  if (page.max_keys >= 0) w.element("MaxKeys", std::to_string(page.max_keys));
  w.element("IsTruncated", page.truncated ? "true" : "false");
  for (const auto& object : page.objects) {
    w.open("Contents");
    w.element("Key", object.key);
    w.element("LastModified", object.last_modified);
    w.element("ETag", '"' + object.etag + '"');
    w.element("Size", std::to_string(object.size));
    w.element("StorageClass", "STANDARD");
    w.close("Contents");
  }
  for (const auto& common : page.common_prefixes) {
    w.open("CommonPrefixes");
    w.element("Prefix", common);
    w.close("CommonPrefixes");
  }
  w.close("ListBucketResult");
  return w.out;
}

std::string write_error(const s3::s3_error& error, std::size_t style) {
  std::string prefix;
  const auto start = root_tag("Error", style, prefix);
  writer w{prefix};
  w.out = start;
  w.element("Code", error.code);
  w.element("Message", error.message);
  w.element("Key", error.key);
  w.element("BucketName", error.bucket);
  w.element("RequestId", error.request_id);
  w.element("HostId", "ignored");
  w.close("Error");
  return w.out;
}

void check_invariants(const s3::list_page& page) {
  using storewatch::detail::is_valid_utf8;
  require(!page.truncated || !page.next_continuation_token.empty(), "a truncated page without a next token");
  require(page.key_count >= -1 && page.max_keys >= -1, "key_count or max_keys below -1");
  for (const auto* text : {&page.next_continuation_token, &page.continuation_token, &page.start_after, &page.bucket,
                           &page.prefix, &page.delimiter, &page.encoding_type}) {
    require(is_valid_utf8(*text), "a page field is not UTF-8");
  }
  for (const auto& object : page.objects) {
    require(!object.key.empty(), "an empty key");
    require(is_valid_utf8(object.key) && is_valid_utf8(object.etag) && is_valid_utf8(object.last_modified),
            "an object field is not UTF-8");
  }
  for (const auto& common : page.common_prefixes) {
    require(!common.empty() && is_valid_utf8(common), "an empty or non-UTF-8 common prefix");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  const auto parsed = parse(body);
  require(parse(body) == parsed, "parsing twice gave different results");
  static_assert(noexcept(s3::parse_error_body(body)), "parse_error_body is documented never to throw");
  const auto error = s3::parse_error_body(body);

  if (const auto* page = std::get_if<s3::list_page>(&parsed)) {
    check_invariants(*page);
    require(!error.has_value(), "parse_error_body accepted a ListObjectsV2 page");
    const auto written = write_page(*page, size);
    const auto again = parse(written);
    if (const auto* message = std::get_if<std::string>(&again)) {
      std::fprintf(stderr, "fuzz_s3_listing: %s\nfor %s\n", message->c_str(), written.c_str());
    }
    require(std::holds_alternative<s3::list_page>(again) && std::get<s3::list_page>(again) == *page,
            "a page written back as XML does not parse to the same page");
  }

  if (error) {
    const auto& message = std::get<std::string>(parsed);  // a page was ruled out above
    require(message.find("root element is ") != std::string::npos,
            "an S3 error body rejected as a listing for something other than its root element");
    const auto again = s3::parse_error_body(write_error(*error, size));
    require(again.has_value() && *again == *error, "an s3_error written back as XML does not parse to the same one");
  }
  return 0;
}
