// Command-line options of the two-user demo programs: "--name value" pairs
// checked against a table, so each program states what it accepts; and the
// store they name, a folder (--root DIR) or an S3 bucket (--store
// s3://bucket/prefix, when built with the S3 component).
#pragma once

#include <storewatch/storewatch.hpp>
#ifdef STOREWATCH_EXAMPLES_S3
#include <storewatch/s3/store.hpp>
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace demo {

struct option {
  const char* name;     // without the leading "--"
  std::string value;    // the default, replaced by the command line
  const char* meaning;  // for --help
};

/// Fills `options` from argv; prints usage and exits 2 on anything unknown.
inline void parse(int argc, char** argv, std::map<std::string, option>& options, const char* summary) {
  const auto usage = [&](FILE* out) {
    std::fprintf(out, "%s\n\nusage: %s", summary, argv[0]);
    for (const auto& [key, o] : options) std::fprintf(out, " [--%s VALUE]", o.name);
    std::fprintf(out, "\n");
    for (const auto& [key, o] : options) {
      std::fprintf(out, "  --%-12s %s%s%s%s\n", o.name, o.meaning, o.value.empty() ? "" : " (default: ",
                   o.value.c_str(), o.value.empty() ? "" : ")");
    }
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    }
    const auto found = arg.starts_with("--") ? options.find(std::string(arg.substr(2))) : options.end();
    if (found == options.end() || i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s '%s'\n", argv[0], found == options.end() ? "unknown option" : "missing value for",
                   argv[i]);
      usage(stderr);
      std::exit(2);
    }
    found->second.value = argv[++i];
  }
}

/// An option's value in seconds ("0.2", "5"), as milliseconds; anything
/// else, or less than a millisecond, is an error naming the option.
inline std::chrono::milliseconds seconds_option(const option& o) {
  std::size_t used = 0;
  double seconds = 0;
  try {
    seconds = std::stod(o.value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != o.value.size() || !(seconds >= 0.001 && seconds <= 86400)) {
    throw std::invalid_argument("--" + std::string(o.name) + " " + o.value +
                                ": not a number of seconds from 0.001 to 86400");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

/// The options naming the store, for a program's table.
inline void add_store_options(std::map<std::string, option>& options) {
  options["root"] = {"root", "storewatch-demo", "the store's directory"};
  options["store"] = {"store", "", "the store instead of --root: a directory or s3://bucket/prefix"};
  options["endpoint"] = {"endpoint", "",
                         "the S3 service for an s3:// store (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS)"};
}

/// Where the store is: --store if given, else --root.
inline std::string store_location(std::map<std::string, option>& options) {
  return options["store"].value.empty() ? options["root"].value : options["store"].value;
}

/// True when the options name an S3 store.
inline bool is_s3(std::map<std::string, option>& options) { return store_location(options).starts_with("s3://"); }

/// Opens the store the options name, as `user`, and returns `use(store)`:
/// a `storewatch::local_store` for a directory, a `storewatch::s3::s3_store`
/// for s3://bucket/prefix, with credentials and region from the environment
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) and the endpoint
/// from --endpoint or the environment. Both stores have the same
/// operations, so `use` is written once (a generic lambda).
template <class Use>
auto with_store(asio::io_context& io, std::map<std::string, option>& options, const std::string& user, Use&& use) {
  const auto location = store_location(options);
  if (location.starts_with("s3://")) {
#ifdef STOREWATCH_EXAMPLES_S3
    auto config = storewatch::s3::config_from_environment(location);
    if (!options["endpoint"].value.empty()) {
      config.endpoint = storewatch::s3::parse_endpoint(options["endpoint"].value, "--endpoint");
    }
    storewatch::s3::s3_store store(io.get_executor(), config, user);
    return use(store);
#else
    throw std::runtime_error("--store " + location + ": this program was built without S3 support");
#endif
  }
  if (!options["endpoint"].value.empty()) throw std::runtime_error("--endpoint is only for an s3:// store");
  storewatch::local_store store(io.get_executor(), location, user);
  return use(store);
}

}  // namespace demo
