// The English TTS task's configuration sections: `data` (the corpus and how it
// is read), `model` (the Kokoro model's shape), `audio` (features) and `loss`
// (its weights), joined to the framework's sections as TtsConfig. The task
// maps them to the option structs of the modules it builds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/config_rules.hpp"
#include "kokoro/core/training_config.hpp"

namespace kokoro::tts {

/// Where the corpus lives and how it is read.
struct DataSection {
  std::string data_dir;  ///< LJSpeech-format root (kokoro-train: empty builds its demo corpus)
  std::string metadata_file = "metadata.csv";
  std::string wavs_dir = "wavs";
  std::string alignments_dir = "TextGrid";
  std::string cache_dir;  ///< empty: <logging.output_dir>/cache
  double validation_split = 0.05;
  std::int64_t num_workers = 2;
  std::int64_t prefetch_batches = 4;
  std::int64_t pool_batches = 16;
  std::int64_t max_frames_per_batch = 0;
  bool drop_last = false;
  std::string too_long = "skip";
  std::string durations = "auto";
  std::string missing_alignment = "uniform";
  std::string alignment_mismatch = "skip";
  std::string phoneme_set = "espeak";
  double alignment_min_match = 0.5;
  double alignment_tolerance_ms = 100.0;
  double speaking_rate_limit = 1.6;
  std::int64_t demo_clips = 300;

  friend bool operator==(const DataSection&, const DataSection&) = default;

  void check(std::vector<ConfigProblem>& problems) const {
    if (speaking_rate_limit > 0.0 && speaking_rate_limit <= 1.0) {
      problems.push_back({"data.speaking_rate_limit",
                          fmt::format("must be 0 (off) or over 1, a factor off the median (got {})",
                                      speaking_rate_limit)});
    }
  }

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("data_dir", s.data_dir,
      "LJSpeech-format corpus root (kokoro-train: empty builds its demo corpus)");
    v("metadata_file", s.metadata_file, "metadata file inside data_dir", rule::not_empty);
    v("wavs_dir", s.wavs_dir, "folder of the WAV files inside data_dir", rule::not_empty);
    v("alignments_dir", s.alignments_dir, "folder of MFA TextGrid files inside data_dir");
    v("cache_dir", s.cache_dir, "feature cache (empty: <logging.output_dir>/cache)");
    v("validation_split", s.validation_split, "share of clips held out for validation",
      rule::InRange{0.0, 1.0, true});
    v("num_workers", s.num_workers,
      "data-loading worker threads (0: batches built on the training thread)", rule::non_negative);
    v("prefetch_batches", s.prefetch_batches, "batches the workers build ahead of the loop",
      rule::positive);
    v("pool_batches", s.pool_batches,
      "length bucketing: this many batches' worth of clips are sorted by length together",
      rule::positive);
    v("max_frames_per_batch", s.max_frames_per_batch,
      "cap on clips x longest mel in a batch (0: batch_size alone decides)", rule::non_negative);
    v("drop_last", s.drop_last, "drop the batches left short of batch_size");
    v("too_long", s.too_long, "clips over audio.max_frames: skip | truncate",
      rule::OneOf{{"skip", "truncate"}});
    v("durations", s.durations,
      "where each phoneme's frames come from: auto (a clip's TextGrid where it has a usable one, "
      "else learned) | textgrid (TextGrids only; missing_alignment and alignment_mismatch decide "
      "the rest) | learned (the aligner's for every clip, TextGrids set aside)",
      rule::OneOf{{"auto", "textgrid", "learned"}});
    v("missing_alignment", s.missing_alignment,
      "with durations: textgrid, clips without a TextGrid: uniform (spread the frames evenly "
      "over the phonemes) | skip",
      rule::OneOf{{"uniform", "skip"}});
    v("alignment_mismatch", s.alignment_mismatch,
      "with durations: textgrid, clips whose TextGrid matches the phonemes below "
      "alignment_min_match, or whose length differs from the audio's by more than "
      "alignment_tolerance_ms: skip | uniform",
      rule::OneOf{{"skip", "uniform"}});
    v("phoneme_set", s.phoneme_set,
      "the model's tokens: espeak (espeak-ng's en-us phonemes) | arpabet (CMUdict phones with "
      "stress, as MFA's english_us_arpa and the LJSpeech alignments write them)",
      rule::OneOf{{"espeak", "arpabet"}});
    v("alignment_min_match", s.alignment_min_match,
      "least share of phones and phonemes paired with a similar sound for a TextGrid to be used",
      rule::InRange{0.0, 1.0});
    v("alignment_tolerance_ms", s.alignment_tolerance_ms,
      "a TextGrid may end this far from the end of its audio (the difference goes to the edge "
      "silences)",
      rule::non_negative);
    v("speaking_rate_limit", s.speaking_rate_limit,
      "skip clips spoken over this many times faster or slower than the corpus's median "
      "(phonemes a second, once it has 10 clips): a recording cut short, or a text that is not "
      "what was said (0: keep every clip)",
      rule::non_negative);
    v("demo_clips", s.demo_clips,
      "clips in kokoro-train's built-in demo corpus (used when data_dir is empty)", rule::positive);
  }
};

