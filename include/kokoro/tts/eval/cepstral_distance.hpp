// Mel-cepstral distortion (MCD) between a synthesis and its recording, in dB.
//
// The cepstra are taken from the log-mel spectrograms the model works in: an
// orthonormal DCT-II of each frame's log-amplitude mel bands (a log-power
// mel, audio.mel_power 2, is halved first), keeping c1..c_order; c0, the
// frame's overall level, is left out as ESPnet and fairseq leave it out. Per
// pair of frames the distortion is (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)
// (the factor turns natural-log amplitude differences into decibels), averaged
// over the frames paired:
//   - `dtw`: along the dynamic-time-warping path (steps right, down,
//     diagonal, each pair's cost its Euclidean cepstral distance) that pairs
//     the two sequences best, end to end: the figure ESPnet and fairseq report;
//   - `plain`: frame t against frame t over the recording's own frames, a
//     synthesis too short padded with silence (the log floor), frames past
//     the recording's end left out: it also counts a wrong length and timing.
// SPTK-style mel-cepstral analysis (all-pass warping of a linear spectrum)
// would give other absolute numbers; kokoro compares its own runs and says
// which cepstra it uses. Written here: no Debian or PyPI library computes
// MCD from a log-mel and a DTW path in C++ (librosa/pymcd are Python).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts::eval {

struct CepstrumOptions {
  std::int64_t order = 24;  ///< coefficients kept after c0 (c1..c_order)
  double mel_power = 1.0;   ///< the log-mel's power: 1 magnitude, 2 power
  double log_floor = 1e-5;  ///< the log-mel's floor (silence), for padding
};

/// [frames, n_mels] natural-log mel -> [frames, order] cepstra c1..c_order
/// (float64). An orthonormal DCT-II matrix, so that sum_d c_d^2 over all
/// coefficients equals the sum of squared log-amplitudes (Parseval).
inline torch::Tensor mel_cepstra(const torch::Tensor& log_mel, const CepstrumOptions& options = {}) {
  if (log_mel.dim() != 2) {
    throw Error(fmt::format("mel_cepstra: expected a [frames, n_mels] log-mel, got {} dimensions",
                            log_mel.dim()));
  }
  const auto n = log_mel.size(1);
  if (options.order < 1 || options.order >= n) {
    throw Error(fmt::format("mel_cepstra: order must be in 1..{} for {} mel bands, got {}", n - 1,
                            n, options.order));
  }
  auto dct = torch::empty({n, options.order + 1}, torch::kDouble);
  auto a = dct.accessor<double, 2>();
  for (std::int64_t k = 0; k <= options.order; ++k) {
    const double scale = std::sqrt((k == 0 ? 1.0 : 2.0) / static_cast<double>(n));
    for (std::int64_t m = 0; m < n; ++m) {
      a[m][k] = scale * std::cos(std::numbers::pi * static_cast<double>(k) *
                                 (2.0 * static_cast<double>(m) + 1.0) / (2.0 * static_cast<double>(n)));
    }
  }
  const auto amplitude = log_mel.to(torch::kCPU, torch::kDouble) / options.mel_power;
  return amplitude.matmul(dct).narrow(1, 1, options.order).contiguous();
}

/// The dB factor of MCD: (10 / ln 10) * sqrt(2).
inline constexpr double kMcdScale = 10.0 / std::numbers::ln10 * std::numbers::sqrt2;

/// Pairs of frame indices (i into the first sequence, j into the second)
/// from (0, 0) to (n - 1, m - 1), each step advancing i, j or both.
using WarpingPath = std::vector<std::pair<std::int64_t, std::int64_t>>;

/// The path of least summed cost through `cost` [n, m] (float64, CPU), by
/// dynamic programming in O(n * m) time and memory; ties prefer the diagonal.
inline WarpingPath dtw_path(const torch::Tensor& cost) {
  const auto c = cost.to(torch::kCPU, torch::kDouble).contiguous();
  const auto n = c.size(0), m = c.size(1);
  if (n == 0 || m == 0) return {};
  const auto* d = c.data_ptr<double>();
  std::vector<double> acc(static_cast<std::size_t>(n * m));
  auto at = [&](std::int64_t i, std::int64_t j) -> double& {
    return acc[static_cast<std::size_t>(i * m + j)];
  };
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < m; ++j) {
      double best = (i == 0 && j == 0) ? 0.0 : inf;
      if (i > 0 && j > 0) best = std::min(best, at(i - 1, j - 1));
      if (i > 0) best = std::min(best, at(i - 1, j));
      if (j > 0) best = std::min(best, at(i, j - 1));
      at(i, j) = best + d[i * m + j];
    }
  }
  WarpingPath path;
  path.reserve(static_cast<std::size_t>(n + m));
  std::int64_t i = n - 1, j = m - 1;
  path.emplace_back(i, j);
  while (i > 0 || j > 0) {
    if (i == 0) {
      --j;
    } else if (j == 0) {
      --i;
    } else {
      const double diagonal = at(i - 1, j - 1), up = at(i - 1, j), left = at(i, j - 1);
      if (diagonal <= up && diagonal <= left) {
        --i;
        --j;
      } else if (up <= left) {
        --i;
      } else {
        --j;
      }
    }
    path.emplace_back(i, j);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

struct CepstralDistortion {
  double dtw_db = 0.0;    ///< mean MCD along the DTW path
  double plain_db = 0.0;  ///< mean MCD frame by frame over the recording's frames
  WarpingPath path;       ///< synthesis frame, recording frame
};

/// MCD of `synthesis` against `recording` (both [frames, n_mels] log-mel of
/// the same settings).
inline CepstralDistortion mel_cepstral_distortion(const torch::Tensor& synthesis,
                                                  const torch::Tensor& recording,
                                                  const CepstrumOptions& options = {}) {
  if (synthesis.dim() != 2 || recording.dim() != 2 || synthesis.size(1) != recording.size(1) ||
      synthesis.size(0) == 0 || recording.size(0) == 0) {
    throw Error(fmt::format(
        "mel_cepstral_distortion: expected two non-empty log-mels with the same bands, got {} and {}",
        fmt::join(synthesis.sizes(), "x"), fmt::join(recording.sizes(), "x")));
  }
  const auto a = mel_cepstra(synthesis, options);
  const auto b = mel_cepstra(recording, options);
  // Pairwise Euclidean distances [n, m]: MCD per pair is kMcdScale times it.
  const auto distances = torch::cdist(a.unsqueeze(0), b.unsqueeze(0)).squeeze(0);
  CepstralDistortion out;
  out.path = dtw_path(distances);
  const auto dist = distances.accessor<double, 2>();
  double sum = 0.0;
  for (const auto& [i, j] : out.path) sum += dist[i][j];
  out.dtw_db = kMcdScale * sum / static_cast<double>(out.path.size());

  const auto frames = recording.size(0);
  auto padded = torch::full({frames, synthesis.size(1)}, std::log(options.log_floor),
                            synthesis.options().dtype(torch::kDouble).device(torch::kCPU));
  const auto shared = std::min(frames, synthesis.size(0));
  padded.narrow(0, 0, shared).copy_(synthesis.narrow(0, 0, shared));
  const auto p = mel_cepstra(padded, options);
  out.plain_db = kMcdScale * (p - b).pow(2).sum(1).sqrt().mean().item<double>();
  return out;
}

}  // namespace kokoro::tts::eval
