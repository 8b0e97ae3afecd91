// TensorBoardLogger: scalars for every logged step ("train/<metric>") and
// epoch ("epoch/train/<metric>", "epoch/validation/<metric>"), the run's
// configuration as text, and media (images, audio, histograms) every
// `logging.media_every_epochs` epochs, in <run directory>/tensorboard. View with
// `tensorboard --logdir <run directory>/tensorboard`; upload to W&B with
// `wandb sync --sync-tensorboard <run directory>/tensorboard`.
#pragma once

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include "kokoro/core/config_io.hpp"
#include "kokoro/core/context.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/run_folder.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/log/event_file.hpp"
#include "kokoro/log/json.hpp"

namespace kokoro {

class TensorBoardLogger {
 public:
  /// Writes nowhere (a logger that is switched off).
  TensorBoardLogger() = default;

  /// <run directory>/tensorboard when `logging.tensorboard` is on.
  explicit TensorBoardLogger(const TrainingConfig& config) {
    if (config.logging.tensorboard) {
      open(run_directory(config) / "tensorboard");
    }
  }

  explicit TensorBoardLogger(const std::filesystem::path& dir) { open(dir); }

  /// The event file, or nullptr when switched off.
  EventFileWriter* writer() { return writer_.get(); }

  void on_train_begin(const RunContext& run) {
    if (!writer_) return;
    // Indented by four spaces: shown as preformatted text, not Markdown.
    std::string text;
    std::string line;
    std::istringstream yaml(to_yaml(run.settings));
    while (std::getline(yaml, line)) text += "    " + line + "\n";
    writer_->add_text("config", text, 0, detail::unix_seconds());
    writer_->flush();
  }

  void on_step(const StepContext& s) {
    if (!writer_) return;
    const double now = detail::unix_seconds();
    for (const auto& [name, value] : s.metrics)
      writer_->add_scalar("train/" + name, value, s.global_step, now);
    writer_->flush();
  }

  void on_media(const MediaContext& m) {
    if (!writer_) return;
    const double now = detail::unix_seconds();
    for (const auto& image : m.media.images) writer_->add_image(image, m.global_step, now);
    for (const auto& clip : m.media.audio) writer_->add_audio(clip, m.global_step, now);
    for (const auto& h : m.media.histograms) writer_->add_histogram(h, m.global_step, now);
    for (const auto& t : m.media.texts) writer_->add_text(t.tag, t.text, m.global_step, now);
    writer_->flush();
  }

  void on_epoch_end(const EpochContext& e) {
    if (!writer_) return;
    const double now = detail::unix_seconds();
    for (const auto& [name, value] : e.train) {
      writer_->add_scalar("epoch/train/" + name, value, e.global_step, now);
    }
    for (const auto& [name, value] : e.validation) {
      writer_->add_scalar("epoch/validation/" + name, value, e.global_step, now);
    }
    writer_->flush();
  }

  /// The task's quality figures as eval/<name> (their reference levels as
  /// eval/<name>@<reference>), and eval/share: evaluations' share of the time.
  void on_evaluation(const EvaluationContext& e) {
    if (!writer_) return;
    const double now = detail::unix_seconds();
    for (const auto& [name, value] : e.metrics) {
      writer_->add_scalar("eval/" + name, value, e.global_step, now);
    }
    writer_->add_scalar("eval/share", e.share, e.global_step, now);
    writer_->flush();
  }

 private:
  void open(const std::filesystem::path& dir) {
    writer_ = std::make_unique<EventFileWriter>(dir, detail::unix_seconds());
  }

  std::unique_ptr<EventFileWriter> writer_;
};

static_assert(LoggerPolicy<TensorBoardLogger>);

}  // namespace kokoro
