// Synthesizer: a trained model, back from its checkpoint, saying text. It
// takes everything from the run itself: the model's shape, the audio
// settings and the phoneme set from the configuration the run saved, the
// phoneme vocabulary from the run (so that embedding row i means what it
// meant in training), the weights strictly (every tensor present and of its
// shape). Text goes through the training front end (normaliser, espeak-ng
// or flite), lines are synthesised in batches (KokoroModel::generate), and a
// vocoder turns each mel into samples.
//
// Checkpoints it reads:
//   - final.pt, best.pt, step-N.pt: kokoro-train's full checkpoints, which
//     hold the configuration (`config`) and the vocabulary (`task_state`);
//   - model_weights.pt: the weights alone; the configuration and the
//     vocabulary are the run folder's run.yaml and phonemes.txt, looked for
//     next to the file and one folder up (<run>/checkpoints/..).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <fmt/format.h>

#include "kokoro/audio/griffin_lim.hpp"
#include "kokoro/checkpoint/checkpoint_file.hpp"
#include "kokoro/core/config_io.hpp"
#include "kokoro/core/state_io.hpp"
#include "kokoro/tts/align/alignment_textgrid.hpp"
#include "kokoro/tts/data/corpus.hpp"
#include "kokoro/tts/model/from_config.hpp"
#include "kokoro/tts/model/kokoro_model.hpp"
#include "kokoro/tts/text/phoneme_processor.hpp"
#include "kokoro/tts/tts_config.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro::tts {

/// A log-mel [frames, n_mels] to samples at the model's sample rate.
using Vocoder = std::function<std::vector<float>(const torch::Tensor&)>;

/// A trained model as its run left it.
struct TrainedModel {
  TtsConfig config;
  EnglishPhonemeProcessor processor;
  KokoroModel model;
  std::filesystem::path source;   ///< the checkpoint file
  std::int64_t global_step = -1;  ///< the step it was saved at (-1: not recorded)
};

namespace detail::synthesis {

/// `name` next to `file` or in the folder above it (a run's checkpoints/).
inline std::filesystem::path run_file(const std::filesystem::path& file, const char* name) {
  const auto here = file.parent_path() / name;
  if (std::filesystem::exists(here)) return here;
  const auto above = file.parent_path().parent_path() / name;
  if (std::filesystem::exists(above)) return above;
  return {};
}

/// A run saved before alignment.normalize_mels existed trained its aligner
/// on the log-mels as they are: it must read them so again.
inline void keep_old_aligner_input(TtsConfig& config, const std::string& saved_yaml) {
  if (saved_yaml.find("normalize_mels") == std::string::npos)
    config.alignment.normalize_mels = false;
}

}  // namespace detail::synthesis

/// What a checkpoint of a TTS run holds (kokoro-train's, or kokoro-align's
/// aligner alone), read: its run's configuration, its phoneme front end,
/// its weights and its step.
struct TtsCheckpoint {
  TtsConfig config;
  EnglishPhonemeProcessor processor;
  IValueDict weights;
  std::int64_t global_step = -1;  ///< -1: not recorded
};

