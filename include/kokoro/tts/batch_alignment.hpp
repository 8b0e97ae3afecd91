// A batch through the learned aligner, as both tasks that train it need it
// (EnglishTtsTask with learned durations, AlignerTask alone): the soft
// alignment with the beta-binomial prior, the monotonic path through it,
// the forward-sum loss and the binarization loss against the path. Clips no
// alignment can be learned from (fewer frames than phonemes: no path gives
// every phoneme a frame; cut to audio.max_frames: their text runs past
// their frames) are searched as one frame of one phoneme, get no frames in
// the path, and are kept out of both losses.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "kokoro/tts/align/aligner.hpp"
#include "kokoro/tts/align/alignment_losses.hpp"
#include "kokoro/tts/align/alignment_prior.hpp"
#include "kokoro/tts/align/monotonic_alignment.hpp"
#include "kokoro/tts/data/batch.hpp"

namespace kokoro::tts {

struct BatchAlignment {
  align::AlignmentOutputs outputs;
  torch::Tensor usable;          ///< [B] bool: a clip learned from
  torch::Tensor hard_durations;  ///< [B, T] int64: the path's (0 for a clip not learned from)
  torch::Tensor forward_sum, binarization;
};

/// `batch` through `aligner` (tensors on the batch's device; see the header).

inline BatchAlignment align_batch(align::Aligner& aligner, align::AlignmentPriorCache& priors,
                                  const TtsBatch& batch) {
  const auto device = batch.phonemes.device();
  const auto n = batch.size();
  const auto tokens_cpu = batch.phoneme_lengths.to(torch::kCPU).contiguous();
  const auto frames_cpu = batch.mel_lengths.to(torch::kCPU).contiguous();
  std::vector<std::int64_t> tokens(tokens_cpu.data_ptr<std::int64_t>(),
                                   tokens_cpu.data_ptr<std::int64_t>() + n);
  std::vector<std::int64_t> frames(frames_cpu.data_ptr<std::int64_t>(),
                                   frames_cpu.data_ptr<std::int64_t>() + n);
  const auto max_tokens = batch.phonemes.size(1), max_frames = batch.mels.size(1);
  BatchAlignment out;
  out.outputs = aligner->forward(batch.phonemes, batch.phoneme_mask(), batch.mels, batch.mel_mask(),
                                 priors.batch(tokens, frames, max_tokens, max_frames).to(device));
  const auto truncated = batch.truncated.defined()
                             ? batch.truncated.to(torch::kCPU, torch::kBool).contiguous()
                             : torch::zeros({n}, torch::kBool);
  auto usable = torch::empty({n}, torch::kBool);
  for (std::int64_t b = 0; b < n; ++b) {
    const bool learned_from =
        tokens[b] >= 1 && frames[b] >= tokens[b] && !truncated.data_ptr<bool>()[b];
    usable[b] = learned_from;
    if (!learned_from) tokens[b] = frames[b] = 1;
  }
  const auto path = align::monotonic_alignment_search(out.outputs.log_soft.detach(),
                                                      torch::tensor(tokens), torch::tensor(frames));
  out.usable = usable.to(device);
  out.hard_durations = path.to(device).masked_fill(out.usable.logical_not().unsqueeze(1), 0);
  out.forward_sum = align::forward_sum_loss(out.outputs.log_probs, batch.phoneme_lengths,
                                            batch.mel_lengths, out.usable);
  out.binarization = align::binarization_loss(
      align::hard_alignment(out.hard_durations, max_frames).to(device), out.outputs.log_soft);
  return out;
}

}  // namespace kokoro::tts
