// The child of large_file_memory_test: stores the file SOURCE through an
// s3_store on the test server (a new version of "big/file.bin", streamed,
// in parts past the default threshold), reads that version back into
// DESTINATION, deletes it (1 GiB left on the server made the fixture's
// stop, which removes the server's data, outlast its timeout on a slow CI
// disk; on a user's own bucket it would stay for good), and prints what it
// did and its peak resident memory:
//
//   version <versioned path>
//   bytes <size read back>
//   deleted <versions the delete removed>
//   vm_hwm_kib <VmHWM of /proc/self/status>
//
// Exit 0, or 1 with the failure on standard error.
#include <storewatch/store/s3_store.hpp>

#include "support/s3_server.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>

namespace {

/// The VmHWM line of /proc/self/status ("VmHWM:   12345 kB"): the peak
/// resident set, in KiB.
std::string peak_resident_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::to_string(std::stoull(line.substr(6)));
  }
  throw std::runtime_error("no VmHWM in /proc/self/status");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SOURCE DESTINATION\n", argv[0]);
    return 2;
  }
  try {
    asio::io_context io;
    storewatch::s3::s3_store store(io.get_executor(), storewatch::test_support::test_server_config(), "alice222");
    std::optional<std::error_code> created;
    storewatch::versioned_path version;
    store.async_create_file_from("big/file.bin", argv[1], [&](std::error_code ec, storewatch::versioned_path v) {
      created = ec;
      version = std::move(v);
    });
    io.run();
    if (!created || *created) throw std::runtime_error("create: " + store.last_error());
    std::optional<std::error_code> read;
    std::uint64_t bytes = 0;
    store.async_read_file_to(version, argv[2], [&](std::error_code ec, std::uint64_t size) {
      read = ec;
      bytes = size;
    });
    io.restart();
    io.run();
    if (!read || *read) throw std::runtime_error("read: " + store.last_error());
    // This version alone: its path, not recursive, created at its time.
    const storewatch::selection just_it{version.path, false, version.created_at(), version.created_at()};
    std::optional<std::error_code> deleted;
    std::size_t removed = 0;
    store.async_delete_files(just_it, [&](std::error_code ec, storewatch::rules::versions gone) {
      deleted = ec;
      removed = gone.size();
    });
    io.restart();
    io.run();
    if (!deleted || *deleted) throw std::runtime_error("delete: " + store.last_error());
    std::printf("version %s\nbytes %llu\ndeleted %zu\nvm_hwm_kib %s\n", version.to_string().c_str(),
                static_cast<unsigned long long>(bytes), removed, peak_resident_kib().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "large_file_process: %s\n", e.what());
    return 1;
  }
}
