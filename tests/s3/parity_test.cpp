// Parity with the real AWS CLI: for a matrix of environments and shared
// config/credentials files, `aws s3api list-objects-v2` (/usr/bin/aws, the
// Debian package awscli 2.x) and storewatch (s3::resolve_config, then
// s3::client::list) send a listing to the same recording server, and must
// use the same access key id, region, host and path.
//
// The recording server is also the HTTP proxy of both (HTTP_PROXY and
// http_proxy, HTTPS_PROXY and https_proxy): a request for a host that does
// not resolve (bucket.minio.example) reaches it in absolute form with its
// Host header, and one over https (AWS's own endpoints) as a CONNECT naming
// the host and port, which is all that can be compared then (the server
// refuses the tunnel). Both clients get the same environment: HOME is a
// fresh folder holding the case's ~/.aws files, and no other AWS_* variable
// is set than the case's.
//
// awscli 2.9.19 (Debian 12) does not read AWS_ENDPOINT_URL or a profile's
// endpoint_url, so those are tested in resolve_test.cpp only. It also uses
// path style for any --endpoint-url, AWS's included, where storewatch uses
// virtual-hosted style on AWS's hosts: cases with an explicit AWS endpoint
// are left out.
#include <storewatch/s3/client.hpp>
#include <storewatch/s3/resolve.hpp>

#include "s3/common/server.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace parity_test {

namespace {

namespace s3 = storewatch::s3;
using storewatch::s3::test::recorded_request;
using storewatch::s3::test::scripted_http_server;
using storewatch::s3::test::scripted_reply;
using storewatch::test_support::child_stream;
using storewatch::test_support::process;
using storewatch::test_support::spawn_options;
using storewatch::test_support::temp_dir;

constexpr const char* aws_program = "/usr/bin/aws";

/// What one request showed of the client's configuration.
struct observed {
  std::string host;    ///< the Host header, or a CONNECT's target
  std::string path;    ///< the path without the query; empty for a CONNECT
  std::string key_id;  ///< from the Authorization header's Credential=
  std::string region;  ///< ditto
  bool operator==(const observed&) const = default;
};

std::ostream& operator<<(std::ostream& out, const observed& o) {
  return out << "host=" << o.host << " path=" << o.path << " key=" << o.key_id << " region=" << o.region;
}

observed observe(const recorded_request& r) {
  observed o;
  if (r.method == "CONNECT") {
    o.host = r.target;
    return o;
  }
  if (const auto* host = r.header("host")) o.host = *host;
  auto target = r.target;
  if (const auto scheme = target.find("://"); scheme != std::string::npos) {
    target = target.substr(target.find('/', scheme + 3));
  }
  o.path = target.substr(0, target.find('?'));
  if (const auto* auth = r.header("authorization")) {
    // AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/s3/aws4_request, ...
    const auto start = auth->find("Credential=");
    if (start != std::string::npos) {
      const auto scope = auth->substr(start + 11, auth->find(',', start) - start - 11);
      std::vector<std::string> parts;
      std::size_t from = 0;
      for (auto slash = scope.find('/'); slash != std::string::npos; slash = scope.find('/', from)) {
        parts.push_back(scope.substr(from, slash - from));
        from = slash + 1;
      }
      parts.push_back(scope.substr(from));
      if (parts.size() == 5) {
        o.key_id = parts[0];
        o.region = parts[2];
      }
    }
  }
  return o;
}

/// One configuration both clients are given.
struct parity_case {
  std::string name;
  std::string config{};       ///< ~/.aws/config ("" for none)
  std::string credentials{};  ///< ~/.aws/credentials ("" for none)
  std::map<std::string, std::string> env{};  ///< more variables; "{home}" in a value is HOME
  std::string endpoint{};     ///< --endpoint-url; "{server}" is the recording server's URL
  std::string bucket = "parity-bucket";
  std::string profile{};      ///< --profile
  std::string region{};       ///< --region
};

/// The recording server, its requests, and the environment both clients get.
class parity_fixture {
 public:
  parity_fixture()
      : server_(io_, [](const recorded_request& r, std::size_t) {
          if (r.method == "CONNECT") return scripted_reply::respond(403);
          // Instance metadata (which awscli asks for a region when it has none): nothing there.
          if (r.target.find("169.254.169.254") != std::string::npos) return scripted_reply::respond(404);
          return scripted_reply::respond(
              200,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
              "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount>"
              "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>",
              {{"Content-Type", "application/xml"}});
        }) {}

  /// The environment of case `c` in home folder `home`.
  std::map<std::string, std::string> environment(const parity_case& c, const std::filesystem::path& home) const {
    const auto proxy = server_.url("");
    std::map<std::string, std::string> env{{"HOME", home.string()},
                                           {"PATH", "/usr/bin:/bin"},
                                           {"AWS_EC2_METADATA_DISABLED", "true"},
                                           {"HTTP_PROXY", proxy},
                                           {"HTTPS_PROXY", proxy},
                                           {"http_proxy", proxy},
                                           {"https_proxy", proxy}};
    for (auto [name, value] : c.env) {
      if (const auto at = value.find("{home}"); at != std::string::npos) value.replace(at, 6, home.string());
      env[name] = value;
    }
    return env;
  }

