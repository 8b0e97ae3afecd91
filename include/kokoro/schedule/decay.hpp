// Rate decays that count epochs or optimizer steps (`training.scheduler_interval`):
//   InverseSqrtLR  base * min(1, sqrt(W / s))   (with LinearWarmup over W: Noam)
//   StepLR         base * gamma^floor(t / step_size)
//   ExponentialLR  base * gamma^t
// where s is the 1-based index of the next optimizer step and t counts the
// units (epochs or steps) completed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include "kokoro/core/scheduler_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/schedule/interval.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro {

namespace detail {

/// Counts epochs or steps, as the interval says; saves as PyTorch's last_epoch.
class UnitCounter {
 public:
  explicit UnitCounter(ScheduleInterval interval = ScheduleInterval::epoch) : interval_(interval) {}
  void on_step() {
    if (interval_ == ScheduleInterval::step) ++units_;
  }
  void on_epoch_end() {
    if (interval_ == ScheduleInterval::epoch) ++units_;
  }
  std::int64_t units() const { return units_; }
  void set_units(std::int64_t units) { units_ = units; }

 private:
  ScheduleInterval interval_;
  std::int64_t units_ = 0;
};

}  // namespace detail

/// The inverse-square-root decay of "Attention Is All You Need", normalised
/// so that the rate peaks at the base rate after `warmup_steps`. Flat before
/// that: put LinearWarmup in front for the ramp (ScheduleFromConfig does).
class InverseSqrtLR {
 public:
  InverseSqrtLR() : InverseSqrtLR(4000) {}
  explicit InverseSqrtLR(const TrainingConfig& config)
      : InverseSqrtLR(config.training.warmup_steps) {}
  explicit InverseSqrtLR(std::int64_t warmup_steps) : warmup_steps_(warmup_steps) {
    if (warmup_steps <= 0) {
      throw Error(fmt::format("InverseSqrtLR: warmup_steps must be > 0, got {}", warmup_steps));
    }
  }

  double lr(double base_lr) const {
    const auto s = static_cast<double>(steps_ + 1);
    return base_lr * std::min(1.0, std::sqrt(static_cast<double>(warmup_steps_) / s));
  }
  void on_step(const ScheduleClock&) { ++steps_; }
  void on_epoch_end(const ScheduleClock&) {}

  StateDict state_dict() const { return {{"warmup_steps", warmup_steps_}, {"last_epoch", steps_}}; }
  void load_state_dict(const StateDict& state) {
    warmup_steps_ = state_get<std::int64_t>(state, "warmup_steps");
    steps_ = state_get<std::int64_t>(state, "last_epoch");
  }

 private:
  std::int64_t warmup_steps_;
  std::int64_t steps_ = 0;
};

/// PyTorch's StepLR: the rate times gamma every `step_size` units.
class StepLR {
 public:
  StepLR() : StepLR(10, 0.5) {}
  explicit StepLR(const TrainingConfig& config)
      : StepLR(config.training.scheduler_step_size, config.training.scheduler_gamma,
               parse_schedule_interval(config.training.scheduler_interval)) {}
  StepLR(std::int64_t step_size, double gamma, ScheduleInterval interval = ScheduleInterval::epoch)
      : step_size_(step_size), gamma_(gamma), counter_(interval) {
    if (step_size <= 0)
      throw Error(fmt::format("StepLR: step_size must be > 0, got {}", step_size));
  }

  double lr(double base_lr) const {
    return base_lr * std::pow(gamma_, static_cast<double>(counter_.units() / step_size_));
  }
  void on_step(const ScheduleClock&) { counter_.on_step(); }
  void on_epoch_end(const ScheduleClock&) { counter_.on_epoch_end(); }

  StateDict state_dict() const {
    return {{"step_size", step_size_}, {"gamma", gamma_}, {"last_epoch", counter_.units()}};
  }
  void load_state_dict(const StateDict& state) {
    step_size_ = state_get<std::int64_t>(state, "step_size");
    gamma_ = state_get<double>(state, "gamma");
    counter_.set_units(state_get<std::int64_t>(state, "last_epoch"));
  }

 private:
  std::int64_t step_size_;
  double gamma_;
  detail::UnitCounter counter_;
};

/// PyTorch's ExponentialLR: the rate times gamma every unit.
class ExponentialLR {
 public:
  ExponentialLR() : ExponentialLR(0.95) {}
  explicit ExponentialLR(const TrainingConfig& config)
      : ExponentialLR(config.training.scheduler_gamma,
                      parse_schedule_interval(config.training.scheduler_interval)) {}
  explicit ExponentialLR(double gamma, ScheduleInterval interval = ScheduleInterval::epoch)
      : gamma_(gamma), counter_(interval) {}

  double lr(double base_lr) const {
    return base_lr * std::pow(gamma_, static_cast<double>(counter_.units()));
  }
  void on_step(const ScheduleClock&) { counter_.on_step(); }
  void on_epoch_end(const ScheduleClock&) { counter_.on_epoch_end(); }

  StateDict state_dict() const { return {{"gamma", gamma_}, {"last_epoch", counter_.units()}}; }
  void load_state_dict(const StateDict& state) {
    gamma_ = state_get<double>(state, "gamma");
    counter_.set_units(state_get<std::int64_t>(state, "last_epoch"));
  }

 private:
  double gamma_;
  detail::UnitCounter counter_;
};

static_assert(SchedulerPolicy<InverseSqrtLR>);
static_assert(SchedulerPolicy<StepLR>);
static_assert(SchedulerPolicy<ExponentialLR>);

}  // namespace kokoro
