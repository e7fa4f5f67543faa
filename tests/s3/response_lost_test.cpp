// Every S3 store operation with the response to each of its requests lost
// after the server executed it (s3::detail::request_fault_injector::after),
// against s3rver: the retry must be harmless. For each operation the
// requests of a clean run are counted, then the operation runs again on a
// fresh store once per request n, losing the response to request n (every
// k-th request, the first and the last with STOREWATCH_FAULT_STRIDE k:
// common/sizing.hpp). It must end as the clean run did (the same files, the
// same records), with no version that no record announced, every announced
// version present, and every record read exactly once. All of it on s3rver,
// which ignores If-None-Match, and again as on a server that honours it (the
// injector answers 412 to a PUT of a version it saw stored); and once more
// with one attempt per request, where the lost response fails the operation,
// which must then be put back as after any failure. Also: how the first
// create finds out whether the server honours If-None-Match, on s3rver (it
// does not) and on a simulated server that does.
#include "common/fixture.hpp"
#include "common/sizing.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"

#include <storewatch/store/s3_store.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace response_lost_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;

namespace {

/// Loses the response to the attempt `lose_at` (counting every attempt made
/// while installed, from 1; 0: none) after the server executed it; with
/// `honour_if_none_match`, answers 412 to a PUT of a version it saw stored,
/// as a server honouring `If-None-Match: *` would (s3rver ignores it).
class response_faults final : public s3::detail::request_fault_injector {
 public:
  response_faults() { s3::detail::request_faults = this; }
  response_faults(const response_faults&) = delete;
  response_faults& operator=(const response_faults&) = delete;
  ~response_faults() override { s3::detail::request_faults = nullptr; }

  std::size_t lose_at = 0;
  bool honour_if_none_match = false;

  std::optional<outcome> before(std::string_view method, std::string_view name) override {
    ++attempts_;
    if (honour_if_none_match && method == "PUT" && stored_.count(std::string(name)) != 0) {
      // The simulated server refused it; that answer may be lost too.
      if (attempts_ == lose_at && lost_.empty()) return lose(method, name);
      outcome refused;
      refused.response.status = 412;
      refused.response.body = "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you "
                              "specified did not hold</Message></Error>";
      return refused;
    }
    return std::nullopt;
  }

  std::optional<outcome> after(std::string_view method, std::string_view name,
                               const s3::http_response& response) override {
    if (name.starts_with("versions/") && response.status / 100 == 2) {
      if (method == "PUT") stored_.insert(std::string(name));
      if (method == "DELETE") stored_.erase(std::string(name));
    }
    if (attempts_ != lose_at || !lost_.empty()) return std::nullopt;
    return lose(method, name);
  }

  /// The attempts made so far.
  std::size_t attempts() const { return attempts_; }
  /// The request whose response was lost ("PUT versions/..."), or empty.
  const std::string& lost() const { return lost_; }

 private:
  outcome lose(std::string_view method, std::string_view name) {
    lost_ = std::string(method) + ' ' + std::string(name);
    return outcome{s3::make_http_error(CURLE_RECV_ERROR), {}};
  }

