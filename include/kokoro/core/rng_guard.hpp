// RngStateGuard: saves the default random generators' states and puts them
// back when it goes out of scope, so that a side task (validation, samples)
// draws no numbers from the training's stream: turning samples on or off,
// or stopping and resuming around them, leaves the training bit for bit the
// same.
#pragma once

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <cstdint>
#include <vector>

namespace kokoro {

class RngStateGuard {
 public:
  RngStateGuard() {
    generators_.push_back(at::globalContext().defaultGenerator(at::kCPU));
    if (at::hasCUDA()) {
      const auto gpus = at::detail::getCUDAHooks().getNumGPUs();
      for (c10::DeviceIndex i = 0; i < gpus; ++i) {
        generators_.push_back(at::globalContext().defaultGenerator(c10::Device(at::kCUDA, i)));
      }
    }
    for (auto& g : generators_) states_.push_back(g.get_state());
  }
  ~RngStateGuard() {
    for (std::size_t i = 0; i < generators_.size(); ++i) generators_[i].set_state(states_[i]);
  }
  RngStateGuard(const RngStateGuard&) = delete;
  RngStateGuard& operator=(const RngStateGuard&) = delete;

 private:
  std::vector<at::Generator> generators_;
  std::vector<at::Tensor> states_;
};

}  // namespace kokoro
