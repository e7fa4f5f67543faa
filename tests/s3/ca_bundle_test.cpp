// A private CA, made with the openssl command at test time, and a TLS server
// on loopback (`openssl s_server`) whose certificate it signed: the HTTP
// client verifies the server with `http_options::ca_file` and refuses it
// without; the S3 client passes `config::ca_bundle` (AWS_CA_BUNDLE,
// ca_bundle in ~/.aws/config) to it.
#include <storewatch/s3/client.hpp>
#include <storewatch/s3/http.hpp>
#include <storewatch/s3/resolve.hpp>

#include "s3/common/server.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace ca_bundle_test {

namespace {

namespace s3 = storewatch::s3;
namespace support = storewatch::test_support;

constexpr const char* openssl = "/usr/bin/openssl";

/// Runs the openssl command `args`, where "@name" is the file `dir`/name;
/// requires success.
void run_openssl(const std::filesystem::path& dir, const std::vector<std::string>& args) {
  std::vector<std::string> command{openssl};
  for (const auto& a : args) command.push_back(a.starts_with('@') ? (dir / a.substr(1)).string() : a);
  support::spawn_options options;
  options.out = support::child_stream::piped();
  options.err = support::child_stream::piped();
  support::process child(command, options);
  REQUIRE(child.wait(std::chrono::seconds(60)));
  INFO("openssl " << args.front() << ": " << child.err());
  REQUIRE(child.succeeded());
}

/// A CA and a certificate it signed for 127.0.0.1, in `dir`: ca.pem,
/// server.pem, server.key.
void make_certificates(const std::filesystem::path& dir) {
  std::ofstream(dir / "san.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  const std::vector<std::string> ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
  auto ca = std::vector<std::string>{"req", "-x509", "-days", "1", "-subj", "/CN=storewatch test CA", "-keyout",
                                     "@ca.key", "-out", "@ca.pem"};
  ca.insert(ca.end(), ec.begin(), ec.end());
  run_openssl(dir, ca);
  auto request = std::vector<std::string>{"req", "-subj", "/CN=127.0.0.1", "-keyout", "@server.key", "-out",
                                          "@server.csr"};
  request.insert(request.end(), ec.begin(), ec.end());
  run_openssl(dir, request);
  run_openssl(dir, {"x509", "-req", "-days", "1", "-in", "@server.csr", "-CA", "@ca.pem", "-CAkey", "@ca.key",
                    "-CAcreateserial", "-extfile", "@san.cnf", "-out", "@server.pem"});
}

}  // namespace

TEST_CASE("a private CA: the HTTP client verifies with ca_file and refuses without, the S3 client passes ca_bundle") {
  REQUIRE(std::filesystem::exists(openssl));
  support::temp_dir dir;
  make_certificates(dir.path());
  asio::io_context io;
  const auto port = s3::test::unused_port(io);
  support::spawn_options options;
  options.out = support::child_stream::piped();
  options.err = support::child_stream::piped();
  // -www: answers a GET with a status page; -naccept 2: ends after two connections.
  support::process server({openssl, "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
                  (dir.path() / "server.pem").string(), "-key", (dir.path() / "server.key").string(), "-www",
                  "-naccept", "2"},
                 options);
  REQUIRE(support::wait_for([&] {
    server.pump();
    return server.out().find("ACCEPT") != std::string::npos || server.exited();
  }));
  REQUIRE(!server.exited());

  const auto get = [&](const std::string& ca_file) {
    s3::http_options http;
    http.ca_file = ca_file;
    s3::http_client client(io, http);
    s3::http_request request;
    request.url = "https://127.0.0.1:" + std::to_string(port) + "/";
    std::error_code result;
    s3::http_response response;
    bool done = false;
    client.async_perform(request, [&](std::error_code ec, s3::http_response r) {
      result = ec;
      response = std::move(r);
      done = true;
    });
    REQUIRE(support::run_until(io, [&] { return done; }));
    return std::pair{result, response};
  };
  const auto [refused, refused_response] = get("");
  INFO("without the CA: " << refused.message() << ": " << refused_response.error_text);
  CHECK(refused == s3::make_http_error(CURLE_PEER_FAILED_VERIFICATION));
  const auto [verified, response] = get((dir.path() / "ca.pem").string());
  INFO("with the CA: " << verified.message() << ": " << response.error_text);
  CHECK(!verified);
  CHECK(response.status == 200);

  // The S3 client's transport gets the configuration's bundle, unless its
  // options name one.
  s3::config c;
  c.ca_bundle = (dir.path() / "ca.pem").string();
  CHECK(s3::client::transport_options({}, c).ca_file == c.ca_bundle);
  s3::http_options own;
  own.ca_file = "/elsewhere.pem";
  CHECK(s3::client::transport_options(own, c).ca_file == "/elsewhere.pem");
}

}  // namespace ca_bundle_test
