/// \file
/// The writer side of a journal: `journal_writer`, which the stores call to
/// append an operation's records, commit or void them, and `compact_journal`
/// (retention). The folder layout is in journal/layout.hpp.
#pragma once

#include <storewatch/detail/files.hpp>
#include <storewatch/error.hpp>
#include <storewatch/journal/format.hpp>
#include <storewatch/journal/layout.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storewatch::detail {

/// Appends records to users' journals as one writer. Not thread-safe.
///
/// In each journal the writer holds a *slot*: a folder `w<n>` whose lock
/// file it keeps locked while it lives (the kernel drops the lock when the
/// process dies). A new writer takes the lowest free slot and appends where
/// its last holder stopped, so a journal has as many writer folders as
/// writers were ever alive at once, not one per process that ever wrote,
/// and each slot's bytes stay one ordered sequence that readers' offsets
/// index.
///
/// What is appended since the last `sync()` is an operation's pending
/// records: `sync()` commits them, `take_back()` voids them again, so an
/// operation that fails leaves no record behind. Bytes once written are
/// never removed or reused for other records (a reader may have read up to
/// any record boundary among them): taking back overwrites them with a void
/// line of the same length.
class journal_writer {
 public:
  /// A writer of the journals under `journals_root`; `writer_name` (unique
  /// among processes) prefixes the ids it makes.
  journal_writer(std::filesystem::path journals_root, std::string writer_name, std::uint64_t segment_bytes)
      : root_(std::move(journals_root)), name_(std::move(writer_name)), segment_bytes_(segment_bytes) {}

  const std::string& name() const noexcept { return name_; }

  /// Appends `lines` (complete records) to `user`'s journal. Not durable
  /// until `sync()`, and taken back by `take_back()`.
  void append(const std::string& user, std::string_view lines) {
    auto& file = open_for(user);
    const auto written = pwrite_all(file.fd.get(), lines, file.size, file.path);
    file.size += written;  // what did reach the file is taken back with the rest
    if (written != lines.size()) throw file_error(errc::store_io_failed, journal_what, file.path, "write", errno);
  }

  /// Where the next `append` to `user`'s journal goes: the segment file and
  /// the byte offset in it (claiming the slot or starting the segment as
  /// that append would). Until `sync()`, appends to one journal follow one
  /// another there.
  std::pair<std::filesystem::path, std::uint64_t> position(const std::string& user) {
    const auto& file = open_for(user);
    return {file.path, file.size};
  }

  /// Makes everything appended so far durable, then rotates full segments.
  /// On failure the caller should `take_back()` what is pending.
  void sync() {
    for (auto& [user, file] : files_) {
      if (file.size != file.synced && sys::fsync(file.fd.get(), file.path.c_str()) != 0) {
        throw file_error(errc::store_io_failed, journal_what, file.path, "fsync", errno);
      }
    }
    for (auto& [user, file] : files_) {  // all durable: the operation is committed
      file.committed = file.synced = file.size;
      if (file.fd && file.size >= segment_bytes_) seal(file, file.size);
    }
  }

  /// Commits what was appended so far without making it durable yet:
  /// `take_back()` no longer voids it (readers may deliver it now), and the
  /// next `sync()` makes it durable. For a writer that serves its records
  /// before they are synced (see `skip_on_claim`).
  void keep() noexcept {
    for (auto& [user, file] : files_) file.committed = file.size;
  }

  /// When this writer claims a journal's slot, its first append starts a
  /// new segment `gap` bytes past the end of the slot's bytes, instead of
  /// appending where the last holder stopped. For a writer whose last
  /// holder may have had up to `gap` bytes of records delivered (`keep()`)
  /// that a crash of the machine then lost: offsets readers hold for them
  /// then point into the gap (read on from the next segment), never into
  /// new records. 0 (the default): no gap.
  void skip_on_claim(std::uint64_t gap) noexcept { claim_gap_ = gap; }

  /// Voids the records appended since the last `sync()`, so that no reader
  /// that starts later delivers them. Never throws. Returns "" when all was
  /// taken back, else what could not be (to add to the operation's error).
  std::string take_back() noexcept {
    std::string left;
    for (auto& [user, file] : files_) {
      if (!file.fd || file.size == file.committed) continue;
      try {
        if (auto problem = void_pending(file); !problem.empty()) left += "; " + problem;
      } catch (...) {  // std::bad_alloc building a message: the voiding itself was tried
      }
    }
    return left;
  }

  /// The next sequence number for an event id.
  std::uint64_t next_sequence() noexcept { return sequence_++; }

 private:
  struct open_file {
    unique_fd lock;               // the slot's lock, held while this writer has the slot
    std::filesystem::path folder;  // the slot
    unique_fd fd;
    std::filesystem::path path;
    std::uint64_t base = 0;       // where the open segment starts in this slot's bytes
    std::uint64_t size = 0;       // bytes in the open segment
    std::uint64_t committed = 0;  // of which committed (sync() or keep(): never taken back)
    std::uint64_t synced = 0;     // of which made durable by the last sync()
  };

