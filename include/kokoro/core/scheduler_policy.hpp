// The scheduler role: the learning rate as a function of training counters.
// A scheduler needs no optimizer and no tensors, so it is tested with numbers.
// This header documents the role (concept, archetype, diagnostics).
#pragma once

#include <concepts>
#include <cstdint>

namespace kokoro {

/// The counters a schedule may depend on, as of the event being reported.
struct ScheduleClock {
  std::int64_t epoch = 0;            ///< 0-based epoch
  std::int64_t step_in_epoch = 0;    ///< optimizer steps taken in this epoch
  std::int64_t steps_per_epoch = 0;  ///< 0 when unknown
  std::int64_t global_step = 0;      ///< optimizer steps taken in the run
};

namespace detail::scheduler {
template <class S>
concept has_lr = requires(const S& s, double base) {
  { s.lr(base) } -> std::convertible_to<double>;
};
template <class S>
concept has_on_step = requires(S& s, const ScheduleClock& c) {
  s.on_step(c);
};
template <class S>
concept has_on_epoch_end = requires(S& s, const ScheduleClock& c) {
  s.on_epoch_end(c);
};
}  // namespace detail::scheduler

/// A learning-rate schedule.
///  - `double lr(double base_lr) const`: the rate now, for a parameter group
///    whose configured rate is `base_lr` (each group keeps its own base).
///  - `void on_step(const ScheduleClock&)`: an optimizer step was taken
///    (never called for a step the grad scaler skipped).
///  - `void on_epoch_end(const ScheduleClock&)`: an epoch ended.
/// Optional: `state_dict()` / `load_state_dict()` for checkpoints.
template <class S>
concept SchedulerPolicy = detail::scheduler::has_lr<S> && detail::scheduler::has_on_step<S> &&
    detail::scheduler::has_on_epoch_end<S>;

/// Fails to compile, naming the first missing member, when S is not a SchedulerPolicy.
template <class S>
constexpr bool check_scheduler_policy() {
  static_assert(detail::scheduler::has_lr<S>,
                "kokoro: the scheduler policy needs `double lr(double base_lr) const` "
                "(see kokoro/core/scheduler_policy.hpp)");
  static_assert(detail::scheduler::has_on_step<S>,
                "kokoro: the scheduler policy needs `void on_step(const kokoro::ScheduleClock&)` "
                "(see kokoro/core/scheduler_policy.hpp)");
  static_assert(detail::scheduler::has_on_epoch_end<S>,
                "kokoro: the scheduler policy needs "
                "`void on_epoch_end(const kokoro::ScheduleClock&)` "
                "(see kokoro/core/scheduler_policy.hpp)");
  return true;
}

namespace archetype {

/// The smallest scheduler: copy it to start your own. It may also have a
/// constructor taking `const kokoro::TrainingConfig&`; the Trainer uses it.
struct Scheduler {
  /// The rate for a group configured with `base_lr`.
  double lr(double base_lr) const { return base_lr; }
  /// Advance after an optimizer step that was taken.
  void on_step(const ScheduleClock&) {}
  /// Advance at the end of an epoch.
  void on_epoch_end(const ScheduleClock&) {}
};
static_assert(SchedulerPolicy<Scheduler>);

}  // namespace archetype
}  // namespace kokoro
