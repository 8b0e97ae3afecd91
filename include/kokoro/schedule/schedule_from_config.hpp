// ScheduleFromConfig: the schedule that `training.scheduler` names, with
// `training.warmup_steps` of linear warmup in front: the default scheduler
// policy, so a YAML file or a command line picks the schedule of a run.
#pragma once

#include <string>
#include <variant>

#include <fmt/format.h>

#include "kokoro/core/scheduler_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/schedule/constant_lr.hpp"
#include "kokoro/schedule/cosine_warm_restarts.hpp"
#include "kokoro/schedule/decay.hpp"
#include "kokoro/schedule/linear_warmup.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro {

/// Any one of the shipped schedules, chosen at run time.
class AnySchedule {
 public:
  using Alternatives =
      std::variant<ConstantLR, CosineAnnealingWarmRestarts, InverseSqrtLR, StepLR, ExponentialLR>;

  AnySchedule() = default;
  explicit AnySchedule(const TrainingConfig& config)
      : name_(config.training.scheduler), schedule_(make(config)) {}

  /// The `training.scheduler` value: constant, cosine_warm_restarts,
  /// inverse_sqrt, step or exponential.
  const std::string& name() const { return name_; }
  Alternatives& alternatives() { return schedule_; }

  double lr(double base_lr) const {
    return std::visit([base_lr](const auto& s) { return s.lr(base_lr); }, schedule_);
  }
  void on_step(const ScheduleClock& clock) {
    std::visit([&clock](auto& s) { s.on_step(clock); }, schedule_);
  }
  void on_epoch_end(const ScheduleClock& clock) {
    std::visit([&clock](auto& s) { s.on_epoch_end(clock); }, schedule_);
  }

  /// The schedule's own keys plus "scheduler" (its name).
  StateDict state_dict() const {
    StateDict state = std::visit(
        [](const auto& s) -> StateDict {
          if constexpr (requires { s.state_dict(); }) {
            return s.state_dict();
          } else {
            return {};
          }
        },
        schedule_);
    state["scheduler"] = name_;
    return state;
  }

  /// Refuses a state saved by another schedule.
  void load_state_dict(const StateDict& state) {
    const auto saved = state_get<std::string>(state, "scheduler");
    if (saved != name_) {
      throw Error(fmt::format(
          "the saved learning-rate schedule is '{}' but training.scheduler is '{}'", saved, name_));
    }
    std::visit(
        [&state](auto& s) {
          if constexpr (requires { s.load_state_dict(state); }) s.load_state_dict(state);
        },
        schedule_);
  }

 private:
  static Alternatives make(const TrainingConfig& config) {
    const auto& name = config.training.scheduler;
    if (name == "constant") return ConstantLR{};
    if (name == "cosine_warm_restarts") return CosineAnnealingWarmRestarts(config);
    if (name == "inverse_sqrt") return InverseSqrtLR(config);
    if (name == "step") return StepLR(config);
    if (name == "exponential") return ExponentialLR(config);
    throw ConfigError(fmt::format(
        "training.scheduler: must be one of: constant, cosine_warm_restarts, inverse_sqrt, step, "
        "exponential (got \"{}\")",
        name));
  }

  std::string name_ = "constant";
  Alternatives schedule_;
};

/// `training.warmup_steps` of linear warmup, then `training.scheduler`.
using ScheduleFromConfig = LinearWarmup<AnySchedule>;

static_assert(SchedulerPolicy<ScheduleFromConfig>);

}  // namespace kokoro
