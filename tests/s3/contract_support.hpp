// What the two files of the S3 async contract tests share
// (contract_store_test.cpp: s3_store, contract_client_test.cpp: s3::client):
// two files in two test programs, so that their compilation, the longest of
// the suite, runs in parallel. See ../contract_test.cpp for the local store's.
#pragma once

#include "common/contract.hpp"
#include "common/server.hpp"

#include <storewatch/store/s3_store.hpp>

#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace s3_contract {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

/// How long an S3 operation may take: a loaded machine, sanitizers and s3rver.
inline constexpr std::chrono::seconds s3_limit{120};

/// Holds the next request made after `arm()`: its first attempt fails with a
/// refused connection, so the operation waits for its retry (an hour, with
/// `waiting_options`) until cancelled. Later attempts go through.
class held_request final : public s3::detail::request_fault_injector {
 public:
  held_request() { s3::detail::request_faults = this; }
  held_request(const held_request&) = delete;
  held_request& operator=(const held_request&) = delete;
  ~held_request() override { s3::detail::request_faults = nullptr; }

  void arm() {
    armed_ = true;
    held_.clear();
  }
  /// The request held since `arm()` ("PUT docs/a.txt"), empty before it came.
  const std::string& held() const { return held_; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    if (!armed_) return std::nullopt;
    armed_ = false;
    held_ = std::string(method) + ' ' + std::string(name);
    return outcome{s3::make_http_error(CURLE_COULDNT_CONNECT), {}};
  }

 private:
  bool armed_ = false;
  std::string held_;
};

/// Client options whose retry waits an hour: a test cancels it long before.
inline s3::client_options waiting_options() {
  s3::client_options options;
  options.retry = backoff_policy{1h, 1h, 1.0, 0.0};
  options.retry_budget = 0ms;  // no budget: the hour's wait is allowed
  return options;
}

/// Starts the operation `start(token)` while `hold` holds its first
/// request; cancels it once it waits for its retry and checks that it
/// completes with operation_aborted; then runs it again, unheld, and checks
/// that it succeeds.
template <class Start>
void cancel_while_waiting(asio::io_context& io, held_request& hold, Start start) {
  asio::cancellation_signal cancel;
  std::optional<std::error_code> cancelled;
  hold.arm();
  start(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, auto&&...) { cancelled = ec; }));
  REQUIRE(run_until(io, [&] { return !hold.held().empty() || cancelled.has_value(); }, s3_limit));
  INFO("held: " << hold.held());
  REQUIRE_FALSE(cancelled);  // waiting an hour for its retry
  cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(io, [&] { return cancelled.has_value(); }, s3_limit));
  CHECK(*cancelled == asio::error::operation_aborted);

  std::optional<std::error_code> again;
  start([&](std::error_code ec, auto&&...) { again = ec; });
  REQUIRE(run_until(io, [&] { return again.has_value(); }, s3_limit));
  CHECK_FALSE(*again);
}

/// A local file holding `bytes`.
inline std::filesystem::path write_file(const temp_dir& dir, const std::string& name, const std::string& bytes) {
  const auto path = dir.path() / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace s3_contract
