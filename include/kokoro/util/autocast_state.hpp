// libtorch's autocast switches, one spelling for every libtorch kokoro builds
// with: 1.x names them per device (is_enabled / set_enabled for CUDA,
// is_cpu_enabled / set_cpu_enabled for the CPU), 2.4 and later take the
// device type (is_autocast_enabled(device)) and warn at every call of the old
// names. Only CPU and CUDA autocast here.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define KOKORO_AUTOCAST_BY_DEVICE 1
#endif

namespace kokoro::autocast_state {

inline bool enabled(c10::DeviceType device) {
#if defined(KOKORO_AUTOCAST_BY_DEVICE)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled()
                                         : at::autocast::is_cpu_enabled();
#endif
}

inline void set_enabled(c10::DeviceType device, bool on) {
#if defined(KOKORO_AUTOCAST_BY_DEVICE)
  at::autocast::set_autocast_enabled(device, on);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
#endif
}

inline c10::ScalarType dtype(c10::DeviceType device) {
#if defined(KOKORO_AUTOCAST_BY_DEVICE)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_dtype(c10::DeviceType device, c10::ScalarType type) {
#if defined(KOKORO_AUTOCAST_BY_DEVICE)
  at::autocast::set_autocast_dtype(device, type);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(type);
  } else {
    at::autocast::set_autocast_cpu_dtype(type);
  }
#endif
}

/// Whether autocast is on for the CPU or for CUDA.
inline bool any_enabled() {
  return enabled(c10::DeviceType::CPU) || enabled(c10::DeviceType::CUDA);
}

}  // namespace kokoro::autocast_state