  std::string endpoint(const parity_case& c) const {
    auto url = c.endpoint;
    if (const auto at = url.find("{server}"); at != std::string::npos) url.replace(at, 8, server_.url(""));
    return url;
  }

  /// What `aws s3api list-objects-v2` sent first for `c`.
  observed run_aws(const parity_case& c, const std::map<std::string, std::string>& env) {
    std::vector<std::string> argv{aws_program, "s3api", "list-objects-v2", "--bucket", c.bucket};
    if (!c.endpoint.empty()) argv.insert(argv.end(), {"--endpoint-url", endpoint(c)});
    if (!c.profile.empty()) argv.insert(argv.end(), {"--profile", c.profile});
    if (!c.region.empty()) argv.insert(argv.end(), {"--region", c.region});
    spawn_options options;
    options.environment.emplace();
    for (const auto& [name, value] : env) options.environment->push_back(name + '=' + value);
    options.environment->push_back("AWS_MAX_ATTEMPTS=1");
    options.environment->push_back("AWS_PAGER=");
    options.out = child_stream::piped();
    options.err = child_stream::piped();
    const auto first = server_.requests().size();
    process aws(argv, options);
    const bool ended = storewatch::test_support::run_until(io_, [&] {
      aws.pump(std::chrono::milliseconds(0));
      return aws.exited();
    }, std::chrono::seconds(60));
    aws.wait(std::chrono::seconds(10));
    INFO("aws stdout: " << aws.out());
    INFO("aws stderr: " << aws.err());
    REQUIRE(ended);
    return first_request(first);
  }

  /// What storewatch sent first for `c`.
  observed run_storewatch(const parity_case& c, const std::map<std::string, std::string>& env) {
    s3::resolve_options options;
    options.endpoint = endpoint(c);
    options.profile = c.profile;
    options.region = c.region;
    const auto lookup = [&env](const char* name) {
      const auto it = env.find(name);
      return it == env.end() ? std::string() : it->second;
    };
    const auto config = s3::resolve_config("s3://" + c.bucket, options, lookup);
    // libcurl reads its proxy from this process's environment.
    process_proxy proxy(env);
    s3::client_options client_options;
    client_options.max_attempts = 1;
    s3::client client(io_.get_executor(), config, client_options);
    const auto first = server_.requests().size();
    try {
      storewatch::test_support::run_coroutine(io_, client.list({}));
    } catch (const std::exception& e) {
      INFO("storewatch: " << e.what());  // a refused CONNECT fails the listing: expected
    }
    return first_request(first);
  }

 private:
  /// Sets the proxy variables of this process as `env` has them, and
  /// restores them at scope end.
  class process_proxy {
   public:
    explicit process_proxy(const std::map<std::string, std::string>& env) {
      for (const char* name : names) {
        if (const char* value = std::getenv(name)) saved_[name] = value;
        ::unsetenv(name);
        if (const auto it = env.find(name); it != env.end()) ::setenv(name, it->second.c_str(), 1);
      }
    }
    ~process_proxy() {
      for (const char* name : names) {
        ::unsetenv(name);
        if (const auto it = saved_.find(name); it != saved_.end()) ::setenv(name, it->second.c_str(), 1);
      }
    }
    process_proxy(const process_proxy&) = delete;
    process_proxy& operator=(const process_proxy&) = delete;

   private:
    static constexpr const char* names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY",
                                            "all_proxy",  "ALL_PROXY"};
    std::map<std::string, std::string> saved_;
  };

  observed first_request(std::size_t from) const {
    for (auto i = from; i < server_.requests().size(); ++i) {
      const auto& r = server_.requests()[i];
      if (r.target.find("169.254.169.254") != std::string::npos) continue;
      return observe(r);
    }
    FAIL("no request reached the recording server");
    return {};
  }

  asio::io_context io_;
  scripted_http_server server_;
};

const std::string two_profiles_config =
    "[default]\nregion = eu-west-1\naws_access_key_id = CFGDEFAULT\naws_secret_access_key = s\n"
    "[profile dev]\nregion = eu-central-1\naws_access_key_id = CFGDEV\naws_secret_access_key = s\n"
    "[profile other]\nregion = ap-south-1\naws_access_key_id = CFGOTHER\naws_secret_access_key = s\n";
const std::string two_profiles_credentials =
    "[default]\naws_access_key_id = CREDDEFAULT\naws_secret_access_key = s\n"
    "[dev]\naws_access_key_id = CREDDEV\naws_secret_access_key = s\nregion = us-west-2\n";

