// EnglishTtsTask: the English text-to-speech task for kokoro::Trainer. It
// prepares the corpus (the configured LJSpeech-format data, or the built-in
// demo corpus, made with espeak-ng when data.data_dir is empty), builds the
// Kokoro model from the model section, computes the TTS losses, and every
// logging.media_every_epochs epochs synthesises a validation sentence: its
// predicted and target mels as images, its audio (Griffin-Lim), also saved
// as <output_dir>/samples/epoch_<n>.{png,wav}. The phoneme vocabulary travels
// in the checkpoint (task_state) and in <output_dir>/phonemes.txt.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <torch/cuda.h>

#include <fmt/format.h>

#include "kokoro/checkpoint/atomic_file.hpp"
#include "kokoro/config/training_config.hpp"
#include "kokoro/core/loss.hpp"
#include "kokoro/core/media.hpp"
#include "kokoro/core/state_dict.hpp"
#include "kokoro/log/media.hpp"
#include "kokoro/log/png.hpp"
#include "kokoro/tts/audio.hpp"
#include "kokoro/tts/corpus.hpp"
#include "kokoro/tts/demo_corpus.hpp"
#include "kokoro/tts/griffin_lim.hpp"
#include "kokoro/tts/losses.hpp"
#include "kokoro/tts/model.hpp"
#include "kokoro/tts/phoneme_processor.hpp"
#include "kokoro/tts/tts_data.hpp"

namespace kokoro::tts {

/// Where the corpus is: data.data_dir, or the demo corpus under the output
/// folder (built there when missing).
inline std::filesystem::path resolve_corpus(const TrainingConfig& config) {
  if (!config.data.data_dir.empty()) return config.data.data_dir;
  const auto root = std::filesystem::path(config.logging.output_dir) / "demo_corpus";
  if (std::filesystem::exists(root / config.data.metadata_file)) return root;
  DemoCorpusOptions options;
  options.out = root;
  options.clips = static_cast<int>(config.data.demo_clips);
  std::printf("kokoro: data.data_dir is empty; building the demo corpus (%d clips) in %s\n",
              options.clips, root.string().c_str());
  std::fflush(stdout);
  const auto report = build_demo_corpus(options);
  std::printf("kokoro: demo corpus: %d clips, %.2f h of audio, built in %.1f s\n", report.clips,
              report.audio_hours(), report.build_seconds);
  for (const auto& note : report.notes) std::printf("kokoro: demo corpus: %s\n", note.c_str());
  std::fflush(stdout);
  return report.root;
}

class EnglishTtsTask {
 public:
  using Batch = TtsBatch;

  explicit EnglishTtsTask(const TrainingConfig& config)
      : config_(config),
        output_dir_(config.logging.output_dir),
        data_(std::make_unique<TtsData>(prepare(config), config, pin_batches(config))),
        model_(config.model, processor_.vocab_size(), config.audio.n_mels),
        vocoder_(config.audio) {
    std::filesystem::create_directories(output_dir_);
    save_phoneme_processor(processor_, output_dir_ / "phonemes.txt");
  }

  torch::nn::Module& model() { return *model_; }
  KokoroModel& kokoro_model() { return model_; }
  const EnglishPhonemeProcessor& processor() const { return processor_; }
  const TtsData& data() const { return *data_; }

  Loss loss(const TtsBatch& batch) { return tts_loss(model_->forward(batch), batch, config_.training); }

  PrefetchLoader<TtsBatch> train_data(std::int64_t epoch) { return data_->train(epoch); }
  PrefetchLoader<TtsBatch> valid_data() { return data_->validation(); }

