// One TTS training example and a padded batch of them. Phoneme ids and
// durations are padded with 0 (the `<pad>` id, and no frames); mels with
// the log of the mel floor, the value silence has after log(max(x, 1e-5)).
// Stop targets are 1 on each clip's last frame. Masks come from the lengths.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// The log-mel of silence: log(1e-5).
inline const double kSilenceLogMel = std::log(1e-5);

/// One clip's features.
struct TtsItem {
  std::string id;
  torch::Tensor mel;        ///< [frames, n_mels] float32
  torch::Tensor phonemes;   ///< [tokens] int64
  torch::Tensor durations;  ///< [tokens] int64, summing to frames
  /// The durations came from a TextGrid (false: spread evenly, for the
  /// aligner to replace when data.durations is auto or learned).
  bool durations_known = true;
  /// Cut to audio.max_frames: its text runs past its frames, so it is no
  /// clip to learn an alignment from.
  bool truncated = false;
};

struct TtsBatch {
  torch::Tensor phonemes;         ///< [B, T] int64
  torch::Tensor phoneme_lengths;  ///< [B] int64
  torch::Tensor durations;        ///< [B, T] int64
  torch::Tensor mels;             ///< [B, F, n_mels] float32
  torch::Tensor mel_lengths;      ///< [B] int64
  torch::Tensor stop_targets;     ///< [B, F] float32
  std::vector<std::string> ids;
  torch::Tensor durations_known;  ///< [B] bool (TtsItem::durations_known)
  torch::Tensor truncated;        ///< [B] bool (TtsItem::truncated)

  std::int64_t size() const { return phonemes.defined() ? phonemes.size(0) : 0; }

  /// True on real phonemes: [B, T].
  torch::Tensor phoneme_mask() const {
    return torch::arange(phonemes.size(1), phoneme_lengths.options()).unsqueeze(0) <
           phoneme_lengths.unsqueeze(1);
  }
  /// True on real frames: [B, F].
  torch::Tensor mel_mask() const {
    return torch::arange(mels.size(1), mel_lengths.options()).unsqueeze(0) <
           mel_lengths.unsqueeze(1);
  }

  /// `op(t)`, or `t` itself when undefined (a batch made by hand, without
  /// the per-clip flags).
  template <typename Op>
  static torch::Tensor optional(Op&& op, const torch::Tensor& t) {
    return t.defined() ? op(t) : t;
  }

  /// The batch on `device`; copies are asynchronous from pinned memory.
  TtsBatch to(const torch::Device& device) const {
    const bool async = device.is_cuda();
    auto move = [&](const torch::Tensor& t) { return t.to(device, /*non_blocking=*/async); };
    return TtsBatch{move(phonemes),
                    move(phoneme_lengths),
                    move(durations),
                    move(mels),
                    move(mel_lengths),
                    move(stop_targets),
                    ids,
                    optional(move, durations_known),
                    optional(move, truncated)};
  }

  /// The clips [begin, end) (for out-of-memory recovery); padding is kept.
  TtsBatch slice(std::int64_t begin, std::int64_t end) const {
    auto cut = [&](const torch::Tensor& t) { return t.slice(0, begin, end); };
    return TtsBatch{cut(phonemes),
                    cut(phoneme_lengths),
                    cut(durations),
                    cut(mels),
                    cut(mel_lengths),
                    cut(stop_targets),
                    std::vector<std::string>(ids.begin() + begin, ids.begin() + end),
                    optional(cut, durations_known),
                    optional(cut, truncated)};
  }

  /// Pinned host memory, for asynchronous copies to a GPU.
  TtsBatch pinned() const {
    auto pin = [](const torch::Tensor& t) { return t.pin_memory(); };
    return TtsBatch{pin(phonemes),
                    pin(phoneme_lengths),
                    pin(durations),
                    pin(mels),
                    pin(mel_lengths),
                    pin(stop_targets),
                    ids,
                    optional(pin, durations_known),
                    optional(pin, truncated)};
  }
};

/// Pads `items` into one batch. Throws kokoro::Error if an item's durations
/// do not sum to its frame count (the length regulator relies on it).
inline TtsBatch collate(const std::vector<TtsItem>& items) {
  if (items.empty()) throw Error("collate: no items");
  const auto n = static_cast<std::int64_t>(items.size());
  const auto n_mels = items[0].mel.size(1);
  std::int64_t max_tokens = 0, max_frames = 0;
  for (const auto& item : items) {
    max_tokens = std::max(max_tokens, item.phonemes.size(0));
    max_frames = std::max(max_frames, item.mel.size(0));
  }
  TtsBatch b;
  b.phonemes = torch::zeros({n, max_tokens}, torch::kLong);
  b.durations = torch::zeros({n, max_tokens}, torch::kLong);
  b.mels = torch::full({n, max_frames, n_mels}, kSilenceLogMel, torch::kFloat);
  b.stop_targets = torch::zeros({n, max_frames}, torch::kFloat);
  b.phoneme_lengths = torch::empty({n}, torch::kLong);
  b.mel_lengths = torch::empty({n}, torch::kLong);
  b.durations_known = torch::empty({n}, torch::kBool);
  b.truncated = torch::empty({n}, torch::kBool);
  auto known = b.durations_known.accessor<bool, 1>();
  auto cut = b.truncated.accessor<bool, 1>();
  auto token_lengths = b.phoneme_lengths.accessor<std::int64_t, 1>();
  auto frame_lengths = b.mel_lengths.accessor<std::int64_t, 1>();
  auto stops = b.stop_targets.accessor<float, 2>();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& item = items[static_cast<std::size_t>(i)];
    const auto tokens = item.phonemes.size(0), frames = item.mel.size(0);
    if (item.durations.size(0) != tokens || item.durations.sum().item<std::int64_t>() != frames) {
      throw Error(fmt::format("clip {}: {} durations summing to {} for {} phonemes and {} frames",
                              item.id, item.durations.size(0),
                              item.durations.sum().item<std::int64_t>(), tokens, frames));
    }
    b.phonemes[i].slice(0, 0, tokens).copy_(item.phonemes);
    b.durations[i].slice(0, 0, tokens).copy_(item.durations);
    b.mels[i].slice(0, 0, frames).copy_(item.mel);
    if (frames > 0) stops[i][frames - 1] = 1.0f;
    token_lengths[i] = tokens;
    frame_lengths[i] = frames;
    known[i] = item.durations_known;
    cut[i] = item.truncated;
    b.ids.push_back(item.id);
  }
  return b;
}

}  // namespace kokoro::tts
