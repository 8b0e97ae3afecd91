// The LJSpeech corpus layout: <root>/metadata.csv with lines
// `id|transcription|normalized transcription` (UTF-8, no header, no CSV
// quoting: a transcription may contain '"'), audio in <root>/wavs/<id>.wav
// (or another file libsndfile reads: <id>.flac, .ogg, .aiff; the .wav first)
// and, from the Montreal Forced Aligner, <root>/<alignments>/<id>.TextGrid.
// A malformed line is reported with file and line and left out; the rest of
// the corpus is read.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// One clip of the corpus.
struct Utterance {
  std::string id;
  std::string text;        ///< the transcription as written
  std::string normalized;  ///< the normalised transcription (the text when the column is empty)
  std::filesystem::path audio{};
  std::filesystem::path alignment{};  ///< the TextGrid path (it may not exist)
  std::int64_t line = 0;              ///< line in metadata.csv
};

struct Metadata {
  std::vector<Utterance> utterances;
  std::vector<std::string> problems;  ///< "<file>:<line>: <what is wrong>", one per skipped line
};

/// The clip's audio file in `wavs_dir`: <id>.wav, else the first of <id>.flac,
/// .ogg, .aiff that exists; <id>.wav when none does.
inline std::filesystem::path clip_audio_file(const std::filesystem::path& wavs_dir,
                                             const std::string& id) {
  const auto wav = wavs_dir / (id + ".wav");
  if (std::filesystem::exists(wav)) return wav;
  for (const char* extension : {".flac", ".ogg", ".aiff", ".WAV", ".FLAC"}) {
    auto other = wavs_dir / (id + extension);
    if (std::filesystem::exists(other)) return other;
  }
  return wav;
}

/// Reads `metadata` (an LJSpeech metadata.csv). Audio paths are
/// `<wavs_dir>/<id>.wav` (or clip_audio_file()'s other kinds), alignments `<alignments_dir>/<id>.TextGrid`. Lines
/// with a wrong field count, an empty id or text, a repeated id or a missing
/// audio file are reported in `problems` and left out. Throws kokoro::Error
/// when the file itself cannot be read.
inline Metadata read_ljspeech_metadata(const std::filesystem::path& metadata,
                                       const std::filesystem::path& wavs_dir,
                                       const std::filesystem::path& alignments_dir) {
  std::ifstream in(metadata, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open the corpus metadata", metadata.string()));
  Metadata out;
  std::vector<std::string> seen;
  std::string line;
  std::int64_t number = 0;
  auto problem = [&](std::string what) {
    out.problems.push_back(fmt::format("{}:{}: {}", metadata.string(), number, what));
  };
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();                // CRLF files
    if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
    if (line.find_first_not_of(" \t") == std::string::npos) continue;         // blank lines
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (std::size_t bar; (bar = line.find('|', start)) != std::string::npos; start = bar + 1) {
      fields.push_back(line.substr(start, bar - start));
    }
    fields.push_back(line.substr(start));
    if (fields.size() != 2 && fields.size() != 3) {
      problem(fmt::format("expected 3 fields `id|text|normalized text` separated by '|', found {}",
                          fields.size()));
      continue;
    }
    Utterance u;
    u.id = fields[0];
    u.text = fields[1];
    u.normalized = fields.size() == 3 ? fields[2] : "";
    if (u.normalized.find_first_not_of(" \t") == std::string::npos) u.normalized = u.text;
    u.line = number;
    if (u.id.empty() || u.id.find_first_of("/\\") != std::string::npos) {
      problem(fmt::format("the id '{}' is empty or holds a path separator", u.id));
      continue;
    }
    if (u.text.find_first_not_of(" \t") == std::string::npos) {
      problem(fmt::format("clip {} has no text", u.id));
      continue;
    }
    if (std::find(seen.begin(), seen.end(), u.id) != seen.end()) {
      problem(fmt::format("clip {} appears twice; the first is kept", u.id));
      continue;
    }
    u.audio = clip_audio_file(wavs_dir, u.id);
    u.alignment = alignments_dir / (u.id + ".TextGrid");
    if (!std::filesystem::exists(u.audio)) {
      problem(fmt::format("clip {}: {} does not exist", u.id, u.audio.string()));
      continue;
    }
    seen.push_back(u.id);
    out.utterances.push_back(std::move(u));
  }
  return out;
}

namespace detail {
/// FNV-1a, 64-bit: a stable hash (std::hash may differ between builds).
inline std::uint64_t fnv1a(std::string_view text, std::uint64_t h = 0xcbf29ce484222325ull) {
  for (const unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}
}  // namespace detail

/// Splits clips into (train, validation): the validation share is the
/// round(share * n) clips with the smallest hash of (seed, id), at least one
/// when share > 0 and there are two clips or more. Depends only on the ids and
/// the seed, not on the order of the file, and a clip stays on its side when
/// others are added.
inline std::pair<std::vector<Utterance>, std::vector<Utterance>> split_train_validation(
    std::vector<Utterance> clips, double validation_share, std::uint64_t seed) {
  std::vector<std::pair<std::uint64_t, std::size_t>> order;
  for (std::size_t i = 0; i < clips.size(); ++i) {
    order.emplace_back(detail::fnv1a(clips[i].id, detail::fnv1a(std::to_string(seed))), i);
  }
  std::sort(order.begin(), order.end());
  auto n_valid = static_cast<std::size_t>(std::llround(validation_share * clips.size()));
  if (validation_share > 0 && n_valid == 0 && clips.size() >= 2) n_valid = 1;
  n_valid = std::min(n_valid, clips.size());
  std::vector<bool> is_valid(clips.size(), false);
  for (std::size_t i = 0; i < n_valid; ++i) is_valid[order[i].second] = true;
  std::vector<Utterance> train, valid;
  for (std::size_t i = 0; i < clips.size(); ++i) {
    (is_valid[i] ? valid : train).push_back(std::move(clips[i]));
  }
  return {std::move(train), std::move(valid)};
}

}  // namespace kokoro::tts
