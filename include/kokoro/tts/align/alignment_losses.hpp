// The aligner's two losses (RAD-TTS):
//
// Forward sum: -log of the probability, summed over every monotonic path
// through the alignment, that the frames spell the clip's tokens in order.
// That is CTC with the tokens 1..T as the target sequence, each frame's
// distribution over [blank, tokens] (the blank column a fixed log-probability,
// -1, so that a path may linger), which libtorch computes (ctc_loss, on CPU
// and CUDA). Per clip it is divided by the clip's tokens, then averaged over
// clips (ctc_loss's "mean").
//
// Binarization: -sum(hard * log soft) / sum(hard) per clip, averaged over
// clips: the soft alignment pulled towards its own best monotonic path, so
// that the durations the decoder is trained on (the hard path's) and what
// the aligner believes agree.
#pragma once

#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <cstdint>
#include <limits>

namespace kokoro::tts::align {

/// `log_probs` [B, F, T] (AlignmentOutputs::log_probs), `token_lengths` and
/// `frame_lengths` [B]; `include` [B] bool (undefined: every clip) leaves
/// clips out (one cut short, whose text runs past its frames). A clip with
/// no monotonic path (fewer frames than tokens) adds zero rather than
/// infinity. The mean is over the clips included.
inline torch::Tensor forward_sum_loss(const torch::Tensor& log_probs,
                                      const torch::Tensor& token_lengths,
                                      const torch::Tensor& frame_lengths,
                                      const torch::Tensor& include = {},
                                      double blank_log_prob = -1.0) {
  const auto batch = log_probs.size(0), tokens = log_probs.size(2);
  const auto device = log_probs.device();
  // [B, F, 1 + T]: the blank first, then the tokens.
  const auto blank = torch::full({batch, log_probs.size(1), 1}, blank_log_prob,
                                 log_probs.options().dtype(torch::kFloat));
  const auto token_pad = (torch::arange(tokens, torch::TensorOptions().device(device))
                              .unsqueeze(0) >= token_lengths.to(device).unsqueeze(1))
                             .unsqueeze(1);  // [B, 1, T]
  // Padded tokens at a finite -1e4, not -inf: ctc_loss's backward takes
  // differences of log-probabilities, and -inf - -inf is NaN.
  const auto scores = log_probs.to(torch::kFloat).masked_fill(token_pad, -1e4);
  const auto with_blank = torch::log_softmax(torch::cat({blank, scores}, 2), 2);
  const auto targets =
      torch::arange(1, tokens + 1, torch::TensorOptions().dtype(torch::kLong).device(device))
          .unsqueeze(0)
          .expand({batch, tokens})
          .contiguous();
  namespace F = torch::nn::functional;
  const auto per_clip =
      F::ctc_loss(with_blank.transpose(0, 1), targets, frame_lengths.to(torch::kLong),
                  token_lengths.to(torch::kLong),
                  F::CTCLossFuncOptions().blank(0).reduction(torch::kNone).zero_infinity(true)) /
      token_lengths.to(device, torch::kFloat).clamp_min(1);
  if (!include.defined()) return per_clip.mean();
  const auto mask = include.to(device, torch::kBool);
  return torch::where(mask, per_clip, torch::zeros_like(per_clip)).sum() /
         mask.sum().clamp_min(1).to(torch::kFloat);
}

/// `hard` [B, F, T] 0/1 (the monotonic path), `log_soft` [B, F, T]
/// (AlignmentOutputs::log_soft).
inline torch::Tensor binarization_loss(const torch::Tensor& hard, const torch::Tensor& log_soft) {
  const auto on_path = hard.to(log_soft.device()) > 0.5;
  // Off the path log_soft may be -inf (padding): never multiplied.
  const auto picked = torch::where(on_path, log_soft.to(torch::kFloat),
                                   torch::zeros({}, log_soft.options().dtype(torch::kFloat)));
  // Per clip over its frames, then the mean over the clips that have a path
  // (a mean over samples, as kokoro::Loss asks).
  const auto cells = on_path.sum({1, 2});
  const auto per_clip = -picked.sum({1, 2}) / cells.clamp_min(1).to(torch::kFloat);
  return per_clip.sum() / (cells > 0).sum().clamp_min(1).to(torch::kFloat);
}

}  // namespace kokoro::tts::align
