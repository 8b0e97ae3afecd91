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
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/command_line.hpp"
#include "demo_corpus.hpp"

/// The trainer: every policy named, so that swapping one is one line.
struct EnglishPolicies {
  using device = kokoro::AutoDevice;
  using scaler = kokoro::DynamicGradScaler;  // fp16 on CUDA needs it; a no-op scale elsewhere
  using memory = kokoro::AdaptiveMemory<>;
  using scheduler = kokoro::ScheduleFromConfig;  // cosine warm restarts by default
  using logger =
      kokoro::Loggers<kokoro::ConsoleLogger, kokoro::JsonlLogger, kokoro::TensorBoardLogger,
                      kokoro::WandbLogger, kokoro::SampleFileLogger, kokoro::ReportLogger>;
  using checkpoints = kokoro::CheckpointManager;
  using profiler = kokoro::InterbatchProfiler;
  using distribution = kokoro::DataParallel;  // when torchrun starts several ranks
};
using EnglishTrainer = kokoro::Trainer<kokoro::tts::EnglishTtsTask, EnglishPolicies>;

namespace {

/// How long the other ranks wait for rank 0 to build the demo corpus or the
/// feature cache (a large corpus takes a while; a rank 0 that dies ends the
/// wait at once).
constexpr std::chrono::hours kWaitForRank0{24};

/// What to do when a resumed checkpoint lacks the learned aligner this run
/// builds: a run begun before durations were learned (data.durations auto
/// now learns them for clips without a usable TextGrid) resumes as it was
/// trained. Empty for any other error.
std::string resume_hint(const std::string& error) {
  const auto missing = error.find("\n  missing (");
  if (error.find("does not fit this model") == std::string::npos || missing == std::string::npos)
    return {};
  const auto line_end = error.find('\n', missing + 1);
  const auto line =
      error.substr(missing, line_end == std::string::npos ? line_end : line_end - missing);
  if (line.find("aligner.") == std::string::npos) return {};
  return "\n  the checkpoint has no learned aligner: it was trained with durations from "
         "TextGrids (or spread evenly); resume it with data.durations=textgrid";
}

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
  CLI::App app(
      "Trains the English TTS model. With no arguments: the small model on the built-in demo\n"
      "corpus for a few minutes (training.max_minutes), writing to runs/english_tts.",
      "kokoro-train");
  std::string config_file;
  bool small = false;
  bool print_config = false;
  std::vector<std::string> flags;  // the options below, as overrides
  std::vector<std::string> overrides;
  const auto as_override = [&](const std::string& key) {
    return [&flags, key](const std::string& value) { flags.push_back(key + "=" + value); };
  };
  app.add_option("--config", config_file,
                 "YAML configuration (examples/english_tts/configs/*.yaml)")
      ->option_text("FILE");
  app.add_flag("--small", small, "start from the small preset (d=256, 4+4 layers, batch 8)");
  app.add_option_function<std::string>("--data-dir", as_override("data.data_dir"),
                                       "LJSpeech-format corpus (metadata.csv, wavs/, TextGrid/)")
      ->option_text("DIR");
  app.add_option_function<std::string>(
         "--output-dir", as_override("logging.output_dir"),
         "folder of the runs; each run writes in DIR/<run name> (default runs/english_tts)")
      ->option_text("DIR");
  app.add_option_function<std::string>("--run-name", as_override("logging.run_name"),
                                       "the run's folder name (default: the date and time)")
      ->option_text("NAME");
  app.add_option_function<std::string>(
         "--resume", as_override("training.resume"),
         "auto: continue the run named by --run-name, else the latest run, from its newest valid "
         "checkpoint; PATH: start from that checkpoint file")
      ->option_text("auto|PATH");
  app.add_flag_callback(
      "--overwrite", [&] { flags.emplace_back("logging.overwrite=true"); },
      "a new run named like an existing one deletes that run's folder first");
  app.add_flag_callback(
      "--no-mixed-precision", [&] { flags.emplace_back("hardware.mixed_precision=false"); },
      "train in float32");
  app.add_option_function<std::string>("--device", as_override("hardware.device"), "where to train")
      ->check(CLI::IsMember({"auto", "cuda", "mps", "cpu"}))
      ->option_text("auto|cuda|mps|cpu");
  app.add_option_function<std::string>(
         "--max-steps", as_override("training.max_steps"),
         "stop when the run has taken N optimizer steps in all (a resumed run counts its earlier "
         "steps; training.max_minutes counts this invocation only)")
      ->check(examples::whole_number_above_0)
      ->option_text("N");
  app.add_flag("--print-config", print_config,
               "print the effective configuration as YAML and exit");
  examples::add_overrides(app, overrides);
  if (const auto exit_code = examples::parse_command_line(app, argc, argv, overrides)) {
    return *exit_code;
  }

