// A clip's learned alignment as a Praat TextGrid, laid out as the Montreal
// Forced Aligner lays its grids out: a "words" tier and a "phones" tier, each
// covering the clip from 0 to its length, silences as empty labels.
//
// The aligner gives every token, the word boundaries and punctuation marks
// included, at least one mel frame. A pause token (or a run of them) that
// holds at least `min_silence_frames` frames becomes a silence; a shorter one
// is no silence at all (a word boundary inside fluent speech): its frames go
// half to the phone before it and half to the phone after. The clip's first
// and last pauses always become silences when they hold any frame (the
// leading and trailing silence every recording has).
//
// Frame f starts at f * hop_length / sample_rate seconds, the inverse of
// time_to_frame(), so that reading the grid back (frame_durations) gives the
// same frames; the last interval ends at the clip's length (or at its last
// frame's end, when that is later).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kokoro/tts/align/textgrid.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

struct AlignedClip {
  std::vector<std::string> tokens;      ///< the phoneme tokens, pauses included
  std::vector<std::int64_t> durations;  ///< frames per token
  /// The words the phone groups (split at word boundaries) are labelled with;
  /// when their count differs from the groups', a group is labelled with
  /// its phones joined by spaces.
  std::vector<std::string> words;
  double seconds = 0.0;  ///< the clip's length (the grid's xmax)
  int sample_rate = 22050;
  int hop_length = 256;
};

struct AlignmentTextGridOptions {
  std::int64_t min_silence_frames = 3;  ///< a shorter pause inside the clip is no silence
  /// Whether a token is a pause (a word boundary or punctuation).
  bool (*is_pause)(std::string_view) = nullptr;
  /// Whether a token ends a word (the word boundary).
  bool (*is_word_boundary)(std::string_view) = nullptr;
};

namespace detail::alignment_textgrid {

struct Span {
  std::int64_t start = 0, end = 0;  ///< frames
  std::string label;                ///< "" for silence
  bool pause = false;
  std::int64_t word = -1;  ///< the phone's word group
};

}  // namespace detail::alignment_textgrid

/// The grid of `clip` (see the header). Throws kokoro::Error when tokens and
/// durations differ in number or a duration is negative.
inline TextGrid alignment_textgrid(const AlignedClip& clip,
                                   const AlignmentTextGridOptions& options) {
  using detail::alignment_textgrid::Span;
  if (clip.tokens.size() != clip.durations.size()) {
    throw Error(fmt::format("alignment_textgrid: {} tokens but {} durations", clip.tokens.size(),
                            clip.durations.size()));
  }
  auto pause = [&](std::string_view t) { return options.is_pause && options.is_pause(t); };
  auto boundary = [&](std::string_view t) {
    return options.is_word_boundary && options.is_word_boundary(t);
  };
  // Spans of phones, and of pauses merged with their neighbouring pauses.
  std::vector<Span> spans;
  std::int64_t frame = 0, word = 0;
  bool word_has_phone = false;
  for (std::size_t i = 0; i < clip.tokens.size(); ++i) {
    const auto d = clip.durations[i];
    if (d < 0) throw Error(fmt::format("alignment_textgrid: token {} has {} frames", i, d));
    const auto& token = clip.tokens[i];
    if (boundary(token) && word_has_phone) {
      ++word;
      word_has_phone = false;
    }
    if (pause(token)) {
      if (!spans.empty() && spans.back().pause) {
        spans.back().end += d;
      } else {
        spans.push_back({.start = frame, .end = frame + d, .label = "", .pause = true});
      }
    } else {
      spans.push_back({.start = frame, .end = frame + d, .label = token, .word = word});
      word_has_phone = true;
    }
    frame += d;
  }
  const std::int64_t words_found = word_has_phone ? word + 1 : word;
  // Short pauses inside the clip are given to their neighbours.
  std::vector<Span> kept;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    auto s = spans[i];
    const bool inner = !kept.empty() && i + 1 < spans.size();
    if (s.pause && inner && s.end - s.start < options.min_silence_frames) {
      const auto middle = s.start + (s.end - s.start) / 2;
      kept.back().end = middle;
      spans[i + 1].start = middle;
      continue;
    }
    if (s.end > s.start) kept.push_back(s);  // a span of no frame is no interval
  }
  const double frame_seconds =
      static_cast<double>(clip.hop_length) / static_cast<double>(clip.sample_rate);
  // The mel has a frame more than the audio has hops, so its last frame may
  // start where the audio ends: the grid then reaches that frame's end.
  const double xmax = std::max(clip.seconds, static_cast<double>(frame) * frame_seconds);
  auto at = [&](std::int64_t f, bool last) {
    return last ? xmax : static_cast<double>(f) * frame_seconds;
  };
  TextGrid grid;
  grid.xmin = 0.0;
  grid.xmax = xmax;
  Tier phones{.name = "phones", .intervals = {}};
  for (std::size_t i = 0; i < kept.size(); ++i) {
    phones.intervals.push_back({.start = at(kept[i].start, false),
                                .end = at(kept[i].end, i + 1 == kept.size()),
                                .label = kept[i].label});
  }
  // Words: the phones of each group, silences between them.
  std::vector<std::string> labels(static_cast<std::size_t>(words_found));
  if (static_cast<std::int64_t>(clip.words.size()) == words_found) {
    labels = clip.words;
  } else {
    for (const auto& s : kept) {
      if (s.word < 0) continue;
      auto& l = labels[static_cast<std::size_t>(s.word)];
      l += (l.empty() ? "" : " ") + s.label;
    }
  }
  Tier words{.name = "words", .intervals = {}};
  double cursor = 0.0;
  for (std::size_t i = 0; i < kept.size();) {
    if (kept[i].pause) {
      ++i;
      continue;
    }
    const auto w = kept[i].word;
    std::size_t j = i;
    while (j + 1 < kept.size() && !kept[j + 1].pause && kept[j + 1].word == w) ++j;
    const double start = phones.intervals[i].start, end = phones.intervals[j].end;
    if (start > cursor) words.intervals.push_back({.start = cursor, .end = start, .label = ""});
    words.intervals.push_back(
        {.start = start, .end = end, .label = labels[static_cast<std::size_t>(w)]});
    cursor = end;
    i = j + 1;
  }
  if (cursor < xmax) words.intervals.push_back({.start = cursor, .end = xmax, .label = ""});
  grid.tiers = {std::move(words), std::move(phones)};
  return grid;
}

}  // namespace kokoro::tts
