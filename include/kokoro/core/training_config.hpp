// The framework's configuration: the `training`, `hardware` and `logging`
// sections every run has (TrainingConfig), and RunConfig<TaskSections>, which
// adds the sections a task brings (the TTS task's data, model, audio, loss).
// Each section lists its fields once, in `fields()`; YAML load/save,
// command-line overrides, validation and hashing are all driven from that
// list (see core/config_io.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/config_rules.hpp"

namespace kokoro {

/// One problem found in a configuration: the field ("training.batch_size")
/// and the rule it broke, with the offending value.
struct ConfigProblem {
  std::string field;
  std::string message;
};

/// Optimisation and the shape of the loop.
struct TrainingSection {
  std::int64_t batch_size = 16;
  std::int64_t epochs = 100;
  std::int64_t max_steps = 0;
  double max_minutes = 0.0;
  double learning_rate = 1e-4;
  double weight_decay = 0.01;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  double grad_clip_norm = 1.0;
  std::int64_t max_nonfinite_steps = 25;
  double rollback_lr_factor = 0.5;
  std::int64_t max_rollbacks = 3;
  std::int64_t accumulation_steps = 1;
  std::int64_t validate_every = 1;
  std::int64_t seed = 42;
  std::string resume;
  std::string scheduler = "cosine_warm_restarts";
  std::string scheduler_interval = "epoch";
  std::int64_t warmup_steps = 0;
  std::int64_t scheduler_t0 = 20;
  std::int64_t scheduler_t_mult = 2;
  double min_learning_rate = 1e-6;
  std::int64_t scheduler_step_size = 10;
  double scheduler_gamma = 0.5;

  friend bool operator==(const TrainingSection&, const TrainingSection&) = default;

  /// Rules that tie this section's fields together.
  void check(std::vector<ConfigProblem>& problems) const {
    if (scheduler == "inverse_sqrt" && warmup_steps <= 0) {
      problems.push_back({"training.warmup_steps",
                          "must be > 0 when training.scheduler is inverse_sqrt (it peaks there)"});
    }
  }

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("batch_size", s.batch_size, "samples per batch", rule::positive);
    v("epochs", s.epochs, "epochs to train", rule::positive);
    v("max_steps", s.max_steps,
      "stop when the run has taken this many optimizer steps in all, counting those before a "
      "resume (0: no limit)",
      rule::non_negative);
    v("max_minutes", s.max_minutes,
      "stop after this many minutes of this invocation's training, saving a checkpoint to resume "
      "from (0: no limit)",
      rule::non_negative);
    v("learning_rate", s.learning_rate, "base learning rate (AdamW)", rule::positive);
    v("weight_decay", s.weight_decay, "AdamW decoupled weight decay", rule::non_negative);
    v("adam_beta1", s.adam_beta1, "AdamW beta1", rule::InRange{0.0, 1.0, true});
    v("adam_beta2", s.adam_beta2, "AdamW beta2", rule::InRange{0.0, 1.0, true});
    v("adam_eps", s.adam_eps, "AdamW epsilon", rule::positive);
    v("grad_clip_norm", s.grad_clip_norm, "clip gradients to this global L2 norm (0: off)",
      rule::non_negative);
    v("max_nonfinite_steps", s.max_nonfinite_steps,
      "after this many steps in a row not applied for a non-finite loss or gradient, roll back "
      "to the last good checkpoint with a lower learning rate (0: never roll back)",
      rule::non_negative);
    v("rollback_lr_factor", s.rollback_lr_factor,
      "a rollback multiplies the learning rates by this factor", rule::InRange{0.0, 1.0, true});
    v("max_rollbacks", s.max_rollbacks,
      "stop with an error when training still diverges after this many rollbacks",
      rule::non_negative);
    v("accumulation_steps", s.accumulation_steps, "batches accumulated per optimizer step",
      rule::positive);
    v("validate_every", s.validate_every, "validate every N epochs (0: never)", rule::non_negative);
    v("seed", s.seed, "seed for weights, dropout and data order");
    v("resume", s.resume,
      "resume from a checkpoint: a path, auto (the newest valid one of logging.run_name, else of "
      "the latest run in logging.output_dir), or empty (a new run)");
    v("scheduler", s.scheduler,
      "constant | cosine_warm_restarts | inverse_sqrt | step | exponential",
      rule::OneOf{{"constant", "cosine_warm_restarts", "inverse_sqrt", "step", "exponential"}});
    v("scheduler_interval", s.scheduler_interval, "advance the schedule per epoch or per step",
      rule::OneOf{{"epoch", "step"}});
    v("warmup_steps", s.warmup_steps, "linear warmup over the first N optimizer steps",
      rule::non_negative);
    v("scheduler_t0", s.scheduler_t0, "cosine warm restarts: first cycle length (epochs)",
      rule::positive);
    v("scheduler_t_mult", s.scheduler_t_mult, "cosine warm restarts: cycle growth factor",
      rule::positive);
    v("min_learning_rate", s.min_learning_rate, "cosine warm restarts: eta_min",
      rule::non_negative);
    v("scheduler_step_size", s.scheduler_step_size, "step decay: units between decays",
      rule::positive);
    v("scheduler_gamma", s.scheduler_gamma, "step and exponential decay: factor per decay",
      rule::InRange{0.0, 1.0});
  }
};

