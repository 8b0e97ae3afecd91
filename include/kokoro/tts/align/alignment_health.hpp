// Whether a learned alignment is healthy, measured on a few clips at each
// evaluation (eval/align_* in the logs and report.html):
//  - monotonic: the share of clips whose soft alignment, read frame by frame
//    as its most likely phoneme, never steps back and visits every phoneme
//    (pause tokens, which fluent speech may give no frame, aside).
//    The monotonic search always finds a path; this says whether the aligner
//    itself has found the diagonal (a young or broken one smears or jumps).
//  - forward_sum: the mean forward-sum loss of the clips (the aligner's own
//    objective, on clips it may not train on).
//  - within: where a clip has reference durations (a TextGrid the aligner
//    was not given, as with data.durations: learned on an aligned corpus),
//    the share of phoneme boundaries the path puts within `tolerance_frames`
//    of the reference's.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "kokoro/tts/align/align_clip.hpp"
#include "kokoro/tts/align/alignment_losses.hpp"

namespace kokoro::tts::align {

struct AlignmentHealth {
  std::int64_t clips = 0;
  std::int64_t monotonic = 0;  ///< clips whose soft alignment walks the diagonal
  double forward_sum_sum = 0.0;
  std::int64_t boundaries = 0;  ///< phoneme boundaries of clips with reference durations
  std::int64_t within = 0;      ///< of them, within the tolerance

  double monotonic_share() const {
    return clips > 0 ? static_cast<double>(monotonic) / static_cast<double>(clips) : 0.0;
  }
  double mean_forward_sum() const {
    return clips > 0 ? forward_sum_sum / static_cast<double>(clips) : 0.0;
  }
  double within_share() const {
    return boundaries > 0 ? static_cast<double>(within) / static_cast<double>(boundaries) : 0.0;
  }
};

/// Whether `most_likely` [F] (each frame's most likely phoneme of T) never
/// steps back and visits every phoneme from the first to the last, but for
/// those `skippable` marks (pause tokens, which a fluent speaker may give no
/// frame of their own; empty: none).
inline bool walks_the_diagonal(const std::vector<std::int64_t>& most_likely, std::int64_t tokens,
                               const std::vector<bool>& skippable = {}) {
  const auto may_skip = [&](std::int64_t t) {
    return t < static_cast<std::int64_t>(skippable.size()) &&
           skippable[static_cast<std::size_t>(t)];
  };
  std::int64_t last = -1;
  for (const auto t : most_likely) {
    if (t < last) return false;
    for (std::int64_t s = last + 1; s < t; ++s) {
      if (!may_skip(s)) return false;
    }
    last = t;
  }
  for (std::int64_t s = last + 1; s < tokens; ++s) {
    if (!may_skip(s)) return false;
  }
  return true;
}

/// Adds one clip's alignment (align_clip_outputs) to `health`; `reference`:
/// [T] int64 frames per phoneme (undefined: none).
inline void add_alignment_health(AlignmentHealth& health, const ClipAlignment& a,
                                 const torch::Tensor& reference = {},
                                 std::int64_t tolerance_frames = 2,
                                 const std::vector<bool>& skippable = {}) {
  const auto tokens = a.durations.size(0);
  const auto frames = a.outputs.log_soft.size(1);
  const auto argmax = a.outputs.log_soft[0].argmax(1).to(torch::kCPU, torch::kLong).contiguous();
  const std::vector<std::int64_t> most_likely(argmax.data_ptr<std::int64_t>(),
                                              argmax.data_ptr<std::int64_t>() + frames);
  ++health.clips;
  if (walks_the_diagonal(most_likely, tokens, skippable)) ++health.monotonic;
  health.forward_sum_sum +=
      forward_sum_loss(a.outputs.log_probs, torch::tensor({tokens}), torch::tensor({frames}))
          .item<double>();
  if (!reference.defined() || reference.numel() != tokens) return;
  const auto ours = a.durations.to(torch::kLong).cumsum(0);
  const auto theirs = reference.to(torch::kCPU, torch::kLong).cumsum(0);
  const auto o = ours.accessor<std::int64_t, 1>();
  const auto r = theirs.accessor<std::int64_t, 1>();
  // The boundaries between phonemes: every cumulative end but the last.
  for (std::int64_t i = 0; i + 1 < tokens; ++i) {
    ++health.boundaries;
    if (std::llabs(o[i] - r[i]) <= tolerance_frames) ++health.within;
  }
}

/// Aligns one clip (`phonemes` [T], `mel` [F, n_mels]) and adds it to `health`.
inline void add_alignment_health(AlignmentHealth& health, Aligner& aligner,
                                 AlignmentPriorCache& priors, const torch::Tensor& phonemes,
                                 const torch::Tensor& mel, const torch::Tensor& reference = {},
                                 std::int64_t tolerance_frames = 2,
                                 const std::vector<bool>& skippable = {}) {
  add_alignment_health(health, align_clip_outputs(aligner, priors, phonemes, mel), reference,
                       tolerance_frames, skippable);
}

}  // namespace kokoro::tts::align
