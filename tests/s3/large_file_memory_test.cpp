// The memory bound of large files: a child process (large_file_process.cpp)
// creates a 1 GiB version through the S3 store, reads it back into a file
// and deletes it; its peak resident memory stays under 64 MiB and the bytes
// read back are the bytes stored. Built only with STOREWATCH_TEST_S3_PROCESSES (the
// gcc configuration of scripts/test.sh): s3rver takes a minute or more over
// the 2 GiB it moves.
#include "s3/common/large_file.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#ifndef STOREWATCH_LARGE_FILE_PROCESS
#error "define STOREWATCH_LARGE_FILE_PROCESS (the path of large_file_process)"
#endif

using storewatch::s3::test::file_sha256;
using storewatch::s3::test::write_pattern_file;
using storewatch::test_support::temp_dir;

TEST_CASE("large files: a 1 GiB create and read through the S3 store stay under 64 MiB of resident memory") {
  constexpr std::uint64_t size = 1ull << 30;
  temp_dir files;
  // The source, the copy read back, and the server's copy (s3rver keeps it
  // on this disk too, with its parts while it assembles them).
  REQUIRE(std::filesystem::space(files.path()).available > 4 * size);
  const auto source = files.path() / "source.bin";
  const auto copy = files.path() / "copy.bin";
  write_pattern_file(source, size, 11);
  const auto expected = file_sha256(source);

  storewatch::test_support::spawn_options options;
  options.out = storewatch::test_support::child_stream::piped();
  options.err = storewatch::test_support::child_stream::piped();
  storewatch::test_support::process child({STOREWATCH_LARGE_FILE_PROCESS, source.string(), copy.string()}, options);
  REQUIRE(child.wait(std::chrono::minutes(14)));
  INFO("stdout: " << child.out() << "stderr: " << child.err());
  REQUIRE(child.succeeded());

  std::map<std::string, std::string> said;
  std::istringstream lines(child.out());
  for (std::string name, value; lines >> name >> value;) said[name] = value;
  CHECK(said["bytes"] == std::to_string(size));
  CHECK(said["deleted"] == "1");
  REQUIRE_FALSE(said["vm_hwm_kib"].empty());
  const auto peak_kib = std::stoull(said["vm_hwm_kib"]);
  CHECK(peak_kib < 64 * 1024);
  CHECK(std::filesystem::file_size(copy) == size);
  CHECK(file_sha256(copy) == expected);
}
