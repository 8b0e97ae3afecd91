// Memory readers: what the adaptive memory policy measures, one per device,
// as small policies so tests can inject readings (any type with
// `MemoryReading read()` and `PressureThresholds profile() const`).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

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

/// Where this process's cgroup figures are read: the cgroup that
/// /proc/self/cgroup names, under the cgroup mount. Tests point both at a
/// tree of their own.
struct CgroupPaths {
  std::filesystem::path self_cgroup = "/proc/self/cgroup";
  std::filesystem::path mount = "/sys/fs/cgroup";
};

/// The memory of this process's cgroup: its limit, the tightest of the
/// cgroup's own and its ancestors' (0 when none), and its working set (what
/// the kernel cannot reclaim without swapping: usage less inactive file
/// pages, -1 when unknown).
struct CgroupMemory {
  std::int64_t limit_bytes = 0;
  std::int64_t working_set_bytes = -1;
  std::filesystem::path cgroup;  ///< the folder the figures came from
  int version = 0;               ///< 2, 1, or 0 when no cgroup memory figures were found
};

namespace detail {

/// A byte count file ("max" and v1's ~2^63 "no limit" give 0); -1 when
/// missing or unreadable.
inline std::int64_t read_bytes(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string text;
  if (!(in >> text)) return -1;
  if (text == "max") return 0;
  try {
    const auto value = std::stoll(text);
    return value >= (std::int64_t{1} << 60) ? 0 : value;
  } catch (const std::exception&) {
    return -1;
  }
}

/// A key's value in a memory.stat file, or -1.
inline std::int64_t read_stat(const std::filesystem::path& file, std::string_view key) {
  std::ifstream in(file);
  std::string name;
  std::int64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return -1;
}

/// The smallest positive limit in `file_name` from `dir` up to `top`.
inline std::int64_t tightest_limit(std::filesystem::path dir, const std::filesystem::path& top,
                                   const char* file_name) {
  std::int64_t limit = 0;
  for (;;) {
    const auto here = read_bytes(dir / file_name);
    if (here > 0 && (limit == 0 || here < limit)) limit = here;
    if (dir == top || !dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return limit;
}

}  // namespace detail

/// Reads the memory figures of the cgroup this process is in, v2 (the line
/// "0::<path>": <mount>/<path>/memory.max, memory.current, memory.stat) or
/// v1 (the "memory" controller's line: <mount>/memory/<path>/
/// memory.limit_in_bytes, memory.usage_in_bytes, memory.stat). In a
/// container the path is "/" and the mount shows its own cgroup; under
/// Slurm or systemd it names the job's or the unit's, which is where the
/// limit that kills the process is set.
inline CgroupMemory read_cgroup_memory(const CgroupPaths& paths = {}) {
  CgroupMemory out;
  std::ifstream in(paths.self_cgroup);
  std::string v2_path, v1_path;
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const auto controllers = line.substr(first + 1, second - first - 1);
    const auto path = line.substr(second + 1);
    if (line.substr(0, first) == "0" && controllers.empty()) v2_path = path;
    std::size_t at = 0;
    while (at <= controllers.size()) {
      const auto comma = std::min(controllers.find(',', at), controllers.size());
      if (controllers.substr(at, comma - at) == "memory") v1_path = path;
      at = comma + 1;
    }
  }
  const auto under = [](const std::filesystem::path& root, const std::string& path) {
    return path.empty() || path == "/" ? root : root / std::filesystem::path(path).relative_path();
  };
  if (!v1_path.empty()) {
    const auto top = paths.mount / "memory";
    const auto dir = under(top, v1_path);
    if (detail::read_bytes(dir / "memory.usage_in_bytes") >= 0) {
      out.version = 1;
      out.cgroup = dir;
      out.limit_bytes = detail::tightest_limit(dir, top, "memory.limit_in_bytes");
      const auto usage = detail::read_bytes(dir / "memory.usage_in_bytes");
      const auto inactive = detail::read_stat(dir / "memory.stat", "total_inactive_file");
      out.working_set_bytes =
          std::max<std::int64_t>(0, usage - std::max<std::int64_t>(0, inactive));
      return out;
    }
  }
  if (!v2_path.empty()) {
    const auto dir = under(paths.mount, v2_path);
    const auto usage = detail::read_bytes(dir / "memory.current");
    out.limit_bytes = detail::tightest_limit(dir, paths.mount, "memory.max");
    if (usage >= 0 || out.limit_bytes > 0) {
      out.version = 2;
      out.cgroup = dir;
      if (usage >= 0) {
        const auto inactive = detail::read_stat(dir / "memory.stat", "inactive_file");
        out.working_set_bytes =
            std::max<std::int64_t>(0, usage - std::max<std::int64_t>(0, inactive));
      }
    }
  }
  return out;
}

/// This process's memory against its cgroup's limit (the tightest of its
/// own cgroup and its ancestors'), or the machine's memory when there is
/// none: a container's or a job's limit is what kills it. Used is the
/// cgroup's working set where the cgroup has a limit (other processes of
/// the job count against it too), else this process's resident memory.
class CpuMemoryReader {
 public:
  explicit CpuMemoryReader(CgroupPaths paths = {})
      : paths_(std::move(paths)), limit_(read_cgroup_memory(paths_).limit_bytes) {}
  MemoryReading read() const {
    const auto m = CpuDevice().memory();
    if (limit_ > 0 && (m.total_bytes <= 0 || limit_ < m.total_bytes)) {
      const auto cgroup = read_cgroup_memory(paths_);
      const auto used = cgroup.working_set_bytes >= 0
                            ? std::max(cgroup.working_set_bytes, m.used_bytes)
                            : m.used_bytes;
      return {.used_bytes = used, .total_bytes = limit_};
    }
    return {.used_bytes = m.used_bytes, .total_bytes = m.total_bytes};
  }
  PressureThresholds profile() const { return kCpuPressure; }
  std::int64_t limit_bytes() const { return limit_; }

 private:
  CgroupPaths paths_;
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