/// Reads `checkpoint`: a full checkpoint, or model_weights.pt in its run
/// folder (run.yaml and phonemes.txt beside it or above). Throws
/// kokoro::Error naming the file when it is missing, damaged or not a TTS
/// run's.
inline TtsCheckpoint read_tts_checkpoint(const std::filesystem::path& checkpoint) {
  namespace fs = std::filesystem;
  const auto source = checkpoint.string();
  if (!fs::exists(checkpoint)) {
    throw Error(
        fmt::format("{}: no such checkpoint (give final.pt, best.pt, a step-N.pt or "
                    "model_weights.pt of a kokoro-train run)",
                    source));
  }
  const auto dict = load_checkpoint_file(checkpoint);
  TtsConfig config;
  std::vector<std::string> vocabulary;
  std::string voice = "en-us";
  IValueDict weights = dict;
  std::int64_t step = -1;
  if (dict.contains("model_state_dict")) {
    if (!dict.contains("config") || !dict.at("config").isString()) {
      throw Error(
          fmt::format("{}: the checkpoint has no configuration (`config`); it was not "
                      "written by kokoro-train",
                      source));
    }
    const auto task = dict.contains("task_state")
                          ? state_dict_from_ivalue(dict.at("task_state"), source)
                          : StateDict{};
    const auto it = task.find("phoneme_vocabulary");
    const auto* saved =
        it == task.end() ? nullptr : std::get_if<std::vector<std::string>>(&it->second);
    if (saved == nullptr) {
      throw Error(
          fmt::format("{}: no phoneme vocabulary in its task_state: not a checkpoint of "
                      "the English TTS task",
                      source));
    }
    vocabulary = *saved;
    try {
      apply_yaml(config, dict.at("config").toStringRef(), source + " (its config)");
      detail::synthesis::keep_old_aligner_input(config, dict.at("config").toStringRef());
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}: its configuration is not one of this build's TTS runs: {}",
                              source, e.what()));
    }
    if (const auto v = task.find("phoneme_voice"); v != task.end()) {
      if (const auto* s = std::get_if<std::string>(&v->second)) voice = *s;
    }
    weights = dict.at("model_state_dict").toGenericDict();
    if (dict.contains("global_step") && dict.at("global_step").isInt()) {
      step = dict.at("global_step").toInt();
    }
  } else {
    // The weights alone: the run folder has the rest.
    const auto yaml = detail::synthesis::run_file(checkpoint, "run.yaml");
    const auto phonemes = detail::synthesis::run_file(checkpoint, "phonemes.txt");
    if (yaml.empty() || phonemes.empty()) {
      throw Error(fmt::format(
          "{}: holds weights only, and {} is not next to it or in the folder above; give the "
          "run's final.pt instead, or keep model_weights.pt in its run folder",
          source, yaml.empty() ? "run.yaml" : "phonemes.txt"));
    }
    // Read once: applied over the defaults, and looked at for what it predates.
    std::ifstream in(yaml);
    if (!in) throw Error(fmt::format("{}: cannot open the run's configuration", yaml.string()));
    const std::string text(std::istreambuf_iterator<char>(in), {});
    try {
      apply_yaml(config, text, yaml.string());
      detail::synthesis::keep_old_aligner_input(config, text);
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}: not one of this build's TTS configurations: {}", yaml.string(),
                              e.what()));
    }
    const auto processor = load_phoneme_processor(phonemes);
    vocabulary = processor.vocabulary();
    voice = processor.voice();
  }
  return TtsCheckpoint{.config = config,
                       .processor = EnglishPhonemeProcessor(vocabulary, voice),
                       .weights = weights,
                       .global_step = step};
}

/// Loads the model of `checkpoint` onto `device`, in eval mode. Throws
/// kokoro::Error naming the file when it is missing, damaged, not a TTS
/// checkpoint, or does not fit the model its configuration describes.
inline TrainedModel load_trained_model(const std::filesystem::path& checkpoint,
                                       const torch::Device& device = torch::kCPU) {
  auto [config, processor, weights, step] = read_tts_checkpoint(checkpoint);
  const auto source = checkpoint.string();
  // The aligner is trained with the model and not used to speak; it is built
  // when the weights have one (checkpoints from before it, or of a
  // data.durations: textgrid run, have none), so that they load strictly.
  auto options = model_options(config.model, processor.vocab_size(), config.audio.n_mels);
  for (const auto& entry : weights) {
    if (entry.key().isString() && entry.key().toStringRef().rfind("aligner.", 0) == 0) {
      options.aligner = aligner_options(config.alignment);
      break;
    }
  }
  KokoroModel model(options);
  load_module_state_dict(*model, weights, source);
  model->to(device);
  model->eval();
  return TrainedModel{.config = config,
                      .processor = std::move(processor),
                      .model = model,
                      .source = checkpoint,
                      .global_step = step};
}

/// How lines are synthesised.
struct SpeakOptions {
  /// Speaking rate: every predicted duration divided by it (1.25: a quarter
  /// faster; 0.8: slower).
  double speed = 1.0;
  /// Longest audio per line. A line ends at its stop token, else at its
  /// predicted length (the frames its durations give), else here.
  double max_seconds = 20.0;
  double stop_threshold = 0.5;
  /// Lines decoded together (similar lengths are grouped).
  std::int64_t batch_size = 8;
};

