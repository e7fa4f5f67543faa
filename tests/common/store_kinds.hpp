// The stores the shared store suite (store_suite_test.cpp) runs against,
// each behind one interface: `store_kind::open(user)` gives a `test_store`
// whose operations block until the store's async operation completes (or
// fail the test after a generous bound), throwing std::system_error with
// the store's `last_error()`, as local_store's blocking calls do.
//
//   local_kind   a local_store in a fresh temporary folder
//   s3_kind      an s3_store under a fresh key prefix of the test S3 server
//                (tests/s3/common/server.hpp); built with STOREWATCH_TEST_S3
#pragma once

#include "fixture.hpp"
#include "store.hpp"

#include <storewatch/storewatch.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <stdlib.h>

#ifdef STOREWATCH_TEST_S3
#include "../s3/common/server.hpp"

#include <storewatch/store/s3_store.hpp>
#endif

namespace storewatch::test {

/// How long a store operation or a coroutine of the S3 kind may take: a
/// loaded machine, sanitizers and s3rver.
inline constexpr std::chrono::seconds store_limit{120};

/// Runs `io` until the operation `start(handler)` began completes; returns
/// its result or throws std::system_error(code, `last_error()`).
template <class Result, class Start, class LastError>
Result complete(asio::io_context& io, Start start, LastError last_error) {
  std::optional<std::pair<std::error_code, Result>> outcome;
  start([&outcome](std::error_code ec, Result result) { outcome.emplace(ec, std::move(result)); });
  if (!run_until(io, [&] { return outcome.has_value(); }, store_limit)) {
    throw std::runtime_error("a store operation did not complete within 120 s");
  }
  if (outcome->first) throw std::system_error(outcome->first, last_error());
  return std::move(outcome->second);
}

/// Every file under `root` with its bytes, by path relative to `root`.
inline std::map<std::string, std::string> read_tree(const std::filesystem::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    out[entry.path().lexically_relative(root).generic_string()] =
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

/// A store object of any kind, driven synchronously on `io`.
template <class Store>
class test_store {
 public:
  using versions = std::vector<versioned_path>;

  test_store(asio::io_context& io, std::unique_ptr<Store> store) : io_(&io), store_(std::move(store)) {}

  Store& get() { return *store_; }
  const Store& get() const { return *store_; }
  const std::string& user() const { return store_->user(); }

  versioned_path create_file(std::string path, std::string bytes) {
    return run<versioned_path>([&](auto h) { store_->async_create_file(std::move(path), std::move(bytes), std::move(h)); });
  }
  versioned_path create_file_from(std::string path, std::filesystem::path source) {
    return run<versioned_path>(
        [&](auto h) { store_->async_create_file_from(std::move(path), std::move(source), std::move(h)); });
  }
  std::uint64_t read_file_to(versioned_path version, std::filesystem::path destination) {
    return run<std::uint64_t>(
        [&](auto h) { store_->async_read_file_to(std::move(version), std::move(destination), std::move(h)); });
  }
  versions share_files(selection which, std::vector<std::string> users, bool share) {
    return run<versions>([&](auto h) {
      if (share) {
        store_->async_share_files(std::move(which), std::move(users), std::move(h));
      } else {
        store_->async_unshare_files(std::move(which), std::move(users), std::move(h));
      }
    });
  }
  versions delete_files(selection which) {
    return run<versions>([&](auto h) { store_->async_delete_files(std::move(which), std::move(h)); });
  }
  std::string read_file(versioned_path version) {
    return run<std::string>([&](auto h) { store_->async_read_file(std::move(version), std::move(h)); });
  }
  versions list_files(std::string prefix, bool recursive) {
    return run<versions>([&](auto h) { store_->async_list_files(std::move(prefix), recursive, std::move(h)); });
  }
  std::vector<std::string> publish_event(std::string name, std::string data, std::vector<std::string> users) {
    return run<std::vector<std::string>>([&](auto h) {
      store_->async_publish_event(std::move(name), std::move(data), std::move(users), std::move(h));
    });
  }
  std::size_t compact(std::chrono::seconds age) {
    return run<std::size_t>([&](auto h) { store_->async_compact(age, std::move(h)); });
  }

 private:
  template <class Result, class Start>
  Result run(Start start) {
    return complete<Result>(*io_, std::move(start), [this]() -> const std::string& { return store_->last_error(); });
  }

  asio::io_context* io_;
  std::unique_ptr<Store> store_;
};

/// A local_store in a fresh temporary folder.
struct local_kind {
  static constexpr const char* name = "local";
  using store_type = local_store;

  asio::io_context io;
  temp_dir dir;

  test_store<local_store> open(const std::string& user) {
    return {io, std::make_unique<local_store>(io.get_executor(), dir.path(), user)};
  }

  /// A reader of `store`'s user's journal from the start.
  journal_reader journal(const test_store<local_store>& store) { return journal_reader(store.get()); }

  /// The store's location as the tools take it (--root, --store).
  std::string location() const { return dir.path().string(); }

  /// Everything the store holds: each file's path and bytes.
  std::map<std::string, std::string> snapshot() const { return read_tree(dir.path()); }
};

#ifdef STOREWATCH_TEST_S3
/// An s3_store under a fresh key prefix of the test server.
struct s3_kind {
  static constexpr const char* name = "s3";
  using store_type = s3::s3_store;

  asio::io_context io;
  s3::config config = s3::test::test_server_config();

  test_store<s3::s3_store> open(const std::string& user) {
    return {io, std::make_unique<s3::s3_store>(io.get_executor(), config, user)};
  }

  /// The store's location as the tools take it: "s3://bucket/prefix". Sets
  /// the endpoint and credentials in this process's environment, where child
  /// processes (and `s3::config_from_environment`) find them.
  std::string location() const {
    ::setenv("AWS_ENDPOINT_URL", (config.endpoint.scheme + "://" + config.endpoint.authority()).c_str(), 1);
    ::setenv("AWS_ACCESS_KEY_ID", config.credentials.access_key_id.c_str(), 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", config.credentials.secret_access_key.c_str(), 1);
    ::setenv("AWS_REGION", config.region.c_str(), 1);
    auto prefix = config.prefix;
    if (prefix.ends_with('/')) prefix.pop_back();
    return "s3://" + config.bucket + "/" + prefix;
  }

  journal_reader journal(const test_store<s3::s3_store>& store) {
    auto source = std::make_shared<s3::s3_journal_source>(store.get().events());
    return journal_reader([this, source](const std::string& cursor, std::size_t max_events) {
      return complete<poll_result>(
          io, [&](auto h) { source->async_poll(cursor, max_events, std::move(h)); },
          [&]() -> const std::string& { return source->last_error(); });
    });
  }

  /// Every object under the prefix, with its bytes.
  std::map<std::string, std::string> snapshot() {
    s3::client client(io.get_executor(), config);
    std::map<std::string, std::string> out;
    s3::list_request request;
    for (;;) {
      auto page = run_coroutine(io, client.list(request), store_limit);
      for (const auto& object : page.objects) {
        out[object.key] = run_coroutine(io, client.get(object.key), store_limit).value_or("<gone>");
      }
      if (!page.truncated) break;
      request.continuation_token = page.next_continuation_token;
    }
    return out;
  }
};
#endif

}  // namespace storewatch::test
