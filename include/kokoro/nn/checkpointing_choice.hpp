// When to checkpoint activations. Gradient checkpointing (gradient_checkpoint.hpp)
// costs one more forward per step (8–36% of a step for the TTS model on a CPU),
// so `automatic` turns it on only when memory asks: for a batch whose estimated
// activations would take more than a share of the free memory, and for the rest
// of the run once the memory policy reports pressure or a step runs out of memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kokoro/core/context.hpp"

namespace kokoro::nn {

enum class CheckpointingMode {
  off,
  on,
  automatic,
};

/// "false", "true" or "auto" (the config's words); nullopt for anything else.
inline std::optional<CheckpointingMode> parse_checkpointing_mode(std::string_view word) {
  if (word == "false") return CheckpointingMode::off;
  if (word == "true") return CheckpointingMode::on;
  if (word == "auto") return CheckpointingMode::automatic;
  return std::nullopt;
}

/// Decides, batch by batch, whether to checkpoint.
class CheckpointingChoice {
 public:
  /// `budget_share`: the share of free memory a batch's activations may take
  /// before `automatic` checkpoints it.
  explicit CheckpointingChoice(CheckpointingMode mode = CheckpointingMode::automatic,
                               double budget_share = 0.5)
      : mode_(mode), budget_share_(budget_share) {}

  /// Takes in what the Trainer says about memory (Task::adapt_to_memory).
  /// Pressure or an out-of-memory step turns checkpointing on for good: turning
  /// it off again as soon as pressure eases would only bring the pressure back.
  void observe(const MemoryState& state) {
    if (state.pressure || state.out_of_memory) {
      if (!forced_) reason_ = state.out_of_memory ? "a step ran out of memory" : "memory pressure";
      forced_ = true;
    }
    const auto free = state.free_bytes();
    if (free >= 0) free_bytes_ = free;
  }

  /// Whether to checkpoint a batch whose activations, kept for backward
  /// without checkpointing, are estimated at `activation_bytes`.
  bool for_batch(std::int64_t activation_bytes) const {
    switch (mode_) {
      case CheckpointingMode::off:
        return false;
      case CheckpointingMode::on:
        return true;
      case CheckpointingMode::automatic:
        return forced_ ||
               (free_bytes_ >= 0 && static_cast<double>(activation_bytes) >
                                        budget_share_ * static_cast<double>(free_bytes_));
    }
    return true;
  }

  CheckpointingMode mode() const { return mode_; }
  /// Whether `automatic` has turned checkpointing on for the rest of the run,
  /// and why ("memory pressure", "a step ran out of memory"; empty if not).
  bool forced() const { return forced_; }
  const std::string& reason() const { return reason_; }
  /// The free memory last heard of, −1 before any reading.
  std::int64_t free_bytes() const { return free_bytes_; }

 private:
  CheckpointingMode mode_;
  double budget_share_;
  bool forced_ = false;
  std::string reason_;
  std::int64_t free_bytes_ = -1;
};

}  // namespace kokoro::nn
