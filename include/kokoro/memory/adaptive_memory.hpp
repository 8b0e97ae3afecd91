// AdaptiveMemory: watches memory pressure after every step and asks for a
// cleanup more often as pressure rises. Reading memory costs a few
// microseconds, so at low and moderate pressure it reads at most every
// `read_interval` (0.1 s); at high and critical pressure, every step.
//
//   level      cleanup (release cached device memory / trim the heap)
//   low        never
//   moderate   every `hardware.cleanup_every_moderate` steps (100)
//   high       every `hardware.cleanup_every_high` steps (10)
//   critical   every `hardware.cleanup_every_critical` steps (1)
//
// Reports memory/level, memory/used_share, memory/cleanups,
// memory/cleanup_seconds and memory/overhead_pct (reading + cleanup time as a
// share of training time) to the loggers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "kokoro/core/context.hpp"
#include "kokoro/core/make_policy.hpp"
#include "kokoro/core/memory_policy.hpp"
#include "kokoro/core/metrics.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/memory/pressure.hpp"
#include "kokoro/memory/readers.hpp"

namespace kokoro {

struct AdaptiveMemoryOptions {
  bool enabled = true;
  PressureThresholds thresholds;  ///< from the reader's profile unless set in the config
  std::int64_t cleanup_every_moderate = 100;
  std::int64_t cleanup_every_high = 10;
  std::int64_t cleanup_every_critical = 1;
  std::chrono::nanoseconds read_interval = std::chrono::milliseconds(100);
};

template <class Reader = AutoMemoryReader>
class AdaptiveMemory {
 public:
  using Clock = std::chrono::steady_clock;

  AdaptiveMemory() : AdaptiveMemory(Reader{}) {}

  /// Thresholds from `hardware.memory_moderate/_high/_critical` (0: the
  /// device's profile), intervals from `hardware.cleanup_every_*`, on/off
  /// from `hardware.memory_management`.
  explicit AdaptiveMemory(const TrainingConfig& config) : reader_(make_policy<Reader>(config)) {
    options_ = options_from(config, reader_.profile());
  }

  explicit AdaptiveMemory(Reader reader,
                          std::optional<AdaptiveMemoryOptions> options = std::nullopt)
      : reader_(std::move(reader)) {
    if (options) {
      options_ = *options;
    } else {
      options_.thresholds = reader_.profile();
    }
  }

  MemoryAction after_step(const StepContext&) {
    if (!options_.enabled) return MemoryAction::none;
    const auto now = Clock::now();
    if (steps_ == 0) started_ = now;
    ++steps_;
    const bool urgent = level_ >= PressureLevel::high;
    if (urgent || steps_ == 1 || now - last_read_ >= options_.read_interval) {
      reading_ = reader_.read();
      level_ = options_.thresholds.classify(reading_.share());
      last_read_ = Clock::now();
      read_seconds_ += std::chrono::duration<double>(last_read_ - now).count();
    }
    const auto every = cleanup_interval(level_);
    if (every > 0 && ++since_cleanup_ >= every) {
      since_cleanup_ = 0;
      return MemoryAction::release_cache;
    }
    if (every == 0) since_cleanup_ = 0;
    return MemoryAction::none;
  }

  /// The Trainer reports each cleanup it carried out and how long it took.
  void on_cleanup(double seconds) {
    ++cleanups_;
    cleanup_seconds_ += seconds;
  }

  void metrics(Metrics& m) const {
    if (!options_.enabled) return;
    m.set("memory/level", static_cast<double>(level_));
    m.set("memory/used_share", reading_.share());
    m.set("memory/cleanups", static_cast<double>(cleanups_));
    m.set("memory/cleanup_seconds", cleanup_seconds_);
    m.set("memory/overhead_pct", overhead_percent());
  }

  PressureLevel level() const { return level_; }

  /// The last reading (taken now before the first step, after_step's own
  /// reading from then on), with pressure at the high level and above; −1
  /// where the reader cannot tell. The Trainer asks after every step, so this
  /// reads nothing itself once stepping has begun.
  MemoryState memory_state() {
    if (options_.enabled && steps_ == 0 && !reading_.known()) reading_ = reader_.read();
    MemoryState state;
    if (reading_.known()) {
      state.used_bytes = reading_.used_bytes;
      state.total_bytes = reading_.total_bytes;
    }
    state.pressure = options_.enabled && level_ >= PressureLevel::high;
    return state;
  }
  std::int64_t cleanups() const { return cleanups_; }
  const AdaptiveMemoryOptions& options() const { return options_; }
  Reader& reader() { return reader_; }

  /// Reading and cleanup time as a percentage of the time since the first step.
  double overhead_percent() const {
    if (steps_ == 0) return 0.0;
    const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
    return elapsed > 0 ? 100.0 * (read_seconds_ + cleanup_seconds_) / elapsed : 0.0;
  }

 private:
  static AdaptiveMemoryOptions options_from(const TrainingConfig& config,
                                            PressureThresholds profile) {
    const auto& h = config.hardware;
    AdaptiveMemoryOptions o;
    o.enabled = h.memory_management;
    o.thresholds = profile;
    if (h.memory_moderate > 0) o.thresholds.moderate = h.memory_moderate;
    if (h.memory_high > 0) o.thresholds.high = h.memory_high;
    if (h.memory_critical > 0) o.thresholds.critical = h.memory_critical;
    o.cleanup_every_moderate = h.cleanup_every_moderate;
    o.cleanup_every_high = h.cleanup_every_high;
    o.cleanup_every_critical = h.cleanup_every_critical;
    return o;
  }

  std::int64_t cleanup_interval(PressureLevel level) const {
    switch (level) {
      case PressureLevel::low:
        return 0;
      case PressureLevel::moderate:
        return options_.cleanup_every_moderate;
      case PressureLevel::high:
        return options_.cleanup_every_high;
      case PressureLevel::critical:
        return options_.cleanup_every_critical;
    }
    return 0;
  }

  Reader reader_;
  AdaptiveMemoryOptions options_;
  MemoryReading reading_;
  PressureLevel level_ = PressureLevel::low;
  std::int64_t steps_ = 0;
  std::int64_t since_cleanup_ = 0;
  std::int64_t cleanups_ = 0;
  double cleanup_seconds_ = 0.0;
  double read_seconds_ = 0.0;
  Clock::time_point started_{};
  Clock::time_point last_read_{};
};

static_assert(MemoryPolicy<AdaptiveMemory<>>);

}  // namespace kokoro
