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
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <fmt/format.h>

#include "kokoro/core/loss.hpp"
#include "kokoro/tts/align/aligner.hpp"
#include "kokoro/tts/align/alignment_losses.hpp"
#include "kokoro/tts/align/alignment_prior.hpp"
#include "kokoro/tts/align/monotonic_alignment.hpp"
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
    const auto device = batch.phonemes.device();
    const auto n = batch.size();
    const auto tokens_cpu = batch.phoneme_lengths.to(torch::kCPU).contiguous();
    const auto frames_cpu = batch.mel_lengths.to(torch::kCPU).contiguous();
    std::vector<std::int64_t> tokens(tokens_cpu.data_ptr<std::int64_t>(),
                                     tokens_cpu.data_ptr<std::int64_t>() + n);
    std::vector<std::int64_t> frames(frames_cpu.data_ptr<std::int64_t>(),
                                     frames_cpu.data_ptr<std::int64_t>() + n);
    const auto out = aligner_->forward(
        batch.phonemes, batch.phoneme_mask(), batch.mels, batch.mel_mask(),
        priors_.batch(tokens, frames, batch.phonemes.size(1), batch.mels.size(1)).to(device));
    // Clips cut short (their text runs past their frames) and clips with
    // fewer frames than phonemes teach nothing here.
    auto usable = (batch.mel_lengths >= batch.phoneme_lengths).to(torch::kCPU);
    if (batch.truncated.defined()) usable = usable & batch.truncated.to(torch::kCPU).logical_not();
    const auto forward_sum = align::forward_sum_loss(out.log_probs, batch.phoneme_lengths,
                                                     batch.mel_lengths, usable);
    for (std::int64_t b = 0; b < n; ++b) {
      if (!usable[b].item<bool>()) tokens[b] = frames[b] = 1;  // searched trivially, kept out
    }
    const auto path = align::monotonic_alignment_search(out.log_soft.detach(),
                                                        torch::tensor(tokens), torch::tensor(frames));
    const auto hard = align::hard_alignment(path.masked_fill(usable.logical_not().unsqueeze(1), 0),
                                            batch.mels.size(1));
    const auto binarization = align::binarization_loss(hard.to(device), out.log_soft);
    Loss loss{config_.alignment.ctc_weight * forward_sum, {}};
    if (const double w = binarization_weight(); w > 0.0) loss.total = loss.total + w * binarization;
    loss.with("align_ctc", forward_sum.detach()).with("align_bin", binarization.detach());
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

  StateDict state_dict() const {
    StateDict d;
    d["phoneme_vocabulary"] = processor_.vocabulary();
    d["phoneme_voice"] = processor_.voice();
    return d;
  }
  void load_state_dict(const StateDict& d) {
    const auto it = d.find("phoneme_vocabulary");
    if (it == d.end()) return;
    const auto* vocabulary = std::get_if<std::vector<std::string>>(&it->second);
    if (vocabulary && *vocabulary != processor_.vocabulary()) {
      throw Error(fmt::format("the checkpoint's phoneme vocabulary ({} symbols) differs from "
                              "this build's ({} symbols)",
                              vocabulary->size(), processor_.vocabulary().size()));
    }
  }

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
    const auto cache = config.data.cache_dir.empty()
                           ? std::filesystem::path(config.logging.output_dir) / "cache"
                           : std::filesystem::path(config.data.cache_dir);
    return prepare_corpus(learned,
                          EnglishPhonemeProcessor::for_phoneme_set(config.data.phoneme_set),
                          config.data.data_dir, cache, progress);
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