/// Where and how the computation runs.
struct HardwareSection {
  std::string device = "auto";
  std::int64_t num_threads = 0;
  bool mixed_precision = true;
  std::string amp_dtype = "auto";
  bool pin_memory = true;
  double grad_scale_init = 65536.0;
  double grad_scale_growth = 2.0;
  double grad_scale_backoff = 0.5;
  std::int64_t grad_scale_interval = 2000;
  bool memory_management = true;
  double memory_moderate = 0.0;
  double memory_high = 0.0;
  double memory_critical = 0.0;
  std::int64_t cleanup_every_moderate = 100;
  std::int64_t cleanup_every_high = 10;
  std::int64_t cleanup_every_critical = 1;
  bool oom_recovery = true;
  bool oom_keep_split = false;
  bool cpu_memory_cache = true;
  std::string distributed = "auto";
  std::string distributed_backend = "auto";
  double distributed_timeout = 600.0;
  bool distributed_drop_last = false;
  bool distributed_overlap = true;
  double distributed_bucket_mb = 25.0;

  friend bool operator==(const HardwareSection&, const HardwareSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("device", s.device, "auto | cuda | mps | cpu", rule::OneOf{{"auto", "cuda", "mps", "cpu"}});
    v("num_threads", s.num_threads, "intra-op CPU threads (0: all cores)", rule::non_negative);
    v("mixed_precision", s.mixed_precision, "autocast where the device supports it");
    v("amp_dtype", s.amp_dtype, "auto | float16 | bfloat16",
      rule::OneOf{{"auto", "float16", "bfloat16"}});
    v("pin_memory", s.pin_memory, "page-locked host batches for faster copies to a GPU");
    v("grad_scale_init", s.grad_scale_init, "grad scaler: initial scale", rule::positive);
    v("grad_scale_growth", s.grad_scale_growth, "grad scaler: growth factor (> 1)",
      rule::InRange{1.0, 1e9});
    v("grad_scale_backoff", s.grad_scale_backoff, "grad scaler: backoff factor (< 1)",
      rule::InRange{0.0, 1.0, true});
    v("grad_scale_interval", s.grad_scale_interval, "grad scaler: clean steps before growth",
      rule::positive);
    v("memory_management", s.memory_management, "watch memory pressure and clean up as it rises");
    v("memory_moderate", s.memory_moderate,
      "share of memory where pressure is moderate (0: device profile)", rule::InRange{0.0, 1.0});
    v("memory_high", s.memory_high, "share of memory where pressure is high (0: device profile)",
      rule::InRange{0.0, 1.0});
    v("memory_critical", s.memory_critical,
      "share of memory where pressure is critical (0: device profile)", rule::InRange{0.0, 1.0});
    v("cleanup_every_moderate", s.cleanup_every_moderate,
      "steps between cleanups at moderate pressure", rule::positive);
    v("cleanup_every_high", s.cleanup_every_high, "steps between cleanups at high pressure",
      rule::positive);
    v("cleanup_every_critical", s.cleanup_every_critical,
      "steps between cleanups at critical pressure", rule::positive);
    v("oom_recovery", s.oom_recovery, "on out-of-memory, retry the batch in halves");
    v("oom_keep_split", s.oom_keep_split, "after a recovery keep the smaller pieces for the epoch");
    v("cpu_memory_cache", s.cpu_memory_cache,
      "on the CPU, keep freed tensor memory for the next step instead of faulting it in again "
      "(emptied under memory pressure)");
    v("distributed", s.distributed,
      "auto | off | on: data parallel over torch.distributed (auto: when a launcher such as "
      "torchrun set WORLD_SIZE > 1)",
      rule::OneOf{{"auto", "off", "on"}});
    v("distributed_backend", s.distributed_backend,
      "auto | gloo | nccl (auto: NCCL for CUDA where libtorch has it, else Gloo)",
      rule::OneOf{{"auto", "gloo", "nccl"}});
    v("distributed_timeout", s.distributed_timeout,
      "seconds a rank waits for the others in a collective before the run stops with an error",
      rule::positive);
    v("distributed_drop_last", s.distributed_drop_last,
      "data parallel: drop an epoch's batches that do not fill every rank (false: the short "
      "ranks repeat batches from the epoch's start)");
    v("distributed_overlap", s.distributed_overlap,
      "data parallel: all-reduce gradients in buckets while backward runs (false: after it)");
    v("distributed_bucket_mb", s.distributed_bucket_mb,
      "data parallel: MiB of gradients per all-reduce (PyTorch DDP's bucket_cap_mb)",
      rule::positive);
  }
};

