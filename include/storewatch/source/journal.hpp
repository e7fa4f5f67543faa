/// \file
/// The per-user event journal of a local_store, and `journal_source`, which polls it.
//
// The per-user event journal of a local_store: its layout on disk, the
// writer side, and the source that polls it.
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

#include <storewatch/detail/config.hpp>
#include <storewatch/detail/files.hpp>
#include <storewatch/detail/gap.hpp>
#include <storewatch/detail/intercept.hpp>
#include <storewatch/detail/journal_record.hpp>
#include <storewatch/detail/post.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/source.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storewatch {
namespace detail {

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

inline bool is_writer_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
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

/// A decoded journal cursor: the journal's epoch and, per writer, the byte
/// offset (across its segments) up to which it was read.
struct journal_cursor {
  std::string epoch;
  std::map<std::string, std::uint64_t> writers;

  std::string encode() const {
    std::string out = "j1;" + epoch;
    for (const auto& [writer, offset] : writers) {
      out += ';';
      out += writer;
      out += '=';
      out += std::to_string(offset);
    }
    return out;
  }

  /// Decodes `text`; nullopt (with `why`) when it is not a journal cursor.
  static std::optional<journal_cursor> decode(std::string_view text, std::string& why) {
    journal_cursor cursor;
    if (text.empty()) return cursor;
    if (!text.starts_with("j1;")) {
      why = "does not start with \"j1;\"";
      return std::nullopt;
    }
    text.remove_prefix(3);
    const auto next_field = [&text] { return take_field(text); };
    cursor.epoch = next_field();
    if (!cursor.epoch.empty() && !is_writer_name(cursor.epoch)) {
      why = "has a bad epoch " + quote(cursor.epoch);
      return std::nullopt;
    }
    while (!text.empty()) {
      const auto field = next_field();
      const auto equals = field.find('=');
      std::uint64_t offset = 0;
      if (equals == std::string_view::npos || !is_writer_name(field.substr(0, equals)) ||
          !parse_decimal(field.substr(equals + 1), offset)) {
        why = "has a bad writer entry " + quote(field);
        return std::nullopt;
      }
      cursor.writers[std::string(field.substr(0, equals))] = offset;
    }
    return cursor;
  }
};

/// A void line over `size` bytes (at least 1) that ends the bytes it covers
/// with a newline: dashes, then '\n'. A reader skips it without a report.
/// Any tail of it is void too, so a reader positioned inside it
/// resynchronises at its end. Covering one byte takes two ("-\n"): the
/// bytes voided are always the last of their file, so it may grow by one.
inline std::string void_line(std::size_t size) {
  std::string line(std::max<std::size_t>(size, 2), '-');
  line.back() = '\n';
  return line;
}

/// True for a line (without its newline) that `void_line` wrote.
inline bool is_void_line(std::string_view line) noexcept {
  return !line.empty() && line.find_first_not_of('-') == std::string_view::npos;
}

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