/// Shape of the Kokoro model.
struct ModelSection {
  std::int64_t hidden_dim = 512;
  std::int64_t encoder_layers = 6;
  std::int64_t decoder_layers = 6;
  std::int64_t num_heads = 8;
  std::int64_t ff_dim = 2048;
  double dropout = 0.1;
  double attention_dropout = 0.1;
  bool postnet = true;
  std::string gradient_checkpointing = "auto";
  std::int64_t checkpoint_blocks = 1;
  std::string kernels = "fast";

  friend bool operator==(const ModelSection&, const ModelSection&) = default;

  void check(std::vector<ConfigProblem>& problems) const {
    if (num_heads > 0 && hidden_dim % num_heads != 0) {
      problems.push_back(
          {"model.hidden_dim", fmt::format("must be divisible by model.num_heads (got {} and {})",
                                           hidden_dim, num_heads)});
    }
  }

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("hidden_dim", s.hidden_dim, "model width d", rule::positive);
    v("encoder_layers", s.encoder_layers, "Transformer encoder blocks", rule::non_negative);
    v("decoder_layers", s.decoder_layers, "Transformer decoder blocks", rule::non_negative);
    v("num_heads", s.num_heads, "attention heads (must divide hidden_dim)", rule::positive);
    v("ff_dim", s.ff_dim, "feed-forward width", rule::positive);
    v("dropout", s.dropout,
      "dropout probability on embeddings, sublayer outputs, hidden units and the PostNet",
      rule::InRange{0.0, 1.0, true});
    v("attention_dropout", s.attention_dropout,
      "dropout probability on the attention weights (0: no [batch, heads, frames, frames] masks)",
      rule::InRange{0.0, 1.0, true});
    v("postnet", s.postnet, "residual convolutional PostNet after the mel head");
    v("gradient_checkpointing", s.gradient_checkpointing,
      "recompute activations in backward to save memory: auto (when a batch would take over "
      "half the free memory, or for good once memory is under pressure), true, false",
      rule::OneOf{{"auto", "true", "false"}});
    v("checkpoint_blocks", s.checkpoint_blocks,
      "Transformer blocks per checkpointed segment (more: less recomputation bookkeeping, "
      "more memory held inside a segment)",
      rule::positive);
    v("kernels", s.kernels,
      "fast (Philox dropout, attention with its own backward) or reference (libtorch's stock "
      "ops, for comparison)",
      rule::OneOf{{"fast", "reference"}});
  }
};

