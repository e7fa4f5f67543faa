// Reading what a file or a child process wrote: whole, or as lines.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace storewatch::test_support {

/// The bytes of `file`; empty when it cannot be read (not made yet).
inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The complete lines of `text`, without their newlines: an unfinished
/// last line (still being written) is left out.
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  for (;;) {
    const auto newline = text.find('\n', at);
    if (newline == std::string::npos) break;
    lines.push_back(text.substr(at, newline - at));
    at = newline + 1;
  }
  return lines;
}

}  // namespace storewatch::test_support
