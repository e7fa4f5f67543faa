// Tests for storewatch/s3/ini.hpp and storewatch/s3/resolve.hpp: the AWS
// config file reader, and the resolution order of endpoint, region,
// addressing, CA bundle and credential source, with a made-up environment
// and shared files in a temp folder. (tests/s3/parity_test.cpp checks the
// same order against the real `aws`.)
#include <storewatch/s3/resolve.hpp>

#include "support/temp_dir.hpp"

#include "s3/common/messages.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace resolve_test {

namespace {

namespace s3 = storewatch::s3;
using storewatch::test_support::temp_dir;

using storewatch::s3::test::error_of;

/// Checks the access key id and region `c` resolved to.
void check_chosen(const s3::config& c, const std::string& key_id, const std::string& region) {
  CHECK(c.credentials.access_key_id == key_id);
  CHECK(c.region == region);
}

/// A home folder with ~/.aws files, and an environment that points at it.
struct aws_home {
  temp_dir dir;
  std::map<std::string, std::string> variables{{"HOME", dir.path().string()}};

  void write(const std::string& relative, const std::string& text) const {
    const auto path = dir.path() / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  std::string path(const std::string& relative) const { return (dir.path() / relative).string(); }
  void config(const std::string& text) const { write(".aws/config", text); }
  void credentials(const std::string& text) const { write(".aws/credentials", text); }

  s3::environment_lookup env() const {
    return [this](const char* name) {
      const auto it = variables.find(name);
      return it == variables.end() ? std::string() : it->second;
    };
  }
  s3::config resolve(const s3::resolve_options& options = {}, const std::string& url = "s3://bucket/p") const {
    return s3::resolve_config(url, options, env());
  }
  std::string error(const s3::resolve_options& options = {}) const {
    return error_of([&] { resolve(options); });
  }
  std::string error_of_url(const s3::resolve_options& options, const std::string& url) const {
    return error_of([&] { resolve(options, url); });
  }
};

}  // namespace

TEST_CASE("ini: sections, keys, comments and nested blocks") {
  const auto file = s3::parse_ini("# a comment\n"
                                  "; another\n"
                                  "[default]\n"
                                  "Region = eu-west-1 \r\n"
                                  "output: json\n"
                                  "\n"
                                  "[profile dev]\n"
                                  "s3 =\n"
                                  "  addressing_style = path\n"
                                  "\n"
                                  "  # inside the block\n"
                                  "  Max_Concurrent_Requests=4\n"
                                  "region = a # not a comment\n"
                                  "empty =\n",
                                  "cfg");
  REQUIRE(file.sections.size() == 2);
  const auto* def = file.find("default");
  REQUIRE(def);
  CHECK(def->line == 3);
  REQUIRE(def->find("region"));
  CHECK(def->find("region")->value == "eu-west-1");
  CHECK(def->find("region")->line == 4);
  CHECK(def->find("output")->value == "json");
  const auto* dev = file.find("profile dev");
  REQUIRE(dev);
  const auto* block = dev->find("s3");
  REQUIRE(block);
  CHECK(block->nested);
  REQUIRE(block->entries.size() == 2);
  CHECK(block->entries[0].key == "addressing_style");
  CHECK(block->entries[0].value == "path");
  CHECK(block->entries[1].key == "max_concurrent_requests");
  CHECK(block->entries[1].line == 12);
  CHECK(dev->find("region")->value == "a # not a comment");
  CHECK(!dev->find("empty")->nested);
  CHECK(dev->find("empty")->value.empty());
  CHECK(s3::parse_ini("", "x").sections.empty());
}

TEST_CASE("ini: malformed lines are errors naming the file and line, never the value") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"region = x\n", "cfg:1: a setting before the first [section]"},
      {"[a]\nsecret-value-line\n", "cfg:2: expected [section]"},
      {"[a\n", "cfg:1: a section header needs a closing ']'"},
      {"[ ]\n", "cfg:1: the section name is empty"},
      {"[a]\n[b]\n[a]\n", "cfg:3: section \"a\" appears twice (line 1 first)"},
      {"[a]\nk = 1\nK = secret-value\n", "cfg:3: \"k\" is set twice"},
      {"[a]\n= secret-value\n", "cfg:2: a name is missing"},
      {"[a]\nk = secret-value\n  more\n", "cfg:3: the value of \"k\" (line 2) goes on over indented lines"},
      {"[a]\ns3 =\n  secret-value\n", "cfg:3: expected 'name = value' in the block of \"s3\""},
      {"[a]\ns3 =\n  x = 1\n  x = secret-value\n", "cfg:4: \"x\" is set twice in the block of \"s3\""},
      {std::string("[a]\nk = v\0w\n", 12), "cfg:2: has a NUL byte"},
  };
  for (const auto& [text, says] : cases) {
    INFO(text);
    const auto message = error_of([&] { s3::parse_ini(text, "cfg"); });
    INFO(message);
    CHECK(message.starts_with(says));
    CHECK(message.find("secret-value") == std::string::npos);
  }
}