/// Audio and mel-spectrogram settings.
struct AudioSection {
  std::int64_t sample_rate = 22050;
  std::int64_t n_fft = 1024;
  std::int64_t hop_length = 256;
  std::int64_t win_length = 1024;
  std::int64_t n_mels = 80;
  double fmin = 0.0;
  double fmax = 8000.0;
  double mel_power = 1.0;
  std::int64_t max_frames = 2500;

  friend bool operator==(const AudioSection&, const AudioSection&) = default;

  void check(std::vector<ConfigProblem>& problems) const {
    if (win_length > n_fft) {
      problems.push_back({"audio.win_length",
                          fmt::format("must be <= audio.n_fft (got {} > {})", win_length, n_fft)});
    }
    if (fmax > sample_rate / 2.0) {
      problems.push_back(
          {"audio.fmax",
           fmt::format("must be <= audio.sample_rate / 2 = {} (got {})", sample_rate / 2.0, fmax)});
    }
    if (fmin >= fmax) {
      problems.push_back(
          {"audio.fmin", fmt::format("must be < audio.fmax (got {} >= {})", fmin, fmax)});
    }
  }

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("sample_rate", s.sample_rate, "sample rate in Hz (other rates are resampled)",
      rule::positive);
    v("n_fft", s.n_fft, "FFT size", rule::positive);
    v("hop_length", s.hop_length, "samples between frames", rule::positive);
    v("win_length", s.win_length, "analysis window length (<= n_fft)", rule::positive);
    v("n_mels", s.n_mels, "mel bands", rule::positive);
    v("fmin", s.fmin, "lowest mel frequency in Hz", rule::non_negative);
    v("fmax", s.fmax, "highest mel frequency in Hz (<= sample_rate / 2)", rule::positive);
    v("mel_power", s.mel_power, "1: magnitude mel, 2: power mel", rule::positive);
    v("max_frames", s.max_frames, "longest clip in mel frames", rule::positive);
  }
};

/// The weights of the TTS losses (see tts/model/losses.hpp).
struct LossSection {
  double duration_weight = 0.1;
  double stop_weight = 1.0;
  double stop_positive_weight = 1.0;

  friend bool operator==(const LossSection&, const LossSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("duration_weight", s.duration_weight, "weight of the duration loss", rule::non_negative);
    v("stop_weight", s.stop_weight, "weight of the stop-token loss", rule::non_negative);
    v("stop_positive_weight", s.stop_positive_weight,
      "weight of the stop loss's positive (last-frame) term; >1 makes the stop fire more surely",
      rule::positive);
  }
};

/// The learned aligner (tts/align/aligner.hpp), part of the model unless
/// data.durations is textgrid: its size and its losses' schedule.
struct AlignmentSection {
  std::int64_t embedding_dim = 256;
  std::int64_t channels = 80;
  double temperature = 0.0005;
  bool normalize_mels = true;
  double learning_rate = 1e-2;
  double prior_scaling = 1.0;
  double ctc_weight = 1.0;
  double binarization_weight = 1.0;
  std::int64_t binarization_start_epochs = 2;
  std::int64_t binarization_ramp_epochs = 2;

  friend bool operator==(const AlignmentSection&, const AlignmentSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("embedding_dim", s.embedding_dim, "the aligner's own phoneme embedding", rule::positive);
    v("channels", s.channels, "the space its text and mel encoders map into", rule::positive);
    v("temperature", s.temperature,
      "scales the squared distances before the softmax over phonemes (larger: sharper)",
      rule::positive);
    v("normalize_mels", s.normalize_mels,
      "each clip's mel channels to zero mean and unit variance before the aligner's mel "
      "encoder (speakers and microphones alike to it)");
    v("learning_rate", s.learning_rate,
      "the aligner's own learning rate, in a parameter group of its own that follows the "
      "run's schedule (it needs far more than the model: alone it learns best near 1e-2); 0: "
      "training.learning_rate, in the model's group, as runs before this option had it",
      rule::non_negative);
    v("prior_scaling", s.prior_scaling,
      "sharpness of the beta-binomial prior that keeps a young aligner near the diagonal",
      rule::positive);
    v("ctc_weight", s.ctc_weight, "weight of the forward-sum loss (loss/align_ctc)",
      rule::non_negative);
    v("binarization_weight", s.binarization_weight,
      "weight of the binarization loss (loss/align_bin) once fully on", rule::non_negative);
    v("binarization_start_epochs", s.binarization_start_epochs,
      "epochs before the binarization loss starts (the soft alignment must first be worth "
      "sharpening; FastPitch waits a quarter of its run)",
      rule::non_negative);
    v("binarization_ramp_epochs", s.binarization_ramp_epochs,
      "epochs over which its weight then rises linearly to binarization_weight",
      rule::non_negative);
  }
};

