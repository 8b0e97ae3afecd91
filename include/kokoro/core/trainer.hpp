// Trainer<Task, Policies>: the training loop. Everything that varies is a
// policy (device, grad scaler, memory, scheduler, logger, checkpoints,
// profiler) or the task (model, data, loss); this file is only the loop that
// calls them. It names no concrete policy: it asks the roles' concepts.
//
//   fit():  for each epoch
//             for each group of `training.accumulation_steps` batches: step()
//             validate() every `training.validate_every` epochs
//             the task's evaluate() (its own quality measures, when it has
//             them and they are due) -> best.pt follows logging.best_metric
//   step(): per micro-batch: to(device) -> loss (autocast) -> scale -> backward
//           (out of memory: clean up, run the micro-batches again in halves)
//           then unscale -> clip -> optimizer step (may be skipped) -> update
//           -> scheduler.on_step (only when taken) -> memory.after_step
//           -> logger.on_step (every `logging.log_every` steps and at epoch end)
//
// Data parallel (the `distribution` role, one process by default): each rank
// trains on its share of every epoch's batches (core/data_shard.hpp); between
// backward and unscale the gradients become the mean over all ranks'
// samples, and the step's finiteness and any wish to stop are agreed in the
// same collective; only rank 0 logs and saves.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <ranges>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "kokoro/core/autocast.hpp"
#include "kokoro/core/clip.hpp"
#include "kokoro/core/config_io.hpp"
#include "kokoro/core/context.hpp"
#include "kokoro/core/data_shard.hpp"
#include "kokoro/core/distribution_policy.hpp"
#include "kokoro/core/histogram.hpp"
#include "kokoro/core/loss_meter.hpp"
#include "kokoro/core/make_policy.hpp"
#include "kokoro/core/media.hpp"
#include "kokoro/core/metrics.hpp"
#include "kokoro/core/policy_bundle.hpp"
#include "kokoro/core/rng_guard.hpp"
#include "kokoro/core/run_folder.hpp"
#include "kokoro/core/state_io.hpp"
#include "kokoro/core/stop_signal.hpp"
#include "kokoro/core/task.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/eval_mode_guard.hpp"

namespace kokoro {

/// Seeds libtorch's generators (CPU and, where present, CUDA). Call it before
/// building a model yourself; a Trainer that builds its task calls it first.
inline void seed_everything(std::int64_t seed) {
  torch::manual_seed(static_cast<std::uint64_t>(seed));
}

namespace detail {

/// One 64-bit seed from several numbers (SplitMix64's finaliser over each in
/// turn): nearby inputs give unrelated seeds.
inline std::uint64_t mix_seed(std::initializer_list<std::int64_t> parts) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (const auto part : parts) {
    h ^= static_cast<std::uint64_t>(part) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
  }
  return h;
}

}  // namespace detail

/// The intra-op thread count `hardware.num_threads` asks for (0: every core).
inline int resolve_num_threads(std::int64_t configured) {
  if (configured > 0) return static_cast<int>(configured);
  const auto cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

/// What one optimizer step did.
struct StepResult {
  bool taken = true;         ///< false when the grad scaler skipped the update
  std::int64_t samples = 0;  ///< samples over all micro-batches
  torch::Tensor grad_norm;   ///< global gradient norm before clipping (a 0-dim tensor)
};

namespace detail {

/// Seeds and sets threads; a member placed before the task so that a task
/// built by the Trainer sees a seeded generator.
struct RunSetup {
  template <ConfigType Config>
  explicit RunSetup(const Config& config)
      : threads(resolve_num_threads(config.hardware.num_threads)) {
    check_config(config);
    at::set_num_threads(threads);
    seed_everything(config.training.seed);
  }
  int threads;
};

using Clock = std::chrono::steady_clock;

/// Whether an exception is an allocation failure: CUDA's out-of-memory error,
/// std::bad_alloc, or the CPU allocator's c10::Error.
inline bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e)) {
    return true;
  }
  const std::string_view what = e.what();
  return what.find("out of memory") != std::string_view::npos ||
         what.find("can't allocate memory") != std::string_view::npos;
}

inline std::string first_line(const char* text) {
  std::string s(text);
  return s.substr(0, s.find('\n'));
}

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace detail

/// Trains `T` (a kokoro::Task) with the policies of the bundle `P`.
template <class T, class P>
class Trainer {
  static_assert(check_task<T>());
  static_assert(check_policies<P>());

 public:
  using TaskType = T;
  using Batch = typename T::Batch;
  using Policies = P;
  using Device = typename P::device;
  using Scaler = typename P::scaler;
  using Memory = typename P::memory;
  using Scheduler = typename P::scheduler;
  using Logger = typename P::logger;
  using Checkpoints = typename P::checkpoints;
  /// TrainingConfig, plus the task's sections when it has some.
  using Config = task_config_t<T>;
  /// Optional in a bundle: NoProfiler when it names none.
  using Profiler = typename detail::profiler_of<P>::type;
  /// Optional in a bundle: SingleProcess when it names none.
  using Distribution = typename detail::distribution_of<P>::type;

  /// Validates the configuration, seeds, sets threads, then builds the task
  /// from the configuration and every policy.
  explicit Trainer(Config config) requires std::constructible_from<T, const Config&>
      : distribution_(make_policy<Distribution>(config)),
        config_(with_run_folder(std::move(config), run_notes_, distribution_)),
        setup_(config_),
        task_(config_) {
    init();
  }

  /// As above with a task built by the caller (seed before building it:
  /// kokoro::seed_everything).
  Trainer(Config config, T task)
      : Trainer(config, std::move(task), make_policy<Distribution>(config)) {}

  /// As above with the distribution policy made by the caller too: a program
  /// that builds its task before the Trainer (and must know its rank to do
  /// so) hands over the process group it made for that.
  Trainer(Config config, T task, Distribution distribution)
      : distribution_(std::move(distribution)),
        config_(with_run_folder(std::move(config), run_notes_, distribution_)),
        setup_(config_),
        task_(std::move(task)) {
    init();
  }

