// WAV encoding of an AudioClip (RIFF, 16-bit PCM, mono), for TensorBoard's
// audio plugin and for writing synthesised samples to disk.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "kokoro/core/media.hpp"

namespace kokoro {

namespace detail::wav {
template <class T>
void put_le(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86-64 and ARM64 are little-endian
  out.append(bytes, sizeof(T));
}
}  // namespace detail::wav

/// The WAV file for `clip`; samples outside [-1, 1] are clipped, NaN is silence.
inline std::string encode_wav(const AudioClip& clip) {
  using detail::wav::put_le;
  const auto data_bytes = static_cast<std::uint32_t>(clip.samples.size() * 2);
  std::string out;
  out.reserve(44 + data_bytes);
  out += "RIFF";
  put_le<std::uint32_t>(out, 36 + data_bytes);
  out += "WAVEfmt ";
  put_le<std::uint32_t>(out, 16);  // fmt chunk size
  put_le<std::uint16_t>(out, 1);   // PCM
  put_le<std::uint16_t>(out, 1);   // mono
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(clip.sample_rate));
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(clip.sample_rate) * 2);  // bytes/s
  put_le<std::uint16_t>(out, 2);                                                 // block align
  put_le<std::uint16_t>(out, 16);                                                // bits
  out += "data";
  put_le<std::uint32_t>(out, data_bytes);
  for (const float s : clip.samples) {
    const float clipped = std::isnan(s) ? 0.0f : std::clamp(s, -1.0f, 1.0f);
    put_le<std::int16_t>(out, static_cast<std::int16_t>(std::lrint(clipped * 32767.0f)));
  }
  return out;
}

}  // namespace kokoro