/// What is recorded, where, and how often.
struct LoggingSection {
  std::string output_dir = "runs/kokoro";
  std::string run_name;
  bool overwrite = false;
  std::int64_t log_every = 10;
  bool checkpoints = true;
  std::int64_t checkpoint_every_epochs = 5;
  std::int64_t checkpoint_every_steps = 0;
  std::int64_t keep_checkpoints = 5;
  bool tensorboard = true;
  bool jsonl = true;
  bool report = true;
  bool profile = false;
  std::int64_t media_every_epochs = 1;
  double media_max_share = 0.05;
  bool wandb = false;
  std::string wandb_project = "kokoro";
  bool wandb_upload_checkpoints = false;
  std::string best_metric = "validation/loss";
  std::string best_mode = "min";

  friend bool operator==(const LoggingSection&, const LoggingSection&) = default;

  void check(std::vector<ConfigProblem>& problems) const {
    const auto slash = best_metric.find('/');
    const auto group = best_metric.substr(0, slash);
    if (slash == std::string::npos || slash + 1 == best_metric.size() ||
        (group != "train" && group != "validation" && group != "eval")) {
      problems.push_back(
          {"logging.best_metric",
           "must be train/<name>, validation/<name> or eval/<name> (e.g. validation/loss, "
           "eval/mcd), got \"" + best_metric + "\""});
    }
  }

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("output_dir", s.output_dir,
      "folder of the runs: each writes its checkpoints, logs and samples in "
      "<output_dir>/<run_name>",
      rule::not_empty);
    v("run_name", s.run_name, "name of the run's folder (empty: made from the date and time)");
    v("overwrite", s.overwrite,
      "a new run named like one in output_dir deletes that run's folder first (else it stops)");
    v("log_every", s.log_every, "send step metrics every N optimizer steps", rule::positive);
    v("checkpoints", s.checkpoints, "save checkpoints under <output_dir>/<run_name>/checkpoints");
    v("checkpoint_every_epochs", s.checkpoint_every_epochs,
      "save a checkpoint every N epochs (0: never)", rule::non_negative);
    v("checkpoint_every_steps", s.checkpoint_every_steps,
      "save a checkpoint every N optimizer steps (0: never)", rule::non_negative);
    v("keep_checkpoints", s.keep_checkpoints, "periodic checkpoints kept (0: all)",
      rule::non_negative);
    v("tensorboard", s.tensorboard, "write TensorBoard event files");
    v("jsonl", s.jsonl, "write metrics.jsonl");
    v("report", s.report,
      "write report.html: curves, samples and settings in one page (rewritten each epoch)");
    v("profile", s.profile,
      "time each step's phases; print a summary and write profile_trace.json at the end");
    v("media_every_epochs", s.media_every_epochs,
      "every N epochs send weight and gradient histograms and the task's samples (mel images, "
      "audio) to the loggers that render them (0: never)",
      rule::non_negative);
    v("media_max_share", s.media_max_share,
      "the most of the run's time samples may take: due samples wait while they would take "
      "more (the first and the last epoch's always go out)",
      rule::InRange{0.0, 1.0});
    v("wandb", s.wandb, "stream to Weights & Biases (needs WANDB_API_KEY)");
    v("wandb_project", s.wandb_project, "W&B project name");
    v("wandb_upload_checkpoints", s.wandb_upload_checkpoints,
      "at the end, upload final.pt and best.pt to the W&B run's files");
    v("best_metric", s.best_metric,
      "the figure best.pt follows: train/<name>, validation/<name> (validation/loss falls back to "
      "train/loss without validation) or eval/<name> (the task's quality measures, e.g. eval/mcd)");
    v("best_mode", s.best_mode, "min: lower best_metric is better; max: higher is",
      rule::OneOf{{"min", "max"}});
  }
};

