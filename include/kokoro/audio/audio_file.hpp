// Audio input for the TTS pipeline: any file libsndfile reads (WAV, FLAC,
// OGG, ...) as mono float samples at the configured rate. Several channels
// are averaged; another sample rate is converted with libsoxr. A file that
// is empty, truncated or unreadable throws kokoro::Error naming the file, so
// the caller can skip the clip and count it.
//
// A file's header is not trusted with the memory: the samples are read in
// blocks as they come, up to a length no clip reaches (kMaxAudioSeconds), so
// a header that claims days of audio, or a small compressed file that
// decodes to hours, is refused instead of exhausting the memory
// (fuzz/audio_file.cpp found the first).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <sndfile.h>
#include <soxr.h>

#include <fmt/format.h>

#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/wav.hpp"

namespace kokoro::audio {

/// Converts `input` from `from_rate` to `to_rate` Hz with libsoxr at its
/// high quality (linear phase, a pass band to 91% of the lower Nyquist
/// frequency, 20-bit stop band), delay compensated, so the output lines up
/// with the input. Output length: round(n * to / from).
inline std::vector<float> resample(const std::vector<float>& input, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) {
    throw Error(
        fmt::format("resample: sample rates must be positive, got {} and {}", from_rate, to_rate));
  }
  if (from_rate == to_rate || input.empty()) return input;
  const double ratio = static_cast<double>(to_rate) / from_rate;
  std::vector<float> out(static_cast<std::size_t>(std::ceil(input.size() * ratio)) + 1);
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  // One thread: clips are resampled on the loader's threads already.
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  std::size_t produced = 0;
  const soxr_error_t error =
      soxr_oneshot(from_rate, to_rate, 1, input.data(), input.size(), nullptr, out.data(),
                   out.size(), &produced, &io, &quality, &runtime);
  if (error) {
    throw Error(fmt::format("resample {} Hz -> {} Hz: libsoxr: {}", from_rate, to_rate, error));
  }
  out.resize(produced);
  return out;
}

/// The longest audio load_audio() reads by default: far beyond any clip a
/// TTS corpus holds (LJSpeech's longest is 10 s, LibriTTS's 35 s).
inline constexpr double kMaxAudioSeconds = 600.0;
/// The sample rates load_audio() takes: telephone speech to 8x studio rates.
inline constexpr int kMinSampleRate = 1000;
inline constexpr int kMaxSampleRate = 384000;

/// What a file held before conversion.
struct AudioInfo {
  int sample_rate = 0;
  int channels = 0;
  std::int64_t frames = 0;
};

/// The file's samples as mono float in [-1, 1] at `sample_rate` Hz. Throws
/// kokoro::Error "<path>: <reason>" for a file that cannot be used: not
/// audio, empty, truncated (fewer samples than its header promises), a
/// sample rate outside [kMinSampleRate, kMaxSampleRate], or longer than
/// `max_seconds`.
inline std::vector<float> load_audio(const std::filesystem::path& path, int sample_rate,
                                     AudioInfo* info = nullptr,
                                     double max_seconds = kMaxAudioSeconds) {
  SF_INFO format{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &format);
  if (!file) {
    throw Error(fmt::format("{}: cannot read audio: {}", path.string(), sf_strerror(nullptr)));
  }
  struct Closer {
    SNDFILE* file;
    ~Closer() { sf_close(file); }
  } closer{file};
  if (format.frames <= 0 || format.channels <= 0) {
    throw Error(fmt::format("{}: the file holds no audio", path.string()));
  }
  if (format.samplerate < kMinSampleRate || format.samplerate > kMaxSampleRate) {
    throw Error(fmt::format("{}: a sample rate of {} Hz (expected {} to {})", path.string(),
                            format.samplerate, kMinSampleRate, kMaxSampleRate));
  }
  const auto max_frames =
      static_cast<sf_count_t>(std::floor(max_seconds * static_cast<double>(format.samplerate)));
  if (format.frames > max_frames) {
    throw Error(fmt::format("{}: {:.1f} s of audio, over the {:.0f} s a clip may last; split it",
                            path.string(), static_cast<double>(format.frames) / format.samplerate,
                            max_seconds));
  }
  // Blocks of at most 64k samples, mixed to mono as they come: the memory
  // follows the samples the file really holds, not what its header claims.
  const sf_count_t kBlockFrames = std::max<sf_count_t>(1, 65536 / format.channels);
  std::vector<float> block(static_cast<std::size_t>(kBlockFrames * format.channels));
  std::vector<float> mono;
  sf_count_t read = 0;
  while (read < format.frames) {
    const sf_count_t want = std::min(kBlockFrames, format.frames - read);
    const sf_count_t got = sf_readf_float(file, block.data(), want);
    if (got <= 0) break;
    for (sf_count_t i = 0; i < got; ++i) {
      double sum = 0.0;
      for (int c = 0; c < format.channels; ++c) {
        sum += block[static_cast<std::size_t>(i * format.channels + c)];
      }
      mono.push_back(static_cast<float>(sum / format.channels));
    }
    read += got;
  }
  if (read != format.frames) {
    throw Error(fmt::format("{}: truncated: the header promises {} frames, {} could be read",
                            path.string(), format.frames, read));
  }
  if (info)
    *info = AudioInfo{
        .sample_rate = format.samplerate, .channels = format.channels, .frames = format.frames};
  return resample(mono, format.samplerate, sample_rate);
}

/// Writes mono samples as 16-bit PCM WAV, atomically (kokoro::encode_wav);
/// throws kokoro::Error when it cannot.
inline void save_wav(const std::filesystem::path& path, const std::vector<float>& samples,
                     int sample_rate) {
  write_file_atomically(path, encode_wav(samples, sample_rate));
}

}  // namespace kokoro::audio
