// Which of an epoch's batches a rank trains on under data parallel, with
// torch.utils.data.DistributedSampler's rules applied to batches: every rank
// sees the same ordered list of an epoch's batches (the same seed and epoch),
// rank r takes batches r, r + W, r + 2W, ... of what is left after
// `position` (the batches the run had used of this epoch before it resumed,
// counted over all ranks), and all ranks take the same number. When the rest
// does not divide by W, the short ranks repeat batches from the rest's start
// (padding, DistributedSampler's default) or every rank drops the last
// incomplete round (`drop_last`).
//
// Batches rather than samples: a task's batches (length buckets, padding)
// are then the same whatever the number of ranks, and W ranks of batch B
// take the steps of one process whose batches are W consecutive batches of
// B together.
//
// A task whose train_data(epoch, const DataShard&) takes its share itself
// builds only those batches; for any other, the Trainer takes the share from
// the whole list.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace kokoro {

/// A stretch of an epoch trained by one number of ranks.
struct PositionStretch {
  int world_size = 1;
  std::int64_t batches = 0;  ///< used in this stretch, over all its ranks

  friend bool operator==(const PositionStretch&, const PositionStretch&) = default;
};

/// One rank's place in a data-parallel epoch.
struct DataShard {
  int rank = 0;
  int world_size = 1;
  std::int64_t position = 0;  ///< batches of the epoch already used, over all ranks
  bool drop_last = false;
  /// How `position` was reached, stretch by stretch, when a run resumed
  /// this epoch on another number of ranks (their batches add up to
  /// `position`). Empty: all of it with `world_size` ranks. A task whose
  /// batches depend on the number of ranks replays it to know which of its
  /// samples the epoch has used; the shares above do not need it, since
  /// every rank takes from one list whatever their number.
  std::vector<PositionStretch> history{};
};

/// `history` with `batches` more used by `world_size` ranks.
inline void extend_history(std::vector<PositionStretch>& history, int world_size,
                           std::int64_t batches) {
  if (batches <= 0) return;
  if (history.empty() || history.back().world_size != world_size) {
    history.push_back({.world_size = world_size, .batches = 0});
  }
  history.back().batches += batches;
}

/// The indices (into the epoch's batches, 0 .. batches − 1) rank
/// `shard.rank` takes, in the order it trains on them.
inline std::vector<std::int64_t> shard_indices(std::int64_t batches, const DataShard& shard) {
  const std::int64_t world = std::max(1, shard.world_size);
  const std::int64_t start = std::clamp<std::int64_t>(shard.position, 0, batches);
  const std::int64_t rest = batches - start;
  const std::int64_t rounds = shard.drop_last ? rest / world : (rest + world - 1) / world;
  std::vector<std::int64_t> mine;
  mine.reserve(static_cast<std::size_t>(rounds));
  for (std::int64_t k = 0; k < rounds; ++k) {
    // The rest, padded with itself from its start as often as it takes.
    mine.push_back(start + (k * world + shard.rank) % rest);
  }
  return mine;
}

/// The batches a whole data-parallel step of `ranks` ranks uses of the epoch,
/// `per_rank` batches each: how far the epoch's position moves, up to its end.
inline std::int64_t advance_position(std::int64_t position, std::int64_t batches, int ranks,
                                     std::int64_t per_rank) {
  return std::min(batches, position + static_cast<std::int64_t>(ranks) * per_rank);
}

}  // namespace kokoro