  try {
    auto config = demo_defaults();
    if (!config_file.empty() || small) {
      // An explicit preset or file: its own values, no demo time limit.
      auto base = small ? kokoro::tts::small_config() : kokoro::tts::default_config();
      base.logging.output_dir = "runs/english_tts";
      config = config_file.empty() ? base : kokoro::load_config(config_file, base);
    }
    // The named options first, so that an explicit section.key=value wins.
    kokoro::apply_overrides(config, flags);
    kokoro::apply_overrides(config, overrides);
    if (print_config) {
      std::fputs(kokoro::to_yaml(config).c_str(), stdout);
      return 0;
    }

    // Under torchrun, the ranks meet first: rank 0 then decides the run
    // folder and prepares the corpus, and the others follow.
    kokoro::DataParallel distribution(config);
    const bool rank0 = distribution.rank() == 0;
    if (config.data.data_dir.empty()) {
      if (rank0) config.data.data_dir = demo_corpus(config);
      config.data.data_dir = distribution.share("demo_corpus", config.data.data_dir, kWaitForRank0);
    }
    // The run's folder first: the task writes its vocabulary there.
    for (const auto& note : kokoro::resolve_run_folder(config, distribution).notes) {
      std::printf("kokoro-train: %s\n", note.c_str());
    }
    std::fflush(stdout);

    // The task is built here, after seeding as the Trainer would, so that
    // feature preparation can show its progress. Rank 0 fills the feature
    // cache; the other ranks then read it.
    kokoro::seed_everything(config.training.seed);
    if (!rank0) distribution.share("features", "", kWaitForRank0);
    kokoro::tts::EnglishTtsTask task(
        config, rank0 ? progress_printer() : kokoro::tts::CorpusProgress{}, rank0);
    if (rank0) {
      distribution.share("features", "ready");
      print_corpus(task.data().corpus());
    }
    EnglishTrainer trainer(config, std::move(task), std::move(distribution));
    const auto summary = trainer.fit();
    if (trainer.distribution().rank() != 0) return summary.checkpoint_error.empty() ? 0 : 1;
    const auto out = trainer.run_directory();
    std::printf("\nkokoro-train: what this run left behind (in %s)\n", out.c_str());
    if (!summary.checkpoint.empty()) std::printf("  checkpoint   %s\n", summary.checkpoint.c_str());
    if (config.logging.tensorboard) {
      std::printf("  TensorBoard  tensorboard --logdir %s\n", (out / "tensorboard").c_str());
    }
    if (config.logging.jsonl) std::printf("  metrics      %s\n", (out / "metrics.jsonl").c_str());
    if (config.logging.report) {
      std::printf("  report       %s\n", (out / kokoro::ReportLogger::kFileName).c_str());
    }
    for (const auto& file : trainer.logger().get<kokoro::SampleFileLogger>().last_written()) {
      std::printf("  sample       %s\n", file.c_str());
    }
    std::printf("  phonemes     %s\n", (out / "phonemes.txt").c_str());
    if (!summary.last_evaluation.empty()) {
      const auto& q = summary.last_evaluation;
      auto figure = [&](const char* name) {
        const auto v = q.get(name);
        return v && std::isfinite(*v) ? fmt::format("{:.3f}", *v) : std::string("-");
      };
      const auto& quality = trainer.task().last_quality();
      const std::string heard_by =
          quality && !quality->recognizer.empty() ? " by " + quality->recognizer : "";
      std::printf(
          "  quality      MCD %s dB (Griffin-Lim of the recordings: %s), WER %s%s (recordings: "
          "%s, Griffin-Lim: %s), length x%s; evaluations took %.1f%% of the time\n",
          figure("mcd").c_str(), figure("mcd@griffin_lim").c_str(), figure("wer").c_str(),
          heard_by.c_str(), figure("wer@recording").c_str(), figure("wer@griffin_lim").c_str(),
          figure("length_ratio").c_str(), 100.0 * summary.evaluation_share);
    }
    if (const auto overlap = trainer.distribution().gradient_overlap(); overlap.steps > 0) {
      std::printf(
          "  all-reduce   %d ranks over %s: %lld of %lld gradient buckets went out during "
          "backward, %lld steps reduced again\n",
          trainer.distribution().world_size(), trainer.distribution().backend().c_str(),
          static_cast<long long>(overlap.started_in_backward),
          static_cast<long long>(overlap.started_in_backward + overlap.started_after_backward),
          static_cast<long long>(overlap.redone_steps));
    }
    std::printf("  continue it  kokoro-train --output-dir %s --resume auto\n",
                config.logging.output_dir.c_str());
    if (!summary.checkpoint.empty()) {
      // The synthesiser is built beside this program.
      const auto synthesizer = std::filesystem::path(argv[0]).parent_path() / "kokoro-synthesize";
      std::printf("  hear it      %s --checkpoint %s \"Hello.\" -o hello.wav\n",
                  synthesizer.c_str(), summary.checkpoint.c_str());
      const auto evaluator = std::filesystem::path(argv[0]).parent_path() / "kokoro-eval";
      std::printf("  judge it     %s %s --data %s --split validation\n", evaluator.c_str(),
                  summary.checkpoint.c_str(), config.data.data_dir.c_str());
    }
    if (!summary.checkpoint_error.empty()) {
      std::fprintf(stderr, "kokoro-train: %s\n", summary.checkpoint_error.c_str());
      return 1;
    }
    return 0;
  } catch (const kokoro::ConfigError& e) {
    std::fprintf(stderr, "kokoro-train: configuration error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro-train: %s%s\n", e.what(), resume_hint(e.what()).c_str());
    return 1;
  }
}