  /// The first validation clip (or training clip, without validation data):
  /// its target mel, the teacher-forced prediction, and free-running
  /// synthesis from its phonemes, as images and Griffin-Lim audio.
  void media(Media& media, std::int64_t epoch) {
    const auto& clips = data_->corpus().validation.empty() ? data_->corpus().train
                                                           : data_->corpus().validation;
    if (clips.empty()) return;
    const auto item = TtsData::load(clips.front());
    const auto device = model_->parameters().front().device();
    const auto target = item.mel;
    const auto batch = collate({item}).to(device);
    const auto teacher_forced = model_->forward(batch).mel_after[0].to(torch::kCPU);
    // Frames are generated one at a time: an early model whose stop token
    // never fires runs to the cap, so the cap is 1.5x the clip's length.
    const auto cap = std::min<std::int64_t>(config_.audio.max_frames,
                                            item.mel.size(0) + item.mel.size(0) / 2 + 20);
    const auto generated =
        model_->generate(item.phonemes.to(device), 0.5, cap).mel.to(torch::kCPU);
    media.images.push_back(spectrogram_image("samples/target_mel", target.t()));
    media.images.push_back(spectrogram_image("samples/teacher_forced_mel", teacher_forced.t()));
    media.images.push_back(spectrogram_image("samples/synthesized_mel", generated.t()));
    const int rate = static_cast<int>(config_.audio.sample_rate);
    const auto audio = vocoder_(generated);
    media.audio.push_back(AudioClip{"samples/synthesized", rate, audio});
    media.audio.push_back(AudioClip{"samples/target_griffin_lim", rate, vocoder_(target)});

    const auto dir = output_dir_ / "samples";
    std::filesystem::create_directories(dir);
    const auto stem = dir / fmt::format("epoch_{:04}", epoch + 1);
    write_file_atomically(stem.string() + ".png", encode_png(media.images.back()));
    if (!audio.empty()) save_wav(stem.string() + ".wav", audio, rate);
    std::ofstream(stem.string() + ".txt") << clips.front().id << ": " << clips.front().text << "\n";
    last_sample_ = stem;
  }

  /// The last sample written by media(): <stem>.png, .wav and .txt.
  const std::filesystem::path& last_sample() const { return last_sample_; }

  StateDict state_dict() const {
    StateDict d;
    d["phoneme_vocabulary"] = processor_.vocabulary();
    d["phoneme_voice"] = processor_.voice();
    return d;
  }

  /// Refuses a checkpoint whose vocabulary differs from this run's: its
  /// embedding rows would mean other phonemes.
  void load_state_dict(const StateDict& d) {
    const auto it = d.find("phoneme_vocabulary");
    if (it == d.end()) return;
    const auto* vocabulary = std::get_if<std::vector<std::string>>(&it->second);
    if (vocabulary && *vocabulary != processor_.vocabulary()) {
      throw Error(fmt::format(
          "the checkpoint's phoneme vocabulary ({} symbols) differs from this build's ({} symbols); "
          "it was trained with another phoneme set",
          vocabulary->size(), processor_.vocabulary().size()));
    }
  }

 private:
  PreparedCorpus prepare(const TrainingConfig& config) {
    const auto root = resolve_corpus(config);
    const auto cache = config.data.cache_dir.empty()
                           ? std::filesystem::path(config.logging.output_dir) / "cache"
                           : std::filesystem::path(config.data.cache_dir);
    auto corpus = prepare_corpus(config, processor_, root, cache);
    std::printf("%s\n", corpus.report.summary().c_str());
    const auto shown = std::min<std::size_t>(corpus.report.messages.size(), 5);
    for (std::size_t i = 0; i < shown; ++i) std::printf("  %s\n", corpus.report.messages[i].c_str());
    if (corpus.report.messages.size() > shown) {
      std::printf("  ... %zu more in %s\n", corpus.report.messages.size() - shown,
                  (corpus.cache_dir / "report.txt").string().c_str());
    }
    std::printf("kokoro: %zu training clips, %zu validation clips\n", corpus.train.size(),
                corpus.validation.size());
    std::fflush(stdout);
    return corpus;
  }

  static bool pin_batches(const TrainingConfig& config) {
    return config.hardware.pin_memory && config.hardware.device != "cpu" && torch::cuda::is_available();
  }

  TrainingConfig config_;
  std::filesystem::path output_dir_;
  EnglishPhonemeProcessor processor_;
  std::unique_ptr<TtsData> data_;
  KokoroModel model_;
  GriffinLim vocoder_;
  std::filesystem::path last_sample_;
};

}  // namespace kokoro::tts
