// SampleFileLogger: writes the task's samples (media tagged "samples/...") to
// <run directory>/samples/epoch_<n>_<name>.{png,wav,txt}, so a run can be
// heard and looked at without TensorBoard. Each file is written atomically;
// a file that cannot be written throws, and the Trainer reports it and
// trains on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/context.hpp"
#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/media.hpp"
#include "kokoro/core/run_folder.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/log/png.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/wav.hpp"

namespace kokoro {

class SampleFileLogger {
 public:
  /// Writes nowhere (a logger that is switched off).
  SampleFileLogger() = default;
  /// <run directory>/samples.
  explicit SampleFileLogger(const TrainingConfig& config)
      : dir_(run_directory(config) / "samples") {}
  explicit SampleFileLogger(std::filesystem::path dir) : dir_(std::move(dir)) {}

  void on_step(const StepContext&) {}
  void on_epoch_end(const EpochContext&) {}

  void on_media(const MediaContext& m) {
    if (dir_.empty()) return;
    last_written_.clear();
    auto path = [&](std::string_view tag, std::string_view extension) {
      std::string name(tag.substr(kPrefix.size()));
      for (auto& ch : name) {
        if (ch == '/' || ch == ' ') ch = '_';
      }
      return dir_ / fmt::format("epoch_{:04}_{}.{}", m.epoch + 1, name, extension);
    };
    auto write = [&](const std::filesystem::path& file, std::string_view bytes) {
      std::filesystem::create_directories(dir_);
      write_file_atomically(file, bytes);
      last_written_.push_back(file);
    };
    for (const auto& image : m.media.images) {
      // A synthesis that stopped at once has no frames: nothing to show.
      if (is_sample(image.tag) && image.width > 0 && image.height > 0) {
        write(path(image.tag, "png"), encode_png(image));
      }
    }
    for (const auto& clip : m.media.audio) {
      if (is_sample(clip.tag) && !clip.samples.empty()) {
        write(path(clip.tag, "wav"), encode_wav(clip.samples, clip.sample_rate));
      }
    }
    for (const auto& text : m.media.texts) {
      if (is_sample(text.tag)) write(path(text.tag, "txt"), text.text + "\n");
    }
  }

  /// The files written at the last media epoch.
  const std::vector<std::filesystem::path>& last_written() const { return last_written_; }

 private:
  static constexpr std::string_view kPrefix = "samples/";
  static bool is_sample(std::string_view tag) {
    return tag.starts_with(kPrefix) && tag.size() > kPrefix.size();
  }

  std::filesystem::path dir_;
  std::vector<std::filesystem::path> last_written_;
};

static_assert(LoggerPolicy<SampleFileLogger> && MediaLogger<SampleFileLogger>);

}  // namespace kokoro
