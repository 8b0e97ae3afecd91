// A clip's learned alignment as a Praat TextGrid, laid out as the Montreal
// Forced Aligner lays its grids out: a "words" tier and a "phones" tier, each
// covering the clip from 0 to its length, silences as empty labels.
//
// The aligner gives every token, the word boundaries and punctuation marks
// included, at least one mel frame, whether the speaker paused there or not.
// Where the clip's loudness is known (AlignedClip::silent, from its mel), a
// pause token (or a run of them) becomes a silence only where the recording
// is silent: the longest run of quiet frames among its own, when it holds at
// least `min_silence_frames` (at the clip's ends, any); its other frames go
// to the phones beside it. A pause with no such run is no silence at all (a
// word boundary inside fluent speech): its frames go half to the phone before
// it and half to the phone after (at the clip's ends, to the one phone beside
// it). A silence then takes in the quiet frames the phones beside it took
// (each keeps a frame), and quiet frames a phone took at the clip's start or
// end are a leading or trailing silence. Without the loudness, a pause that
// holds at least `min_silence_frames` frames becomes a silence and a shorter
// one is split so; the clip's first and last pauses become silences when
// they hold any frame.
//
// Frame f starts at f * hop_length / sample_rate seconds, the inverse of
// time_to_frame(), so that reading the grid back (frame_durations) gives the
// same frames; the last interval ends at the clip's length (or at its last
// frame's end, when that is later).
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cmath>
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
  /// The words the phone groups (split at word boundaries) are labelled with,
  /// one per group (EnglishPhonemeProcessor::transcribe gives them); when
  /// their count differs from the groups', a group is labelled with its
  /// phones joined by spaces.
  std::vector<std::string> words;
  /// Per mel frame, whether the recording is quiet there (silent_frames()
  /// of its mel); empty (or shorter than the frames): unknown.
  std::vector<bool> silent;
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

/// Per frame of `mel` [frames, n_mels] (the log of |STFT|^mel_power in mel
/// bands, audio/mel.hpp), whether it is quiet: its loudest band more than
/// `below_db` under the loudest band of the clip's loudest frame.
inline std::vector<bool> silent_frames(const torch::Tensor& mel, double below_db = 40.0,
                                       double mel_power = 1.0) {
  const auto level = std::get<0>(mel.to(torch::kCPU, torch::kFloat).max(1)).contiguous();
  // A level in dB is 20 log10 of a magnitude: mel_power times that of the band.
  const double threshold =
      level.max().item<double>() - below_db * mel_power * std::log(10.0) / 20.0;
  const auto* p = level.data_ptr<float>();
  std::vector<bool> out(static_cast<std::size_t>(level.numel()));
  for (std::size_t f = 0; f < out.size(); ++f) out[f] = p[f] < threshold;
  return out;
}

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
  // Pauses become silences, or give their frames to their neighbours.
  const bool loudness = static_cast<std::int64_t>(clip.silent.size()) >= frame;
  std::vector<Span> kept;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    auto s = spans[i];
    const bool first = kept.empty(), last = i + 1 == spans.size();
    if (!s.pause || s.end == s.start || (first && last)) {
      if (s.end > s.start) kept.push_back(s);  // a span of no frame is no interval
      continue;
    }
    std::int64_t quiet_start = s.start, quiet_end = s.start;  // the silence, if any
    if (loudness) {
      for (std::int64_t f = s.start; f < s.end;) {
        if (!clip.silent[static_cast<std::size_t>(f)]) {
          ++f;
          continue;
        }
        std::int64_t g = f;
        while (g < s.end && clip.silent[static_cast<std::size_t>(g)]) ++g;
        if (g - f > quiet_end - quiet_start) quiet_start = f, quiet_end = g;
        f = g;
      }
      const std::int64_t needed = first || last ? 1 : options.min_silence_frames;
      if (quiet_end - quiet_start < needed) quiet_end = quiet_start;  // no silence
    } else if (first || last || s.end - s.start >= options.min_silence_frames) {
      quiet_start = s.start, quiet_end = s.end;
    }
    if (quiet_end > quiet_start) {
      if (first) quiet_start = s.start;
      if (last) quiet_end = s.end;
      if (!first) kept.back().end = quiet_start;
      if (!last) spans[i + 1].start = quiet_end;
      kept.push_back({.start = quiet_start, .end = quiet_end, .label = "", .pause = true});
    } else if (first) {
      spans[i + 1].start = s.start;
    } else if (last) {
      kept.back().end = s.end;
    } else {
      const auto middle = s.start + (s.end - s.start) / 2;
      kept.back().end = middle;
      spans[i + 1].start = middle;
    }
  }
  if (loudness) {
    const auto quiet = [&](std::int64_t f) { return clip.silent[static_cast<std::size_t>(f)]; };
    // The tokens hold no pause before the first word (nor after the last, in
    // a text without a final mark): the quiet frames at the clip's ends that
    // a phone took are its leading (trailing) silence.
    if (!kept.empty() && !kept.front().pause && quiet(kept.front().start) &&
        kept.front().end - kept.front().start > 1) {
      kept.insert(
          kept.begin(),
          Span{.start = kept.front().start, .end = kept.front().start, .label = "", .pause = true});
    }
    if (!kept.empty() && !kept.back().pause && quiet(kept.back().end - 1) &&
        kept.back().end - kept.back().start > 1) {
      kept.push_back(
          Span{.start = kept.back().end, .end = kept.back().end, .label = "", .pause = true});
    }
    // A silence takes in the quiet frames the phones beside it took (each
    // phone keeps a frame): the aligner gives a phone its fading tail or
    // its quiet run-up as readily as the pause.
    for (std::size_t i = 0; i < kept.size(); ++i) {
      if (!kept[i].pause) continue;
      if (i > 0 && !kept[i - 1].pause) {
        auto& before = kept[i - 1];
        while (before.end - 1 > before.start && quiet(before.end - 1)) --before.end;
        kept[i].start = before.end;
      }
      if (i + 1 < kept.size() && !kept[i + 1].pause) {
        auto& after = kept[i + 1];
        while (after.start + 1 < after.end && quiet(after.start)) ++after.start;
        kept[i].end = after.start;
      }
    }
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
