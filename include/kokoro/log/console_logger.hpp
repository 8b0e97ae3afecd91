// ConsoleLogger: plain, greppable progress lines on a stream (stdout by
// default): one per logged step, one per epoch, a banner and a summary.
#pragma once

#include <cstdint>
#include <iostream>
#include <ostream>
#include <string>

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

}  // namespace detail

/// Writes one line per logged step and per epoch.
class ConsoleLogger {
 public:
  ConsoleLogger() = default;
  explicit ConsoleLogger(std::ostream& out) : out_(&out) {}

  void on_train_begin(const RunContext& run) {
    epochs_ = run.epochs;
    fmt::print(*out_, "kokoro: training on {} ({}) with {} thread{}, {} parameters, epochs {}..{}{}\n",
               run.device, run.precision, run.threads, run.threads == 1 ? "" : "s", run.parameters,
               run.start_epoch + 1, run.epochs,
               run.max_steps > 0 ? fmt::format(", at most {} steps", run.max_steps) : "");
    out_->flush();
  }

  void on_step(const StepContext& step) {
    const auto of = step.steps_per_epoch > 0 ? fmt::format("/{}", step.steps_per_epoch) : "";
    fmt::print(*out_, "epoch {}/{} step {}{} (global {}){} | {}\n", step.epoch + 1, epochs_,
               step.step_in_epoch, of, step.global_step, step.step_taken ? "" : " skipped",
               detail::format_metrics(step.metrics));
    out_->flush();
  }

  void on_epoch_end(const EpochContext& epoch) {
    fmt::print(*out_, "epoch {}/{} done in {:.1f} s | train: {}", epoch.epoch + 1, epochs_,
               epoch.seconds, detail::format_metrics(epoch.train));
    if (!epoch.validation.empty()) {
      fmt::print(*out_, " | validation: {}", detail::format_metrics(epoch.validation));
    }
    fmt::print(*out_, "\n");
    out_->flush();
  }

  void on_train_end(const RunSummary& run) {
    fmt::print(*out_, "kokoro: finished {} epoch{} ({} steps{}) in {:.1f} s{}\n",
               run.epochs_completed, run.epochs_completed == 1 ? "" : "s", run.global_step,
               run.skipped_steps > 0 ? fmt::format(", {} skipped", run.skipped_steps) : "",
               run.seconds, run.stopped_by_max_steps ? ", stopped at training.max_steps" : "");
    out_->flush();
  }

 private:
  std::ostream* out_ = &std::cout;
  std::int64_t epochs_ = 0;
};

static_assert(LoggerPolicy<ConsoleLogger>);

}  // namespace kokoro
