// kokoro-minimal: a downstream-style trainer. It composes its own policy
// bundle, overriding the scheduler with one of its own (HalvingLR), and
// trains a small MLP on synthetic data.
//
//   kokoro-minimal [--config FILE] [--resume auto|PATH] [section.key=value ...]
#include <kokoro/trainer.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "common/command_line.hpp"
#include "halving_lr.hpp"
#include "regression_task.hpp"

struct MinimalPolicies : kokoro::DefaultPolicies {
  using scheduler = minimal::HalvingLR;
};
using MinimalTrainer = kokoro::Trainer<minimal::RegressionTask, MinimalPolicies>;

namespace {

/// The example's defaults: a small model that trains in seconds.
minimal::Config example_defaults() {
  minimal::Config config;
  config.regression.hidden_dim = 64;
  config.training.batch_size = 32;
  config.training.epochs = 60;
  config.training.learning_rate = 1e-2;
  config.training.weight_decay = 0.0;
  config.logging.log_every = 16;  // one step line per epoch (16 batches)
  config.logging.output_dir = "runs/minimal";
  config.logging.checkpoint_every_epochs = 20;
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Trains a small MLP on synthetic data with a custom LR schedule. Each run writes to\n"
      "<logging.output_dir>/<run name>/ (checkpoints/, metrics.jsonl, ...); every stop leaves a\n"
      "checkpoint that --resume auto continues; SIGINT/SIGTERM save one and exit 0.",
      "kokoro-minimal");
  std::string config_file;
  bool print_config = false;
  bool no_mixed_precision = false;
  std::string resume;
  std::vector<std::string> overrides;
  app.add_option("--config", config_file, "YAML configuration (see --print-config)")
      ->option_text("FILE");
  app.add_flag("--print-config", print_config,
               "print the effective configuration as YAML and exit");
  app.add_flag("--no-mixed-precision", no_mixed_precision,
               "train in float32 (same as hardware.mixed_precision=false)");
  app.add_option("--resume", resume,
                 "auto: continue the latest run (or logging.run_name) from its newest valid "
                 "checkpoint; PATH: start from that file")
      ->option_text("auto|PATH");
  examples::add_overrides(app, overrides);
  if (const auto exit_code = examples::parse_command_line(app, argc, argv, overrides)) {
    return *exit_code;
  }

  try {
    auto config = example_defaults();
    if (!config_file.empty()) config = kokoro::load_config(config_file, config);
    if (!resume.empty()) kokoro::apply_overrides(config, {"training.resume=" + resume});
    if (no_mixed_precision) kokoro::apply_overrides(config, {"hardware.mixed_precision=false"});
    kokoro::apply_overrides(config, overrides);
    if (print_config) {
      std::fputs(kokoro::to_yaml(config).c_str(), stdout);
      return 0;
    }

    MinimalTrainer trainer(config);
    const double before = trainer.validate().get("loss").value_or(0.0);
    const auto summary = trainer.fit();
    if (!summary.checkpoint_error.empty()) {
      std::fprintf(stderr, "kokoro-minimal: %s\n", summary.checkpoint_error.c_str());
      return 1;
    }
    if (summary.stop_signal != 0) return 0;  // stopped on request, checkpoint saved
    const double after = summary.last_validation.get("loss").value_or(before);
    std::printf("validation loss: %.4f before training, %.4f after (%.1fx lower)\n", before, after,
                after > 0 ? before / after : 0.0);
    return after < before ? 0 : 1;
  } catch (const kokoro::ConfigError& e) {
    std::fprintf(stderr, "kokoro-minimal: configuration error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro-minimal: %s\n", e.what());
    return 1;
  }
}
