// QualityEvaluator: how close a model's free-running speech comes to the
// recordings it should imitate, clip by clip and in sum.
//
// For each clip the model speaks the clip's text through the Synthesizer (the
// path kokoro-synthesize takes: predicted durations, stop token, vocoder),
// and the result is scored against the recording:
//   mcd, mcd_plain   mel-cepstral distortion, dB (cepstral_distance.hpp)
//   f0_rmse, vde     log-F0 RMSE and voicing decision error along the MCD's
//                    DTW path (pitch.hpp)
//   length_ratio     synthesized frames over recorded frames (speech is cut
//                    at twice the evaluation's longest recording plus a
//                    second, so a model that never stops shows 2 or more)
//   duration_mae     mean absolute error of the predicted frames per phoneme
//                    against the corpus's durations (TextGrid or uniform)
//   wer, cer         the recognizer's errors on the synthesis against the
//                    clip's text (recognizers.hpp, error_rate.hpp); the
//                    report names the recognizer, as rates of different
//                    recognizers do not compare
// Every report carries the ceilings beside them, computed once per clip and
// kept: the recognizer on the recording itself ("@recording"), and
// Griffin-Lim of the recording's mel ("@griffin_lim": the vocoder alone, its
// wer, cer, mcd, f0_rmse and vde). Means are over clips; wer and cer are
// corpus rates (all edits over all reference words).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "kokoro/audio/audio_file.hpp"
#include "kokoro/audio/griffin_lim.hpp"
#include "kokoro/audio/mel.hpp"
#include "kokoro/core/metrics.hpp"
#include "kokoro/tts/data/corpus.hpp"
#include "kokoro/tts/data/tts_data.hpp"
#include "kokoro/tts/eval/cepstral_distance.hpp"
#include "kokoro/tts/eval/error_rate.hpp"
#include "kokoro/tts/eval/pitch.hpp"
#include "kokoro/tts/eval/recognizers.hpp"
#include "kokoro/tts/synthesizer.hpp"
#include "kokoro/tts/tts_config.hpp"

namespace kokoro::tts::eval {

/// A clip to judge a model by: its text, its recording and the features the
/// corpus computed from it.
struct EvaluationClip {
  std::string id;
  std::string text;
  std::filesystem::path audio;  ///< the recording; empty: no recording (no F0, no ceilings)
  torch::Tensor mel;            ///< [frames, n_mels] the recording's log-mel
  torch::Tensor durations;      ///< [tokens] int64 the corpus's frames per phoneme
};

/// The corpus clips as evaluation clips (features from the feature cache).
/// A clip's durations only where they came from its TextGrid: those spread
/// evenly over a clip without one (for the aligner to replace) are no
/// yardstick for the predicted ones.
inline std::vector<EvaluationClip> evaluation_clips(const std::vector<CorpusClip>& clips) {
  std::vector<EvaluationClip> out;
  out.reserve(clips.size());
  for (const auto& c : clips) {
    auto item = TtsData::load(c);
    out.push_back(
        EvaluationClip{.id = c.id,
                       .text = c.text,
                       .audio = c.audio,
                       .mel = item.mel,
                       .durations = item.durations_known ? item.durations : torch::Tensor{}});
  }
  return out;
}

struct QualityOptions {
  CepstrumOptions cepstrum{};
  PitchOptions pitch{};  ///< sample_rate and hop_length come from the audio section
  /// The recognizer for wer, cer and their ceilings (name "none": left out).
  RecognizerOptions recognizer{};
  SpeakOptions speak{};
};

/// One clip's scores (NaN where a measure does not apply).
struct ClipQuality {
  std::string id;
  std::string hypothesis;  ///< what the recognizer heard in the synthesis
  double mcd = NAN, mcd_plain = NAN, f0_rmse = NAN, vde = NAN;
  double length_ratio = NAN, duration_mae = NAN;
  ErrorCounts errors{};
  bool heard = false;    ///< the recognizer ran on it
  bool stopped = false;  ///< the stop token ended it
};

/// The ceilings of one clip: what the recording and the vocoder allow.
struct ClipCeiling {
  ErrorCounts recording{};    ///< the recognizer on the recording
  ErrorCounts griffin_lim{};  ///< the recognizer on Griffin-Lim of the recording's mel
  double mcd = NAN, f0_rmse = NAN, vde = NAN;  ///< Griffin-Lim against the recording
  std::string recording_hypothesis, griffin_lim_hypothesis;
  bool heard = false;  ///< the recognizer ran on both (else it is tried again next time)
};

/// Means over clips (NaN entries left out) and corpus error rates.
struct QualitySummary {
  std::int64_t clips = 0;
  std::map<std::string, double> means;  ///< mcd, mcd_plain, f0_rmse, vde, length_ratio, duration_mae
  std::optional<ErrorCounts> errors;    ///< when the recognizer ran
};

struct QualityReport {
  std::vector<ClipQuality> clips;
  QualitySummary model;
  QualitySummary griffin_lim;            ///< the vocoder's ceiling
  std::optional<ErrorCounts> recording;  ///< the recognizer's ceiling
  double seconds = 0.0;                  ///< wall time of this evaluation
  std::string recognizer;                ///< the one that heard ("": none)
  std::string recognizer_fallback;       ///< why "auto" could not use Moonshine
  /// Why wer and cer are missing although a recognizer runs: it failed on a
  /// clip (the other figures stand).
  std::string recognizer_error;

