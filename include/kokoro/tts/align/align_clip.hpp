// One clip through a trained aligner: its phonemes and mel in, the frames of
// each phoneme out (the monotonic path through its soft alignment, with the
// prior). What kokoro-align writes as TextGrids, and what the alignment's
// health (alignment_health.hpp) is measured on.
#pragma once

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdint>

#include <fmt/format.h>

#include "kokoro/tts/align/aligner.hpp"
#include "kokoro/tts/align/alignment_prior.hpp"
#include "kokoro/tts/align/monotonic_alignment.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/eval_mode_guard.hpp"

namespace kokoro::tts::align {

/// A clip's alignment: the aligner's outputs for a batch of one ([1, F, T],
/// on the aligner's device) and the monotonic path's frames per phoneme.
struct ClipAlignment {
  AlignmentOutputs outputs;
  torch::Tensor durations;  ///< [T] int64 on the CPU, summing to F
};

/// `phonemes` [T] int64 and `mel` [F, n_mels] (any device; the aligner's is
/// used), with no gradient. Throws kokoro::Error when F < T.
inline ClipAlignment align_clip_outputs(Aligner& aligner, AlignmentPriorCache& priors,
                                        const torch::Tensor& phonemes, const torch::Tensor& mel) {
  const auto tokens = phonemes.size(0), frames = mel.size(0);
  if (tokens < 1 || frames < tokens) {
    throw Error(fmt::format("align_clip: {} frames for {} phonemes; every phoneme needs a frame",
                            frames, tokens));
  }
  torch::NoGradGuard no_grad;
  EvalModeGuard eval(*aligner);
  const auto device = aligner->parameters().front().device();
  const auto ids = phonemes.to(device, torch::kLong).unsqueeze(0);
  ClipAlignment out;
  out.outputs = aligner->forward(
      ids, torch::ones({1, tokens}, torch::TensorOptions().dtype(torch::kBool).device(device)),
      mel.to(device, torch::kFloat).unsqueeze(0),
      torch::ones({1, frames}, torch::TensorOptions().dtype(torch::kBool).device(device)),
      priors.get(tokens, frames).to(device).unsqueeze(0));
  out.durations = monotonic_alignment_search(out.outputs.log_soft, torch::tensor({tokens}),
                                             torch::tensor({frames}))[0];
  return out;
}

}  // namespace kokoro::tts::align
