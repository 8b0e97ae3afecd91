// Writing a file so that readers see the old content or the new, never a mix:
// write a temporary file in the same directory, flush it to disk, rename it
// over the target, then flush the directory entry. A crash at any point leaves
// the previous file intact (and at worst a stray ".tmp" file, which readers
// ignore).
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro {

namespace detail {

inline void write_all(int fd, const char* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace detail

/// Flushes a directory's entries to disk (after a file in it was created or
/// renamed). Filesystems that cannot open directories are left as they are.
inline void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// Creates (or truncates) `path` with `bytes` and flushes it to disk; not
/// atomic by itself: for files in a staging folder that is renamed into
/// place afterwards. Throws kokoro::Error naming the file; a partly written
/// file is removed. `for_file`, when given, is the file the caller is
/// making (named first in errors; `path` is then its temporary).
inline void write_file_durably(const std::filesystem::path& path, std::string_view bytes,
                               const std::filesystem::path& for_file = {}) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error(for_file.empty()
                    ? fmt::format("{}: cannot create: {}", path.string(), std::strerror(errno))
                    : fmt::format("{}: cannot create {}: {}", for_file.string(), path.string(),
                                  std::strerror(errno)));
  }
  try {
    detail::write_all(fd, bytes.data(), bytes.size(), path.string());
    if (::fsync(fd) != 0) {
      throw Error(fmt::format("{}: fsync failed: {}", path.string(), std::strerror(errno)));
    }
  } catch (...) {
    ::close(fd);
    std::filesystem::remove(path);
    throw;
  }
  if (::close(fd) != 0) {
    std::filesystem::remove(path);
    throw Error(fmt::format("{}: close failed: {}", path.string(), std::strerror(errno)));
  }
}

/// Temporary files of an interrupted write start with this prefix.
inline constexpr std::string_view kTemporaryPrefix = ".tmp-";

/// Replaces `path` with `bytes` atomically and durably. Throws kokoro::Error
/// naming the file when it cannot; the previous file is then untouched.
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const auto temporary =
      dir / fmt::format("{}{}-{}", kTemporaryPrefix, ::getpid(), path.filename().string());
  write_file_durably(temporary, bytes, path);
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::filesystem::remove(temporary);
    throw Error(
        fmt::format("{}: cannot rename the new file into place: {}", path.string(), ec.message()));
  }
  sync_directory(dir);
}

/// Removes the temporaries that killed writers left in `dir`
/// (kTemporaryPrefix, then the pid of a process that no longer runs), so
/// that repeated crashes do not fill the disk. Returns how many went.
inline int remove_stray_temporaries(const std::filesystem::path& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (!name.starts_with(kTemporaryPrefix)) continue;
    const auto rest = name.substr(kTemporaryPrefix.size());
    const auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0) continue;
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(rest.substr(0, dash)));
    } catch (const std::exception&) {
      continue;
    }
    if (pid == ::getpid() || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its writer may still run
    std::error_code gone;
    if (std::filesystem::remove(entry.path(), gone)) ++removed;
  }
  return removed;
}

}  // namespace kokoro
