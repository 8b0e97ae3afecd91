// CosineAnnealingWarmRestarts: PyTorch's SGDR schedule, value for value.
//   lr = eta_min + (base - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
// Per epoch, each epoch end is a unit step (T_cur += 1; at T_i: restart and
// T_i *= T_mult). Per step, each optimizer step sets the fractional epoch
// epoch + steps_done / steps_per_epoch, as PyTorch's step(epoch) does.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include <fmt/format.h>

#include "kokoro/core/scheduler_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/schedule/interval.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro {

class CosineAnnealingWarmRestarts {
 public:
  /// T_0 = 20 epochs, T_mult = 2, eta_min = 1e-6, per epoch: the reference defaults.
  CosineAnnealingWarmRestarts() : CosineAnnealingWarmRestarts(20, 2, 1e-6) {}

  /// From `training.scheduler_t0`, `scheduler_t_mult`, `min_learning_rate`
  /// and `scheduler_interval`.
  explicit CosineAnnealingWarmRestarts(const TrainingConfig& config)
      : CosineAnnealingWarmRestarts(config.training.scheduler_t0, config.training.scheduler_t_mult,
                                    config.training.min_learning_rate,
                                    parse_schedule_interval(config.training.scheduler_interval)) {}

  CosineAnnealingWarmRestarts(std::int64_t t_0, std::int64_t t_mult, double eta_min,
                              ScheduleInterval interval = ScheduleInterval::epoch)
      : t_0_(t_0), t_i_(t_0), t_mult_(t_mult), eta_min_(eta_min), interval_(interval) {
    if (t_0 <= 0)
      throw Error(fmt::format("CosineAnnealingWarmRestarts: T_0 must be > 0, got {}", t_0));
    if (t_mult < 1) {
      throw Error(fmt::format("CosineAnnealingWarmRestarts: T_mult must be >= 1, got {}", t_mult));
    }
  }

  /// The rate for a group whose base rate is `base_lr`, never below eta_min
  /// for base_lr >= eta_min.
  double lr(double base_lr) const {
    return eta_min_ + (base_lr - eta_min_) * (1 + std::cos(std::numbers::pi * t_cur_ / t_i_)) / 2;
  }

  void on_step(const ScheduleClock& clock) {
    if (interval_ != ScheduleInterval::step) return;
    if (clock.steps_per_epoch <= 0) {
      throw Error(
          "CosineAnnealingWarmRestarts: training.scheduler_interval=step needs the number of "
          "steps per epoch; the task's train_data() must be a sized range");
    }
    step(static_cast<double>(clock.epoch) +
         static_cast<double>(clock.step_in_epoch) / static_cast<double>(clock.steps_per_epoch));
  }

  void on_epoch_end(const ScheduleClock&) {
    if (interval_ == ScheduleInterval::epoch) step();
  }

  /// PyTorch's `step()`: one epoch further.
  void step() {
    last_epoch_ += 1;
    t_cur_ += 1;
    if (t_cur_ >= t_i_) {
      t_cur_ -= t_i_;
      t_i_ *= t_mult_;
    }
  }

  /// PyTorch's `step(epoch)`: jump to a (fractional) epoch.
  void step(double epoch) {
    if (epoch < 0)
      throw Error(fmt::format("CosineAnnealingWarmRestarts: epoch must be >= 0, got {}", epoch));
    if (epoch >= static_cast<double>(t_0_)) {
      if (t_mult_ == 1) {
        t_cur_ = std::fmod(epoch, static_cast<double>(t_0_));
      } else {
        // The same operations, in the same order, as PyTorch's Python.
        const auto n = static_cast<std::int64_t>(
            std::log(epoch / static_cast<double>(t_0_) * static_cast<double>(t_mult_ - 1) + 1) /
            std::log(static_cast<double>(t_mult_)));
        const std::int64_t power = integer_power(t_mult_, n);
        t_cur_ = epoch - static_cast<double>(t_0_ * (power - 1)) / static_cast<double>(t_mult_ - 1);
        t_i_ = static_cast<double>(t_0_ * power);
      }
    } else {
      t_i_ = static_cast<double>(t_0_);
      t_cur_ = epoch;
    }
    last_epoch_ = static_cast<std::int64_t>(std::floor(epoch));
  }

  double t_cur() const { return t_cur_; }
  double t_i() const { return t_i_; }
  std::int64_t last_epoch() const { return last_epoch_; }

  /// PyTorch's keys: T_0, T_i, T_mult, eta_min, T_cur, last_epoch.
  StateDict state_dict() const {
    return {{"T_0", t_0_},         {"T_i", t_i_},     {"T_mult", t_mult_},
            {"eta_min", eta_min_}, {"T_cur", t_cur_}, {"last_epoch", last_epoch_}};
  }

  void load_state_dict(const StateDict& state) {
    t_0_ = state_get<std::int64_t>(state, "T_0");
    t_i_ = state_get<double>(state, "T_i");
    t_mult_ = state_get<std::int64_t>(state, "T_mult");
    eta_min_ = state_get<double>(state, "eta_min");
    t_cur_ = state_get<double>(state, "T_cur");
    last_epoch_ = state_get<std::int64_t>(state, "last_epoch");
  }

 private:
  static std::int64_t integer_power(std::int64_t base, std::int64_t exponent) {
    std::int64_t result = 1;
    for (std::int64_t i = 0; i < exponent; ++i) result *= base;
    return result;
  }

  std::int64_t t_0_;
  double t_i_;  // an integer in PyTorch; a double here because T_cur may be fractional
  std::int64_t t_mult_;
  double eta_min_;
  double t_cur_ = 0.0;
  std::int64_t last_epoch_ = 0;
  ScheduleInterval interval_;
};

static_assert(SchedulerPolicy<CosineAnnealingWarmRestarts>);

}  // namespace kokoro
