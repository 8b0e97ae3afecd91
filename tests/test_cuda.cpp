// CUDA: the device policy, the fused grad-scaler kernels and float16
// autocast on a real GPU. Each case reports "kokoro-skip" and returns when no
// GPU is visible; ctest then lists it as skipped (tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/core/autocast.hpp>
#include <kokoro/device/auto_device.hpp>
#include <kokoro/distributed/data_parallel.hpp>
#include <kokoro/distributed/gradient_buckets.hpp>
#include <kokoro/memory/adaptive_memory.hpp>
#include <kokoro/trainer.hpp>
#include <kokoro/util/autocast_state.hpp>

#include <torch/optim/sgd.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <limits>
#include <string>

#include "minimal/regression_task.hpp"
#include "test_tasks.hpp"

using namespace kokoro;

#define KOKORO_REQUIRE_CUDA()                      \
  do {                                             \
    if (!torch::cuda::is_available()) {            \
      MESSAGE("kokoro-skip: no CUDA device here"); \
      return;                                      \
    }                                              \
  } while (false)

TEST_CASE("cuda: the CUDA device places tensors, synchronises and reads its memory") {
  KOKORO_REQUIRE_CUDA();
  CudaDevice cuda;
  const auto t = torch::ones({1024, 1024}).to(cuda.device());
  CHECK(t.is_cuda());
  cuda.synchronize();
  const auto m = cuda.memory();
  CHECK(m.total_bytes > 0);
  CHECK(m.used_bytes > 0);
  CHECK(m.used_bytes <= m.total_bytes);
  cuda.release_cached_memory();
  CHECK(cuda.pin_memory());
  CHECK(cuda.supports_autocast(torch::kHalf));
  CHECK(AutoDevice().type() == DeviceType::CUDA);
}

TEST_CASE("cuda: the fused scaler kernels give the CPU path's sequence") {
  KOKORO_REQUIRE_CUDA();
  auto run = [](c10::Device device) {
    DynamicGradScalerOptions options;
    options.growth_interval = 2;
    DynamicGradScaler scaler(options);
    auto w = torch::tensor({1.0f, -2.0f, 0.5f}, torch::TensorOptions().device(device))
                 .requires_grad_(true);
    torch::optim::SGD sgd({w}, torch::optim::SGDOptions(0.01));
    std::vector<double> scales;
    for (int step = 0; step < 7; ++step) {
      w.mutable_grad().reset();
      scaler.scale((w * w * w).sum()).backward();
      if (step == 3) w.mutable_grad().index_put_({1}, std::numeric_limits<float>::infinity());
      scaler.step(sgd);
      scaler.update();
      scales.push_back(scaler.scale_factor());
    }
    return std::make_pair(scales, w.detach().cpu());
  };
  const auto [cpu_scales, cpu_w] = run(torch::kCPU);
  const auto [gpu_scales, gpu_w] = run(torch::kCUDA);
  CHECK(cpu_scales == gpu_scales);
  CHECK(torch::allclose(cpu_w, gpu_w));
}

TEST_CASE("cuda: float16 autocast lowers matmuls and the guard restores the state") {
  KOKORO_REQUIRE_CUDA();
  const auto a = torch::randn({64, 64}, torch::kCUDA);
  {
    AutocastGuard guard(c10::DeviceType::CUDA, torch::kHalf);
    CHECK((torch::mm(a, a).scalar_type() == torch::kHalf));
  }
  CHECK_FALSE(autocast_state::enabled(c10::DeviceType::CUDA));
  CHECK((torch::mm(a, a).scalar_type() == torch::kFloat));
}

namespace {

struct GpuScaledPolicies : test::SpyPolicies {
  using device = AutoDevice;
  using scaler = DynamicGradScaler;
};

/// The minimal example on the GPU under `amp_dtype` autocast: its
/// validation loss before and after 6 epochs, with the autocast it chose.
void train_minimal_on_gpu(const std::string& amp_dtype, c10::ScalarType expected) {
  minimal::Config config(test::quick_framework_config());
  config.hardware.mixed_precision = true;
  config.hardware.amp_dtype = amp_dtype;
  config.regression.hidden_dim = 64;
  config.training.batch_size = 32;
  config.training.epochs = 6;
  config.training.learning_rate = 1e-2;
  config.logging.log_every = 1000;
  Trainer<minimal::RegressionTask, GpuScaledPolicies> trainer(config);
  CHECK(trainer.autocast().enabled);
  CHECK((trainer.autocast().dtype == expected));
  const double before = trainer.validate().get("loss").value();
  const double after = trainer.fit().last_validation.get("loss").value();
  MESSAGE("validation loss on CUDA " << amp_dtype << ": " << before << " -> " << after);
  CHECK(after < 0.1 * before);
}

}  // namespace

TEST_CASE("cuda: the minimal example trains on the GPU in float16 with loss scaling") {
  KOKORO_REQUIRE_CUDA();
  train_minimal_on_gpu("float16", torch::kHalf);
}