  /// "mcd", "wer", ... and the ceilings as "wer@recording", "mcd@griffin_lim", ...
  Metrics metrics() const {
    Metrics m;
    for (const auto& [name, value] : model.means) m.set(name, value);
    if (model.errors) {
      m.set("wer", model.errors->wer());
      m.set("cer", model.errors->cer());
    }
    if (recording) {
      m.set("wer@recording", recording->wer());
      m.set("cer@recording", recording->cer());
    }
    if (griffin_lim.errors) {
      m.set("wer@griffin_lim", griffin_lim.errors->wer());
      m.set("cer@griffin_lim", griffin_lim.errors->cer());
    }
    for (const auto& [name, value] : griffin_lim.means) m.set(name + "@griffin_lim", value);
    m.set("clips", static_cast<double>(model.clips));
    return m;
  }
};

namespace detail::quality {

/// Mean of the finite values of `field` over `items`; NaN when none.
template <typename T, typename F>
double finite_mean(const std::vector<T>& items, F field) {
  double sum = 0.0;
  std::int64_t n = 0;
  for (const auto& item : items) {
    const double v = field(item);
    if (std::isfinite(v)) {
      sum += v;
      ++n;
    }
  }
  return n > 0 ? sum / static_cast<double>(n) : NAN;
}

}  // namespace detail::quality

class QualityEvaluator {
 public:
  /// Synthesis is cut at this many times the longest recording (plus a second).
  static constexpr double kMaxLengthRatio = 2.0;

  /// `audio`: the model's audio settings (sample rate, hop, mel).
  QualityEvaluator(const AudioSection& audio, QualityOptions options = {})
      : options_(std::move(options)),
        mel_options_(mel_options(audio)),
        mel_(mel_options_),
        griffin_lim_(mel_options_) {
    options_.pitch.sample_rate = static_cast<int>(audio.sample_rate);
    options_.pitch.hop_length = static_cast<int>(audio.hop_length);
    options_.cepstrum.mel_power = audio.mel_power;
    auto chosen = make_recognizer(options_.recognizer);
    recognizer_ = std::move(chosen.recognizer);
    recognizer_fallback_ = std::move(chosen.fallback_reason);
  }

  /// The recognizer that runs ("moonshine", "pocketsphinx"; "" for none).
  std::string recognizer_name() const { return recognizer_ ? recognizer_->name() : std::string{}; }
  /// Why "auto" fell back to PocketSphinx ("" when it did not).
  const std::string& recognizer_fallback() const { return recognizer_fallback_; }

  const QualityOptions& options() const { return options_; }

