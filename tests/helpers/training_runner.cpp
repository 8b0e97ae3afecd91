// A small real training run for the fault-injection tests: the linear test
// task behind dropout, steps of a few milliseconds, a checkpoint every 3
// steps, metrics.jsonl on, so that a test can kill it (SIGKILL, SIGINT,
// SIGTERM) at any moment, resume it with `auto`, and compare its final
// weights with a run that was never interrupted.
//   kokoro_training_runner DIR MAX_STEPS [auto] [fsize=BYTES] [tensorboard]
// auto: resume; fsize: a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored, as a
// full disk looks to the writers); tensorboard: that logger too. The run is
// DIR/run. Prints "steps S logger_failures L checkpoint_failures C" and the
// checkpoint error, if any; exits 0 once it has taken MAX_STEPS steps with
// its state saved (final.pt then holds the weights), 3 when stopped by a
// signal, 4 when the last state could not be saved, 1 on an error.
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "test_tasks.hpp"

namespace {

struct SlowTask : kokoro::test::LinearTask {
  using LinearTask::LinearTask;
  kokoro::Loss loss(const Batch& b) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return LinearTask::loss(b);
  }
};

struct Policies : kokoro::DefaultPolicies {
  using logger = kokoro::Loggers<kokoro::JsonlLogger, kokoro::TensorBoardLogger>;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(
        stderr, "usage: kokoro_training_runner DIR MAX_STEPS [auto] [fsize=BYTES] [tensorboard]\n");
    return 2;
  }
  std::string resume;
  bool tensorboard = false;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "auto") {
      resume = "auto";
    } else if (arg == "tensorboard") {
      tensorboard = true;
    } else if (arg.starts_with("fsize=")) {
      std::signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead
      const rlimit limit{.rlim_cur = std::stoul(arg.substr(6)), .rlim_max = RLIM_INFINITY};
      setrlimit(RLIMIT_FSIZE, &limit);
    } else {
      std::fprintf(stderr, "kokoro_training_runner: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  try {
    auto config = kokoro::test::quick_config();
    config.model.dropout = 0.3;  // the random generator's state must survive a resume
    config.training.epochs = 1000;
    config.training.max_steps = std::stoll(argv[2]);
    config.training.scheduler = "cosine_warm_restarts";
    config.training.scheduler_interval = "step";
    config.training.scheduler_t0 = 4;
    config.training.warmup_steps = 2;
    config.training.resume = resume;
    config.logging.output_dir = argv[1];
    config.logging.run_name = "run";
    config.logging.checkpoints = true;
    config.logging.checkpoint_every_steps = 3;
    config.logging.checkpoint_every_epochs = 0;
    config.logging.keep_checkpoints = 2;
    config.logging.jsonl = true;
    config.logging.tensorboard = tensorboard;
    kokoro::Trainer<SlowTask, Policies> trainer(config);
    trainer.task().train = kokoro::test::split(kokoro::test::linear_data(40), {8, 8, 8, 8, 8});
    trainer.task().valid = kokoro::test::split(kokoro::test::linear_data(8, 7), {8});
    const auto summary = trainer.fit();
    const rlimit unlimited{.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &unlimited);  // the summary must reach the log file
    std::printf("steps %lld logger_failures %lld checkpoint_failures %lld\n",
                static_cast<long long>(summary.global_step),
                static_cast<long long>(summary.logger_failures),
                static_cast<long long>(summary.checkpoint_failures));
    if (!summary.checkpoint_error.empty()) std::printf("%s\n", summary.checkpoint_error.c_str());
    std::fflush(stdout);
    if (summary.stop_signal != 0) return 3;
    if (!summary.checkpoint_error.empty()) return 4;
    return summary.global_step == config.training.max_steps ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro_training_runner: %s\n", e.what());
    return 1;
  }
}
