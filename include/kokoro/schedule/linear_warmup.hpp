// LinearWarmup<Inner>: a linear ramp in front of any schedule. The rate of
// optimizer step s (1-based) is inner.lr(base) * min(1, s / warmup_steps);
// the inner schedule runs unchanged underneath.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "kokoro/core/make_policy.hpp"
#include "kokoro/core/scheduler_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro {

template <SchedulerPolicy Inner>
class LinearWarmup {
 public:
  LinearWarmup() = default;

  /// Ramp over `training.warmup_steps`; the inner schedule from the config too.
  explicit LinearWarmup(const TrainingConfig& config)
      : LinearWarmup(config.training.warmup_steps, make_policy<Inner>(config)) {}

  LinearWarmup(std::int64_t warmup_steps, Inner inner)
      : warmup_steps_(warmup_steps), inner_(std::move(inner)) {
    if (warmup_steps < 0) {
      throw Error(fmt::format("LinearWarmup: warmup_steps must be >= 0, got {}", warmup_steps));
    }
  }

  double lr(double base_lr) const { return inner_.lr(base_lr) * factor(); }

  /// The ramp's factor for the next step: min(1, s / warmup_steps).
  double factor() const {
    if (warmup_steps_ == 0) return 1.0;
    return std::min(1.0, static_cast<double>(steps_ + 1) / static_cast<double>(warmup_steps_));
  }

  void on_step(const ScheduleClock& clock) {
    ++steps_;
    inner_.on_step(clock);
  }
  void on_epoch_end(const ScheduleClock& clock) { inner_.on_epoch_end(clock); }

  Inner& inner() { return inner_; }
  const Inner& inner() const { return inner_; }

  /// warmup_steps, steps, and the inner schedule's keys under "inner.".
  StateDict state_dict() const {
    StateDict state{{"warmup_steps", warmup_steps_}, {"steps", steps_}};
    if constexpr (requires { inner_.state_dict(); }) {
      for (const auto& [key, value] : inner_.state_dict()) state["inner." + key] = value;
    }
    return state;
  }

  void load_state_dict(const StateDict& state) {
    warmup_steps_ = state_get<std::int64_t>(state, "warmup_steps");
    steps_ = state_get<std::int64_t>(state, "steps");
    if constexpr (requires(const StateDict& s) { inner_.load_state_dict(s); }) {
      StateDict inner;
      for (const auto& [key, value] : state) {
        if (key.starts_with("inner.")) inner[key.substr(6)] = value;
      }
      inner_.load_state_dict(inner);
    }
  }

 private:
  std::int64_t warmup_steps_ = 0;
  std::int64_t steps_ = 0;
  Inner inner_{};
};

}  // namespace kokoro
