// Media from tensors: a spectrogram as a colour image, a waveform as a clip
// (histograms are built in core/histogram.hpp). The results are plain kokoro::Media
// values (core/media.hpp) that any logger can render.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include <torch/types.h>

#include "kokoro/core/media.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

namespace detail {
/// The viridis colour map sampled at nine evenly spaced points; linear in between.
inline std::array<std::uint8_t, 3> viridis(double x) {
  static constexpr std::array<std::array<double, 3>, 9> stops{{{68, 1, 84},
                                                               {71, 45, 123},
                                                               {59, 82, 139},
                                                               {44, 114, 142},
                                                               {33, 145, 140},
                                                               {40, 174, 128},
                                                               {94, 201, 98},
                                                               {173, 220, 48},
                                                               {253, 231, 37}}};
  x = std::clamp(std::isfinite(x) ? x : 0.0, 0.0, 1.0) * 8.0;
  const int i = std::min(static_cast<int>(x), 7);
  const double t = x - i;
  std::array<std::uint8_t, 3> rgb{};
  for (int k = 0; k < 3; ++k) {
    rgb[k] =
        static_cast<std::uint8_t>(std::lround(stops[i][k] + t * (stops[i + 1][k] - stops[i][k])));
  }
  return rgb;
}
}  // namespace detail

/// A [bins, frames] spectrogram (e.g. a log-mel) as an RGB image, time to the
/// right and the lowest bin at the bottom, coloured by viridis between the
/// spectrogram's own min and max.
inline Image spectrogram_image(std::string tag, const torch::Tensor& spectrogram) {
  if (spectrogram.dim() != 2) {
    throw Error(fmt::format("spectrogram '{}': expected [bins, frames], got {} dimensions", tag,
                            spectrogram.dim()));
  }
  const auto s = spectrogram.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const auto finite = s.masked_select(torch::isfinite(s));
  const double lo = finite.numel() ? finite.min().item<double>() : 0.0;
  const double hi = finite.numel() ? finite.max().item<double>() : 1.0;
  const double span = hi > lo ? hi - lo : 1.0;
  Image image;
  image.tag = std::move(tag);
  image.height = static_cast<int>(s.size(0));
  image.width = static_cast<int>(s.size(1));
  image.channels = 3;
  image.pixels.resize(static_cast<std::size_t>(image.height) * image.width * 3);
  const auto a = s.accessor<double, 2>();
  for (int y = 0; y < image.height; ++y) {
    const int bin = image.height - 1 - y;
    for (int x = 0; x < image.width; ++x) {
      const auto rgb = detail::viridis((a[bin][x] - lo) / span);
      std::copy(rgb.begin(), rgb.end(), image.pixels.begin() + (y * image.width + x) * 3);
    }
  }
  return image;
}

/// A waveform (any shape; flattened) as a clip.
inline AudioClip audio_clip(std::string tag, const torch::Tensor& waveform, int sample_rate) {
  const auto w = waveform.detach().flatten().to(torch::kCPU, torch::kFloat).contiguous();
  AudioClip clip;
  clip.tag = std::move(tag);
  clip.sample_rate = sample_rate;
  clip.samples.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
  return clip;
}

}  // namespace kokoro
