// HalvingLR: a scheduler policy written outside the library, the way a user
// writes one: the learning rate halves every `period` epochs.
#pragma once

#include <cmath>
#include <cstdint>

#include <kokoro/core/scheduler_policy.hpp>

namespace minimal {

class HalvingLR {
 public:
  explicit HalvingLR(std::int64_t period = 20) : period_(period) {}

  double lr(double base_lr) const {
    return base_lr * std::pow(0.5, static_cast<double>(epochs_ / period_));
  }
  void on_step(const kokoro::ScheduleClock&) {}
  void on_epoch_end(const kokoro::ScheduleClock&) { ++epochs_; }

 private:
  std::int64_t period_;
  std::int64_t epochs_ = 0;
};

static_assert(kokoro::SchedulerPolicy<HalvingLR>);

}  // namespace minimal
