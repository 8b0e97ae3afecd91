// AutoDevice: the device named by `hardware.device`, decided at run time:
// "auto" takes CUDA, then MPS, then the CPU. A device that was asked for by
// name but is missing stops the run with a ConfigError before training.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <variant>

#include "kokoro/core/device_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/device/cpu_device.hpp"
#include "kokoro/device/cuda_device.hpp"
#include "kokoro/device/device_type.hpp"
#include "kokoro/device/mps_device.hpp"

namespace kokoro {

/// One of CpuDevice, CudaDevice, MpsDevice, chosen when constructed.
class AutoDevice {
 public:
  /// Resolves "auto" on this machine.
  AutoDevice() : AutoDevice(resolve_device_type("auto")) {}
  explicit AutoDevice(const TrainingConfig& config)
      : type_(resolve_device_type(config.hardware.device)), device_(make(type_, &config)) {}
  explicit AutoDevice(DeviceType type) : type_(type), device_(make(type, nullptr)) {}

  /// Which kind was chosen.
  DeviceType type() const { return type_; }

  c10::Device device() const {
    return std::visit([](const auto& d) { return d.device(); }, device_);
  }
  void synchronize() {
    std::visit([](auto& d) { d.synchronize(); }, device_);
  }
  DeviceMemory memory() const {
    return std::visit([](const auto& d) { return d.memory(); }, device_);
  }
  void release_cached_memory() {
    std::visit([](auto& d) { d.release_cached_memory(); }, device_);
  }
  bool pin_memory() const {
    return std::visit([](const auto& d) { return d.pin_memory(); }, device_);
  }
  bool supports_autocast(c10::ScalarType dtype) const {
    return std::visit([dtype](const auto& d) { return d.supports_autocast(dtype); }, device_);
  }

 private:
  using Any = std::variant<CpuDevice, CudaDevice, MpsDevice>;
  /// The device of `type`, built from `config` where one is given.
  static Any make(DeviceType type, const TrainingConfig* config) {
    switch (type) {
      case DeviceType::CUDA:
        return CudaDevice{CudaDevice::for_this_process()};
      case DeviceType::MPS:
        return MpsDevice{};
      case DeviceType::CPU:
        break;
    }
    return config != nullptr ? CpuDevice(*config) : CpuDevice{};
  }

  DeviceType type_;
  Any device_;
};

static_assert(DevicePolicy<AutoDevice>);

}  // namespace kokoro
