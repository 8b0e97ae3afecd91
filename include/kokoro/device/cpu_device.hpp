// CpuDevice: the host CPU. Memory is the process's resident set against the
// machine's physical memory. Built from a run's config with
// `hardware.cpu_memory_cache` on (the default), it makes CpuMemoryCache
// libtorch's CPU allocator, so each step reuses the last step's memory instead
// of faulting it in again; releasing cached memory empties that cache and
// trims glibc's heap.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <fstream>

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "kokoro/core/device_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/device/cpu_memory_cache.hpp"

namespace kokoro {

/// Runs everything on the host CPU.
class CpuDevice {
 public:
  /// Plain libtorch allocation.
  CpuDevice() = default;

  /// With `hardware.cpu_memory_cache`, installs the memory cache, holding at
  /// most a quarter of physical memory idle.
  explicit CpuDevice(const TrainingConfig& config) {
    if (config.hardware.cpu_memory_cache) install_memory_cache();
  }

  /// Makes CpuMemoryCache libtorch's CPU allocator for the process.
  void install_memory_cache() const {
    const auto total = memory().total_bytes;
    const auto cap = total > 0 ? static_cast<std::size_t>(total / 4) : std::size_t{1} << 30;
    CpuMemoryCache::install(cap);
  }

  c10::Device device() const { return c10::Device(c10::DeviceType::CPU); }

  /// CPU work in libtorch is synchronous.
  void synchronize() {}

  /// Resident memory of this process and the machine's physical memory.
  DeviceMemory memory() const {
    DeviceMemory m;
    const long page = ::sysconf(_SC_PAGESIZE);
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    if (page > 0 && pages > 0) m.total_bytes = static_cast<std::int64_t>(page) * pages;
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0;
    std::int64_t resident = 0;
    if (page > 0 && (statm >> size >> resident)) m.used_bytes = resident * page;
    return m;
  }

  /// Hands the memory cache's idle blocks and freed heap pages back to the
  /// operating system.
  void release_cached_memory() {
    if (CpuMemoryCache::installed()) CpuMemoryCache::instance().release();
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
  }

  /// Pinning only helps copies to an accelerator.
  bool pin_memory() const { return false; }

  /// libtorch 1.13 autocasts on CPU to bfloat16 only.
  bool supports_autocast(c10::ScalarType dtype) const { return dtype == c10::ScalarType::BFloat16; }
};

static_assert(DevicePolicy<CpuDevice>);

}  // namespace kokoro
