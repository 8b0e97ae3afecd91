// How the Trainer builds a policy: from the configuration when the policy has
// a constructor taking `const TrainingConfig&`, default-constructed otherwise.
#pragma once

#include <concepts>

namespace kokoro {

struct TrainingConfig;

/// Builds a P from the configuration, or default-constructs it.
template <class P>
P make_policy(const TrainingConfig& config) {
  if constexpr (std::constructible_from<P, const TrainingConfig&>) {
    return P(config);
  } else {
    return P{};
  }
}

}  // namespace kokoro
