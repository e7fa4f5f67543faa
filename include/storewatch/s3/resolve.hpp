/// \file
/// `resolve_config`: an S3 store's endpoint, region, addressing style, CA
/// bundle and credential source, resolved from explicit settings, the
/// environment and the AWS shared config and credentials files in the order
/// the AWS CLI uses, so that a store works wherever `aws s3api` works.
//
// The order, for each setting (the first that gives it wins):
//   endpoint    explicit; AWS_ENDPOINT_URL_S3; AWS_ENDPOINT_URL; the profile's
//               endpoint_url (the last three unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
//               or the profile's ignore_configure_endpoint_urls is true); AWS's for the region
//   region      explicit; AWS_REGION; AWS_DEFAULT_REGION; the profile's region; us-east-1
//   addressing  explicit; the profile's `s3 = addressing_style`; automatic
//   CA bundle   explicit; AWS_CA_BUNDLE; the profile's ca_bundle; the system's
//   credentials explicit keys; AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (not
//               when the profile is given explicitly, as with `aws --profile`);
//               a web identity (AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN, else the
//               profile's web_identity_token_file/role_arn); the profile's keys
//               in the credentials file; its credential_process; its keys in the
//               config file; container credentials (AWS_CONTAINER_CREDENTIALS_*);
//               EC2 instance metadata (unless AWS_EC2_METADATA_DISABLED=true)
// The profile: explicit; AWS_PROFILE; AWS_DEFAULT_PROFILE; "default". A
// profile named explicitly or by a variable must exist. Its settings are
// those of `[profile NAME]` (`[default]`) in the config file, with those of
// `[NAME]` in the credentials file taking precedence, as the AWS CLI merges them.
// Settings the resolver does not implement (role_arn with source_profile or
// credential_source, sso_*, services, accelerate/dual-stack/FIPS endpoints)
// are errors naming the file, line, profile and key when the resolution
// reaches them, never silently ignored.
#pragma once

#include <storewatch/detail/text.hpp>
#include <storewatch/s3/config.hpp>
#include <storewatch/s3/ini.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pwd.h>
#include <unistd.h>

namespace storewatch::s3 {

/// Settings given explicitly (by code or on a command line): each, when
/// set, beats the environment and the files. The `*_origin` strings are what
/// an error names as the setting's source ("option '--endpoint'").
struct resolve_options {
  std::string endpoint{};                       ///< http(s)://host[:port]; empty: not given
  std::string endpoint_origin = "endpoint";     ///< what errors call `endpoint`
  std::string region{};                         ///< empty: not given
  std::string region_origin = "region";         ///< what errors call `region`
  /// The profile of the shared files; empty: not given. As with `aws
  /// --profile`, an explicit profile also makes AWS_ACCESS_KEY_ID and
  /// AWS_SECRET_ACCESS_KEY count for nothing.
  std::string profile{};
  std::string profile_origin = "profile";       ///< what errors call `profile`
  std::optional<addressing_style> addressing{};  ///< not given: the profile's, else automatic
  std::string addressing_origin = "addressing";  ///< what errors call `addressing`
  std::string ca_bundle{};                      ///< a PEM file; empty: not given
  std::string ca_bundle_origin = "ca_bundle";   ///< what errors call `ca_bundle`
  s3::credentials credentials{};                ///< fixed keys, used when `access_key_id` is set
  /// Read the shared config and credentials files. Off: the environment only.
  bool shared_files = true;
  /// Without fixed keys, fall back to web identity, container credentials and
  /// instance metadata. Off: missing keys are an error naming AWS_ACCESS_KEY_ID.
  bool credential_services = true;
};

/// The value of an environment variable, "" when unset.
using environment_lookup = std::function<std::string(const char* name)>;

/// `environment_lookup` of this process (std::getenv).
inline std::string process_environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

namespace detail {

/// A setting's value and what errors call its source: "AWS_REGION",
/// "/home/u/.aws/config:4: region (profile "dev")".
struct setting {
  std::string value{};
  std::string origin{};
  explicit operator bool() const noexcept { return !value.empty(); }
};

/// One file's section for the profile, and where it is.
struct profile_part {
  std::string path{};
  const ini_section* section = nullptr;
};

/// The profile's settings across the two files: the credentials file's
/// `[NAME]` first, then the config file's `[profile NAME]`.
struct profile_view {
  std::string name{};
  profile_part credentials_file{};
  profile_part config_file{};