std::vector<parity_case> cases() {
  const std::string server = "{server}";
  return {
      {.name = "default profile: credentials file keys, config file region",
       .config = two_profiles_config, .credentials = two_profiles_credentials, .endpoint = server},
      {.name = "AWS_PROFILE names a profile in both files (AWS_DEFAULT_PROFILE loses)",
       .config = two_profiles_config, .credentials = two_profiles_credentials,
       .env = {{"AWS_PROFILE", "dev"}, {"AWS_DEFAULT_PROFILE", "other"}}, .endpoint = server},
      {.name = "AWS_DEFAULT_PROFILE alone; keys in the config file only",
       .config = two_profiles_config, .credentials = two_profiles_credentials,
       .env = {{"AWS_DEFAULT_PROFILE", "other"}}, .endpoint = server},
      {.name = "environment keys beat AWS_PROFILE's",
       .config = two_profiles_config, .credentials = two_profiles_credentials,
       .env = {{"AWS_PROFILE", "dev"}, {"AWS_ACCESS_KEY_ID", "ENVKEY"}, {"AWS_SECRET_ACCESS_KEY", "s"}},
       .endpoint = server},
      {.name = "an explicit profile beats environment keys",
       .config = two_profiles_config, .credentials = two_profiles_credentials,
       .env = {{"AWS_ACCESS_KEY_ID", "ENVKEY"}, {"AWS_SECRET_ACCESS_KEY", "s"}}, .endpoint = server,
       .profile = "other"},
      {.name = "AWS_REGION beats AWS_DEFAULT_REGION and the profile's region",
       .config = two_profiles_config, .credentials = two_profiles_credentials,
       .env = {{"AWS_PROFILE", "dev"}, {"AWS_REGION", "ca-central-1"}, {"AWS_DEFAULT_REGION", "sa-east-1"}},
       .endpoint = server},
      {.name = "--region beats AWS_DEFAULT_REGION",
       .config = two_profiles_config, .credentials = two_profiles_credentials,
       .env = {{"AWS_DEFAULT_REGION", "sa-east-1"}}, .endpoint = server, .region = "me-south-1"},
      {.name = "AWS_DEFAULT_REGION beats the profile's region",
       .config = two_profiles_config, .credentials = two_profiles_credentials,
       .env = {{"AWS_DEFAULT_REGION", "sa-east-1"}}, .endpoint = server},
      {.name = "AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE elsewhere",
       .env = {{"AWS_CONFIG_FILE", "{home}/elsewhere/config"},
               {"AWS_SHARED_CREDENTIALS_FILE", "{home}/elsewhere/credentials"},
               {"AWS_PROFILE", "dev"}},
       .endpoint = server},
      {.name = "an endpoint with a DNS name that is not AWS's: path style",
       .credentials = two_profiles_credentials, .env = {{"AWS_REGION", "eu-west-3"}},
       .endpoint = "http://minio.example:9000"},
      {.name = "s3 addressing_style = virtual on such an endpoint",
       .config = "[default]\nregion = eu-west-3\ns3 =\n  addressing_style = virtual\n",
       .credentials = two_profiles_credentials, .endpoint = "http://minio.example:9000"},
      {.name = "AWS's endpoint for the profile's region: virtual-hosted over https",
       .config = two_profiles_config, .env = {{"AWS_PROFILE", "dev"}}},
      {.name = "AWS's endpoint with s3 addressing_style = path",
       .config = "[default]\nregion = eu-west-1\ns3 =\n  addressing_style = path\n",
       .credentials = two_profiles_credentials},
      {.name = "AWS's endpoint and a bucket name with a dot, over https",
       .config = two_profiles_config, .bucket = "parity.bucket"},
  };
}

}  // namespace

TEST_CASE("parity: storewatch resolves and addresses as aws s3api does", "[parity]") {
  REQUIRE(std::filesystem::exists(aws_program));  // CI installs awscli (scripts/setup.sh)
  parity_fixture fixture;
  for (const auto& c : cases()) {
    INFO("case: " << c.name);
    temp_dir home;
    const auto write = [&](const std::filesystem::path& path, const std::string& text) {
      if (text.empty()) return;
      std::filesystem::create_directories(path.parent_path());
      std::ofstream(path) << text;
    };
    write(home.path() / ".aws" / "config", c.config);
    write(home.path() / ".aws" / "credentials", c.credentials);
    write(home.path() / "elsewhere" / "config", two_profiles_config);
    write(home.path() / "elsewhere" / "credentials", two_profiles_credentials);
    const auto env = fixture.environment(c, home.path());
    const auto aws = fixture.run_aws(c, env);
    const auto ours = fixture.run_storewatch(c, env);
    CHECK(ours == aws);
    // A case that shows nothing would prove nothing.
    CHECK(!aws.host.empty());
    CHECK((aws.path.empty() || !aws.key_id.empty()));
  }
}

}  // namespace parity_test
