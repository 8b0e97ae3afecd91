// MpsDevice: an Apple GPU through Metal Performance Shaders. libtorch 1.13
// exposes no MPS memory statistics, cache release or autocast in C++, so
// memory reads "unknown", release does nothing and mixed precision is off.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/types.h>

#if __has_include(<torch/mps.h>)
#include <torch/mps.h>
#define KOKORO_TORCH_MPS_API 1
#endif

#include "kokoro/core/device_policy.hpp"

namespace kokoro {

/// Trains on the Apple GPU.
class MpsDevice {
 public:
  c10::Device device() const { return c10::Device(c10::DeviceType::MPS); }

  /// Waits for queued GPU work. Without the newer torch::mps API, a blocking
  /// copy of one value to the host waits for everything queued before it.
  void synchronize() {
#ifdef KOKORO_TORCH_MPS_API
    torch::mps::synchronize();
#else
    (void)torch::zeros({1}, torch::TensorOptions().device(device())).cpu();
#endif
  }

  DeviceMemory memory() const { return {}; }
  void release_cached_memory() {}

  /// MPS shares memory with the host: pinning buys nothing.
  bool pin_memory() const { return false; }

  /// libtorch 1.13 has no MPS autocast.
  bool supports_autocast(c10::ScalarType) const { return false; }
};

static_assert(DevicePolicy<MpsDevice>);

}  // namespace kokoro
