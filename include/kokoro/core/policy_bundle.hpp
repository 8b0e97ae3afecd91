// What a policy bundle is: a struct naming one type per role (device,
// scaler, memory, scheduler, logger, checkpoints; profiler and distribution
// optional), and the
// check that names the missing role or member. The bundle of defaults,
// kokoro::DefaultPolicies, is in kokoro/trainer.hpp.
#pragma once

#include "kokoro/core/checkpoint_policy.hpp"
#include "kokoro/core/device_policy.hpp"
#include "kokoro/core/distribution_policy.hpp"
#include "kokoro/core/grad_scaler_policy.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/memory_policy.hpp"
#include "kokoro/core/profiler_policy.hpp"
#include "kokoro/core/scheduler_policy.hpp"

namespace kokoro {

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
struct distribution_of {
  using type = SingleProcess;
};
template <class P>
requires requires { typename P::distribution; }
struct distribution_of<P> {
  using type = typename P::distribution;
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
template <class P>
concept names_checkpoints = requires {
  typename P::checkpoints;
};
}  // namespace detail

/// Fails to compile, naming the missing role or member, when P is not a
/// usable policy bundle.
template <class P>
constexpr bool check_policies() {
  static_assert(detail::names_device<P>,
                "kokoro: the policy bundle has no `device` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/trainer.hpp)");
  static_assert(detail::names_scaler<P>,
                "kokoro: the policy bundle has no `scaler` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/trainer.hpp)");
  static_assert(detail::names_memory<P>,
                "kokoro: the policy bundle has no `memory` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/trainer.hpp)");
  static_assert(detail::names_scheduler<P>,
                "kokoro: the policy bundle has no `scheduler` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/trainer.hpp)");
  static_assert(detail::names_logger<P>,
                "kokoro: the policy bundle has no `logger` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/trainer.hpp)");
  static_assert(detail::names_checkpoints<P>,
                "kokoro: the policy bundle has no `checkpoints` type; derive it from "
                "kokoro::DefaultPolicies (see kokoro/trainer.hpp)");
  if constexpr (detail::names_device<P> && detail::names_scaler<P> && detail::names_memory<P> &&
                detail::names_scheduler<P> && detail::names_logger<P> &&
                detail::names_checkpoints<P>) {
    return check_device_policy<typename P::device>() &&
           check_grad_scaler_policy<typename P::scaler>() &&
           check_memory_policy<typename P::memory>() &&
           check_scheduler_policy<typename P::scheduler>() &&
           check_logger_policy<typename P::logger>() &&
           check_checkpoint_policy<typename P::checkpoints>() &&
           check_distribution_policy<typename detail::distribution_of<P>::type>();
  }
  return true;
}

}  // namespace kokoro
