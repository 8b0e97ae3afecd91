// WAV encoding (RIFF, 16-bit PCM, mono): the one WAV writer, for TensorBoard's
// audio plugin, the samples written to disk and the demo corpus. Written by
// hand (20 lines) because the framework's loggers must not need libsndfile,
// which only kokoro::tts links; reading WAV (and every other format) goes
// through libsndfile (audio/audio_file.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "kokoro/util/endian.hpp"

namespace kokoro {

/// The WAV file for `samples` at `sample_rate` Hz; samples outside [-1, 1]
/// are clipped, NaN is silence.
inline std::string encode_wav(std::span<const float> samples, int sample_rate) {
  const auto data_bytes = static_cast<std::uint32_t>(samples.size() * 2);
  std::string out;
  out.reserve(44 + data_bytes);
  out += "RIFF";
  append_le<std::uint32_t>(out, 36 + data_bytes);
  out += "WAVEfmt ";
  append_le<std::uint32_t>(out, 16);  // fmt chunk size
  append_le<std::uint16_t>(out, 1);   // PCM
  append_le<std::uint16_t>(out, 1);   // mono
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(sample_rate));
  append_le<std::uint32_t>(out, static_cast<std::uint32_t>(sample_rate) * 2);  // bytes/s
  append_le<std::uint16_t>(out, 2);                                            // block align
  append_le<std::uint16_t>(out, 16);                                           // bits
  out += "data";
  append_le<std::uint32_t>(out, data_bytes);
  for (const float s : samples) {
    const float clipped = std::isnan(s) ? 0.0f : std::clamp(s, -1.0f, 1.0f);
    append_le<std::int16_t>(out, static_cast<std::int16_t>(std::lrint(clipped * 32767.0f)));
  }
  return out;
}

}  // namespace kokoro
