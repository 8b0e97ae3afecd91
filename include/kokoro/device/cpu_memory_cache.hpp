// CpuMemoryCache: libtorch's CPU allocator with a cache of large blocks, so
// that a training step reuses the memory the previous step freed.
//
// Written here because glibc hands large freed blocks back to the kernel
// (anything above its mmap threshold, at most 32 MiB when set with mallopt),
// and the kernel zeroes every page again when the next step touches it: about
// a fifth of a CPU training step went to page faults. jemalloc and tcmalloc
// would need to replace malloc for the whole process (LD_PRELOAD or linking
// the program against them), which a header-only library cannot do for its
// users; a c10::Allocator is libtorch's own hook for exactly this, as its
// CUDA caching allocator is on the GPU.
//
// Blocks of at least 1 MiB are rounded up to one of 16 sizes per power of two
// and kept on free, up to the most that was ever live at once (so the process
// holds at most twice its peak) and a cap; smaller ones go straight to
// c10::alloc_cpu. A request takes the smallest idle block that fits and is at
// most twice its size (batches of different lengths ask for different sizes,
// and an exact-size cache would miss and grow on each new length). release()
// hands every idle block back; CpuDevice::release_cached_memory calls it, so
// the memory policy empties the cache under pressure like CUDA's.
#pragma once

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/Device.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace kokoro {

/// What the cache holds and has done, in bytes and counts.
struct CpuMemoryCacheStats {
  std::size_t idle_bytes = 0;       ///< cached blocks waiting for reuse
  std::size_t live_bytes = 0;       ///< cached-size blocks handed out and not yet freed
  std::size_t peak_live_bytes = 0;  ///< the most live at once: idle_bytes stays below it
  std::int64_t hits = 0;            ///< allocations served from the cache
  std::int64_t misses = 0;          ///< large allocations that went to the system
  std::int64_t releases = 0;        ///< release() calls that freed something
};

class CpuMemoryCache final : public c10::Allocator {
 public:
  /// Smallest block the cache keeps; below it, glibc reuses memory itself.
  static constexpr std::size_t kMinBlock = std::size_t{1} << 20;

  /// The process's cache. Never destroyed: tensors it allocated may outlive
  /// any scope, and their deleter comes back here.
  static CpuMemoryCache& instance() {
    static auto* cache = new CpuMemoryCache();
    return *cache;
  }

  /// Makes the cache libtorch's CPU allocator (idempotent). Tensors allocated
  /// before keep their own deleter. `max_idle_bytes` caps what is kept idle;
  /// beyond it, freed blocks go back to the system.
  static void install(std::size_t max_idle_bytes) {
    auto& cache = instance();
    {
      std::lock_guard<std::mutex> lock(cache.mutex_);
      cache.max_idle_ = max_idle_bytes;
    }
    // At the default allocator's priority, so that code which swaps in an
    // allocator of its own for a scope (a counting one in a test) still can.
    if (c10::GetCPUAllocator() != &cache) c10::SetCPUAllocator(&cache);
  }

  /// Whether the cache is libtorch's CPU allocator now.
  static bool installed() { return c10::GetCPUAllocator() == &instance(); }

  /// The size a request of `bytes` is served with: `bytes` below kMinBlock,
  /// else rounded up to a multiple of 1/16 of its power of two.
  static std::size_t block_size(std::size_t bytes) {
    if (bytes < kMinBlock) return bytes;
    const auto top = std::bit_floor(bytes);
    const auto step = top / 16;
    return (bytes + step - 1) / step * step;
  }

  // libtorch's Allocator interface in both its forms: 1.x's allocate is
  // const, 2.x's is not and adds copy_data. No `override`: each version
  // overrides one of these and takes the others as plain members.
  c10::DataPtr allocate(std::size_t bytes) const {
    return const_cast<CpuMemoryCache*>(this)->take(bytes);
  }
  c10::DataPtr allocate(std::size_t bytes) { return take(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }

  c10::DeleterFnPtr raw_deleter() const override { return &give_back; }

  /// Hands every idle block back to the system; returns the bytes freed.
  std::size_t release() {
    std::vector<void*> blocks;
    std::size_t freed = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& [size, block] : idle_) {
        freed += size;
        blocks.push_back(block);
      }
      idle_.clear();
      stats_.idle_bytes = 0;
      if (freed > 0) ++stats_.releases;
    }
    for (void* block : blocks) c10::free_cpu(block);
    return freed;
  }

  CpuMemoryCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  CpuMemoryCache() = default;

  c10::DataPtr take(std::size_t bytes) {
    const auto size = block_size(bytes);
    if (size < kMinBlock) {
      void* data = c10::alloc_cpu(size);
      return {data, data, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
    }
    void* data = nullptr;
    std::size_t held = size;  // the block's own size, which may exceed the request's
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = idle_.lower_bound(size);
      if (it != idle_.end() && it->first <= 2 * size) {
        held = it->first;
        data = it->second;
        idle_.erase(it);
        stats_.idle_bytes -= held;
        ++stats_.hits;
      } else {
        ++stats_.misses;
      }
    }
    // A miss allocates outside the lock; alloc_cpu throws c10::Error (an
    // out-of-memory the Trainer recognises) when the system refuses.
    if (data == nullptr) data = c10::alloc_cpu(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[data] = held;
      stats_.live_bytes += held;
      stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
    }
    return {data, data, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  static void give_back(void* data) { instance().put(data); }

  void put(void* data) {
    bool keep = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = sizes_.find(data);
      if (it == sizes_.end()) {
        keep = false;  // not ours (cannot happen: only cached blocks get this deleter)
      } else {
        const auto size = it->second;
        sizes_.erase(it);
        stats_.live_bytes -= size;
        // Idle memory is kept up to the most ever live at once: a step's
        // worth, never more than the cap.
        if (stats_.idle_bytes + size <= std::min(max_idle_, stats_.peak_live_bytes)) {
          idle_.emplace(size, data);
          stats_.idle_bytes += size;
          keep = true;
        }
      }
    }
    if (!keep) c10::free_cpu(data);
  }

  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> idle_;  ///< by size, for the smallest block that fits
  std::unordered_map<void*, std::size_t> sizes_;
  std::size_t max_idle_ = 0;
  CpuMemoryCacheStats stats_;
};

}  // namespace kokoro
