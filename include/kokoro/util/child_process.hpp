// A helper program run beside kokoro and talked to over one socket: its
// standard input and output are one end of a socketpair, its standard error
// goes to an unlinked temporary file whose end is quoted when it fails.
// Written here because the C++ standard library has no process API and
// kokoro needs what a plain popen() lacks: both directions at once, a
// deadline on every read and write (a helper that hangs must not hang
// training), and no SIGPIPE when the helper has died (a socket written with
// MSG_NOSIGNAL reports EPIPE instead of killing the trainer, which a pipe
// cannot do without touching the process's signal handling).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

extern char** environ;

namespace kokoro {

/// One running helper program. Not copyable; the destructor closes the
/// socket (the helper sees the end of its input), waits a moment for it to
/// leave, then kills its process group.
class ChildProcess {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  /// Starts `argv` (argv[0] looked up on PATH when it has no '/'). `name`
  /// is how errors refer to it.
  ChildProcess(std::string name, const std::vector<std::string>& argv) : name_(std::move(name)) {
    if (argv.empty()) throw Error(fmt::format("{}: no program to start", name_));
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      const int e = errno;
      throw Error(fmt::format("{}: socketpair failed: {}", name_, std::strerror(e)));
    }
    socket_ = fds[0];
    const int theirs = fds[1];
    std::error_code no_tmp;
    auto tmp = std::filesystem::temp_directory_path(no_tmp);
    if (no_tmp) tmp = "/tmp";
    std::string pattern = (tmp / "kokoro-child-XXXXXX").string();
    stderr_ = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (stderr_ < 0) {
      const int e = errno;
      ::close(socket_);
      ::close(theirs);
      throw Error(fmt::format("{}: no temporary file for its messages: {}", name_,
                              std::strerror(e)));
    }
    // Unlinked at once: read through the descriptor, gone when both close.
    ::unlink(pattern.c_str());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, theirs, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, theirs, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, stderr_, STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Nothing else of the trainer's (a checkpoint being written, a socket of
    // the process group) reaches the helper.
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
#endif
    // Its own process group, so that a Ctrl-C meant for the trainer (which
    // stops between steps) does not kill it mid-clip; no signal blocked or
    // ignored that the trainer blocks or ignores. It still leaves when the
    // trainer dies: its input ends.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (const int s : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT}) sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, static_cast<short>(POSIX_SPAWN_SETPGROUP |
                                                             POSIX_SPAWN_SETSIGMASK |
                                                             POSIX_SPAWN_SETSIGDEF));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid_, args[0], &actions, &attributes, args.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    ::close(theirs);
    if (rc != 0) {
      ::close(socket_);
      ::close(stderr_);
      pid_ = -1;
      throw Error(fmt::format("{}: could not start {}: {}", name_, argv[0], std::strerror(rc)));
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (socket_ >= 0) ::close(socket_);
    if (pid_ > 0) {
      // A helper that reads to the end of its input leaves at once; give it a
      // moment, then stop it and whatever it started.
      for (int i = 0; i < 50 && !reaped(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (!reaped()) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
    if (stderr_ >= 0) ::close(stderr_);
  }

  /// Sends `size` bytes by `deadline`; throws (quoting the helper's
  /// messages) when it has gone or stopped reading.
  void write(const void* data, std::size_t size, Deadline deadline) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      wait_for(POLLOUT, deadline, "taking its input");
      const ssize_t n = ::send(socket_, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) {
        const int e = errno;
        fail(fmt::format("could not be written to ({})", std::strerror(e)));
      }
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }
  void write(const std::string& text, Deadline deadline) {
    write(text.data(), text.size(), deadline);
  }

  /// The next line it writes, without its '\n', by `deadline`. Throws when
  /// it ends or says nothing in time (it is then stopped).
  std::string read_line(Deadline deadline) {
    for (;;) {
      if (const auto end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      wait_for(POLLIN, deadline, "answering");
      char chunk[4096];
      const ssize_t n = ::recv(socket_, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) fail("ended");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Whether it is still running.
  bool running() { return !reaped(); }

  /// The end of what it wrote to its standard error (at most `limit` bytes).
  std::string messages(std::size_t limit = 2000) const {
    std::string all;
    char chunk[4096];
    for (off_t at = 0;;) {
      const ssize_t n = ::pread(stderr_, chunk, sizeof chunk, at);
      if (n <= 0) break;
      all.append(chunk, static_cast<std::size_t>(n));
      at += n;
    }
    if (all.size() > limit) all = "..." + all.substr(all.size() - limit);
    while (!all.empty() && (all.back() == '\n' || all.back() == ' ')) all.pop_back();
    return all;
  }

 private:
  /// Waits until the socket is ready for `events`; past `deadline` the
  /// helper is stopped and named as not `doing` in time.
  void wait_for(short events, Deadline deadline, const char* doing) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(-pid_, SIGKILL);
        fail(fmt::format("was not {} in time and was stopped", doing));
      }
      pollfd p{.fd = socket_, .events = events, .revents = 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        const int e = errno;
        fail(fmt::format("could not be waited for ({})", std::strerror(e)));
      }
      if (ready > 0) return;  // ready, or hung up: the read or write says which
    }
  }

  bool reaped() {
    if (exited_) return true;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_known_ = true;
      status_ = status;
    } else if (r < 0 && errno == ECHILD) {
      exited_ = true;  // reaped elsewhere: how it ended is not known
    }
    return exited_;
  }

  [[noreturn]] void fail(const std::string& what) {
    // Let a dying helper finish writing its last words.
    for (int i = 0; i < 100 && !reaped(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::string how;
    if (status_known_ && WIFEXITED(status_)) {
      how = fmt::format(" (exit status {})", WEXITSTATUS(status_));
    } else if (status_known_ && WIFSIGNALED(status_)) {
      how = fmt::format(" (signal {})", WTERMSIG(status_));
    }
    const auto said = messages();
    throw Error(fmt::format("{} {}{}{}", name_, what, how,
                            said.empty() ? std::string{} : ":\n" + said));
  }

  std::string name_;
  pid_t pid_ = -1;
  int socket_ = -1;
  int stderr_ = -1;
  std::string buffer_;
  bool exited_ = false;
  bool status_known_ = false;
  int status_ = 0;
};

}  // namespace kokoro
