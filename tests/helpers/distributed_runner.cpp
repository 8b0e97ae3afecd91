// One rank of a small data-parallel run for the distributed tests, started
// by the test (with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set) or by
// torchrun, or as one plain process for the reference run. The task is the
// linear test task on 80 samples in batches of `batch`; the rank records
// which batches it trained on.
//   kokoro_distributed_runner DIR [batch=B] [steps=S] [accumulation=A]
//       [scaler=dynamic] [files] [resume] [die_at=S] [hang_at=S] [timeout=T]
//       [drop_last] [samples=N] [no_writes] [oom_at=S] [term_at=S] [overlap=off] [die_once_at=S]
//       [extra_params] [frozen_only] [weight_decay=W] [dropout=P] [bucket_fault=S]
//   kokoro_distributed_runner DIR task=tts corpus=DIR cache=DIR batch=B [steps=S]
//       [accumulation=A] [scaler=dynamic] [overlap=off] [checkpointing] [files] [resume]
// The TTS run writes "clips" with the epoch:id of every clip it trained on.
// files: checkpoints every 3 steps and metrics.jsonl in DIR/run; resume:
// training.resume auto; die_at / hang_at: rank 1 exits / sleeps before that
// step (die_once_at: only if DIR/died-once does not exist yet, which it
// makes); oom_at: rank 1 runs out of memory once at that step (std::bad_alloc,
// so the Trainer retries the batch in halves); term_at: rank 1 gets SIGTERM
// during that step; no_writes: this process may write no file content
// (RLIMIT_FSIZE 0), so that a write it should not make fails and is counted.
// extra_params: the model also holds "unused" (4 ones, requiring a gradient
// but never used) and "frozen" (3 twos, requires_grad false), both in the
// optimizer; frozen_only: only the frozen one. bucket_fault: one bucket per
// parameter, and rank 1 runs out of memory (std::bad_alloc) while sending
// the second bucket in that step's backward. dropout: that dropout before
// the linear layer; each step's mask is written as a line "masks". Writes
// DIR/result-rank<R>.txt: "steps N", "params v ...", "batches i ..." (each with its values on one
// line), and "overlap" with DataParallel's GradientOverlapReport (steps,
// buckets, started in backward, started after, redone steps); exits 0 after a complete run, 1 on an
// error (printed to stderr).
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/tts/english_tts_task.hpp>

#include "test_tasks.hpp"

