// kokoro-train: the English text-to-speech trainer. A Kokoro-style model
// (phoneme Transformer encoder, duration predictor, length regulator,
// Transformer decoder, mel and stop heads, PostNet) trained on LJSpeech-format
// data with MFA alignments, composed from kokoro's policies.
//
// With no arguments it trains the small model on the built-in demo corpus
// (made with espeak-ng on first use) for a few minutes.
#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/log/sample_file_logger.hpp>
#include <kokoro/trainer.hpp>
#include <kokoro/tts/english_tts_task.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "demo_corpus.hpp"

/// The trainer: every policy named, so that swapping one is one line.
struct EnglishPolicies {
  using device = kokoro::AutoDevice;
  using scaler = kokoro::DynamicGradScaler;  // fp16 on CUDA needs it; a no-op scale elsewhere
  using memory = kokoro::AdaptiveMemory<>;
  using scheduler = kokoro::ScheduleFromConfig;  // cosine warm restarts by default
  using logger =
      kokoro::Loggers<kokoro::ConsoleLogger, kokoro::JsonlLogger, kokoro::TensorBoardLogger,
                      kokoro::WandbLogger, kokoro::SampleFileLogger>;
  using checkpoints = kokoro::CheckpointManager;
  using profiler = kokoro::InterbatchProfiler;
};
using EnglishTrainer = kokoro::Trainer<kokoro::tts::EnglishTtsTask, EnglishPolicies>;

