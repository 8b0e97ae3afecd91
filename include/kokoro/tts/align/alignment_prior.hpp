// The beta-binomial alignment prior (RAD-TTS): for frame t of a clip's
// `frames`, a distribution over its `tokens` that centres on the token a
// steady speaking rate would reach by then, t / frames of the way through,
// and widens where that is less sure. Added to the learned alignment's
// log-probabilities, it keeps the young aligner near the diagonal until its
// encoders have learned what each token sounds like.
//
// Frame t (1-based) gets BetaBinomial(n = tokens - 1, alpha = w * t,
// beta = w * (frames - t + 1)) over token k = 0..n:
//   P(k) = C(n, k) B(k + alpha, n - k + beta) / B(alpha, beta),
// computed in logs through lgamma; w (`scaling`, 1 by default) sharpens it.
// The prior depends only on the two lengths, so it is computed once per
// pair and kept (AlignmentPriorCache, up to a memory bound: a corpus of
// LJSpeech's size has some ten thousand pairs of about 300 KB each, so the
// least recently used go); scipy.stats.betabinom checks it in
// tests/python/check_alignment.py.
#pragma once

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts::align {

/// [frames, tokens] float: log P(token | frame) (see the header).
inline torch::Tensor beta_binomial_log_prior(std::int64_t tokens, std::int64_t frames,
                                             double scaling = 1.0) {
  if (tokens < 1 || frames < 1 || !(scaling > 0.0)) {
    throw Error(fmt::format("beta_binomial_log_prior: needs tokens >= 1, frames >= 1 and a "
                            "positive scaling, got {}, {}, {}",
                            tokens, frames, scaling));
  }
  auto prior = torch::empty({frames, tokens}, torch::kFloat);
  auto p = prior.accessor<float, 2>();
  const double n = static_cast<double>(tokens - 1);
  auto log_beta = [](double a, double b) {
    return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
  };
  for (std::int64_t t = 0; t < frames; ++t) {
    const double alpha = scaling * static_cast<double>(t + 1);
    const double beta = scaling * static_cast<double>(frames - t);
    const double norm = log_beta(alpha, beta);
    for (std::int64_t k = 0; k < tokens; ++k) {
      const double kk = static_cast<double>(k);
      const double log_choose = std::lgamma(n + 1.0) - std::lgamma(kk + 1.0) - std::lgamma(n - kk + 1.0);
      p[t][k] = static_cast<float>(log_choose + log_beta(kk + alpha, n - kk + beta) - norm);
    }
  }
  return prior;
}

/// The priors of the length pairs seen lately, at most `max_bytes` of them
/// (the least recently used leave first); safe to share between threads.
class AlignmentPriorCache {
 public:
  explicit AlignmentPriorCache(double scaling = 1.0, std::int64_t max_bytes = 256 << 20)
      : scaling_(scaling), max_bytes_(max_bytes) {}

  /// [frames, tokens] log prior for this pair (computed when not kept).
  torch::Tensor get(std::int64_t tokens, std::int64_t frames) {
    const std::lock_guard lock(mutex_);
    const std::pair key{tokens, frames};
    if (const auto it = priors_.find(key); it != priors_.end()) {
      order_.splice(order_.begin(), order_, it->second.place);
      return it->second.prior;
    }
    auto prior = beta_binomial_log_prior(tokens, frames, scaling_);
    const std::int64_t bytes = prior.numel() * static_cast<std::int64_t>(sizeof(float));
    while (!order_.empty() && bytes_ + bytes > max_bytes_) {
      const auto oldest = priors_.find(order_.back());
      bytes_ -= oldest->second.prior.numel() * static_cast<std::int64_t>(sizeof(float));
      priors_.erase(oldest);
      order_.pop_back();
    }
    order_.push_front(key);
    priors_.emplace(key, Entry{prior, order_.begin()});
    bytes_ += bytes;
    return prior;
  }

  /// A batch's priors, padded with 0 (log 1: no preference) to [batch,
  /// max_frames, max_tokens].
  torch::Tensor batch(const std::vector<std::int64_t>& tokens,
                      const std::vector<std::int64_t>& frames, std::int64_t max_tokens,
                      std::int64_t max_frames) {
    auto out = torch::zeros({static_cast<std::int64_t>(tokens.size()), max_frames, max_tokens});
    for (std::size_t b = 0; b < tokens.size(); ++b) {
      out[static_cast<std::int64_t>(b)]
          .narrow(0, 0, frames[b])
          .narrow(1, 0, tokens[b])
          .copy_(get(tokens[b], frames[b]));
    }
    return out;
  }

  std::size_t size() const {
    const std::lock_guard lock(mutex_);
    return priors_.size();
  }

 private:
  using Key = std::pair<std::int64_t, std::int64_t>;
  struct Entry {
    torch::Tensor prior;
    std::list<Key>::iterator place;  ///< in order_
  };
  double scaling_;
  std::int64_t max_bytes_;
  std::int64_t bytes_ = 0;
  mutable std::mutex mutex_;
  std::map<Key, Entry> priors_;
  std::list<Key> order_;  ///< most recently used first
};

}  // namespace kokoro::tts::align
