// The model's and the losses' option structs from a run's configuration:
// the one place where the `model`, `alignment` and `loss` sections meet the
// modules, so that the task, the Synthesizer and the benchmarks build the
// same model.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kokoro/nn/kernel_choice.hpp"
#include "kokoro/tts/model/kokoro_model.hpp"
#include "kokoro/tts/model/losses.hpp"
#include "kokoro/tts/tts_config.hpp"

namespace kokoro::tts {

/// The Kokoro model's options from the `model` section, a vocabulary size and
/// the mel bands.
inline KokoroModelOptions model_options(const ModelSection& model, std::int64_t vocab_size,
                                        std::int64_t n_mels) {
  return {.vocab_size = vocab_size,
          .n_mels = n_mels,
          .hidden_dim = model.hidden_dim,
          .encoder_layers = model.encoder_layers,
          .decoder_layers = model.decoder_layers,
          .num_heads = model.num_heads,
          .ff_dim = model.ff_dim,
          .dropout = model.dropout,
          .attention_dropout = model.attention_dropout,
          .postnet = model.postnet,
          .gradient_checkpointing = model.gradient_checkpointing != "false",
          .checkpoint_blocks = model.checkpoint_blocks,
          .kernels = model.kernels == "reference" ? nn::Kernels::reference : nn::Kernels::fast};
}

/// The aligner's options from the `alignment` section (its vocabulary and
/// mel bands are the model's, filled in by KokoroModel).
inline align::AlignerOptions aligner_options(const AlignmentSection& alignment) {
  return {.embedding_dim = alignment.embedding_dim,
          .channels = alignment.channels,
          .temperature = alignment.temperature,
          .normalize_mels = alignment.normalize_mels};
}

/// The binarization loss's weight in `epoch` (0-based): 0 for
/// alignment.binarization_start_epochs epochs, then rising linearly over
/// binarization_ramp_epochs to binarization_weight.
inline double binarization_weight(const AlignmentSection& a, std::int64_t epoch) {
  const auto since = epoch - a.binarization_start_epochs;
  if (since < 0) return 0.0;
  if (a.binarization_ramp_epochs <= 0) return a.binarization_weight;
  return a.binarization_weight * std::min(1.0, static_cast<double>(since + 1) /
                                                   static_cast<double>(a.binarization_ramp_epochs));
}

/// The whole model of a run: the `model` section's, with the learned
/// aligner when it `learns_durations` (EnglishTtsTask decides from
/// data.durations and the corpus).
inline KokoroModelOptions model_options(const TtsConfig& config, std::int64_t vocab_size,
                                        bool learns_durations) {
  auto options = model_options(config.model, vocab_size, config.audio.n_mels);
  if (learns_durations) options.aligner = aligner_options(config.alignment);
  return options;
}

/// The loss weights from the `loss` section.
inline TtsLossOptions loss_options(const LossSection& loss) {
  return {.duration_weight = loss.duration_weight,
          .stop_weight = loss.stop_weight,
          .stop_positive_weight = loss.stop_positive_weight};
}

}  // namespace kokoro::tts