TEST_CASE("resolve: defaults with keys in the environment") {
  aws_home home;
  home.variables["AWS_ACCESS_KEY_ID"] = "AKENV";
  home.variables["AWS_SECRET_ACCESS_KEY"] = "secret";
  const auto c = home.resolve();
  CHECK(c.bucket == "bucket");
  CHECK(c.prefix == "p");
  CHECK(c.region == "us-east-1");
  CHECK(c.endpoint.host.empty());
  CHECK(s3::effective_addressing(c) == s3::addressing_style::virtual_hosted);
  CHECK(c.credentials.access_key_id == "AKENV");
  CHECK(c.credentials_from.what == s3::credential_source::kind::keys);
  CHECK(c.credentials_from.origin == "AWS_ACCESS_KEY_ID");
  CHECK(c.ca_bundle.empty());
}

TEST_CASE("resolve: profiles, the files' precedence and the environment's") {
  aws_home home;
  home.config("[default]\nregion = eu-west-1\naws_access_key_id = CFGDEF\naws_secret_access_key = s\n"
              "[profile dev]\nregion = eu-central-1\naws_access_key_id = CFGDEV\naws_secret_access_key = s\n"
              "s3 =\n  addressing_style = virtual\n"
              "[profile other]\nregion = ap-south-1\naws_access_key_id = CFGOTHER\naws_secret_access_key = s\n"
              "[dev]\naws_access_key_id = NOT-A-PROFILE\n");
  home.credentials("[default]\naws_access_key_id = CREDDEF\naws_secret_access_key = s\n"
                   "[dev]\naws_access_key_id = CREDDEV\naws_secret_access_key = s\naws_session_token = t\n"
                   "region = us-west-2\n");
  SECTION("default: the credentials file's keys, the config file's region") {
    const auto c = home.resolve();
    check_chosen(c, "CREDDEF", "eu-west-1");
    CHECK(c.credentials_from.origin == "profile \"default\" in " + home.path(".aws/credentials"));
  }
  SECTION("AWS_PROFILE: the credentials file beats the config file, for the region too") {
    home.variables["AWS_PROFILE"] = "dev";
    home.variables["AWS_DEFAULT_PROFILE"] = "other";
    const auto c = home.resolve();
    CHECK(c.credentials.access_key_id == "CREDDEV");
    CHECK(c.credentials.session_token == "t");
    CHECK(c.region == "us-west-2");
    CHECK(c.addressing == s3::addressing_style::virtual_hosted);
  }
  SECTION("AWS_DEFAULT_PROFILE when AWS_PROFILE is unset; keys from the config file") {
    home.variables["AWS_DEFAULT_PROFILE"] = "other";
    check_chosen(home.resolve(), "CFGOTHER", "ap-south-1");
  }
  SECTION("environment keys beat AWS_PROFILE, an explicit profile beats them") {
    home.variables["AWS_PROFILE"] = "dev";
    home.variables["AWS_ACCESS_KEY_ID"] = "AKENV";
    home.variables["AWS_SECRET_ACCESS_KEY"] = "s";
    CHECK(home.resolve().credentials.access_key_id == "AKENV");
    s3::resolve_options explicit_profile;
    explicit_profile.profile = "other";
    CHECK(home.resolve(explicit_profile).credentials.access_key_id == "CFGOTHER");
    s3::resolve_options keys;
    keys.credentials = {"AKGIVEN", "s", ""};
    keys.profile = "other";
    CHECK(home.resolve(keys).credentials.access_key_id == "AKGIVEN");
  }
  SECTION("region: explicit, AWS_REGION, AWS_DEFAULT_REGION, then the profile's") {
    home.variables["AWS_PROFILE"] = "dev";
    home.variables["AWS_DEFAULT_REGION"] = "sa-east-1";
    CHECK(home.resolve().region == "sa-east-1");
    home.variables["AWS_REGION"] = "ca-central-1";
    CHECK(home.resolve().region == "ca-central-1");
    s3::resolve_options options;
    options.region = "me-south-1";
    CHECK(home.resolve(options).region == "me-south-1");
  }
  SECTION("AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE elsewhere") {
    home.write("elsewhere/c", "[profile x]\nregion = eu-north-1\n");
    home.write("elsewhere/k", "[x]\naws_access_key_id = ELSE\naws_secret_access_key = s\n");
    home.variables["AWS_CONFIG_FILE"] = home.path("elsewhere/c");
    home.variables["AWS_SHARED_CREDENTIALS_FILE"] = "~/elsewhere/k";
    home.variables["AWS_PROFILE"] = "x";
    check_chosen(home.resolve(), "ELSE", "eu-north-1");
  }
  SECTION("a profile that does not exist is an error naming it and the files") {
    home.variables["AWS_PROFILE"] = "nope";
    const auto message = home.error();
    CHECK(message.starts_with("AWS_PROFILE: the profile \"nope\" is not in"));
    CHECK(message.find(home.path(".aws/config")) != std::string::npos);
    CHECK(message.find(home.path(".aws/credentials")) != std::string::npos);
    s3::resolve_options options;
    options.profile = "dev2";
    options.profile_origin = "option '--profile'";
    CHECK(home.error(options).starts_with("option '--profile': the profile \"dev2\" is not in"));
  }
}

