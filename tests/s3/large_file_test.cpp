// Large files against the S3 server: put_file and get_to_file stream the
// body from and to files (a multipart upload above the threshold, here a low
// one), retry a failed part on its own, abort the upload when a part or the
// completion fails or the operation is cancelled, and a streamed transfer has
// no total timeout; the S3 store's create_file_from and read_file_to on top.
// (The 1 GiB memory bound: large_file_memory_test.cpp.) s3rver 4.0.4 has no
// AbortMultipartUpload (it answers 405) and no ListMultipartUploads, so the
// tests count the abort requests sent rather than list what is left.
#include "common/fixture.hpp"
#include "common/store.hpp"
#include "common/store_kinds.hpp"
#include "s3/common/large_file.hpp"

#include <storewatch/s3/client.hpp>
#include <storewatch/store/s3_store.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace large_file_test {

using namespace storewatch;
using namespace storewatch::test;
using s3::test::file_sha256;
using s3::test::write_pattern_file;

namespace {

constexpr std::uint64_t mib = 1ull << 20;

/// Counts each kind of request (the client's names: "PUT", "UploadPart",
/// "AbortMultipartUpload", ...) and fails the n-th of one kind with a
/// transport error, or calls a hook when it comes.
class request_log final : public s3::detail::request_fault_injector {
 public:
  request_log() { s3::detail::request_faults = this; }
  request_log(const request_log&) = delete;
  request_log& operator=(const request_log&) = delete;
  ~request_log() override { s3::detail::request_faults = nullptr; }

  /// The `n`-th request of kind `method` fails with `code`.
  request_log& fail(std::string method, std::size_t n, CURLcode code) {
    failures_[{std::move(method), n}] = code;
    return *this;
  }
  /// `hook()` runs when the `n`-th request of kind `method` is about to be sent.
  request_log& on(std::string method, std::size_t n, std::function<void()> hook) {
    hooks_[{std::move(method), n}] = std::move(hook);
    return *this;
  }

  std::optional<outcome> before(std::string_view method, std::string_view) override {
    const auto key = std::make_pair(std::string(method), ++seen_[std::string(method)]);
    if (const auto hook = hooks_.find(key); hook != hooks_.end()) hook->second();
    if (const auto failure = failures_.find(key); failure != failures_.end()) {
      return outcome{s3::make_http_error(failure->second), {}};
    }
    return std::nullopt;
  }

  /// How many requests of kind `method` were made (attempts each).
  std::size_t count(const std::string& method) const {
    const auto it = seen_.find(method);
    return it == seen_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, std::size_t> seen_;
  std::map<std::pair<std::string, std::size_t>, CURLcode> failures_;
  std::map<std::pair<std::string, std::size_t>, std::function<void()>> hooks_;
};

/// Options for a multipart upload of 5 MiB parts above 4 MiB, quick retries.
s3::client_options multipart_options() {
  s3::client_options options;
  options.multipart_threshold = 4 * mib;
  options.part_size = 5 * mib;
  options.retry = backoff_policy{std::chrono::milliseconds(10), std::chrono::milliseconds(100), 2.0, 0.2};
  return options;
}

template <class Task>
auto run(asio::io_context& io, Task task) {
  return run_coroutine(io, std::move(task), std::chrono::seconds(120));
}

/// A client with `multipart_options()`, a `size`-byte source file made from
/// `seed`, and a request log.
struct multipart_upload {
  multipart_upload(std::uint64_t size, std::uint64_t seed) { write_pattern_file(source, size, seed); }

