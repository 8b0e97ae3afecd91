// ConsoleLogger: progress on a stream (stdout by default). On a terminal, a
// live progress bar (percent, steps/s, samples/s, ETA, running loss) redrawn
// at most ten times a second; elsewhere (CI, log files) plain, greppable
// lines every `logging.log_every` steps. Both print a line per epoch, a
// banner, and at the end a table of the epochs.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "kokoro/core/context.hpp"
#include "kokoro/core/logger_policy.hpp"

namespace kokoro {

namespace detail {

/// "loss 0.4312 | lr 1.000e-04 | samples_per_sec 1234.5": learning rates in
/// scientific notation, throughputs with one decimal, everything else with
/// four significant digits.
inline std::string format_metrics(const Metrics& metrics) {
  std::string out;
  for (const auto& [name, value] : metrics) {
    if (!out.empty()) out += " | ";
    if (name == "lr" || name.ends_with("/lr")) {
      out += fmt::format("{} {:.3e}", name, value);
    } else if (name.ends_with("_per_sec")) {
      out += fmt::format("{} {:.1f}", name, value);
    } else {
      out += fmt::format("{} {:.4g}", name, value);
    }
  }
  return out;
}

inline std::string format_duration(double seconds) {
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace detail

class ConsoleLogger {
 public:
  enum class Mode { automatic, plain, progress };

  /// stdout; a progress bar when stdout is a terminal.
  ConsoleLogger() = default;
  explicit ConsoleLogger(std::ostream& out, Mode mode = Mode::plain) : out_(&out), mode_(mode) {}

  bool shows_progress() const { return progress_; }

  void on_train_begin(const RunContext& run) {
    epochs_ = run.epochs;
    fmt::print(*out_,
               "kokoro: training on {} ({}) with {} thread{}, {} parameters, epochs {}..{}{}\n",
               run.device, run.precision, run.threads, run.threads == 1 ? "" : "s", run.parameters,
               run.start_epoch + 1, run.epochs,
               run.max_steps > 0 ? fmt::format(", at most {} steps", run.max_steps) : "");
    out_->flush();
  }

  void on_epoch_begin(const EpochContext&) {
    epoch_start_ = Clock::now();
    epoch_samples_ = 0;
    epoch_steps_ = 0;
  }

  /// Every step: redraws the bar when it is due.
  void on_step_end(const StepContext& step) {
    ++epoch_steps_;
    epoch_samples_ += step.samples;
    if (!shows_progress()) return;
    const auto now = Clock::now();
    const bool last = step.steps_per_epoch > 0 && step.step_in_epoch == step.steps_per_epoch;
    if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    *out_ << '\r' << progress_line(step, now) << "\033[K" << std::flush;
    bar_shown_ = true;
  }

  void on_step(const StepContext& step) {
    if (const auto loss = step.metrics.get("loss")) running_loss_ = *loss;
    if (shows_progress()) return;  // the bar shows it
    const auto of = step.steps_per_epoch > 0 ? fmt::format("/{}", step.steps_per_epoch) : "";
    fmt::print(*out_, "epoch {}/{} step {}{} (global {}){} | {}\n", step.epoch + 1, epochs_,
               step.step_in_epoch, of, step.global_step, step.step_taken ? "" : " skipped",
               detail::format_metrics(step.metrics));
    out_->flush();
  }

  void on_epoch_end(const EpochContext& epoch) {
    clear_bar();
    fmt::print(*out_, "epoch {}/{} done in {:.1f} s | train: {}", epoch.epoch + 1, epochs_,
               epoch.seconds, detail::format_metrics(epoch.train));
    if (!epoch.validation.empty()) {
      fmt::print(*out_, " | validation: {}", detail::format_metrics(epoch.validation));
    }
    fmt::print(*out_, "\n");
    out_->flush();
    rows_.push_back({epoch.epoch + 1, epoch.train.get("loss"), epoch.validation.get("loss"),
                     epoch.train.get("lr"), epoch.seconds});
  }

  /// One line: the figures, then how long it took and its share of the run.
  void on_evaluation(const EvaluationContext& e) {
    clear_bar();
    std::string figures;
    for (const auto& [name, value] : e.metrics) {
      if (name.find('@') != std::string::npos || name == "clips") continue;
      figures += fmt::format("{}{} {:.4g}", figures.empty() ? "" : " | ", name, value);
    }
    std::string ceilings;
    for (const auto& [name, value] : e.metrics) {
      if (name.find('@') == std::string::npos) continue;
      ceilings += fmt::format("{}{} {:.4g}", ceilings.empty() ? "" : " | ", name, value);
    }
    fmt::print(*out_, "evaluation at step {}{}: {}\n  ceilings: {}\n  ({:.1f} s; evaluations took {:.1f}% of the time)\n",
               e.global_step, e.final ? " (final)" : "", figures, ceilings.empty() ? "-" : ceilings,
               e.seconds, 100.0 * e.share);
    out_->flush();
  }

  void on_train_end(const RunSummary& run) {
    clear_bar();
    if (!rows_.empty()) {
      fmt::print(*out_, "{:>6} {:>12} {:>12} {:>11} {:>8}\n", "epoch", "train loss", "valid loss",
                 "lr", "seconds");
      auto cell = [](const std::optional<double>& v, const char* spec) {
        return v ? fmt::format(fmt::runtime(spec), *v) : std::string("-");
      };
      for (const auto& r : rows_) {
        fmt::print(*out_, "{:>6} {:>12} {:>12} {:>11} {:>8.1f}\n", r.epoch,
                   cell(r.train_loss, "{:.4f}"), cell(r.valid_loss, "{:.4f}"), cell(r.lr, "{:.3e}"),
                   r.seconds);
      }
    }
    // Steps count the whole run; epochs and seconds this call (a resumed
    // run says how far it came from).
    const auto steps = run.global_step - run.start_step;
    fmt::print(*out_, "kokoro: finished {} epoch{} ({} steps{}{}) in {:.1f} s{}\n",
               run.epochs_completed, run.epochs_completed == 1 ? "" : "s", steps,
               run.skipped_steps > 0 ? fmt::format(", {} skipped", run.skipped_steps) : "",
               run.start_step > 0
                   ? fmt::format(", steps {}..{} of the run", run.start_step + 1, run.global_step)
                   : "",
               run.seconds,
               run.stopped_by_max_steps    ? ", stopped at training.max_steps"
               : run.stopped_by_time_limit ? ", stopped at training.max_minutes"
                                           : "");
    std::string troubles;
    auto count = [&](std::int64_t n, const char* what) {
      if (n > 0) troubles += fmt::format("{}{} {}", troubles.empty() ? "" : ", ", n, what);
    };
    count(run.nonfinite_steps, "non-finite steps not applied");
    count(run.rollbacks, "rollbacks");
    count(run.checkpoint_failures, "failed checkpoint saves");
    count(run.logger_failures, "logger failures");
    count(run.side_task_failures, "failed side tasks");
    if (!troubles.empty()) fmt::print(*out_, "kokoro: training went on through {}\n", troubles);
    if (!run.checkpoint_error.empty()) fmt::print(*out_, "kokoro: {}\n", run.checkpoint_error);
    if (!run.profile_report.empty()) fmt::print(*out_, "{}", run.profile_report);
    out_->flush();
  }

  /// Resumes and stops on the output; warnings on stderr when the output is
  /// stdout, so that they stand out from the metrics.
  void on_message(const Message& message) {
    clear_bar();
    const bool warning = message.level == Message::Level::warning;
    std::ostream& out = warning && out_ == &std::cout ? std::cerr : *out_;
    fmt::print(out, "kokoro: {}{}\n", warning ? "warning: " : "", message.text);
    out.flush();
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Row {
    std::int64_t epoch;
    std::optional<double> train_loss, valid_loss, lr;
    double seconds;
  };

  std::string progress_line(const StepContext& step, Clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
    const double rate = elapsed > 0 ? epoch_steps_ / elapsed : 0.0;
    std::string line = fmt::format("epoch {}/{} ", step.epoch + 1, epochs_);
    if (step.steps_per_epoch > 0) {
      constexpr int width = 24;
      const double done = static_cast<double>(step.step_in_epoch) / step.steps_per_epoch;
      const int filled = static_cast<int>(done * width);
      line +=
          fmt::format("{:3.0f}% [{}{}] {}/{} ", 100 * done, std::string(filled, '#'),
                      std::string(width - filled, '.'), step.step_in_epoch, step.steps_per_epoch);
      if (rate > 0) {
        line += fmt::format(
            "ETA {} ", detail::format_duration((step.steps_per_epoch - step.step_in_epoch) / rate));
      }
    } else {
      line += fmt::format("step {} ", step.step_in_epoch);
    }
    line += fmt::format("| {:.2f} steps/s | {:.1f} samples/s", rate,
                        elapsed > 0 ? epoch_samples_ / elapsed : 0.0);
    if (running_loss_) line += fmt::format(" | loss {:.4f}", *running_loss_);
    return line;
  }

  void clear_bar() {
    if (!bar_shown_) return;
    *out_ << "\r\033[K";
    bar_shown_ = false;
  }

  std::ostream* out_ = &std::cout;
  Mode mode_ = Mode::automatic;
  // Decided once: on_step_end runs every step and should not make a system call.
  bool progress_ = mode_ == Mode::progress || (mode_ == Mode::automatic && ::isatty(STDOUT_FILENO));
  std::int64_t epochs_ = 0;
  Clock::time_point epoch_start_ = Clock::now();
  Clock::time_point last_draw_{};
  std::int64_t epoch_samples_ = 0;
  std::int64_t epoch_steps_ = 0;
  std::optional<double> running_loss_;
  bool bar_shown_ = false;
  std::vector<Row> rows_;
};

static_assert(LoggerPolicy<ConsoleLogger>);

}  // namespace kokoro
