// ScheduleInterval: whether a schedule advances once per epoch or once per
// optimizer step (`training.scheduler_interval`).
#pragma once

#include <string_view>

#include "kokoro/util/errors.hpp"

namespace kokoro {

enum class ScheduleInterval { epoch, step };

/// "epoch" or "step"; throws kokoro::Error otherwise.
inline ScheduleInterval parse_schedule_interval(std::string_view name) {
  if (name == "epoch") return ScheduleInterval::epoch;
  if (name == "step") return ScheduleInterval::step;
  throw Error("training.scheduler_interval: must be one of: epoch, step");
}

}  // namespace kokoro
