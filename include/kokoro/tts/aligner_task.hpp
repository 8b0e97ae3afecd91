// AlignerTask: the learned aligner trained on its own, as a task for
// kokoro::Trainer (kokoro-align --minutes). The corpus is the TTS task's
// (prepared and cached the same way, every clip's durations to be learned),
// the model is the Aligner alone, and the loss is the aligner's: the forward
// sum, plus the binarization on its schedule (the `alignment` section). It is
// a few convolutions, so it trains far faster than the TTS model; what it
// learns is where each phoneme of each clip lies.
#pragma once

#include <cstdint>
#include <memory>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "kokoro/core/loss.hpp"
#include "kokoro/tts/align/aligner.hpp"
#include "kokoro/tts/align/alignment_prior.hpp"
#include "kokoro/tts/batch_alignment.hpp"
#include "kokoro/tts/data/corpus.hpp"
#include "kokoro/tts/data/tts_data.hpp"
#include "kokoro/tts/model/from_config.hpp"
#include "kokoro/tts/text/phoneme_processor.hpp"
#include "kokoro/tts/tts_config.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro::tts {

class AlignerTask {
 public:
  using Batch = TtsBatch;
  using ConfigSections = TtsSections;

  /// Prepares data.data_dir (cache under data.cache_dir, else
  /// <output_dir>/cache) and builds the aligner from the `alignment` section.
  explicit AlignerTask(const TtsConfig& config, const CorpusProgress& progress = {})
      : config_(config),
        processor_(EnglishPhonemeProcessor::for_phoneme_set(config.data.phoneme_set)),
        data_(std::make_unique<TtsData>(prepare(config, progress), config)),
        aligner_(options(config, processor_.vocab_size())),
        priors_(config.alignment.prior_scaling) {
    holder_.register_module("aligner", aligner_);
  }

  /// The module the Trainer trains and saves: its one child is "aligner",
  /// so its state dict has the keys the aligner has inside a KokoroModel.
  torch::nn::Module& model() { return holder_; }
  align::Aligner& aligner() { return aligner_; }
  align::AlignmentPriorCache& priors() { return priors_; }
  const EnglishPhonemeProcessor& processor() const { return processor_; }
  const TtsData& data() const { return *data_; }

  Loss loss(const TtsBatch& batch) {
    const auto a = align_batch(aligner_, priors_, batch);
    Loss loss{config_.alignment.ctc_weight * a.forward_sum, {}};
    if (const double w = binarization_weight(); w > 0.0)
      loss.total = loss.total + w * a.binarization;
    loss.with("align_ctc", a.forward_sum.detach()).with("align_bin", a.binarization.detach());
    return loss;
  }

  /// The binarization loss's weight in the epoch being trained.
  double binarization_weight() const {
    return tts::binarization_weight(config_.alignment, epoch_);
  }

  data::PrefetchLoader<TtsBatch> train_data(std::int64_t epoch) {
    epoch_ = epoch;
    return data_->train(epoch);
  }
  data::PrefetchLoader<TtsBatch> valid_data() { return data_->validation(); }

  StateDict state_dict() const { return phoneme_state_dict(processor_); }
  void load_state_dict(const StateDict& d) { check_phoneme_state_dict(d, processor_); }

 private:
  static align::AlignerOptions options(const TtsConfig& config, std::int64_t vocab_size) {
    auto o = aligner_options(config.alignment);
    o.vocab_size = vocab_size;
    o.n_mels = config.audio.n_mels;
    return o;
  }

  static PreparedCorpus prepare(const TtsConfig& config, const CorpusProgress& progress) {
    if (config.data.data_dir.empty()) throw Error("data.data_dir is empty: name the corpus to align");
    auto learned = config;
    learned.data.durations = "learned";
    return prepare_corpus(learned,
                          EnglishPhonemeProcessor::for_phoneme_set(config.data.phoneme_set),
                          config.data.data_dir, corpus_cache_dir(config), progress);
  }

  TtsConfig config_;
  EnglishPhonemeProcessor processor_;
  std::unique_ptr<TtsData> data_;
  align::Aligner aligner_;
  align::AlignmentPriorCache priors_;
  torch::nn::Module holder_;
  std::int64_t epoch_ = 0;
};

}  // namespace kokoro::tts