TEST_CASE("resolve: endpoint and addressing") {
  aws_home home;
  home.variables["AWS_ACCESS_KEY_ID"] = "AK";
  home.variables["AWS_SECRET_ACCESS_KEY"] = "s";
  home.config("[default]\nendpoint_url = http://from-profile:9000\n");
  CHECK(home.resolve().endpoint.host == "from-profile");
  CHECK(s3::effective_addressing(home.resolve()) == s3::addressing_style::path);
  home.variables["AWS_ENDPOINT_URL"] = "http://generic:1";
  CHECK(home.resolve().endpoint.host == "generic");
  home.variables["AWS_ENDPOINT_URL_S3"] = "http://s3only:2";
  CHECK(home.resolve().endpoint.host == "s3only");
  s3::resolve_options options;
  options.endpoint = "https://s3.eu-west-1.amazonaws.com";
  CHECK(s3::effective_addressing(home.resolve(options)) == s3::addressing_style::virtual_hosted);
  options.addressing = s3::addressing_style::path;
  CHECK(s3::effective_addressing(home.resolve(options)) == s3::addressing_style::path);
  home.variables["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  CHECK(home.resolve().endpoint.host.empty());

  home.config("[default]\ns3 =\n  addressing_style = sideways\n");
  CHECK(home.error() == home.path(".aws/config") +
                            ":3: s3.addressing_style (profile \"default\"): expected auto, path or virtual, not \"sideways\"");
  home.config("[default]\ns3 = path\n");
  CHECK(home.error().starts_with(home.path(".aws/config") + ":2: s3 (profile \"default\"): expected indented"));
  home.config("[default]\ns3 =\n  use_accelerate_endpoint = true\n");
  home.variables.erase("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  home.variables.erase("AWS_ENDPOINT_URL");
  home.variables.erase("AWS_ENDPOINT_URL_S3");
  CHECK(home.error().find("S3 Transfer Acceleration is not supported") != std::string::npos);
}

TEST_CASE("resolve: bucket names follow the endpoint's rules") {
  aws_home home;
  home.variables["AWS_ACCESS_KEY_ID"] = "AK";
  home.variables["AWS_SECRET_ACCESS_KEY"] = "s";
  const std::string long_name = std::string(63, 'a') + '.' + std::string(63, 'b') + '.' + std::string(60, 'c');
  s3::resolve_options gcs;
  gcs.endpoint = "https://storage.googleapis.com";
  CHECK(home.resolve(gcs, "s3://my_bucket").bucket == "my_bucket");
  CHECK(home.resolve(gcs, "s3://" + long_name).bucket == long_name);
  CHECK(home.error_of_url(gcs, "s3://" + std::string(64, 'a')).starts_with("store URL: bad bucket name"));
  // AWS: AWS's rules.
  CHECK(home.error_of_url({}, "s3://my_bucket").starts_with("bucket: bad bucket name \"my_bucket\": on AWS"));
  CHECK(home.error_of_url({}, "s3://" + long_name).starts_with("bucket: bad bucket name"));
  // Virtual-hosted elsewhere: a host name.
  gcs.addressing = s3::addressing_style::virtual_hosted;
  CHECK(home.error_of_url(gcs, "s3://my_bucket").starts_with("bucket: bad bucket name \"my_bucket\": with virtual"));
}

TEST_CASE("resolve: credential sources after keys, in the AWS CLI's order") {
  aws_home home;
  using kind = s3::credential_source::kind;
  SECTION("a web identity from the environment") {
    home.variables["AWS_WEB_IDENTITY_TOKEN_FILE"] = "~/token";
    home.variables["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/r";
    home.variables["AWS_ROLE_SESSION_NAME"] = "s1";
    home.variables["AWS_REGION"] = "eu-west-1";
    home.credentials("[default]\naws_access_key_id = LATER\naws_secret_access_key = s\n");
    const auto c = home.resolve();
    CHECK(c.credentials_from.what == kind::web_identity);
    CHECK(c.credentials_from.token_file == home.path("token"));
    CHECK(c.credentials_from.role_arn == "arn:aws:iam::123456789012:role/r");
    CHECK(c.credentials_from.session_name == "s1");
    CHECK(c.credentials_from.uri == "https://sts.eu-west-1.amazonaws.com");
    CHECK(c.credentials_from.origin == "AWS_WEB_IDENTITY_TOKEN_FILE");
  }
  SECTION("a web identity from the profile, with a session name made up") {
    home.config("[default]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /t\n");
    const auto c = home.resolve();
    CHECK(c.credentials_from.what == kind::web_identity);
    CHECK(c.credentials_from.token_file == "/t");
    CHECK(c.credentials_from.session_name.starts_with("storewatch-"));
    CHECK(c.credentials_from.origin.starts_with(home.path(".aws/config") + ":3: web_identity_token_file"));
  }
  SECTION("credential_process, after the credentials file's keys, before the config file's") {
    home.config("[default]\ncredential_process = /bin/get-keys --json\n"
                "aws_access_key_id = CFG\naws_secret_access_key = s\n");
    auto c = home.resolve();
    CHECK(c.credentials_from.what == kind::process);
    CHECK(c.credentials_from.command == "/bin/get-keys --json");
    home.credentials("[default]\naws_access_key_id = CRED\naws_secret_access_key = s\n");
    c = home.resolve();
    CHECK(c.credentials_from.what == kind::keys);
    CHECK(c.credentials.access_key_id == "CRED");
  }
  SECTION("container credentials: relative URI, full URI, token or token file") {
    home.variables["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/v2/credentials/x";
    home.variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "tok";
    auto c = home.resolve();
    CHECK(c.credentials_from.what == kind::container);
    CHECK(c.credentials_from.uri == "http://169.254.170.2/v2/credentials/x");
    CHECK(c.credentials_from.authorization == "tok");
    home.variables.erase("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    home.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:8080/creds";
    home.variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = "/var/run/token";
    c = home.resolve();
    CHECK(c.credentials_from.uri == "http://127.0.0.1:8080/creds");
    CHECK(c.credentials_from.authorization_file == "/var/run/token");
    CHECK(c.credentials_from.authorization.empty());
    home.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://example.com/creds";
    CHECK(home.error().starts_with("AWS_CONTAINER_CREDENTIALS_FULL_URI: an http URI must name a loopback"));
  }
  SECTION("EC2 instance metadata last, unless disabled") {
    auto c = home.resolve();
    CHECK(c.credentials_from.what == kind::instance_metadata);
    CHECK(c.credentials_from.uri == "http://169.254.169.254");
    home.variables["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1338/";
    CHECK(home.resolve().credentials_from.uri == "http://127.0.0.1:1338");
    home.variables.erase("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    home.variables["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"] = "IPv6";
    CHECK(home.resolve().credentials_from.uri == "http://[fd00:ec2::254]");
    home.variables["AWS_EC2_METADATA_DISABLED"] = "TRUE";
    const auto message = home.error();
    CHECK(message.starts_with("no S3 credentials: none in AWS_ACCESS_KEY_ID, profile \"default\" in"));
  }
  SECTION("the environment only (config_from_environment's mode) wants keys") {
    s3::resolve_options options;
    options.shared_files = false;
    options.credential_services = false;
    home.credentials("[default]\naws_access_key_id = CRED\naws_secret_access_key = s\n");
    CHECK(home.error(options).starts_with("AWS_ACCESS_KEY_ID: not set"));
  }
}

TEST_CASE("resolve: what storewatch does not implement is an error naming the file, line, profile and key") {
  aws_home home;
  const std::vector<std::pair<std::string, std::string>> cases{
      {"[profile p]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = q\n",
       ":3: source_profile (profile \"p\"): role_arn with source_profile (assuming a role) is not supported"},
      {"[profile p]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Ec2InstanceMetadata\n",
       ":3: credential_source (profile \"p\"): role_arn with credential_source"},
      {"[profile p]\nrole_arn = arn:aws:iam::1:role/r\n", ":2: role_arn (profile \"p\"): role_arn needs"},
      {"[profile p]\nsso_start_url = https://x\nsso_account_id = 1\n",
       ":2: sso_start_url (profile \"p\"): IAM Identity Center (sso_start_url) is not supported"},
      {"[profile p]\nsso_session = s\n", ":2: sso_session (profile \"p\")"},
      {"[profile p]\nservices = mine\n", ":2: services (profile \"p\"): a services section"},
      {"[profile p]\naws_access_key_id = AKONLY\n",
       " (profile \"p\"): aws_secret_access_key: not set, but "},
  };
  for (const auto& [text, says] : cases) {
    INFO(text);
    home.config(text);
    home.variables["AWS_PROFILE"] = "p";
    const auto message = home.error();
    INFO(message);
    CHECK(message.starts_with(home.path(".aws/config")));
    CHECK(message.find(says) != std::string::npos);
  }
}

TEST_CASE("resolve: the CA bundle, and errors naming where its path came from") {
  aws_home home;
  home.variables["AWS_ACCESS_KEY_ID"] = "AK";
  home.variables["AWS_SECRET_ACCESS_KEY"] = "s";
  home.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  home.config("[default]\nca_bundle = " + home.path("ca.pem") + "\n");
  CHECK(home.resolve().ca_bundle == home.path("ca.pem"));
  home.variables["AWS_CA_BUNDLE"] = home.path("missing.pem");
  CHECK(home.error() == "AWS_CA_BUNDLE: the CA bundle \"" + home.path("missing.pem") + "\" does not exist");
  s3::resolve_options options;
  options.ca_bundle = home.path("");
  options.ca_bundle_origin = "option '--ca-bundle'";
  CHECK(home.error(options).starts_with("option '--ca-bundle': the CA bundle"));
  CHECK(home.error(options).ends_with("is not a file"));
  home.variables.erase("AWS_CA_BUNDLE");
  home.config("[default]\nca_bundle = /nonexistent/ca.pem\n");
  CHECK(home.error().starts_with(home.path(".aws/config") + ":2: ca_bundle (profile \"default\"): the CA bundle"));
}

TEST_CASE("resolve: no error shows a secret from the files or the environment") {
  aws_home home;
  const std::string secret = "wJalrXUtnFEMI-s3cr3t";
  const std::vector<std::string> configs{
      "[default]\naws_access_key_id = AK\naws_secret_access_key = " + secret + "\n\x01\n",
      "[default]\naws_access_key_id = AK/" + secret + "\naws_secret_access_key = x\n",
      "[default]\naws_secret_access_key = " + secret + "\n",
      "[default]\naws_access_key_id = AK\naws_secret_access_key = " + secret + "\n  continued\n",
      "[default]\naws_access_key_id = AK\naws_secret_access_key = " + secret +
          "\naws_secret_access_key = " + secret + "\n",
  };
  for (const auto& text : configs) {
    INFO(text);
    home.credentials(text);
    const auto message = home.error();
    INFO(message);
    CHECK(message.starts_with(home.path(".aws/credentials")));
    CHECK(message.find("s3cr3t") == std::string::npos);
  }
}

}  // namespace resolve_test