  /// Makes everything appended so far durable, then rotates full segments.
  /// On failure the caller should `take_back()` what is pending.
  void sync() {
    for (auto& [user, file] : files_) {
      if (file.size != file.committed && sys::fsync(file.fd.get(), file.path.c_str()) != 0) {
        throw file_error(errc::store_io_failed, journal_what, file.path, "fsync", errno);
      }
    }
    for (auto& [user, file] : files_) {  // all durable: the operation is committed
      file.committed = file.size;
      if (file.fd && file.size >= segment_bytes_) seal(file, file.size);
    }
  }

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
    std::uint64_t committed = 0;  // of which synced by the last sync()
  };

  // Closes the open segment: the next append starts a new one at `end`
  // bytes past its start.
  static void seal(open_file& file, std::uint64_t end) noexcept {
    file.fd.reset();
    file.base += end;
    file.size = file.committed = 0;
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
      sys::fsync(file.fd.get(), file.path.c_str());  // best effort: the records were not durable either
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
    file.size = file.committed = 0;
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
    if (size >= segment_bytes_) {
      file.base += size;
      return;
    }
    file.fd = std::move(fd);
    file.size = file.committed = size;
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

/// Reads every pending inotify event from `fd` (non-blocking) and returns the
/// names of folders created in the folder watched by `parent_watch`.
/// An ordinary function, not a coroutine: inotify_event has a flexible array
/// member and is copied out of the byte buffer with memcpy for alignment.
inline std::vector<std::string> drain_inotify(int fd, int parent_watch) {
  std::vector<std::string> new_folders;
  alignas(inotify_event) char buffer[16384];
  for (;;) {
    const auto got = ::read(fd, buffer, sizeof buffer);
    if (got <= 0) break;  // EAGAIN: drained
    for (std::size_t at = 0; at + sizeof(inotify_event) <= static_cast<std::size_t>(got);) {
      inotify_event header;
      std::memcpy(&header, buffer + at, sizeof header);
      const std::size_t length = sizeof header + header.len;
      if (at + length > static_cast<std::size_t>(got)) break;
      if (header.wd == parent_watch && (header.mask & IN_ISDIR) && (header.mask & (IN_CREATE | IN_MOVED_TO)) &&
          header.len > 0) {
        new_folders.emplace_back(buffer + at + sizeof header);  // NUL-padded name
      }
      at += length;
    }
  }
  return new_folders;
}

}  // namespace detail

/// Options of a journal source.
struct journal_source_options {
  /// Bytes read from one segment per step; a record longer than this is
  /// reported as corrupt.
  std::size_t read_chunk = 1 << 20;
  /// Signal changes through inotify. Off (or on a network file system,
  /// where inotify does not see other machines' writes),
  /// `async_wait_for_change` fails with `errc::wake_ups_unavailable` and the
  /// poller polls at its interval, saying so once.
  bool wake_ups = true;
  /// Checks each whole record's event: a non-empty answer (why) makes it a
  /// corrupt record, reported with its file and offset and not delivered.
  /// `local_store::events()` sets one that accepts only what a store writes.
  std::function<std::string(const event&)> record_check{};
  /// Where polls read the journal (blocking file I/O): an executor you own,
  /// say an `asio::thread_pool`'s, so the source's executor goes on serving
  /// other work meanwhile; the completion still comes through the source's
  /// executor. Empty (the default): the source's executor.
  asio::any_io_executor blocking_executor{};
};

/// Polls one user's journal (its layout is described at the top of
/// source/journal.hpp).
///
/// Cursor: "j1;<epoch>;<writer>=<offset>;...". A cursor from
/// another epoch (the journal was recreated), or pointing into segments
/// that retention removed, yields a GAP event saying what is gone. Corrupt
/// records are reported in `poll_result::problems` with the file and offset
/// and skipped; a torn record at the end of a writer's newest segment is
/// waited for (the writer may be writing it), and reported only once the
/// writer has moved to a later segment.
///
/// Blocking file reads run on the source's executor. Not thread-safe, like
/// any Asio I/O object: use it from one thread or strand. It must outlive
/// its pending operations.
template <class Executor = asio::any_io_executor>
class basic_journal_source {
 public:
  /// The executor type; reads and completions without an associated
  /// executor run on it.
  using executor_type = Executor;

