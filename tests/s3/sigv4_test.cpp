// Tests for storewatch/s3/sigv4.hpp: every case of the AWS Signature Version 4
// test suite (tests/s3/aws-sigv4, see its README.md), AWS's S3 example, the
// encoding rules, and that no error shows a credential.
#include <storewatch/s3/sigv4.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace sigv4_test {

#ifndef STOREWATCH_TEST_SIGV4_DIR
#error "define STOREWATCH_TEST_SIGV4_DIR as the folder of the AWS SigV4 test suite"
#endif

namespace {

namespace s3 = storewatch::s3;
using namespace std::chrono_literals;

const std::filesystem::path suite_dir = STOREWATCH_TEST_SIGV4_DIR;

// The signing context every case of the suite shares (its README.md).
constexpr std::string_view suite_access_key_id = "AKIDEXAMPLE";
constexpr std::string_view suite_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
// get-vanilla-with-session-token: the token is a credential, not in the .req.
constexpr std::string_view suite_session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";

std::chrono::system_clock::time_point utc(std::chrono::year_month_day day, std::chrono::seconds time_of_day) {
  return std::chrono::sys_days(day) + time_of_day;
}

s3::signing_parameters suite_parameters() {
  s3::signing_parameters parameters;
  parameters.region = "us-east-1";
  parameters.service = "service";
  parameters.time = utc(std::chrono::year(2015) / 8 / 30, 12h + 36min);
  parameters.content_sha256_header = false;  // the generic suite has no S3 header
  return parameters;
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A case: its name ("normalize-path/get-space") and the path of its files
/// without the extension.
struct suite_case {
  std::string name;
  std::filesystem::path files;
};

/// Every case of the suite: each folder holding a `<folder>.req`.
std::vector<suite_case> suite_cases() {
  std::vector<suite_case> cases;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(suite_dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".req") continue;
    auto files = entry.path();
    files.replace_extension();
    cases.push_back({files.parent_path().lexically_relative(suite_dir).generic_string(), files});
  }
  std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return cases;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

/// A parsed `.req` file.
struct parsed_request {
  s3::request request;
  std::string head;                 ///< request line and headers, without the final newline
  std::optional<std::string> body;  ///< what follows the blank line, if there is one
};

/// Parses a raw HTTP/1.1 request as the suite writes them: LF line ends, a
/// request line whose target may hold a space (so its version is after the
/// last space), `Name:value` headers with obsolete line folding, and a body
/// after a blank line.
parsed_request parse_request(const std::string& text) {
  parsed_request parsed;
  const auto blank = text.find("\n\n");
  parsed.head = text.substr(0, blank);
  if (blank != std::string::npos) parsed.body = text.substr(blank + 2);
  while (parsed.head.ends_with('\n')) parsed.head.pop_back();

  std::istringstream lines(parsed.head);
  std::string line;
  std::getline(lines, line);
  const auto first_space = line.find(' ');
  const auto last_space = line.rfind(' ');
  REQUIRE(first_space != std::string::npos);
  REQUIRE(last_space > first_space);
  parsed.request.method = line.substr(0, first_space);
  const auto target = line.substr(first_space + 1, last_space - first_space - 1);
  const auto question = target.find('?');
  parsed.request.path = percent_decode(target.substr(0, question));
  if (question != std::string::npos) {
    std::istringstream parameters(target.substr(question + 1));
    std::string parameter;
    while (std::getline(parameters, parameter, '&')) {
      const auto equals = parameter.find('=');
      parsed.request.query.emplace_back(percent_decode(parameter.substr(0, equals)),
                                        equals == std::string::npos ? std::string()
                                                                    : percent_decode(parameter.substr(equals + 1)));
    }
  }
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') {
      // Obsolete line folding: the fold becomes one space (RFC 9112 5.2).
      REQUIRE(!parsed.request.headers.empty());
      parsed.request.headers.back().second += ' ' + line.substr(line.find_first_not_of(" \t"));
      continue;
    }
    const auto colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    parsed.request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  parsed.request.payload_hash = s3::sha256_hex(parsed.body.value_or(""));
  return parsed;
}

/// The path normalized as non-S3 services do before signing: "." and ".."
/// segments resolved, repeated slashes made one. S3 does not do this.
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const auto segment = path.substr(start, end - start);
    trailing_slash = segment.empty() || segment == "." || segment == "..";
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto segment : segments) out += '/' + std::string(segment);
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