/// A key that a configuration once had: `old_name` is "section.key", or
/// "section.*" for a whole section. A file that still uses it loads: the value
/// goes to `new_name` ("section.key"), or, when that is empty, is accepted and
/// ignored (the setting no longer exists). Writing always uses today's names.
struct LegacyKey {
  std::string_view old_name;
  std::string_view new_name;
};

/// The framework's sections: what every run has, whatever it trains. Plain
/// data: copy it, compare it, change a field. Policies are built from it.
struct TrainingConfig {
  TrainingSection training;
  HardwareSection hardware;
  LoggingSection logging;

  friend bool operator==(const TrainingConfig&, const TrainingConfig&) = default;

  template <class Self, class Visitor>
  static void sections(Self& s, Visitor&& v) {
    v("training", s.training);
    v("hardware", s.hardware);
    v("logging", s.logging);
  }

  /// Keys of the framework's sections that moved to a task when the
  /// configuration was split by layer. A task that owns them again names
  /// their new place in its own `legacy_keys()`; for any other task a file
  /// that has them still loads and they are ignored.
  static std::vector<LegacyKey> legacy_keys() {
    return {{"training.duration_loss_weight", ""},
            {"training.stop_loss_weight", ""},
            {"training.stop_positive_weight", ""}};
  }
};

/// A run's whole configuration: the framework's sections (TrainingConfig, its
/// base, so it is what every policy sees) and the task's (`TaskSections`, a
/// struct of sections with its own static `sections()`, optionally
/// `legacy_keys()`). One YAML file holds all of them; an override
/// `section.key=value` reaches every field.
template <class TaskSections>
struct RunConfig : TrainingConfig, TaskSections {
  RunConfig() = default;
  /// The framework's settings with the task's defaults (or `task`).
  RunConfig(TrainingConfig framework, TaskSections task = {})  // NOLINT: implicit on purpose
      : TrainingConfig(std::move(framework)), TaskSections(std::move(task)) {}

  friend bool operator==(const RunConfig&, const RunConfig&) = default;

  template <class Self, class Visitor>
  static void sections(Self& s, Visitor&& v) {
    TrainingConfig::sections(s, v);
    TaskSections::sections(s, v);
  }

  /// The task's legacy keys first: they take precedence over the framework's
  /// "ignored" entries for keys the task owns again.
  static std::vector<LegacyKey> legacy_keys() {
    std::vector<LegacyKey> keys;
    if constexpr (requires { TaskSections::legacy_keys(); }) keys = TaskSections::legacy_keys();
    for (const auto& k : TrainingConfig::legacy_keys()) keys.push_back(k);
    return keys;
  }
};

/// A configuration type: one with a static `sections(self, visitor)`
/// (TrainingConfig, RunConfig<...>).
template <class C>
concept ConfigType = requires(C& c) {
  C::sections(c, [](const char*, auto&) {});
};

namespace detail {

template <class T>
std::string show_value(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return fmt::format("\"{}\"", v);
  } else {
    return fmt::format("{}", v);
  }
}

}  // namespace detail

/// Calls `fn(section, key, value, doc, rules...)` for every field, in order.
template <class Config, class Fn>
requires ConfigType<std::remove_const_t<Config>>
void for_each_field(Config& config, Fn&& fn) {
  std::remove_const_t<Config>::sections(config, [&](const char* section, auto& sec) {
    using Section = std::remove_cvref_t<decltype(sec)>;
    Section::fields(sec, [&](const char* key, auto& value, const char* doc, const auto&... rules) {
      fn(section, key, value, doc, rules...);
    });
  });
}

/// Every rule the configuration breaks: per-field rules first, then each
/// section's own `check()` (rules that tie its fields together). Empty when
/// the configuration is usable.
template <ConfigType Config>
std::vector<ConfigProblem> validate(const Config& c) {
  std::vector<ConfigProblem> problems;
  for_each_field(c, [&](const char* section, const char* key, const auto& value, const char*,
                        const auto&... rules) {
    [[maybe_unused]] auto check = [&](const auto& rule) {
      if (auto broken = rule(value)) {
        problems.push_back({fmt::format("{}.{}", section, key),
                            fmt::format("{} (got {})", *broken, detail::show_value(value))});
      }
    };
    (check(rules), ...);
  });
  Config::sections(c, [&](const char*, const auto& sec) {
    if constexpr (requires { sec.check(problems); }) sec.check(problems);
  });
  return problems;
}

/// The reference system's framework defaults: batch 16, 100 epochs, AdamW
/// lr 1e-4, cosine warm restarts (T_0 20, T_mult 2).
inline TrainingConfig get_default_config() { return TrainingConfig{}; }

}  // namespace kokoro
