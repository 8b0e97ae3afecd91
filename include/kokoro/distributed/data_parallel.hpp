// Data-parallel training over PyTorch's own c10d: the distribution policy
// of kokoro::DefaultPolicies. `hardware.distributed` chooses:
//   off   one process (every collective returns at once);
//   auto  (the default) a process group when a launcher set WORLD_SIZE > 1;
//   on    a process group, which needs the launcher's variables.
// The group meets at MASTER_ADDR:MASTER_PORT through a c10d::TCPStore,
// hosted by rank 0 as torch.distributed's env:// rendezvous does (or by
// torchrun's agent, see launch_environment.hpp), and runs Gloo, which
// carries CPU tensors; a CUDA libtorch built with NCCL carries CUDA tensors
// over NCCL (`hardware.distributed_backend`). Collectives that do not
// finish within `hardware.distributed_timeout` seconds, because a rank died
// or hangs, throw kokoro::Error naming this rank and the collective. Every
// tensor a collective takes is first put on the group's device
// (collective_device(): the CPU for Gloo, this rank's GPU for NCCL), and its
// result copied back where the caller's tensor lives: callers may hand over
// the CPU tensors they keep their counters in.
//
// Written on c10d's process groups: libtorch's DistributedDataParallel is a
// Python module (torch/nn/parallel), set up from Python around its C++
// c10d::Reducer. The Trainer's gradients go through GradientBuckets
// (gradient_buckets.hpp), which all-reduces them in buckets as backward
// makes them ready (`hardware.distributed_overlap`, on by default; off: the
// same buckets, after backward). all_reduce_sum, for everything else,
// buckets the same way after the fact.
#pragma once

