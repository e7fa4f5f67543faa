// POSIX file helpers with errors that name the file and the failed step.
#pragma once

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <storewatch/detail/sys.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

namespace storewatch::detail {

/// An error for `action` on `file`, in `code`'s category, saying `what` the
/// file is ("checkpoint", "store") and the system's reason.
inline std::system_error file_error(std::error_code code, std::string_view what, const std::filesystem::path& file,
                                    const char* action, int error_number) {
  return std::system_error(code, std::string(what) + " " + file.string() + ": " + action + " failed: " +
                                     std::generic_category().message(error_number));
}

/// The name of a network or cluster file system by its statfs magic
/// number; nullopt for any other.
inline std::optional<std::string_view> network_file_system_name(std::uint64_t magic) {
  struct known {
    std::uint64_t magic;
    std::string_view name;
  };
  static constexpr known table[] = {
      {0x6969, "nfs"},          {0x517B, "smb"},           {0xFF534D42, "cifs"},   {0xFE534D42, "smb2"},
      {0x65735546, "fuse"},     {0x00C36400, "ceph"},      {0x5346414F, "afs"},    {0x73757245, "coda"},
      {0x01021997, "9p"},       {0x01161970, "gfs2"},      {0x7461636F, "ocfs2"},  {0x0BD00BD0, "lustre"},
      {0x20030528, "orangefs"}, {0x013111A8, "ibrix"},     {0x47504653, "gpfs"},
  };
  for (const auto& k : table) {
    if (k.magic == magic) return k.name;
  }
  return std::nullopt;
}

/// The name of the network or cluster file system `folder` is on, where
/// inotify sees only this machine's writes; nullopt for a local one (or
/// when it cannot tell).
inline std::optional<std::string_view> network_file_system(const std::filesystem::path& folder) {
  struct statfs info {};
  if (::statfs(folder.c_str(), &info) != 0) return std::nullopt;
  return network_file_system_name(static_cast<std::uint64_t>(info.f_type));
}

/// Owns a file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/// Takes an exclusive lock on `file` (made if missing) for as long as the
/// returned descriptor is open; an empty one when another open file holds
/// it (another process, or another object of this one). The kernel drops
/// the lock when its holder dies, so a crash never leaves it held. Throws
/// `code` when the file cannot be made or locked.
inline unique_fd try_lock_file(const std::filesystem::path& file, std::error_code code, std::string_view what) {
  unique_fd fd(sys::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw file_error(code, what, file, "open", errno);
  for (;;) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return fd;
    if (errno == EWOULDBLOCK) return {};
    if (errno != EINTR) throw file_error(code, what, file, "flock", errno);
  }
}

/// Writes all of `bytes` to `fd` (open on `path`); false (errno set) on failure.
inline bool write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const auto written = sys::write(fd, bytes.data(), bytes.size(), path.c_str());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      if (written == 0) errno = EIO;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

/// Writes all of `bytes` to `fd` (open on `path`, not with O_APPEND) at
/// `offset`. Returns how many bytes were written: all of them, or fewer
/// with errno set.
inline std::size_t pwrite_all(int fd, std::string_view bytes, std::uint64_t offset, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto written = sys::pwrite(fd, bytes.data() + done, bytes.size() - done,
                                     static_cast<off_t>(offset + done), path.c_str());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      if (written == 0) errno = EIO;
      return done;
    }
    done += static_cast<std::size_t>(written);
  }
  return done;
}

/// The whole content of `file`, or nullopt when it does not exist.
inline std::optional<std::string> read_whole_file(const std::filesystem::path& file, std::error_code code,
                                                  std::string_view what) {
  unique_fd fd(sys::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    throw file_error(code, what, file, "open", errno);
  }
  std::string text;
  char buffer[8192];
  for (;;) {
    const auto got = sys::read(fd.get(), buffer, sizeof buffer, file.c_str());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw file_error(code, what, file, "read", errno);
    if (got == 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  return text;
}

/// fsyncs a directory, so that names created or renamed in it are durable.
inline void fsync_directory(const std::filesystem::path& folder, std::error_code code, std::string_view what) {
  const auto& name = folder.empty() ? std::filesystem::path(".") : folder;
  unique_fd fd(sys::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw file_error(code, what, name, "open", errno);
  if (sys::fsync(fd.get(), name.c_str()) != 0) throw file_error(code, what, name, "fsync", errno);
}

/// Makes `folder` and any missing parents, each made durable in its parent
/// (a file's fsync does not persist the folders leading to it).
inline void make_directories(const std::filesystem::path& folder, std::error_code code, std::string_view what) {
  struct stat info {};
  if (::stat(folder.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) return;
  if (folder.has_parent_path() && folder.parent_path() != folder) make_directories(folder.parent_path(), code, what);
  if (sys::mkdir(folder.c_str(), 0755) != 0 && errno != EEXIST) throw file_error(code, what, folder, "mkdir", errno);
  fsync_directory(folder.parent_path(), code, what);
}

/// Writes `bytes` to a new temporary file next to `file` and fsyncs it.
/// Returns the temporary's path; the caller renames or links it into place.
inline std::filesystem::path write_temporary(const std::filesystem::path& file, std::string_view bytes,
                                             std::error_code code, std::string_view what,
                                             std::string_view temporary_suffix = ".tmp") {
  auto temporary = file;
  temporary += std::string(temporary_suffix);
  unique_fd fd(sys::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw file_error(code, what, temporary, "open", errno);
  const auto fail = [&](const char* action) {
    const int error_number = errno;
    fd.reset();
    sys::unlink(temporary.c_str());
    throw file_error(code, what, temporary, action, error_number);
  };
  if (!write_all(fd.get(), bytes, temporary)) fail("write");
  if (sys::fsync(fd.get(), temporary.c_str()) != 0) fail("fsync");
  if (::close(fd.release()) != 0) {
    const int error_number = errno;
    sys::unlink(temporary.c_str());
    throw file_error(code, what, temporary, "close", error_number);
  }
  return temporary;
}

/// Replaces `file` with `bytes` so that a crash leaves either the old or the
/// new content, never a mix: temporary file, fsync, rename, fsync folder.
inline void write_file_atomically(const std::filesystem::path& file, std::string_view bytes, std::error_code code,
                                  std::string_view what) {
  const auto temporary = write_temporary(file, bytes, code, what);
  if (sys::rename(temporary.c_str(), file.c_str()) != 0) {
    const int error_number = errno;
    sys::unlink(temporary.c_str());
    throw file_error(code, what, file, "rename", error_number);
  }
  fsync_directory(file.parent_path(), code, what);
}

}  // namespace storewatch::detail
