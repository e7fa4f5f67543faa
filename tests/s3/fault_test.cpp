// Each S3 store operation failing at each of its requests (through
// s3::detail::request_faults, the client's test seam; every k-th request, the
// first and the last with STOREWATCH_FAULT_STRIDE k: common/sizing.hpp): the
// operation fails naming the request, and the bucket and the journals are as
// before — or, for a delete whose DELETE records are stored, running it again
// finishes it.
#include "common/fixture.hpp"
#include "common/sizing.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"

#include <storewatch/store/s3_store.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <optional>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace fault_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

/// Fails the n-th request made while installed (0: none) with a refused
/// connection.
class fail_nth final : public s3::detail::request_fault_injector {
 public:
  explicit fail_nth(std::size_t n) : n_(n) { s3::detail::request_faults = this; }
  fail_nth(const fail_nth&) = delete;
  fail_nth& operator=(const fail_nth&) = delete;
  ~fail_nth() override { s3::detail::request_faults = nullptr; }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    if (++seen_ != n_) return std::nullopt;
    failed_ = std::string(method) + " " + std::string(name);
    return outcome{s3::make_http_error(CURLE_COULDNT_CONNECT), {}};
  }

  /// The request that was failed ("PUT journals/bob/..."), or empty.
  const std::string& failed() const { return failed_; }
  /// The requests made so far.
  std::size_t seen() const { return seen_; }

 private:
  std::size_t n_;
  std::size_t seen_ = 0;
  std::string failed_;
};

/// Fails each attempt of a request whose method is `method` and whose name
/// contains `name_part` with the transport error `code`, counting them.
class fail_named final : public s3::detail::request_fault_injector {
 public:
  fail_named() { s3::detail::request_faults = this; }
  fail_named(const fail_named&) = delete;
  fail_named& operator=(const fail_named&) = delete;
  ~fail_named() override { s3::detail::request_faults = nullptr; }

  fail_named& fail(std::string method, std::string name_part, CURLcode code) {
    rules_.push_back({std::move(method), std::move(name_part), code});
    return *this;
  }

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    for (const auto& rule : rules_) {
      if (method != rule.method || name.find(rule.name_part) == std::string_view::npos) continue;
      ++fired_;
      return outcome{s3::make_http_error(rule.code), {}};
    }
    return std::nullopt;
  }

  /// Fails nothing more.
  void clear() { rules_.clear(); }

  /// The attempts failed so far.
  std::size_t fired() const { return fired_; }

 private:
  struct rule {
    std::string method;
    std::string name_part;
    CURLcode code;
  };
  std::vector<rule> rules_;
  std::size_t fired_ = 0;
};

/// One request per attempt, so that one injected failure fails the request.
s3::s3_store_options one_attempt() {
  s3::s3_store_options options;
  options.client.max_attempts = 1;
  return options;
}

struct scenario {
  std::string name;
  std::function<void(test_store<s3::s3_store>&)> run;
};

}  // namespace

TEST_CASE("S3 faults: every operation failing at each of its requests leaves the bucket and the journals as they were") {
  const std::vector<scenario> operations{
      {"create", [](auto& alice) { alice.create_file("docs/c.txt", "new"); }},
      {"share", [](auto& alice) { alice.share_files(chosen("docs/", true), {"bob", "carol"}, true); }},
      {"unshare", [](auto& alice) { alice.share_files(chosen("docs/", true), {"bob", "carol"}, false); }},
      {"publish", [](auto& alice) { alice.publish_event("note", "x", {"alice", "bob", "carol"}); }},
      {"delete", [](auto& alice) { alice.delete_files(chosen("docs/", true)); }},
  };
  fault_sweep sweep("S3 faults");
  for (std::size_t op = 0; op < operations.size(); ++op) {
    const auto& operation = operations[op];
    std::size_t requests = 0;
    // Request 0: a clean run, which counts the requests; then the sweep
    // (each operation from another rotation: fault_sweep).
    const auto run = [&](std::size_t n) {
      INFO(operation.name << ", request " << n << " failing");
      s3_kind kind;
      auto alice = kind.open("alice");
      alice.create_file("docs/a.txt", "a");
      alice.create_file("docs/b.txt", "b");
      alice.share_files(chosen("docs/a.txt", false), {"bob"}, true);
      std::map<std::string, journal_reader> journals;
      for (const char* user : {"alice", "bob", "carol"}) {
        journals.emplace(user, kind.journal(kind.open(user)));
        journals.at(user).take();
      }
      const auto before = kind.snapshot();

      test_store<s3::s3_store> faulty(kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(), kind.config,
                                                                               "alice", one_attempt()));
      std::string failed;
      failure f;
      {
        fail_nth fault(n);
        f = failure_of([&] { operation.run(faulty); });
        failed = fault.failed();
        if (n == 0) requests = fault.seen();
      }
      if (n == 0) {
        CHECK(f.what == "no exception");
        CHECK(requests > 1);
        return;
      }
      REQUIRE_FALSE(failed.empty());  // the operation made request n
      INFO("failed request: " << failed << "; error: " << f.what);
      CHECK(f.code == errc::store_io_failed);
      CHECK_THAT(f.what, Catch::Contains("S3 "));
      const bool delete_records_stored = operation.name == "delete" && failed.starts_with("DELETE ");
      if (!delete_records_stored) {
        CHECK(kind.snapshot() == before);
        for (auto& [user, journal] : journals) {
          INFO("journal of " << user);
          CHECK(journal.take().empty());
        }
        return;
      }
      // The DELETE events are out; the versions go when the delete runs again.
      CHECK(names_of(journals.at("alice").take()) == std::vector<std::string>{"DELETE", "DELETE"});
      CHECK(names_of(journals.at("bob").take()) == std::vector<std::string>{"DELETE"});
      CHECK(journals.at("carol").take().empty());
      alice.delete_files(chosen("docs/", true));
      CHECK(alice.list_files("", true).empty());
      CHECK(kind.open("bob").list_files("", true).empty());
      for (const auto& [key, bytes] : kind.snapshot()) CHECK(key.starts_with("journals/"));
    };
    run(0);
    for (const auto n : sweep.requests(requests, op)) run(n);
  }
  CHECK(sweep.counted() >= 30);  // 30 requests in all, as the operations are written now
}