  // Closes the open segment: the next append starts a new one at `end`
  // bytes past its start.
  static void seal(open_file& file, std::uint64_t end) noexcept {
    // Kept records not synced yet (`keep()`): best effort, as no later
    // sync() sees this segment.
    if (file.fd && file.synced < file.committed) sys::fsync(file.fd.get(), file.path.c_str());
    file.fd.reset();
    file.base += end;
    file.size = file.committed = file.synced = 0;
  }

  // Overwrites the pending bytes with a void line. If that fails, cuts
  // them off and seals the segment at their old end, so that offsets a
  // reader holds stay valid; if that fails too they stay, and the answer
  // says so.
  static std::string void_pending(open_file& file) {
    const auto pending = file.size - file.committed;
    const auto line = void_line(static_cast<std::size_t>(pending));
    const auto written = pwrite_all(file.fd.get(), line, file.committed, file.path);
    file.size = std::max(file.size, file.committed + written);
    if (written == line.size()) {
      // Best effort: the records were not durable either. Kept records
      // before them (`keep()`) are left to the next sync().
      if (file.synced == file.committed) {
        sys::fsync(file.fd.get(), file.path.c_str());
        file.synced = file.size;
      }
      file.committed = file.size;
      return {};
    }
    const int void_error = errno;
    if (sys::ftruncate(file.fd.get(), static_cast<off_t>(file.committed), file.path.c_str()) == 0) {
      seal(file, file.size);
      return {};
    }
    const int cut_error = errno;
    struct stat info {};
    const auto actual = ::fstat(file.fd.get(), &info) == 0 ? static_cast<std::uint64_t>(info.st_size) : file.size;
    seal(file, std::max(actual, file.size));
    return "its records in " + file.path.string() + " could not be taken back (void write failed: " +
           std::generic_category().message(void_error) +
           "; truncate failed: " + std::generic_category().message(cut_error) + "): listeners may receive them";
  }

