// Audio input for the TTS pipeline: any file libsndfile reads (WAV, FLAC,
// OGG, ...) as mono float samples at the configured rate. Several channels
// are averaged; another sample rate is converted with a windowed-sinc
// resampler. A file that is empty, truncated or unreadable throws
// kokoro::Error naming the file, so the caller can skip the clip and count it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <sndfile.h>

#include <fmt/format.h>

#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/wav.hpp"

namespace kokoro::audio {

namespace detail {

/// Modified Bessel function of the first kind, order 0 (for the Kaiser window).
inline double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  for (int k = 1; k < 50; ++k) {
    term *= (x / (2.0 * k)) * (x / (2.0 * k));
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

}  // namespace detail

/// Converts `input` from `from_rate` to `to_rate` Hz by band-limited
/// interpolation: each output sample is the input convolved with a sinc whose
/// cutoff is 0.95 of the lower Nyquist frequency, Kaiser-windowed (beta 8.6)
/// to 16 zero crossings each side. Output length: ceil(n * to / from).
inline std::vector<float> resample(const std::vector<float>& input, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) {
    throw Error(
        fmt::format("resample: sample rates must be positive, got {} and {}", from_rate, to_rate));
  }
  if (from_rate == to_rate || input.empty()) return input;
  const auto g = std::gcd(from_rate, to_rate);
  const std::int64_t up = to_rate / g, down = from_rate / g;
  const auto n_in = static_cast<std::int64_t>(input.size());
  const std::int64_t n_out = (n_in * up + down - 1) / down;
  // Cutoff in cycles per input sample.
  const double cutoff = 0.5 * 0.95 * std::min(1.0, static_cast<double>(up) / down);
  constexpr double zero_crossings = 16.0;
  const double half_width = zero_crossings / (2.0 * cutoff);  // in input samples
  constexpr double beta = 8.6;
  const double i0_beta = detail::bessel_i0(beta);
  constexpr double pi = 3.14159265358979323846;

  // The output sample n sits at n * down / up input samples: a whole part and
  // one of `up` fractional phases. The filter taps depend only on the phase,
  // so they are computed once per phase.
  struct Tap {
    std::int64_t offset;
    double weight;
  };
  std::vector<std::vector<Tap>> phases(static_cast<std::size_t>(up));
  for (std::int64_t p = 0; p < up; ++p) {
    const double frac = static_cast<double>(p) / up;
    for (auto k = static_cast<std::int64_t>(std::ceil(frac - half_width));
         k <= static_cast<std::int64_t>(std::floor(frac + half_width)); ++k) {
      const double x = k - frac;
      const double r = x / half_width;
      const double window =
          detail::bessel_i0(beta * std::sqrt(std::max(0.0, 1.0 - r * r))) / i0_beta;
      const double arg = 2.0 * cutoff * x;
      const double sinc = std::abs(arg) < 1e-12 ? 1.0 : std::sin(pi * arg) / (pi * arg);
      phases[static_cast<std::size_t>(p)].push_back({k, 2.0 * cutoff * sinc * window});
    }
  }
  std::vector<float> out(static_cast<std::size_t>(n_out));
  for (std::int64_t n = 0; n < n_out; ++n) {
    const std::int64_t whole = n * down / up;
    double acc = 0.0;
    for (const auto& tap : phases[static_cast<std::size_t>(n * down - whole * up)]) {
      const std::int64_t k = whole + tap.offset;
      if (k >= 0 && k < n_in) acc += input[static_cast<std::size_t>(k)] * tap.weight;
    }
    out[static_cast<std::size_t>(n)] = static_cast<float>(acc);
  }
  return out;
}

/// What a file held before conversion.
struct AudioInfo {
  int sample_rate = 0;
  int channels = 0;
  std::int64_t frames = 0;
};

/// The file's samples as mono float in [-1, 1] at `sample_rate` Hz. Throws
/// kokoro::Error "<path>: <reason>" for a file that cannot be used.
inline std::vector<float> load_audio(const std::filesystem::path& path, int sample_rate,
                                     AudioInfo* info = nullptr) {
  SF_INFO format{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &format);
  if (!file) {
    throw Error(fmt::format("{}: cannot read audio: {}", path.string(), sf_strerror(nullptr)));
  }
  if (format.frames <= 0 || format.channels <= 0) {
    sf_close(file);
    throw Error(fmt::format("{}: the file holds no audio", path.string()));
  }
  std::vector<float> interleaved(static_cast<std::size_t>(format.frames * format.channels));
  const sf_count_t read = sf_readf_float(file, interleaved.data(), format.frames);
  sf_close(file);
  if (read != format.frames) {
    throw Error(fmt::format("{}: truncated: the header promises {} frames, {} could be read",
                            path.string(), format.frames, read));
  }
  if (info) *info = AudioInfo{format.samplerate, format.channels, format.frames};
  std::vector<float> mono(static_cast<std::size_t>(format.frames));
  for (std::size_t i = 0; i < mono.size(); ++i) {
    double sum = 0.0;
    for (int c = 0; c < format.channels; ++c) sum += interleaved[i * format.channels + c];
    mono[i] = static_cast<float>(sum / format.channels);
  }
  return resample(mono, format.samplerate, sample_rate);
}

/// Writes mono samples as 16-bit PCM WAV, atomically (kokoro::encode_wav);
/// throws kokoro::Error when it cannot.
inline void save_wav(const std::filesystem::path& path, const std::vector<float>& samples,
                     int sample_rate) {
  write_file_atomically(path, encode_wav(samples, sample_rate));
}

}  // namespace kokoro::audio