  std::size_t attempts_ = 0;
  std::string lost_;
  std::set<std::string> stored_;
};

/// Quick retries, so that the suite stays short; or (`retry` false) one
/// attempt per request, so that a lost response fails the operation.
s3::s3_store_options quick_retries(bool retry = true) {
  s3::s3_store_options options;
  options.client.retry = {10ms, 100ms, 2.0, 0.2};
  options.client.max_attempts = retry ? 8 : 1;
  return options;
}

/// How a run is made: on s3rver or as on a server that honours
/// If-None-Match; with retries or one attempt per request.
struct run_mode {
  bool honour = false;
  bool retry = true;
};

const std::vector<std::string> users{"alice", "bob", "carol"};

/// What an operation left, without the timestamps that differ between runs.
struct outcome_shape {
  std::string result;                                    // the operation's result
  std::map<std::string, std::vector<std::string>> files;  // user -> "path by owner" of list_files
  std::map<std::string, std::vector<std::string>> news;   // user -> names of the records after the setup
  friend bool operator==(const outcome_shape&, const outcome_shape&) = default;
};

std::string shape_of(const versioned_path& v) { return v.path + " by " + v.user; }

std::string shape_of(const std::vector<versioned_path>& versions) {
  std::string text;
  for (const auto& v : versions) text += shape_of(v) + ';';
  return text;
}

struct operation {
  std::string name;
  std::function<std::string(test_store<s3::s3_store>&)> run;
};

/// One run of `op` on a fresh store in `mode`, losing the response to
/// attempt `lose_at` (0: none). Checks what must hold whatever was lost;
/// returns the shape and sets `attempts` to the requests the operation made.
outcome_shape run_once(const operation& op, run_mode mode, std::size_t lose_at, std::size_t& attempts,
                       std::string& lost) {
  s3_kind kind;
  {
    auto setup = kind.open("alice");
    setup.create_file("docs/a.txt", "a");
    setup.create_file("docs/b.txt", "b");
    setup.share_files(chosen("docs/a.txt", false), {"bob"}, true);
  }
  // Readers from the start: each sees the setup's records now and the
  // operation's later, and must see every record once.
  std::map<std::string, journal_reader> readers;
  std::map<std::string, std::vector<event>> seen;
  for (const auto& user : users) {
    readers.emplace(user, kind.journal(kind.open(user)));
    seen[user] = readers.at(user).take();
  }

  const auto before = mode.retry ? decltype(kind.snapshot()){} : kind.snapshot();

  test_store<s3::s3_store> faulty(kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(), kind.config,
                                                                           "alice", quick_retries(mode.retry)));
  outcome_shape shape;
  failure f;
  {
    response_faults faults;
    faults.lose_at = lose_at;
    faults.honour_if_none_match = mode.honour;
    f = failure_of([&] { shape.result = op.run(faulty); });
    attempts = faults.attempts();
    lost = faults.lost();
  }
  INFO("lost: " << lost << "; error: " << f.what);
  if (mode.retry || lost.empty()) {
    // A lost response is retried like any lost connection: the operation succeeds.
    CHECK(f.what == "no exception");
  } else {
    // With no retry the operation fails, naming the request, and is put
    // back; except a delete whose DELETE records are out (running it again
    // finishes it) and a compact, which puts nothing back (its floor and
    // removals stay).
    CHECK(f.code == errc::store_io_failed);
    CHECK_THAT(f.what, Catch::Contains("S3 "));
    if (op.name == "delete" && lost.starts_with("DELETE ")) {
      faulty.delete_files(chosen("docs/", true));
    } else if (op.name != "compact") {
      CHECK(kind.snapshot() == before);
    }
  }

  for (const auto& user : users) {
    INFO("user " << user);
    auto later = readers.at(user).take();
    for (const auto& e : later) shape.news[user].push_back(e.name);
    auto& all = seen.at(user);
    all.insert(all.end(), later.begin(), later.end());
    // Every record once.
    std::set<std::string> ids;
    for (const auto& e : all) CHECK(ids.insert(e.id).second);
    for (const auto& v : kind.open(user).list_files("", true)) shape.files[user].push_back(shape_of(v));
  }

  // No orphan, nothing announced missing: alice's versions are exactly those
  // her CREATE records announced and no DELETE record took back.
  std::set<std::string> announced;
  for (const auto& e : seen.at("alice")) {
    if (e.name == "CREATE") announced.insert(e.data);
    if (e.name == "DELETE") announced.erase(e.data);
  }
  std::set<std::string> stored;
  for (const auto& [key, bytes] : kind.snapshot()) {
    const std::string folder = "versions/alice/";
    if (key.starts_with(folder)) stored.insert(key.substr(folder.size()));
  }
  CHECK(stored == announced);
  return shape;
}

}  // namespace