  static setting from(const profile_part& part, const std::string& profile, std::string_view key) {
    if (part.section == nullptr) return {};
    const auto* e = part.section->find(key);
    if (e == nullptr) return {};
    return {e->value, part.path + ':' + std::to_string(e->line) + ": " + std::string(key) + " (profile " +
                          storewatch::detail::quote(profile) + ")"};
  }

  /// The value of `key` in `part` only.
  setting in(const profile_part& part, std::string_view key) const { return from(part, name, key); }

  /// The value of `key`, the credentials file's first.
  setting get(std::string_view key) const {
    auto found = in(credentials_file, key);
    return found ? found : in(config_file, key);
  }

  /// The entry `key` (for nested blocks), the credentials file's first, and its file.
  std::pair<const ini_entry*, const profile_part*> entry(std::string_view key) const {
    for (const auto* part : {&credentials_file, &config_file}) {
      if (part->section == nullptr) continue;
      if (const auto* e = part->section->find(key)) return {e, part};
    }
    return {nullptr, nullptr};
  }
};

/// The error for `what` about `s`: "<origin>: <what>".
inline std::invalid_argument setting_error(const setting& s, const std::string& what) {
  return std::invalid_argument(s.origin + ": " + what);
}

/// The first of `candidates` that is set.
inline setting first_of(std::initializer_list<setting> candidates) {
  for (const auto& s : candidates) {
    if (s) return s;
  }
  return {};
}

inline setting variable(const environment_lookup& env, const char* name) { return {env(name), name}; }

inline bool is_true(std::string_view value) { return s3::detail::to_lower_ascii(value) == "true"; }

/// The home folder: $HOME, else the password database's.
inline std::string home_folder(const environment_lookup& env) {
  auto home = env("HOME");
  if (!home.empty()) return home;
  if (const passwd* entry = ::getpwuid(::getuid()); entry != nullptr && entry->pw_dir != nullptr) {
    return entry->pw_dir;
  }
  throw std::invalid_argument("HOME: not set, and the user has no home folder: cannot find ~/.aws");
}

/// `path` with a leading "~/" replaced by the home folder.
inline std::string expand_home(const std::string& path, const environment_lookup& env) {
  if (path == "~" || path.starts_with("~/")) return home_folder(env) + path.substr(1);
  return path;
}

/// The parsed file at `path` (from `origin`), or an empty one when it does
/// not exist. Throws std::invalid_argument when it cannot be read or is malformed.
inline ini_file read_shared_file(const std::string& path, const std::string& origin) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return ini_file{path, {}};
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    throw std::invalid_argument(origin + ": cannot read " + storewatch::detail::quote(path));
  }
  return parse_ini(text.str(), path);
}

/// Throws if the profile sets `key` to something the resolver does not
/// implement (`unsupported` says what).
inline void refuse(const profile_view& profile, std::string_view key, const std::string& unsupported) {
  if (const auto s = profile.get(key)) throw setting_error(s, unsupported + " is not supported by storewatch");
}

/// Throws if `key` is true in the profile or nested block, naming it.
inline void refuse_true(const setting& s, const std::string& unsupported) {
  if (s && is_true(s.value)) throw setting_error(s, unsupported + " is not supported by storewatch");
}

/// A sub-key of a nested block (`s3 = ...`) of the profile.
inline setting nested(const profile_view& profile, std::string_view block, std::string_view key) {
  const auto [e, part] = profile.entry(block);
  if (e == nullptr) return {};
  if (!e->nested) {
    throw std::invalid_argument(part->path + ':' + std::to_string(e->line) + ": " + std::string(block) +
                                " (profile " + storewatch::detail::quote(profile.name) + "): expected indented 'name = value' lines after '" +
                                std::string(block) + " ='");
  }
  for (const auto& sub : e->entries) {
    if (sub.key == key) {
      return {sub.value, part->path + ':' + std::to_string(sub.line) + ": " + std::string(block) + '.' +
                             std::string(key) + " (profile " + storewatch::detail::quote(profile.name) + ")"};
    }
  }
  return {};
}

/// Fixed keys from `id`, `secret` and `token`; nothing when `id` and
/// `secret` are both unset; an error naming the missing one when only one is.
inline std::optional<credentials> keys_from(const setting& id, const setting& secret, const setting& token,
                                            const std::string& missing_id, const std::string& missing_secret) {
  if (!id && !secret) return std::nullopt;
  if (!id) throw std::invalid_argument(missing_id + ": not set, but " + secret.origin + " is (S3 needs both)");
  if (!secret) throw std::invalid_argument(missing_secret + ": not set, but " + id.origin + " is (S3 needs both)");
  check_credential(id.value, id.origin, true, true);
  check_credential(secret.value, secret.origin, true, false);
  check_credential(token.value, token.origin, false, false);
  return credentials{id.value, secret.value, token.value};
}

