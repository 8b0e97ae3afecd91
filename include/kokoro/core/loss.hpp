// What a task's loss returns: the total to backpropagate and its named parts,
// all reported to loggers as "loss" and "loss/<part>".
#pragma once

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace kokoro {

/// A task's loss for one batch: the scalar to minimise and its components.
/// The total is a mean over the batch's samples: the Trainer weights
/// micro-batches by their sample counts so accumulation equals one big batch.
struct Loss {
  torch::Tensor total;
  std::vector<std::pair<std::string, torch::Tensor>> parts;

  /// Adds a named component (reported, not added to the total).
  Loss& with(std::string name, torch::Tensor value) {
    parts.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

}  // namespace kokoro
