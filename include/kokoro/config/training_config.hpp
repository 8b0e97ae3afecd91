// TrainingConfig: every setting of a run, in six sections (data, model,
// training, audio, hardware, logging), with the defaults of the reference
// system and a smaller preset. Each section lists its fields once, in
// `fields()`; YAML load/save, command-line overrides and validation are all
// driven from that list (see config/config_io.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kokoro/config/rules.hpp"

namespace kokoro {

/// Where the corpus lives and how it is read.
struct DataSection {
  std::string data_dir;  ///< LJSpeech-format root; empty selects the built-in demo corpus
  std::string metadata_file = "metadata.csv";
  std::string wavs_dir = "wavs";
  std::string alignments_dir = "TextGrid";
  std::string cache_dir;  ///< empty: <logging.output_dir>/cache
  double validation_split = 0.05;
  std::int64_t num_workers = 2;
  std::int64_t prefetch_batches = 4;
  std::int64_t pool_batches = 16;
  std::int64_t max_frames_per_batch = 0;
  bool drop_last = false;
  std::string too_long = "skip";
  std::string missing_alignment = "uniform";
  std::string alignment_mismatch = "skip";
  std::int64_t demo_clips = 300;

  friend bool operator==(const DataSection&, const DataSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("data_dir", s.data_dir, "LJSpeech-format corpus root (empty: the built-in demo corpus)");
    v("metadata_file", s.metadata_file, "metadata file inside data_dir", rule::not_empty);
    v("wavs_dir", s.wavs_dir, "folder of the WAV files inside data_dir", rule::not_empty);
    v("alignments_dir", s.alignments_dir, "folder of MFA TextGrid files inside data_dir");
    v("cache_dir", s.cache_dir, "feature cache (empty: <logging.output_dir>/cache)");
    v("validation_split", s.validation_split, "share of clips held out for validation",
      rule::InRange{0.0, 1.0, true});
    v("num_workers", s.num_workers,
      "data-loading worker threads (0: batches built on the training thread)", rule::non_negative);
    v("prefetch_batches", s.prefetch_batches, "batches the workers build ahead of the loop",
      rule::positive);
    v("pool_batches", s.pool_batches,
      "length bucketing: this many batches' worth of clips are sorted by length together",
      rule::positive);
    v("max_frames_per_batch", s.max_frames_per_batch,
      "cap on clips x longest mel in a batch (0: batch_size alone decides)", rule::non_negative);
    v("drop_last", s.drop_last, "drop the batches left short of batch_size");
    v("too_long", s.too_long, "clips over audio.max_frames: skip | truncate",
      rule::OneOf{{"skip", "truncate"}});
    v("missing_alignment", s.missing_alignment,
      "clips without a TextGrid: uniform (spread the frames evenly over the phonemes) | skip",
      rule::OneOf{{"uniform", "skip"}});
    v("alignment_mismatch", s.alignment_mismatch,
      "TextGrid phones that do not match the phonemizer's: skip | uniform",
      rule::OneOf{{"skip", "uniform"}});
    v("demo_clips", s.demo_clips, "clips in the built-in demo corpus (used when data_dir is empty)",
      rule::positive);
  }
};

/// Shape of the model (the TTS task's; a custom task may reuse the fields).
struct ModelSection {
  std::int64_t hidden_dim = 512;
  std::int64_t encoder_layers = 6;
  std::int64_t decoder_layers = 6;
  std::int64_t num_heads = 8;
  std::int64_t ff_dim = 2048;
  double dropout = 0.1;
  bool postnet = true;
  bool gradient_checkpointing = true;
  std::int64_t checkpoint_blocks = 1;

  friend bool operator==(const ModelSection&, const ModelSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("hidden_dim", s.hidden_dim, "model width d", rule::positive);
    v("encoder_layers", s.encoder_layers, "Transformer encoder blocks", rule::non_negative);
    v("decoder_layers", s.decoder_layers, "Transformer decoder blocks", rule::non_negative);
    v("num_heads", s.num_heads, "attention heads (must divide hidden_dim)", rule::positive);
    v("ff_dim", s.ff_dim, "feed-forward width", rule::positive);
    v("dropout", s.dropout, "dropout probability", rule::InRange{0.0, 1.0, true});
    v("postnet", s.postnet, "residual convolutional PostNet after the mel head");
    v("gradient_checkpointing", s.gradient_checkpointing,
      "recompute activations in backward to save memory");
    v("checkpoint_blocks", s.checkpoint_blocks,
      "Transformer blocks per checkpointed segment (more: less recomputation bookkeeping, "
      "more memory held inside a segment)",
      rule::positive);
  }
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
  double duration_loss_weight = 0.1;
  double stop_loss_weight = 1.0;
  double stop_positive_weight = 1.0;

