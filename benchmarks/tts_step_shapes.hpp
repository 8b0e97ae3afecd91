// The small TTS model's benchmark batch and the FLOPs of its training step,
// shared by the CPU benchmark (bench_tts_model.cpp) and the GPU one
// (bench_gpu.cpp), so that both count the same work.
#pragma once

#include <kokoro/tts/data/batch.hpp>
#include <kokoro/tts/model/kokoro_model.hpp>

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <vector>

namespace kokoro::bench {

using namespace kokoro::tts;

constexpr std::int64_t kMels = 80;

// Eight clips with the demo corpus's spread: 300..620 frames (mean 465) and
// 39..80 phonemes (mean 60), about 7.75 frames a phoneme, in no length order
// (a batch padded to its longest clip, as an unbucketed loader makes it).
constexpr std::array<std::int64_t, 8> kClipFrames{300, 620, 410, 520, 365, 575, 455, 475};
constexpr std::array<std::int64_t, 8> kClipPhonemes{39, 80, 53, 67, 47, 74, 59, 61};

/// One clip: random phoneme ids (never <pad>), durations drawn around the
/// mean and summing exactly to `frames`, a log-mel in the range real speech
/// has (silence is log(1e-5) = -11.5).
inline TtsItem synthetic_clip(std::size_t index, std::int64_t vocab) {
  const auto frames = kClipFrames[index];
  const auto tokens = kClipPhonemes[index];
  const auto weights = torch::rand({tokens}, torch::kDouble) + 0.5;  // 0.5..1.5
  auto durations = (weights / weights.sum() * static_cast<double>(frames)).floor().to(torch::kLong);
  const auto remainder = frames - durations.sum().item<std::int64_t>();  // in [0, tokens)
  durations.slice(0, 0, remainder) += 1;
  TtsItem item;
  item.id = fmt::format("synthetic_{}", index);
  item.phonemes = torch::randint(1, vocab, {tokens}, torch::kLong);
  item.durations = durations;
  item.mel = (torch::randn({frames, kMels}) * 2.0 - 5.0).clamp_min(kSilenceLogMel);
  return item;
}

/// The eight clips, `copies` times over (a larger batch for a GPU).
inline TtsBatch synthetic_batch(std::int64_t vocab, int copies = 1) {
  std::vector<TtsItem> items;
  for (int c = 0; c < copies; ++c) {
    for (std::size_t i = 0; i < kClipFrames.size(); ++i) items.push_back(synthetic_clip(i, vocab));
  }
  return collate(items);
}

/// FLOPs of one training step counted from the shapes that execute (padded
/// to the batch's longest clip and phoneme string): 2 per multiply-add, the
/// matrix products and convolutions only (elementwise work is a few percent
/// at these widths). Backward costs twice the forward (the gradients of both
/// operands); checkpointing recomputes the Transformer blocks' forward once.
inline double step_flops(const KokoroModelOptions& o, const TtsBatch& batch, bool checkpointing) {
  const double b = static_cast<double>(batch.size());
  const double f = static_cast<double>(batch.mels.size(1));
  const double t = static_cast<double>(batch.phonemes.size(1));
  const double d = static_cast<double>(o.hidden_dim);
  const double ff = static_cast<double>(o.ff_dim);
  const double mels = static_cast<double>(o.n_mels);
  // Per block: projections (4 d² per position and attention), the gated
  // feed-forward (d → 2 ff → ff → d: 3 d·ff), and q·kᵀ plus weights·v (2 L·S·d).
  const double encoder_block = 2.0 * b * (4.0 * t * d * d + 3.0 * t * d * ff + 2.0 * t * t * d);
  const double decoder_block =
      2.0 * b * (8.0 * f * d * d + 3.0 * f * d * ff + 2.0 * 2.0 * f * f * d);
  const double blocks = static_cast<double>(o.encoder_layers) * encoder_block +
                        static_cast<double>(o.decoder_layers) * decoder_block;
  const double heads = 2.0 * b *
                       (t * (d * d + d * d / 2.0 + d / 2.0)      // duration predictor
                        + f * mels * d + f * d * mels + f * d);  // decoder input, mel, stop
  double postnet = 0.0;
  if (o.postnet) {
    const PostNetOptions p(o.n_mels);
    const double k = static_cast<double>(p.kernel_size());
    const double c = static_cast<double>(p.channels());
    postnet = 2.0 * b * f * k * (mels * c + static_cast<double>(p.layers() - 2) * c * c + c * mels);
  }
  const double forward = blocks + heads + postnet;
  return 3.0 * forward + (checkpointing ? blocks : 0.0);
}

}  // namespace kokoro::bench
