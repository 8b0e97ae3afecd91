// Length-bucketed batches, drawn afresh every epoch. Clips are shuffled,
// taken in pools of `batch_size * pool_batches`, sorted by length inside each
// pool and cut into batches, whose order is shuffled again: batches hold
// clips of similar length (little padding) and their membership changes from
// epoch to epoch. Deterministic in (seed, epoch) with kokoro::seeded_shuffle,
// so that every standard library gives the same batches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kokoro/util/seeded_shuffle.hpp"

namespace kokoro::data {

struct BucketingOptions {
  std::int64_t batch_size = 16;
  std::int64_t pool_batches = 16;         ///< batches sorted together
  std::int64_t max_frames_per_batch = 0;  ///< cap on batch size x longest clip (0: none)
  bool drop_last = false;                 ///< drop batches short of batch_size
  std::uint64_t seed = 0;
};

/// The batches (indices into `lengths`) of epoch `epoch`. A batch closes at
/// batch_size clips, or earlier when one more clip would take the padded
/// size (clips x longest) past max_frames_per_batch; a clip longer than the
/// cap on its own makes a batch of one. With drop_last the batches left short
/// of batch_size by the end of a pool are dropped (not those the cap cut).
inline std::vector<std::vector<std::size_t>> bucket_batches(
    const std::vector<std::int64_t>& lengths, const BucketingOptions& options, std::int64_t epoch) {
  std::mt19937_64 rng(options.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch));
  std::vector<std::size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  seeded_shuffle(order, rng);

  const auto batch_size = static_cast<std::size_t>(std::max<std::int64_t>(1, options.batch_size));
  const std::size_t pool =
      batch_size * static_cast<std::size_t>(std::max<std::int64_t>(1, options.pool_batches));
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t start = 0; start < order.size(); start += pool) {
    const auto end = std::min(order.size(), start + pool);
    std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(start),
                     order.begin() + static_cast<std::ptrdiff_t>(end),
                     [&](std::size_t a, std::size_t b) { return lengths[a] < lengths[b]; });
    std::vector<std::size_t> batch;
    std::int64_t longest = 0;
    for (std::size_t i = start; i < end; ++i) {
      const auto len = lengths[order[i]];
      const auto padded = std::max(longest, len) * static_cast<std::int64_t>(batch.size() + 1);
      if (!batch.empty() && options.max_frames_per_batch > 0 &&
          padded > options.max_frames_per_batch) {
        batches.push_back(std::move(batch));  // cut by the cap: kept even when short
        batch.clear();
        longest = 0;
      }
      batch.push_back(order[i]);
      longest = std::max(longest, len);
      if (batch.size() == batch_size) {
        batches.push_back(std::move(batch));
        batch.clear();
        longest = 0;
      }
    }
    if (!batch.empty() && !options.drop_last) batches.push_back(std::move(batch));
  }
  seeded_shuffle(batches, rng);
  return batches;
}

}  // namespace kokoro::data