  /// Trains until `training.epochs` epochs, `training.max_steps` steps in
  /// all, `training.max_minutes` of this call, or SIGINT/SIGTERM. Every stop
  /// leaves a checkpoint that `training.resume: auto` continues from (and,
  /// unless stopped by a signal, final.pt and the weights).
  RunSummary fit() {
    const auto run_start = detail::Clock::now();
    fit_start_ = run_start;
    evaluation_seconds_ = 0.0;
    media_seconds_ = 0.0;
    last_media_seconds_ = -1.0;
    last_evaluation_step_ = -1;
    const std::int64_t start_step = global_step_;
    rolled_back_ = false;
    // A run that writes nothing of its own (no checkpoints, no file loggers)
    // leaves no folder behind.
    std::error_code exists_error;
    if (writes() &&
        (config_.logging.checkpoints || std::filesystem::exists(run_directory(), exists_error))) {
      try {
        mark_run_started(config_.logging, to_yaml(config_));
      } catch (const std::exception& e) {
        side_task_failed("the run's folder", e);
      }
    }
    deadline_.reset();
    if (config_.training.max_minutes > 0) {
      deadline_ =
          run_start + std::chrono::duration_cast<detail::Clock::duration>(
                          std::chrono::duration<double>(config_.training.max_minutes * 60.0));
    }
    const auto& tc = config_.training;
    const auto settings = config_values(config_);
    const RunContext run{.config = config_,
                         .settings = settings,
                         .device = device_.device().str(),
                         .precision = autocast_.describe(),
                         .parameters = num_parameters(),
                         .threads = setup_.threads,
                         .start_epoch = epoch_,
                         .epochs = tc.epochs,
                         .max_steps = tc.max_steps,
                         .start_step = global_step_,
                         .run_directory = run_directory().string()};
    guard_logger("on_train_begin", [&] { notify_train_begin(logger_, run); });
    if (epoch_ >= tc.epochs || reached_stop_condition()) {
      say(Message::Level::info,
          fmt::format("nothing to train: the run is at epoch {} of {}, step {} (training.max_steps "
                      "= {})",
                      epoch_, tc.epochs, global_step_, tc.max_steps));
    }
    relay_logger_notices();
    tell_task_memory(false);
    window_meter_.reset();
    window_steps_ = 0;
    window_start_ = detail::Clock::now();
    StopSignalGuard stop_signals;

    RunSummary summary{};
    stop_agreed_ = false;
    while (epoch_ < tc.epochs && !should_stop()) {
      const auto epoch_start = detail::Clock::now();
      epoch_meter_.reset();
      steps_per_epoch_ = 0;
      split_factor_ = 1;
      const Metrics none;
      guard_logger("on_epoch_begin", [&] {
        notify_epoch_begin(
            logger_,
            EpochContext{
                .epoch = epoch_, .global_step = global_step_, .train = none, .validation = none});
      });

      const bool complete = train_epoch();
      if (rolled_back_) {  // the epoch starts again from the checkpoint's position
        rolled_back_ = false;
        window_meter_.reset();
        window_steps_ = 0;
        continue;
      }
      flush_step_log();
      if (distributed() ? stop_agreed_ : stop_requested() != 0) break;

      Metrics train = epoch_meter_.mean();
      const double seconds = detail::seconds_since(epoch_start);
      train.set("lr", current_lr());
      if (seconds > 0) train.set("samples_per_sec", epoch_meter_.samples() / seconds);
      Metrics validation;
      if (tc.validate_every > 0 && (epoch_ + 1) % tc.validate_every == 0) {
        // Validation draws no random numbers from the training's generator.
        const RngStateGuard rng;
        validation = validate();
      }

      // The run's last epoch is judged and shown whatever its side tasks' shares.
      const bool last_epoch = epoch_ + 1 >= tc.epochs || reached_stop_condition();
      Metrics evaluation;
      if (complete) evaluation = evaluate_task(last_epoch);

      if (complete) {
        scheduler_.on_epoch_end(clock());
        apply_learning_rates();
      }
      send_media(last_epoch);
      guard_logger("on_epoch_end", [&] {
        logger_.on_epoch_end(EpochContext{.epoch = epoch_,
                                          .global_step = global_step_,
                                          .train = train,
                                          .validation = validation,
                                          .seconds = seconds});
      });
      relay_logger_notices();
      if (complete) {
        ++epoch_;
        step_in_epoch_ = 0;
        epoch_position_ = 0;
        epoch_history_.clear();
        ++summary.epochs_completed;
        end_of_epoch_checkpoints(train, validation, evaluation, summary);
      }
      summary.last_train = std::move(train);
      if (!validation.empty()) summary.last_validation = std::move(validation);
    }
    summary.global_step = global_step_;
    summary.skipped_steps = skipped_steps_;
    summary.stopped_by_max_steps =
        config_.training.max_steps > 0 && global_step_ >= config_.training.max_steps;
    summary.stopped_by_time_limit = !summary.stopped_by_max_steps && reached_stop_condition();
    summary.stop_signal = stop_requested();
    // A run that stopped between epochs (its time or step limit) is judged
    // once more before its last save; one stopped by a signal leaves at once.
    if (summary.stop_signal == 0 && global_step_ > start_step &&
        last_evaluation_step_ != global_step_) {
      const Metrics none;
      const auto evaluation = evaluate_task(true);
      if (!evaluation.empty()) judge_best(none, none, evaluation);
    }
    summary.last_evaluation = last_evaluation_;
    if (writes()) save_at_stop(summary, global_step_ > start_step);
    summary.seconds = detail::seconds_since(run_start);
    summary.evaluation_share = summary.seconds > 0 ? evaluation_seconds_ / summary.seconds : 0.0;
    if constexpr (requires(const std::filesystem::path& dir) { profiler_.finish(dir); }) {
      try {
        if (writes()) summary.profile_report = profiler_.finish(run_directory());
      } catch (const std::exception& e) {
        side_task_failed("the profile", e);
      }
    }
    summary.nonfinite_steps = nonfinite_steps_;
    summary.rollbacks = rollbacks_;
    summary.checkpoint_failures = checkpoint_failures_;
    summary.logger_failures = logger_failures_;
    summary.side_task_failures = side_task_failures_;
    summary.run_directory = run_directory().string();
    summary.start_step = start_step;
    guard_logger("on_train_end", [&] { notify_train_end(logger_, summary); });
    relay_logger_notices();
    return summary;
  }

  /// One optimizer step over `micro_batches` (host or device batches): their
  /// gradients are accumulated weighted by sample count, so the step equals
  /// one step on their concatenation. Advances the counters, the scheduler
  /// (when taken), the memory policy and, on logging steps, the logger.
  StepResult step(std::span<const Batch> micro_batches) {
    if (micro_batches.empty()) throw Error("Trainer::step: no batches given");
    std::int64_t total = 0;
    for (const auto& b : micro_batches) total += static_cast<std::int64_t>(b.size());
    if (total <= 0) throw Error("Trainer::step: the batches hold no samples");

    torch::Tensor loss_sum = accumulate_with_recovery(micro_batches, total);
    phase_start(Phase::optimizer);
    if (distributed()) combine_gradients(total, loss_sum);
    scaler_.unscale(*optimizer_);
    StepResult result;
    result.samples = total;
    result.grad_norm = clip_grad_norm(parameters_, config_.training.grad_clip_norm);
    // A non-finite loss or gradient is never applied, whatever the scaler:
    // without loss scaling one overflow would turn every weight into NaN.
    const bool finite =
        torch::isfinite(loss_sum).logical_and(torch::isfinite(result.grad_norm)).item<bool>();
    if (finite) {
      result.taken = scaler_.step(*optimizer_);
    } else {
      for (auto& p : parameters_) p.mutable_grad().reset();
      result.taken = false;
    }
    scaler_.update();

    ++global_step_;
    ++step_in_epoch_;
    // The epoch's position moves with the step, so that a checkpoint saved
    // below resumes after these batches (train_epoch says where it is).
    const auto position =
        next_position_ >= 0 ? next_position_
                            : epoch_position_ + distribution_.world_size() *
                                                    static_cast<std::int64_t>(micro_batches.size());
    extend_history(epoch_history_, distribution_.world_size(), position - epoch_position_);
    epoch_position_ = position;
    next_position_ = -1;
    ++window_steps_;
    last_grad_norm_ = result.grad_norm;
    if (result.taken) {
      scheduler_.on_step(clock());
      apply_learning_rates();
    } else {
      ++skipped_steps_;
    }
    if (finite) {
      nonfinite_run_ = 0;
    } else {
      ++nonfinite_steps_;
      ++nonfinite_run_;
      if (nonfinite_steps_ == 1) {  // said once; counted in nonfinite_steps from then on
        warn(fmt::format(
            "step {}: the loss or the gradients are not finite; the step is not applied "
            "(further ones are counted in nonfinite_steps)",
            global_step_));
      }
    }
    phase_stop(Phase::optimizer);
    const Metrics none;
    const StepContext ctx{.epoch = epoch_,
                          .global_step = global_step_,
                          .step_in_epoch = step_in_epoch_,
                          .steps_per_epoch = steps_per_epoch_,
                          .samples = total,
                          .step_taken = result.taken,
                          .metrics = none};
    if (memory_.after_step(ctx) == MemoryAction::release_cache) release_cached_memory();
    if constexpr (requires { memory_.memory_state(); }) {
      if (memory_.memory_state().pressure != told_pressure_) tell_task_memory(false);
    }
    last_step_taken_ = result.taken;
    last_step_samples_ = total;
    phase_start(Phase::logging);
    guard_logger("on_step_end", [&] { notify_step_end(logger_, ctx); });
    if (global_step_ % config_.logging.log_every == 0) flush_step_log();
    const auto every = config_.logging.checkpoint_every_steps;
    if (writes() && config_.logging.checkpoints && every > 0 && global_step_ % every == 0 &&
        finite) {
      save_periodic();
    }
    phase_stop(Phase::logging);
    profiler_.end_step();
    const auto limit = config_.training.max_nonfinite_steps;
    if (limit > 0 && nonfinite_run_ >= limit) roll_back();
    return result;
  }