namespace {

constexpr std::string_view kUsage =
    "usage: kokoro-train [options] [section.key=value ...]\n"
    "Trains the English TTS model. With no arguments: the small model on the built-in demo\n"
    "corpus for a few minutes (training.max_minutes), writing to runs/english_tts.\n"
    "  --config FILE         YAML configuration (examples/english_tts/configs/*.yaml)\n"
    "  --small               start from the small preset (d=256, 4+4 layers, batch 8)\n"
    "  --data-dir DIR        LJSpeech-format corpus (metadata.csv, wavs/, TextGrid/)\n"
    "  --output-dir DIR      checkpoints, logs and samples go here\n"
    "  --resume auto|PATH    continue from the newest valid checkpoint of the run, or a file\n"
    "  --no-mixed-precision  train in float32\n"
    "  --device NAME         auto | cuda | mps | cpu\n"
    "  --max-steps N         stop after N optimizer steps\n"
    "  --print-config        print the effective configuration as YAML and exit\n"
    "  section.key=value     override one field, e.g. training.batch_size=16\n";

/// The no-argument run: the small model, bounded in time, on the demo corpus.
kokoro::tts::TtsConfig demo_defaults() {
  auto config = kokoro::tts::small_config();
  config.training.epochs = 1000;
  config.training.max_minutes = 3.0;
  config.training.learning_rate = 5e-4;
  config.training.warmup_steps = 30;
  config.logging.output_dir = "runs/english_tts";
  config.logging.log_every = 10;
  config.logging.checkpoint_every_epochs = 1;
  return config;
}

/// With data.data_dir empty: the demo corpus under the output folder, built
/// there on first use.
std::string demo_corpus(const kokoro::tts::TtsConfig& config) {
  const auto root = std::filesystem::path(config.logging.output_dir) / "demo_corpus";
  if (std::filesystem::exists(root / config.data.metadata_file)) return root.string();
  english_tts::DemoCorpusOptions options;
  options.out = root;
  options.clips = static_cast<int>(config.data.demo_clips);
  std::printf("kokoro-train: data.data_dir is empty; building the demo corpus (%d clips) in %s\n",
              options.clips, root.string().c_str());
  std::fflush(stdout);
  const auto report = english_tts::build_demo_corpus(options);
  std::printf("kokoro-train: demo corpus: %d clips, %.2f h of audio, built in %.1f s\n",
              report.clips, report.audio_hours(), report.build_seconds);
  for (const auto& note : report.notes)
    std::printf("kokoro-train: demo corpus: %s\n", note.c_str());
  std::fflush(stdout);
  return report.root.string();
}

/// The corpus report: a summary, the first few problems, the split.
void print_corpus(const kokoro::tts::PreparedCorpus& corpus) {
  const auto& report = corpus.report;
  std::printf("%s\n", report.summary().c_str());
  const auto shown = std::min<std::size_t>(report.messages.size(), 5);
  for (std::size_t i = 0; i < shown; ++i) std::printf("  %s\n", report.messages[i].c_str());
  if (report.messages.size() > shown) {
    std::printf("  ... %zu more in %s\n", report.messages.size() - shown,
                (corpus.cache_dir / "report.txt").string().c_str());
  }
  std::printf("kokoro-train: %zu training clips, %zu validation clips\n", corpus.train.size(),
              corpus.validation.size());
  std::fflush(stdout);
}

/// Feature preparation's progress: one line rewritten on a terminal, a line
/// every few seconds elsewhere.
kokoro::tts::CorpusProgress progress_printer() {
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  return {.report =
              [tty](std::size_t done, std::size_t total) {
                std::printf(tty ? "\rpreparing features: %zu/%zu clips (%.0f%%)"
                                : "preparing features: %zu/%zu clips (%.0f%%)\n",
                            done, total, 100.0 * static_cast<double>(done) / total);
                if (tty && done == total) std::printf("\r%60s\r", "");
                std::fflush(stdout);
              },
          .interval = std::chrono::milliseconds(tty ? 200 : 2000)};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto config = demo_defaults();
    std::vector<std::string> overrides;
    bool print_config = false;
    std::string config_file;
    bool small = false;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      const bool has_value = i + 1 < argc;
      if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage.data(), stdout);
        return 0;
      } else if (arg == "--config" && has_value) {
        config_file = argv[++i];
      } else if (arg == "--small") {
        small = true;
      } else if (arg == "--data-dir" && has_value) {
        overrides.push_back(std::string("data.data_dir=") + argv[++i]);
      } else if (arg == "--output-dir" && has_value) {
        overrides.push_back(std::string("logging.output_dir=") + argv[++i]);
      } else if (arg == "--resume" && has_value) {
        overrides.push_back(std::string("training.resume=") + argv[++i]);
      } else if (arg == "--no-mixed-precision") {
        overrides.emplace_back("hardware.mixed_precision=false");
      } else if (arg == "--device" && has_value) {
        overrides.push_back(std::string("hardware.device=") + argv[++i]);
      } else if (arg == "--max-steps" && has_value) {
        overrides.push_back(std::string("training.max_steps=") + argv[++i]);
      } else if (arg == "--print-config") {
        print_config = true;
      } else if (arg.find('=') != std::string_view::npos && arg.substr(0, 2) != "--") {
        overrides.emplace_back(arg);
      } else {
        std::fprintf(stderr, "kokoro-train: unknown or incomplete argument '%s'\n%s", argv[i],
                     kUsage.data());
        return 2;
      }
    }
    if (!config_file.empty() || small) {
      // An explicit preset or file: its own values, no demo time limit.
      auto base = small ? kokoro::tts::small_config() : kokoro::tts::default_config();
      base.logging.output_dir = "runs/english_tts";
      config = config_file.empty() ? base : kokoro::load_config(config_file, base);
    }
    kokoro::apply_overrides(config, overrides);
    if (print_config) {
      std::fputs(kokoro::to_yaml(config).c_str(), stdout);
      return 0;
    }

    if (config.data.data_dir.empty()) config.data.data_dir = demo_corpus(config);

    // The task is built here, after seeding as the Trainer would, so that
    // feature preparation can show its progress.
    kokoro::seed_everything(config.training.seed);
    kokoro::tts::EnglishTtsTask task(config, progress_printer());
    print_corpus(task.data().corpus());
    EnglishTrainer trainer(config, std::move(task));
    const auto summary = trainer.fit();
    const auto out = std::filesystem::path(config.logging.output_dir);
    std::printf("\nkokoro-train: what this run left behind\n");
    if (!summary.checkpoint.empty()) std::printf("  checkpoint   %s\n", summary.checkpoint.c_str());
    if (config.logging.tensorboard) {
      std::printf("  TensorBoard  tensorboard --logdir %s\n", (out / "tensorboard").c_str());
    }
    if (config.logging.jsonl) std::printf("  metrics      %s\n", (out / "metrics.jsonl").c_str());
    for (const auto& file : trainer.logger().get<kokoro::SampleFileLogger>().last_written()) {
      std::printf("  sample       %s\n", file.c_str());
    }
    std::printf("  phonemes     %s\n", (out / "phonemes.txt").c_str());
    return 0;
  } catch (const kokoro::ConfigError& e) {
    std::fprintf(stderr, "kokoro-train: configuration error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro-train: %s\n", e.what());
    return 1;
  }
}