namespace {

int g_die_at = -1;
int g_die_once_at = -1;
std::string g_dir;
int g_hang_at = -1;
int g_oom_at = -1;
int g_term_at = -1;

/// The linear task recording the batches it trains on by their index.
struct TaggedTask : kokoro::test::LinearTask {
  using LinearTask::LinearTask;
  kokoro::Loss loss(const Batch& b) {
    if (model().is_training()) {
      // A batch's second half (out-of-memory recovery) is recorded as -1.
      const auto it = ids.find(b.x[0][0].template item<float>());
      seen.push_back(it == ids.end() ? -1 : it->second);
      const int rank = std::getenv("RANK") ? std::atoi(std::getenv("RANK")) : 0;
      const auto step = static_cast<int>(steps_started++);
      if (rank == 1 && step == g_die_at) std::_Exit(7);
      if (rank == 1 && step == g_die_once_at) {
        // Once per run folder: a restarted rank 1 trains on.
        const auto marker = g_dir + "/died-once";
        if (std::FILE* f = std::fopen(marker.c_str(), "r")) {
          std::fclose(f);
        } else {
          std::fclose(std::fopen(marker.c_str(), "w"));
          std::_Exit(7);
        }
      }
      if (rank == 1 && step == g_term_at) std::raise(SIGTERM);
      if (rank == 1 && step == g_oom_at) {
        seen.pop_back();
        --steps_started;
        g_oom_at = -1;  // once: the halves then run
        throw std::bad_alloc();
      }
      if (rank == 1 && step == g_hang_at) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    return LinearTask::loss(b);
  }
  std::map<float, int> ids;
  std::vector<int> seen;
  std::int64_t steps_started = 0;
};

/// TaggedTask with the extra parameters of `extra_params` / `frozen_only`,
/// and each training forward's dropout mask as a string of 0 and 1.
struct ExtraTask : TaggedTask {
  explicit ExtraTask(const kokoro::test::Config& config) : TaggedTask(config) {
    const char* extra = std::getenv("KOKORO_RUNNER_EXTRA");
    const std::string which = extra ? extra : "";
    if (which == "all") {
      model().register_parameter("unused", torch::ones({4}));
    }
    if (which == "all" || which == "frozen") {
      model().register_parameter("frozen", torch::full({3}, 2.0f), /*requires_grad=*/false);
    }
  }
  kokoro::Loss loss(const Batch& b) {
    auto result = TaggedTask::loss(b);
    if (model().is_training() && last_dropped.defined()) {
      std::string mask;
      const auto flat = last_dropped.reshape({-1}).to(torch::kInt);
      for (std::int64_t i = 0; i < flat.numel(); ++i) mask += flat[i].item<int>() ? '1' : '0';
      masks.push_back(mask);
    }
    return result;
  }
  std::vector<std::string> masks;
};

struct Policies : kokoro::DefaultPolicies {
  using logger = kokoro::Loggers<kokoro::JsonlLogger>;
};
struct ScaledPolicies : Policies {
  using scaler = kokoro::DynamicGradScaler;
};

void write_overlap(std::ofstream& out, const kokoro::DataParallel& distribution) {
  const auto r = distribution.gradient_overlap();
  out << "overlap " << r.steps << ' ' << r.buckets << ' ' << r.started_in_backward << ' '
      << r.started_after_backward << ' ' << r.redone_steps << '\n';
}

template <class P>
int run(const std::string& dir, const std::map<std::string, std::string>& options) {
  const auto get = [&](const std::string& key, const std::string& fallback) {
    const auto it = options.find(key);
    return it == options.end() ? fallback : it->second;
  };
  const std::int64_t batch = std::stoll(get("batch", "4"));
  const std::int64_t samples = std::stoll(get("samples", "80"));
  auto config = kokoro::test::quick_config();
  config.training.epochs = 1000;
  config.training.max_steps = std::stoll(get("steps", "10"));
  config.training.accumulation_steps = std::stoll(get("accumulation", "1"));
  config.training.validate_every = 1;
  config.hardware.distributed_timeout = std::stod(get("timeout", "30"));
  config.hardware.distributed_drop_last = options.contains("drop_last");
  config.hardware.distributed_overlap = get("overlap", "on") != "off";
  config.training.weight_decay = std::stod(get("weight_decay", "0"));
  config.model.dropout = std::stod(get("dropout", "0"));
  const std::int64_t bucket_fault = std::stoll(get("bucket_fault", "-1"));
  if (bucket_fault >= 0) config.hardware.distributed_bucket_mb = 1.0 / (1 << 20);  // 1 byte
  if (options.contains("extra_params")) ::setenv("KOKORO_RUNNER_EXTRA", "all", 1);
  if (options.contains("frozen_only")) ::setenv("KOKORO_RUNNER_EXTRA", "frozen", 1);
  config.logging.output_dir = dir;
  config.logging.run_name = "run";
  if (options.contains("resume")) config.training.resume = "auto";
  if (options.contains("files")) {
    config.logging.checkpoints = true;
    config.logging.checkpoint_every_steps = 3;
    config.logging.jsonl = true;
  }
  kokoro::Trainer<ExtraTask, P> trainer(config);
  auto& task = trainer.task();
  if (bucket_fault >= 0) {
    const int rank = trainer.distribution().rank();
    trainer.distribution().inject_bucket_fault([&task, rank, bucket_fault](std::size_t bucket) {
      static bool fired = false;
      if (rank == 1 && bucket == 1 && !fired && task.steps_started == bucket_fault + 1) {
        fired = true;
        throw std::bad_alloc();
      }
    });
  }
  std::vector<std::int64_t> sizes;
  for (std::int64_t left = samples; left > 0; left -= batch) sizes.push_back(std::min(batch, left));
  task.train = kokoro::test::split(kokoro::test::linear_data(samples), sizes);
  for (std::size_t i = 0; i < task.train.size(); ++i) {
    task.ids[task.train[i].x[0][0].template item<float>()] = static_cast<int>(i);
  }
  task.valid = kokoro::test::split(kokoro::test::linear_data(12, 7), {4, 4, 4});
  const auto summary = trainer.fit();
  const rlimit unlimited{.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
  setrlimit(RLIMIT_FSIZE, &unlimited);  // the result file is the test's, not the run's
  const auto rank = trainer.distribution().rank();
  std::ofstream out(dir + "/result-rank" + std::to_string(rank) + ".txt");
  out.precision(9);
  out << "steps " << summary.global_step << "\nparams";
  for (const auto& p : task.model().parameters()) {
    const auto flat = p.detach().reshape({-1});
    for (std::int64_t i = 0; i < flat.numel(); ++i) out << ' ' << flat[i].template item<float>();
  }
  out << "\nbatches";
  for (const auto id : task.seen) out << ' ' << id;
  out << "\nmasks";
  for (const auto& mask : task.masks) out << ' ' << mask;
  for (const auto& item : task.model().named_parameters()) {
    const auto& name = item.key();
    const auto& p = item.value();
    if (name != "unused" && name != "frozen") continue;
    out << '\n' << name << ' ' << p.grad().defined();
    for (std::int64_t i = 0; i < p.numel(); ++i) out << ' ' << p[i].template item<float>();
  }
  out << "\nvalidation " << summary.last_validation.get("loss").value_or(-1.0);
  out << "\nfailures " << summary.checkpoint_failures + summary.logger_failures << '\n';
  write_overlap(out, trainer.distribution());
  if (summary.global_step != config.training.max_steps) return 3;  // stopped early
  return 0;
}

/// Writes the parameters of `module` as one line after `key`.
void write_parameters(std::ofstream& out, const char* key, torch::nn::Module& module) {
  out << key;
  for (const auto& p : module.parameters()) {
    const auto flat = p.detach().reshape({-1}).to(torch::kDouble).contiguous();
    const auto* values = flat.data_ptr<double>();
    for (std::int64_t i = 0; i < flat.numel(); ++i) out << ' ' << values[i];
  }
  out << '\n';
}

/// The TTS task recording the clips it trains on, with their epoch.
struct RecordingTtsTask : kokoro::tts::EnglishTtsTask {
  using EnglishTtsTask::EnglishTtsTask;
  auto train_data(std::int64_t epoch) {
    epoch_ = epoch;
    return EnglishTtsTask::train_data(epoch);
  }
  auto train_data(std::int64_t epoch, const kokoro::DataShard& shard) {
    epoch_ = epoch;
    return EnglishTtsTask::train_data(epoch, shard);
  }
  kokoro::Loss loss(const kokoro::tts::TtsBatch& batch) {
    if (model().is_training()) {
      for (const auto& id : batch.ids) clips.push_back(std::to_string(epoch_) + ":" + id);
    }
    return EnglishTtsTask::loss(batch);
  }
  std::vector<std::string> clips;

 private:
  std::int64_t epoch_ = 0;
};

/// The TTS task on the corpus `corpus=DIR` (features cached in `cache=DIR`),
/// float32 without dropout, batches of `batch` clips: the model is tiny, so
/// that 10 steps take seconds.
template <class P>
int run_tts(const std::string& dir, const std::map<std::string, std::string>& options) {
  kokoro::tts::TtsConfig config(kokoro::test::quick_framework_config());
  config.data.data_dir = options.at("corpus");
  config.data.cache_dir = options.at("cache");
  config.data.validation_split = 0.0;
  config.data.num_workers = 1;
  config.model.hidden_dim = 32;
  config.model.encoder_layers = 1;
  config.model.decoder_layers = 1;
  config.model.num_heads = 2;
  config.model.ff_dim = 64;
  config.model.dropout = 0.0;
  config.model.attention_dropout = 0.0;
  config.model.gradient_checkpointing = options.contains("checkpointing") ? "true" : "false";
  config.hardware.distributed_overlap =
      !options.contains("overlap") || options.at("overlap") != "off";
  config.hardware.distributed_bucket_mb = 1.0 / 64;  // many buckets, so that overlap shows
  config.audio.max_frames = 1000;
  config.training.batch_size = std::stoll(options.at("batch"));
  config.training.learning_rate = 3e-3;
  config.training.epochs = 1000;
  config.training.max_steps = std::stoll(options.contains("steps") ? options.at("steps") : "10");
  if (options.contains("accumulation")) {
    config.training.accumulation_steps = std::stoll(options.at("accumulation"));
  }
  config.logging.output_dir = dir;
  config.logging.run_name = "run";
  config.logging.media_every_epochs = 0;
  config.evaluation.every_epochs = 0;
  if (options.contains("resume")) config.training.resume = "auto";
  if (options.contains("files")) {
    config.logging.checkpoints = true;
    config.logging.checkpoint_every_steps = 3;
  }
  kokoro::Trainer<RecordingTtsTask, P> trainer(config);
  std::ofstream out(dir + "/result-rank" + std::to_string(trainer.distribution().rank()) + ".txt");
  out.precision(9);
  write_parameters(out, "initial", trainer.task().model());
  const auto summary = trainer.fit();
  out << "steps " << summary.global_step << '\n';
  write_parameters(out, "params", trainer.task().model());
  out << "clips";
  for (const auto& clip : trainer.task().clips) out << ' ' << clip;
  out << '\n';
  write_overlap(out, trainer.distribution());
  return summary.global_step == config.training.max_steps ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kokoro_distributed_runner DIR [key=value | flag] ...\n");
    return 2;
  }
  std::map<std::string, std::string> options;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    options[arg.substr(0, eq)] = eq == std::string::npos ? "" : arg.substr(eq + 1);
  }
  if (options.contains("die_at")) g_die_at = std::stoi(options["die_at"]);
  if (options.contains("die_once_at")) g_die_once_at = std::stoi(options["die_once_at"]);
  g_dir = argv[1];
  if (options.contains("hang_at")) g_hang_at = std::stoi(options["hang_at"]);
  if (options.contains("oom_at")) g_oom_at = std::stoi(options["oom_at"]);
  if (options.contains("term_at")) g_term_at = std::stoi(options["term_at"]);
  if (options.contains("no_writes")) {
    std::signal(SIGXFSZ, SIG_IGN);  // writes fail with EFBIG instead
    const rlimit limit{.rlim_cur = 0, .rlim_max = RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  try {
    const std::string dir = argv[1];
    if (options["task"] == "tts") {
      return options["scaler"] == "dynamic" ? run_tts<ScaledPolicies>(dir, options)
                                            : run_tts<Policies>(dir, options);
    }
    const int code = options["scaler"] == "dynamic" ? run<ScaledPolicies>(dir, options)
                                                    : run<Policies>(dir, options);
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro_distributed_runner: %s\n", e.what());
    return 1;
  }
}
