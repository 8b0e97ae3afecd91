// DeviceType: the kinds of device kokoro trains on, their names in the
// configuration (`hardware.device`), and which of them this process can use.
#pragma once

#include <ATen/Context.h>
#include <c10/core/DeviceType.h>
#include <torch/cuda.h>

#include <string>
#include <string_view>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro {

/// A device kind, in the order `auto` prefers them.
enum class DeviceType { CUDA, MPS, CPU };

/// "cuda", "mps" or "cpu".
inline std::string_view device_type_name(DeviceType type) {
  switch (type) {
    case DeviceType::CUDA:
      return "cuda";
    case DeviceType::MPS:
      return "mps";
    case DeviceType::CPU:
      return "cpu";
  }
  return "cpu";
}

/// The libtorch device type of a kind.
inline c10::DeviceType to_torch(DeviceType type) {
  switch (type) {
    case DeviceType::CUDA:
      return c10::DeviceType::CUDA;
    case DeviceType::MPS:
      return c10::DeviceType::MPS;
    case DeviceType::CPU:
      return c10::DeviceType::CPU;
  }
  return c10::DeviceType::CPU;
}

/// Whether this libtorch build and this machine can run on `type`.
inline bool is_available(DeviceType type) {
  switch (type) {
    case DeviceType::CUDA:
      return torch::cuda::is_available();
    case DeviceType::MPS:
      return at::hasMPS();
    case DeviceType::CPU:
      return true;
  }
  return false;
}

/// Resolves a `hardware.device` value: "auto" picks CUDA, then MPS, then CPU;
/// "cuda", "mps" and "cpu" must be available. Throws ConfigError naming the
/// field when the request cannot be met.
inline DeviceType resolve_device_type(std::string_view requested) {
  if (requested == "auto") {
    for (auto type : {DeviceType::CUDA, DeviceType::MPS}) {
      if (is_available(type)) return type;
    }
    return DeviceType::CPU;
  }
  for (auto type : {DeviceType::CUDA, DeviceType::MPS, DeviceType::CPU}) {
    if (requested != device_type_name(type)) continue;
    if (!is_available(type)) {
      throw ConfigError(
          fmt::format("hardware.device: '{}' was requested but {} (use 'auto' or 'cpu')", requested,
                      type == DeviceType::CUDA
                          ? "this libtorch has no CUDA support or no GPU is visible"
                          : "this libtorch has no MPS support or this is not an Apple GPU"));
    }
    return type;
  }
  throw ConfigError(
      fmt::format("hardware.device: must be one of: auto, cuda, mps, cpu (got \"{}\")", requested));
}

}  // namespace kokoro