#if defined(KOKORO_HAS_NCCL)
TEST_CASE("cuda: gradient buckets on an NCCL group send every tensor from the GPU") {
  KOKORO_REQUIRE_CUDA();
  // NCCL refuses CPU tensors: the step's totals (a CPU tensor, as the
  // Trainer keeps them) must travel on the group's device.
  auto group =
      c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::HashStore>(), 0, 1);
  const torch::Device gpu(torch::kCUDA, 0);
  auto w = torch::randn({64, 64}, gpu).requires_grad_(true);
  auto unused = torch::randn({8}, gpu).requires_grad_(true);
  GradientBuckets buckets(group, {w, unused}, {.device = gpu},
                          [](const std::string& what, const std::exception& e) {
                            return Error(what + ": " + e.what());
                          });
  buckets.expect_last_backward(3.0);
  (w * w).sum().backward();
  const auto totals = torch::tensor({3.0, 0.25, 0.0}, torch::kDouble);
  const auto summed = buckets.finish(3.0, totals);
  CHECK(summed.device().is_cpu());
  CHECK(torch::equal(summed, totals));
  CHECK(torch::allclose(w.grad(), 2 * w.detach() * 3.0));
  CHECK_FALSE(unused.grad().defined());
}
#endif

TEST_CASE("cuda: a checkpoint carries the GPU generator, and loading it draws the same again") {
  KOKORO_REQUIRE_CUDA();
  struct GpuPolicies : test::SpyPolicies {
    using device = AutoDevice;
  };
  auto config = test::quick_config();
  config.model.dropout = 0.5;
  Trainer<test::LinearTask, GpuPolicies> trainer(config);
  const auto saved = trainer.checkpoint();
  REQUIRE(saved.contains("cuda_rng_states"));
  const auto first = torch::rand({16}, torch::kCUDA);
  const auto path = std::filesystem::temp_directory_path() /
                    ("kokoro-cuda-rng-" + std::to_string(::getpid()) + ".pt");
  save_checkpoint_file(path, saved);
  trainer.load_checkpoint(path);
  CHECK(torch::equal(torch::rand({16}, torch::kCUDA), first));
  std::filesystem::remove(path);
}

TEST_CASE("cuda: adaptive memory reads the caching allocator and releases it under pressure") {
  KOKORO_REQUIRE_CUDA();
  CudaMemoryReader reader;
  const auto before = reader.read();
  REQUIRE(before.total_bytes > 0);
  auto block = torch::empty({std::int64_t{256} << 20}, torch::TensorOptions(torch::kCUDA));
  const auto holding = reader.read();
  // Reserved by the caching allocator, against the device's total.
  CHECK(holding.used_bytes >= before.used_bytes + (std::int64_t{1} << 30));
  block.reset();
  // The 60/75/85% profile; thresholds under this reading make it critical
  // pressure, which releases the cache at once.
  AdaptiveMemoryOptions options;
  options.thresholds = kCudaPressure;
  CHECK(options.thresholds.moderate == doctest::Approx(0.60));
  CHECK(options.thresholds.high == doctest::Approx(0.75));
  CHECK(options.thresholds.critical == doctest::Approx(0.85));
  const double share = reader.read().share();
  options.thresholds = {share * 0.1, share * 0.3, share * 0.6};
  AdaptiveMemory<CudaMemoryReader> memory(reader, options);
  const Metrics none;
  const auto action = memory.after_step(StepContext{.metrics = none});
  CHECK(memory.level() == PressureLevel::critical);
  CHECK(action == MemoryAction::release_cache);
  CudaDevice().release_cached_memory();
  CHECK(reader.read().used_bytes < holding.used_bytes);
}

namespace {

/// The linear task on the GPU whose forward also holds `bytes_per_sample`
/// of scratch per sample, so a batch can be made too large for the device.
struct HungryTask : test::LinearTask {
  using LinearTask::LinearTask;
  Loss loss(const Batch& b) {
    const auto scratch =
        torch::zeros({b.size() * bytes_per_sample / 4}, torch::TensorOptions(torch::kCUDA));
    auto result = LinearTask::loss(b);
    result.total = result.total + scratch.sum() * 0;
    return result;
  }
  std::int64_t bytes_per_sample = 0;
};

}  // namespace

#if defined(KOKORO_CUDA_RUNTIME)
TEST_CASE("cuda: a real out-of-memory error is recovered by running the batch in halves") {
  KOKORO_REQUIRE_CUDA();
  struct GpuPolicies : test::SpyPolicies {
    using device = AutoDevice;
  };
  CudaDevice().release_cached_memory();
  const auto total = CudaDevice().memory().total_bytes;
  constexpr double kFraction = 0.05;
  c10::cuda::CUDACachingAllocator::setMemoryFraction(kFraction, 0);
  struct Restore {
    ~Restore() {
      c10::cuda::CUDACachingAllocator::setMemoryFraction(1.0, 0);
      CudaDevice().release_cached_memory();
    }
  } restore;
  auto config = test::quick_config();
  config.training.batch_size = 8;
  Trainer<HungryTask, GpuPolicies> trainer(config);
  // 8 samples need 4/3 of the allowed memory, 4 need 2/3.
  trainer.task().bytes_per_sample = static_cast<std::int64_t>(total * kFraction / 6);
  const auto data = test::linear_data(8);
  const auto result = trainer.step(std::span(&data, 1));
  CHECK(result.taken);
  CHECK(trainer.oom_recoveries() == 1);
}
#endif

TEST_CASE("cuda: the minimal example trains on the GPU under bfloat16 autocast") {
  KOKORO_REQUIRE_CUDA();
  if (!CudaDevice().supports_autocast(torch::kBFloat16)) {
    MESSAGE("kokoro-skip: this GPU has no bfloat16");
    return;
  }
  const auto probe = torch::randn({8, 8}, torch::kCUDA);
  {
    AutocastGuard guard(c10::DeviceType::CUDA, torch::kBFloat16);
    CHECK((torch::mm(probe, probe).scalar_type() == torch::kBFloat16));
  }
  train_minimal_on_gpu("bfloat16", torch::kBFloat16);
}
