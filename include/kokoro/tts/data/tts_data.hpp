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
  /// parts of neighbouring lengths, of which this rank builds its own. So W
  /// ranks take the steps of one process of batch size W x B.
  ///
  /// From the shard's position: the clips the epoch used so far are those
  /// of the first position / W' batches of the plan W' ranks made, stretch
  /// by stretch of its history (a run resumed on another number of ranks
  /// plans the clips left anew), so that every clip of the epoch is trained
  /// on once whatever the number of ranks and resumes. A batch with fewer
  /// clips than ranks joins its neighbour rather than being left out; only
  /// when fewer clips than ranks are left at all do ranks repeat a clip.
  data::PrefetchLoader<TtsBatch> train(std::int64_t epoch, const DataShard& shard) const {
    const int world = std::max(1, shard.world_size);
    std::vector<std::size_t> rest(train_frames_.size());
    std::iota(rest.begin(), rest.end(), std::size_t{0});
    auto stretches = shard.history;
    if (stretches.empty() && shard.position > 0) {
      stretches.push_back({.world_size = world, .batches = shard.position});
    }
    // The stretches before the last with another number of ranks than now
    // only take their clips out; a last stretch of this many ranks goes on
    // with its own plan, as an uninterrupted run would.
    std::uint64_t round = 0;
    std::size_t skip = 0;
    for (std::size_t s = 0; s < stretches.size(); ++s) {
      const int ranks = std::max(1, stretches[s].world_size);
      auto plan = plan_together(rest, ranks, epoch, round);
      const auto used = std::min(plan.size(), static_cast<std::size_t>(std::max<std::int64_t>(
                                                  0, stretches[s].batches / ranks)));
      if (s + 1 == stretches.size() && ranks == world) {
        skip = used;
        break;
      }
      std::vector<bool> gone(train_frames_.size(), false);
      for (std::size_t b = 0; b < used; ++b) {
        for (const auto i : plan[b]) gone[i] = true;
      }
      std::erase_if(rest, [&](std::size_t i) { return gone[i]; });
      ++round;
    }
    const auto plan = plan_together(rest, world, epoch, round);
    std::vector<std::vector<std::size_t>> mine;
    const auto rank = static_cast<std::size_t>(shard.rank);
    const auto parts = static_cast<std::size_t>(world);
    for (std::size_t b = skip; b < plan.size(); ++b) {
      const auto& batch = plan[b];
      if (batch.size() < parts) {
        mine.push_back({batch[rank % batch.size()]});  // fewer clips left than ranks
        continue;
      }
      const auto begin = batch.begin() + static_cast<std::ptrdiff_t>(rank * batch.size() / parts);
      const auto end =
          batch.begin() + static_cast<std::ptrdiff_t>((rank + 1) * batch.size() / parts);
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

  /// The batches (of training clip indices) `ranks` ranks make together of
  /// the clips `clips`: length-bucketed with batch size and frame cap times
  /// `ranks`; a batch with fewer clips than ranks joins its neighbour. Round
  /// 0 over every clip is the epoch's own plan; later rounds (the clips
  /// left after a resume on another number of ranks) draw their own order.
  std::vector<std::vector<std::size_t>> plan_together(const std::vector<std::size_t>& clips,
                                                      int ranks, std::int64_t epoch,
                                                      std::uint64_t round) const {
    auto together = options_;
    together.batch_size *= ranks;
    together.max_frames_per_batch *= ranks;
    if (round > 0) together.seed = options_.seed ^ (0xA24BAED4963EE407ULL * round);
    std::vector<std::int64_t> frames;
    frames.reserve(clips.size());
    for (const auto i : clips) frames.push_back(train_frames_[i]);
    auto batches = data::bucket_batches(frames, together, epoch);
    for (auto& batch : batches) {
      for (auto& i : batch) i = clips[i];
    }
    const auto small = [&](const std::vector<std::size_t>& b) {
      return b.size() < static_cast<std::size_t>(ranks);
    };
    for (std::size_t b = 0; b < batches.size() && batches.size() > 1;) {
      if (!small(batches[b])) {
        ++b;
        continue;
      }
      auto& into = b > 0 ? batches[b - 1] : batches[b + 1];
      into.insert(into.end(), batches[b].begin(), batches[b].end());
      batches.erase(batches.begin() + static_cast<std::ptrdiff_t>(b));
    }
    return batches;
  }

  PreparedCorpus corpus_;
  data::BucketingOptions options_;
  std::vector<std::int64_t> train_frames_;
  int workers_;
  int prefetch_;
  bool pin_;
};

}  // namespace kokoro::tts