  /// Losses over the task's validation data in eval mode without gradients
  /// (sample-weighted means); empty when the task has no `valid_data()`. A
  /// batch that runs out of memory is cleaned up after and evaluated again
  /// in halves, as in training.
  Metrics validate() {
    if constexpr (requires { task_.valid_data(); }) {
      torch::NoGradGuard no_grad;
      EvalModeGuard eval(task_.model());
      LossMeter meter;
      // In data parallel each rank evaluates every world-th batch and the
      // sums are added up; a rank left without a batch evaluates the first
      // with weight 0, so that every rank brings the same parts.
      const auto world = distribution_.world_size();
      std::int64_t index = 0;
      std::optional<Batch> first;
      for (auto&& batch : task_.valid_data()) {
        if (world > 1 && index == 0) first.emplace(batch);
        if (index++ % world == distribution_.rank()) {
          const Batch b = batch;
          validate_batch(b, meter);
        }
      }
      if (world > 1 && index > 0) {
        if (meter.samples() == 0) {
          LossMeter unweighted;
          validate_batch(*first, unweighted);
          meter.add_parts_of(unweighted);
        }
        meter.sum_across([&](std::vector<torch::Tensor>& t) { distribution_.all_reduce_sum(t); });
      }
      return meter.mean();
    } else {
      return {};
    }
  }

  /// Every `logging.media_every_epochs` epochs: the task's samples (its
  /// optional `media(Media&, epoch)`, in eval mode without gradients) and,
  /// when a logger renders media, histograms of the weights and the last
  /// step's gradients, all sent to the loggers. A side task: when it fails
  /// the Trainer says so and trains on. Within its share of the run
  /// (media_within_share), so that a corpus of a few batches an epoch is
  /// not spent drawing samples; the `last_epoch`'s regardless, so that the
  /// run ends showing its final model.
  void send_media(bool last_epoch) {
    const auto every = config_.logging.media_every_epochs;
    if (!writes() || every <= 0 || (epoch_ + 1) % every != 0) return;
    constexpr bool task_media = requires(Media & m) { task_.media(m, std::int64_t{}); };
    if constexpr (MediaLogger<Logger> || task_media) {
      if (!last_epoch && !media_within_share()) return;
      const auto start = detail::Clock::now();
      send_media_now<task_media>();
      last_media_seconds_ = detail::seconds_since(start);
      media_seconds_ += last_media_seconds_;
    }
  }

  /// Whether samples due now keep the time spent on samples in this fit()
  /// within logging.media_max_share of its time: the first always go out,
  /// and the next is expected to take what the last took. Time in
  /// evaluations counts as neither.
  bool media_within_share() const {
    if (last_media_seconds_ < 0.0) return true;
    const double spent = media_seconds_ + last_media_seconds_;
    const double training =
        detail::seconds_since(fit_start_) - media_seconds_ - evaluation_seconds_;
    return spent <= config_.logging.media_max_share * (training + spent);
  }

  /// The samples and histograms, sent (send_media).
  template <bool task_media>
  void send_media_now() {
    // Samples draw no random numbers from the training's generator, so that
    // making them changes nothing about the training.
    const RngStateGuard rng;
    Media media;
    try {
      if constexpr (MediaLogger<Logger>) add_parameter_histograms(media, task_.model());
      if constexpr (task_media) {
        torch::NoGradGuard no_grad;
        EvalModeGuard eval(task_.model());
        task_.media(media, epoch_);
      }
    } catch (const std::exception& e) {
      side_task_failed(fmt::format("epoch {}'s samples", epoch_ + 1), e, "samples");
    }
    if constexpr (MediaLogger<Logger>) {
      guard_logger("on_media", [&] {
        logger_.on_media(
            MediaContext{.epoch = epoch_, .global_step = global_step_, .media = media});
      });
    }
  }

  /// The whole training state as a dict in torch's format, with the keys
  /// PyTorch scripts use (epoch, model_state_dict, optimizer_state_dict,
  /// scheduler_state_dict, loss, config, scaler) and kokoro's own (global_step,
  /// step_in_epoch, skipped_steps, best_loss, rng_state, task_state, ...).
  /// `epoch` is the number of completed epochs: the 0-based epoch to resume.
  IValueDict checkpoint() {
    auto d = make_ivalue_dict();
    d.insert("format", std::string("kokoro-checkpoint"));
    d.insert("format_version", std::int64_t{1});
    d.insert("epoch", epoch_);
    d.insert("global_step", global_step_);
    d.insert("step_in_epoch", step_in_epoch_);
    // The epoch's position over all ranks, so that any number of ranks
    // resumes where this run stopped.
    d.insert("epoch_batches_done", epoch_position_);
    d.insert("world_size", static_cast<std::int64_t>(distribution_.world_size()));
    // How many ranks used those batches: [world size, batches, ...] by stretch.
    std::vector<std::int64_t> history;
    for (const auto& stretch : epoch_history_) {
      history.push_back(stretch.world_size);
      history.push_back(stretch.batches);
    }
    d.insert("epoch_position_history", c10::List<std::int64_t>(history));
    d.insert("skipped_steps", skipped_steps_);
    d.insert("nonfinite_steps", nonfinite_steps_);
    d.insert("rollbacks", rollbacks_);
    d.insert("model_state_dict", module_state_dict(task_.model()));
    d.insert("optimizer_state_dict", optimizer_state_dict(*optimizer_));
    StateDict schedule;
    if constexpr (requires { scheduler_.state_dict(); }) schedule = scheduler_.state_dict();
    schedule["base_lrs"] = base_lrs_;
    std::vector<double> last_lrs;
    for (auto& group : optimizer_->param_groups()) last_lrs.push_back(group.options().get_lr());
    schedule["_last_lr"] = last_lrs;
    d.insert("scheduler_state_dict", to_ivalue(schedule));
    StateDict scaler;
    if constexpr (requires { scaler_.state_dict(); }) scaler = scaler_.state_dict();
    d.insert("scaler", to_ivalue(scaler));
    d.insert("loss", last_loss_);
    d.insert("best_loss", best_loss_);
    d.insert("best_metric", config_.logging.best_metric + ":" + config_.logging.best_mode);
    d.insert("config", to_yaml(config_));
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    d.insert("rng_state", generator.get_state());
    // Each GPU's generator too (dropout on CUDA draws from it), as
    // torch.cuda.get_rng_state_all() gives them.
    c10::List<at::Tensor> cuda_states;
    for (auto& g : cuda_generators()) cuda_states.push_back(g.get_state());
    if (!cuda_states.empty()) d.insert("cuda_rng_states", cuda_states);
    if constexpr (requires { task_.state_dict(); })
      d.insert("task_state", to_ivalue(task_.state_dict()));
    return d;
  }

