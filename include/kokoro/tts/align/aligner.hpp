// The learned aligner (RAD-TTS's framework, as FastPitch 1.1 uses it): which
// token each mel frame of a clip belongs to, learned from recordings and text
// alone.
//
// Two small convolutional encoders map the tokens (own embedding, two 1-D
// convolutions) and the mel frames (three; each mel channel first brought to
// zero mean and unit variance over the clip's frames, so that speakers,
// microphones and loudness look alike to it) into one space; the soft
// alignment of frame f is a softmax over the clip's tokens of minus the
// squared distance between their encodings (times a temperature), plus the
// beta-binomial prior (alignment_prior.hpp) that holds a young aligner near
// the diagonal, in training (the forward sum) and in the search alike. Its
// losses (alignment_losses.hpp) are the forward sum (all monotonic paths
// through the soft alignment, by CTC) and, once the soft alignment is sharp
// enough to trust, the binarization (soft towards the hard path of
// monotonic_alignment.hpp). The hard path's column sums are the
// clip's durations.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/activation.h>
#include <torch/types.h>

#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include "kokoro/core/autocast.hpp"
#include "kokoro/util/autocast_state.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts::align {

struct AlignerOptions {
  std::int64_t vocab_size = 0;  ///< token ids, 0 = <pad> included
  std::int64_t n_mels = 80;
  std::int64_t embedding_dim = 256;  ///< the aligner's own token embedding
  std::int64_t channels = 80;        ///< the shared space both encoders map into
  /// Scales the squared distances before the softmax (FastPitch: 0.0005 for
  /// 80 channels; larger is sharper).
  double temperature = 0.0005;
  /// Each clip's mel channels to zero mean and unit variance over its
  /// frames before the mel encoder (false: the log-mels as they are, as
  /// FastPitch feeds them; aligners saved before this option learned so).
  bool normalize_mels = true;
};

/// One batch's alignment: [B, frames, tokens] each, zero (or -inf in
/// log_probs) on padded frames and tokens.
struct AlignmentOutputs {
  /// log-softmax over tokens of -temperature * distance, plus the log
  /// prior (not renormalised, as RAD-TTS has it): what the forward-sum loss
  /// sums paths through, so that the prior steers the young aligner's
  /// training too.
  torch::Tensor log_probs;
  /// softmax over tokens of log_probs: the soft alignment the binarization
  /// loss and the monotonic search use.
  torch::Tensor soft;
  torch::Tensor log_soft;  ///< its log
};

class AlignerImpl : public torch::nn::Module {
 public:
  explicit AlignerImpl(const AlignerOptions& options) : options_(options) {
    if (options.vocab_size < 2 || options.n_mels < 1 || options.embedding_dim < 1 ||
        options.channels < 1 || !(options.temperature > 0.0)) {
      throw Error(fmt::format("Aligner: needs vocab_size >= 2 and positive sizes and temperature "
                              "(vocab_size {}, n_mels {}, embedding_dim {}, channels {}, "
                              "temperature {})",
                              options.vocab_size, options.n_mels, options.embedding_dim,
                              options.channels, options.temperature));
    }
    using torch::nn::Conv1d;
    using torch::nn::Conv1dOptions;
    const auto e = options.embedding_dim, c = options.channels, m = options.n_mels;
    embedding_ = register_module(
        "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options.vocab_size, e)
                                              .padding_idx(0)));
    text_->push_back(Conv1d(Conv1dOptions(e, 2 * e, 3).padding(1)));
    text_->push_back(torch::nn::ReLU());
    text_->push_back(Conv1d(Conv1dOptions(2 * e, c, 1)));
    register_module("text", text_);
    mel_->push_back(Conv1d(Conv1dOptions(m, 2 * m, 3).padding(1)));
    mel_->push_back(torch::nn::ReLU());
    mel_->push_back(Conv1d(Conv1dOptions(2 * m, c, 1)));
    mel_->push_back(torch::nn::ReLU());
    mel_->push_back(Conv1d(Conv1dOptions(c, c, 1)));
    register_module("mel", mel_);
  }

  const AlignerOptions& options() const { return options_; }

  /// `phonemes` [B, T] int64 with `phoneme_mask` [B, T] (true on tokens),
  /// `mels` [B, F, n_mels] with `mel_mask` [B, F], `log_prior` [B, F, T]
  /// (undefined: none).
  AlignmentOutputs forward(const torch::Tensor& phonemes, const torch::Tensor& phoneme_mask,
                           const torch::Tensor& mels, const torch::Tensor& mel_mask,
                           const torch::Tensor& log_prior = {}) {
    // Convolutions run over time: [B, channels, length].
    const auto keys = text_->forward(embedding_->forward(phonemes).transpose(1, 2));  // [B, c, T]
    const auto mel_in = options_.normalize_mels ? normalized(mels, mel_mask) : mels;
    const auto queries = mel_->forward(mel_in.transpose(1, 2).to(keys.dtype()));  // [B, c, F]
    // Squared distances [B, F, T] = |q|^2 + |k|^2 - 2 q.k, in float32 with
    // autocast off (the difference of large terms loses too much in half
    // precision, and autocast would run the bmm in it).
    const auto device = keys.device().type();
    torch::Tensor distance;
    {
      const AutocastGuard full_precision(device, autocast_state::dtype(device), false);
      const auto q = queries.to(torch::kFloat), k = keys.to(torch::kFloat);
      distance = q.pow(2).sum(1).unsqueeze(2) + k.pow(2).sum(1).unsqueeze(1) -
                 2.0 * torch::bmm(q.transpose(1, 2), k);
    }
    const auto token_pad = phoneme_mask.logical_not().unsqueeze(1);  // [B, 1, T]
    const auto frame_pad = mel_mask.logical_not().unsqueeze(2);      // [B, F, 1]
    constexpr double kMinusInf = -std::numeric_limits<double>::infinity();
    auto logits = (-options_.temperature * distance).masked_fill(token_pad, kMinusInf);
    AlignmentOutputs out;
    out.log_probs = torch::log_softmax(logits, 2);
    if (log_prior.defined()) {
      out.log_probs =
          (out.log_probs + log_prior.to(out.log_probs.options())).masked_fill(token_pad, kMinusInf);
    }
    out.log_soft = torch::log_softmax(out.log_probs, 2).masked_fill(frame_pad, 0.0);
    out.soft = out.log_soft.exp().masked_fill(frame_pad, 0.0).masked_fill(token_pad, 0.0);
    out.log_probs = out.log_probs.masked_fill(frame_pad, 0.0);
    return out;
  }

 private:
  /// `mels` [B, F, n_mels], per clip and channel to zero mean and unit
  /// variance over the frames `mel_mask` [B, F] keeps; padded frames 0.
  static torch::Tensor normalized(const torch::Tensor& mels, const torch::Tensor& mel_mask) {
    const auto x = mels.to(torch::kFloat);
    const auto keep = mel_mask.to(x.options()).unsqueeze(2);  // [B, F, 1]
    const auto frames = keep.sum(1, /*keepdim=*/true).clamp_min(1.0);
    const auto mean = (x * keep).sum(1, true) / frames;
    const auto variance = ((x - mean).pow(2) * keep).sum(1, true) / frames;
    return (x - mean) * torch::rsqrt(variance + 1e-5) * keep;
  }

  AlignerOptions options_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Sequential text_;
  torch::nn::Sequential mel_;
};
TORCH_MODULE(Aligner);

}  // namespace kokoro::tts::align
