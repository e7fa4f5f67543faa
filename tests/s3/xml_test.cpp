// Tests for storewatch/s3/xml.hpp: ListObjectsV2 pages from AWS (with and
// without a namespace, with prefixes) and from s3rver 4.0.4 (the exchange
// recorded in tests/s3/server/README.md), escaping and UTF-8 in keys, the
// error for each malformed response, and S3 error bodies.
#include <storewatch/s3/xml.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace xml_test {

namespace {

namespace s3 = storewatch::s3;

constexpr std::string_view aws_namespace = R"(xmlns="http://s3.amazonaws.com/doc/2006-03-01/")";

/// The message of the std::system_error parse_list_objects_v2 throws for
/// `body`, after checking its code is std::errc::bad_message.
std::string list_error(std::string_view body) {
  try {
    s3::parse_list_objects_v2(body);
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::bad_message);
    const std::string message = e.what();
    CHECK(message.starts_with("S3 ListObjectsV2 response: "));
    return message;
  }
  FAIL("no std::system_error for " << body);
  return {};
}

/// A ListBucketResult in AWS's namespace around `inside`.
std::string aws_listing(std::string_view inside) {
  return R"(<?xml version="1.0" encoding="UTF-8"?>)" "\n<ListBucketResult " + std::string(aws_namespace) + ">" +
         std::string(inside) + "</ListBucketResult>";
}

/// One Contents element.
std::string contents(std::string_view key, std::string_view size = "1") {
  return "<Contents><Key>" + std::string(key) + "</Key><Size>" + std::string(size) + "</Size></Contents>";
}

// The first page of the real exchange in tests/s3/server/README.md.
constexpr std::string_view s3rver_page_1 =
    R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01/"><Name>storewatch-test</Name><Prefix>log/</Prefix><StartAfter>log/001</StartAfter><NextContinuationToken>1laMo1cdluR7M6QkCHiYGj26Yxe2fRk9rSgdVg/bUHwFQSf9iWjzgzYkLgOxd4de</NextContinuationToken><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>log/002</Key><LastModified>2026-11-27T08:52:41.000Z</LastModified><ETag>&quot;a96c1f1d9a51d38375f4684cc2b32b34&quot;</ETag><Size>7</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>log/003</Key><LastModified>2026-11-27T08:52:41.000Z</LastModified><ETag>&quot;95a00b1a778c37519387a97db932a9d7&quot;</ETag><Size>7</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>
)";

// Its second page.
constexpr std::string_view s3rver_page_2 =
    R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01/"><Name>storewatch-test</Name><Prefix>log/</Prefix><ContinuationToken>1laMo1cdluR7M6QkCHiYGj26Yxe2fRk9rSgdVg/bUHwFQSf9iWjzgzYkLgOxd4de</ContinuationToken><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>log/004</Key><LastModified>2026-11-27T08:52:41.000Z</LastModified><ETag>&quot;14c56c52ff468ea2e66d3ed4a221615a&quot;</ETag><Size>7</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>log/005</Key><LastModified>2026-11-27T08:52:41.000Z</LastModified><ETag>&quot;c3a5c114648ee8c82accf33293318afe&quot;</ETag><Size>7</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>
)";

}  // namespace

