// The pitch (F0) of speech frame by frame, and how two pitch tracks differ.
//
// Tracking is aubio's YIN (libaubio, Debian's libaubio-dev), chosen over
// writing a tracker here: a well-kept C library, the algorithm librosa.yin
// and pYIN build on. Frames line up with the model's mel frames: frame t is
// centred on sample t * hop_length, and a clip of N samples gives
// 1 + N / hop_length of them. A frame is voiced when YIN found a period in
// [fmin, fmax] with confidence (1 - the normalised difference's dip) at least
// `voicing_threshold` and the frame is louder than `silence_db`.
//
// Errors between a synthesis and its recording are taken over frame pairs of
// a warping path (the MCD's DTW path, so that a pitch is compared with the
// pitch of the same sound): log-F0 RMSE over pairs voiced in both (natural
// log, as ESPnet reports it; x 1200 / ln 2 for cents), and the voicing
// decision error, the share of pairs whose voicing differs.
#pragma once

#include <aubio/aubio.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "kokoro/tts/eval/cepstral_distance.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts::eval {

struct PitchOptions {
  int sample_rate = 22050;
  int hop_length = 256;     ///< the mel's hop: one pitch per mel frame
  int window = 1024;        ///< YIN's analysis window (at least two periods of fmin)
  double fmin = 60.0;       ///< Hz
  double fmax = 500.0;      ///< Hz
  double tolerance = 0.15;  ///< YIN's threshold on the normalised difference
  double voicing_threshold = 0.8;
  double silence_db = -50.0;  ///< quieter frames are unvoiced
};

struct PitchTrack {
  std::vector<double> hz;  ///< per frame, 0 where unvoiced
  std::int64_t voiced() const {
    return std::count_if(hz.begin(), hz.end(), [](double f) { return f > 0; });
  }
};

/// The pitch of `samples` (mono, options.sample_rate), one value per frame.
inline PitchTrack track_pitch(const std::vector<float>& samples, const PitchOptions& options = {}) {
  const auto hop = static_cast<std::int64_t>(options.hop_length);
  const auto window = static_cast<std::int64_t>(options.window);
  if (hop <= 0 || window < hop || options.sample_rate <= 0 || !(options.fmin > 0) ||
      !(options.fmax > options.fmin)) {
    throw Error(fmt::format(
        "track_pitch: needs hop_length > 0, window >= hop_length, sample_rate > 0 and "
        "0 < fmin < fmax; got hop {}, window {}, rate {}, fmin {}, fmax {}",
        hop, window, options.sample_rate, options.fmin, options.fmax));
  }
  struct Deleter {
    void operator()(aubio_pitch_t* p) const { del_aubio_pitch(p); }
    void operator()(fvec_t* v) const { del_fvec(v); }
  };
  std::unique_ptr<aubio_pitch_t, Deleter> yin(
      new_aubio_pitch("yin", static_cast<uint_t>(window), static_cast<uint_t>(hop),
                      static_cast<uint_t>(options.sample_rate)));
  if (!yin) throw Error("track_pitch: aubio could not create its YIN tracker");
  aubio_pitch_set_unit(yin.get(), "Hz");
  aubio_pitch_set_tolerance(yin.get(), static_cast<smpl_t>(options.tolerance));
  aubio_pitch_set_silence(yin.get(), static_cast<smpl_t>(options.silence_db));
  std::unique_ptr<fvec_t, Deleter> in(new_fvec(static_cast<uint_t>(hop)));
  std::unique_ptr<fvec_t, Deleter> out(new_fvec(1));

  // aubio's block k analyses the `window` samples ending at (k + 1) * hop of
  // what it was fed; leading zeros (and dropping the first blocks) centre
  // block `skip + t` on sample t * hop of the clip.
  const std::int64_t skip = std::max<std::int64_t>(0, (window / 2 - hop + hop - 1) / hop);
  const std::int64_t lead = hop - window / 2 + skip * hop;
  const auto n = static_cast<std::int64_t>(samples.size());
  const std::int64_t frames = 1 + n / hop;
  PitchTrack track;
  track.hz.reserve(static_cast<std::size_t>(frames));
  for (std::int64_t block = 0; block < frames + skip; ++block) {
    for (std::int64_t k = 0; k < hop; ++k) {
      const auto source = block * hop + k - lead;
      in->data[k] =
          source >= 0 && source < n ? static_cast<smpl_t>(samples[static_cast<std::size_t>(source)])
                                    : smpl_t{0};
    }
    aubio_pitch_do(yin.get(), in.get(), out.get());
    if (block < skip) continue;
    const double hz = out->data[0];
    const double confidence = aubio_pitch_get_confidence(yin.get());
    const bool voiced = hz >= options.fmin && hz <= options.fmax &&
                        confidence >= options.voicing_threshold;
    track.hz.push_back(voiced ? hz : 0.0);
  }
  return track;
}

struct PitchErrors {
  double log_f0_rmse = 0.0;      ///< natural-log units, over pairs voiced in both (NaN: none)
  double voicing_error = 0.0;    ///< share of pairs whose voicing differs
  std::int64_t voiced_pairs = 0;  ///< pairs voiced in both
};

/// How `synthesis` differs from `recording` along `path` (pairs of frame
/// indices, synthesis first), indices past a track's end read as unvoiced.
inline PitchErrors pitch_errors(const PitchTrack& synthesis, const PitchTrack& recording,
                                const WarpingPath& path) {
  auto at = [](const PitchTrack& t, std::int64_t i) {
    return i >= 0 && i < static_cast<std::int64_t>(t.hz.size()) ? t.hz[static_cast<std::size_t>(i)]
                                                                : 0.0;
  };
  PitchErrors out;
  double squared = 0.0;
  std::int64_t differ = 0;
  for (const auto& [i, j] : path) {
    const double a = at(synthesis, i), b = at(recording, j);
    if ((a > 0) != (b > 0)) ++differ;
    if (a > 0 && b > 0) {
      const double d = std::log(a) - std::log(b);
      squared += d * d;
      ++out.voiced_pairs;
    }
  }
  out.log_f0_rmse = out.voiced_pairs > 0 ? std::sqrt(squared / static_cast<double>(out.voiced_pairs))
                                         : std::nan("");
  out.voicing_error =
      path.empty() ? 0.0 : static_cast<double>(differ) / static_cast<double>(path.size());
  return out;
}

}  // namespace kokoro::tts::eval