  open_file& open_for(const std::string& user) {
    auto& file = files_[user];
    if (file.fd) {
      struct stat info {};
      if (::fstat(file.fd.get(), &info) == 0 && info.st_nlink > 0) {
        if (static_cast<std::uint64_t>(info.st_size) == file.size) return file;
        adopt_foreign_bytes(file, static_cast<std::uint64_t>(info.st_size));
        if (file.fd) return file;
      } else {
        // A journal deleted (and perhaps recreated) under a live writer: its
        // file is gone, so start afresh in whatever journal is there now.
        file = open_file{};
      }
    }
    if (!file.lock) {
      claim_slot(root_ / user, file);
      if (file.fd) return file;
    }
    file.path = file.folder / segment_name(file.base);
    file.fd = unique_fd(sys::open(file.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!file.fd && errno == ENOENT) {
      // The journal was deleted between two segments: start in a new one.
      file = open_file{};
      claim_slot(root_ / user, file);
      if (file.fd) return file;
      file.path = file.folder / segment_name(file.base);
      file.fd = unique_fd(sys::open(file.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    }
    if (!file.fd) throw file_error(errc::store_io_failed, journal_what, file.path, "create", errno);
    fsync_directory(file.folder, errc::store_io_failed, journal_what);
    file.size = file.committed = file.synced = 0;
    return file;
  }

  // The open segment is `actual` bytes long, not what this writer wrote:
  // something else (not a store: the slot is locked) wrote to it or cut it.
  // Records already written stay where readers may have seen them: after
  // bytes that end in a newline, append after them; otherwise go on in a
  // new segment past them, where nothing joins a torn tail.
  static void adopt_foreign_bytes(open_file& file, std::uint64_t actual) noexcept {
    char last = 0;
    if (actual > file.size &&
        sys::pread(file.fd.get(), &last, 1, static_cast<off_t>(actual - 1), file.path.c_str()) == 1 && last == '\n') {
      if (file.size == file.synced) file.synced = actual;
      if (file.size == file.committed) file.committed = actual;
      file.size = actual;
      return;
    }
    seal(file, std::max(actual, file.size));
  }

  // Takes the lowest free slot of the journal and opens its newest segment
  // to append to, or leaves `file.fd` empty with `file.base` where a new
  // one must start: when the slot is new or its newest segment is full. A
  // torn record its last holder left (dying in the middle of a write, so
  // never committed) is voided first.
  void claim_slot(const std::filesystem::path& journal_dir, open_file& file) {
    ensure_journal(journal_dir);
    for (unsigned number = 0;; ++number) {
      auto folder = journal_dir / ("w" + std::to_string(number));
      make_directories(folder, errc::store_io_failed, journal_what);
      auto lock = try_lock_file(folder / "lock", errc::store_io_failed, journal_what);
      if (!lock) continue;  // held by a live writer
      file.lock = std::move(lock);
      file.folder = std::move(folder);
      break;
    }
    const auto bases = list_segments(file.folder);
    if (bases.empty()) return;
    file.base = bases.back();
    file.path = file.folder / segment_name(file.base);
    unique_fd fd(sys::open(file.path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) throw file_error(errc::store_io_failed, journal_what, file.path, "open", errno);
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) throw file_error(errc::store_io_failed, journal_what, file.path, "stat", errno);
    auto size = static_cast<std::uint64_t>(info.st_size);
    if (const auto torn = torn_tail_start(fd.get(), size, file.path); torn != size) {
      // The last holder died in the middle of a record, which was never
      // committed: void it, as a failed operation's records are.
      const auto line = void_line(static_cast<std::size_t>(size - torn));
      if (pwrite_all(fd.get(), line, torn, file.path) != line.size()) {
        throw file_error(errc::store_io_failed, journal_what, file.path, "write", errno);
      }
      size = torn + line.size();
    }
    if (claim_gap_ > 0) {
      file.base += size + claim_gap_;
      return;
    }
    if (size >= segment_bytes_) {
      file.base += size;
      return;
    }
    file.fd = std::move(fd);
    file.size = file.committed = file.synced = size;
  }

  // Where the bytes after the last newline of the `size`-byte file `fd`
  // start: `size` when it ends in a newline (or is empty).
  static std::uint64_t torn_tail_start(int fd, std::uint64_t size, const std::filesystem::path& path) {
    char buffer[4096];
    for (auto end = size; end > 0;) {
      const auto length = static_cast<std::size_t>(std::min<std::uint64_t>(end, sizeof buffer));
      const auto start = end - length;
      if (sys::pread(fd, buffer, length, static_cast<off_t>(start), path.c_str()) != static_cast<ssize_t>(length)) {
        throw file_error(errc::store_io_failed, journal_what, path, "read", errno);
      }
      const std::string_view chunk(buffer, length);
      if (const auto newline = chunk.rfind('\n'); newline != std::string_view::npos) return start + newline + 1;
      end = start;
    }
    return 0;
  }

  std::filesystem::path root_;
  std::string name_;
  std::uint64_t segment_bytes_;
  std::uint64_t sequence_ = 0;
  std::uint64_t claim_gap_ = 0;
  std::map<std::string, open_file> files_;
};

/// Removes segments last written before `cutoff`, never a writer's newest
/// one. Returns how many were removed.
inline std::size_t compact_journal(const std::filesystem::path& journal_dir,
                                   std::filesystem::file_time_type cutoff) {
  std::size_t removed = 0;
  std::vector<std::string> writers;
  try {
    writers = list_writers(journal_dir);
  } catch (const std::system_error&) {
    return 0;  // a journal it cannot list is left alone
  }
  for (const auto& writer : writers) {
    const auto writer_dir = journal_dir / writer;
    std::vector<std::uint64_t> segments;
    try {
      segments = list_segments(writer_dir);
    } catch (const std::system_error&) {
      continue;
    }
    if (!segments.empty()) segments.pop_back();
    for (const auto base : segments) {
      const auto file = writer_dir / segment_name(base);
      std::error_code ec;
      if (std::filesystem::last_write_time(file, ec) < cutoff && !ec && std::filesystem::remove(file, ec)) ++removed;
    }
  }
  return removed;
}

}  // namespace storewatch::detail

namespace storewatch {

/// Appends events straight to users' journals in the folder store at
/// `store_root`, bypassing the store's operations: for importing a history,
/// or for making large journals in tests and benchmarks. The records are
/// the ones a store writes, and readers treat them alike; a store's
/// `events()` still refuses what no store operation could have written
/// (`journal_source_options::record_check`). One appender is one writer
/// (it holds a writer slot in each journal it appends to). Not thread-safe.
class journal_appender {
 public:
  /// An appender to the journals of the folder store at `store_root`,
  /// starting a new segment file every `segment_bytes`.
  explicit journal_appender(const std::filesystem::path& store_root, std::uint64_t segment_bytes = 64ull << 20)
      : writer_(store_root / "journals", detail::make_writer_name(), segment_bytes) {}

  /// Queues `e` for `user`'s journal; written by `flush()` (and, in 1 MiB
  /// batches, by `add` itself). `e.id` is kept as given.
  void add(const std::string& user, const event& e) {
    auto& lines = pending_[user];
    lines += detail::encode_record(e);
    if (lines.size() >= batch_bytes) write(user, lines);
  }

  /// Writes what is queued and makes it durable (fsync). Throws
  /// `std::system_error` naming the file when it cannot.
  void flush() {
    for (auto& [user, lines] : pending_) {
      if (!lines.empty()) write(user, lines);
    }
  }

 private:
  static constexpr std::size_t batch_bytes = 1 << 20;

  void write(const std::string& user, std::string& lines) {
    writer_.append(user, lines);
    writer_.sync();
    lines.clear();
  }

  detail::journal_writer writer_;
  std::map<std::string, std::string> pending_;
};

}  // namespace storewatch
