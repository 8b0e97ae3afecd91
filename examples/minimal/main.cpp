// kokoro-minimal: a downstream-style trainer. It composes its own policy
// bundle, overriding the scheduler with one of its own (HalvingLR), and
// trains a small MLP on synthetic data.
//
//   kokoro-minimal [--config FILE] [section.key=value ...]
#include <kokoro/trainer.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "halving_lr.hpp"
#include "regression_task.hpp"

struct MinimalPolicies : kokoro::DefaultPolicies {
  using scheduler = minimal::HalvingLR;
};
using MinimalTrainer = kokoro::Trainer<minimal::RegressionTask, MinimalPolicies>;

namespace {

constexpr std::string_view kUsage =
    "usage: kokoro-minimal [--config FILE] [--resume auto|PATH] [section.key=value ...]\n"
    "Trains a small MLP on synthetic data with a custom LR schedule.\n"
    "  --config FILE        YAML configuration (see --print-config)\n"
    "  --print-config       print the effective configuration as YAML and exit\n"
    "  --no-mixed-precision train in float32 (same as hardware.mixed_precision=false)\n"
    "  --resume auto|PATH   continue from the newest valid checkpoint of the run, or a file\n"
    "Checkpoints go to <logging.output_dir>/checkpoints; SIGINT/SIGTERM save one and exit 0.\n"
    "  section.key=value    override one field, e.g. training.epochs=20\n";

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
  try {
    auto config = example_defaults();
    std::vector<std::string> overrides;
    bool print_config = false;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage.data(), stdout);
        return 0;
      } else if (arg == "--config" && i + 1 < argc) {
        config = kokoro::load_config(argv[++i], config);
      } else if (arg == "--print-config") {
        print_config = true;
      } else if (arg == "--resume" && i + 1 < argc) {
        overrides.push_back(std::string("training.resume=") + argv[++i]);
      } else if (arg == "--no-mixed-precision") {
        overrides.emplace_back("hardware.mixed_precision=false");
      } else if (arg.find('=') != std::string_view::npos) {
        overrides.emplace_back(arg);
      } else {
        std::fprintf(stderr, "kokoro-minimal: unknown argument '%s'\n%s", argv[i], kUsage.data());
        return 2;
      }
    }
    kokoro::apply_overrides(config, overrides);
    if (print_config) {
      std::fputs(kokoro::to_yaml(config).c_str(), stdout);
      return 0;
    }

    MinimalTrainer trainer(config);
    const double before = trainer.validate().get("loss").value_or(0.0);
    const auto summary = trainer.fit();
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
