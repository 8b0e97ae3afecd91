// kokoro-align: a forced aligner for an LJSpeech-layout corpus, learned from
// its recordings and text alone. For every clip it writes a Praat TextGrid
// with "words" and "phones" tiers (MFA's layout: silences as empty labels)
// that kokoro-train reads back as data.durations: textgrid.
//
// The aligner comes from a kokoro-train checkpoint (--checkpoint, a run
// trained with learned durations), or is trained here on the corpus alone
// for --minutes (tts/aligner_task.hpp: a few convolutions, far quicker than
// the TTS model) and kept in <out>/.aligner/aligner/checkpoints/final.pt,
// which --checkpoint takes too (new grids, other settings, no training).
// --compare DIR scores the grids written against reference grids (the demo
// corpus's own, or MFA's): the share of word (and phone) boundaries within
// --tolerance-ms. Progress goes to stderr.
//
//   kokoro-align --data corpus --out corpus/TextGrid_learned --minutes 5
//                --compare corpus/TextGrid
#include <kokoro/audio/audio_file.hpp>
#include <kokoro/trainer.hpp>
#include <kokoro/tts/align/align_clip.hpp>
#include <kokoro/tts/align/alignment_health.hpp>
#include <kokoro/tts/align/alignment_textgrid.hpp>
#include <kokoro/tts/align/boundary_agreement.hpp>
#include <kokoro/tts/aligner_task.hpp>
#include <kokoro/tts/synthesizer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/command_line.hpp"
#include "common/device_choice.hpp"

