// ConstantLR: every parameter group keeps its configured learning rate (the
// schedule `training.scheduler: constant` selects).
#pragma once

#include "kokoro/core/scheduler_policy.hpp"

namespace kokoro {

/// The learning rate never changes. It is the role's archetype
/// (core/scheduler_policy.hpp), shipped under a name.
struct ConstantLR : archetype::Scheduler {};

static_assert(SchedulerPolicy<ConstantLR>);

}  // namespace kokoro
