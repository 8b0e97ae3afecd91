// The feature cache: each clip's log-mel, phoneme ids and durations,
// computed once and stored as one file per clip under
// <cache_dir>/<settings key>/<id>.feat. The settings key is a hash of
// everything that shapes the features (the audio section, the phoneme
// vocabulary and voice, the alignment policies), so changing any of them
// starts a fresh folder. Each file also records a hash of its sources
// (audio and TextGrid path, size and modification time, the text): a file
// whose sources changed is recomputed.
//
// File layout (little-endian): "KKFEAT01", u64 source hash, i64 frames,
// i64 n_mels, i64 tokens, u32 flags, f32 mel[frames * n_mels],
// i64 ids[tokens], i64 durations[tokens], u32 CRC-32 of all the bytes before.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include <fmt/format.h>

#include "kokoro/tts/data/batch.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/crc32.hpp"
#include "kokoro/util/endian.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// What a cache file says about itself, read without the features.
struct CacheHeader {
  std::uint64_t source_hash = 0;
  std::int64_t frames = 0;
  std::int64_t n_mels = 0;
  std::int64_t tokens = 0;
  std::uint32_t flags = 0;
};

/// Flags stored with a clip.
enum CacheFlags : std::uint32_t {
  kUniformDurations = 1u << 0,  ///< durations spread evenly (no usable alignment)
  kTruncated = 1u << 1,         ///< the clip was cut to audio.max_frames
  kProjected = 1u << 2,         ///< durations from a TextGrid (scores in the upper bits)
};

/// A projected clip's scores, kept in its flags: the match score (0..1) in
/// bits 16-31 at 1/65535 steps, the share of its phones paired with the very
/// same sound in bits 8-15 at 1/255 steps. Bits 3-7 are free for flags.
inline std::uint32_t with_match_score(std::uint32_t flags, double score) {
  const auto q = static_cast<std::uint32_t>(std::lround(std::clamp(score, 0.0, 1.0) * 65535.0));
  return (flags & 0xFFFFu) | (q << 16);
}
inline double match_score_of(std::uint32_t flags) { return (flags >> 16) / 65535.0; }
inline std::uint32_t with_exact_share(std::uint32_t flags, double share) {
  const auto q = static_cast<std::uint32_t>(std::lround(std::clamp(share, 0.0, 1.0) * 255.0));
  return (flags & 0xFFFF00FFu) | (q << 8);
}
inline double exact_share_of(std::uint32_t flags) { return ((flags >> 8) & 0xFFu) / 255.0; }

namespace detail::feature_cache {
inline constexpr char kMagic[8] = {'K', 'K', 'F', 'E', 'A', 'T', '0', '1'};
inline constexpr std::size_t kHeaderBytes = 8 + 8 + 8 + 8 + 8 + 4;

}  // namespace detail::feature_cache

/// Writes one clip's features atomically (a crash leaves the old file or none).
inline void write_cache_file(const std::filesystem::path& path, const TtsItem& item,
                             std::uint64_t source_hash, std::uint32_t flags) {
  using namespace detail::feature_cache;
  const auto mel = item.mel.to(torch::kFloat).contiguous();
  const auto ids = item.phonemes.to(torch::kLong).contiguous();
  const auto durations = item.durations.to(torch::kLong).contiguous();
  std::string out(kMagic, 8);
  append_le(out, source_hash);
  append_le<std::int64_t>(out, mel.size(0));
  append_le<std::int64_t>(out, mel.size(1));
  append_le<std::int64_t>(out, ids.size(0));
  append_le(out, flags);
  out.append(reinterpret_cast<const char*>(mel.data_ptr<float>()), mel.numel() * sizeof(float));
  out.append(reinterpret_cast<const char*>(ids.data_ptr<std::int64_t>()), ids.numel() * 8);
  out.append(reinterpret_cast<const char*>(durations.data_ptr<std::int64_t>()),
             durations.numel() * 8);
  append_le(out, Crc32Ieee().update(out).value());
  write_file_atomically(path, out);
}

/// The header of a cache file, or nothing when it is missing, foreign or
/// of the wrong size for what the header says.
inline std::optional<CacheHeader> read_cache_header(const std::filesystem::path& path) {
  using namespace detail::feature_cache;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string head(kHeaderBytes, '\0');
  if (!in.read(head.data(), static_cast<std::streamsize>(head.size()))) return std::nullopt;
  if (std::memcmp(head.data(), kMagic, 8) != 0) return std::nullopt;
  std::size_t at = 8;
  CacheHeader h;
  h.source_hash = read_le<std::uint64_t>(head, at);
  h.frames = read_le<std::int64_t>(head, at);
  h.n_mels = read_le<std::int64_t>(head, at);
  h.tokens = read_le<std::int64_t>(head, at);
  h.flags = read_le<std::uint32_t>(head, at);
  if (h.frames < 0 || h.n_mels <= 0 || h.tokens < 0) return std::nullopt;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const auto expected = kHeaderBytes + static_cast<std::uintmax_t>(h.frames * h.n_mels) * 4 +
                        static_cast<std::uintmax_t>(h.tokens) * 16 + 4;
  if (ec || size != expected) return std::nullopt;
  return h;
}

/// The clip's features; throws kokoro::Error naming the file when it is
/// damaged (wrong size, wrong checksum).
inline TtsItem read_cache_file(const std::filesystem::path& path, std::string id) {
  using namespace detail::feature_cache;
  const auto header = read_cache_header(path);
  if (!header) throw Error(fmt::format("{}: not a complete feature-cache file", path.string()));
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t tail = bytes.size() - 4;
  const auto stored = read_le<std::uint32_t>(bytes, tail);
  if (Crc32Ieee().update(bytes.data(), bytes.size() - 4).value() != stored) {
    throw Error(fmt::format("{}: checksum mismatch (damaged feature-cache file)", path.string()));
  }
  const auto* p = bytes.data() + kHeaderBytes;
  TtsItem item;
  item.id = std::move(id);
  item.mel = torch::empty({header->frames, header->n_mels}, torch::kFloat);
  std::memcpy(item.mel.data_ptr<float>(), p, item.mel.numel() * 4);
  p += item.mel.numel() * 4;
  item.phonemes = torch::empty({header->tokens}, torch::kLong);
  std::memcpy(item.phonemes.data_ptr<std::int64_t>(), p, header->tokens * 8);
  p += header->tokens * 8;
  item.durations = torch::empty({header->tokens}, torch::kLong);
  std::memcpy(item.durations.data_ptr<std::int64_t>(), p, header->tokens * 8);
  item.durations_known = (header->flags & kUniformDurations) == 0;
  item.truncated = (header->flags & kTruncated) != 0;
  return item;
}

}  // namespace kokoro::tts
