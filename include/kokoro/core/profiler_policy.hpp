// The profiler role: phase boundaries of each training step (data, h2d,
// forward, backward, optimizer, logging). NoProfiler, the default when a
// policy bundle names none, costs nothing: `enabled` is false, so the Trainer
// compiles every hook away and never reads the clock.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <string_view>

namespace kokoro {

enum class Phase { data = 0, h2d, forward, backward, optimizer, logging, gap };
inline constexpr std::size_t kPhaseCount = 7;

inline std::string_view phase_name(Phase p) {
  constexpr std::array<std::string_view, kPhaseCount> names = {
      "data", "h2d", "forward", "backward", "optimizer", "logging", "gap"};
  return names[static_cast<std::size_t>(p)];
}

/// Profiling off: the Trainer compiles the hooks away. Also the archetype of
/// the role: a profiler has `static constexpr bool enabled`, `start(Phase)`,
/// `stop(Phase)` and `end_step()`; optionally `bool active() const` (record
/// now?) and `std::string finish(const std::filesystem::path& output_dir)`,
/// called once at the end of fit(): it may write files there and returns a
/// report for RunSummary::profile_report.
struct NoProfiler {
  static constexpr bool enabled = false;
  void start(Phase) {}
  void stop(Phase) {}
  void end_step() {}
};

template <class P>
concept ProfilerPolicy = requires(P& p, Phase phase) {
  { P::enabled } -> std::convertible_to<bool>;
  p.start(phase);
  p.stop(phase);
  p.end_step();
};

static_assert(ProfilerPolicy<NoProfiler>);

}  // namespace kokoro
