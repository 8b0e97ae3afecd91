// Memory pressure: four levels from the share of memory in use, with a
// threshold profile per device. Pure arithmetic: no torch.
//
//   profile   moderate  high  critical   (share of the device's or process's limit)
//   cuda        60%      75%    85%      caching-allocator reserve vs device memory
//   mps         50%      65%    80%      unified memory shared with the system
//   cpu         70%      85%    95%      resident memory vs cgroup limit / RAM
#pragma once

#include <cstdint>
#include <string_view>

namespace kokoro {

enum class PressureLevel { low = 0, moderate = 1, high = 2, critical = 3 };

inline std::string_view pressure_name(PressureLevel level) {
  switch (level) {
    case PressureLevel::low:
      return "low";
    case PressureLevel::moderate:
      return "moderate";
    case PressureLevel::high:
      return "high";
    case PressureLevel::critical:
      return "critical";
  }
  return "low";
}

/// Where each level starts, as a share of the available memory in [0, 1].
struct PressureThresholds {
  double moderate = 0.60;
  double high = 0.75;
  double critical = 0.85;

  PressureLevel classify(double used_share) const {
    if (used_share >= critical) return PressureLevel::critical;
    if (used_share >= high) return PressureLevel::high;
    if (used_share >= moderate) return PressureLevel::moderate;
    return PressureLevel::low;
  }
};

inline constexpr PressureThresholds kCudaPressure{0.60, 0.75, 0.85};
inline constexpr PressureThresholds kMpsPressure{0.50, 0.65, 0.80};
inline constexpr PressureThresholds kCpuPressure{0.70, 0.85, 0.95};

/// Bytes in use and the limit they count against; total <= 0 when unknown.
struct MemoryReading {
  std::int64_t used_bytes = 0;
  std::int64_t total_bytes = 0;
  bool known() const { return total_bytes > 0 && used_bytes >= 0; }
  double share() const { return known() ? static_cast<double>(used_bytes) / total_bytes : 0.0; }
};

}  // namespace kokoro
