// The length regulator: phoneme states repeated by their durations into one
// state per mel frame, for a whole batch at once (a sorted search over the
// duration prefix sums and one gather; no per-frame loop). Also the mapping
// between durations and the log-duration scale the predictor works in.
#pragma once

#include <cstdint>
#include <limits>

#include <torch/types.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// Frame-level states and which phoneme each frame repeats.
struct Regulated {
  torch::Tensor states;       ///< [B, F, dim], zero on frames past the durations' sum
  torch::Tensor mask;         ///< [B, F] bool, true on frames some phoneme covers
  torch::Tensor token_index;  ///< [B, F] int64, the phoneme of each frame (0 where !mask)
};

/// For `durations` [B, T] (non-negative int64), the phoneme each of the
/// first `frames` frames belongs to, and whether it is covered at all.
/// Phoneme j covers frames [sum(d[..j-1]), sum(d[..j])); zero-duration
/// phonemes cover nothing; frames past `frames` are cut off. The result's
/// `states` is undefined (see length_regulate).
inline Regulated frame_tokens(const torch::Tensor& durations, std::int64_t frames) {
  if (durations.dim() != 2 || durations.size(1) == 0) {
    throw Error("length regulator: durations must be [batch, phonemes] with phonemes > 0");
  }
  const auto batch = durations.size(0);
  auto ends = durations.to(torch::kLong).cumsum(1);  // exclusive end frame of each phoneme
  auto frame = torch::arange(frames, ends.options()).unsqueeze(0).expand({batch, frames});
  // The phoneme of frame f is the number of phonemes ending at or before f.
  auto index = torch::searchsorted(ends, frame.contiguous(), /*out_int32=*/false, /*right=*/true);
  auto mask = frame < ends.narrow(1, ends.size(1) - 1, 1);
  index = index.masked_fill(mask.logical_not(), 0);
  return {torch::Tensor{}, mask, index};
}

/// Repeats each row of `states` [B, T, dim] by `durations` [B, T] and pads
/// (or cuts) the result to `frames` frames.
inline Regulated length_regulate(const torch::Tensor& states, const torch::Tensor& durations,
                                 std::int64_t frames) {
  auto out = frame_tokens(durations, frames);
  const auto dim = states.size(2);
  auto gathered =
      states.gather(1, out.token_index.unsqueeze(-1).expand({states.size(0), frames, dim}));
  out.states = gathered.masked_fill(out.mask.logical_not().unsqueeze(-1), 0.0);
  return out;
}

/// The predictor's target for a duration of d frames: log(d + 1), defined
/// for the zero-frame phonemes forced alignment produces.
inline torch::Tensor duration_to_log(const torch::Tensor& durations) {
  return torch::log1p(durations.to(torch::kFloat));
}

/// The inverse used at inference: round(exp(x) − 1), within [0, max_frames],
/// and 0 where `mask` is false. A token may get 0 frames, as word boundaries
/// and punctuation without a pause do in training: a floor of one frame would
/// add frames the decoder never saw there. Only a row that would get no
/// frame at all gets one, on its longest-predicted token. `scale` stretches
/// every duration before the rounding (2: half as fast).
inline torch::Tensor log_to_duration(const torch::Tensor& log_durations, const torch::Tensor& mask,
                                     std::int64_t max_frames, double scale = 1.0) {
  const auto logs = log_durations.to(torch::kFloat);
  auto stretched = torch::expm1(logs);
  if (scale != 1.0) stretched = stretched * scale;
  auto frames = stretched.round().clamp(0, static_cast<double>(max_frames)).to(torch::kLong);
  frames = frames.masked_fill(mask.logical_not(), 0);
  const auto empty = frames.sum(-1).eq(0).logical_and(mask.any(-1));
  if (empty.any().item<bool>()) {
    const auto longest =
        logs.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity()).argmax(-1);
    const auto one = torch::zeros_like(frames).scatter_(-1, longest.unsqueeze(-1), 1);
    frames = torch::where(empty.unsqueeze(-1), one, frames);
  }
  return frames;
}

}  // namespace kokoro::tts
