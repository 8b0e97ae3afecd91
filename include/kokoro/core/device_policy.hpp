// The device role: where tensors live and what the device can tell and do
// (synchronise, report and release memory, pin host memory, autocast dtypes).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <concepts>
#include <cstdint>
#include <string>

namespace kokoro {

/// Memory of a device in bytes; -1 where the device cannot say.
struct DeviceMemory {
  std::int64_t used_bytes = -1;
  std::int64_t total_bytes = -1;
};

namespace detail::device {
template <class D>
concept has_device = requires(const D& d) {
  { d.device() } -> std::convertible_to<c10::Device>;
};
template <class D>
concept has_synchronize = requires(D& d) {
  d.synchronize();
};
template <class D>
concept has_memory = requires(const D& d) {
  { d.memory() } -> std::same_as<DeviceMemory>;
};
template <class D>
concept has_release_cached_memory = requires(D& d) {
  d.release_cached_memory();
};
template <class D>
concept has_pin_memory = requires(const D& d) {
  { d.pin_memory() } -> std::convertible_to<bool>;
};
template <class D>
concept has_supports_autocast = requires(const D& d, c10::ScalarType t) {
  { d.supports_autocast(t) } -> std::convertible_to<bool>;
};
}  // namespace detail::device

/// A device policy.
///  - `torch::Device device() const`: where the model and batches go.
///  - `void synchronize()`: wait for queued work (a no-op on CPU).
///  - `kokoro::DeviceMemory memory() const`: used and total bytes, -1 if unknown.
///  - `void release_cached_memory()`: return cached, unused memory.
///  - `bool pin_memory() const`: whether host batches should be page-locked.
///  - `bool supports_autocast(c10::ScalarType) const`: autocast dtypes it runs.
template <class D>
concept DevicePolicy = detail::device::has_device<D> && detail::device::has_synchronize<D> &&
    detail::device::has_memory<D> && detail::device::has_release_cached_memory<D> &&
    detail::device::has_pin_memory<D> && detail::device::has_supports_autocast<D>;

/// Fails to compile, naming the first missing member, when D is not a DevicePolicy.
template <class D>
constexpr bool check_device_policy() {
  static_assert(detail::device::has_device<D>,
                "kokoro: the device policy needs `torch::Device device() const` "
                "(see kokoro/core/device_policy.hpp)");
  static_assert(detail::device::has_synchronize<D>,
                "kokoro: the device policy needs `void synchronize()` "
                "(see kokoro/core/device_policy.hpp)");
  static_assert(detail::device::has_memory<D>,
                "kokoro: the device policy needs `kokoro::DeviceMemory memory() const` "
                "(see kokoro/core/device_policy.hpp)");
  static_assert(detail::device::has_release_cached_memory<D>,
                "kokoro: the device policy needs `void release_cached_memory()` "
                "(see kokoro/core/device_policy.hpp)");
  static_assert(detail::device::has_pin_memory<D>,
                "kokoro: the device policy needs `bool pin_memory() const` "
                "(see kokoro/core/device_policy.hpp)");
  static_assert(detail::device::has_supports_autocast<D>,
                "kokoro: the device policy needs `bool supports_autocast(c10::ScalarType) const` "
                "(see kokoro/core/device_policy.hpp)");
  return true;
}

namespace archetype {

/// The smallest device policy: copy it to start your own.
struct Device {
  c10::Device device() const { return c10::Device(c10::DeviceType::CPU); }
  void synchronize() {}
  DeviceMemory memory() const { return {}; }
  void release_cached_memory() {}
  bool pin_memory() const { return false; }
  bool supports_autocast(c10::ScalarType) const { return false; }
};
static_assert(DevicePolicy<Device>);

}  // namespace archetype
}  // namespace kokoro
