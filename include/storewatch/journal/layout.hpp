/// \file
/// A journal's folder on disk: segment and writer names, listing them, the
/// epoch. Shared by the writer (journal/writer.hpp) and the reader
/// (journal/reader.hpp).
//
//   <journal dir>/epoch                          random id, made once; a new id means a new journal
//   <journal dir>/w<n>/lock                      a writer slot: held (flock) by the writer using it
//   <journal dir>/w<n>/00000000000000000000.log  the slot's append-only segments of record lines,
//   <journal dir>/w<n>/00000000000067108913.log  each named by the slot's byte offset where it starts
//
// A writer (a store object) takes the lowest slot nobody holds and appends
// where its last holder stopped, so writers need no locks among themselves,
// the number of slots is the peak number of writers alive at once, and each
// slot's bytes are one ordered sequence. A writer killed mid-record leaves a
// torn tail only in its own slot (never delivered: each record carries a
// checksum), which the slot's next holder voids. Records of an operation
// that failed are voided too (overwritten with a line of dashes that
// readers skip), never cut off under a reader. Cursors hold a byte offset
// per slot (across its segments), so writers' clocks play no part in what
// is read next, and a removed segment is a gap only if the cursor pointed
// before its end.
#pragma once

#include <storewatch/detail/files.hpp>
#include <storewatch/detail/gap.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/journal/format.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace storewatch::detail {

inline constexpr std::string_view journal_what = "journal";

/// The file name of the segment that starts at byte `base` of its writer.
inline std::string segment_name(std::uint64_t base) {
  std::string digits = std::to_string(base);
  return std::string(20 - std::min<std::size_t>(20, digits.size()), '0') + digits + ".log";
}

inline std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (!name.ends_with(".log")) return std::nullopt;
  name.remove_suffix(4);
  std::uint64_t base = 0;
  if (name.size() != 20 || !parse_decimal(name, base)) return std::nullopt;
  return base;
}

/// The entries of a journal folder, or none when it does not exist; throws
/// `store_io_failed` when it cannot be listed.
inline std::vector<sys::entry> list_journal_folder(const std::filesystem::path& folder) {
  std::error_code ec;
  auto entries = sys::list(folder, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw file_error(errc::store_io_failed, journal_what, folder, "list", ec.value());
  }
  return entries;
}

/// Segment bases of one writer, ascending.
inline std::vector<std::uint64_t> list_segments(const std::filesystem::path& writer_dir) {
  std::vector<std::uint64_t> segments;
  for (const auto& entry : list_journal_folder(writer_dir)) {
    if (auto number = parse_segment_name(entry.name)) segments.push_back(*number);
  }
  std::sort(segments.begin(), segments.end());
  return segments;
}

/// Writer folders of a journal, by name.
inline std::vector<std::string> list_writers(const std::filesystem::path& journal_dir) {
  std::vector<std::string> writers;
  for (auto& entry : list_journal_folder(journal_dir)) {
    if (entry.directory && is_writer_name(entry.name)) writers.push_back(std::move(entry.name));
  }
  std::sort(writers.begin(), writers.end());
  return writers;
}

inline std::string random_hex(std::size_t digits) {
  static constexpr char hex[] = "0123456789abcdef";
  std::random_device random;
  std::string out;
  while (out.size() < digits) {
    auto bits = random();
    for (int i = 0; i < 8 && out.size() < digits; ++i, bits >>= 4) out += hex[bits & 0xF];
  }
  return out;
}

/// A writer name for a new store object: "<host>-<pid>-<8 random hex
/// digits>", the host name's characters other than A-Z a-z 0-9 made '_'.
inline std::string make_writer_name() {
  char host[64] = {};
  ::gethostname(host, sizeof host - 1);
  std::string name;
  for (const char* c = host; *c; ++c) {
    name += (std::isalnum(static_cast<unsigned char>(*c)) != 0) ? *c : '_';
  }
  if (name.empty()) name = "host";
  return name + "-" + std::to_string(::getpid()) + "-" + random_hex(8);
}

/// What `read_epoch` puts before the hash of a corrupt epoch file's bytes.
inline constexpr std::string_view stand_in_epoch_prefix = "corrupt-";

/// True for an epoch `read_epoch` made up for a corrupt epoch file.
inline bool is_stand_in_epoch(std::string_view epoch) noexcept { return epoch.starts_with(stand_in_epoch_prefix); }

/// The journal's epoch, or nullopt while it has none (no writer yet). An
/// epoch file that does not hold an epoch (a damaged or edited file) reads
/// as a stand-in named after its bytes, "corrupt-<16 hex digits>", the same
/// on every read while the file stays as it is; `problem` (when given) is
/// then set to a message naming the file.
inline std::optional<std::string> read_epoch(const std::filesystem::path& journal_dir,
                                             std::string* problem = nullptr) {
  const auto file = journal_dir / "epoch";
  auto text = read_whole_file(file, errc::store_io_failed, journal_what);
  if (!text) return text;
  if (!text->empty() && text->back() == '\n') text->pop_back();
  if (is_writer_name(*text) && text->size() <= 64) return text;
  auto stand_in = std::string(stand_in_epoch_prefix) + stable_hash_hex(*text);
  if (problem) {
    *problem = "journal epoch file " + file.string() + " is corrupt (it holds " +
               quote(text->substr(0, std::min<std::size_t>(text->size(), 40))) +
               (text->size() > 40 ? "..." : "") + ", not an epoch id); reading the journal as epoch " + stand_in;
  }
  return stand_in;
}

/// Makes the journal folder and its epoch if they do not exist; safe when
/// several processes race (the epoch is linked into place, never replaced).
inline void ensure_journal(const std::filesystem::path& journal_dir) {
  make_directories(journal_dir, errc::store_io_failed, journal_what);
  const auto epoch = journal_dir / "epoch";
  struct stat info {};
  if (::stat(epoch.c_str(), &info) == 0) return;
  const auto temporary = write_temporary(epoch, random_hex(16) + "\n", errc::store_io_failed, journal_what,
                                         ".storewatch-" + random_hex(8));
  const int linked = sys::link(temporary.c_str(), epoch.c_str());
  const int error_number = errno;
  sys::unlink(temporary.c_str());
  if (linked != 0 && error_number != EEXIST) {
    throw file_error(errc::store_io_failed, journal_what, epoch, "link", error_number);
  }
  fsync_directory(journal_dir, errc::store_io_failed, journal_what);
}

}  // namespace storewatch::detail