/// One line, spoken.
struct SpokenLine {
  std::string text;
  std::vector<std::string> tokens;   ///< the phoneme tokens it was read as
  std::vector<std::string> words;    ///< the words the tokens say (Transcription::words)
  std::vector<std::string> unknown;  ///< tokens outside the model's vocabulary (read as <unk>)
  torch::Tensor mel;                 ///< [frames, n_mels] on the CPU
  torch::Tensor durations;           ///< [ids] int64 frames per phoneme id, predicted, on the CPU
  std::vector<float> samples;
  bool stopped = true;  ///< the stop token fired
  /// The stop token did not fire: the line ended at its predicted length
  /// (else, with neither, it was cut at max_seconds).
  bool reached_length = false;
  /// Wall time spent on it: its share (by frames) of its batch's decoding,
  /// plus its vocoder run.
  double compute_seconds = 0;
  double seconds() const { return sample_rate > 0 ? samples.size() / double(sample_rate) : 0; }
  int sample_rate = 0;
};

/// When each word and phoneme of `line` is said, in seconds of its audio:
/// a "words" and a "phones" tier laid out as align/alignment_textgrid.hpp
/// lays out a learned alignment, from the durations the line was spoken
/// with. Where the stop token ended the line before its durations did, the
/// durations are cut at its last frame (from the end), so that no time lies
/// past the audio (nor past the vocoder's last sample). `audio`: the model's
/// audio settings (its hop and rate place the frames).
inline TextGrid timestamps(const SpokenLine& line, const AudioSection& audio,
                           std::int64_t min_silence_frames = 3) {
  std::vector<std::int64_t> durations(line.durations.data_ptr<std::int64_t>(),
                                      line.durations.data_ptr<std::int64_t>() +
                                          line.durations.numel());
  std::int64_t excess = -line.mel.size(0);
  for (const auto d : durations) excess += d;
  for (auto it = durations.rbegin(); it != durations.rend() && excess > 0; ++it) {
    const auto take = std::min(*it, excess);
    *it -= take;
    excess -= take;
  }
  const auto hop = static_cast<double>(audio.hop_length);
  const auto rate = static_cast<double>(audio.sample_rate);
  auto grid = alignment_textgrid(
      AlignedClip{.tokens = line.tokens,
                  .durations = std::move(durations),
                  .words = line.words,
                  .silent = {},
                  .seconds = static_cast<double>(line.mel.size(0)) * hop / rate,
                  .sample_rate = static_cast<int>(audio.sample_rate),
                  .hop_length = static_cast<int>(audio.hop_length)},
      AlignmentTextGridOptions{
          .min_silence_frames = min_silence_frames,
          .is_pause = &EnglishPhonemeProcessor::is_pause_token,
          .is_word_boundary = [](std::string_view t) { return t == kWordBoundary; }});
  // The vocoder's audio may end a hop before the last frame does: no time
  // past its end.
  const double end = line.sample_rate > 0 ? line.seconds() : grid.xmax;
  grid.xmax = end;
  for (auto& tier : grid.tiers) {
    std::vector<Interval> kept;
    for (auto iv : tier.intervals) {
      iv.start = std::min(iv.start, end);
      iv.end = std::min(iv.end, end);
      if (iv.end > iv.start) kept.push_back(std::move(iv));
    }
    if (!kept.empty()) kept.back().end = end;
    tier.intervals = std::move(kept);
  }
  return grid;
}

class Synthesizer {
 public:
  /// `vocoder` empty: Griffin-Lim with the run's audio settings.
  explicit Synthesizer(TrainedModel trained, Vocoder vocoder = {}, int sample_rate = 0)
      : trained_(std::move(trained)),
        vocoder_(vocoder ? std::move(vocoder) : griffin_lim(trained_.config)),
        sample_rate_(sample_rate > 0 ? sample_rate
                                     : static_cast<int>(trained_.config.audio.sample_rate)) {}

  int sample_rate() const { return sample_rate_; }
  const TrainedModel& trained() const { return trained_; }

