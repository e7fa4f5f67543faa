// What a folder store's operation has under way, written down before each
// change it makes, so that the operation of a process killed in the middle
// is finished or undone by the next store object that writes to the store.
//
//   <root>/intents/<writer>        a store object's log: locked (flock) while it lives
//   <root>/intents/<writer>.share  the file its share markers are hard links to
//
// A log holds the current operation's entries, one JSON object per line,
// each numbered with the operation ("op"); it is emptied when the
// operation ends (done or undone). The entries, in the order written:
//
//   {"kind":"temp","path":T}                  before a temporary file T is made
//   {"kind":"version","path":F,"temp":T}      before link(T, F) makes version F
//   {"kind":"linked","path":F}                after it did, before T is removed
//   {"kind":"marker","path":M,"temp":S}       before link(S, M) makes share marker M
//   {"kind":"away","path":A,"from":F}         before rename(F, A) removes F
//   {"kind":"announce","records":[{"user":U,"file":J,"at":N,"lines":L}]}
//        once every change is durable, before the records L are appended to
//        U's journal at byte N of the segment J
//
// (paths relative to the store's root). A log whose lock nobody holds is
// its dead writer's: if any record it announced is in its journal, the
// operation happened (its file changes were durable before the first
// record): the records still missing are appended, with their ids (first
// announced in the dead log with where they go, so that after a recovery
// killed in the middle the last announce entry says which are still
// missing), and the removed files' renamed copies deleted. Otherwise each
// change is undone, as a failed operation's are: a version or marker only
// if it is the very file the writer linked (the same inode as its
// temporary, while that exists), a removal only if the renamed copy is
// there. A log is bad input like any file: recovery opens only regular
// files (never through a link) and acts only on paths inside the store
// folder each kind of entry belongs to, and on valid user names.
//
// The log is written without fsync: it survives the death of its process,
// not a crash of the machine.
#pragma once

#include <storewatch/detail/files.hpp>
#include <storewatch/detail/names.hpp>
#include <storewatch/detail/sys.hpp>
#include <storewatch/error.hpp>
#include <storewatch/journal/writer.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace storewatch::detail {

inline constexpr std::string_view intent_what = "store";
inline constexpr std::string_view share_link_suffix = ".share";

/// One store object's intent log (see above). Not thread-safe.
class intent_log {
 public:
  intent_log(std::filesystem::path root, std::string writer_name)
      : root_(std::move(root)), folder_(root_ / "intents"), path_(folder_ / writer_name) {}
  intent_log(intent_log&&) = default;
  // (The log a move assignment drops is unlocked, and any store's recovery
  // removes it.)
  intent_log& operator=(intent_log&&) = default;
  ~intent_log() {
    if (!fd_) return;
    if (share_link_) sys::unlink(share_link_->c_str());
    sys::unlink(path_.c_str());  // still locked: no recovery reads it meanwhile
  }

  /// The path of `file` relative to the store's root, as entries hold it.
  std::string relative(const std::filesystem::path& file) const { return file.lexically_relative(root_).generic_string(); }

  /// Starts the entries of a new operation (the last one's are kept until
  /// this one writes its first, and ignored by recovery after that).
  void begin() noexcept {
    ++op_;
    share_link_.reset();
  }

  /// Writes `entry` (an object; "op" is added). Throws `store_io_failed`.
  void note(nlohmann::json entry) {
    if (!fd_) open();
    entry["op"] = op_;
    const auto line = entry.dump() + "\n";
    if (pwrite_all(fd_.get(), line, size_, path_) != line.size()) {
      throw file_error(errc::store_io_failed, intent_what, path_, "write", errno);
    }
    size_ += line.size();
  }