  friend bool operator==(const TrainingSection&, const TrainingSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("batch_size", s.batch_size, "samples per batch", rule::positive);
    v("epochs", s.epochs, "epochs to train", rule::positive);
    v("max_steps", s.max_steps, "stop after this many optimizer steps (0: no limit)",
      rule::non_negative);
    v("max_minutes", s.max_minutes,
      "stop after this many minutes of training, saving a checkpoint to resume from (0: no limit)",
      rule::non_negative);
    v("learning_rate", s.learning_rate, "base learning rate (AdamW)", rule::positive);
    v("weight_decay", s.weight_decay, "AdamW decoupled weight decay", rule::non_negative);
    v("adam_beta1", s.adam_beta1, "AdamW beta1", rule::InRange{0.0, 1.0, true});
    v("adam_beta2", s.adam_beta2, "AdamW beta2", rule::InRange{0.0, 1.0, true});
    v("adam_eps", s.adam_eps, "AdamW epsilon", rule::positive);
    v("grad_clip_norm", s.grad_clip_norm, "clip gradients to this global L2 norm (0: off)",
      rule::non_negative);
    v("accumulation_steps", s.accumulation_steps, "batches accumulated per optimizer step",
      rule::positive);
    v("validate_every", s.validate_every, "validate every N epochs (0: never)", rule::non_negative);
    v("seed", s.seed, "seed for weights, dropout and data order");
    v("resume", s.resume,
      "resume from a checkpoint: a path, auto (the newest valid one in the run), or empty");
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
    v("duration_loss_weight", s.duration_loss_weight, "weight of the duration loss",
      rule::non_negative);
    v("stop_loss_weight", s.stop_loss_weight, "weight of the stop-token loss", rule::non_negative);
    v("stop_positive_weight", s.stop_positive_weight,
      "weight of the stop loss's positive (last-frame) term; >1 makes the stop fire more surely",
      rule::positive);
  }
};

/// Audio and mel-spectrogram settings.
struct AudioSection {
  std::int64_t sample_rate = 22050;
  std::int64_t n_fft = 1024;
  std::int64_t hop_length = 256;
  std::int64_t win_length = 1024;
  std::int64_t n_mels = 80;
  double fmin = 0.0;
  double fmax = 8000.0;
  double mel_power = 1.0;
  std::int64_t max_frames = 2500;

  friend bool operator==(const AudioSection&, const AudioSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("sample_rate", s.sample_rate, "sample rate in Hz (other rates are resampled)",
      rule::positive);
    v("n_fft", s.n_fft, "FFT size", rule::positive);
    v("hop_length", s.hop_length, "samples between frames", rule::positive);
    v("win_length", s.win_length, "analysis window length (<= n_fft)", rule::positive);
    v("n_mels", s.n_mels, "mel bands", rule::positive);
    v("fmin", s.fmin, "lowest mel frequency in Hz", rule::non_negative);
    v("fmax", s.fmax, "highest mel frequency in Hz (<= sample_rate / 2)", rule::positive);
    v("mel_power", s.mel_power, "1: magnitude mel, 2: power mel", rule::positive);
    v("max_frames", s.max_frames, "longest clip in mel frames", rule::positive);
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
  }
};

/// What is recorded, where, and how often.
struct LoggingSection {
  std::string output_dir = "runs/kokoro";
  std::string run_name;
  std::int64_t log_every = 10;
  bool checkpoints = true;
  std::int64_t checkpoint_every_epochs = 5;
  std::int64_t checkpoint_every_steps = 0;
  std::int64_t keep_checkpoints = 5;
  bool tensorboard = true;
  bool jsonl = true;
  bool profile = false;
  std::int64_t media_every_epochs = 1;
  bool wandb = false;
  std::string wandb_project = "kokoro";