/// Line `index` (from 0) of `text`.
std::string line_of(const std::string& text, std::size_t index) {
  std::istringstream lines(text);
  std::string line;
  for (std::size_t i = 0; i <= index; ++i) std::getline(lines, line);
  return line;
}

std::string header_value(const s3::request& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  FAIL("no header " << name);
  return {};
}

/// The token of the two post-sts-token cases, from the suite's readme.txt.
std::string post_sts_token() {
  const auto text = read_file(suite_dir / "post-sts-token" / "readme.txt");
  constexpr std::string_view label = "X-Amz-Security-Token:";
  const auto at = text.rfind(label);
  REQUIRE(at != std::string::npos);
  auto token = text.substr(at + label.size());
  token.erase(0, token.find_first_not_of(" \n"));
  token.erase(token.find_last_not_of(" \n") + 1);
  return token;
}

template <typename T>
concept printable = requires(std::ostream& out, const T& value) { out << value; };

}  // namespace

TEST_CASE("the AWS SigV4 test suite copy has its 34 cases") {
  const auto cases = suite_cases();
  CHECK(cases.size() == 34);
  CHECK(std::filesystem::is_regular_file(suite_dir / "LICENSE"));
  CHECK(std::filesystem::is_regular_file(suite_dir / "NOTICE"));
}

TEST_CASE("signing matches every case of the AWS SigV4 test suite") {
  const auto cases = suite_cases();
  REQUIRE(cases.size() == 34);
  for (const auto& test : cases) {
    DYNAMIC_SECTION(test.name) {
      auto parsed = parse_request(read_file(test.files.string() + ".req"));
      s3::credentials who{std::string(suite_access_key_id), std::string(suite_secret), {}};
      if (test.name == "get-vanilla-with-session-token") who.session_token = suite_session_token;
      // The token header is in the request and signed; the signer must not add it again.
      if (test.name == "post-sts-token/post-sts-header-before") {
        who.session_token = header_value(parsed.request, "X-Amz-Security-Token");
      }
      // post-sts-header-after: the token is added after signing, unsigned,
      // so the request is signed without it.

      if (test.name.starts_with("normalize-path/")) {
        // These cases assume a service that normalizes paths; S3 does not
        // (normalize-path.txt). Signed as S3 signs, the path stays as given...
        const auto as_s3 = s3::sign(parsed.request, who, suite_parameters());
        CHECK(line_of(as_s3.canonical_request, 1) == s3::encode_path(parsed.request.path));
        // ... and normalized first, as such a service's client would, every
        // expected output matches.
        parsed.request.path = normalize_path(parsed.request.path);
      }

      const auto result = s3::sign(parsed.request, who, suite_parameters());
      CHECK(result.canonical_request == read_file(test.files.string() + ".creq"));
      CHECK(result.string_to_sign == read_file(test.files.string() + ".sts"));
      CHECK(result.authorization == read_file(test.files.string() + ".authz"));

      // Every .req has its X-Amz-Date, so the signer adds only Authorization,
      // and the token where the credentials have one the request lacks.
      std::vector<std::string> added;
      for (const auto& h : result.headers) added.push_back(h.first);
      if (test.name == "get-vanilla-with-session-token") {
        CHECK(added == std::vector<std::string>{"X-Amz-Security-Token", "Authorization"});
      } else {
        CHECK(added == std::vector<std::string>{"Authorization"});
      }

      // The signed request: the .req with the added headers (and, for
      // post-sts-header-after, the unsigned token) before Authorization.
      auto signed_request = parsed.head;
      for (const auto& [name, value] : result.headers) {
        if (name != "Authorization") signed_request += '\n' + name + ':' + value;
      }
      if (test.name == "post-sts-token/post-sts-header-after") {
        signed_request += "\nX-Amz-Security-Token:" + post_sts_token();
      }
      signed_request += "\nAuthorization: " + result.authorization;
      if (parsed.body) signed_request += "\n\n" + *parsed.body;
      // The README's known inconsistency: this case's .sreq carries
      // get-vanilla's signature, so .authz is the reference and .sreq is skipped.
      if (test.name != "get-vanilla-with-session-token") {
        CHECK(signed_request == read_file(test.files.string() + ".sreq"));
      }
    }
  }
}