  /// The file this operation's share markers are hard links to, made at the
  /// first call (a new inode for each operation: recovery tells its markers
  /// from others by it). Throws `store_io_failed`.
  const std::filesystem::path& share_link() {
    if (share_link_) return *share_link_;
    if (!fd_) open();
    auto link = path_;
    link += std::string(share_link_suffix);
    note({{"kind", "temp"}, {"path", relative(link)}});
    sys::unlink(link.c_str());
    unique_fd made(sys::open(link.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!made) throw file_error(errc::store_io_failed, intent_what, link, "create", errno);
    share_link_ = std::move(link);
    return *share_link_;
  }

  /// Ends the operation: removes its share-marker file and empties the log.
  /// Never throws; a log it cannot empty is overwritten by the next
  /// operation's entries, which recovery tells apart by their number.
  void end() noexcept {
    if (share_link_) sys::unlink(share_link_->c_str());
    share_link_.reset();
    if (fd_ && size_ > 0 && sys::ftruncate(fd_.get(), 0, path_.c_str()) == 0) size_ = 0;
  }

 private:
  // Makes and locks the log. A recovering store may remove an unlocked,
  // empty log between its creation and the lock: then make it again.
  void open() {
    make_directories(folder_, errc::store_io_failed, intent_what);
    for (int tries = 0;; ++tries) {
      auto fd = try_lock_file(path_, errc::store_io_failed, intent_what);
      if (!fd) {  // a recovering store has it for a moment, and then removes it
        if (tries < 1000) continue;
        throw file_error(errc::store_io_failed, intent_what, path_, "lock", EWOULDBLOCK);
      }
      struct stat held {}, named {};
      if (::fstat(fd.get(), &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
          held.st_dev == named.st_dev) {
        if (sys::ftruncate(fd.get(), 0, path_.c_str()) != 0) {
          throw file_error(errc::store_io_failed, intent_what, path_, "truncate", errno);
        }
        fd_ = std::move(fd);
        size_ = 0;
        return;
      }
    }
  }

  std::filesystem::path root_;
  std::filesystem::path folder_;
  std::filesystem::path path_;
  unique_fd fd_;
  std::uint64_t size_ = 0;
  std::uint64_t op_ = 0;
  std::optional<std::filesystem::path> share_link_;
};

namespace intent_recovery {

inline bool file_exists(const std::filesystem::path& file) {
  struct stat info {};
  return ::lstat(file.c_str(), &info) == 0;
}

// Whether `a` and `b` both exist and are one file (hard links of one inode).
inline bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  struct stat x {}, y {};
  return ::lstat(a.c_str(), &x) == 0 && ::lstat(b.c_str(), &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

// How many of the records in `lines` (complete lines) are at byte `at` of
// the journal segment `file`, in order; std::nullopt when the segment is
// gone (compacted or removed with its journal: the records are not missing).
inline std::optional<std::size_t> records_present(const std::filesystem::path& file, std::uint64_t at,
                                                  std::string_view lines) {
  unique_fd fd(sys::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    throw file_error(errc::store_io_failed, journal_what, file, "open", errno);
  }
  std::string found(lines.size(), '\0');
  std::size_t got = 0;
  while (got < found.size()) {
    const auto n = sys::pread(fd.get(), found.data() + got, found.size() - got, static_cast<off_t>(at + got), file.c_str());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw file_error(errc::store_io_failed, journal_what, file, "read", errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  found.resize(got);
  std::size_t count = 0;
  for (std::size_t start = 0; start < lines.size();) {
    const auto end = lines.find('\n', start) + 1;
    if (found.size() < end || found.compare(start, end - start, lines.substr(start, end - start)) != 0) break;
    ++count;
    start = end;
  }
  return count;
}

// The entries of the log's last operation, up to a torn or unreadable line;
// `end_of_entries` is set to the byte after them.
inline std::vector<nlohmann::json> last_operation(std::string_view text, std::size_t& end_of_entries) {
  std::vector<nlohmann::json> entries;
  end_of_entries = 0;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = text.find('\n', start);
    if (end == std::string_view::npos) break;
    auto entry = nlohmann::json::parse(text.substr(start, end - start), nullptr, false);
    if (!entry.is_object() || !entry.contains("op") || !entry["op"].is_number_unsigned()) break;
    if (!entries.empty() && entries.back()["op"] != entry["op"]) entries.clear();
    entries.push_back(std::move(entry));
    start = end_of_entries = end + 1;
  }
  return entries;
}

// Opens and locks the log `log`: an empty descriptor when its writer is
// alive, or when it is not a regular file (a symbolic link to a file
// elsewhere, a FIFO: not a log, left alone). Throws `store_io_failed`.
inline unique_fd lock_log(const std::filesystem::path& log) {
  unique_fd fd(sys::open(log.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ELOOP) return {};
    throw file_error(errc::store_io_failed, intent_what, log, "open", errno);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) return {};
  for (;;) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return fd;
    if (errno == EWOULDBLOCK) return {};
    if (errno != EINTR) throw file_error(errc::store_io_failed, intent_what, log, "flock", errno);
  }
}

inline std::string text(const nlohmann::json& entry, const char* key) {
  const auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The path `entry[key]` names under `root`, if it is a relative path inside
// one of the store's folders `tops` (no "..", "." or empty component);
// otherwise empty, and the entry is ignored: a crafted log must not make
// recovery remove or rename anything else.
inline std::filesystem::path inside(const std::filesystem::path& root, const nlohmann::json& entry, const char* key,
                                    std::initializer_list<std::string_view> tops) {
  const std::filesystem::path relative(text(entry, key));
  if (relative.empty() || relative.has_root_path()) return {};
  const auto top = relative.begin()->native();
  if (std::find(tops.begin(), tops.end(), top) == tops.end()) return {};
  for (const auto& part : relative) {
    if (part.empty() || part == "." || part == "..") return {};
  }
  return root / relative;
}

// Finishes or undoes the operation `entries` describe (see the file's
// comment), appending missing records through `writer`, after passing an
// announce entry for them to `note` (to add to the log: a recovery killed
// in the middle leaves them announced where they went, and the next one
// appends only what is still missing: the last announce entry says what
// is).
template <class Note>
void settle(const std::filesystem::path& root, const std::vector<nlohmann::json>& entries, journal_writer& writer,
            Note note) {
  const auto path = [&](const nlohmann::json& entry, const char* key, std::initializer_list<std::string_view> tops) {
    return inside(root, entry, key, tops);
  };
  std::map<std::string, std::string> to_append;  // by user
  bool happened = false;
  const nlohmann::json* last_announce = nullptr;
  for (const auto& entry : entries) {
    if (text(entry, "kind") == "announce") last_announce = &entry;
  }
  for (const auto& entry : entries) {
    if (text(entry, "kind") != "announce" || !entry.contains("records") || !entry["records"].is_array()) continue;
    for (const auto& record : entry["records"]) {
      const auto user = text(record, "user");
      const auto lines = text(record, "lines");
      const auto file = path(record, "file", {"journals"});
      if (!user_problem(user).empty() || lines.empty() || lines.back() != '\n' || file.empty() ||
          !record.contains("at") ||
          !record["at"].is_number_unsigned()) {
        continue;
      }
      const auto present = records_present(file, record["at"].get<std::uint64_t>(), lines);
      if (!present) {
        happened = true;
        continue;
      }
      if (*present > 0) happened = true;
      if (&entry != last_announce) continue;
      std::size_t skip = 0;
      for (std::size_t n = 0; n < *present; ++n) skip = lines.find('\n', skip) + 1;
      if (skip < lines.size()) to_append[user] += lines.substr(skip);
    }
  }
  std::set<std::filesystem::path> folders;
  if (happened) {
    if (!to_append.empty()) {
      auto where = nlohmann::json::array();
      for (const auto& [user, lines] : to_append) {
        const auto [file, at] = writer.position(user);
        where.push_back({{"user", user}, {"file", file.lexically_relative(root).generic_string()}, {"at", at},
                         {"lines", lines}});
      }
      note({{"kind", "announce"}, {"records", std::move(where)}, {"op", entries.back()["op"]}});
    }
    try {
      for (const auto& [user, lines] : to_append) writer.append(user, lines);
      writer.sync();
    } catch (...) {
      writer.take_back();
      throw;
    }
    for (const auto& entry : entries) {
      const auto kind = text(entry, "kind");
      if (kind == "away" || kind == "temp") {
        if (const auto file = path(entry, "path", {"versions", "shares", "intents"}); !file.empty()) {
          sys::unlink(file.c_str());
        }
      }
    }
    return;
  }
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const auto& entry = *it;
    const auto kind = text(entry, "kind");
    const auto file = kind == "version"  ? path(entry, "path", {"versions"})
                      : kind == "marker" ? path(entry, "path", {"shares"})
                                         : path(entry, "path", {"versions", "shares"});
    if (file.empty()) continue;
    if (kind == "version" || kind == "marker") {
      const auto temporary = path(entry, "temp", {"versions", "intents"});
      if (temporary.empty()) continue;
      const bool linked_known = std::any_of(entries.begin(), entries.end(), [&](const nlohmann::json& e) {
        return text(e, "kind") == "linked" && text(e, "path") == text(entry, "path");
      });
      if (same_file(file, temporary) || (linked_known && !file_exists(temporary))) {
        if (sys::unlink(file.c_str()) == 0) folders.insert(file.parent_path());
      }
    } else if (kind == "away") {
      const auto from = path(entry, "from", {"versions", "shares"});
      if (!from.empty() && file_exists(file) && sys::rename(file.c_str(), from.c_str()) == 0) {
        folders.insert(from.parent_path());
      }
    }
  }
  for (const auto& entry : entries) {
    if (text(entry, "kind") != "temp") continue;
    if (const auto file = path(entry, "path", {"versions", "intents"}); !file.empty()) sys::unlink(file.c_str());
  }
  for (const auto& folder : folders) {
    try {
      fsync_directory(folder, errc::store_io_failed, intent_what);
    } catch (const std::system_error&) {  // best effort, as for a failed operation's undo
    }
  }
}

}  // namespace intent_recovery

/// Settles the operations that store objects which died left in the intent
/// logs under `root` (see above), skipping `own` (this store object's log)
/// and the logs of live store objects. Best effort: a log it cannot read
/// or settle is left for a later try. Returns how many it settled.
inline std::size_t recover_intents(const std::filesystem::path& root, std::string_view own, journal_writer& writer) {
  const auto folder = root / "intents";
  std::error_code ec;
  const auto entries = sys::list(folder, ec);
  std::size_t settled = 0;
  for (const auto& entry : entries) {
    if (entry.directory || entry.name == own || entry.name.ends_with(share_link_suffix)) continue;
    const auto log = folder / entry.name;
    try {
      auto lock = intent_recovery::lock_log(log);
      if (!lock) continue;  // its store object is alive (or it is no log)
      std::string text;
      char block[4096];
      for (;;) {
        const auto n = sys::read(lock.get(), block, sizeof block, log.c_str());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw file_error(errc::store_io_failed, intent_what, log, "read", errno);
        if (n == 0) break;
        text.append(block, static_cast<std::size_t>(n));
      }
      std::size_t end = 0;
      const auto operation = intent_recovery::last_operation(text, end);
      const auto note = [&](const nlohmann::json& entry) {
        const auto line = entry.dump() + "\n";
        if (pwrite_all(lock.get(), line, end, log) != line.size()) {
          throw file_error(errc::store_io_failed, intent_what, log, "write", errno);
        }
        end += line.size();
        sys::ftruncate(lock.get(), static_cast<off_t>(end), log.c_str());  // any torn line that was after it
      };
      if (!operation.empty()) intent_recovery::settle(root, operation, writer, note);
      // Emptied before removed: a store that opened it before the removal
      // and locks it after finds nothing to do.
      if (sys::ftruncate(lock.get(), 0, log.c_str()) != 0) continue;
      auto link = log;
      link += std::string(share_link_suffix);
      sys::unlink(link.c_str());
      sys::unlink(log.c_str());
      if (!operation.empty()) ++settled;
    } catch (const std::system_error&) {  // left for a later try
    }
  }
  return settled;
}

}  // namespace storewatch::detail