TEST_CASE("S3 response lost: every operation, with the response to each of its requests lost after the server "
          "executed it, ends as a clean run does, with no orphan version and every record read once") {
  const std::vector<operation> operations{
      {"create", [](auto& alice) { return shape_of(alice.create_file("docs/c.txt", "new")); }},
      {"share",
       [](auto& alice) { return shape_of(alice.share_files(chosen("docs/", true), {"bob", "carol"}, true)); }},
      {"unshare",
       [](auto& alice) { return shape_of(alice.share_files(chosen("docs/", true), {"bob", "carol"}, false)); }},
      {"publish",
       [](auto& alice) { return std::to_string(alice.publish_event("note", "x", {"alice", "bob", "carol"}).size()); }},
      {"delete", [](auto& alice) { return shape_of(alice.delete_files(chosen("docs/", true))); }},
      {"compact", [](auto& alice) { return std::to_string(alice.compact(0s)); }},
  };
  fault_sweep sweep("S3 response lost");
  std::size_t rotation = 0;  // each mode sweeps other requests of an operation (fault_sweep)
  for (const run_mode mode : {run_mode{false, true}, run_mode{true, true}, run_mode{false, false}}) {
    for (const auto& op : operations) {
      INFO("operation " << op.name << (mode.honour ? ", If-None-Match honoured" : ", on s3rver")
                        << (mode.retry ? ", with retries" : ", one attempt per request"));
      std::size_t requests = 0;
      std::string lost;
      const auto clean = run_once(op, mode, 0, requests, lost);
      CHECK(lost.empty());
      CHECK(requests >= 2);
      for (const auto n : sweep.requests(requests, rotation)) {
        INFO("response " << n << " of " << requests << " lost");
        std::size_t attempts = 0;
        const auto shape = run_once(op, mode, n, attempts, lost);
        CHECK_FALSE(lost.empty());
        if (mode.retry) {
          CHECK(attempts >= requests + 1);  // the retry
          CHECK(shape == clean);
        }
      }
    }
    ++rotation;
  }
  // 38 requests on s3rver, 39 where a create's probe meets 412 and HEADs, as written now
  CHECK(sweep.counted() >= 100);
}

TEST_CASE("S3 If-None-Match: the first create finds out that s3rver ignores it, with one request more") {
  s3_kind kind;
  test_store<s3::s3_store> alice(kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(), kind.config,
                                                                          "alice", quick_retries()));
  CHECK_FALSE(alice.get().conditional_writes().has_value());
  const auto first = alice.create_file("docs/a.txt", "a");
  REQUIRE(alice.get().conditional_writes().has_value());
  CHECK_FALSE(*alice.get().conditional_writes());
  CHECK(alice.get().client().counts().put == 3);  // the version, the probe, the record
  CHECK(alice.get().client().counts().head == 0);
  alice.create_file("docs/b.txt", "b");
  CHECK(alice.get().client().counts().put == 5);  // found out once
  CHECK(alice.read_file(first) == "a");
  CHECK(alice.list_files("", true).size() == 2);
}

TEST_CASE("S3 If-None-Match: on a server that honours it, a create whose first PUT's response was lost meets 412, "
          "finds its own write mark and succeeds with one version") {
  for (const bool lose_first : {false, true}) {
    INFO("first response lost: " << lose_first);
    s3_kind kind;
    test_store<s3::s3_store> alice(kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(), kind.config,
                                                                            "alice", quick_retries()));
    auto journal = kind.journal(kind.open("alice"));
    versioned_path created;
    {
      response_faults faults;
      faults.honour_if_none_match = true;
      faults.lose_at = lose_first ? 1 : 0;
      created = alice.create_file("docs/a.txt", "a");
      CHECK(faults.lost() == (lose_first ? "PUT versions/alice/" + created.to_string() : std::string()));
    }
    REQUIRE(alice.get().conditional_writes().has_value());
    CHECK(*alice.get().conditional_writes());
    const auto counts = alice.get().client().counts();
    // The version (and its retry: 412, then HEAD finds the mark), the probe
    // (412, then HEAD finds another mark), the record.
    CHECK(counts.put == (lose_first ? 4u : 3u));
    CHECK(counts.head == (lose_first ? 2u : 1u));
    CHECK(texts_of(alice.list_files("", true)) == std::vector<std::string>{created.to_string()});
    const auto records = journal.take();
    CHECK(names_of(records) == std::vector<std::string>{"CREATE"});
    CHECK(data_of(records) == std::vector<std::string>{created.to_string()});
  }
}

}  // namespace response_lost_test
