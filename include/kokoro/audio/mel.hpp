// Log-mel spectrograms as the common LJSpeech vocoders (HiFi-GAN, Tacotron 2)
// expect them, set by MelOptions.
//
// Framing: the waveform is reflect-padded by n_fft / 2 on both sides
// (centred frames, torch.stft's and librosa's default), so a clip of N
// samples gives 1 + N / hop_length frames (integer division) and frame t is
// centred on sample t * hop_length. Each frame is windowed by a periodic Hann
// window of win_length samples, zero-padded to n_fft in the middle.
// Magnitude |STFT|^mel_power (1: magnitude, 2: power), a Slaney-scale mel
// filterbank with Slaney (area) normalisation (librosa's default), then
// log(max(x, 1e-5)). Output [frames, n_mels], float32.
#pragma once

#include <cmath>
#include <cstdint>

#include <torch/types.h>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::audio {

/// Hz to the Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz),
/// logarithmic above (27 mels per factor 6.4).
inline double hz_to_mel_slaney(double hz) {
  constexpr double linear_top = 1000.0 * 3.0 / 200.0;  // 15 mels at 1 kHz
  if (hz < 1000.0) return hz * 3.0 / 200.0;
  return linear_top + std::log(hz / 1000.0) * 27.0 / std::log(6.4);
}

inline double mel_to_hz_slaney(double mel) {
  constexpr double linear_top = 1000.0 * 3.0 / 200.0;
  if (mel < linear_top) return mel * 200.0 / 3.0;
  return 1000.0 * std::exp((mel - linear_top) * std::log(6.4) / 27.0);
}

/// Triangular filters [n_mels, n_fft / 2 + 1] with centres evenly spaced on
/// the Slaney mel scale between fmin and fmax, each scaled by 2 / (its width
/// in Hz) so that every filter has the same area.
inline torch::Tensor slaney_mel_filterbank(int sample_rate, int n_fft, int n_mels, double fmin,
                                           double fmax) {
  const int bins = n_fft / 2 + 1;
  const double lo = hz_to_mel_slaney(fmin), hi = hz_to_mel_slaney(fmax);
  std::vector<double> edges(static_cast<std::size_t>(n_mels) + 2);
  for (std::size_t i = 0; i < edges.size(); ++i) {
    edges[i] = mel_to_hz_slaney(lo + (hi - lo) * static_cast<double>(i) / (n_mels + 1));
  }
  auto fb = torch::zeros({n_mels, bins}, torch::kDouble);
  auto a = fb.accessor<double, 2>();
  for (int m = 0; m < n_mels; ++m) {
    const double left = edges[m], centre = edges[m + 1], right = edges[m + 2];
    const double norm = 2.0 / (right - left);
    for (int k = 0; k < bins; ++k) {
      const double f = static_cast<double>(k) * sample_rate / n_fft;
      const double rising = (f - left) / (centre - left);
      const double falling = (right - f) / (right - centre);
      a[m][k] = std::max(0.0, std::min(rising, falling)) * norm;
    }
  }
  return fb.to(torch::kFloat);
}

/// How waveforms become log-mel frames. The defaults are LJSpeech's: 22050 Hz,
/// n_fft 1024, hop 256, window 1024, 80 mels from 0 to 8000 Hz, magnitude.
struct MelOptions {
  std::int64_t sample_rate = 22050;
  std::int64_t n_fft = 1024;
  std::int64_t hop_length = 256;
  std::int64_t win_length = 1024;  ///< <= n_fft; centred in the FFT frame
  std::int64_t n_mels = 80;
  double fmin = 0.0;
  double fmax = 8000.0;    ///< <= sample_rate / 2
  double mel_power = 1.0;  ///< 1: magnitude mel, 2: power mel
};

class MelSpectrogram {
 public:
  explicit MelSpectrogram(const MelOptions& audio)
      : n_fft_(audio.n_fft),
        hop_(audio.hop_length),
        win_(audio.win_length),
        power_(audio.mel_power) {
    if (audio.win_length > audio.n_fft) {
      throw Error(fmt::format("mel: win_length ({}) must not exceed n_fft ({})", audio.win_length,
                              audio.n_fft));
    }
    if (audio.fmax > audio.sample_rate / 2.0 || audio.fmin >= audio.fmax) {
      throw Error(
          fmt::format("mel: need 0 <= fmin < fmax <= sample_rate / 2, got fmin {} fmax {} "
                      "at {} Hz",
                      audio.fmin, audio.fmax, audio.sample_rate));
    }
    window_ =
        torch::hann_window(win_, torch::TensorOptions().dtype(torch::kFloat).requires_grad(false));
    filterbank_ =
        slaney_mel_filterbank(static_cast<int>(audio.sample_rate), static_cast<int>(n_fft_),
                              static_cast<int>(audio.n_mels), audio.fmin, audio.fmax);
  }

  /// Frames for a clip of `samples` samples.
  std::int64_t frames_for(std::int64_t samples) const { return 1 + samples / hop_; }

  /// [samples] float waveform -> [frames, n_mels] log-mel.
  torch::Tensor operator()(const torch::Tensor& waveform) const {
    torch::NoGradGuard no_grad;
    auto x = waveform.to(torch::kFloat).flatten();
    if (x.numel() <= n_fft_ / 2) {
      // Reflect padding needs more samples than the pad; a clip this short
      // is padded with zeros first (it is a few milliseconds long).
      x = torch::constant_pad_nd(x, {0, n_fft_ / 2 + 1 - x.numel()});
    }
    const auto spec = torch::stft(x, n_fft_, hop_, win_, window_, /*center=*/true, "reflect",
                                  /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);
    auto magnitude = spec.abs();  // [bins, frames]
    if (power_ != 1.0) magnitude = magnitude.pow(power_);
    const auto mel = torch::matmul(filterbank_, magnitude);  // [n_mels, frames]
    return torch::log(torch::clamp_min(mel, 1e-5)).t().contiguous();
  }

  const torch::Tensor& filterbank() const { return filterbank_; }

 private:
  std::int64_t n_fft_, hop_, win_;
  double power_;
  torch::Tensor window_;
  torch::Tensor filterbank_;
};

}  // namespace kokoro::audio
