// Large files for the streaming tests: made from a seeded generator a block
// at a time (so a 1 GiB file costs no memory) and compared by SHA-256.
#pragma once

#include <storewatch/s3/client.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace storewatch::s3::test {

/// Writes `size` bytes to `file`, the same for the same `seed` (xorshift64,
/// so no block repeats and a misplaced part changes the hash).
inline void write_pattern_file(const std::filesystem::path& file, std::uint64_t size, std::uint64_t seed) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  std::vector<std::uint64_t> block(1 << 17);  // 1 MiB
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::uint64_t left = size; left > 0;) {
    for (auto& word : block) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      word = state;
    }
    const auto n = std::min<std::uint64_t>(left, block.size() * sizeof(std::uint64_t));
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    left -= n;
  }
  if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
}

/// The hex SHA-256 of `file`'s bytes, read a block at a time.
inline std::string file_sha256(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + file.string());
  const storewatch::detail::unique_fd owned(fd);
  return s3::detail::sha256_file_hex(fd, 0, std::filesystem::file_size(file), file);
}

}  // namespace storewatch::s3::test
