// The TTS task's data: a prepared corpus served as batches. Training batches
// are length-bucketed afresh every epoch and built by worker threads ahead of
// the loop; validation batches are fixed (clips sorted by length).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "kokoro/core/data_shard.hpp"
#include "kokoro/data/length_buckets.hpp"
#include "kokoro/data/prefetch_loader.hpp"
#include "kokoro/tts/data/batch.hpp"
#include "kokoro/tts/data/corpus.hpp"
#include "kokoro/tts/data/feature_cache.hpp"
#include "kokoro/tts/tts_config.hpp"

namespace kokoro::tts {

class TtsData {
 public:
  /// `pin`: build batches in pinned memory (for asynchronous copies to a GPU).
  TtsData(PreparedCorpus corpus, const TtsConfig& config, bool pin = false)
      : corpus_(std::move(corpus)),
        workers_(static_cast<int>(config.data.num_workers)),
        prefetch_(static_cast<int>(config.data.prefetch_batches)),
        pin_(pin) {
    options_.batch_size = config.training.batch_size;
    options_.pool_batches = config.data.pool_batches;
    options_.max_frames_per_batch = config.data.max_frames_per_batch;
    options_.drop_last = config.data.drop_last;
    options_.seed = static_cast<std::uint64_t>(config.training.seed);
    for (const auto& clip : corpus_.train) train_frames_.push_back(clip.frames);
  }

  const PreparedCorpus& corpus() const { return corpus_; }

  /// The training batches of `epoch`.
  data::PrefetchLoader<TtsBatch> train(std::int64_t epoch) const {
    return data::PrefetchLoader<TtsBatch>(data::bucket_batches(train_frames_, options_, epoch),
                                          maker(corpus_.train), workers_, prefetch_);
  }

  /// One rank's training batches of `epoch` in data parallel: the batches
  /// one process would make with every rank's batch together (batch size
  /// and frame cap times the number of ranks), each split into as many
  /// parts of neighbouring lengths, of which this rank builds its own; from
  /// the shard's position (batches over all ranks, so position / ranks of
  /// these). A batch with fewer clips than ranks is left out on every rank.
  /// So W ranks take the steps of one process of batch size W x B.
  data::PrefetchLoader<TtsBatch> train(std::int64_t epoch, const DataShard& shard) const {
    const auto world = static_cast<std::size_t>(std::max(1, shard.world_size));
    auto together = options_;
    together.batch_size *= static_cast<std::int64_t>(world);
    together.max_frames_per_batch *= static_cast<std::int64_t>(world);
    const auto batches = data::bucket_batches(train_frames_, together, epoch);
    std::vector<std::vector<std::size_t>> mine;
    const auto first = static_cast<std::size_t>(std::max<std::int64_t>(0, shard.position)) / world;
    const auto rank = static_cast<std::size_t>(shard.rank);
    for (std::size_t b = first; b < batches.size(); ++b) {
      const auto& batch = batches[b];
      if (batch.size() < world) continue;
      const auto begin = batch.begin() + static_cast<std::ptrdiff_t>(rank * batch.size() / world);
      const auto end =
          batch.begin() + static_cast<std::ptrdiff_t>((rank + 1) * batch.size() / world);
      mine.emplace_back(begin, end);
    }
    return data::PrefetchLoader<TtsBatch>(std::move(mine), maker(corpus_.train), workers_,
                                          prefetch_);
  }

  /// Every validation clip once, in batches of similar length, under the
  /// same caps as training: batch_size clips, and at most
  /// data.max_frames_per_batch padded frames (clips x the longest).
  data::PrefetchLoader<TtsBatch> validation() const {
    const auto& clips = corpus_.validation;
    std::vector<std::size_t> order(clips.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return clips[a].frames < clips[b].frames;
    });
    std::vector<std::vector<std::size_t>> batches;
    const auto size = static_cast<std::size_t>(std::max<std::int64_t>(1, options_.batch_size));
    const auto cap = options_.max_frames_per_batch;
    for (const auto i : order) {
      // Ascending lengths: the clip added is the batch's longest.
      const bool full =
          !batches.empty() &&
          (batches.back().size() == size ||
           (cap > 0 &&
            static_cast<std::int64_t>(batches.back().size() + 1) * clips[i].frames > cap));
      if (batches.empty() || full) batches.emplace_back();
      batches.back().push_back(i);
    }
    return data::PrefetchLoader<TtsBatch>(std::move(batches), maker(corpus_.validation), workers_,
                                          prefetch_);
  }

  /// One clip's features.
  static TtsItem load(const CorpusClip& clip) { return read_cache_file(clip.features, clip.id); }

 private:
  data::PrefetchLoader<TtsBatch>::MakeBatch maker(const std::vector<CorpusClip>& clips) const {
    const bool pin = pin_;
    return [&clips, pin](const std::vector<std::size_t>& indices) {
      std::vector<TtsItem> items;
      items.reserve(indices.size());
      for (const auto i : indices) items.push_back(load(clips[i]));
      auto batch = collate(items);
      return pin ? batch.pinned() : batch;
    };
  }

  PreparedCorpus corpus_;
  data::BucketingOptions options_;
  std::vector<std::int64_t> train_frames_;
  int workers_;
  int prefetch_;
  bool pin_;
};

}  // namespace kokoro::tts
