// Graceful stop: while a StopSignalGuard lives, SIGINT and SIGTERM only set a
// flag that the Trainer reads after each step (it then saves and returns).
// Any second one (the same again, or the other) ends the process at once, the
// way that signal would have. The previous handlers come back when the guard
// goes.
#pragma once

#include <atomic>
#include <csignal>

namespace kokoro {

namespace detail {
inline std::atomic<int>& pending_stop_signal() {
  static std::atomic<int> signal{0};
  return signal;
}
inline void on_stop_signal(int signal) {
  if (pending_stop_signal().exchange(signal) != 0) {
    std::signal(signal, SIG_DFL);  // asked twice: stop now
    std::raise(signal);
  }
}
}  // namespace detail

/// The signal that asked to stop (SIGINT or SIGTERM), or 0.
inline int stop_requested() { return detail::pending_stop_signal().load(); }

class StopSignalGuard {
 public:
  StopSignalGuard() {
    detail::pending_stop_signal().store(0);
    struct sigaction action {};
    action.sa_handler = detail::on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
  }
  ~StopSignalGuard() {
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

}  // namespace kokoro
