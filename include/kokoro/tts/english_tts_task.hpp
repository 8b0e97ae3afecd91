// EnglishTtsTask: the English text-to-speech task for kokoro::Trainer. It
// prepares the corpus named by data.data_dir (LJSpeech format with MFA
// TextGrids), builds the Kokoro model from the model section, computes the
// TTS losses, and every logging.media_every_epochs epochs synthesises a
// validation sentence: its predicted and target mels as images, its audio
// (Griffin-Lim) and its text, as media for the loggers (SampleFileLogger
// writes them under <run directory>/samples); when the Trainer asks, it
// scores free-running synthesis of fixed clips against their recordings
// (evaluate(): MCD, F0, durations, a recognizer's word error rate, with their
// ceilings; the `evaluation` section). With data.durations learned, or auto
// and clips without a usable TextGrid, the model carries the learned aligner
// (tts/align/): each batch it aligns the
// mels to the phonemes, the hard path's durations regulate the decoder and
// teach the duration predictor (for the clips without a usable TextGrid, or
// all clips with data.durations: learned), and its losses join the total as
// loss/align_ctc and loss/align_bin; each evaluation adds the alignment's
// health on its clips (eval/align_*). The phoneme vocabulary travels in
// the checkpoint (task_state) and in <run directory>/phonemes.txt. It prints
// nothing: the corpus report is data().corpus().report.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <fmt/format.h>

#include "kokoro/audio/griffin_lim.hpp"
#include "kokoro/audio/mel.hpp"
#include "kokoro/core/loss.hpp"
#include "kokoro/core/media.hpp"
#include "kokoro/core/run_folder.hpp"
#include "kokoro/log/media.hpp"
#include "kokoro/nn/checkpointing_choice.hpp"
#include "kokoro/nn/kernel_choice.hpp"
#include "kokoro/tts/align/alignment_health.hpp"
#include "kokoro/tts/align/alignment_prior.hpp"
#include "kokoro/tts/align/monotonic_alignment.hpp"
#include "kokoro/tts/batch_alignment.hpp"
#include "kokoro/tts/data/corpus.hpp"
#include "kokoro/tts/data/tts_data.hpp"
#include "kokoro/tts/eval/quality.hpp"
#include "kokoro/tts/model/from_config.hpp"
#include "kokoro/tts/model/kokoro_model.hpp"
#include "kokoro/tts/model/losses.hpp"
#include "kokoro/tts/synthesizer.hpp"
#include "kokoro/tts/text/phoneme_processor.hpp"
#include "kokoro/tts/tts_config.hpp"
#include "kokoro/util/autocast_state.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro::tts {

class EnglishTtsTask {
 public:
  using Batch = TtsBatch;
  using ConfigSections = TtsSections;

  /// Prepares the corpus (features cached under data.cache_dir, else
  /// <output_dir>/cache; `progress` hears how far it got) and builds the
  /// model. Throws kokoro::Error when data.data_dir is empty or holds no
  /// usable clip.
  /// `writes_files`: false on the ranks of a data-parallel run but rank 0,
  /// which leave the cache's summaries and the run's vocabulary to it.
  explicit EnglishTtsTask(const TtsConfig& config, const CorpusProgress& progress = {},
                          bool writes_files = true)
      : writes_files_(writes_files),
        config_(config),
        run_dir_(run_directory(config)),
        processor_(EnglishPhonemeProcessor::for_phoneme_set(config.data.phoneme_set)),
        data_(std::make_unique<TtsData>(prepare(config, progress), config, pin_batches(config))),
        model_(model_options(config, processor_.vocab_size(),
                             learns_durations(config.data.durations, data_->corpus().report))),
        checkpointing_(nn::parse_checkpointing_mode(config.model.gradient_checkpointing)
                           .value_or(nn::CheckpointingMode::automatic)),
        vocoder_(mel_options(config.audio)) {
    const auto& e = config.evaluation;
    if (e.every_epochs > 0 && e.mcd_order >= config.audio.n_mels) {
      throw Error(fmt::format("evaluation.mcd_order must be below audio.n_mels ({}), got {}",
                              config.audio.n_mels, e.mcd_order));
    }
    if (model_->has_aligner()) {
      priors_ = std::make_unique<align::AlignmentPriorCache>(config.alignment.prior_scaling);
    }
    if (!writes_files_) return;
    std::filesystem::create_directories(run_dir_);
    save_phoneme_processor(processor_, run_dir_ / "phonemes.txt");
  }

