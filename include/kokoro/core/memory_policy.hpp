// The memory role: watches memory pressure after each step and answers with
// an action that the Trainer carries out on the device. Keeping the policy a
// pure decision makes it testable with injected readings.
#pragma once

#include <concepts>

#include "kokoro/core/context.hpp"

namespace kokoro {

/// What the Trainer should do about memory after a step.
enum class MemoryAction {
  none,           ///< nothing
  release_cache,  ///< hand cached, unused device memory back (the device policy knows how)
};

namespace detail::memory {
template <class M>
concept has_after_step = requires(M& m, const StepContext& ctx) {
  { m.after_step(ctx) } -> std::same_as<MemoryAction>;
};
}  // namespace detail::memory

/// A memory policy.
///  - `MemoryAction after_step(const StepContext&)`: called after every
///    optimizer step; must be cheap.
/// Optional: `void metrics(kokoro::Metrics&) const` to report what it did;
/// `kokoro::MemoryState memory_state()`: its last reading and whether
/// it sees pressure, which the Trainer passes on to the task (without it, the
/// task hears the device's reading and never of pressure).
template <class M>
concept MemoryPolicy = detail::memory::has_after_step<M>;

/// Fails to compile, naming the missing member, when M is not a MemoryPolicy.
template <class M>
constexpr bool check_memory_policy() {
  static_assert(detail::memory::has_after_step<M>,
                "kokoro: the memory policy needs "
                "`kokoro::MemoryAction after_step(const kokoro::StepContext&)` "
                "(see kokoro/core/memory_policy.hpp)");
  return true;
}

namespace archetype {

/// The smallest memory policy: copy it to start your own.
struct Memory {
  /// Decide, from the step just finished, whether memory needs attention.
  MemoryAction after_step(const StepContext&) { return MemoryAction::none; }
};
static_assert(MemoryPolicy<Memory>);

}  // namespace archetype
}  // namespace kokoro