namespace {

namespace fs = std::filesystem;
namespace tts = kokoro::tts;
namespace align = kokoro::tts::align;

struct AlignerPolicies : kokoro::DefaultPolicies {};
using AlignerTrainer = kokoro::Trainer<tts::AlignerTask, AlignerPolicies>;

/// Every clip of the corpus (training and held-out), by id.
std::vector<tts::CorpusClip> all_clips(const tts::PreparedCorpus& corpus) {
  auto clips = corpus.train;
  clips.insert(clips.end(), corpus.validation.begin(), corpus.validation.end());
  std::sort(clips.begin(), clips.end(),
            [](const tts::CorpusClip& a, const tts::CorpusClip& b) { return a.id < b.id; });
  return clips;
}

/// The binarization loss (tts/align/alignment_losses.hpp) starts once the
/// soft alignment has left the prior's diagonal: after about this many steps
/// of the aligner alone (a young aligner's hard path is the diagonal, and
/// pulling towards it early holds it there), then rises over about as many
/// as the ramp.
constexpr std::int64_t kBinarizationStartSteps = 2000;
constexpr std::int64_t kBinarizationRampSteps = 500;

/// Batches an epoch of the corpus in `data_dir` makes under `config` (its
/// overrides applied): its usable clips over the batch size. The corpus is
/// prepared where the trainer will look for it, which then finds it cached.
std::int64_t steps_per_epoch(const tts::TtsConfig& config, const std::string& data_dir) {
  const auto processor = tts::EnglishPhonemeProcessor::for_phoneme_set(config.data.phoneme_set);
  const auto corpus =
      tts::prepare_corpus(config, processor, data_dir, tts::corpus_cache_dir(config));
  const auto clips = static_cast<std::int64_t>(corpus.train.size() + corpus.validation.size());
  const auto batch = std::max<std::int64_t>(1, config.training.batch_size);
  return std::max<std::int64_t>(1, (clips + batch - 1) / batch);
}

/// Whole epochs that take at least `steps` steps of `per_epoch` each.
std::int64_t epochs_for(std::int64_t steps, std::int64_t per_epoch) {
  return (steps + per_epoch - 1) / per_epoch;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "kokoro-align: align a corpus's recordings to their text and write TextGrids, with an\n"
      "aligner learned from the corpus itself (or taken from a kokoro-train checkpoint).",
      "kokoro-align"};
  std::string data_dir, out_dir, checkpoint, compare_dir, device_name = "auto";
  double minutes = 5.0, tolerance_ms = 23.2;
  // 1: any quiet frame a pause took is a silence. Measured on the demo corpus
  // with one aligner (benchmarks/README.md): word boundaries within 23 ms
  // 84.8% at 1, 81.4% at 2, 79.2% at 3, 77.9% at 5; the quiet frames decide
  // better than the pause's length.
  std::int64_t min_silence_frames = 1;
  double silence_db = 40.0;
  std::vector<std::string> overrides;
  app.add_option("--data,-d", data_dir, "the corpus: metadata.csv and wavs/")->required();
  app.add_option("--out,-o", out_dir, "where the TextGrids go (<id>.TextGrid)")->required();
  app.add_option("--checkpoint", checkpoint,
                 "a kokoro-train checkpoint with a learned aligner, or the aligner an earlier "
                 "kokoro-align kept (default: train one here)");
  app.add_option("--minutes", minutes, "without --checkpoint: minutes to train the aligner")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--compare", compare_dir,
                 "reference TextGrids (<id>.TextGrid) to score the boundaries against");
  app.add_option("--tolerance-ms", tolerance_ms,
                 "a boundary within this of the reference's counts as agreeing (default: 2 "
                 "frames of 256 samples at 22.05 kHz)")
      ->capture_default_str();
  app.add_option("--min-silence-frames", min_silence_frames,
                 "a pause inside a clip with fewer quiet frames than this is no silence in the "
                 "grid")
      ->capture_default_str();
  app.add_option("--silence-db", silence_db,
                 "a frame this far under the clip's loudest is quiet: pauses become silences "
                 "only where frames are quiet")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  examples::add_device_option(app, device_name);
  examples::add_overrides(app, overrides);
  if (const auto code = examples::parse_command_line(app, argc, argv, overrides)) return *code;

  try {
    const auto device = examples::pick_device(device_name);
    const auto start = std::chrono::steady_clock::now();
    tts::TtsConfig config = tts::small_config();
    align::Aligner aligner{nullptr};
    std::optional<tts::EnglishPhonemeProcessor> checkpoint_processor;
    if (!checkpoint.empty()) {
      // A kokoro-train run's aligner, or the one an earlier kokoro-align trained.
      auto saved = tts::read_tts_checkpoint(checkpoint);
      auto weights = kokoro::make_ivalue_dict();
      constexpr std::string_view kPrefix = "aligner.";
      for (const auto& entry : saved.weights) {
        const auto& name = entry.key().toStringRef();
        if (name.rfind(kPrefix, 0) == 0) weights.insert(name.substr(kPrefix.size()), entry.value());
      }
      if (weights.empty()) {
        throw kokoro::Error(fmt::format(
            "{}: this model has no aligner (it was trained with data.durations: textgrid); "
            "train one here with --minutes instead",
            checkpoint));
      }
      config = saved.config;
      auto options = tts::aligner_options(config.alignment);
      options.vocab_size = saved.processor.vocab_size();
      options.n_mels = config.audio.n_mels;
      aligner = align::Aligner(options);
      kokoro::load_module_state_dict(*aligner, weights, checkpoint);
      checkpoint_processor = saved.processor;  // its vocabulary, whatever this build's is
    } else {
      config.training.epochs = 100000;
      config.training.max_minutes = minutes;
      // Alone, the aligner learns best fast and evenly, and sharpens late
      // (benchmarks/README.md, real speech after 5 minutes: 35.5% of word
      // boundaries within 50 ms at 1e-3 on cosine restarts with
      // binarization from epoch 2; 50.0% at a constant 3e-3 without
      // binarization, 52.3% with it after 2000 steps; 55.0% at 1e-2).
      config.training.learning_rate = 1e-2;
      config.training.scheduler = "constant";
      config.training.warmup_steps = 0;
      config.data.validation_split = 0.0;
      // The aligner is kept (<out>/.aligner/aligner/checkpoints/final.pt), so
      // that --checkpoint writes grids again without training it again.
      config.logging.output_dir = (fs::path(out_dir) / ".aligner").string();
      config.logging.run_name = "aligner";
      config.logging.overwrite = true;
      config.logging.checkpoint_every_epochs = 0;
      config.logging.media_every_epochs = 0;
      config.logging.log_every = 20;
      config.evaluation.every_epochs = 0;
    }
    config.data.data_dir = data_dir;
    config.data.durations = "learned";
    config.hardware.device = device.is_cuda() ? "cuda" : "cpu";
    kokoro::apply_overrides(config, overrides);
    if (checkpoint.empty()) {
      // Steps, counted in the epochs the schedule takes, over the clips the
      // corpus keeps; an override of them still wins.
      const auto steps = steps_per_epoch(config, data_dir);
      config.alignment.binarization_start_epochs = epochs_for(kBinarizationStartSteps, steps);
      config.alignment.binarization_ramp_epochs = epochs_for(kBinarizationRampSteps, steps);
      kokoro::apply_overrides(config, overrides);
    }
    if (aligner.is_empty()) {
      AlignerTrainer trainer(config);
      const auto summary = trainer.fit();
      std::fprintf(stderr, "kokoro-align: trained the aligner for %lld steps in %.1f s%s%s\n",
                   static_cast<long long>(summary.global_step), summary.seconds,
                   summary.checkpoint.empty() ? "" : "; kept in ",
                   summary.checkpoint.empty() ? "" : summary.checkpoint.c_str());
      aligner = trainer.task().aligner();
    }
    aligner->to(device);

    // Every clip: its learned durations, as a TextGrid.
    const auto cache = fs::path(out_dir) / ".cache";
    auto processor = checkpoint_processor
                         ? *checkpoint_processor
                         : tts::EnglishPhonemeProcessor::for_phoneme_set(config.data.phoneme_set);
    const auto corpus = tts::prepare_corpus(config, processor, data_dir, cache, {}, true);
    // The clips it leaves out (unreadable, spoken at an implausible rate)
    // get no grid: say how many and where each one's reason is.
    std::fprintf(stderr, "kokoro-align: %s\n", corpus.report.summary().c_str());
    align::AlignmentPriorCache priors(config.alignment.prior_scaling);
    fs::create_directories(out_dir);
    const auto clips = all_clips(corpus);
    align::BoundaryAgreement words_agree, phones_agree;
    align::AlignmentHealth health;
    std::int64_t written = 0, failed = 0, compared = 0;
    const tts::AlignmentTextGridOptions grid_options{
        .min_silence_frames = min_silence_frames,
        .is_pause = &tts::EnglishPhonemeProcessor::is_pause_token,
        .is_word_boundary = [](std::string_view t) { return t == tts::kWordBoundary; }};
    for (std::size_t i = 0; i < clips.size(); ++i) {
      const auto& clip = clips[i];
      try {
        const auto item = tts::TtsData::load(clip);
        const auto alignment = align::align_clip_outputs(aligner, priors, item.phonemes, item.mel);
        const auto& durations = alignment.durations;
        std::vector<std::int64_t> ids(item.phonemes.data_ptr<std::int64_t>(),
                                      item.phonemes.data_ptr<std::int64_t>() + item.phonemes.numel());
        align::add_alignment_health(health, alignment, {}, 2, processor.pause_mask(ids));
        const auto samples = kokoro::audio::load_audio(clip.audio, static_cast<int>(config.audio.sample_rate));
        tts::AlignedClip aligned{
            .tokens = processor.decode(ids),
            .durations =
                std::vector<std::int64_t>(durations.data_ptr<std::int64_t>(),
                                          durations.data_ptr<std::int64_t>() + durations.numel()),
            .words = processor.transcribe(clip.text).words,
            .silent = tts::silent_frames(item.mel, silence_db, config.audio.mel_power),
            .seconds =
                static_cast<double>(samples.size()) / static_cast<double>(config.audio.sample_rate),
            .sample_rate = static_cast<int>(config.audio.sample_rate),
            .hop_length = static_cast<int>(config.audio.hop_length)};
        const auto grid = tts::alignment_textgrid(aligned, grid_options);
        tts::write_textgrid(grid, fs::path(out_dir) / (clip.id + ".TextGrid"));
        ++written;
        if (!compare_dir.empty()) {
          const auto reference_path = fs::path(compare_dir) / (clip.id + ".TextGrid");
          if (fs::exists(reference_path)) {
            const auto reference = tts::read_textgrid(reference_path);
            const double tolerance = tolerance_ms / 1000.0;
            if (const auto* w = reference.aligner_tier("words")) {
              words_agree += align::boundary_agreement(*grid.tier("words"), *w, tolerance);
            }
            if (const auto* p = reference.aligner_tier("phones")) {
              phones_agree += align::boundary_agreement(*grid.tier("phones"), *p, tolerance);
            }
            ++compared;
          }
        }
      } catch (const std::exception& e) {
        ++failed;
        std::fprintf(stderr, "\nkokoro-align: %s: %s\n", clip.id.c_str(), e.what());
      }
      std::fprintf(stderr, "\rkokoro-align: clip %zu/%zu", i + 1, clips.size());
    }
    std::fprintf(stderr, "\n");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("kokoro-align: %lld TextGrids in %s (%lld clips failed) in %.1f s\n",
                static_cast<long long>(written), out_dir.c_str(), static_cast<long long>(failed),
                seconds);
    if (const auto skipped = corpus.report.skipped_total(); skipped > 0) {
      std::printf("  %lld clips left out, each named with its reason in %s\n",
                  static_cast<long long>(skipped), (corpus.cache_dir / "report.txt").c_str());
    }
    std::printf(
        "  alignment health: %lld of %lld clips walk the diagonal (each frame's most likely "
        "phoneme never steps back or skips one, pauses aside), mean forward-sum loss %.3f\n",
        static_cast<long long>(health.monotonic), static_cast<long long>(health.clips),
        health.mean_forward_sum());
    if (compared > 0) {
      std::printf(
          "  against %s (%lld clips, within %.1f ms):\n"
          "    words   %.1f%% of %lld boundaries (%lld of %lld words paired), mean error %.1f ms\n"
          "    phones  %.1f%% of %lld boundaries (%lld of %lld phones paired), mean error %.1f ms\n",
          compare_dir.c_str(), static_cast<long long>(compared), tolerance_ms,
          100.0 * words_agree.share_within(), static_cast<long long>(words_agree.boundaries),
          static_cast<long long>(words_agree.paired), static_cast<long long>(words_agree.intervals),
          1000.0 * words_agree.mean_absolute_error(), 100.0 * phones_agree.share_within(),
          static_cast<long long>(phones_agree.boundaries),
          static_cast<long long>(phones_agree.paired),
          static_cast<long long>(phones_agree.intervals),
          1000.0 * phones_agree.mean_absolute_error());
    }
    return failed > 0 && written == 0 ? 1 : 0;
  } catch (const kokoro::ConfigError& e) {
    std::fprintf(stderr, "kokoro-align: configuration error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro-align: %s\n", e.what());
    return 1;
  }
}