#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>) && \
    __has_include(<cuda_runtime_api.h>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define KOKORO_HAS_NCCL 1
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/distribution_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/distributed/collective_group.hpp"
#include "kokoro/distributed/gradient_buckets.hpp"
#include "kokoro/distributed/launch_environment.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

/// Whether this libtorch can run NCCL process groups.
inline constexpr bool kHasNccl =
#if defined(KOKORO_HAS_NCCL)
    true;
#else
    false;
#endif

class DataParallel {
 public:
  /// The size of one all-reduce bucket (PyTorch DDP's default bucket_cap_mb).
  static constexpr std::int64_t kBucketBytes = std::int64_t{25} << 20;
  /// The first gradient bucket's, so that communication starts early in
  /// backward (DDP's _DEFAULT_FIRST_BUCKET_BYTES).
  static constexpr std::int64_t kFirstBucketBytes = std::int64_t{1} << 20;

  explicit DataParallel(const TrainingConfig& config)
      : DataParallel(config.hardware, read_launch_environment()) {}

  /// With the launch variables given (tests; programs use the one above).
  DataParallel(const HardwareSection& hardware, const LaunchEnvironment& env)
      : env_(env),
        overlap_(hardware.distributed_overlap),
        bucket_bytes_(static_cast<std::int64_t>(hardware.distributed_bucket_mb * (1 << 20))),
        timeout_(std::chrono::milliseconds(
            static_cast<std::int64_t>(hardware.distributed_timeout * 1000.0))) {
    const auto& mode = hardware.distributed;
    if (mode == "off" || (mode == "auto" && env.world_size <= 1)) {
      env_ = LaunchEnvironment{};
      return;
    }
    if (mode == "on" && !env.launched) {
      throw ConfigError(
          "hardware.distributed: on, but this process was not started by a launcher (WORLD_SIZE, "
          "RANK, MASTER_ADDR and MASTER_PORT are unset): start it with torchrun "
          "--nproc_per_node=N --no_python <program>, or set hardware.distributed: auto");
    }
    if (env.world_size <= 1) return;  // "on" in a group of one: nothing to meet
    connect(hardware.distributed_backend, trains_on_cuda(hardware.device));
  }

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  /// "gloo", "nccl", or "none" for one process.
  const std::string& backend() const { return backend_; }
  /// Where the group's collectives take their tensors: this rank's GPU for
  /// NCCL, the CPU otherwise.
  torch::Device collective_device() const { return collective_device_; }

  /// Each tensor becomes its sum over the ranks, in place, in buckets.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors) {
    if (!group_) return;
    std::size_t first = 0;
    while (first < tensors.size()) {
      // A bucket: consecutive tensors of one dtype and device, up to the cap.
      std::size_t last = first + 1;
      std::int64_t bytes = tensors[first].numel() * tensors[first].element_size();
      while (last < tensors.size() && same_kind(tensors[last], tensors[first]) &&
             bytes + tensors[last].numel() * tensors[last].element_size() <= kBucketBytes) {
        bytes += tensors[last].numel() * tensors[last].element_size();
        ++last;
      }
      reduce_bucket(tensors, first, last);
      first = last;
    }
  }

  /// Every rank's tensors become rank 0's, in place.
  void broadcast(std::vector<torch::Tensor>& tensors) {
    if (!group_ || tensors.empty()) return;
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one{carried(t)};
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      run("broadcast", [&] { return group_->broadcast(one, options); });
      if (one[0].data_ptr() != t.data_ptr()) t.copy_(one[0]);
    }
  }

  /// Rank 0's value for `key` on every rank. Rank 0 sets it in the store;
  /// the others wait for it, up to `wait` (default: the timeout), or until
  /// rank 0's store goes away. Every rank shares the same keys in order.
  std::string share(const std::string& key, const std::string& value,
                    std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    if (!group_) return value;
    const auto full = fmt::format("kokoro/share/{}/{}", key, shares_++);
    try {
      if (env_.rank == 0) {
        store_->set(full, std::vector<std::uint8_t>(value.begin(), value.end()));
        return value;
      }
      store_->wait({full}, wait.count() > 0 ? wait : timeout_);
      const auto bytes = store_->get(full);
      return std::string(bytes.begin(), bytes.end());
    } catch (const std::exception& e) {
      throw failure(fmt::format("receiving \"{}\" from rank 0", key), e);
    }
  }

  // The Trainer's gradients (see core/distribution_policy.hpp).

  /// From now on `finish_gradients` reduces these parameters' gradients.
  void track_gradients(const std::vector<torch::Tensor>& parameters) {
    if (!group_) return;
    buckets_ = std::make_unique<GradientBuckets>(
        group_, parameters,
        GradientBuckets::Options{.bucket_bytes = std::max<std::int64_t>(bucket_bytes_, 1),
                                 .first_bucket_bytes = std::min(bucket_bytes_, kFirstBucketBytes),
                                 .timeout = timeout_,
                                 .device = collective_device_,
                                 .before_start = bucket_fault_},
        [rank = env_.rank, world = env_.world_size, timeout = timeout_](const std::string& what,
                                                                        const std::exception& e) {
          return failure(rank, world, timeout, what, e);
        });
  }
  /// The next backward is the step's last (its gradients may go out).
  void expect_last_backward(double weight) {
    if (buckets_ && overlap_) buckets_->expect_last_backward(weight);
  }
  /// That backward failed and the step is run again.
  void abandon_backward() {
    if (buckets_) buckets_->abandon();
  }
  /// Every tracked gradient becomes the sum over the ranks of gradient x
  /// weight; returns `totals` summed over the ranks.
  torch::Tensor finish_gradients(double weight, const torch::Tensor& totals) {
    if (!buckets_) return totals;
    return buckets_->finish(weight, totals);
  }
  GradientOverlapReport gradient_overlap() const {
    return buckets_ ? buckets_->report() : GradientOverlapReport{};
  }
  /// Called before each gradient bucket goes out (GradientBuckets::Options::
  /// before_start): fault injection.
  void inject_bucket_fault(std::function<void(std::size_t)> fault) {
    bucket_fault_ = std::move(fault);
    if (buckets_) buckets_->set_before_start(bucket_fault_);
  }

  /// Waits until every rank arrives.
  void barrier() {
    if (!group_) return;
    run("barrier", [&] { return group_->barrier(); });
  }

 private:
  void connect(const std::string& backend, bool cuda) {
    try {
      c10d::TCPStoreOptions options;
      options.port = static_cast<std::uint16_t>(env_.master_port);
      options.isServer = env_.rank == 0 && !env_.agent_store;
      options.numWorkers = env_.world_size;
      options.waitWorkers = false;
      options.timeout = timeout_;
      options.multiTenant = true;
      c10::intrusive_ptr<c10d::Store> store =
          c10::make_intrusive<c10d::TCPStore>(env_.master_addr, options);
      // torchrun's agent store is shared by its restarts: one prefix each,
      // as torch.distributed keys it.
      if (env_.agent_store) {
        store = c10::make_intrusive<c10d::PrefixStore>(
            fmt::format("/worker/attempt_{}", env_.restart_count), store);
      }
      store_ = store;
      const bool nccl = backend == "nccl" || (backend == "auto" && kHasNccl && cuda);
      if (nccl) {
#if defined(KOKORO_HAS_NCCL)
        auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
        nccl_options->timeout = timeout_;
        group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(
            c10::make_intrusive<c10d::PrefixStore>("kokoro/nccl/", store_), env_.rank,
            env_.world_size, nccl_options);
        backend_ = "nccl";
        collective_device_ = nccl_device(env_.local_rank);
        return;
#else
        throw ConfigError(
            "hardware.distributed_backend: nccl, but this libtorch has no NCCL (a CPU build); "
            "use gloo or auto");
#endif
      }
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout_);
      gloo_options->devices.push_back(gloo_device());
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(
          c10::make_intrusive<c10d::PrefixStore>("kokoro/gloo/", store_), env_.rank,
          env_.world_size, gloo_options);
      backend_ = "gloo";
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw failure(fmt::format("meeting the group at {}:{}", env_.master_addr, env_.master_port),
                    e);
    }
  }

  /// The network device Gloo binds: GLOO_SOCKET_IFNAME's interface when set
  /// (as torch.distributed does), loopback for a group on this machine, else
  /// the address this host's name resolves to.
  std::shared_ptr<::gloo::transport::Device> gloo_device() const {
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface && *interface) {
      return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
    }
    const auto& addr = env_.master_addr;
    if (addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1") {
      return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
    }
    return c10d::ProcessGroupGloo::createDefaultDevice();
  }

  /// Whether the run's tensors will be CUDA tensors: `hardware.device`
  /// cuda, or auto where a GPU is visible (AutoDevice's choice).
  static bool trains_on_cuda(const std::string& device) {
    return device == "cuda" || (device == "auto" && torch::cuda::is_available());
  }

  static bool same_kind(const torch::Tensor& a, const torch::Tensor& b) {
    return a.scalar_type() == b.scalar_type() && a.device() == b.device();
  }

  /// This rank's GPU for NCCL: CudaDevice's choice (LOCAL_RANK modulo the
  /// visible GPUs).
  static torch::Device nccl_device(int local_rank) {
    const auto count = static_cast<int>(torch::cuda::device_count());
    return torch::Device(torch::kCUDA,
                         static_cast<c10::DeviceIndex>(count > 0 ? local_rank % count : 0));
  }

  /// The tensor as the backend carries it: on the group's device, dense.
  torch::Tensor carried(const torch::Tensor& t) const {
    if (t.device() != collective_device_) return t.to(collective_device_).contiguous();
    return t.is_contiguous() ? t : t.contiguous();
  }

  void reduce_bucket(std::vector<torch::Tensor>& tensors, std::size_t first, std::size_t last) {
    std::vector<torch::Tensor> flat_parts;
    flat_parts.reserve(last - first);
    for (std::size_t i = first; i < last; ++i) flat_parts.push_back(tensors[i].reshape({-1}));
    std::vector<torch::Tensor> bucket{carried(torch::cat(flat_parts))};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    run("all_reduce", [&] { return group_->allreduce(bucket, options); });
    std::int64_t offset = 0;
    for (std::size_t i = first; i < last; ++i) {
      auto& t = tensors[i];
      const auto n = t.numel();
      t.copy_(bucket[0].narrow(0, offset, n).view_as(t));
      offset += n;
    }
  }

  template <class Start>
  void run(const char* what, Start&& start) {
    try {
      auto work = start();
      work->wait(timeout_);
    } catch (const std::exception& e) {
      throw failure(what, e);
    }
  }

  Error failure(const std::string& what, const std::exception& e) const {
    return failure(env_.rank, env_.world_size, timeout_, what, e);
  }
  static Error failure(int rank, int world, std::chrono::milliseconds timeout,
                       const std::string& what, const std::exception& e) {
    std::string cause = e.what();
    cause = cause.substr(0, cause.find('\n'));
    return Error(
        fmt::format("rank {} of {}: {} failed: another rank stopped, or did not answer within "
                    "hardware.distributed_timeout = {} s: {}",
                    rank, world, what, std::chrono::duration<double>(timeout).count(), cause));
  }

  LaunchEnvironment env_;
  bool overlap_ = true;
  std::int64_t bucket_bytes_ = kBucketBytes;
  std::chrono::milliseconds timeout_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<CollectiveGroup> group_;
  std::string backend_ = "none";
  torch::Device collective_device_ = torch::kCPU;
  std::function<void(std::size_t)> bucket_fault_;
  std::int64_t shares_ = 0;
  // Last: its hooks call back into the group and failure().
  std::unique_ptr<GradientBuckets> buckets_;
};

static_assert(DistributionPolicy<DataParallel>);

}  // namespace kokoro