TEST_CASE("signing matches the S3 GET example of the AWS documentation") {
  // "Signature Calculations for the Authorization Header: Transferring
  // Payload in a Single Chunk", example GET Object with a Range header.
  s3::request r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
  s3::signing_parameters parameters;
  parameters.region = "us-east-1";
  parameters.service = "s3";
  parameters.time = utc(std::chrono::year(2013) / 5 / 24, 0s);
  const s3::credentials who{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", {}};

  const auto result = s3::sign(r, who, parameters);
  CHECK(result.authorization ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  const std::vector<s3::header> expected_headers{
      {"X-Amz-Date", "20130524T000000Z"},
      {"X-Amz-Content-Sha256", std::string(s3::empty_payload_sha256)},
      {"Authorization", result.authorization},
  };
  CHECK(result.headers == expected_headers);
}

TEST_CASE("the signing key matches the example of the AWS documentation") {
  const auto key = s3::signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
  CHECK(s3::to_hex(key) == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST_CASE("SHA-256 and HMAC-SHA256 give the standard values") {
  CHECK(s3::sha256_hex("") == s3::empty_payload_sha256);
  CHECK(s3::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  CHECK(s3::to_hex(s3::hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("X-Amz-Date is the UTC time in basic ISO 8601 form") {
  CHECK(s3::amz_date(utc(std::chrono::year(2015) / 8 / 30, 12h + 36min)) == "20150830T123600Z");
  CHECK(s3::amz_date(utc(std::chrono::year(2024) / 2 / 29, 23h + 59min + 59s) + 999ms) == "20240229T235959Z");
}

TEST_CASE("URI encoding keeps only unreserved characters") {
  CHECK(s3::uri_encode("AZaz09-_.~") == "AZaz09-_.~");
  CHECK(s3::uri_encode("a b+c*d/e=f&g%h") == "a%20b%2Bc%2Ad%2Fe%3Df%26g%25h");
  CHECK(s3::uri_encode("\xE1\x88\xB4") == "%E1%88%B4");  // upper-case hex of each UTF-8 byte
  CHECK(s3::uri_encode(std::string("\0\x7f", 2)) == "%00%7F");
  CHECK(s3::encode_path("/logs/a b/$x.txt") == "/logs/a%20b/%24x.txt");
}

TEST_CASE("S3 paths are signed as given, never normalized") {
  s3::request r;
  r.headers = {{"Host", "bucket.example.com"}};
  for (const std::string path : {"/a//b", "/a/./b", "/a/../b", "//", "/a/b/", "/."}) {
    INFO(path);
    r.path = path;
    CHECK(line_of(s3::canonical_request(r), 1) == path);
  }
}

TEST_CASE("the canonical query is encoded and sorted by name, then value") {
  CHECK(s3::canonical_query({}).empty());
  CHECK(s3::canonical_query({{"uploads", ""}}) == "uploads=");
  CHECK(s3::canonical_query({{"prefix", "logs/a b"}, {"list-type", "2"}, {"b", "2"}, {"b", "1"}, {"B", "3"}}) ==
        "B=3&b=1&b=2&list-type=2&prefix=logs%2Fa%20b");
  // Sorted by the encoded names: '%' sorts before letters.
  CHECK(s3::canonical_query({{"z", "1"}, {"\xE1\x88\xB4", "2"}}) == "%E1%88%B4=2&z=1");
}

TEST_CASE("canonical headers are lower-case, trimmed, sorted and joined") {
  s3::request r;
  r.method = "PUT";
  r.path = "/k";
  r.headers = {{"X-Amz-Meta-B", "  two   words  "}, {"Host", "h"}, {"x-amz-meta-a", "1"}, {"X-AMZ-META-A", "2"}};
  r.payload_hash = std::string(s3::unsigned_payload);
  CHECK(s3::canonical_request(r) ==
        "PUT\n/k\n\nhost:h\nx-amz-meta-a:1,2\nx-amz-meta-b:two words\n\nhost;x-amz-meta-a;x-amz-meta-b\n"
        "UNSIGNED-PAYLOAD");
}

TEST_CASE("a session token is added and signed") {
  s3::request r;
  r.headers = {{"Host", "bucket.example.com"}};
  const s3::credentials who{"AKID", "secret", "token"};
  const auto result = s3::sign(r, who, s3::signing_parameters{});
  const std::vector<std::string> names{"X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token", "Authorization"};
  REQUIRE(result.headers.size() == names.size());
  for (std::size_t i = 0; i < names.size(); ++i) CHECK(result.headers[i].first == names[i]);
  CHECK(result.headers[2].second == "token");
  CHECK(result.canonical_request.find("\nx-amz-security-token:token\n") != std::string::npos);
  CHECK(result.authorization.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,") !=
        std::string::npos);
}

TEST_CASE("credentials are not printable") {
  STATIC_REQUIRE_FALSE(printable<s3::credentials>);
  STATIC_REQUIRE(printable<std::string>);  // the check itself works
}

TEST_CASE("errors say what is wrong and never show a credential") {
  const std::string secret = "wJalrXUtnFEMI-s3cr3t-must-not-leak";
  const std::string token = "session-t0k3n-must-not-leak";
  const s3::credentials who{"AKIDEXAMPLE", secret, token};
  const auto good_request = [] {
    s3::request r;
    r.headers = {{"Host", "bucket.example.com"}};
    return r;
  };
  s3::signing_parameters parameters;
  parameters.time = utc(std::chrono::year(2015) / 8 / 30, 12h + 36min);

  struct failing {
    std::string says;
    std::function<void()> call;
  };
  const std::vector<failing> cases{
      {"Host",
       [&] {
         auto r = good_request();
         r.headers.clear();
         s3::sign(r, who, parameters);
       }},
      {"access key id", [&] { s3::sign(good_request(), {"", secret, token}, parameters); }},
      {"access key id", [&] { s3::sign(good_request(), {"AKID/x", secret, token}, parameters); }},
      {"secret access key", [&] { s3::sign(good_request(), {"AKID", "", token}, parameters); }},
      {"region",
       [&] {
         auto p = parameters;
         p.region.clear();
         s3::sign(good_request(), who, p);
       }},
      {"X-Amz-Date",
       [&] {
         auto r = good_request();
         r.headers.emplace_back("X-Amz-Date", "20000101T000000Z");
         s3::sign(r, who, parameters);
       }},
      {"X-Amz-Content-Sha256",
       [&] {
         auto r = good_request();
         r.headers.emplace_back("x-amz-content-sha256", std::string(s3::unsigned_payload));
         s3::sign(r, who, parameters);
       }},
      {"X-Amz-Security-Token",
       [&] {
         auto r = good_request();
         r.headers.emplace_back("X-Amz-Security-Token", token + "-other");
         s3::sign(r, who, parameters);
       }},
      {"control character",
       [&] {
         auto r = good_request();
         r.headers.emplace_back("X-Amz-Meta-Note", secret + "\r\nEvil: " + token);
         s3::sign(r, who, parameters);
       }},
      {"control character", [&] { s3::sign(good_request(), {"AKID", secret, token + "\r\nEvil: 1"}, parameters); }},
      {"path",
       [&] {
         auto r = good_request();
         r.path = "no-slash";
         s3::sign(r, who, parameters);
       }},
      {"header name",
       [&] {
         auto r = good_request();
         r.headers.emplace_back("Bad Name", "1");
         s3::sign(r, who, parameters);
       }},
  };
  for (const auto& c : cases) {
    INFO(c.says);
    std::string message;
    try {
      c.call();
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      message = e.what();
    }
    INFO(message);
    CHECK(message.starts_with("sigv4: "));
    CHECK(message.find(c.says) != std::string::npos);
    CHECK(message.find(secret) == std::string::npos);
    CHECK(message.find("s3cr3t") == std::string::npos);
    CHECK(message.find("t0k3n") == std::string::npos);
  }
}

}  // namespace sigv4_test
