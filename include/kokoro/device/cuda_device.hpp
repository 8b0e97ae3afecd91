// CudaDevice: one NVIDIA GPU. It compiles everywhere; the parts that need the
// CUDA runtime (memory figures, cache release, bfloat16 capability) exist only
// where libtorch was built with CUDA (KOKORO_WITH_CUDA, set by CMake when the
// torch_cuda target exists) and the CUDA headers are present. Elsewhere they
// report "unknown" and do nothing, and the device is never chosen at run time.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/cuda.h>

#include <cstdint>
#include <cstdlib>

#if defined(KOKORO_WITH_CUDA) && __has_include(<cuda_runtime_api.h>) && \
    __has_include(<c10/cuda/CUDACachingAllocator.h>)
#define KOKORO_CUDA_RUNTIME 1
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

#include "kokoro/core/device_policy.hpp"

namespace kokoro {

/// Trains on CUDA device `index`.
class CudaDevice {
 public:
  explicit CudaDevice(c10::DeviceIndex index = 0) : index_(index) {}

  /// The GPU of this process: its launcher's LOCAL_RANK (torchrun starts
  /// one process per GPU on a node) modulo the GPUs it sees, else 0.
  static c10::DeviceIndex for_this_process() {
    const char* local_rank = std::getenv("LOCAL_RANK");
    const auto count = static_cast<long>(torch::cuda::device_count());
    if (local_rank == nullptr || count <= 0) return 0;
    char* end = nullptr;
    const long rank = std::strtol(local_rank, &end, 10);
    if (end == local_rank || *end != '\0' || rank < 0) return 0;
    return static_cast<c10::DeviceIndex>(rank % count);
  }

  c10::Device device() const { return c10::Device(c10::DeviceType::CUDA, index_); }

  /// Waits for every kernel queued on the device.
  void synchronize() { torch::cuda::synchronize(index_); }

  /// Device memory in use (by every process) and the device's total.
  DeviceMemory memory() const {
    DeviceMemory m;
#ifdef KOKORO_CUDA_RUNTIME
    int previous = 0;
    std::size_t free = 0;
    std::size_t total = 0;
    if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(index_) == cudaSuccess &&
        cudaMemGetInfo(&free, &total) == cudaSuccess) {
      m.total_bytes = static_cast<std::int64_t>(total);
      m.used_bytes = static_cast<std::int64_t>(total - free);
    }
    cudaSetDevice(previous);
#endif
    return m;
  }

  /// Returns the caching allocator's unused blocks to the driver.
  void release_cached_memory() {
#ifdef KOKORO_CUDA_RUNTIME
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  }

  /// Page-locked host batches copy asynchronously to the GPU.
  bool pin_memory() const { return true; }

  /// float16 everywhere; bfloat16 from compute capability 8.0 (Ampere) on.
  bool supports_autocast(c10::ScalarType dtype) const {
    if (dtype == c10::ScalarType::Half) return true;
    if (dtype != c10::ScalarType::BFloat16) return false;
#ifdef KOKORO_CUDA_RUNTIME
    int major = 0;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index_) ==
               cudaSuccess &&
           major >= 8;
#else
    return false;
#endif
  }

 private:
  c10::DeviceIndex index_;
};

static_assert(DevicePolicy<CudaDevice>);

}  // namespace kokoro
