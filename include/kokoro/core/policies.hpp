// The default policy bundle. A user bundle derives from it and overrides only
// the roles that differ:
//   struct MyPolicies : kokoro::DefaultPolicies { using scheduler = MySchedule; };
#pragma once

#include "kokoro/amp/no_grad_scaler.hpp"
#include "kokoro/core/device_policy.hpp"
#include "kokoro/core/grad_scaler_policy.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/memory_policy.hpp"
#include "kokoro/core/scheduler_policy.hpp"
#include "kokoro/device/auto_device.hpp"
#include "kokoro/log/console_logger.hpp"
#include "kokoro/log/jsonl_logger.hpp"
#include "kokoro/log/loggers.hpp"
#include "kokoro/log/tensorboard_logger.hpp"
#include "kokoro/log/wandb_logger.hpp"
#include "kokoro/memory/adaptive_memory.hpp"
#include "kokoro/memory/no_memory_policy.hpp"
#include "kokoro/profile/interbatch_profiler.hpp"
#include "kokoro/schedule/schedule_from_config.hpp"

namespace kokoro {

/// The device `hardware.device` names (auto: CUDA, MPS, CPU), no loss
/// scaling, adaptive memory cleanup (`hardware.memory_management`), the
/// schedule `training.scheduler` names (with `training.warmup_steps` of
/// warmup), console output plus metrics.jsonl, TensorBoard files and W&B
/// streaming (switched by `logging.jsonl`, `logging.tensorboard` and
/// `logging.wandb`).
struct DefaultPolicies {
  using device = AutoDevice;
  using scaler = NoGradScaler;
  using memory = AdaptiveMemory<>;
  using scheduler = ScheduleFromConfig;
  using logger = Loggers<ConsoleLogger, JsonlLogger, TensorBoardLogger, WandbLogger>;
  using profiler = InterbatchProfiler;  // records only with logging.profile: true
};

namespace detail {
template <class P>
struct profiler_of {
  using type = NoProfiler;
};
template <class P>
requires requires { typename P::profiler; }
struct profiler_of<P> {
  using type = typename P::profiler;
};
template <class P>
concept names_device = requires {
  typename P::device;
};
template <class P>
concept names_scaler = requires {
  typename P::scaler;
};
template <class P>
concept names_memory = requires {
  typename P::memory;
};
template <class P>
concept names_scheduler = requires {
  typename P::scheduler;
};
template <class P>
concept names_logger = requires {
  typename P::logger;
};
}  // namespace detail

/// Fails to compile, naming the missing role or member, when P is not a
/// usable policy bundle.
template <class P>
constexpr bool check_policies() {
  static_assert(detail::names_device<P>,
                "kokoro: the policy bundle has no `device` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/core/policies.hpp)");
  static_assert(detail::names_scaler<P>,
                "kokoro: the policy bundle has no `scaler` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/core/policies.hpp)");
  static_assert(detail::names_memory<P>,
                "kokoro: the policy bundle has no `memory` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/core/policies.hpp)");
  static_assert(detail::names_scheduler<P>,
                "kokoro: the policy bundle has no `scheduler` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/core/policies.hpp)");
  static_assert(detail::names_logger<P>,
                "kokoro: the policy bundle has no `logger` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/core/policies.hpp)");
  if constexpr (detail::names_device<P> && detail::names_scaler<P> && detail::names_memory<P> &&
                detail::names_scheduler<P> && detail::names_logger<P>) {
    return check_device_policy<typename P::device>() &&
           check_grad_scaler_policy<typename P::scaler>() &&
           check_memory_policy<typename P::memory>() &&
           check_scheduler_policy<typename P::scheduler>() &&
           check_logger_policy<typename P::logger>();
  }
  return true;
}

static_assert(check_policies<DefaultPolicies>());

}  // namespace kokoro