TEST_CASE("s3rver's listing pages are decoded") {
  const auto page = s3::parse_list_objects_v2(s3rver_page_1);
  CHECK(page.bucket == "storewatch-test");
  CHECK(page.prefix == "log/");
  CHECK(page.start_after == "log/001");
  CHECK(page.continuation_token.empty());
  CHECK(page.truncated);
  CHECK(page.next_continuation_token == "1laMo1cdluR7M6QkCHiYGj26Yxe2fRk9rSgdVg/bUHwFQSf9iWjzgzYkLgOxd4de");
  CHECK(page.key_count == 2);
  CHECK(page.max_keys == 2);
  CHECK(page.delimiter.empty());
  CHECK(page.encoding_type.empty());
  CHECK(page.common_prefixes.empty());
  CHECK(page.objects == std::vector<s3::object_entry>{
                            {"log/002", 7, "a96c1f1d9a51d38375f4684cc2b32b34", "2026-11-27T08:52:41.000Z"},
                            {"log/003", 7, "95a00b1a778c37519387a97db932a9d7", "2026-11-27T08:52:41.000Z"},
                        });

  const auto next = s3::parse_list_objects_v2(s3rver_page_2);
  CHECK_FALSE(next.truncated);
  CHECK(next.next_continuation_token.empty());
  CHECK(next.continuation_token == page.next_continuation_token);
  CHECK(next.start_after.empty());
  REQUIRE(next.objects.size() == 2);
  CHECK(next.objects[0] == s3::object_entry{"log/004", 7, "14c56c52ff468ea2e66d3ed4a221615a",
                                            "2026-11-27T08:52:41.000Z"});
  CHECK(next.objects[1].key == "log/005");
  CHECK(next.objects[1].etag == "c3a5c114648ee8c82accf33293318afe");
}

TEST_CASE("an AWS listing page with common prefixes and an owner is decoded") {
  // As AWS documents it (ListObjectsV2, "Example 2"), with a delimiter and
  // fetch-owner, pretty-printed.
  const std::string body = aws_listing(R"(
  <Name>bucket</Name>
  <Prefix>photos/</Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>photos/index.html</Key>
    <LastModified>2014-11-21T19:40:05.000Z</LastModified>
    <ETag>"70ee1738b6b21e2c8a43f3a5ab0eee71"</ETag>
    <Size>11</Size>
    <Owner>
      <ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>
      <DisplayName>mtd</DisplayName>
    </Owner>
    <StorageClass>STANDARD</StorageClass>
    <ChecksumAlgorithm>CRC32</ChecksumAlgorithm>
  </Contents>
  <CommonPrefixes>
    <Prefix>photos/2006/February/</Prefix>
  </CommonPrefixes>
  <CommonPrefixes>
    <Prefix>photos/2006/January/</Prefix>
  </CommonPrefixes>
)");
  const auto page = s3::parse_list_objects_v2(body);
  CHECK(page.bucket == "bucket");
  CHECK(page.prefix == "photos/");
  CHECK(page.delimiter == "/");
  CHECK(page.key_count == 3);
  CHECK(page.max_keys == 1000);
  CHECK_FALSE(page.truncated);
  CHECK(page.objects == std::vector<s3::object_entry>{
                            {"photos/index.html", 11, "70ee1738b6b21e2c8a43f3a5ab0eee71", "2014-11-21T19:40:05.000Z"}});
  CHECK(page.common_prefixes == std::vector<std::string>{"photos/2006/February/", "photos/2006/January/"});
}

TEST_CASE("elements are matched by local name, in any namespace or none") {
  const std::string inside = "<IsTruncated>true</IsTruncated><NextContinuationToken>t+/=</NextContinuationToken>" +
                             contents("a", "5") + "<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>";
  const std::vector<std::string> bodies{
      aws_listing(inside),
      R"(<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01/">)" + inside + "</ListBucketResult>",
      "<ListBucketResult>" + inside + "</ListBucketResult>",
      R"(<s3:ListBucketResult xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/">)"
      R"(<s3:IsTruncated>true</s3:IsTruncated><s3:NextContinuationToken>t+/=</s3:NextContinuationToken>)"
      R"(<s3:Contents><s3:Key>a</s3:Key><s3:Size>5</s3:Size></s3:Contents>)"
      R"(<s3:CommonPrefixes><s3:Prefix>d/</s3:Prefix></s3:CommonPrefixes></s3:ListBucketResult>)",
      // Mixed: a default namespace and a prefix bound to the same URI.
      R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/")"
      R"( xmlns:x="http://s3.amazonaws.com/doc/2006-03-01/">)"
      R"(<x:IsTruncated>true</x:IsTruncated><NextContinuationToken>t+/=</NextContinuationToken>)"
      R"(<Contents><x:Key>a</x:Key><Size>5</Size></Contents>)"
      R"(<x:CommonPrefixes><Prefix>d/</Prefix></x:CommonPrefixes></ListBucketResult>)",
  };
  for (const auto& body : bodies) {
    INFO(body);
    const auto page = s3::parse_list_objects_v2(body);
    CHECK(page.truncated);
    CHECK(page.next_continuation_token == "t+/=");
    CHECK(page.objects == std::vector<s3::object_entry>{{"a", 5, "", ""}});
    CHECK(page.common_prefixes == std::vector<std::string>{"d/"});
    CHECK(page.key_count == -1);
    CHECK(page.max_keys == -1);
  }
}

