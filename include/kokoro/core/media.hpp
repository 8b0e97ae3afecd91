// Media a logger may render: images (mel spectrograms), audio clips,
// histograms (weights, gradients) and texts. Plain data like the other contexts, so a
// logger needs no libtorch to use them; kokoro/log/media.hpp builds them from
// tensors (core/histogram.hpp for histograms). The Trainer hands a MediaContext to loggers that
// have `on_media` every `logging.media_every_epochs` epochs, after validation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kokoro {

/// An 8-bit image, row-major, `channels` interleaved values per pixel
/// (1: grey, 3: RGB, 4: RGBA), first row at the top.
struct Image {
  std::string tag;
  int height = 0;
  int width = 0;
  int channels = 1;
  std::vector<std::uint8_t> pixels;  ///< height * width * channels values
};

/// A mono clip with samples in [-1, 1].
struct AudioClip {
  std::string tag;
  int sample_rate = 22050;
  std::vector<float> samples;
};

/// A histogram in TensorBoard's form: bucket i counts values in
/// [bucket_limits[i-1], bucket_limits[i]), the first bucket starting at `min`
/// and the last one closed at `max`.
struct Histogram {
  std::string tag;
  double min = 0.0;
  double max = 0.0;
  double count = 0.0;
  double sum = 0.0;
  double sum_squares = 0.0;
  std::vector<double> bucket_limits;
  std::vector<double> bucket_counts;
};

/// A short text (a sample's transcript, a note).
struct Text {
  std::string tag;
  std::string text;
};

struct Media {
  std::vector<Image> images;
  std::vector<AudioClip> audio;
  std::vector<Histogram> histograms;
  std::vector<Text> texts;

  bool empty() const {
    return images.empty() && audio.empty() && histograms.empty() && texts.empty();
  }
};

/// What a logger's optional `on_media` hook receives.
struct MediaContext {
  std::int64_t epoch = 0;  ///< 0-based
  std::int64_t global_step = 0;
  const Media& media;
};

}  // namespace kokoro