TEST_CASE(
    "S3 diagnostics: two reads failing at once, at different requests for different reasons, each get their "
    "own account") {
  s3_kind kind;
  auto alice = kind.open("alice");
  const auto first = alice.create_file("docs/first.txt", "1");
  const auto second = alice.create_file("docs/second.txt", "2");
  s3::s3_store store(kind.io.get_executor(), kind.config, "alice", one_attempt());
  fail_named faults;
  faults.fail("GET", "first.txt", CURLE_COULDNT_RESOLVE_HOST).fail("GET", "second.txt", CURLE_OPERATION_TIMEDOUT);
  diagnostics first_account, second_account;
  std::vector<std::optional<std::error_code>> codes(2);
  // Reads run at once: both are in flight before either completes.
  store.async_read_file(first, first_account, [&](std::error_code ec, std::string) { codes[0] = ec; });
  store.async_read_file(second, second_account, [&](std::error_code ec, std::string) { codes[1] = ec; });
  REQUIRE(run_until(kind.io, [&] { return codes[0] && codes[1]; }));
  CHECK(faults.fired() == 2);
  CHECK(*codes[0] == errc::store_io_failed);
  CHECK(*codes[1] == errc::store_io_failed);
  INFO("first: " << first_account.message() << "; second: " << second_account.message());
  CHECK_THAT(first_account.message(),
             Catch::Contains("GET ") && Catch::Contains("first.txt") && !Catch::Contains("second.txt"));
  CHECK_THAT(second_account.message(),
             Catch::Contains("GET ") && Catch::Contains("second.txt") && !Catch::Contains("first.txt"));
  CHECK(first_account.message() != second_account.message());
  CHECK((store.last_error() == first_account.message() || store.last_error() == second_account.message()));
}

TEST_CASE("S3 cancellation: a create cancelled while its journal record waits to be retried completes with "
          "operation_aborted and is put back whole, and a create queued behind it sends no request") {
  s3_kind kind;
  auto alice = kind.open("alice");
  alice.create_file("docs/a.txt", "a");
  auto journal = kind.journal(kind.open("alice"));
  journal.take();
  const auto before = kind.snapshot();

  s3::s3_store_options slow_retries;  // a retry waits a minute: only the cancellation ends it in time
  slow_retries.client.retry = {std::chrono::minutes(1), std::chrono::minutes(1), 1.0, 0.0};
  slow_retries.client.retry_budget = std::chrono::milliseconds(0);
  s3::s3_store store(kind.io.get_executor(), kind.config, "alice", slow_retries);
  fail_named faults;
  faults.fail("PUT", "journals/", CURLE_COULDNT_CONNECT);
  asio::cancellation_signal cancel_first, cancel_second;
  diagnostics account;
  std::optional<std::error_code> first, second;
  store.async_create_file("docs/b.txt", "b", account,
                          asio::bind_cancellation_slot(cancel_first.slot(),
                                                       [&](std::error_code ec, versioned_path) { first = ec; }));
  store.async_create_file("docs/c.txt", "c",
                          asio::bind_cancellation_slot(cancel_second.slot(),
                                                       [&](std::error_code ec, versioned_path) { second = ec; }));
  // The version object is stored; its journal record's first attempt failed.
  REQUIRE(run_until(kind.io, [&] { return faults.fired() == 1; }));
  cancel_second.emit(asio::cancellation_type::terminal);
  cancel_first.emit(asio::cancellation_type::terminal);
  REQUIRE(run_until(kind.io, [&] { return first && second; }));
  CHECK(*first == asio::error::operation_aborted);
  CHECK(*second == asio::error::operation_aborted);
  CHECK_THAT(account.message(), Catch::Contains("cancelled"));
  CHECK(faults.fired() == 1);  // no second attempt, and the queued create sent nothing
  CHECK(kind.snapshot() == before);
  CHECK(journal.take().empty());

  // The store goes on working.
  faults.clear();
  std::optional<std::error_code> later;
  store.async_create_file("docs/d.txt", "d", [&](std::error_code ec, versioned_path) { later = ec; });
  REQUIRE(run_until(kind.io, [&] { return later.has_value(); }));
  CHECK_FALSE(*later);
  CHECK(names_of(journal.take()) == std::vector<std::string>{"CREATE"});
}

}  // namespace fault_test
