// A Griffin-Lim vocoder: a log-mel spectrogram back to a waveform without a
// trained vocoder, for listening to samples during training. The mel is
// mapped back to linear frequency with the filterbank's pseudo-inverse
// (clamped at zero), then a phase is found by the fast Griffin-Lim iteration
// (alternating projections with momentum). Intelligible but buzzy: a neural
// vocoder (HiFi-GAN, trained on the same features) is what a listener wants.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "kokoro/audio/mel.hpp"

namespace kokoro::audio {

class GriffinLim {
 public:
  explicit GriffinLim(const MelOptions& audio, int iterations = 48, double momentum = 0.99)
      : n_fft_(audio.n_fft),
        hop_(audio.hop_length),
        win_(audio.win_length),
        power_(audio.mel_power),
        iterations_(iterations),
        momentum_(momentum),
        window_(torch::hann_window(audio.win_length, torch::kFloat)),
        inverse_(torch::linalg_pinv(MelSpectrogram(audio).filterbank().to(torch::kDouble))
                     .to(torch::kFloat)) {}

  /// [frames, n_mels] log-mel -> waveform of hop_length * (frames - 1) samples.
  std::vector<float> operator()(const torch::Tensor& log_mel) const {
    torch::NoGradGuard no_grad;
    const auto mel =
        torch::exp(log_mel.detach().to(torch::kCPU, torch::kFloat)).t();   // [n_mels, frames]
    auto magnitude = torch::clamp_min(torch::matmul(inverse_, mel), 0.0);  // [bins, frames]
    if (power_ != 1.0) magnitude = magnitude.pow(1.0 / power_);
    const auto frames = magnitude.size(1);
    const std::int64_t length = hop_ * (frames - 1);
    if (length <= 0) return {};
    // The STFT's reflect padding needs more than n_fft / 2 samples: a clip
    // of a few frames (an early model that stops at once) is extended with
    // silent frames, then cut back to its own length.
    const std::int64_t needed = (n_fft_ / 2) / hop_ + 2;
    if (frames < needed) {
      magnitude = torch::constant_pad_nd(magnitude, {0, needed - frames});
    }
    const std::int64_t padded_length = hop_ * (magnitude.size(1) - 1);

    // Fixed starting phase: the same mel always gives the same audio.
    torch::Tensor angles = torch::ones_like(magnitude).to(torch::kComplexFloat);
    torch::Tensor previous = torch::zeros_like(angles);
    torch::Tensor wave;
    for (int i = 0; i < iterations_; ++i) {
      wave = istft(magnitude * angles, padded_length);
      const auto rebuilt = stft(wave);
      // Fast Griffin-Lim: extrapolate along the last change of the spectrum.
      const auto accelerated = rebuilt - (momentum_ / (1.0 + momentum_)) * previous;
      previous = rebuilt;
      angles = accelerated / torch::clamp_min(accelerated.abs(), 1e-8);
    }
    wave = istft(magnitude * angles, padded_length).narrow(0, 0, length).contiguous();
    // Leave headroom: scale the peak to 0.9 when it would clip.
    const double peak = wave.abs().max().item<double>();
    if (peak > 0.9) wave = wave * (0.9 / peak);
    return std::vector<float>(wave.data_ptr<float>(), wave.data_ptr<float>() + wave.numel());
  }

 private:
  torch::Tensor stft(const torch::Tensor& wave) const {
    return torch::stft(wave, n_fft_, hop_, win_, window_, /*center=*/true, "reflect",
                       /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);
  }
  torch::Tensor istft(const torch::Tensor& spec, std::int64_t length) const {
    return torch::istft(spec, n_fft_, hop_, win_, window_, /*center=*/true, /*normalized=*/false,
                        /*onesided=*/true, length, /*return_complex=*/false)
        .contiguous();
  }

  std::int64_t n_fft_, hop_, win_;
  double power_;
  int iterations_;
  double momentum_;
  torch::Tensor window_;
  torch::Tensor inverse_;  // [bins, n_mels]
};

}  // namespace kokoro::audio
