// CpuDevice: the host CPU. Memory is the process's resident set against the
// machine's physical memory; releasing cached memory trims glibc's heap.
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

namespace kokoro {

/// Runs everything on the host CPU.
class CpuDevice {
 public:
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

  /// Hands freed heap pages back to the operating system.
  void release_cached_memory() {
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
