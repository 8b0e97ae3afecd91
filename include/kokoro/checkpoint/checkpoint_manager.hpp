// CheckpointManager: where a run's checkpoints live and which are kept.
//   <dir>/checkpoint_step000001234.pt   periodic, the last `keep_last` kept
//   <dir>/best.pt                       best validation (or training) loss
//   <dir>/final.pt                      the state when training ended
//   <dir>/model_weights.pt              the final weights only, for inference
// Finding the newest valid checkpoint skips damaged files and says which.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kokoro/checkpoint/checkpoint_file.hpp"
#include "kokoro/core/checkpoint_policy.hpp"
#include "kokoro/core/run_folder.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

class CheckpointManager {
 public:
  explicit CheckpointManager(std::filesystem::path dir, std::int64_t keep_last = 5)
      : dir_(std::move(dir)), keep_last_(keep_last) {}
  /// <run directory>/checkpoints (core/run_folder.hpp), keeping
  /// `logging.keep_checkpoints`: a run's own files only.
  explicit CheckpointManager(const TrainingConfig& config)
      : CheckpointManager(run_directory(config) / "checkpoints", config.logging.keep_checkpoints) {}

  const std::filesystem::path& directory() const { return dir_; }

  std::filesystem::path periodic_path(std::int64_t global_step) const {
    return dir_ / fmt::format("checkpoint_step{:09d}.pt", global_step);
  }
  std::filesystem::path best_path() const { return dir_ / "best.pt"; }
  std::filesystem::path final_path() const { return dir_ / "final.pt"; }
  std::filesystem::path weights_path() const { return dir_ / "model_weights.pt"; }

  /// Writes `state` to `path` (creating the directory).
  void save(const std::filesystem::path& path, const IValueDict& state) const {
    std::filesystem::create_directories(path.parent_path());
    save_checkpoint_file(path, state);
  }

  /// Writes a weights-only state dict (no integrity entry), so that Python's
  /// `model.load_state_dict(torch.load(path))` takes it as it is.
  void save_weights(const IValueDict& weights) const {
    std::filesystem::create_directories(dir_);
    const auto bytes = torch::pickle_save(weights);
    write_file_atomically(weights_path(), std::string_view(bytes.data(), bytes.size()));
  }

  /// best.pt.
  void save_best(const IValueDict& state) const { save(best_path(), state); }

  /// final.pt and model_weights.pt; returns final.pt's path.
  std::filesystem::path save_final(const IValueDict& state, const IValueDict& weights) const {
    save(final_path(), state);
    save_weights(weights);
    return final_path();
  }

  /// A checkpoint file's state; kokoro::Error naming the file when damaged.
  IValueDict load(const std::filesystem::path& path) const { return load_checkpoint_file(path); }

  /// Saves a periodic checkpoint and deletes periodic ones beyond the newest
  /// `keep_last` (0 keeps all), and the temporaries of killed writers.
  /// Returns its path.
  std::filesystem::path save_periodic(std::int64_t global_step, const IValueDict& state) const {
    const auto path = periodic_path(global_step);
    remove_stray_temporaries(dir_);  // a killed run's half-written checkpoints
    save(path, state);
    if (keep_last_ > 0) {
      const auto all = periodic();
      for (std::size_t i = static_cast<std::size_t>(keep_last_); i < all.size(); ++i) {
        std::filesystem::remove(all[i]);
      }
    }
    return path;
  }

  /// Periodic checkpoints, newest (highest step) first.
  std::vector<std::filesystem::path> periodic() const {
    std::vector<std::filesystem::path> found;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir_, ec)) return found;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      const auto name = entry.path().filename().string();
      if (name.starts_with("checkpoint_step") && name.ends_with(".pt"))
        found.push_back(entry.path());
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return a.filename().string() >
             b.filename().string();  // zero-padded: text order is step order
    });
    return found;
  }

  /// The newest periodic checkpoint that loads and passes its checksum; the
  /// ones skipped on the way are appended to `rejected` with the reason.
  std::optional<std::filesystem::path> latest_valid(
      std::vector<std::string>* rejected = nullptr) const {
    for (const auto& path : periodic()) {
      try {
        load_checkpoint_file(path);
        return path;
      } catch (const Error& e) {
        if (rejected) rejected->push_back(e.what());
      } catch (const std::exception& e) {
        // Whatever else a damaged file makes libtorch throw: `auto` goes on
        // to the next checkpoint all the same.
        if (rejected) rejected->push_back(fmt::format("{}: {}", path.string(), e.what()));
      }
    }
    return std::nullopt;
  }

 private:
  std::filesystem::path dir_;
  std::int64_t keep_last_;
};

static_assert(CheckpointPolicy<CheckpointManager>);

/// The newest valid periodic checkpoint in `dir`, if any.
inline std::optional<std::filesystem::path> find_latest_checkpoint(
    const std::filesystem::path& dir) {
  return CheckpointManager(dir).latest_valid();
}

}  // namespace kokoro
