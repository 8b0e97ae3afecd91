// The one shuffle for every reproducible order (batches, training sets, the
// demo corpus's sentences): Fisher-Yates on std::mt19937_64, whose output
// the standard fixes, so a seed gives the same order with every standard
// library; std::shuffle's result depends on the library's distributions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

namespace kokoro {

/// Shuffles `items` in place (Fisher-Yates), `pick(n)` choosing an index
/// in [0, n). For a generator of another recipe whose orders must stay as
/// they were (the demo corpus keeps the sentences its corpora were made of).
template <class T, class Pick>
requires std::is_invocable_r_v<std::size_t, Pick&, std::size_t>
void seeded_shuffle(std::vector<T>& items, Pick&& pick) {
  for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[pick(i)]);
}

/// Shuffles `items` in place, drawing from `rng` (which moves on, so that
/// several shuffles can follow from one seed). `rng() % n` is biased by at
/// most n / 2^64: nothing any list here could show.
template <class T>
void seeded_shuffle(std::vector<T>& items, std::mt19937_64& rng) {
  seeded_shuffle(items, [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); });
}

/// Shuffles `items` in the order `seed` picks.
template <class T>
void seeded_shuffle(std::vector<T>& items, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  seeded_shuffle(items, rng);
}

}  // namespace kokoro