/// Objective quality during training (tts/eval/quality.hpp): free-running
/// synthesis of fixed validation clips scored against their recordings.
struct EvaluationSection {
  std::int64_t every_epochs = 1;
  std::int64_t clips = 4;
  double max_share = 0.1;
  bool at_end = true;
  std::string recognizer = "auto";
  std::int64_t mcd_order = 24;

  friend bool operator==(const EvaluationSection&, const EvaluationSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("every_epochs", s.every_epochs,
      "score free-running synthesis against the recordings every N epochs (0: never)",
      rule::non_negative);
    v("clips", s.clips,
      "validation clips scored (the first ones by id; training clips without validation)",
      rule::positive);
    v("max_share", s.max_share,
      "an evaluation that is due waits while evaluations, it included, would take more than this "
      "share of the run's time (the last one at the end runs regardless)",
      rule::InRange{0.0, 1.0});
    v("at_end", s.at_end, "also evaluate when the run ends (its epochs, steps or minutes)");
    v("recognizer", s.recognizer,
      "the speech recognizer for eval/wer and eval/cer: moonshine (kokoro's Python environment), "
      "pocketsphinx (Debian), auto (moonshine where it runs, else pocketsphinx), none; true and "
      "false, from before the choice, mean auto and none",
      rule::OneOf{{"auto", "moonshine", "pocketsphinx", "none", "true", "false"}});
    v("mcd_order", s.mcd_order, "mel-cepstral coefficients in the MCD (c1..c_N)",
      rule::positive);
  }
};

/// The sections the TTS task adds to a run's configuration.
struct TtsSections {
  DataSection data;
  ModelSection model;
  AudioSection audio;
  LossSection loss;
  AlignmentSection alignment;
  EvaluationSection evaluation;

  friend bool operator==(const TtsSections&, const TtsSections&) = default;

  template <class Self, class Visitor>
  static void sections(Self& s, Visitor&& v) {
    v("data", s.data);
    v("model", s.model);
    v("audio", s.audio);
    v("loss", s.loss);
    v("alignment", s.alignment);
    v("evaluation", s.evaluation);
  }

  /// Before the configuration was split by layer the loss weights sat in
  /// `training`; files and checkpoints of that time still load.
  static std::vector<LegacyKey> legacy_keys() {
    return {{"training.duration_loss_weight", "loss.duration_weight"},
            {"training.stop_loss_weight", "loss.stop_weight"},
            {"training.stop_positive_weight", "loss.stop_positive_weight"}};
  }
};

/// A TTS run's configuration: framework sections plus the task's.
using TtsConfig = RunConfig<TtsSections>;

/// The reference system's defaults: d=512, 6+6 layers, batch 16, 100 epochs.
inline TtsConfig default_config() { return TtsConfig{}; }

/// For small machines and quick runs: d=256, 4+4 layers, feed-forward 1024,
/// batch 8, 10 epochs.
inline TtsConfig small_config() {
  TtsConfig c;
  c.model.hidden_dim = 256;
  c.model.encoder_layers = 4;
  c.model.decoder_layers = 4;
  c.model.ff_dim = 1024;
  c.training.batch_size = 8;
  c.training.epochs = 10;
  return c;
}

}  // namespace kokoro::tts