  torch::nn::Module& model() { return *model_; }

  /// AdamW, as the Trainer's default, with the aligner (when the model
  /// carries it and alignment.learning_rate is set) in a parameter group of
  /// its own at that rate. It must find the alignment while the decoder is
  /// young, and learns best near 1e-2, a rate that would upset the
  /// Transformers; the run's schedule scales both groups alike.
  std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainingConfig& run) {
    const auto& t = run.training;
    auto options = [&](double lr) {
      return torch::optim::AdamWOptions(lr)
          .betas({t.adam_beta1, t.adam_beta2})
          .eps(t.adam_eps)
          .weight_decay(t.weight_decay);
    };
    if (!model_->has_aligner() || config_.alignment.learning_rate <= 0.0) {
      return std::make_unique<torch::optim::AdamW>(model_->parameters(), options(t.learning_rate));
    }
    std::vector<torch::Tensor> decoder_side, aligner;
    for (const auto& item : model_->named_parameters()) {
      (item.key().starts_with("aligner.") ? aligner : decoder_side).push_back(item.value());
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::move(decoder_side),
                        std::make_unique<torch::optim::AdamWOptions>(options(t.learning_rate)));
    groups.emplace_back(std::move(aligner), std::make_unique<torch::optim::AdamWOptions>(
                                                options(config_.alignment.learning_rate)));
    return std::make_unique<torch::optim::AdamW>(std::move(groups), options(t.learning_rate));
  }
  KokoroModel& kokoro_model() { return model_; }
  const EnglishPhonemeProcessor& processor() const { return processor_; }
  const TtsData& data() const { return *data_; }

  Loss loss(const TtsBatch& batch) {
    if (checkpointing_.mode() == nn::CheckpointingMode::automatic &&
        torch::GradMode::is_enabled()) {
      model_->set_gradient_checkpointing(checkpointing_.for_batch(activation_bytes(batch)));
    }
    if (!model_->has_aligner()) {
      return tts_loss(model_->forward(batch), batch, loss_options(config_.loss));
    }
    const auto learned = align_batch(batch);
    TtsBatch regulated = batch;
    regulated.durations = learned.durations;
    auto loss = tts_loss(model_->forward(regulated), regulated, loss_options(config_.loss));
    const auto& a = config_.alignment;
    loss.total = loss.total + a.ctc_weight * learned.batch.forward_sum;
    if (const double w = binarization_weight(); w > 0.0) {
      loss.total = loss.total + w * learned.batch.binarization;
    }
    loss.with("align_ctc", learned.batch.forward_sum.detach())
        .with("align_bin", learned.batch.binarization.detach());
    return loss;
  }

  /// One batch through the aligner (tts::align_batch), and the durations
  /// the model is regulated by: the path's for the clips whose durations
  /// are learned (data.durations learned: all; auto: those without a usable
  /// TextGrid), the corpus's for the rest and for the clips no alignment is
  /// learned from. Needs the aligner.
  struct LearnedAlignment {
    BatchAlignment batch;
    torch::Tensor durations;  ///< [B, T] int64 on the batch's device
  };
  LearnedAlignment align_batch(const TtsBatch& batch) {
    LearnedAlignment out{.batch = tts::align_batch(model_->aligner(), *priors_, batch),
                         .durations = {}};
    auto learn = out.batch.usable.unsqueeze(1);
    if (config_.data.durations == "auto" && batch.durations_known.defined()) {
      learn = learn & batch.durations_known.to(learn.device()).logical_not().unsqueeze(1);
    }
    out.durations = torch::where(learn, out.batch.hard_durations, batch.durations);
    return out;
  }

  /// The binarization loss's weight in the epoch being trained
  /// (tts::binarization_weight).
  double binarization_weight() const {
    return tts::binarization_weight(config_.alignment, epoch_);
  }

  /// The clips evaluations score: the first evaluation.clips validation
  /// clips by id (training clips when none is held out).
  std::vector<CorpusClip> evaluation_choice() const {
    const auto& corpus = data_->corpus();
    auto chosen = corpus.validation.empty() ? corpus.train : corpus.validation;
    std::sort(chosen.begin(), chosen.end(),
              [](const CorpusClip& a, const CorpusClip& b) { return a.id < b.id; });
    chosen.resize(
        std::min<std::size_t>(chosen.size(), static_cast<std::size_t>(config_.evaluation.clips)));
    return chosen;
  }

  /// model.gradient_checkpointing: auto hears of memory here.
  void adapt_to_memory(const MemoryState& state) { checkpointing_.observe(state); }
  const nn::CheckpointingChoice& checkpointing() const { return checkpointing_; }

  /// The model's activation estimate for `batch` (KokoroModel::activation_bytes),
  /// in the precision of the autocast in effect.
  std::int64_t activation_bytes(const TtsBatch& batch) const {
    const bool low_precision = autocast_state::any_enabled();
    return model_->activation_bytes(batch.size(), batch.mels.size(1), batch.phonemes.size(1),
                                    low_precision ? 2 : 4);
  }

  data::PrefetchLoader<TtsBatch> train_data(std::int64_t epoch) {
    epoch_ = epoch;
    return data_->train(epoch);
  }
  /// This rank's share in data parallel (TtsData::train): the batches of one
  /// process with every rank's batch together, split between the ranks.
  data::PrefetchLoader<TtsBatch> train_data(std::int64_t epoch, const DataShard& shard) {
    epoch_ = epoch;
    return data_->train(epoch, shard);
  }
  data::PrefetchLoader<TtsBatch> valid_data() { return data_->validation(); }

  /// The first validation clip (or training clip, without validation data):
  /// its target mel, the teacher-forced prediction, and free-running
  /// synthesis from its phonemes, as images and Griffin-Lim audio, and its
  /// text, all tagged "samples/..."; the first time also the corpus report
  /// ("corpus/report"), so the run's TensorBoard says what it trained on.
  void media(Media& media, std::int64_t /*epoch*/) {
    if (!report_sent_) {
      media.texts.push_back(Text{.tag = "corpus/report", .text = data_->corpus().report.summary()});
      report_sent_ = true;
    }
    const auto& clips =
        data_->corpus().validation.empty() ? data_->corpus().train : data_->corpus().validation;
    if (clips.empty()) return;
    const auto item = TtsData::load(clips.front());
    const auto device = model_->parameters().front().device();
    const auto target = item.mel;
    auto batch = collate({item}).to(device);
    std::optional<LearnedAlignment> alignment;
    if (model_->has_aligner()) {
      alignment = align_batch(batch);
      batch.durations = alignment->durations;
    }
    const auto teacher_forced = model_->forward(batch).mel_after[0].to(torch::kCPU);
    // Frames are generated one at a time: an early model whose stop token
    // never fires runs to the cap, so the cap is 1.5x the clip's length.
    const auto cap = std::min<std::int64_t>(config_.audio.max_frames,
                                            item.mel.size(0) + item.mel.size(0) / 2 + 20);
    const auto generated = model_->generate(item.phonemes.to(device), 0.5, cap).mel.to(torch::kCPU);
    media.images.push_back(spectrogram_image("samples/target_mel", target.t()));
    media.images.push_back(spectrogram_image("samples/teacher_forced_mel", teacher_forced.t()));
    media.images.push_back(spectrogram_image("samples/synthesized_mel", generated.t()));
    if (alignment) {
      // [phonemes, frames]: the diagonal a healthy alignment walks.
      const auto tokens = item.phonemes.size(0);
      media.images.push_back(spectrogram_image(
          "alignment/soft", alignment->batch.outputs.soft[0].narrow(1, 0, tokens).t()));
      media.images.push_back(spectrogram_image(
          "alignment/hard", align::hard_alignment(alignment->batch.hard_durations.to(torch::kCPU),
                                                  item.mel.size(0))[0]
                                .narrow(1, 0, tokens)
                                .t()));
    }
    const int rate = static_cast<int>(config_.audio.sample_rate);
    media.audio.push_back(AudioClip{
        .tag = "samples/synthesized", .sample_rate = rate, .samples = vocoder_(generated)});
    media.audio.push_back(AudioClip{
        .tag = "samples/target_griffin_lim", .sample_rate = rate, .samples = vocoder_(target)});
    media.texts.push_back(
        Text{.tag = "samples/text", .text = clips.front().id + ": " + clips.front().text});
    if (last_quality_ && !last_quality_->clips.empty() && !last_quality_->recognizer.empty()) {
      std::string heard = fmt::format("heard by {}{}\n", last_quality_->recognizer,
                                      last_quality_->recognizer_fallback.empty()
                                          ? std::string{}
                                          : " (Moonshine could not run: " +
                                                last_quality_->recognizer_fallback + ")");
      if (!last_quality_->recognizer_error.empty()) {
        heard += "no word error rate this time: " + last_quality_->recognizer_error + "\n";
      }
      for (std::size_t i = 0; i < last_quality_->clips.size(); ++i) {
        const auto& q = last_quality_->clips[i];
        heard += fmt::format("{}: \"{}\" (said: \"{}\")\n", q.id, q.hypothesis,
                             eval::join_words(eval::scoring_words(evaluation_clips_[i].text)));
      }
      media.texts.push_back(Text{.tag = "eval/heard", .text = heard});
    }
  }

  /// The `evaluation` section's measures of free-running synthesis against
  /// the recordings (tts/eval/quality.hpp) on its fixed clips, when due:
  /// every evaluation.every_epochs epochs when the evaluations so far and
  /// this one stay within evaluation.max_share of the run's time (else it
  /// waits for a later epoch), and at the end (evaluation.at_end) whatever
  /// they took. This one is expected to take what the last took; the first,
  /// kFirstEvaluationCost seconds per second of its clips' recordings (the
  /// synthesis can run to twice their length, then the recognizer and the
  /// ceilings hear it all), so that a short run is not spent evaluating.
  /// Empty when not due.
  Metrics evaluate(const EvaluationRequest& request) {
    const auto& e = config_.evaluation;
    if (e.every_epochs <= 0) return {};
    const bool due = (request.final && e.at_end) || (request.epoch + 1) % e.every_epochs == 0;
    if (!due) return {};
    const auto chosen = evaluation_choice();
    if (!request.final) {
      double expected = last_evaluation_seconds_;
      if (expected <= 0.0) {
        for (const auto& c : chosen) {
          expected += kFirstEvaluationCost * static_cast<double>(c.frames) *
                      static_cast<double>(config_.audio.hop_length) /
                      static_cast<double>(config_.audio.sample_rate);
        }
      }
      const double spent = request.evaluation_seconds + expected;
      if (spent > e.max_share * (request.training_seconds + spent)) return {};
    }
    if (!evaluator_) {
      evaluation_clips_ = eval::evaluation_clips(chosen);
      eval::QualityOptions options;
      options.cepstrum.order = e.mcd_order;
      options.recognizer.name = e.recognizer == "true"    ? "auto"
                                : e.recognizer == "false" ? "none"
                                                          : e.recognizer;
      options.speak.max_seconds = static_cast<double>(config_.audio.max_frames) *
                                  static_cast<double>(config_.audio.hop_length) /
                                  static_cast<double>(config_.audio.sample_rate);
      // A recognizer that cannot start (evaluation.recognizer: moonshine
      // where it does not run) is not started again at every evaluation,
      // which could cost its start-up timeout each time: the same error is
      // reported instead.
      if (!evaluator_error_.empty()) throw Error(evaluator_error_);
      try {
        evaluator_ = std::make_unique<eval::QualityEvaluator>(config_.audio, options);
      } catch (const std::exception& e) {
        evaluator_error_ = e.what();
        throw;
      }
      synthesizer_ = std::make_unique<Synthesizer>(TrainedModel{
          .config = config_, .processor = processor_, .model = model_, .source = {}});
    }
    const auto started = std::chrono::steady_clock::now();
    auto report = evaluator_->evaluate(*synthesizer_, evaluation_clips_);
    auto figures = report.metrics();
    last_quality_ = std::move(report);
    if (model_->has_aligner()) figures.merge(alignment_health(chosen));
    last_evaluation_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return figures;
  }

  /// The learned alignment's health on `clips` (align/alignment_health.hpp):
  /// "align_monotonic", "align_ctc" and, where clips have TextGrids the
  /// aligner learns without, "align_within_2_frames". Needs the aligner.
  Metrics alignment_health(const std::vector<CorpusClip>& clips) {
    align::AlignmentHealth health;
    for (const auto& clip : clips) {
      const auto item = TtsData::load(clip);
      if (item.truncated || item.mel.size(0) < item.phonemes.size(0)) continue;
      const auto ids = item.phonemes.to(torch::kLong).contiguous();
      align::add_alignment_health(
          health, model_->aligner(), *priors_, item.phonemes, item.mel,
          item.durations_known ? item.durations : torch::Tensor{}, 2,
          processor_.pause_mask(std::vector<std::int64_t>(
              ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + ids.numel())));
    }
    Metrics m;
    if (health.clips == 0) return m;
    m.set("align_monotonic", health.monotonic_share());
    m.set("align_ctc", health.mean_forward_sum());
    if (health.boundaries > 0) m.set("align_within_2_frames", health.within_share());
    return m;
  }

  /// Seconds the first evaluation is expected to take per second of its
  /// clips' recordings, on the high side. Measured: 23.5 s for the 19 s of
  /// ./scripts/train's 4 clips (1.2 per second) with a model that stopped on
  /// time, Moonshine hearing, 2 cores; a model that never stops speaks up to
  /// 3.6 times as long, which the vocoder and the recognizer then take in.
  static constexpr double kFirstEvaluationCost = 4.0;

  /// The last evaluation's report (clips, transcripts, ceilings), if any.
  const std::optional<eval::QualityReport>& last_quality() const { return last_quality_; }

  StateDict state_dict() const { return phoneme_state_dict(processor_); }
  /// Refuses a checkpoint whose vocabulary differs from this run's.
  void load_state_dict(const StateDict& d) { check_phoneme_state_dict(d, processor_); }

 private:
  PreparedCorpus prepare(const TtsConfig& config, const CorpusProgress& progress) {
    if (config.data.data_dir.empty()) {
      throw Error(
          "data.data_dir is empty: name an LJSpeech-format corpus (metadata.csv, wavs/, "
          "TextGrid/); kokoro-train builds its demo corpus when none is given");
    }
    return prepare_corpus(config, processor_, config.data.data_dir, corpus_cache_dir(config),
                          progress, writes_files_);
  }

  /// Whether the model carries the aligner: data.durations learned, or auto
  /// with clips that have no usable TextGrid. So a corpus aligned
  /// throughout (LJSpeech with MFA's grids, the demo corpus) trains as it
  /// did before there was an aligner, and resumes its runs of that time.
  static bool learns_durations(const std::string& durations, const CorpusReport& report) {
    return durations == "learned" || (durations == "auto" && report.uniform_durations > 0);
  }

  static bool pin_batches(const TtsConfig& config) {
    return config.hardware.pin_memory && config.hardware.device != "cpu" &&
           torch::cuda::is_available();
  }

  bool writes_files_;  // before the members whose construction writes
  TtsConfig config_;
  std::filesystem::path run_dir_;
  EnglishPhonemeProcessor processor_;
  std::unique_ptr<TtsData> data_;
  bool report_sent_ = false;
  KokoroModel model_;
  nn::CheckpointingChoice checkpointing_;
  audio::GriffinLim vocoder_;
  std::unique_ptr<eval::QualityEvaluator> evaluator_;  // built at the first evaluation
  std::unique_ptr<Synthesizer> synthesizer_;
  std::vector<eval::EvaluationClip> evaluation_clips_;
  std::optional<eval::QualityReport> last_quality_;
  double last_evaluation_seconds_ = 0.0;
  std::string evaluator_error_;  // why the evaluator could not be built
  std::unique_ptr<align::AlignmentPriorCache> priors_;  // with the aligner
  std::int64_t epoch_ = 0;  // the epoch being trained (the binarization schedule)
};

}  // namespace kokoro::tts