TEST_CASE("an empty bucket lists as an empty page") {
  const auto page = s3::parse_list_objects_v2(
      aws_listing("<Name>bucket</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
                  "<IsTruncated>false</IsTruncated>"));
  CHECK(page.objects.empty());
  CHECK(page.common_prefixes.empty());
  CHECK_FALSE(page.truncated);
  CHECK(page.key_count == 0);
  CHECK(page.bucket == "bucket");
  CHECK(page.prefix.empty());

  // s3rver with max-keys=0: self-closing elements.
  const auto minimal = s3::parse_list_objects_v2(
      R"(<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01/"><Name>b</Name><Prefix/>)"
      R"(<KeyCount>0</KeyCount><MaxKeys>0</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>)");
  CHECK(minimal.objects.empty());
  CHECK(minimal.max_keys == 0);
}

TEST_CASE("keys are unescaped once, and keep UTF-8 and white space") {
  const std::string body = aws_listing(
      "<IsTruncated>false</IsTruncated>" + contents("a=b&amp;c") + contents("x&lt;y&gt;z") +
      contents("q&quot;u&apos;o") + contents("&#x41;&#66;") +
      // s3rver escapes & < > ' twice: one decoding gives the escaped text.
      contents("k/a=b&amp;amp;c") + contents("x&amp;#x27;y") +
      contents("caf\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC/\xF0\x9F\x93\x84") + contents("caf&#xE9;") +
      contents(" ") + contents(" lead and trail ") + contents("tab\there") + contents("<![CDATA[a<b&c]]>") +
      contents("split<!-- a comment -->key") + "<CommonPrefixes><Prefix>p&amp;q/</Prefix></CommonPrefixes>" +
      "<StartAfter>s&lt;t</StartAfter>");
  const auto page = s3::parse_list_objects_v2(body);
  std::vector<std::string> keys;
  for (const auto& object : page.objects) keys.push_back(object.key);
  CHECK(keys == std::vector<std::string>{"a=b&c", "x<y>z", "q\"u'o", "AB", "k/a=b&amp;c", "x&#x27;y",
                                         "caf\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC/\xF0\x9F\x93\x84", "caf\xC3\xA9", " ",
                                         " lead and trail ", "tab\there", "a<b&c", "splitkey"});
  CHECK(page.common_prefixes == std::vector<std::string>{"p&q/"});
  CHECK(page.start_after == "s<t");
}