  /// Speaks every clip's text with `synthesizer` (in batches, as
  /// kokoro-synthesize does) and scores it. `progress` hears (clips scored,
  /// clips in all) after each clip.
  QualityReport evaluate(Synthesizer& synthesizer, const std::vector<EvaluationClip>& clips,
                         const std::function<void(std::size_t, std::size_t)>& progress = {}) {
    const auto start = std::chrono::steady_clock::now();
    recognizer_error_.clear();
    QualityReport report;
    std::vector<ClipCeiling> ceilings;
    std::vector<std::string> texts;
    std::int64_t longest = 0;
    for (const auto& clip : clips) {
      texts.push_back(clip.text);
      longest = std::max<std::int64_t>(longest, clip.mel.size(0));
    }
    // A young model whose stop token never fires would speak to the cap;
    // cut it at kMaxLengthRatio times the longest recording (its
    // length_ratio says so), which bounds what an evaluation costs.
    auto speak = options_.speak;
    speak.max_seconds = std::min(
        speak.max_seconds, kMaxLengthRatio * static_cast<double>(longest) *
                                   static_cast<double>(options_.pitch.hop_length) /
                                   static_cast<double>(options_.pitch.sample_rate) +
                               1.0);
    const auto spoken =
        texts.empty() ? std::vector<SpokenLine>{} : synthesizer.speak(texts, speak);
    for (std::size_t i = 0; i < clips.size(); ++i) {
      const auto& clip = clips[i];
      report.clips.push_back(score(clip, spoken[i], synthesizer.sample_rate()));
      ceilings.push_back(ceiling(clip));
      if (progress) progress(i + 1, clips.size());
    }
    summarise(report, ceilings);
    report.recognizer = recognizer_name();
    report.recognizer_fallback = recognizer_fallback_;
    report.recognizer_error = recognizer_error_;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }

  /// One synthesis against its clip. `sample_rate`: the synthesis's.
  ClipQuality score(const EvaluationClip& clip, const SpokenLine& spoken, int sample_rate) {
    ClipQuality q;
    q.id = clip.id;
    q.stopped = spoken.stopped;
    const auto& reference = this->reference(clip);
    if (spoken.mel.defined() && spoken.mel.size(0) > 0) {
      const auto d = mel_cepstral_distortion(spoken.mel, clip.mel, options_.cepstrum);
      q.mcd = d.dtw_db;
      q.mcd_plain = d.plain_db;
      q.length_ratio =
          static_cast<double>(spoken.mel.size(0)) / static_cast<double>(clip.mel.size(0));
      if (reference.pitch) {
        const auto samples = sample_rate == options_.pitch.sample_rate
                                 ? spoken.samples
                                 : audio::resample(spoken.samples, sample_rate,
                                                   options_.pitch.sample_rate);
        const auto e = pitch_errors(track_pitch(samples, options_.pitch), *reference.pitch, d.path);
        q.f0_rmse = e.log_f0_rmse;
        q.vde = e.voicing_error;
      }
    } else {
      q.length_ratio = 0.0;
    }
    if (clip.durations.defined() && spoken.durations.defined() &&
        clip.durations.numel() == spoken.durations.numel() && clip.durations.numel() > 0) {
      q.duration_mae = (spoken.durations.to(torch::kDouble) - clip.durations.to(torch::kDouble))
                           .abs()
                           .mean()
                           .item<double>();
    }
    if (recognizer_) {
      q.heard = hear(spoken.samples, sample_rate, q.hypothesis);
      if (q.heard) q.errors = transcript_errors(clip.text, q.hypothesis);
    }
    return q;
  }

  /// The clip's ceilings (computed the first time, then kept; what the
  /// recognizer failed to hear is tried again the next time).
  const ClipCeiling& ceiling(const EvaluationClip& clip) {
    auto& ref = reference(clip);
    if (ref.ceiling) {
      if (recognizer_ && !ref.ceiling->heard) recognize_ceiling(clip, ref, *ref.ceiling);
      return *ref.ceiling;
    }
    ClipCeiling c;
    const auto vocoded = griffin_lim_(clip.mel);
    const auto vocoded_mel = mel_(torch::tensor(vocoded));
    const auto d = mel_cepstral_distortion(vocoded_mel, clip.mel, options_.cepstrum);
    c.mcd = d.dtw_db;
    if (ref.pitch) {
      // Same length, same timing: frame t against frame t.
      WarpingPath diagonal;
      const auto frames = std::min<std::int64_t>(vocoded_mel.size(0), clip.mel.size(0));
      for (std::int64_t t = 0; t < frames; ++t) diagonal.emplace_back(t, t);
      const auto e = pitch_errors(track_pitch(vocoded, options_.pitch), *ref.pitch, diagonal);
      c.f0_rmse = e.log_f0_rmse;
      c.vde = e.voicing_error;
    }
    ref.vocoded = vocoded;
    if (recognizer_) recognize_ceiling(clip, ref, c);
    ref.ceiling = c;
    return *ref.ceiling;
  }