  friend bool operator==(const LoggingSection&, const LoggingSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("output_dir", s.output_dir, "folder for checkpoints, logs and samples", rule::not_empty);
    v("run_name", s.run_name, "name of the run (empty: made from the date and time)");
    v("log_every", s.log_every, "send step metrics every N optimizer steps", rule::positive);
    v("checkpoints", s.checkpoints, "save checkpoints under <output_dir>/checkpoints");
    v("checkpoint_every_epochs", s.checkpoint_every_epochs,
      "save a checkpoint every N epochs (0: never)", rule::non_negative);
    v("checkpoint_every_steps", s.checkpoint_every_steps,
      "save a checkpoint every N optimizer steps (0: never)", rule::non_negative);
    v("keep_checkpoints", s.keep_checkpoints, "periodic checkpoints kept (0: all)",
      rule::non_negative);
    v("tensorboard", s.tensorboard, "write TensorBoard event files");
    v("jsonl", s.jsonl, "write metrics.jsonl");
    v("profile", s.profile,
      "time each step's phases; print a summary and write profile_trace.json at the end");
    v("media_every_epochs", s.media_every_epochs,
      "every N epochs send weight and gradient histograms and the task's samples (mel images, "
      "audio) to the loggers that render them (0: never)",
      rule::non_negative);
    v("wandb", s.wandb, "stream to Weights & Biases (needs WANDB_API_KEY)");
    v("wandb_project", s.wandb_project, "W&B project name");
  }
};

/// One problem found in a configuration: the field ("training.batch_size")
/// and the rule it broke, with the offending value.
struct ConfigProblem {
  std::string field;
  std::string message;
};

/// Every setting of a run. Plain data: copy it, compare it, change a field.
struct TrainingConfig {
  DataSection data;
  ModelSection model;
  TrainingSection training;
  AudioSection audio;
  HardwareSection hardware;
  LoggingSection logging;

  friend bool operator==(const TrainingConfig&, const TrainingConfig&) = default;

  template <class Self, class Visitor>
  static void sections(Self& s, Visitor&& v) {
    v("data", s.data);
    v("model", s.model);
    v("training", s.training);
    v("audio", s.audio);
    v("hardware", s.hardware);
    v("logging", s.logging);
  }
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
requires std::is_same_v<std::remove_const_t<Config>, TrainingConfig>
void for_each_field(Config& config, Fn&& fn) {
  TrainingConfig::sections(config, [&](const char* section, auto& sec) {
    using Section = std::remove_cvref_t<decltype(sec)>;
    Section::fields(sec, [&](const char* key, auto& value, const char* doc, const auto&... rules) {
      fn(section, key, value, doc, rules...);
    });
  });
}

/// Every rule the configuration breaks: per-field rules first, then the rules
/// that tie fields together. Empty when the configuration is usable.
inline std::vector<ConfigProblem> validate(const TrainingConfig& c) {
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
  const auto& m = c.model;
  if (m.num_heads > 0 && m.hidden_dim % m.num_heads != 0) {
    problems.push_back(
        {"model.hidden_dim", fmt::format("must be divisible by model.num_heads (got {} and {})",
                                         m.hidden_dim, m.num_heads)});
  }
  if (c.training.scheduler == "inverse_sqrt" && c.training.warmup_steps <= 0) {
    problems.push_back({"training.warmup_steps",
                        "must be > 0 when training.scheduler is inverse_sqrt (it peaks there)"});
  }
  const auto& a = c.audio;
  if (a.win_length > a.n_fft) {
    problems.push_back({"audio.win_length", fmt::format("must be <= audio.n_fft (got {} > {})",
                                                        a.win_length, a.n_fft)});
  }
  if (a.fmax > a.sample_rate / 2.0) {
    problems.push_back({"audio.fmax", fmt::format("must be <= audio.sample_rate / 2 = {} (got {})",
                                                  a.sample_rate / 2.0, a.fmax)});
  }
  if (a.fmin >= a.fmax) {
    problems.push_back(
        {"audio.fmin", fmt::format("must be < audio.fmax (got {} >= {})", a.fmin, a.fmax)});
  }
  return problems;
}

/// The reference system's defaults: d=512, 6+6 layers, batch 16, 100 epochs.
inline TrainingConfig get_default_config() { return TrainingConfig{}; }

/// A configuration for small machines and quick runs: d=256, 4+4 layers,
/// feed-forward 1024, batch 8, 10 epochs.
inline TrainingConfig get_small_config() {
  TrainingConfig c;
  c.model.hidden_dim = 256;
  c.model.encoder_layers = 4;
  c.model.decoder_layers = 4;
  c.model.ff_dim = 1024;
  c.training.batch_size = 8;
  c.training.epochs = 10;
  return c;
}

}  // namespace kokoro
