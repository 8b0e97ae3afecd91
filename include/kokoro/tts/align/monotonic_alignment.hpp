// Monotonic alignment search: the hard alignment of a clip's mel frames to
// its tokens that a soft alignment scores best, under the rules speech
// follows: the first frame belongs to the first token, the last frame to the
// last token, and from one frame to the next the token stays or moves on by
// one; so every token gets at least one frame. It is a Viterbi over (frame,
// token), O(frames x tokens) per clip (Glow-TTS's search, as FastPitch 1.1
// and RAD-TTS use it on their learned alignments).
//
// Written here, not taken from a library: libtorch has no such search, and
// the Python implementations (numba, Cython) cannot be called from C++. The
// DP runs on the CPU in doubles (each clip on its own thread), whatever the
// input's device and type: it is a sequential recursion over frames, a few
// milliseconds per clip, and its result (integer durations) is tiny.
//
// Ties: where staying on a token and having come from the one before score
// the same, the path stays, i.e. the later token takes the frame (the
// boundary goes as early as the scores allow). test_tts_align.cpp checks
// the search against a plain dynamic program and against every path of small
// cases.
#pragma once

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <cstdint>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts::align {

namespace detail {

/// The best path of one clip: `score` is [frames][tokens] row-major (frame
/// t's token scores at score[t * stride]), `frames` >= `tokens` >= 1.
/// Writes each token's frame count to durations[0..tokens). `work` is
/// scratch space of at least frames * tokens doubles.
inline void search_one(const float* score, std::int64_t stride, std::int64_t frames,
                       std::int64_t tokens, std::int64_t* durations, std::vector<double>& work) {
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  work.assign(static_cast<std::size_t>(frames * tokens), kNone);
  double* best = work.data();  // best[t * tokens + i]: the best path to (frame t, token i)
  best[0] = score[0];
  for (std::int64_t t = 1; t < frames; ++t) {
    // Token i is reachable at frame t when i <= t, and the tokens after it
    // still fit into the frames after t.
    const std::int64_t first = std::max<std::int64_t>(0, tokens - (frames - t));
    const std::int64_t last = std::min<std::int64_t>(t, tokens - 1);
    const double* previous = best + (t - 1) * tokens;
    double* current = best + t * tokens;
    const float* s = score + t * stride;
    for (std::int64_t i = first; i <= last; ++i) {
      const double stay = previous[i];
      const double advance = i > 0 ? previous[i - 1] : kNone;
      current[i] = (stay >= advance ? stay : advance) + static_cast<double>(s[i]);
    }
  }
  for (std::int64_t i = 0; i < tokens; ++i) durations[i] = 0;
  std::int64_t i = tokens - 1;
  for (std::int64_t t = frames - 1; t >= 0; --t) {
    ++durations[i];
    if (t == 0) break;
    const double* previous = best + (t - 1) * tokens;
    // Move back a token when staying is impossible (token i cannot be reached
    // by frame t - 1) or scores less.
    if (i > 0 && (i == t || previous[i - 1] > previous[i])) --i;
  }
}

}  // namespace detail

/// The hard alignment's durations: `log_probs` [batch, frames, tokens] (the
/// soft alignment's log-probabilities, any device and float type; padding
/// ignored), `token_lengths` and `frame_lengths` [batch]. Returns [batch,
/// tokens] int64 on the CPU: each clip's frames per token, 0 past its tokens;
/// each row sums to its clip's frames exactly. Throws kokoro::Error for a
/// clip with fewer frames than tokens (no monotonic path gives every token a
/// frame) or lengths beyond the tensor.
inline torch::Tensor monotonic_alignment_search(const torch::Tensor& log_probs,
                                                const torch::Tensor& token_lengths,
                                                const torch::Tensor& frame_lengths) {
  if (log_probs.dim() != 3) {
    throw Error(fmt::format("monotonic_alignment_search: log_probs must be [batch, frames, "
                            "tokens], got {} dimensions",
                            log_probs.dim()));
  }
  const auto scores = log_probs.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const auto tokens = token_lengths.to(torch::kCPU, torch::kLong).contiguous();
  const auto frames = frame_lengths.to(torch::kCPU, torch::kLong).contiguous();
  const std::int64_t batch = scores.size(0);
  const std::int64_t max_frames = scores.size(1);
  const std::int64_t max_tokens = scores.size(2);
  if (tokens.numel() != batch || frames.numel() != batch) {
    throw Error(fmt::format("monotonic_alignment_search: {} clips but {} token lengths and {} "
                            "frame lengths",
                            batch, tokens.numel(), frames.numel()));
  }
  const auto* n_tokens = tokens.data_ptr<std::int64_t>();
  const auto* n_frames = frames.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < batch; ++b) {
    if (n_tokens[b] < 1 || n_tokens[b] > max_tokens || n_frames[b] > max_frames) {
      throw Error(fmt::format("monotonic_alignment_search: clip {} has {} tokens and {} frames, "
                              "outside its [{} frames, {} tokens] scores",
                              b, n_tokens[b], n_frames[b], max_frames, max_tokens));
    }
    if (n_frames[b] < n_tokens[b]) {
      throw Error(fmt::format("monotonic_alignment_search: clip {} has {} frames for {} tokens; "
                              "every token needs at least one frame",
                              b, n_frames[b], n_tokens[b]));
    }
  }
  auto durations = torch::zeros({batch, max_tokens}, torch::kLong);
  const float* base = scores.data_ptr<float>();
  std::int64_t* out = durations.data_ptr<std::int64_t>();
  at::parallel_for(0, batch, 1, [&](std::int64_t first, std::int64_t last) {
    std::vector<double> work;
    for (std::int64_t b = first; b < last; ++b) {
      detail::search_one(base + b * max_frames * max_tokens, max_tokens, n_frames[b], n_tokens[b],
                         out + b * max_tokens, work);
    }
  });
  return durations;
}

/// The hard alignment as a [batch, frames, tokens] 0/1 float tensor from its
/// durations (rows past a clip's frames are zero).
inline torch::Tensor hard_alignment(const torch::Tensor& durations, std::int64_t frames) {
  const auto d = durations.to(torch::kCPU, torch::kLong).contiguous();
  const std::int64_t batch = d.size(0), tokens = d.size(1);
  auto hard = torch::zeros({batch, frames, tokens});
  auto h = hard.accessor<float, 3>();
  const auto a = d.accessor<std::int64_t, 2>();
  for (std::int64_t b = 0; b < batch; ++b) {
    std::int64_t t = 0;
    for (std::int64_t i = 0; i < tokens; ++i) {
      for (std::int64_t k = 0; k < a[b][i] && t < frames; ++k) h[b][t++][i] = 1.0f;
    }
  }
  return hard;
}

}  // namespace kokoro::tts::align
