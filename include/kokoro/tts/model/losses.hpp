// The TTS training loss: masked L1 on the mel (before and after the PostNet),
// masked MSE on log durations, masked BCE on the stop logit. Every term is a
// mean over each clip's real positions, then a mean over the clips, so
// padding never changes it and, as kokoro::Loss promises, the total is a mean
// over samples: micro-batches weighted by size add up to the whole batch.
#pragma once

#include <ATen/core/Reduction.h>
#include <torch/types.h>

#include "kokoro/core/loss.hpp"
#include "kokoro/tts/data/batch.hpp"
#include "kokoro/tts/model/kokoro_model.hpp"
#include "kokoro/tts/model/length_regulator.hpp"

namespace kokoro::tts {

/// The weights of the loss terms (the `loss` section); the defaults are the
/// reference system's.
struct TtsLossOptions {
  double duration_weight = 0.1;
  double stop_weight = 1.0;
  double stop_positive_weight = 1.0;  ///< weight of the stop loss's last-frame term
};

/// `values` [B, N] (float) averaged over each row's positions where `mask`
/// [B, N] is true, then over rows; a row with no true position adds 0.
/// Padded positions are replaced, not multiplied, so NaN or inf there
/// cannot leak in.
inline torch::Tensor masked_sample_mean(const torch::Tensor& values, const torch::Tensor& mask) {
  auto sums = values.masked_fill(mask.logical_not(), 0.0).sum(1);
  auto counts = mask.sum(1).clamp_min(1).to(sums.scalar_type());
  return (sums / counts).mean();
}

/// Masked L1 between `prediction` and `target` [B, F, n_mels] over the real
/// frames of `frame_mask` [B, F].
inline torch::Tensor masked_mel_l1(const torch::Tensor& prediction, const torch::Tensor& target,
                                   const torch::Tensor& frame_mask) {
  auto per_frame = (prediction.to(torch::kFloat) - target.to(torch::kFloat)).abs().mean(-1);
  return masked_sample_mean(per_frame, frame_mask);
}

/// The loss of `out` against `batch`:
///  - mel = L1(mel_before) + L1(mel_after) with a PostNet (components
///    "mel_before", "mel_after"), L1(mel_before) without one;
///  - duration = MSE(log_durations, log(durations + 1)) over real phonemes
///    (the inverse at inference is round(exp(x) − 1), see length_regulator.hpp);
///  - stop = BCE-with-logits against stop_targets over real frames, the
///    positive (last-frame) term weighted by `stop_positive_weight`. The
///    default 1.0 is the original's; with one positive per clip the stop
///    probability rises late, and a larger weight (5–10) makes it fire
///    earlier and more surely at inference;
///  - total = mel + duration_weight·duration + stop_weight·stop.
/// Components: "mel", "duration", "stop", then "mel_before", "mel_after"
/// (the last two only with a PostNet), detached.
inline Loss tts_loss(const ModelOutputs& out, const TtsBatch& batch,
                     const TtsLossOptions& weights = {}) {
  const double stop_positive_weight = weights.stop_positive_weight;
  const auto frame_mask = batch.mel_mask();
  const auto phoneme_mask = batch.phoneme_mask();

  const auto mel_before = masked_mel_l1(out.mel_before, batch.mels, frame_mask);
  torch::Tensor mel_after, mel = mel_before;
  if (out.postnet) {
    mel_after = masked_mel_l1(out.mel_after, batch.mels, frame_mask);
    mel = mel_before + mel_after;
  }

  const auto duration_error =
      (out.log_durations.to(torch::kFloat) - duration_to_log(batch.durations)).pow(2);
  const auto duration = masked_sample_mean(duration_error, phoneme_mask);

  const auto logits = out.stop_logits.to(torch::kFloat);
  c10::optional<torch::Tensor> positive_weight;
  if (stop_positive_weight != 1.0) {
    positive_weight = torch::full({}, stop_positive_weight, logits.options());
  }
  const auto stop_error =
      torch::binary_cross_entropy_with_logits(logits, batch.stop_targets.to(torch::kFloat),
                                              /*weight=*/{}, positive_weight, at::Reduction::None);
  const auto stop = masked_sample_mean(stop_error, frame_mask);

  const auto total = mel + weights.duration_weight * duration + weights.stop_weight * stop;
  Loss loss{total, {}};
  loss.with("mel", mel.detach()).with("duration", duration.detach()).with("stop", stop.detach());
  if (out.postnet)
    loss.with("mel_before", mel_before.detach()).with("mel_after", mel_after.detach());
  return loss;
}

}  // namespace kokoro::tts
