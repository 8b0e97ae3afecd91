// The default random generators' states, saved and put back: RngSnapshot
// captures them, RngStateGuard restores them when it goes out of scope, so
// that a side task (validation, samples) draws no numbers from the
// training's stream. Turning samples on or off, or stopping and resuming
// around them, then leaves the training bit for bit the same.
#pragma once

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <vector>

namespace kokoro {

/// Each CUDA device's default generator (none without a GPU).
inline std::vector<at::Generator> cuda_generators() {
  std::vector<at::Generator> generators;
  if (at::hasCUDA()) {
    const auto gpus = at::detail::getCUDAHooks().getNumGPUs();
    for (c10::DeviceIndex i = 0; i < gpus; ++i) {
      generators.push_back(at::globalContext().defaultGenerator(c10::Device(at::kCUDA, i)));
    }
  }
  return generators;
}

/// The CPU generator's state and each CUDA device's, at construction.
class RngSnapshot {
 public:
  RngSnapshot() {
    generators_.push_back(at::globalContext().defaultGenerator(at::kCPU));
    for (auto& g : cuda_generators()) generators_.push_back(g);
    for (auto& g : generators_) states_.push_back(g.get_state());
  }

  /// Puts every generator back to the captured state.
  void restore() {
    for (std::size_t i = 0; i < generators_.size(); ++i) generators_[i].set_state(states_[i]);
  }

 private:
  std::vector<at::Generator> generators_;
  std::vector<at::Tensor> states_;
};

class RngStateGuard {
 public:
  RngStateGuard() = default;
  ~RngStateGuard() { snapshot_.restore(); }
  RngStateGuard(const RngStateGuard&) = delete;
  RngStateGuard& operator=(const RngStateGuard&) = delete;

 private:
  RngSnapshot snapshot_;
};

}  // namespace kokoro