TEST_CASE("ETags lose their quotes, other fields are as given") {
  const auto page = s3::parse_list_objects_v2(aws_listing(
      "<IsTruncated>false</IsTruncated>"
      R"(<Contents><Key>a</Key><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e-2&quot;</ETag><Size>0</Size>)"
      R"(<LastModified>2009-10-12T17:50:30.000Z</LastModified></Contents>)"
      R"(<Contents><Key>b</Key><ETag>"abc"</ETag><Size>18446744073709551615</Size></Contents>)"
      R"(<Contents><Key>c</Key><ETag>unquoted</ETag><Size>007</Size></Contents>)"
      R"(<Contents><Key>d</Key><ETag>"</ETag><Size>
        12
      </Size></Contents>)"));
  REQUIRE(page.objects.size() == 4);
  CHECK(page.objects[0] == s3::object_entry{"a", 0, "d41d8cd98f00b204e9800998ecf8427e-2", "2009-10-12T17:50:30.000Z"});
  CHECK(page.objects[1].etag == "abc");
  CHECK(page.objects[1].size == UINT64_MAX);
  CHECK(page.objects[2].etag == "unquoted");
  CHECK(page.objects[2].size == 7);
  CHECK(page.objects[3].etag == "\"");
  CHECK(page.objects[3].size == 12);
}

TEST_CASE("pagination fields are decoded") {
  const auto page = s3::parse_list_objects_v2(aws_listing(
      "<ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>"
      "<NextContinuationToken>1/QWp0ZDhpem1v2dBS+a/1L8cWBl1WqjlE8zaqXz7s8k=</NextContinuationToken>"
      "<StartAfter>ignored-by-s3rver</StartAfter><KeyCount>2147483647</KeyCount><MaxKeys>1</MaxKeys>"
      "<EncodingType>url</EncodingType><IsTruncated> true </IsTruncated>" +
      contents("a%2Fb")));
  CHECK(page.truncated);
  CHECK(page.continuation_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  CHECK(page.next_continuation_token == "1/QWp0ZDhpem1v2dBS+a/1L8cWBl1WqjlE8zaqXz7s8k=");
  CHECK(page.start_after == "ignored-by-s3rver");
  CHECK(page.key_count == 2147483647);
  CHECK(page.max_keys == 1);
  CHECK(page.encoding_type == "url");
  REQUIRE(page.objects.size() == 1);
  CHECK(page.objects[0].key == "a%2Fb");  // not URL-decoded

  // Not truncated, yet a next token: kept as given.
  const auto last = s3::parse_list_objects_v2(
      aws_listing("<IsTruncated>false</IsTruncated><NextContinuationToken>x</NextContinuationToken>"));
  CHECK_FALSE(last.truncated);
  CHECK(last.next_continuation_token == "x");
}

TEST_CASE("malformed listings are rejected, naming the element or field") {
  const std::string ok_truncated = "<IsTruncated>false</IsTruncated>";
  const std::vector<std::pair<std::string, std::string>> cases{
      // Not a listing.
      {"", "the body is empty"},
      {"not xml at all", "not XML: No document element found at byte"},
      {"<ListBucketResult><IsTruncated>false</IsTruncated>", "not XML: Start-end tags mismatch at byte"},
      {"<ListBucketResult><Contents></ListBucketResult>", "not XML: Start-end tags mismatch at byte"},
      {"<ListBucketResult attr=></ListBucketResult>", "not XML: Error parsing element attribute at byte"},
      {"<html><body>502 Bad Gateway</body></html>", R"(root element is "html", not ListBucketResult)"},
      {R"(<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>)",
       R"(root element is "ListAllMyBucketsResult", not ListBucketResult)"},
      {"<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>",
       R"(root element is "Error" (an S3 error, code "NoSuchBucket"), not ListBucketResult)"},
      {"<ListBucketResult>" + ok_truncated + "</ListBucketResult><ListBucketResult/>", "more than one root element"},
      {"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>" + std::string(1, '\0') + "<x/>",
       "not XML: NUL byte at byte 69"},
      {aws_listing(ok_truncated + contents("a&#0;b")), R"(character reference "&#0;" at byte)"},
      {aws_listing(ok_truncated + contents("&#x110000;")), R"(character reference "&#x110000;")"},
      {aws_listing(ok_truncated + contents("&#4294967361;")), R"(character reference "&#4294967361;")"},
      {aws_listing(ok_truncated + contents("&#xD800;")), R"(character reference "&#xD800;")"},

      // IsTruncated and the continuation token.
      {aws_listing(contents("a")), "no IsTruncated element"},
      {aws_listing("<IsTruncated>yes</IsTruncated>"), R"(IsTruncated "yes" is not true or false)"},
      {aws_listing("<IsTruncated>TRUE</IsTruncated>"), R"(IsTruncated "TRUE" is not true or false)"},
      {aws_listing("<IsTruncated></IsTruncated>"), R"(IsTruncated "" is not true or false)"},
      {aws_listing("<IsTruncated>true</IsTruncated>"), "IsTruncated is true but there is no NextContinuationToken"},
      {aws_listing("<IsTruncated>true</IsTruncated><NextContinuationToken/>"),
       "IsTruncated is true but NextContinuationToken is empty"},
      {aws_listing(ok_truncated + ok_truncated), "more than one IsTruncated element"},
      {aws_listing("<IsTruncated><b>true</b></IsTruncated>"), "IsTruncated has child elements"},

      // Contents.
      {aws_listing(ok_truncated + "<Contents><Size>1</Size></Contents>"), "Contents element without Key"},
      {aws_listing(ok_truncated + contents("")), "Contents element with an empty Key"},
      {aws_listing(ok_truncated + "<Contents><Key>a</Key></Contents>"), R"(Contents element without Size (Key "a"))"},
      {aws_listing(ok_truncated + contents("a", "abc")), R"(Size "abc" is not a number in Contents (Key "a"))"},
      {aws_listing(ok_truncated + contents("a", "-1")), R"(Size "-1" is not a number)"},
      {aws_listing(ok_truncated + contents("a", "+1")), R"(Size "+1" is not a number)"},
      {aws_listing(ok_truncated + contents("a", "1.5")), R"(Size "1.5" is not a number)"},
      {aws_listing(ok_truncated + contents("a", "")), R"(Size "" is not a number)"},
      {aws_listing(ok_truncated + contents("a", "18446744073709551616")),
       R"(Size "18446744073709551616" is not a number)"},
      {aws_listing(ok_truncated + "<Contents><Key>a</Key><Key>b</Key><Size>1</Size></Contents>"),
       "more than one Key element in Contents"},
      {aws_listing(ok_truncated + "<Contents><Key>a</Key><Size>1</Size><ETag>x</ETag><ETag>y</ETag></Contents>"),
       "more than one ETag element in Contents"},
      {aws_listing(ok_truncated + "<Contents><Key><sub>a</sub></Key><Size>1</Size></Contents>"),
       "Key has child elements in Contents"},
      {aws_listing(ok_truncated + contents("\xC3(")), R"(Key "\xc3(" is not UTF-8 in Contents)"},
      {aws_listing(ok_truncated + contents("&#xDFFF;")), "is not a character"},

      // CommonPrefixes.
      {aws_listing(ok_truncated + "<CommonPrefixes></CommonPrefixes>"), "CommonPrefixes element without Prefix"},
      {aws_listing(ok_truncated + "<CommonPrefixes><Prefix/></CommonPrefixes>"),
       "CommonPrefixes element with an empty Prefix"},
      {aws_listing(ok_truncated + "<CommonPrefixes><Prefix>a/</Prefix><Prefix>b/</Prefix></CommonPrefixes>"),
       "more than one Prefix element in CommonPrefixes"},

      // Counts and other fields.
      {aws_listing(ok_truncated + "<KeyCount>x</KeyCount>"), R"(KeyCount "x" is not a number from 0 to 2147483647)"},
      {aws_listing(ok_truncated + "<KeyCount>2147483648</KeyCount>"), R"(KeyCount "2147483648" is not a number)"},
      {aws_listing(ok_truncated + "<MaxKeys>-1</MaxKeys>"), R"(MaxKeys "-1" is not a number)"},
      {aws_listing(ok_truncated + "<Name>a</Name><Name>b</Name>"), "more than one Name element"},
      {aws_listing(ok_truncated + "<Prefix>\xFF</Prefix>"), R"(Prefix "\xff" is not UTF-8)"},
  };
  for (const auto& [body, says] : cases) {
    INFO(body);
    const auto message = list_error(body);
    INFO(message);
    CHECK(message.find(says) != std::string::npos);
  }
}

TEST_CASE("what pugixml leaves undecoded stays as text") {
  // Not character references, so pugixml keeps them literally; and no DTD
  // entity is ever expanded.
  const auto page = s3::parse_list_objects_v2(
      "<!DOCTYPE ListBucketResult [<!ENTITY boom \"BOOM\">]>"
      "<ListBucketResult><IsTruncated>false</IsTruncated>" +
      contents("&#;&#x;&#0a;&#12") + contents("&boom;") + "</ListBucketResult>");
  REQUIRE(page.objects.size() == 2);
  CHECK(page.objects[0].key == "&#;&#x;&#0a;&#12");
  CHECK(page.objects[1].key == "&boom;");
}

TEST_CASE("AWS error bodies are decoded") {
  const auto error = s3::parse_error_body(
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      "\n<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message>"
      "<Key>log/a&amp;b</Key><BucketName>my-bucket</BucketName><Resource>/my-bucket/log/a&amp;b</Resource>"
      "<RequestId>4442587FB7D0A2F9</RequestId><HostId>aBcD/eFgH=</HostId></Error>");
  REQUIRE(error.has_value());
  CHECK(*error == s3::s3_error{"NoSuchKey", "The resource you requested does not exist", "log/a&b", "my-bucket",
                               "4442587FB7D0A2F9"});

  const auto throttled = s3::parse_error_body(
      R"(<Error xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Code>SlowDown</Code>)"
      R"(<Message>Please reduce your request rate.</Message><RequestId>R1</RequestId></Error>)");
  REQUIRE(throttled.has_value());
  CHECK(throttled->code == "SlowDown");
  CHECK(throttled->request_id == "R1");
  CHECK(throttled->key.empty());

  const auto prefixed =
      s3::parse_error_body(R"(<s3:Error xmlns:s3="urn:x"><s3:Code>AccessDenied</s3:Code></s3:Error>)");
  REQUIRE(prefixed.has_value());
  CHECK(prefixed->code == "AccessDenied");
}

TEST_CASE("s3rver error bodies are decoded") {
  const auto signature = s3::parse_error_body(
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      "\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match "
      "the signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>S3RVER"
      "</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20261127T085241Z</StringToSign>"
      "<StringToSignBytes>41 57 53</StringToSignBytes></Error>");
  REQUIRE(signature.has_value());
  CHECK(signature->code == "SignatureDoesNotMatch");
  CHECK(signature->message.starts_with("The request signature we calculated"));
  CHECK(signature->request_id.empty());

  const auto bucket = s3::parse_error_body(
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      "\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>"
      "<BucketName>nope</BucketName></Error>");
  REQUIRE(bucket.has_value());
  CHECK(*bucket == s3::s3_error{"NoSuchBucket", "The specified bucket does not exist", "", "nope", ""});

  // s3rver escapes keys twice: one decoding leaves "&amp;".
  const auto key = s3::parse_error_body(
      "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
      "<Key>k/a=b&amp;amp;c</Key></Error>");
  REQUIRE(key.has_value());
  CHECK(key->key == "k/a=b&amp;c");
}

TEST_CASE("bodies that are not S3 errors give nullopt") {
  const std::vector<std::string> bodies{
      "",
      "   ",
      "Internal Server Error",
      "<html><body><h1>503 Service Unavailable</h1></body></html>",
      "<Error><Code>Unclosed</Code>",
      "<Error/><Error/>",
      "<Error><Code>A" + std::string(1, '\0') + "B</Code></Error>",
      "<Error><Code>&#0;</Code></Error>",
      "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
      "{\"error\": \"json\"}",
  };
  for (const auto& body : bodies) {
    INFO(body);
    CHECK_FALSE(s3::parse_error_body(body).has_value());
  }
}

TEST_CASE("error bodies missing fields, or with markup in them, still decode") {
  const auto empty = s3::parse_error_body("<Error/>");
  REQUIRE(empty.has_value());
  CHECK(*empty == s3::s3_error{});

  const auto odd = s3::parse_error_body(
      "<Error><Code>A</Code><Code>B</Code><Message><b>bold</b></Message><Key> k </Key></Error>");
  REQUIRE(odd.has_value());
  CHECK(odd->code == "A");  // the first one
  CHECK(odd->message.empty());
  CHECK(odd->key == " k ");
}

}  // namespace xml_test
