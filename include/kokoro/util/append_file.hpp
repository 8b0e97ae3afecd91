// AppendFile: a log file that grows by whole records only. Each append is
// written with one write(2) loop straight to the file (no stream buffer that
// could flush half a record later); when it fails (a full disk, a file-size
// limit) the part that did get written is cut off again, so readers never
// meet a torn line or event. The file is opened on first use and again after
// a failure to open, so a folder that could not be made, or a disk that
// filled up, is retried with the next record instead of silencing the log.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro {

class AppendFile {
 public:
  AppendFile() = default;
  explicit AppendFile(std::filesystem::path path) : path_(std::move(path)) {}
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  AppendFile(AppendFile&& other) noexcept { *this = std::move(other); }
  AppendFile& operator=(AppendFile&& other) noexcept {
    if (this != &other) {
      close();
      path_ = std::move(other.path_);
      fd_ = other.fd_;
      failed_ = other.failed_;
      other.fd_ = -1;
    }
    return *this;
  }
  ~AppendFile() { close(); }

  const std::filesystem::path& path() const { return path_; }
  /// Records that could not be written (each also threw).
  std::int64_t failed_appends() const { return failed_; }

  /// Appends `bytes` whole, or not at all. Throws kokoro::Error naming the
  /// file and the cause when it cannot; the next call tries again.
  void append(std::string_view bytes) {
    if (path_.empty()) return;
    open_if_needed();
    struct stat before {};
    const bool sized = ::fstat(fd_, &before) == 0;
    const char* data = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, data, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int error = n < 0 ? errno : ENOSPC;
        if (sized) {
          while (::ftruncate(fd_, before.st_size) != 0 && errno == EINTR) {
          }
        }
        ++failed_;
        throw Error(fmt::format("{}: could not append: {}", path_.string(), std::strerror(error)));
      }
      data += n;
      left -= static_cast<std::size_t>(n);
    }
  }

 private:
  void open_if_needed() {
    if (fd_ >= 0) return;
    std::error_code ec;
    if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path(), ec);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      ++failed_;
      throw Error(fmt::format("{}: cannot open for writing: {}", path_.string(),
                              ec ? ec.message() : std::string(std::strerror(errno))));
    }
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::filesystem::path path_;
  int fd_ = -1;
  std::int64_t failed_ = 0;
};

}  // namespace kokoro
