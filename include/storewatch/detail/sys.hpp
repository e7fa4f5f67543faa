// The system calls of the store, the journals and checkpoints, behind one
// seam so that tests can make them fail (tests/common/faults.hpp): an error
// number for a call on a path, short reads and writes, and a skewed clock.
// The seam is compiled only with STOREWATCH_TESTING (the library's test
// programs define it); otherwise a wrapper is the call itself.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace storewatch::detail::sys {

/// The calls a fault can be injected into.
enum class call { open, read, write, fsync, link, rename, unlink, mkdir, list, truncate };

/// What an injector decides for one call: fail it with `error` (an errno
/// value), or let it run on at most `max_bytes` (a short read or write).
struct verdict {
  int error = 0;
  std::size_t max_bytes = static_cast<std::size_t>(-1);
};

#ifdef STOREWATCH_TESTING
// The seam itself exists only in the library's own tests, which define
// STOREWATCH_TESTING; a program built without it makes the calls directly.

/// Decides the fate of each call while installed. Must be thread-safe: it
/// is asked from whatever thread makes the call.
class fault_injector {
 public:
  virtual ~fault_injector() = default;
  virtual verdict decide(call what, const char* path) = 0;
};

/// The installed injector, or null.
inline std::atomic<fault_injector*> injector{nullptr};
/// Added to the wall clock the store stamps versions and events with.
inline std::atomic<std::int64_t> clock_skew_ms{0};

inline verdict ask(call what, const char* path) {
  auto* const current = injector.load(std::memory_order_acquire);
  return current ? current->decide(what, path) : verdict{};
}

inline std::chrono::milliseconds clock_skew() {
  return std::chrono::milliseconds(clock_skew_ms.load(std::memory_order_relaxed));
}
#else
constexpr verdict ask(call, const char*) noexcept { return {}; }
constexpr std::chrono::milliseconds clock_skew() noexcept { return {}; }
#endif

/// The wall clock, to the millisecond, as the store and the sources stamp it.
inline std::chrono::sys_time<std::chrono::milliseconds> now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()) + clock_skew();
}

// Each wrapper behaves as the POSIX call (-1 and errno on failure); `path`
// names the file for the injector (for fd calls, the file the fd is open on).

inline int open(const char* path, int flags, mode_t mode = 0) {
  if (const auto v = ask(call::open, path); v.error) return errno = v.error, -1;
  return ::open(path, flags, mode);
}

inline ssize_t pread(int fd, void* buffer, std::size_t size, off_t offset, const char* path) {
  const auto v = ask(call::read, path);
  if (v.error) return errno = v.error, -1;
  return ::pread(fd, buffer, std::min(size, v.max_bytes), offset);
}

inline ssize_t read(int fd, void* buffer, std::size_t size, const char* path) {
  const auto v = ask(call::read, path);
  if (v.error) return errno = v.error, -1;
  return ::read(fd, buffer, std::min(size, v.max_bytes));
}

inline ssize_t write(int fd, const void* data, std::size_t size, const char* path) {
  const auto v = ask(call::write, path);
  if (v.error) return errno = v.error, -1;
  return ::write(fd, data, std::min(size, v.max_bytes));
}

inline ssize_t pwrite(int fd, const void* data, std::size_t size, off_t offset, const char* path) {
  const auto v = ask(call::write, path);
  if (v.error) return errno = v.error, -1;
  return ::pwrite(fd, data, std::min(size, v.max_bytes), offset);
}

inline int fsync(int fd, const char* path) {
  if (const auto v = ask(call::fsync, path); v.error) return errno = v.error, -1;
  return ::fsync(fd);
}

inline int ftruncate(int fd, off_t size, const char* path) {
  if (const auto v = ask(call::truncate, path); v.error) return errno = v.error, -1;
  return ::ftruncate(fd, size);
}

inline int link(const char* from, const char* to) {
  if (const auto v = ask(call::link, to); v.error) return errno = v.error, -1;
  return ::link(from, to);
}

inline int rename(const char* from, const char* to) {
  if (const auto v = ask(call::rename, to); v.error) return errno = v.error, -1;
  return ::rename(from, to);
}

inline int unlink(const char* path) {
  if (const auto v = ask(call::unlink, path); v.error) return errno = v.error, -1;
  return ::unlink(path);
}

inline int mkdir(const char* path, mode_t mode) {
  if (const auto v = ask(call::mkdir, path); v.error) return errno = v.error, -1;
  return ::mkdir(path, mode);
}

/// One entry of a folder listing.
struct entry {
  std::string name;
  bool directory = false;
};

/// The entries of `folder` (without "." and ".."), unsorted; sets `ec`
/// (and returns what was read) when it cannot be listed.
inline std::vector<entry> list(const std::filesystem::path& folder, std::error_code& ec) {
  std::vector<entry> entries;
  ec.clear();
  if (const auto v = ask(call::list, folder.c_str()); v.error) {
    ec.assign(v.error, std::generic_category());
    return entries;
  }
  DIR* const listing = ::opendir(folder.c_str());
  if (!listing) {
    ec.assign(errno, std::generic_category());
    return entries;
  }
  for (;;) {
    errno = 0;
    const dirent* const d = ::readdir(listing);
    if (!d) {
      if (errno != 0) ec.assign(errno, std::generic_category());
      break;
    }
    const std::string_view name(d->d_name);
    if (name == "." || name == "..") continue;
    bool directory = d->d_type == DT_DIR;
    if (d->d_type == DT_UNKNOWN) {
      struct stat info {};
      directory = ::fstatat(::dirfd(listing), d->d_name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(info.st_mode);
    }
    entries.push_back({std::string(name), directory});
  }
  ::closedir(listing);
  return entries;
}

}  // namespace storewatch::detail::sys
