// Interbatch profiling: where each training step's time goes.
//   data       waiting for the next batch from the task's data range
//   h2d        moving the batch to the device
//   forward    the task's loss
//   backward   backpropagation
//   optimizer  unscale, clip, step, scaler update, schedule
//   logging    metrics to loggers and periodic checkpoints
//   gap        what lies between those (the Trainer's own bookkeeping)
// InterbatchProfiler records every
// phase (synchronising the device first where the device is asynchronous),
// summarises mean/p50/p95 per phase with a verdict, and writes a Chrome trace
// that chrome://tracing and Perfetto open.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/profiler_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

/// Statistics of one phase over the steps profiled, in milliseconds.
struct PhaseStats {
  Phase phase;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0;
  double share = 0;  ///< of the mean step time
};

struct ProfileSummary {
  std::int64_t steps = 0;
  double step_ms = 0;  ///< mean step time, all phases and gaps
  std::vector<PhaseStats> phases;

  double share(Phase p) const {
    for (const auto& s : phases) {
      if (s.phase == p) return s.share;
    }
    return 0;
  }

  /// What bounds the step, and what to change.
  std::string verdict() const {
    const auto pct = [](double share) { return static_cast<int>(share * 100 + 0.5); };
    if (share(Phase::data) >= 0.20) {
      return fmt::format("input-bound: data wait {}% of step — raise data.num_workers",
                         pct(share(Phase::data)));
    }
    if (share(Phase::h2d) >= 0.15) {
      return fmt::format(
          "copy-bound: host-to-device {}% of step — pin host memory "
          "(hardware.pin_memory) or move less per batch",
          pct(share(Phase::h2d)));
    }
    if (share(Phase::logging) >= 0.05) {
      return fmt::format("logging {}% of step — raise logging.log_every or checkpoint less often",
                         pct(share(Phase::logging)));
    }
    return fmt::format("compute-bound: forward + backward {}% of step",
                       pct(share(Phase::forward) + share(Phase::backward)));
  }

  /// A table, one line a phase, and the verdict.
  std::string table() const {
    std::string out = fmt::format("profile over {} steps, {:.2f} ms a step:\n", steps, step_ms);
    out += fmt::format("  {:<10}{:>10}{:>10}{:>10}{:>8}\n", "phase", "mean ms", "p50 ms", "p95 ms",
                       "share");
    for (const auto& s : phases) {
      out += fmt::format("  {:<10}{:>10.3f}{:>10.3f}{:>10.3f}{:>7.1f}%\n", phase_name(s.phase),
                         s.mean_ms, s.p50_ms, s.p95_ms, 100 * s.share);
    }
    return out + "  verdict: " + verdict() + "\n";
  }
};

class InterbatchProfiler {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr bool enabled = true;

  InterbatchProfiler() = default;
  /// `logging.profile` switches recording on.
  explicit InterbatchProfiler(const TrainingConfig& config) : active_(config.logging.profile) {}
  explicit InterbatchProfiler(bool active) : active_(active) {}

  bool active() const { return active_; }

  void start(Phase p) {
    if (!active_) return;
    const auto now = Clock::now();
    if (last_stop_ != Clock::time_point{}) add(Phase::gap, last_stop_, now);
    open_ = now;
    open_phase_ = p;
  }

  void stop(Phase p) {
    if (!active_ || p != open_phase_ || open_ == Clock::time_point{}) return;
    const auto now = Clock::now();
    add(p, open_, now);
    open_ = Clock::time_point{};
    last_stop_ = now;
  }

  /// Closes the current step's record.
  void end_step() {
    if (!active_) return;
    steps_.push_back(current_);
    current_ = {};
  }

  ProfileSummary summary() const {
    ProfileSummary s;
    s.steps = static_cast<std::int64_t>(steps_.size());
    if (steps_.empty()) return s;
    double total = 0;
    for (const auto& step : steps_) {
      for (double d : step) total += d;
    }
    s.step_ms = 1e3 * total / steps_.size();
    for (std::size_t i = 0; i < kPhaseCount; ++i) {
      std::vector<double> values;
      for (const auto& step : steps_) values.push_back(step[i]);
      std::sort(values.begin(), values.end());
      PhaseStats ps{static_cast<Phase>(i)};
      double sum = 0;
      for (double v : values) sum += v;
      ps.mean_ms = 1e3 * sum / values.size();
      ps.p50_ms = 1e3 * values[(values.size() - 1) / 2];
      ps.p95_ms = 1e3 * values[static_cast<std::size_t>(0.95 * (values.size() - 1) + 0.5)];
      ps.share = total > 0 ? sum / total : 0;
      s.phases.push_back(ps);
    }
    return s;
  }

  /// Writes the recorded phases as Chrome trace events (JSON).
  void write_trace(const std::filesystem::path& path) const {
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path);
    out << "{\"traceEvents\":[";
    bool first = true;
    for (const auto& e : events_) {
      if (!first) out << ",";
      first = false;
      out << fmt::format(R"({{"name":"{}","ph":"X","ts":{:.3f},"dur":{:.3f},"pid":1,"tid":1}})",
                         phase_name(e.phase), e.start_us, e.duration_us);
    }
    out << "],\"displayTimeUnit\":\"ms\"}\n";
    if (!out) throw Error(fmt::format("{}: cannot write the trace", path.string()));
  }

  /// At the end of a run: writes <run directory>/profile_trace.json and returns
  /// the summary table with the trace's path; empty when nothing was
  /// recorded. A trace that cannot be written is reported, not thrown: the
  /// run's checkpoint is already safe and must not be lost to a side file.
  std::string finish(const std::filesystem::path& output_dir) const {
    const auto profile = summary();
    if (!active_ || profile.steps == 0) return {};
    const auto trace = output_dir / "profile_trace.json";
    try {
      write_trace(trace);
    } catch (const std::exception& e) {
      return fmt::format("{}  trace not written: {}\n", profile.table(), e.what());
    }
    return fmt::format("{}  trace: {} (open in Perfetto or chrome://tracing)\n", profile.table(),
                       trace.string());
  }

  /// Per-step seconds of each phase, as recorded.
  const std::vector<std::array<double, kPhaseCount>>& steps() const { return steps_; }

 private:
  struct TraceEvent {
    Phase phase;
    double start_us;
    double duration_us;
  };

  void add(Phase p, Clock::time_point from, Clock::time_point to) {
    const double seconds = std::chrono::duration<double>(to - from).count();
    current_[static_cast<std::size_t>(p)] += seconds;
    if (origin_ == Clock::time_point{}) origin_ = from;
    if (events_.size() < kMaxTraceEvents) {
      events_.push_back(
          {p, std::chrono::duration<double, std::micro>(from - origin_).count(), seconds * 1e6});
    }
  }

  static constexpr std::size_t kMaxTraceEvents = 1'000'000;  // ~40 MB of trace at most
  bool active_ = true;
  Clock::time_point open_{};
  Clock::time_point last_stop_{};
  Clock::time_point origin_{};
  Phase open_phase_ = Phase::data;
  std::array<double, kPhaseCount> current_{};
  std::vector<std::array<double, kPhaseCount>> steps_;
  std::vector<TraceEvent> events_;
};

}  // namespace kokoro