/// Checks that the CA bundle `s` names is a readable file.
inline void check_readable_file(const setting& s) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(s.value, ec)) {
    throw setting_error(s, "the CA bundle " + storewatch::detail::quote(s.value) +
                               (std::filesystem::exists(s.value, ec) ? " is not a file" : " does not exist"));
  }
  std::ifstream in(s.value);
  if (!in) throw setting_error(s, "cannot read the CA bundle " + storewatch::detail::quote(s.value));
}

/// Checks a container credentials URI as the AWS SDKs do: https, or http to
/// a loopback address or the ECS/EKS agent's.
inline void check_container_uri(const setting& s) {
  const auto e = parse_endpoint(s.value.substr(0, s.value.find('/', s.value.find("://") + 3)), s.origin);
  if (e.scheme == "https") return;
  const bool allowed = e.host == "localhost" || e.host.starts_with("127.") || e.host == "::1" ||
                       e.host == "169.254.170.2" || e.host == "169.254.170.23" || e.host == "fd00:ec2::23";
  if (!allowed) {
    throw setting_error(s, "an http URI must name a loopback address or the container agent "
                           "(169.254.170.2, 169.254.170.23, fd00:ec2::23); use https otherwise");
  }
}

}  // namespace detail

/// The configuration of the store at `store_url` ("s3://bucket/prefix"):
/// `options`, then the environment (read through `env`), then the shared
/// files, as the file comment lists. Throws std::invalid_argument whose
/// message starts with the source at fault ("option '--region': ...",
/// "AWS_PROFILE: ...", "/home/u/.aws/config:7: ...", "store URL: ..."); no
/// message shows a credential. Reads files, but makes no request: a
/// credential source other than fixed keys is left to the client
/// (`config::credentials_from`).
inline config resolve_config(std::string_view store_url, const resolve_options& options = {},
                             const environment_lookup& env = process_environment) {
  using detail::setting;
  using storewatch::detail::quote;
  auto location = parse_store_url(store_url);
  config result;
  result.bucket = std::move(location.bucket);
  result.prefix = std::move(location.prefix);

  // The profile and its files.
  detail::profile_view profile;
  ini_file config_file, credentials_file;
  std::string config_path, credentials_path;
  if (options.shared_files) {
    const auto named = detail::first_of({{options.profile, options.profile_origin},
                                         detail::variable(env, "AWS_PROFILE"),
                                         detail::variable(env, "AWS_DEFAULT_PROFILE")});
    profile.name = named ? named.value : "default";
    const auto config_from = detail::first_of({detail::variable(env, "AWS_CONFIG_FILE"), {"~/.aws/config", "~/.aws/config"}});
    const auto credentials_from = detail::first_of(
        {detail::variable(env, "AWS_SHARED_CREDENTIALS_FILE"), {"~/.aws/credentials", "~/.aws/credentials"}});
    config_path = detail::expand_home(config_from.value, env);
    credentials_path = detail::expand_home(credentials_from.value, env);
    config_file = detail::read_shared_file(config_path, config_from.origin);
    credentials_file = detail::read_shared_file(credentials_path, credentials_from.origin);
    const auto* in_config = config_file.find("profile " + profile.name);
    if (profile.name == "default" && config_file.find("default") != nullptr) in_config = config_file.find("default");
    profile.config_file = {config_path, in_config};
    profile.credentials_file = {credentials_path, credentials_file.find(profile.name)};
    if (named && !profile.config_file.section && !profile.credentials_file.section) {
      throw std::invalid_argument(named.origin + ": the profile " + quote(profile.name) + " is not in " +
                                  quote(config_path) + " ([profile " + profile.name + "]) or " +
                                  quote(credentials_path) + " ([" + profile.name + "])");
    }
  }

  // Region.
  const auto region = detail::first_of({{options.region, options.region_origin}, detail::variable(env, "AWS_REGION"),
                                        detail::variable(env, "AWS_DEFAULT_REGION"), profile.get("region")});
  if (region) {
    detail::check_region(region.value, region.origin);
    result.region = region.value;
  }

  // Endpoint.
  const auto ignore_configured =
      detail::first_of({detail::variable(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"),
                        profile.get("ignore_configure_endpoint_urls")});
  const bool use_configured = !detail::is_true(ignore_configured.value);
  const auto endpoint =
      detail::first_of({{options.endpoint, options.endpoint_origin},
                        use_configured ? detail::variable(env, "AWS_ENDPOINT_URL_S3") : setting{},
                        use_configured ? detail::variable(env, "AWS_ENDPOINT_URL") : setting{},
                        use_configured ? profile.get("endpoint_url") : setting{}});
  if (endpoint) result.endpoint = parse_endpoint(endpoint.value, endpoint.origin);
  for (const char* name : {"AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"}) {
    detail::refuse_true(detail::variable(env, name), "a FIPS or dual-stack endpoint");
  }
  if (!endpoint) {
    detail::refuse(profile, "services", "a services section (endpoints per service)");
    detail::refuse_true(profile.get("use_fips_endpoint"), "a FIPS endpoint");
    detail::refuse_true(profile.get("use_dualstack_endpoint"), "a dual-stack endpoint");
    detail::refuse_true(detail::nested(profile, "s3", "use_dualstack_endpoint"), "a dual-stack endpoint");
    detail::refuse_true(detail::nested(profile, "s3", "use_accelerate_endpoint"), "S3 Transfer Acceleration");
  }

  // Addressing.
  if (options.addressing) {
    result.addressing = *options.addressing;
  } else if (const auto style = detail::nested(profile, "s3", "addressing_style")) {
    if (style.value == "auto") {
      result.addressing = addressing_style::automatic;
    } else if (style.value == "path") {
      result.addressing = addressing_style::path;
    } else if (style.value == "virtual") {
      result.addressing = addressing_style::virtual_hosted;
    } else {
      throw detail::setting_error(style, "expected auto, path or virtual, not " + quote(style.value));
    }
  }

  // CA bundle.
  const auto ca = detail::first_of({{options.ca_bundle, options.ca_bundle_origin},
                                    detail::variable(env, "AWS_CA_BUNDLE"), profile.get("ca_bundle")});
  if (ca) {
    detail::check_readable_file(ca);
    result.ca_bundle = ca.value;
  }

  // Credentials, in the AWS CLI's order.
  auto& source = result.credentials_from;
  const auto use_keys = [&](credentials keys, std::string origin) {
    result.credentials = std::move(keys);
    source.what = credential_source::kind::keys;
    source.origin = std::move(origin);
    validate(result);
    return result;
  };
  if (!options.credentials.access_key_id.empty()) {
    const auto keys = detail::keys_from({options.credentials.access_key_id, "credentials.access_key_id"},
                                        {options.credentials.secret_access_key, "credentials.secret_access_key"},
                                        {options.credentials.session_token, "credentials.session_token"},
                                        "credentials.access_key_id", "credentials.secret_access_key");
    return use_keys(*keys, "the credentials given");
  }
  if (options.profile.empty() || !options.shared_files) {
    const auto id = detail::variable(env, "AWS_ACCESS_KEY_ID");
    const auto secret = detail::variable(env, "AWS_SECRET_ACCESS_KEY");
    if (!options.credential_services && !id && !secret) {
      throw std::invalid_argument("AWS_ACCESS_KEY_ID: not set (S3 needs an access key and its secret)");
    }
    if (auto keys = detail::keys_from(id, secret, detail::variable(env, "AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID",
                                      "AWS_SECRET_ACCESS_KEY")) {
      return use_keys(*keys, "AWS_ACCESS_KEY_ID");
    }
  }
  if (!options.credential_services) {
    throw std::invalid_argument("AWS_ACCESS_KEY_ID: not set (S3 needs an access key and its secret)");
  }
  const std::string in_profile = "profile " + quote(profile.name);

  // role_arn: with a web identity token file, or not supported.
  const auto token_file = detail::first_of(
      {detail::variable(env, "AWS_WEB_IDENTITY_TOKEN_FILE"), profile.get("web_identity_token_file")});
  const auto role_arn = detail::first_of({detail::variable(env, "AWS_ROLE_ARN"), profile.get("role_arn")});
  if (role_arn && !token_file) {
    detail::refuse(profile, "source_profile", "role_arn with source_profile (assuming a role)");
    detail::refuse(profile, "credential_source", "role_arn with credential_source (assuming a role)");
    throw detail::setting_error(role_arn, "role_arn needs web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN_FILE); "
                                          "assuming a role with other credentials is not supported by storewatch");
  }
  if (token_file) {
    if (!role_arn) {
      throw detail::setting_error(token_file, "a web identity token file needs a role: set AWS_ROLE_ARN or role_arn");
    }
    source.what = credential_source::kind::web_identity;
    source.origin = token_file.origin;
    source.token_file = detail::expand_home(token_file.value, env);
    source.role_arn = role_arn.value;
    const auto name = detail::first_of(
        {detail::variable(env, "AWS_ROLE_SESSION_NAME"), profile.get("role_session_name")});
    source.session_name =
        name ? name.value
             : "storewatch-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
    source.uri = "https://sts." + result.region + ".amazonaws.com";
    validate(result);
    return result;
  }
  for (const char* key : {"sso_session", "sso_start_url", "sso_account_id", "sso_role_name"}) {
    detail::refuse(profile, key, std::string("IAM Identity Center (") + key + ")");
  }

  const auto profile_keys = [&](const detail::profile_part& part) {
    const auto id = profile.in(part, "aws_access_key_id");
    const auto secret = profile.in(part, "aws_secret_access_key");
    const auto token = profile.in(part, "aws_session_token");
    const auto where = part.path + " (" + in_profile + ")";
    return detail::keys_from(id, secret, token, where + ": aws_access_key_id", where + ": aws_secret_access_key");
  };
  if (auto keys = profile_keys(profile.credentials_file)) {
    return use_keys(*keys, in_profile + " in " + profile.credentials_file.path);
  }
  if (const auto command = profile.get("credential_process")) {
    source.what = credential_source::kind::process;
    source.origin = command.origin;
    source.command = command.value;
    validate(result);
    return result;
  }
  if (auto keys = profile_keys(profile.config_file)) {
    return use_keys(*keys, in_profile + " in " + profile.config_file.path);
  }

  // Container credentials.
  const auto relative = detail::variable(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const auto full = detail::variable(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (relative || full) {
    source.what = credential_source::kind::container;
    if (relative) {
      if (!relative.value.starts_with('/')) throw detail::setting_error(relative, "must start with '/'");
      source.origin = relative.origin;
      source.uri = "http://169.254.170.2" + relative.value;
    } else {
      detail::check_container_uri(full);
      source.origin = full.origin;
      source.uri = full.value;
    }
    source.authorization_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (source.authorization_file.empty()) source.authorization = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    validate(result);
    return result;
  }

  // EC2 instance metadata.
  const auto disabled = detail::variable(env, "AWS_EC2_METADATA_DISABLED");
  if (detail::is_true(disabled.value)) {
    std::string looked = "AWS_ACCESS_KEY_ID";
    if (options.shared_files) {
      looked += ", " + in_profile + " in " + quote(credentials_path) + " and " + quote(config_path);
    }
    throw std::invalid_argument("no S3 credentials: none in " + looked +
                                ", no web identity or container credentials, and AWS_EC2_METADATA_DISABLED is true");
  }
  const auto imds = detail::first_of({detail::variable(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT"),
                                      profile.get("ec2_metadata_service_endpoint")});
  const auto mode = detail::first_of({detail::variable(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
                                      profile.get("ec2_metadata_service_endpoint_mode")});
  source.what = credential_source::kind::instance_metadata;
  if (imds) {
    parse_endpoint(imds.value, imds.origin);
    source.origin = imds.origin;
    source.uri = imds.value;
    if (source.uri.ends_with('/')) source.uri.pop_back();
  } else if (mode && s3::detail::to_lower_ascii(mode.value) == "ipv6") {
    source.origin = mode.origin;
    source.uri = "http://[fd00:ec2::254]";
  } else {
    if (mode && s3::detail::to_lower_ascii(mode.value) != "ipv4") {
      throw detail::setting_error(mode, "expected IPv4 or IPv6, not " + quote(mode.value));
    }
    source.origin = "EC2 instance metadata";
    source.uri = "http://169.254.169.254";
  }
  validate(result);
  return result;
}

/// The configuration of the store at `store_url` ("s3://bucket/prefix")
/// from the environment alone (`resolve_config` without the shared files,
/// web identity, container or instance credentials):
/// - credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN;
/// - region: AWS_REGION, else AWS_DEFAULT_REGION, else "us-east-1";
/// - endpoint: `endpoint_override` when given (the variables are then not
///   read), else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS's
///   endpoint for the region;
/// - CA bundle: AWS_CA_BUNDLE; addressing: automatic.
///
/// Throws std::invalid_argument naming the variable (or "store URL") at fault.
/// Reads the environment with std::getenv: do not call it while another
/// thread may change the environment.
inline config config_from_environment(std::string_view store_url,
                                      const std::optional<endpoint>& endpoint_override = std::nullopt) {
  resolve_options options;
  options.shared_files = false;
  options.credential_services = false;
  if (endpoint_override) options.endpoint = endpoint_override->scheme + "://" + endpoint_override->authority();
  return resolve_config(store_url, options);
}

}  // namespace storewatch::s3
