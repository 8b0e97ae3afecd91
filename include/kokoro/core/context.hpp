// The context structs handed to policy hooks. Each hook takes one of these by
// const reference, so a field added later breaks no policy. Plain data, no
// torch: loggers, schedulers and memory policies compile without libtorch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "kokoro/core/config_value.hpp"
#include "kokoro/core/metrics.hpp"

namespace kokoro {

struct TrainingConfig;

/// Once, when `Trainer::fit` starts.
struct RunContext {
  const TrainingConfig& config;  ///< the framework's sections, typed
  const ConfigValues& settings;  ///< every field of the run, the task's sections included
  std::string device;            ///< "cpu", "cuda:0", ...
  std::string precision;         ///< "float32", "bfloat16 autocast", ...
  std::int64_t parameters = 0;   ///< trainable parameters of the model
  int threads = 1;               ///< intra-op CPU threads in use
  std::int64_t start_epoch = 0;  ///< 0-based epoch the run starts (or resumes) at
  std::int64_t epochs = 0;       ///< epochs the run ends after
  std::int64_t max_steps = 0;    ///< optimizer-step limit, 0 when none
  std::int64_t start_step = 0;   ///< optimizer steps taken before (a resumed run's), else 0
  std::string run_directory{};   ///< where the run writes (<output_dir>/<run_name>)
};

/// After every optimizer step (memory policy: `metrics` is empty), and every
/// `logging.log_every` steps and at each epoch's end with the metrics filled
/// in (loggers).
struct StepContext {
  std::int64_t epoch = 0;            ///< 0-based
  std::int64_t global_step = 0;      ///< optimizer steps so far, this one included
  std::int64_t step_in_epoch = 0;    ///< 1-based position of this step in the epoch
  std::int64_t steps_per_epoch = 0;  ///< 0 when the data source cannot tell
  std::int64_t samples = 0;          ///< samples in this step (all micro-batches)
  bool step_taken = true;            ///< false when the grad scaler skipped the update
  const Metrics& metrics;            ///< running means since the last log, lr, grad_norm, ...
};

/// At the start (metrics empty) and the end of every epoch.
struct EpochContext {
  std::int64_t epoch = 0;  ///< 0-based
  std::int64_t global_step = 0;
  const Metrics& train;       ///< epoch means of the training losses and rates
  const Metrics& validation;  ///< validation means; empty when not validated
  double seconds = 0.0;       ///< wall time of the epoch
};

/// What the Trainer tells a task's optional `Metrics evaluate(const
/// EvaluationRequest&)` at the end of every epoch (and once more when a run
/// stops between epochs): the task measures its own quality when it is due
/// (its schedule and time budget are its own) and returns the figures, or
/// returns nothing.
struct EvaluationRequest {
  std::int64_t epoch = 0;  ///< 0-based: the epoch just trained
  std::int64_t global_step = 0;
  bool final = false;                ///< the run ends after this: evaluate if ever
  double training_seconds = 0.0;     ///< wall time of this invocation's training so far
  double evaluation_seconds = 0.0;   ///< of that, spent in evaluations
};

/// After the task measured its quality: its figures ("mcd", "wer", ...; a
/// name with '@' is a reference level for the figure before it, e.g.
/// "wer@recording": the same measure on the recordings themselves).
struct EvaluationContext {
  std::int64_t epoch = 0;  ///< 0-based
  std::int64_t global_step = 0;
  const Metrics& metrics;
  double seconds = 0.0;  ///< wall time of this evaluation
  double share = 0.0;    ///< evaluations' share of this invocation's wall time so far
  bool final = false;
};

/// Once, when `Trainer::fit` returns; also what it returns.
struct RunSummary {
  std::int64_t epochs_completed = 0;
  std::int64_t global_step = 0;
  std::int64_t skipped_steps = 0;  ///< steps the grad scaler skipped
  double seconds = 0.0;
  bool stopped_by_max_steps = false;
  int stop_signal = 0;                   ///< SIGINT/SIGTERM that stopped the run, or 0
  std::string checkpoint{};              ///< the last checkpoint written, if any
  Metrics last_train{};                  ///< means of the last epoch trained
  Metrics last_validation{};             ///< means of the last validation; empty when none
  bool stopped_by_time_limit = false;    ///< training.max_minutes ran out
  std::string profile_report{};          ///< the profiler's summary, when it recorded
  std::int64_t nonfinite_steps = 0;      ///< steps not applied: non-finite loss or gradient
  std::int64_t rollbacks = 0;            ///< returns to the last good checkpoint after those
  std::int64_t checkpoint_failures = 0;  ///< saves that failed (the last good file kept)
  std::int64_t logger_failures = 0;      ///< logger calls that threw (training went on)
  std::int64_t side_task_failures = 0;   ///< samples, reports or traces that failed
  /// Non-empty when the run's last state could not be saved: what failed and
  /// which checkpoint is the last good one. A program should exit non-zero.
  std::string checkpoint_error{};
  std::string run_directory{};  ///< where the run wrote (<output_dir>/<run_name>)
  std::int64_t start_step = 0;  ///< the step this call started from (a resumed run's)
  Metrics last_evaluation{};    ///< the task's last quality figures; empty when none
  double evaluation_share = 0.0;  ///< evaluations' share of this call's wall time
};

/// What the Trainer tells a task about memory, through the task's optional
/// `void adapt_to_memory(const MemoryState&)`: before the first step of each
/// fit(), whenever the memory policy's pressure starts or ends, and after a
/// step that ran out of memory. A task can then trade compute for memory
/// (gradient checkpointing, smaller pieces) only when memory asks for it.
struct MemoryState {
  std::int64_t used_bytes = -1;   ///< in use on the device (the process on a CPU), −1 unknown
  std::int64_t total_bytes = -1;  ///< the device's (or the memory limit's) size, −1 unknown
  bool pressure = false;          ///< the memory policy sees high or critical pressure
  bool out_of_memory = false;     ///< the last step ran out of memory and was retried

  /// Bytes still free, or −1 when unknown.
  std::int64_t free_bytes() const {
    return used_bytes >= 0 && total_bytes > 0 ? std::max<std::int64_t>(0, total_bytes - used_bytes)
                                              : -1;
  }
};

/// Something the Trainer has to say outside the metrics: a resume, a stop, a
/// warning (a side task that failed, a risky setting). Loggers with an
/// `on_message` hook receive it; with none, the Trainer writes it to stderr
/// so that no warning is lost.
struct Message {
  enum class Level { info, warning };
  Level level = Level::info;
  std::string text;
};

}  // namespace kokoro
