// Command-line options of the two-user demo programs: "--name value" pairs
// read by CLI11 against a table, so each program states what it accepts; and
// the store they name, a folder (--root DIR) or an S3 bucket (--store
// s3://bucket/prefix, when built with the S3 component), opened by
// storewatch::open_store; and, for an S3 store, the Redis wake-up hints
// --hints URL names (when built with the Redis component, which defines
// STOREWATCH_WITH_REDIS here): Alice publishes them, Bob is woken by them.
#pragma once

#include <storewatch/hints.hpp>
#include <storewatch/store/open_store.hpp>
#include <storewatch/storewatch.hpp>
#ifdef STOREWATCH_WITH_REDIS
#include <storewatch/redis/hints.hpp>
#endif

#include <CLI/CLI.hpp>

#include <asio/redirect_error.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
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
  options["hints"] = {"hints", "",
                      "for an s3:// store: wake-up hints through Redis pub/sub at this URL (redis://host:port/db)"};
}

/// Where the store is: --store if given, else --root.
inline std::string store_location(std::map<std::string, option>& options) {
  return options["store"].value.empty() ? options["root"].value : options["store"].value;
}

/// True when the options name an S3 store.
inline bool is_s3(std::map<std::string, option>& options) {
  return storewatch::is_s3_location(store_location(options));
}

/// The Redis server --hints names, checked: hints are for an s3:// store,
/// in a program built with the Redis component. Empty without --hints.
inline std::string hints_url(std::map<std::string, option>& options) {
  const auto& url = options["hints"].value;
  if (url.empty()) return url;
  if (!is_s3(options)) {
    throw std::invalid_argument("--hints " + url + ": hints are for an s3:// store (a directory store wakes its "
                                "listeners itself)");
  }
#ifndef STOREWATCH_WITH_REDIS
  throw std::invalid_argument("--hints: this program was built without the Redis component (storewatch::redis)");
#endif
  return url;
}

/// Alice's side of --hints: the publisher her store sends a hint through
/// after each operation (none without --hints), and `flush`, which waits
/// until the Redis server has them, for a program about to exit.
class hint_sender {
 public:
  hint_sender(asio::io_context& io, std::map<std::string, option>& options) {
    const auto url = hints_url(options);
#ifdef STOREWATCH_WITH_REDIS
    if (!url.empty()) publisher_ = std::make_shared<storewatch::redis::hint_publisher>(io.get_executor(),
                                                                                      storewatch::redis::parse_url(url));
#else
    (void)io;
#endif
  }

  std::shared_ptr<storewatch::hint_publisher> publisher() const { return publisher_; }

  /// Waits (up to 5 s) until every hint sent so far is with the server, or lost.
  asio::awaitable<void> flush() {
#ifdef STOREWATCH_WITH_REDIS
    if (publisher_) {
      co_await publisher_->async_flush(std::chrono::seconds(5),
                                       asio::redirect_error(asio::use_awaitable, flushed_));
    }
#endif
    co_return;
  }

 private:
#ifdef STOREWATCH_WITH_REDIS
  std::shared_ptr<storewatch::redis::hint_publisher> publisher_;
  std::error_code flushed_;  // a failure is reported by the publisher itself
#else
  std::shared_ptr<storewatch::hint_publisher> publisher_;
#endif
};

/// Bob's side of --hints: the subscriber that wakes his S3 journal source
/// when Alice's hint arrives (nullptr without --hints).
inline std::shared_ptr<storewatch::hint_subscriber> hint_receiver(asio::io_context& io,
                                                                  std::map<std::string, option>& options) {
  const auto url = hints_url(options);
#ifdef STOREWATCH_WITH_REDIS
  if (!url.empty()) {
    return std::make_shared<storewatch::redis::hint_subscriber>(io.get_executor(), storewatch::redis::parse_url(url));
  }
#else
  (void)io;
#endif
  return nullptr;
}

/// Opens the store the options name, as `user`, and returns `use(store)`:
/// a `storewatch::local_store` for a directory, a `storewatch::s3::s3_store`
/// for s3://bucket/prefix, with credentials and region from the environment
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) and the endpoint
/// from --endpoint or the environment. Both stores have the same
/// operations, so `use` is written once (a generic lambda). An S3 store
/// publishes hints through `hints` when given.
template <class Use>
auto with_store(asio::io_context& io, std::map<std::string, option>& options, const std::string& user, Use&& use,
                std::shared_ptr<storewatch::hint_publisher> hints = nullptr) {
  storewatch::open_store_options how;
  how.endpoint = options["endpoint"].value;
  how.endpoint_origin = "--endpoint";
#ifdef STOREWATCH_WITH_S3
  if (hints) {
    storewatch::s3::s3_store_options s3_options;
    s3_options.hints = std::move(hints);
    storewatch::s3::s3_store store(io.get_executor(), storewatch::s3_store_config(store_location(options), how), user,
                                   std::move(s3_options));
    return std::forward<Use>(use)(store);
  }
#endif
  auto store = storewatch::open_store(io.get_executor(), store_location(options), user, how);
  return std::visit(std::forward<Use>(use), store);
}

/// The journal a listener reads: `store`'s, woken by `hints` on S3.
template <class Store>
auto journal_of(Store& store, const std::shared_ptr<storewatch::hint_subscriber>&) {
  return store.events();  // a directory store wakes its listeners itself
}
#ifdef STOREWATCH_WITH_S3
inline auto journal_of(storewatch::s3::s3_store& store, const std::shared_ptr<storewatch::hint_subscriber>& hints) {
  storewatch::s3::s3_journal_options options;
  options.hints = hints;
  return store.events(std::move(options));
}
#endif

}  // namespace demo