  /// Each line spoken, in the order given. Throws kokoro::Error naming the
  /// line (1-based) when one has nothing to say.
  std::vector<SpokenLine> speak(const std::vector<std::string>& lines,
                                const SpeakOptions& options = {}) {
    if (!(options.speed > 0.0)) {
      throw Error(fmt::format("speed must be above 0, got {}", options.speed));
    }
    if (!(options.max_seconds > 0.0)) {
      throw Error(fmt::format("max_seconds must be above 0, got {}", options.max_seconds));
    }
    const auto& audio = trained_.config.audio;
    const auto max_frames = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(options.max_seconds * static_cast<double>(audio.sample_rate) /
                                     static_cast<double>(audio.hop_length)));
    std::vector<SpokenLine> spoken(lines.size());
    std::vector<std::vector<std::int64_t>> ids(lines.size());
    const auto& processor = trained_.processor;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      auto& line = spoken[i];
      line.text = lines[i];
      line.sample_rate = sample_rate_;
      auto transcription = processor.transcribe(lines[i]);
      line.tokens = std::move(transcription.tokens);
      line.words = std::move(transcription.words);
      for (const auto& token : line.tokens) {
        if (processor.id(token) == processor.unk_id() && token != EnglishPhonemeProcessor::kUnk) {
          line.unknown.push_back(token);
        }
      }
      ids[i] = processor.encode_tokens(line.tokens);
      const bool speakable =
          std::any_of(ids[i].begin(), ids[i].end(), [](std::int64_t id) { return id != 0; });
      if (!speakable) {
        throw Error(fmt::format("line {}: nothing to say in \"{}\"", i + 1, lines[i]));
      }
    }
    // Similar lengths together, so that a batch pads little.
    std::vector<std::size_t> order(lines.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return ids[a].size() < ids[b].size(); });
    const auto per_batch = static_cast<std::size_t>(std::max<std::int64_t>(1, options.batch_size));
    for (std::size_t first = 0; first < order.size(); first += per_batch) {
      const auto last = std::min(order.size(), first + per_batch);
      std::size_t longest = 0;
      for (auto k = first; k < last; ++k) longest = std::max(longest, ids[order[k]].size());
      auto batch = torch::zeros(
          {static_cast<std::int64_t>(last - first), static_cast<std::int64_t>(longest)},
          torch::kLong);
      for (auto k = first; k < last; ++k) {
        const auto& row = ids[order[k]];
        batch[static_cast<std::int64_t>(k - first)]
            .narrow(0, 0, static_cast<std::int64_t>(row.size()))
            .copy_(torch::tensor(row, torch::kLong));
      }
      const auto started = std::chrono::steady_clock::now();
      const auto results =
          trained_.model->generate(batch, GenerateOptions{.stop_threshold = options.stop_threshold,
                                                          .max_frames = max_frames,
                                                          .duration_scale = 1.0 / options.speed,
                                                          .durations = {},
                                                          .end_at_durations = true});
      const double decoding = seconds_since(started);
      std::int64_t frames = 0;
      for (const auto& r : results) frames += r.mel.size(0);
      for (auto k = first; k < last; ++k) {
        auto& line = spoken[order[k]];
        const auto& result = results[k - first];
        line.mel = result.mel.to(torch::kCPU, torch::kFloat);
        line.durations = result.durations.to(torch::kCPU)
                             .narrow(0, 0, static_cast<std::int64_t>(ids[order[k]].size()))
                             .clone();
        line.stopped = result.stopped;
        line.reached_length = result.reached_durations;
        const auto vocoding = std::chrono::steady_clock::now();
        line.samples = vocoder_(line.mel);
        line.compute_seconds = decoding * static_cast<double>(line.mel.size(0)) /
                                   static_cast<double>(std::max<std::int64_t>(frames, 1)) +
                               seconds_since(vocoding);
      }
    }
    return spoken;
  }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  static Vocoder griffin_lim(const TtsConfig& config) {
    auto vocoder = std::make_shared<audio::GriffinLim>(mel_options(config.audio));
    return [vocoder](const torch::Tensor& mel) { return (*vocoder)(mel); };
  }

  TrainedModel trained_;
  Vocoder vocoder_;
  int sample_rate_;
};

}  // namespace kokoro::tts
