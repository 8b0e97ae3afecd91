// Mixed precision: an RAII autocast guard for CPU and CUDA, and the decision
// of whether and in which dtype a run autocasts, given the configuration and
// the device. What cannot run turns mixed precision off with a reason, never
// an error.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "kokoro/core/device_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/util/autocast_state.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

/// Turns autocast on (or off) for one device type for its lifetime, then
/// restores the previous state; nests like `torch.autocast`. libtorch 1.13
/// autocasts CUDA (float16, bfloat16) and CPU (bfloat16 only).
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled = true)
      : device_(device) {
    if (device_ == c10::DeviceType::CUDA) {
      was_enabled_ = autocast_state::enabled(device_);
      previous_dtype_ = autocast_state::dtype(device_);
      autocast_state::set_enabled(device_, enabled);
      autocast_state::set_dtype(device_, dtype);
    } else if (device_ == c10::DeviceType::CPU) {
      if (enabled && dtype != c10::ScalarType::BFloat16) {
        throw Error(
            fmt::format("autocast on cpu supports bfloat16 only, not {}", c10::toString(dtype)));
      }
      was_enabled_ = autocast_state::enabled(device_);
      previous_dtype_ = autocast_state::dtype(device_);
      autocast_state::set_enabled(device_, enabled);
      autocast_state::set_dtype(device_, dtype);
    } else if (enabled) {
      throw Error(fmt::format("autocast is not available on {}", c10::DeviceTypeName(device_)));
    } else {
      return;
    }
    at::autocast::increment_nesting();
  }

  ~AutocastGuard() {
    if (device_ != c10::DeviceType::CUDA && device_ != c10::DeviceType::CPU) return;
    // Leaving the outermost region drops the cached low-precision weights.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    autocast_state::set_enabled(device_, was_enabled_);
    autocast_state::set_dtype(device_, previous_dtype_);
  }

  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool was_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Float;
};

/// Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16);
/// without it, bfloat16 autocast on the CPU is slower than float32.
inline bool cpu_has_native_bf16() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (!line.starts_with("flags")) continue;
    std::istringstream words(line);
    std::string flag;
    while (words >> flag) {
      if (flag == "avx512_bf16" || flag == "amx_bf16") return true;
    }
    return false;
  }
  return false;
}

/// How a run computes: autocast on or off, the dtype, and why, in words.
struct AutocastPlan {
  bool enabled = false;
  c10::DeviceType device = c10::DeviceType::CPU;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::string warning;  ///< set when mixed precision was asked for but is off

  /// "bfloat16 autocast" or "float32".
  std::string describe() const {
    return enabled
               ? fmt::format("{} autocast", dtype == c10::ScalarType::Half ? "float16" : "bfloat16")
               : "float32";
  }
};

/// Decides autocast from `hardware.mixed_precision` and `hardware.amp_dtype`
/// for `device`. "auto" means float16 on CUDA (paired with a grad scaler) and
/// bfloat16 on a CPU that computes it natively.
template <DevicePolicy D>
AutocastPlan plan_autocast(const HardwareSection& hardware, const D& device,
                           bool native_cpu_bf16 = cpu_has_native_bf16()) {
  AutocastPlan plan;
  plan.device = device.device().type();
  if (!hardware.mixed_precision) return plan;
  const bool cpu = plan.device == c10::DeviceType::CPU;
  const std::string where = c10::DeviceTypeName(plan.device, /*lower_case=*/true);
  c10::ScalarType dtype = c10::ScalarType::Half;
  if (hardware.amp_dtype == "bfloat16") {
    dtype = c10::ScalarType::BFloat16;
  } else if (hardware.amp_dtype == "auto") {
    if (cpu && !native_cpu_bf16) {
      plan.warning =
          "mixed precision is off: this CPU has no native bfloat16 (avx512_bf16 or amx_bf16), "
          "where bfloat16 runs slower than float32; set hardware.amp_dtype=bfloat16 to force it";
      return plan;
    }
    dtype = cpu ? c10::ScalarType::BFloat16 : c10::ScalarType::Half;
  }
  if (!device.supports_autocast(dtype)) {
    plan.warning = fmt::format(
        "mixed precision is off: {} autocast is not supported on {}{}; training in float32",
        dtype == c10::ScalarType::Half ? "float16" : "bfloat16", where,
        cpu ? " (libtorch autocasts the CPU to bfloat16 only)" : "");
    return plan;
  }
  plan.enabled = true;
  plan.dtype = dtype;
  return plan;
}

/// A plan for a run whose grad scaler does not scale the loss: float16
/// without loss scaling loses small gradients to underflow (and the first
/// overflow is a skipped step), so when the dtype was `auto` the run takes
/// bfloat16 (float32's range) where the device has it, else float32, and
/// says so. A float16 asked for by name stays, with a warning.
template <DevicePolicy D>
AutocastPlan without_loss_scaling(AutocastPlan plan, const HardwareSection& hardware,
                                  const D& device) {
  if (!plan.enabled || plan.dtype != c10::ScalarType::Half) return plan;
  if (hardware.amp_dtype != "auto") {
    plan.warning =
        "float16 autocast without loss scaling: small gradients may underflow to zero; use "
        "kokoro::DynamicGradScaler as the scaler policy";
    return plan;
  }
  if (device.supports_autocast(c10::ScalarType::BFloat16)) {
    plan.dtype = c10::ScalarType::BFloat16;
    return plan;
  }
  plan.enabled = false;
  plan.dtype = c10::ScalarType::Float;
  plan.warning =
      "mixed precision is off: float16 needs loss scaling and the scaler policy does none, and "
      "this device has no bfloat16; use kokoro::DynamicGradScaler for float16";
  return plan;
}

}  // namespace kokoro