  /// The source type on another executor type.
  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_journal_source<OtherExecutor>;  ///< the source on `OtherExecutor`
  };

  /// A source for the journal in `journal_dir` (`<root>/journals/<user>` of
  /// a store). The folder need not exist yet: polls then find nothing.
  basic_journal_source(const executor_type& executor, std::filesystem::path journal_dir,
                       journal_source_options options = {})
      : executor_(executor), dir_(std::move(journal_dir)), options_(options) {}

  /// The executor given at construction.
  executor_type get_executor() noexcept { return executor_; }
  /// The journal's folder.
  const std::filesystem::path& directory() const noexcept { return dir_; }

  /// Reads up to `max_events` new events after `cursor`.
  /// Completion signature: `void(std::error_code, poll_result)`.
  /// Errors: `errc::store_io_failed` when the journal cannot be read (the
  /// poller retries; `last_error()` names the file and step). A malformed
  /// cursor is reported as a problem, answered with a GAP event, and reading
  /// starts from the oldest segments.
  /// The read is posted to the source's executor and blocks it while it
  /// runs; the handler runs after it, never inside this call, on its
  /// associated executor (default: the source's).
  /// Cancellation: none; a poll reads only the bytes written since `cursor`,
  /// at most `max_events` records.
  template <asio::completion_token_for<void(std::error_code, poll_result)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_poll(std::string_view cursor, std::size_t max_events,
                  CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return detail::async_blocking_call<poll_result>(
        executor_, options_.blocking_executor, last_error_,
        [this, cursor = std::string(cursor), max_events] { return poll(cursor, max_events); },
        std::forward<CompletionToken>(token));
  }

  /// Completes when the journal may have changed since the last wait: an
  /// inotify watch on the journal folder and each writer's folder, read
  /// through a `posix::stream_descriptor` on the source's executor (no
  /// thread). A hint only: the poller polls at its interval anyway, which
  /// covers mounts where inotify does not see other machines' writes.
  /// The first wait completes at once (a change may have slipped in before
  /// the watches existed), as does the first after the journal folder was
  /// removed. Makes the journal folder if it does not exist.
  /// Completion signature: `void(std::error_code)`. Errors:
  /// `errc::store_io_failed` when the folder cannot be made or inotify is
  /// unavailable (`last_error()` names the step; the poller then polls
  /// only); `errc::wake_ups_unavailable` when `options.wake_ups` is off or
  /// the journal is on a network file system (`last_error()` names it);
  /// `operation_aborted` when cancelled. The handler never runs
  /// inside this call; it runs on its associated executor (default: the
  /// source's). Cancellation (of a wait that waits): terminal, partial,
  /// total.
  template <asio::completion_token_for<void(std::error_code)> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_wait_for_change(std::string_view /*cursor*/,
                             CompletionToken&& token = asio::default_completion_token_t<executor_type>{}) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler) {
          if (!notifier_) {
            std::error_code ec;
            try {
              arm();
            } catch (const std::system_error& error) {
              ec = error.code();
              last_error_ = error.what();
            }
            detail::post_completion(executor_, std::move(handler), ec);
            return;
          }
          notifier_->async_wait(asio::posix::descriptor_base::wait_read,
                                detail::intercept(std::move(handler), [this](std::error_code& ec) {
                                  if (ec) return;
                                  try {
                                    on_notified();
                                  } catch (const std::system_error& error) {
                                    ec = error.code();
                                    last_error_ = error.what();
                                  }
                                }));
        },
        token);
  }

  /// What the last failed `async_poll` or `async_wait_for_change` said
  /// (file and step).
  const std::string& last_error() const noexcept { return last_error_; }

  /// The synchronous poll behind `async_poll`, on the calling thread;
  /// throws `std::system_error`.
  poll_result poll(std::string_view cursor_text, std::size_t max_events) {
    poll_result result;
    std::string why;
    auto cursor = detail::journal_cursor::decode(cursor_text, why);
    if (!cursor) {
      result.problems.push_back({errc::invalid_cursor, "journal " + dir_.string() + ": cursor " +
                                                           detail::quote(cursor_text) + " " + why +
                                                           "; reading from the oldest records kept"});
      result.events.push_back(gap("cursor " + detail::quote(cursor_text) + " was not understood"));
      cursor.emplace();
    }
    std::string epoch_problem;
    const auto epoch = detail::read_epoch(dir_, &epoch_problem);
    if (!epoch) {  // no journal yet: nothing to read
      result.next_cursor = cursor->encode();
      return result;
    }
    if (!epoch_problem.empty() && cursor->epoch != *epoch) {
      // Reported once: the next cursor holds the stand-in epoch. Whether the
      // journal was recreated cannot be told, so positions are kept (nothing
      // is delivered twice) and a reader that was reading it gets one GAP.
      result.problems.push_back({errc::corrupt_record, epoch_problem});
      if (!cursor->epoch.empty()) {
        result.events.push_back(gap("journal " + dir_.string() + ": its epoch file became unreadable (epoch " +
                                    cursor->epoch + " -> " + *epoch +
                                    "); if the journal was recreated, its events before the cursor's positions "
                                    "are not delivered"));
        cursor->epoch = *epoch;
      }
    }
    if (epoch_problem.empty() && detail::is_stand_in_epoch(cursor->epoch)) {
      // The epoch file was repaired: the positions kept meanwhile hold (the
      // GAP when it went bad said what could not be told).
      cursor->epoch = *epoch;
    }
    if (!cursor->epoch.empty() && cursor->epoch != *epoch) {
      result.events.push_back(gap("journal " + dir_.string() + " was recreated (epoch " + cursor->epoch + " -> " +
                                  *epoch + "); events of the old journal after the cursor are unknown"));
      cursor->writers.clear();
    }
    const bool resuming = !cursor->epoch.empty();
    cursor->epoch = *epoch;
    for (const auto& writer : detail::list_writers(dir_)) {
      if (result.events.size() >= max_events) break;
      read_writer(writer, *cursor, resuming, result, max_events);
    }
    result.next_cursor = cursor->encode();
    return result;
  }

 private:
  static event gap(std::string what) { return detail::make_gap(std::move(what)); }

  void read_writer(const std::string& writer, detail::journal_cursor& cursor, bool resuming, poll_result& result,
                   std::size_t max_events) {
    const auto writer_dir = dir_ / writer;
    const auto bases = detail::list_segments(writer_dir);
    if (bases.empty()) return;
    const auto known = cursor.writers.find(writer);
    std::uint64_t offset = known != cursor.writers.end() ? known->second : 0;
    if (offset < bases.front() && (known != cursor.writers.end() || resuming)) {
      result.events.push_back(gap("journal " + writer_dir.string() + ": bytes " + std::to_string(offset) + " to " +
                                  std::to_string(bases.front()) +
                                  " of this writer were removed by retention before they were read"));
    }
    offset = std::max(offset, bases.front());
    for (auto segment = std::upper_bound(bases.begin(), bases.end(), offset); result.events.size() < max_events;) {
      const auto base = *std::prev(segment);
      const bool sealed = segment != bases.end();
      bool vanished = false;
      const bool finished = read_segment(writer_dir / detail::segment_name(base), base, offset, sealed, result,
                                         max_events, vanished);
      if (vanished && sealed && offset < *segment) {
        result.events.push_back(gap("journal " + writer_dir.string() + ": bytes " + std::to_string(offset) + " to " +
                                    std::to_string(*segment) + " of this writer were removed while being read"));
      }
      if (!finished || !sealed) break;
      offset = *segment++;  // the next segment starts where this one ended
    }
    cursor.writers[writer] = offset;
  }

  // Reads the records of the segment starting at `base` from `offset` (a
  // writer-wide byte offset), advancing it. Returns true when the segment
  // was read to its end.
  bool read_segment(const std::filesystem::path& file, std::uint64_t base, std::uint64_t& offset, bool sealed,
                    poll_result& result, std::size_t max_events, bool& vanished) {
    detail::unique_fd fd(detail::sys::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      vanished = errno == ENOENT;
      if (vanished) return true;  // compacted meanwhile: the caller reports the gap
      throw detail::file_error(errc::store_io_failed, detail::journal_what, file, "open", errno);
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
      throw detail::file_error(errc::store_io_failed, detail::journal_what, file, "stat", errno);
    }
    const auto end = base + static_cast<std::uint64_t>(info.st_size);
    if (offset > end) {
      result.problems.push_back({errc::invalid_cursor, "journal " + file.string() + ": cursor offset " +
                                                           std::to_string(offset) + " is past the end (" +
                                                           std::to_string(end) + "); reading on from the end"});
      offset = end;
    }
    const auto where = [&] { return "journal " + file.string() + " offset " + std::to_string(offset - base); };
    std::string buffer;
    while (offset < end && result.events.size() < max_events) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(options_.read_chunk, end - offset));
      buffer.resize(want);
      std::size_t got = 0;  // a short read is not the end of the file: read on until `want` or the end
      while (got < want) {
        const auto n = detail::sys::pread(fd.get(), buffer.data() + got, want - got,
                                          static_cast<off_t>(offset - base + got), file.c_str());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw detail::file_error(errc::store_io_failed, detail::journal_what, file, "read", errno);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
      }
      if (got == 0) break;
      buffer.resize(got);
      std::string_view rest(buffer);
      bool progressed = false;
      while (!rest.empty() && result.events.size() < max_events) {
        const auto newline = rest.find('\n');
        if (newline == std::string_view::npos) break;
        if (detail::is_void_line(rest.substr(0, newline))) {  // an operation that failed
          offset += newline + 1;
          rest.remove_prefix(newline + 1);
          progressed = true;
          continue;
        }
        std::string why;
        auto e = detail::decode_record(rest.substr(0, newline), why);
        if (e && options_.record_check) why = options_.record_check(*e);
        if (e && why.empty()) {
          result.events.push_back(std::move(*e));
        } else {
          result.problems.push_back(
              {errc::corrupt_record, where() + ": " + why + "; skipped " + std::to_string(newline + 1) + " bytes"});
        }
        offset += newline + 1;
        rest.remove_prefix(newline + 1);
        progressed = true;
      }
      if (result.events.size() >= max_events) return offset >= end;
      if (progressed) continue;
      // No newline in what is left of the chunk.
      if (buffer.size() == options_.read_chunk) {
        result.problems.push_back({errc::corrupt_record, where() + ": no record end within " +
                                                             std::to_string(options_.read_chunk) + " bytes; skipped"});
        offset += buffer.size();
        continue;
      }
      if (!sealed) return false;  // a record being written: wait for the rest
      // The writer moved on to a later segment: this tail will never be completed.
      result.problems.push_back({errc::corrupt_record, where() + ": torn record of " + std::to_string(end - offset) +
                                                           " bytes at the end of a finished segment; skipped"});
      offset = end;
    }
    return offset >= end;
  }

  // Creates the inotify descriptor and watches the journal and its writers.
  void arm() {
    detail::ensure_journal(dir_);
    if (!options_.wake_ups) {
      throw std::system_error(errc::wake_ups_unavailable, "journal " + dir_.string() + ": wake-ups turned off");
    }
    if (const auto network = detail::network_file_system(dir_)) {
      throw std::system_error(errc::wake_ups_unavailable, "journal " + dir_.string() + " is on a " +
                                                              std::string(*network) +
                                                              " file system: inotify does not see writes made on "
                                                              "other machines");
    }
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw detail::file_error(errc::store_io_failed, detail::journal_what, dir_, "inotify_init1", errno);
    notifier_.emplace(executor_, fd);
    journal_watch_ = ::inotify_add_watch(fd, dir_.c_str(), IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR);
    if (journal_watch_ < 0) {
      const int error_number = errno;
      notifier_.reset();
      throw detail::file_error(errc::store_io_failed, detail::journal_what, dir_, "inotify_add_watch", error_number);
    }
    for (const auto& writer : detail::list_writers(dir_)) watch_writer(writer);
  }

  void watch_writer(const std::string& writer) {
    const auto folder = dir_ / writer;
    if (::inotify_add_watch(notifier_->native_handle(), folder.c_str(), IN_MODIFY | IN_CREATE | IN_ONLYDIR) < 0 &&
        errno != ENOENT) {
      throw detail::file_error(errc::store_io_failed, detail::journal_what, folder, "inotify_add_watch", errno);
    }
  }

  void on_notified() {
    for (const auto& folder : detail::drain_inotify(notifier_->native_handle(), journal_watch_)) {
      if (detail::is_writer_name(folder)) watch_writer(folder);
    }
    struct stat info {};
    if (::stat(dir_.c_str(), &info) != 0) notifier_.reset();  // the journal was removed: arm again next time
  }

  executor_type executor_;
  std::filesystem::path dir_;
  journal_source_options options_;
  std::string last_error_;
  std::optional<asio::posix::basic_stream_descriptor<Executor>> notifier_;
  int journal_watch_ = -1;
};

/// The journal source on `asio::any_io_executor`.
using journal_source = basic_journal_source<>;

}  // namespace storewatch