  asio::io_context io;
  temp_dir files;
  std::filesystem::path source = files.path() / "source.bin";
  s3::client client{io.get_executor(), s3::test::test_server_config(), multipart_options()};
  request_log log;
};

}  // namespace

TEST_CASE("large files: a multipart upload of 5 parts and a streamed download give the same bytes back") {
  multipart_upload upload(20 * mib + 1234, 1);
  auto& [io, files, source, client, log] = upload;
  const auto copy = files.path() / "copy.bin";
  CHECK(run(io, client.put_file("big.bin", source)));
  CHECK(log.count("CreateMultipartUpload") == 1);
  CHECK(log.count("UploadPart") == 5);
  CHECK(log.count("CompleteMultipartUpload") == 1);
  CHECK(log.count("AbortMultipartUpload") == 0);
  CHECK(client.counts().put == 5);
  CHECK(client.counts().multipart == 2);
  CHECK(run(io, client.get_to_file("big.bin", copy)) == std::optional<std::uint64_t>(20 * mib + 1234));
  CHECK(file_sha256(copy) == file_sha256(source));
  CHECK_FALSE(run(io, client.get_to_file("never/written", files.path() / "none.bin")));
  CHECK_FALSE(std::filesystem::exists(files.path() / "none.bin"));
  CHECK_FALSE(std::filesystem::exists(files.path() / "none.bin.storewatch-part"));
  CHECK(client.counts().failures == 0);
}

TEST_CASE("large files: a streamed PUT and GET have no total timeout, where a request from memory times out") {
  asio::io_context io;
  temp_dir files;
  const auto source = files.path() / "source.bin";
  write_pattern_file(source, 12 * mib, 2);
  s3::client_options options;
  options.http.request_timeout = std::chrono::milliseconds(1);
  options.retry_budget = std::chrono::milliseconds(1);
  options.max_attempts = 1;
  s3::client client(io.get_executor(), s3::test::test_server_config(), options);
  // Under the 16 MiB threshold: one PUT, streamed, bounded by the low-speed limit only.
  CHECK(run(io, client.put_file("twelve.bin", source)));
  CHECK(client.counts().multipart == 0);
  CHECK(run(io, client.get_to_file("twelve.bin", files.path() / "copy.bin")) == std::optional<std::uint64_t>(12 * mib));
  CHECK(file_sha256(files.path() / "copy.bin") == file_sha256(source));
  // The same size from memory has 1 ms for the whole request.
  const auto failure = failure_of([&] { run(io, client.put("from-memory.bin", std::string(12 * mib, 'm'))); });
  CHECK(failure.code == errc::store_io_failed);
  CHECK_THAT(failure.what, Catch::Contains("imeout") || Catch::Contains("timed out"));
}

TEST_CASE("large files: a part that fails is sent again on its own") {
  multipart_upload upload(14 * mib, 3);
  auto& [io, files, source, client, log] = upload;
  log.fail("UploadPart", 2, CURLE_SEND_ERROR);
  CHECK(run(io, client.put_file("retried.bin", source)));
  CHECK(log.count("UploadPart") == 4);  // parts 1, 2, 2 again, 3
  CHECK(log.count("CreateMultipartUpload") == 1);
  CHECK(log.count("AbortMultipartUpload") == 0);
  CHECK(client.counts().retries == 1);
  const auto size = run(io, client.get_to_file("retried.bin", files.path() / "copy.bin"));
  CHECK(size == std::optional<std::uint64_t>(14 * mib));
  CHECK(file_sha256(files.path() / "copy.bin") == file_sha256(source));
}

TEST_CASE("large files: a part or the completion failing for good aborts the upload, and no object appears") {
  struct step {
    std::string method;
    std::size_t n;
  };
  for (const auto& failing : {step{"UploadPart", 1}, step{"UploadPart", 3}, step{"CompleteMultipartUpload", 1}}) {
    INFO(failing.method << " #" << failing.n << " failing");
    multipart_upload upload(14 * mib, 4);
    auto& [io, files, source, client, log] = upload;
    log.fail(failing.method, failing.n, CURLE_COULDNT_RESOLVE_HOST);  // not transient: no retry
    const auto failure = failure_of([&] { run(io, client.put_file("aborted.bin", source)); });
    CHECK(failure.code == errc::store_io_failed);
    CHECK_THAT(failure.what, Catch::Contains(failing.method) && Catch::Contains("aborted.bin"));
    CHECK(log.count("AbortMultipartUpload") == 1);
    CHECK(log.count("CompleteMultipartUpload") == (failing.method == "CompleteMultipartUpload" ? 1 : 0));
    CHECK(log.count("UploadPart") == (failing.method == "UploadPart" ? failing.n : 3));
    CHECK_FALSE(run(io, client.exists("aborted.bin")));
  }
}

TEST_CASE("large files: cancelling a multipart upload aborts it") {
  multipart_upload upload(14 * mib, 5);
  auto& [io, files, source, client, log] = upload;
  asio::cancellation_signal cancel;
  // Once part 2 is on its way.
  log.on("UploadPart", 2, [&] { asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); }); });
  std::optional<std::exception_ptr> outcome;
  asio::co_spawn(io, client.put_file("cancelled.bin", source),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, bool) { outcome = e; }));
  REQUIRE(run_until(io, [&] { return outcome.has_value(); }, std::chrono::seconds(120)));
  const auto failure = failure_of([&] { std::rethrow_exception(*outcome); });
  CHECK(failure.code == asio::error::operation_aborted);
  CHECK(log.count("AbortMultipartUpload") == 1);
  CHECK(log.count("CompleteMultipartUpload") == 0);
  CHECK_FALSE(run(io, client.exists("cancelled.bin")));
}

TEST_CASE("large files: the S3 store's create_file_from goes up in parts, and a failed part leaves no version") {
  s3_kind kind;
  temp_dir files;
  s3::s3_store_options options;
  options.client = multipart_options();
  test_store<s3::s3_store> alice(kind.io, std::make_unique<s3::s3_store>(kind.io.get_executor(), kind.config,
                                                                         "alice222", options));
  auto journal = kind.journal(alice);
  const auto source = files.path() / "source.bin";
  write_pattern_file(source, 11 * mib, 6);
  request_log log;
  const auto v = alice.create_file_from("docs/big.bin", source);
  CHECK(log.count("UploadPart") == 3);
  CHECK(alice.read_file_to(v, files.path() / "copy.bin") == 11 * mib);
  CHECK(file_sha256(files.path() / "copy.bin") == file_sha256(source));
  REQUIRE(journal.take().size() == 1);

  log.fail("UploadPart", 5, CURLE_COULDNT_RESOLVE_HOST);  // the second file's second part
  const auto failure = failure_of([&] { alice.create_file_from("docs/other.bin", source); });
  CHECK(failure.code == errc::store_io_failed);
  CHECK(log.count("AbortMultipartUpload") == 1);
  CHECK(texts_of(alice.list_files("docs", true)) == std::vector<std::string>{text(v)});
  CHECK(journal.take().empty());
}

}  // namespace large_file_test