 private:
  /// The recognizer on `samples` into `text`; false (and the reason kept for
  /// the report) when it failed.
  bool hear(const std::vector<float>& samples, int sample_rate, std::string& text) {
    try {
      text = recognizer_->transcribe(samples, sample_rate);
      return true;
    } catch (const std::exception& e) {
      if (recognizer_error_.empty()) recognizer_error_ = e.what();
      return false;
    }
  }

  struct Reference;
  void recognize_ceiling(const EvaluationClip& clip, const Reference& ref, ClipCeiling& c) {
    const int rate = options_.pitch.sample_rate;
    bool heard = hear(ref.vocoded, rate, c.griffin_lim_hypothesis);
    if (heard) c.griffin_lim = transcript_errors(clip.text, c.griffin_lim_hypothesis);
    if (heard && !ref.samples.empty()) {
      heard = hear(ref.samples, rate, c.recording_hypothesis);
      if (heard) c.recording = transcript_errors(clip.text, c.recording_hypothesis);
    }
    c.heard = heard;
  }

  struct Reference {
    std::vector<float> samples;        ///< the recording at the model's rate (empty: none)
    std::optional<PitchTrack> pitch;   ///< its pitch
    std::optional<ClipCeiling> ceiling;
    std::vector<float> vocoded;        ///< Griffin-Lim of its mel (for the recognizer)
  };

  /// The clip's recording and its pitch, read the first time it is asked
  /// for (a recording that cannot be read throws, then and every later time).
  Reference& reference(const EvaluationClip& clip) {
    if (const auto it = references_.find(clip.id); it != references_.end()) return it->second;
    Reference r;
    if (!clip.audio.empty()) {
      r.samples = audio::load_audio(clip.audio, options_.pitch.sample_rate);
      r.pitch = track_pitch(r.samples, options_.pitch);
    }
    return references_.emplace(clip.id, std::move(r)).first->second;
  }

  void summarise(QualityReport& report, const std::vector<ClipCeiling>& ceilings) const {
    using detail::quality::finite_mean;
    auto& clips = report.clips;
    report.model.clips = static_cast<std::int64_t>(clips.size());
    report.model.means = {
        {"mcd", finite_mean(clips, [](const ClipQuality& q) { return q.mcd; })},
        {"mcd_plain", finite_mean(clips, [](const ClipQuality& q) { return q.mcd_plain; })},
        {"f0_rmse", finite_mean(clips, [](const ClipQuality& q) { return q.f0_rmse; })},
        {"vde", finite_mean(clips, [](const ClipQuality& q) { return q.vde; })},
        {"length_ratio", finite_mean(clips, [](const ClipQuality& q) { return q.length_ratio; })},
        {"duration_mae", finite_mean(clips, [](const ClipQuality& q) { return q.duration_mae; })}};
    std::erase_if(report.model.means, [](const auto& kv) { return !std::isfinite(kv.second); });
    report.griffin_lim.clips = static_cast<std::int64_t>(ceilings.size());
    report.griffin_lim.means = {
        {"mcd", finite_mean(ceilings, [](const ClipCeiling& c) { return c.mcd; })},
        {"f0_rmse", finite_mean(ceilings, [](const ClipCeiling& c) { return c.f0_rmse; })},
        {"vde", finite_mean(ceilings, [](const ClipCeiling& c) { return c.vde; })}};
    std::erase_if(report.griffin_lim.means, [](const auto& kv) { return !std::isfinite(kv.second); });
    const bool all_heard =
        std::all_of(clips.begin(), clips.end(), [](const ClipQuality& q) { return q.heard; }) &&
        std::all_of(ceilings.begin(), ceilings.end(), [](const ClipCeiling& c) { return c.heard; });
    if (recognizer_ && all_heard) {
      ErrorCounts model, vocoder, recording;
      bool any_recording = false;
      for (const auto& q : clips) model += q.errors;
      for (const auto& c : ceilings) {
        vocoder += c.griffin_lim;
        recording += c.recording;
        any_recording = any_recording || c.recording.reference_words > 0;
      }
      report.model.errors = model;
      report.griffin_lim.errors = vocoder;
      if (any_recording) report.recording = recording;
    }
  }

  QualityOptions options_;
  audio::MelOptions mel_options_;
  audio::MelSpectrogram mel_;
  audio::GriffinLim griffin_lim_;
  std::unique_ptr<Recognizer> recognizer_;
  std::string recognizer_fallback_;
  std::string recognizer_error_;  // the first failure of this evaluation
  std::map<std::string, Reference> references_;
};

}  // namespace kokoro::tts::eval