  /// Restores everything `checkpoint()` saved. Throws kokoro::Error naming
  /// the file when it is damaged or does not fit the model (listing missing,
  /// unexpected and mis-shaped tensors).
  void load_checkpoint(const std::filesystem::path& path) {
    const auto d = checkpoints_.load(path);
    const auto source = path.string();
    load_module_state_dict(task_.model(), dict_at(d, "model_state_dict", source).toGenericDict(),
                           source);
    load_optimizer_state_dict(*optimizer_,
                              dict_at(d, "optimizer_state_dict", source).toGenericDict(), source);
    const auto schedule =
        state_dict_from_ivalue(dict_at(d, "scheduler_state_dict", source), source);
    if constexpr (requires { scheduler_.load_state_dict(schedule); })
      scheduler_.load_state_dict(schedule);
    if (const auto it = schedule.find("base_lrs"); it != schedule.end()) {
      const auto saved = std::get<std::vector<double>>(it->second);
      if (saved.size() == base_lrs_.size()) base_lrs_ = saved;
    }
    const auto scaler = state_dict_from_ivalue(dict_at(d, "scaler", source), source);
    if constexpr (requires { scaler_.load_state_dict(scaler); }) {
      if (!scaler.empty()) scaler_.load_state_dict(scaler);
    }
    epoch_ = dict_at(d, "epoch", source).toInt();
    global_step_ = dict_at(d, "global_step", source).toInt();
    step_in_epoch_ = dict_at(d, "step_in_epoch", source).toInt();
    // Written by one process before the position was kept: its steps' batches.
    epoch_position_ = d.contains("epoch_batches_done")
                          ? d.at("epoch_batches_done").toInt()
                          : step_in_epoch_ * config_.training.accumulation_steps;
    epoch_history_.clear();
    if (d.contains("epoch_position_history") && d.at("epoch_position_history").isList()) {
      std::vector<std::int64_t> flat;
      for (const auto& v : d.at("epoch_position_history").toListRef()) {
        if (!v.isInt()) throw Error(source + ": epoch_position_history holds a non-integer");
        flat.push_back(v.toInt());
      }
      for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
        extend_history(epoch_history_, static_cast<int>(flat[i]), flat[i + 1]);
      }
    } else {
      // Written before the history was kept: one stretch, by the ranks it names.
      const auto world = d.contains("world_size") ? d.at("world_size").toInt() : 1;
      extend_history(epoch_history_, static_cast<int>(world), epoch_position_);
    }
    skipped_steps_ = dict_at(d, "skipped_steps", source).toInt();
    // Absent from checkpoints written before these were kept.
    nonfinite_steps_ = d.contains("nonfinite_steps") ? d.at("nonfinite_steps").toInt() : 0;
    rollbacks_ = d.contains("rollbacks") ? d.at("rollbacks").toInt() : 0;
    last_loss_ = dict_at(d, "loss", source).toDouble();
    best_loss_ = dict_at(d, "best_loss", source).toDouble();
    // A checkpoint before best_metric existed followed validation/loss.
    const std::string followed = d.contains("best_metric") && d.at("best_metric").isString()
                                     ? d.at("best_metric").toStringRef()
                                     : std::string("validation/loss:min");
    const auto following = config_.logging.best_metric + ":" + config_.logging.best_mode;
    if (followed != following) {
      best_loss_ = initial_best();
      run_notes_.push_back(fmt::format(
          "best.pt followed {} until now and follows {} from here (logging.best_metric)", followed,
          following));
    }
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(dict_at(d, "rng_state", source).toTensor());
    // Put back where this process has as many GPUs; a run moved to another
    // machine draws on from the seeds it has there.
    if (d.contains("cuda_rng_states") && d.at("cuda_rng_states").isList()) {
      const auto states = d.at("cuda_rng_states").toListRef();
      auto gpus = cuda_generators();
      if (states.size() == gpus.size()) {
        for (std::size_t i = 0; i < gpus.size(); ++i) gpus[i].set_state(states[i].toTensor());
      }
    }
    if constexpr (requires(const StateDict& s) { task_.load_state_dict(s); }) {
      if (d.contains("task_state")) {
        task_.load_state_dict(state_dict_from_ivalue(d.at("task_state"), source));
      }
    }
  }

  /// `training.resume`: "auto" loads the newest valid checkpoint of this run
  /// (skipping damaged ones with a warning) or starts fresh saying so; a path
  /// loads that file or fails. Returns the file loaded.
  std::optional<std::filesystem::path> resume(const std::string& what) {
    if (what.empty()) return std::nullopt;
    std::optional<std::filesystem::path> path;
    if (what == "auto") {
      // Rank 0 picks the checkpoint; every rank loads that one.
      std::string chosen;
      if (distribution_.rank() == 0) {
        std::vector<std::string> rejected;
        path = checkpoints_.latest_valid(&rejected);
        for (const auto& reason : rejected) warn("skipping a checkpoint: " + reason);
        if (path) chosen = path->string();
      }
      if (distributed()) {
        chosen = distribution_.share("resume", chosen);
        path.reset();
        if (!chosen.empty()) path = std::filesystem::path(chosen);
      }
      if (!path) {
        say(Message::Level::info,
            fmt::format("no valid checkpoint to resume from in {}; starting fresh",
                        run_directory().string()));
        return std::nullopt;
      }
    } else {
      path = what;
    }
    load_checkpoint(*path);
    say(Message::Level::info, fmt::format("resumed from {} (epoch {}, step {})", path->string(),
                                          epoch_ + 1, global_step_));
    return path;
  }

  /// Where checkpoints go (by default `<run directory>/checkpoints`).
  const Checkpoints& checkpoints() const { return checkpoints_; }
  /// Where the run writes: <logging.output_dir>/<logging.run_name>.
  std::filesystem::path run_directory() const { return kokoro::run_directory(config_); }
  /// The best value of logging.best_metric seen (by default the lowest
  /// validation loss, else training loss); survives resume.
  double best_loss() const { return best_loss_; }
  /// The task's quality figures at its last evaluation in this process.
  const Metrics& last_evaluation() const { return last_evaluation_; }

  const Config& config() const { return config_; }
  T& task() { return task_; }
  Device& device() { return device_; }
  Scaler& scaler() { return scaler_; }
  Memory& memory() { return memory_; }
  Scheduler& scheduler() { return scheduler_; }
  Logger& logger() { return logger_; }
  Profiler& profiler() { return profiler_; }
  Distribution& distribution() { return distribution_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }

  std::int64_t epoch() const { return epoch_; }              ///< 0-based epoch to run next
  std::int64_t global_step() const { return global_step_; }  ///< optimizer steps so far
  std::int64_t skipped_steps() const { return skipped_steps_; }
  /// Steps not applied because their loss or gradients were not finite.
  std::int64_t nonfinite_steps() const { return nonfinite_steps_; }
  /// Returns to the last good checkpoint after training.max_nonfinite_steps such steps.
  std::int64_t rollbacks() const { return rollbacks_; }
  /// Checkpoint saves that failed; logger calls and side tasks that threw.
  std::int64_t checkpoint_failures() const { return checkpoint_failures_; }
  std::int64_t logger_failures() const { return logger_failures_; }
  std::int64_t side_task_failures() const { return side_task_failures_; }
  /// Out-of-memory errors recovered from by splitting a batch.
  std::int64_t oom_recoveries() const { return oom_recoveries_; }
  int threads() const { return setup_.threads; }
  /// Whether and how the forward pass autocasts.
  const AutocastPlan& autocast() const { return autocast_; }

  /// Trainable parameters of the model.
  std::int64_t num_parameters() const {
    std::int64_t n = 0;
    for (const auto& p : parameters_) n += p.numel();
    return n;
  }

  /// The learning rate of the first parameter group now.
  double current_lr() const { return optimizer_->param_groups().front().options().get_lr(); }

 private:
  bool profiling() const {
    if constexpr (!Profiler::enabled) {
      return false;
    } else if constexpr (requires { profiler_.active(); }) {
      return profiler_.active();
    } else {
      return true;
    }
  }
  // Phase boundaries: free with NoProfiler; with a profiler recording, the
  // device is synchronised first so that asynchronous work is counted where
  // it happens.
  void phase_start(Phase p) {
    if constexpr (Profiler::enabled) {
      if (!profiling()) return;
      device_.synchronize();
      profiler_.start(p);
    }
  }
  void phase_stop(Phase p) {
    if constexpr (Profiler::enabled) {
      if (!profiling()) return;
      device_.synchronize();
      profiler_.stop(p);
    }
  }

  /// Forward and backward over the micro-batches, gradients weighted by each
  /// one's share of `total` samples. On an out-of-memory error: clean up,
  /// then run every piece again in halves (recursively), so that no sample
  /// is dropped; at one sample per piece, save a checkpoint and give up.
  /// Returns the step's sample-weighted loss sum (a device tensor), for the
  /// finiteness check.
  torch::Tensor accumulate_with_recovery(std::span<const Batch> micro_batches, std::int64_t total) {
    std::vector<Batch> pieces(micro_batches.begin(), micro_batches.end());
    if constexpr (SliceableBatch<Batch>) {
      for (std::int64_t k = 1; k < split_factor_; k *= 2) pieces = halve(pieces);
    }
    LossMeter step_meter;
    if (distributed()) seed_rank_for_step();
    // Given up on, the step leaves the generators as it found them, so that
    // the checkpoint saved then resumes exactly.
    RngSnapshot rng_at_start;
    for (;;) {
      try {
        step_meter.reset();
        accumulate(pieces, total, step_meter);
        break;
      } catch (const std::exception& e) {
        if (!config_.hardware.oom_recovery || !detail::is_out_of_memory(e)) throw;
        if constexpr (detail::distribution::reduces_gradients<Distribution>) {
          if (distributed()) distribution_.abandon_backward();
        }
        release_cached_memory();
        tell_task_memory(true);
        if constexpr (!SliceableBatch<Batch>) {
          throw Error(fmt::format(
              "out of memory at step {}, and the task's Batch has no slice(begin, end) to run it "
              "in smaller pieces: {}",
              global_step_ + 1, detail::first_line(e.what())));
        } else {
          auto smaller = halve(pieces);
          if (smaller.size() == pieces.size()) {
            rng_at_start.restore();
            give_up_out_of_memory(e);
          }
          pieces = std::move(smaller);
          ++oom_recoveries_;
          if (config_.hardware.oom_keep_split) {
            split_factor_ = std::max<std::int64_t>(
                split_factor_, static_cast<std::int64_t>(pieces.size() / micro_batches.size()));
          }
          warn(fmt::format("out of memory at step {}: retrying in {} pieces", global_step_ + 1,
                           pieces.size()));
        }
      }
    }
    window_meter_.add(step_meter);
    return step_meter.total_sum();
  }

  /// Data parallel: each rank draws its own random numbers in a step (its
  /// dropout masks differ from the other ranks'), from a seed made of
  /// training.seed, the rank, the step and the rollbacks so far. Nothing of
  /// it needs saving: a rerun, a resume on any number of ranks and a
  /// rollback (which draws anew) all follow from the counters.
  void seed_rank_for_step() {
    torch::manual_seed(
        detail::mix_seed({config_.training.seed, distribution_.rank(), global_step_, rollbacks_}));
  }

  void accumulate(const std::vector<Batch>& pieces, std::int64_t total, LossMeter& meter) {
    for (auto& p : parameters_) p.mutable_grad().reset();
    for (const auto& b : pieces) {
      const bool last = &b == &pieces.back();
      const auto samples = static_cast<std::int64_t>(b.size());
      phase_start(Phase::h2d);
      const Batch on_device = b.to(device_.device());
      phase_stop(Phase::h2d);
      phase_start(Phase::forward);
      Loss loss = forward(on_device);
      phase_stop(Phase::forward);
      // Weight by share of samples so the accumulated gradient is the whole batch's.
      const auto weighted =
          samples == total
              ? loss.total
              : loss.total * (static_cast<double>(samples) / static_cast<double>(total));
      phase_start(Phase::backward);
      if constexpr (detail::distribution::reduces_gradients<Distribution>) {
        // The gradients may go out to the other ranks as backward finishes them.
        if (last && distributed()) distribution_.expect_last_backward(static_cast<double>(total));
      }
      scaler_.scale(weighted).backward();
      phase_stop(Phase::backward);
      meter.add(loss, samples);
    }
  }

  void validate_batch(const Batch& b, LossMeter& meter) {
    try {
      meter.add(forward(b.to(device_.device())), static_cast<std::int64_t>(b.size()));
      return;
    } catch (const std::exception& e) {
      if (!config_.hardware.oom_recovery || !detail::is_out_of_memory(e)) throw;
      release_cached_memory();
      if constexpr (SliceableBatch<Batch>) {
        const auto n = static_cast<std::int64_t>(b.size());
        if (n > 1) {
          ++oom_recoveries_;
          validate_batch(b.slice(0, n / 2), meter);
          validate_batch(b.slice(n / 2, n), meter);
          return;
        }
      }
      throw Error(
          fmt::format("out of memory in validation even with one sample per piece "
                      "(reduce the validation batches or the model size): {}",
                      detail::first_line(e.what())));
    }
  }

  /// Each piece of more than one sample cut in two.
  std::vector<Batch> halve(const std::vector<Batch>& pieces) const {
    std::vector<Batch> out;
    for (const auto& b : pieces) {
      const auto n = static_cast<std::int64_t>(b.size());
      if (n < 2) {
        out.push_back(b);
        continue;
      }
      out.push_back(b.slice(0, n / 2));
      out.push_back(b.slice(n / 2, n));
    }
    return out;
  }

  [[noreturn]] void give_up_out_of_memory(const std::exception& e) {
    std::string saved;
    if (config_.logging.checkpoints) {
      for (auto& p : parameters_) p.mutable_grad().reset();
      if (const auto path = save_periodic()) {
        saved = fmt::format("; checkpoint saved to {}", path->string());
      }
    }
    throw Error(
        fmt::format("out of memory at step {} even with one sample per piece{} (reduce "
                    "training.batch_size or the model size): {}",
                    global_step_ + 1, saved, detail::first_line(e.what())));
  }

  /// Passes memory's state to the task's optional adapt_to_memory hook: the
  /// memory policy's reading and pressure where it has them, else the
  /// device's reading.
  void tell_task_memory(bool out_of_memory) {
    if constexpr (requires(const MemoryState& state) { task_.adapt_to_memory(state); }) {
      MemoryState state;
      if constexpr (requires { memory_.memory_state(); }) state = memory_.memory_state();
      if (state.total_bytes <= 0) {
        const auto reading = device_.memory();
        state.used_bytes = reading.used_bytes;
        state.total_bytes = reading.total_bytes;
      }
      state.out_of_memory = out_of_memory;
      told_pressure_ = state.pressure;
      task_.adapt_to_memory(state);
    }
  }

  /// Carries out a cleanup and tells the memory policy how long it took.
  void release_cached_memory() {
    const auto start = detail::Clock::now();
    device_.release_cached_memory();
    if constexpr (requires { memory_.on_cleanup(0.0); }) {
      memory_.on_cleanup(detail::seconds_since(start));
    }
  }

  /// Tracks logging.best_metric (writing best.pt when it improves) and writes
  /// the every-N-epochs checkpoint.
  void end_of_epoch_checkpoints(const Metrics& train, const Metrics& validation,
                                const Metrics& evaluation, RunSummary& summary) {
    last_loss_ = train.get("loss").value_or(last_loss_);
    judge_best(train, validation, evaluation);
    if (!config_.logging.checkpoints || !writes()) return;
    const auto every = config_.logging.checkpoint_every_epochs;
    if (every > 0 && epoch_ % every == 0) {
      if (const auto path = save_periodic()) summary.checkpoint = path->string();
    }
  }

  double initial_best() const {
    return config_.logging.best_mode == "max" ? -std::numeric_limits<double>::infinity()
                                              : std::numeric_limits<double>::infinity();
  }

  /// logging.best_metric among these figures ("train/x", "validation/x",
  /// "eval/x"); validation/loss stands in for train/loss without validation.
  std::optional<double> best_metric_value(const Metrics& train, const Metrics& validation,
                                          const Metrics& evaluation) const {
    const auto& name = config_.logging.best_metric;
    const auto slash = name.find('/');
    if (slash == std::string::npos) return std::nullopt;
    const auto group = name.substr(0, slash), key = name.substr(slash + 1);
    if (group == "train") return train.get(key);
    if (group == "eval") return evaluation.get(key);
    if (const auto v = validation.get(key)) return v;
    if (key == "loss" && validation.empty()) return train.get("loss");
    return std::nullopt;
  }

  /// Writes best.pt when logging.best_metric is among these figures and
  /// better than any before.
  void judge_best(const Metrics& train, const Metrics& validation, const Metrics& evaluation) {
    const auto value = best_metric_value(train, validation, evaluation);
    if (!value || !std::isfinite(*value)) return;
    const bool improved =
        config_.logging.best_mode == "max" ? *value > best_loss_ : *value < best_loss_;
    if (!improved) return;
    best_loss_ = *value;
    if (!config_.logging.checkpoints || !writes()) return;
    guarded_save("best", [&] {
      checkpoints_.save_best(checkpoint());
      return std::filesystem::path();
    });
  }

  /// The task's quality figures: its optional `Metrics evaluate(const
  /// EvaluationRequest&)`, in eval mode without gradients, on the rank that
  /// writes, sent to the loggers with the time it took and the share of the
  /// run's time evaluations took. Empty when the task has no such hook, was
  /// not due, or failed (a side task: reported, counted, training goes on).
  Metrics evaluate_task(bool final) {
    constexpr bool task_evaluates = requires(const EvaluationRequest& r) {
      { task_.evaluate(r) } -> std::convertible_to<Metrics>;
    };
    if constexpr (!task_evaluates) {
      return {};
    } else {
      if (!writes() || last_evaluation_step_ == global_step_) return {};
      const RngStateGuard rng;  // draws nothing from the training's generator
      const auto start = detail::Clock::now();
      Metrics figures;
      try {
        torch::NoGradGuard no_grad;
        EvalModeGuard eval(task_.model());
        figures = task_.evaluate(EvaluationRequest{
            .epoch = epoch_,
            .global_step = global_step_,
            .final = final,
            .training_seconds =
                detail::seconds_since(fit_start_) - evaluation_seconds_ - media_seconds_,
            .evaluation_seconds = evaluation_seconds_});
      } catch (const std::exception& e) {
        side_task_failed(fmt::format("the evaluation at step {}", global_step_), e, "evaluation");
        last_evaluation_step_ = global_step_;  // not tried again at this step
        figures = Metrics{};
      }
      evaluation_seconds_ += detail::seconds_since(start);
      if (figures.empty()) return figures;
      last_evaluation_step_ = global_step_;
      const double elapsed = detail::seconds_since(fit_start_);
      const EvaluationContext ctx{.epoch = epoch_,
                                  .global_step = global_step_,
                                  .metrics = figures,
                                  .seconds = detail::seconds_since(start),
                                  .share = elapsed > 0 ? evaluation_seconds_ / elapsed : 0.0,
                                  .final = final};
      guard_logger("on_evaluation", [&] { notify_evaluation(logger_, ctx); });
      relay_logger_notices();
      last_evaluation_ = figures;
      return figures;
    }
  }

  /// The task's loss, under autocast when the run uses mixed precision.
  Loss forward(const Batch& batch) {
    if (!autocast_.enabled) return task_.loss(batch);
    AutocastGuard guard(autocast_.device, autocast_.dtype);
    return task_.loss(batch);
  }

  /// Runs the optimizer steps of one epoch, `training.accumulation_steps`
  /// batches each: every batch from the epoch's position in one process,
  /// this rank's share in data parallel. A task with `train_data(epoch,
  /// const DataShard&)` builds its share itself, from the position and how
  /// many ranks reached it (in one process too); for any other the share is
  /// taken here from the whole list. False when a stop cut it short.
  bool train_epoch() {
    const DataShard shard{.rank = distribution_.rank(),
                          .world_size = distribution_.world_size(),
                          .position = epoch_position_,
                          .drop_last = config_.hardware.distributed_drop_last,
                          .history = epoch_history_};
    // Also in one process: the epoch may have been begun by several ranks,
    // whose batches only the task can tell apart from its own.
    if constexpr (requires { task_.train_data(epoch_, shard); }) {
      auto&& data = task_.train_data(epoch_, shard);
      return train_on(data, true);
    }
    auto&& data = task_.train_data(epoch_);
    return train_on(data, false);
  }

  /// The epoch's steps over `data`: all of it is this rank's when
  /// `task_sharded`, else this rank's share of it is taken here.
  template <class Data>
  bool train_on(Data& data, bool task_sharded) {
    const auto accumulation = config_.training.accumulation_steps;
    const int world = distribution_.world_size();
    const int rank = task_sharded ? 0 : distribution_.rank();
    const int stride = task_sharded ? 1 : world;
    std::int64_t batches = -1;
    if constexpr (std::ranges::sized_range<Data>) {
      batches = static_cast<std::int64_t>(std::ranges::size(data));
    } else if (world > 1) {
      throw Error(
          "data parallel: the task's train_data(epoch) has no size (make it a sized range, such "
          "as a std::vector or kokoro::data::PrefetchLoader), and every rank must know its share "
          "to take as many steps as the others");
    }
    // A run resumed in the middle of an epoch starts after the batches used;
    // a task that shards its data has already started there.
    const std::int64_t start = task_sharded ? 0 : epoch_position_;
    // Where the epoch ends in the position's units (batches over all ranks).
    const std::int64_t end = batches < 0
                                 ? std::numeric_limits<std::int64_t>::max()
                                 : (task_sharded ? epoch_position_ + world * batches : batches);
    std::int64_t own_batches = std::numeric_limits<std::int64_t>::max();
    std::int64_t padding = -1;  // a batch from the share's start, taken again at its end
    if (batches >= 0) {
      const auto mine =
          shard_indices(batches, DataShard{.rank = rank,
                                           .world_size = stride,
                                           .position = start,
                                           .drop_last = !task_sharded && world > 1 &&
                                                        config_.hardware.distributed_drop_last});
      const auto rounds = static_cast<std::int64_t>(mine.size());
      own_batches = rounds;
      if (rounds > 0 && start + (rounds - 1) * stride + rank >= batches) {
        padding = mine.back();
        --own_batches;
      }
      steps_per_epoch_ = step_in_epoch_ + (rounds + accumulation - 1) / accumulation;
    }
    std::vector<Batch> group;
    group.reserve(static_cast<std::size_t>(accumulation));
    const auto run_group = [&] {
      next_position_ =
          advance_position(epoch_position_, end, world, static_cast<std::int64_t>(group.size()));
      step(group);
      group.clear();
      return !rolled_back_;
    };
    std::optional<Batch> padding_batch;
    std::int64_t index = -1;
    std::int64_t taken = 0;
    phase_start(Phase::data);
    for (auto&& batch : data) {
      phase_stop(Phase::data);
      ++index;
      if (index == padding) padding_batch.emplace(batch);
      if (index >= start && (index - start) % stride == rank && taken < own_batches) {
        ++taken;
        if (should_stop()) return false;
        group.emplace_back(std::forward<decltype(batch)>(batch));
        if (static_cast<std::int64_t>(group.size()) == accumulation && !run_group()) return false;
      }
      phase_start(Phase::data);
    }
    phase_stop(Phase::data);
    if (padding_batch) {
      if (should_stop()) return false;
      group.push_back(std::move(*padding_batch));
      if (static_cast<std::int64_t>(group.size()) == accumulation && !run_group()) return false;
    }
    if (!group.empty()) {
      if (distributed() ? should_stop() : reached_stop_condition()) return false;
      if (!run_group()) return false;
    }
    return true;
  }

  /// Whether to stop before the next step: training.max_steps (the same on
  /// every rank), else the time budget or a signal; in data parallel these
  /// are agreed by all ranks at the last step (combine_gradients), so that
  /// no rank waits for a step the others will not take.
  bool should_stop() const {
    if (config_.training.max_steps > 0 && global_step_ >= config_.training.max_steps) return true;
    return distributed() ? stop_agreed_ : reached_stop_condition() || stop_requested() != 0;
  }

  bool distributed() const { return distribution_.world_size() > 1; }
  /// Only rank 0 logs and saves.
  bool writes() const { return distribution_.rank() == 0; }

  /// Data parallel, between backward and unscale: every rank's gradients
  /// become the sample-weighted mean over all ranks' samples, which is what
  /// one process would have computed on all their batches at once. The
  /// step's totals are summed with them: the samples, the loss sums (so one
  /// rank's non-finite loss skips the step on all) and the ranks' wishes to
  /// stop (time budget, signal). A policy with the gradient protocol
  /// (DataParallel) may have sent most gradients during backward already.
  void combine_gradients(std::int64_t samples, torch::Tensor& loss_sum) {
    const double weight = static_cast<double>(samples);
    const bool wants_stop = reached_stop_condition() || stop_requested() != 0;
    auto totals = torch::stack({torch::scalar_tensor(weight, torch::kDouble),
                                loss_sum.detach().to(torch::kCPU, torch::kDouble).reshape({}),
                                torch::scalar_tensor(wants_stop ? 1.0 : 0.0, torch::kDouble)});
    if constexpr (detail::distribution::reduces_gradients<Distribution>) {
      totals = distribution_.finish_gradients(weight, totals);
      const double all_samples = totals[0].item<double>();
      for (auto& p : parameters_) {
        if (p.grad().defined()) p.mutable_grad().div_(all_samples);
      }
    } else {
      // As GradientBuckets does it: a frozen parameter is not sent, and one
      // that no rank used keeps its undefined gradient (which parameters each
      // rank used travels with the totals), so the optimizer skips it as one
      // process would.
      std::vector<torch::Tensor*> grads;
      std::vector<double> used;
      for (auto& p : parameters_) {
        if (!p.requires_grad()) continue;
        auto& grad = p.mutable_grad();
        used.push_back(grad.defined() ? 1.0 : 0.0);
        if (!grad.defined()) grad = torch::zeros_like(p);  // every rank sends every tensor
        grad.mul_(weight);
        grads.push_back(&grad);
      }
      std::vector<torch::Tensor> tensors;
      tensors.reserve(grads.size() + 1);
      for (auto* grad : grads) tensors.push_back(*grad);
      tensors.push_back(torch::cat({totals, torch::tensor(used, torch::kDouble)}));
      distribution_.all_reduce_sum(tensors);
      const auto agreed = tensors.back();
      totals = agreed.narrow(0, 0, totals.numel());
      const double all_samples = totals[0].item<double>();
      const auto* used_anywhere = agreed.data_ptr<double>() + totals.numel();
      for (std::size_t i = 0; i < grads.size(); ++i) {
        if (used_anywhere[i] > 0.0) {
          grads[i]->div_(all_samples);
        } else {
          grads[i]->reset();
        }
      }
    }
    loss_sum = totals[1].to(torch::kFloat);
    stop_agreed_ = totals[2].item<double>() > 0.0;
  }

  void init() {
    autocast_ = plan_autocast(config_.hardware, device_);
    bool loss_scaling = false;  // a scaler that does not say is taken for one that does not
    if constexpr (requires { scaler_.scales_loss(); }) loss_scaling = scaler_.scales_loss();
    if (!loss_scaling) autocast_ = without_loss_scaling(autocast_, config_.hardware, device_);
    if (!autocast_.warning.empty()) warn(autocast_.warning);
    task_.model().to(device_.device());
    task_.model().train();
    if constexpr (requires { task_.make_optimizer(config_); }) {
      optimizer_ = task_.make_optimizer(config_);
    } else {
      const auto& tc = config_.training;
      auto options = torch::optim::AdamWOptions(tc.learning_rate)
                         .betas({tc.adam_beta1, tc.adam_beta2})
                         .eps(tc.adam_eps)
                         .weight_decay(tc.weight_decay);
      optimizer_ = std::make_unique<torch::optim::AdamW>(task_.model().parameters(), options);
    }
    if (!optimizer_ || optimizer_->param_groups().empty()) {
      throw Error("Trainer: the task's optimizer has no parameter groups");
    }
    for (auto& group : optimizer_->param_groups()) {
      base_lrs_.push_back(group.options().get_lr());
      for (const auto& p : group.params()) parameters_.push_back(p);
    }
    apply_learning_rates();
    for (auto& note : run_notes_) say(Message::Level::info, std::move(note));
    run_notes_.clear();
    resume(config_.training.resume);
    if (distributed()) {
      // Every rank starts from rank 0's weights and buffers.
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> state;
      for (const auto& p : task_.model().parameters()) state.push_back(p);
      for (const auto& b : task_.model().buffers()) state.push_back(b);
      distribution_.broadcast(state);
      if constexpr (detail::distribution::reduces_gradients<Distribution>) {
        distribution_.track_gradients(parameters_);
      }
    }
  }

  void warn(std::string message) { say(Message::Level::warning, std::move(message)); }

  /// To the loggers that take messages; to stderr when none does, so that
  /// nothing the run has to say is lost.
  void say(Message::Level level, std::string text) {
    if (!writes()) {
      // Other ranks leave the console to rank 0 but for their warnings.
      if (level == Message::Level::warning) {
        std::fprintf(stderr, "kokoro: rank %d: warning: %s\n", distribution_.rank(), text.c_str());
      }
      return;
    }
    const Message message{.level = level, .text = std::move(text)};
    if constexpr (MessageLogger<Logger>) {
      try {
        logger_.on_message(message);
      } catch (const std::exception&) {
        // The logger that prints is failing: stderr still gets the message.
        ++logger_failures_;
        std::fprintf(stderr, "kokoro: %s%s\n", level == Message::Level::warning ? "warning: " : "",
                     message.text.c_str());
      }
    } else {
      std::fprintf(stderr, "kokoro: %s%s\n", level == Message::Level::warning ? "warning: " : "",
                   message.text.c_str());
    }
  }

  /// A logger's own notices (where it streams, what it sent) reach the
  /// loggers that print, like the Trainer's messages.
  void relay_logger_notices() {
    if constexpr (SpeakingLogger<Logger>) {
      std::vector<Message> notices;
      guard_logger("take_messages", [&] { notices = logger_.take_messages(); });
      for (auto& message : notices) say(message.level, std::move(message.text));
    }
  }

  ScheduleClock clock() const {
    return {.epoch = epoch_,
            .step_in_epoch = step_in_epoch_,
            .steps_per_epoch = steps_per_epoch_,
            .global_step = global_step_};
  }

  void apply_learning_rates() {
    auto& groups = optimizer_->param_groups();
    for (std::size_t i = 0; i < groups.size(); ++i) {
      groups[i].options().set_lr(scheduler_.lr(base_lrs_[i]));
    }
  }

  /// training.max_steps reached, or training.max_minutes used up.
  bool reached_stop_condition() const {
    if (config_.training.max_steps > 0 && global_step_ >= config_.training.max_steps) return true;
    return deadline_ && detail::Clock::now() >= *deadline_;
  }

  /// Sends the running metrics since the last log to the logger.
  void flush_step_log() {
    if (window_steps_ == 0) return;
    // In data parallel the means and the samples are over every rank.
    if (distributed()) {
      window_meter_.sum_across(
          [&](std::vector<torch::Tensor>& t) { distribution_.all_reduce_sum(t); });
    }
    Metrics metrics = window_meter_.mean();
    metrics.set("lr", current_lr());
    metrics.set("grad_norm", last_grad_norm_.item<double>());
    metrics.set("grad_scale", scaler_.scale_factor());
    metrics.set("skipped_steps", static_cast<double>(skipped_steps_));
    metrics.set("nonfinite_steps", static_cast<double>(nonfinite_steps_));
    metrics.set("oom_recoveries", static_cast<double>(oom_recoveries_));
    metrics.set("checkpoint_failures", static_cast<double>(checkpoint_failures_));
    metrics.set("logger_failures", static_cast<double>(logger_failures_));
    metrics.set("side_task_failures", static_cast<double>(side_task_failures_));
    const double seconds = detail::seconds_since(window_start_);
    if (seconds > 0) {
      metrics.set("samples_per_sec", window_meter_.samples() / seconds);
      if (distributed()) {
        metrics.set("samples_per_sec_per_rank",
                    window_meter_.samples() / seconds / distribution_.world_size());
      }
    }
    if constexpr (requires { memory_.metrics(metrics); }) memory_.metrics(metrics);
    guard_logger("on_step", [&] {
      logger_.on_step(StepContext{.epoch = epoch_,
                                  .global_step = global_step_,
                                  .step_in_epoch = step_in_epoch_,
                                  .steps_per_epoch = steps_per_epoch_,
                                  .samples = last_step_samples_,
                                  .step_taken = last_step_taken_,
                                  .metrics = metrics});
    });
    epoch_meter_.add(window_meter_);
    window_meter_.reset();
    window_steps_ = 0;
    window_start_ = detail::Clock::now();
  }

  /// The configuration with its run folder resolved (resolve_run_folder;
  /// in data parallel rank 0 decides for all); what was decided goes to
  /// `notes`, said once the loggers exist.
  static Config with_run_folder(Config config, std::vector<std::string>& notes,
                                Distribution& distribution) {
    notes = resolve_run_folder(config, distribution).notes;
    return config;
  }

  /// Runs `save` (which returns the path written, or an empty one). A
  /// failure (a full disk, a folder without permission) is reported with its
  /// cause and counted; the store keeps the last good file, and training
  /// goes on to try again at the next interval.
  template <class Save>
  std::optional<std::filesystem::path> guarded_save(const char* what, Save&& save) {
    try {
      std::filesystem::path path = save();
      if (!path.empty()) last_good_checkpoint_ = path;
      return path;
    } catch (const std::exception& e) {
      ++checkpoint_failures_;
      // Said once per kind of save and cause (the text after the file name:
      // "No space left on device"), then counted in checkpoint_failures.
      const auto cause = detail::first_line(e.what());
      const auto tail = cause.rfind(": ");
      const auto key = fmt::format("save {}: {}", what,
                                   tail == std::string::npos ? cause : cause.substr(tail + 2));
      if (reported_failures_.insert(key).second) {
        warn(fmt::format("could not save the {} checkpoint at step {}: {}; {}", what, global_step_,
                         cause,
                         last_good_checkpoint_.empty()
                             ? std::string("no checkpoint of this call has been saved yet")
                             : "the last good one is " + last_good_checkpoint_.string()));
      }
      return std::nullopt;
    }
  }

  /// A periodic checkpoint of now (once per step), guarded.
  std::optional<std::filesystem::path> save_periodic() {
    if (last_periodic_step_ == global_step_ && !last_good_checkpoint_.empty()) {
      return last_good_checkpoint_;
    }
    auto path = guarded_save("periodic", [&] {
      return std::filesystem::path(checkpoints_.save_periodic(global_step_, checkpoint()));
    });
    if (path) last_periodic_step_ = global_step_;
    return path;
  }

  /// Every stop leaves a state to resume from: a periodic checkpoint (the
  /// one `resume: auto` takes), and, unless a signal asked for a quick exit,
  /// final.pt and the weights. `trained`: whether this call took a step.
  void save_at_stop(RunSummary& summary, bool trained) {
    if (!config_.logging.checkpoints) return;
    if (summary.stop_signal != 0) {
      const auto path = save_periodic();
      if (path) summary.checkpoint = path->string();
      say(Message::Level::info,
          fmt::format("stopped by {} after step {}; {}",
                      summary.stop_signal == SIGINT ? "SIGINT" : "SIGTERM", global_step_,
                      path ? "checkpoint saved to " + path->string()
                           : std::string("the checkpoint could not be saved")));
      if (!path) summary.checkpoint_error = final_state_lost();
      return;
    }
    if (!trained) return;  // nothing new to save
    const auto periodic = save_periodic();
    const auto final_path = guarded_save("final", [&] {
      return std::filesystem::path(
          checkpoints_.save_final(checkpoint(), module_state_dict(task_.model())));
    });
    if (final_path) summary.checkpoint = final_path->string();
    if (!periodic || !final_path) summary.checkpoint_error = final_state_lost();
  }

  std::string final_state_lost() const {
    return fmt::format("the state at step {} could not be saved; {}", global_step_,
                       last_good_checkpoint_.empty()
                           ? std::string("no checkpoint of this call was saved")
                           : "the last good checkpoint is " + last_good_checkpoint_.string());
  }

  /// Calls the logger; a throw is counted and reported once per cause, and
  /// training goes on.
  template <class Call>
  void guard_logger(const char* hook, Call&& call) {
    if (!writes()) return;
    try {
      call();
    } catch (const std::exception& e) {
      ++logger_failures_;
      auto cause = detail::first_line(e.what());
      if (reported_failures_.insert(std::string(hook) + ": " + cause).second) {
        warn(
            fmt::format("a logger failed in {} and training goes on (further failures of this "
                        "kind are counted in logger_failures): {}",
                        hook, cause));
      }
    }
  }

  /// A side task that failed: reported once per kind of task and cause
  /// (`what` says which, `kind` groups them: the samples of every epoch),
  /// counted every time.
  void side_task_failed(const std::string& what, const std::exception& e,
                        const std::string& kind = {}) {
    ++side_task_failures_;
    auto cause = detail::first_line(e.what());
    if (reported_failures_.insert((kind.empty() ? what : kind) + ": " + cause).second) {
      warn(fmt::format("{} failed and training goes on: {}", what, cause));
    }
  }

  /// After training.max_nonfinite_steps non-finite steps in a row: back to
  /// the newest valid checkpoint with every learning rate times
  /// training.rollback_lr_factor, the epoch restarted from its position.
  /// Throws kokoro::Error when training.max_rollbacks is used up or there is
  /// no checkpoint to go back to.
  void roll_back() {
    const auto& tc = config_.training;
    const auto run = nonfinite_run_;
    if (rollbacks_ >= tc.max_rollbacks) {
      throw Error(fmt::format(
          "training diverged: {} steps in a row with a non-finite loss or gradient at step {}, "
          "after {} rollbacks (training.max_rollbacks); lower training.learning_rate or check "
          "the data",
          run, global_step_, rollbacks_));
    }
    const auto path = checkpoints_.latest_valid(nullptr);
    if (!path) {
      throw Error(fmt::format(
          "{} steps in a row with a non-finite loss or gradient at step {}, and no checkpoint "
          "of this run to roll back to; lower training.learning_rate or save checkpoints "
          "more often (logging.checkpoint_every_steps)",
          run, global_step_));
    }
    const auto rollbacks = rollbacks_ + 1;
    const auto nonfinite = nonfinite_steps_;
    const auto from_step = global_step_;
    load_checkpoint(*path);
    // The checkpoint's rates already carry the rollbacks made before it was
    // saved; every one since (this one included) lowers them once more, so
    // that going back to the same checkpoint again never replays the same
    // rates into the same divergence.
    const auto since_saved = std::max<std::int64_t>(1, rollbacks - rollbacks_);
    const double factor = std::pow(tc.rollback_lr_factor, static_cast<double>(since_saved));
    rollbacks_ = rollbacks;
    nonfinite_steps_ = nonfinite;
    nonfinite_run_ = 0;
    for (auto& lr : base_lrs_) lr *= factor;
    apply_learning_rates();
    rolled_back_ = true;
    // The step is the checkpoint's again, but the state is not: the next
    // save writes it (a stop now must not leave the checkpoint as it was).
    last_periodic_step_ = -1;
    warn(fmt::format(
        "{} steps in a row with a non-finite loss or gradient (step {}): rolled back "
        "to {} (step {}) with the learning rates times {} (rollback {} of at most {})",
        run, from_step, path->string(), global_step_, factor, rollbacks_, tc.max_rollbacks));
  }

  Distribution distribution_;           // before config_: rank 0 resolves the run folder for all
  std::vector<std::string> run_notes_;  // before config_: filled while it is made
  Config config_;
  detail::RunSetup setup_;
  T task_;
  bool told_pressure_ = false;  ///< the pressure the task last heard of
  Device device_ = make_policy<Device>(config_);
  Scaler scaler_ = make_policy<Scaler>(config_);
  Memory memory_ = make_policy<Memory>(config_);
  Scheduler scheduler_ = make_policy<Scheduler>(config_);
  Logger logger_ = make_policy<Logger>(config_);
  Profiler profiler_ = make_policy<Profiler>(config_);
  Checkpoints checkpoints_ = make_policy<Checkpoints>(config_);
  AutocastPlan autocast_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<torch::Tensor> parameters_;
  std::vector<double> base_lrs_;

  // Loop state. Counters live in members so that a checkpoint can save them.
  std::int64_t epoch_ = 0;
  std::int64_t global_step_ = 0;
  std::int64_t step_in_epoch_ = 0;
  std::int64_t epoch_position_ = 0;             // batches of this epoch used, over all ranks
  std::vector<PositionStretch> epoch_history_;  // how many ranks used them
  std::int64_t next_position_ = -1;             // where the step train_epoch runs leaves it
  bool stop_agreed_ = false;  // data parallel: a rank asked to stop at the last step
  std::int64_t steps_per_epoch_ = 0;
  std::optional<detail::Clock::time_point> deadline_;  // training.max_minutes
  std::int64_t skipped_steps_ = 0;
  std::int64_t nonfinite_steps_ = 0;
  std::int64_t nonfinite_run_ = 0;  // non-finite steps in a row
  std::int64_t rollbacks_ = 0;
  bool rolled_back_ = false;  // the epoch in progress must start again
  std::int64_t checkpoint_failures_ = 0;
  std::int64_t logger_failures_ = 0;
  std::int64_t side_task_failures_ = 0;
  std::set<std::string> reported_failures_;  // "what: cause", said once each
  std::filesystem::path last_good_checkpoint_;
  std::int64_t last_periodic_step_ = -1;
  std::int64_t oom_recoveries_ = 0;
  std::int64_t split_factor_ = 1;  // pieces per batch kept after a recovery (oom_keep_split)
  double last_loss_ = std::numeric_limits<double>::quiet_NaN();
  double best_loss_ = initial_best();
  double evaluation_seconds_ = 0.0;         // this fit()'s time in the task's evaluations
  double media_seconds_ = 0.0;              // this fit()'s time in samples (send_media)
  double last_media_seconds_ = -1.0;        // the last samples' time (-1: none yet)
  std::int64_t last_evaluation_step_ = -1;  // the step last evaluated or failed at (-1: none)
  Metrics last_evaluation_;
  detail::Clock::time_point fit_start_{};

  // What the next step log reports.
  LossMeter window_meter_;
  LossMeter epoch_meter_;
  std::int64_t window_steps_ = 0;
  detail::Clock::time_point window_start_ = detail::Clock::now();
  torch::Tensor last_grad_norm_;
  bool last_step_taken_ = true;
  std::int64_t last_step_samples_ = 0;
};

}  // namespace kokoro
