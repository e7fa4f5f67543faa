// Command-line options of the two-user demo programs: "--name value" pairs
// read by CLI11 against a table, so each program states what it accepts; and
// the store they name, a folder (--root DIR) or an S3 bucket (--store
// s3://bucket/prefix, when built with the S3 component), opened by
// storewatch::open_store.
#pragma once

#include <storewatch/store/open_store.hpp>
#include <storewatch/storewatch.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace demo {

struct option {
  const char* name;     // without the leading "--"
  std::string value;    // the default, replaced by the command line
  const char* meaning;  // for --help
};

/// Fills `options` from argv ("--name value" or "--name=value"); prints
/// usage and exits 0 for --help, 2 on anything unknown.
inline void parse(int argc, char** argv, std::map<std::string, option>& options, const char* summary) {
  CLI::App app{summary, argv[0]};
  for (auto& [key, o] : options) {
    app.add_option("--" + std::string(o.name), o.value, o.meaning)->type_name("VALUE")->capture_default_str();
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    std::exit(app.exit(error) == 0 ? 0 : 2);
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
inline bool is_s3(std::map<std::string, option>& options) {
  return storewatch::is_s3_location(store_location(options));
}

/// Opens the store the options name, as `user`, and returns `use(store)`:
/// a `storewatch::local_store` for a directory, a `storewatch::s3::s3_store`
/// for s3://bucket/prefix, with credentials and region from the environment
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) and the endpoint
/// from --endpoint or the environment. Both stores have the same
/// operations, so `use` is written once (a generic lambda).
template <class Use>
auto with_store(asio::io_context& io, std::map<std::string, option>& options, const std::string& user, Use&& use) {
  storewatch::open_store_options how;
  how.endpoint = options["endpoint"].value;
  how.endpoint_origin = "--endpoint";
  auto store = storewatch::open_store(io.get_executor(), store_location(options), user, how);
  return std::visit(std::forward<Use>(use), store);
}

}  // namespace demo
