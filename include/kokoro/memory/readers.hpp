// Memory readers: what the adaptive memory policy measures, one per device,
// as small policies so tests can inject readings (any type with
// `MemoryReading read()` and `PressureThresholds profile() const`).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include <unistd.h>

#include "kokoro/core/training_config.hpp"
#include "kokoro/device/cpu_device.hpp"
#include "kokoro/device/cuda_device.hpp"
#include "kokoro/device/device_type.hpp"
#include "kokoro/memory/pressure.hpp"

#if defined(KOKORO_CUDA_RUNTIME)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace kokoro {

namespace detail {

/// The cgroup memory limit of this process (v2, then v1), or 0 when none.
inline std::int64_t cgroup_memory_limit() {
  for (const char* file :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(file);
    std::string text;
    if (!(in >> text) || text == "max") continue;
    try {
      const auto limit = std::stoll(text);
      if (limit > 0 && limit < (std::int64_t{1} << 60)) return limit;  // v1 writes ~2^63 for none
    } catch (...) {
    }
  }
  return 0;
}

}  // namespace detail

/// The process's resident memory against its cgroup limit, or the machine's
/// memory when there is none (a container's limit is what kills it).
class CpuMemoryReader {
 public:
  CpuMemoryReader() : limit_(detail::cgroup_memory_limit()) {}
  MemoryReading read() const {
    const auto m = CpuDevice().memory();
    const auto total =
        limit_ > 0 && (m.total_bytes <= 0 || limit_ < m.total_bytes) ? limit_ : m.total_bytes;
    return {.used_bytes = m.used_bytes, .total_bytes = total};
  }
  PressureThresholds profile() const { return kCpuPressure; }
  std::int64_t limit_bytes() const { return limit_; }

 private:
  std::int64_t limit_;
};

/// The CUDA caching allocator's reserved memory against the device's total.
class CudaMemoryReader {
 public:
  explicit CudaMemoryReader(c10::DeviceIndex index = 0) : index_(index) {}
  MemoryReading read() const {
    const auto m = CudaDevice(index_).memory();
#if defined(KOKORO_CUDA_RUNTIME)
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index_);
    const auto reserved = stats.reserved_bytes[0].current;  // aggregate pool
    return {.used_bytes = reserved, .total_bytes = m.total_bytes};
#else
    return {.used_bytes = m.used_bytes, .total_bytes = m.total_bytes};
#endif
  }
  PressureThresholds profile() const { return kCudaPressure; }

 private:
  c10::DeviceIndex index_;
};

/// The reader for the device `hardware.device` resolves to. MPS has no
/// figures in libtorch 1.13: its readings are unknown and its level low.
class AutoMemoryReader {
 public:
  AutoMemoryReader() : AutoMemoryReader(resolve_device_type("auto")) {}
  explicit AutoMemoryReader(const TrainingConfig& config)
      : AutoMemoryReader(resolve_device_type(config.hardware.device)) {}
  explicit AutoMemoryReader(DeviceType type) : type_(type) {}

  MemoryReading read() const {
    switch (type_) {
      case DeviceType::CUDA:
        return cuda_.read();
      case DeviceType::MPS:
        return {};
      case DeviceType::CPU:
        return cpu_.read();
    }
    return {};
  }
  PressureThresholds profile() const {
    switch (type_) {
      case DeviceType::CUDA:
        return kCudaPressure;
      case DeviceType::MPS:
        return kMpsPressure;
      case DeviceType::CPU:
        return kCpuPressure;
    }
    return kCpuPressure;
  }

 private:
  DeviceType type_;
  CpuMemoryReader cpu_;
  CudaMemoryReader cuda_;
};

}  // namespace kokoro
