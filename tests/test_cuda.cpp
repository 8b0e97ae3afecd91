// CUDA: the device policy, the fused grad-scaler kernels and float16
// autocast on a real GPU. Each case reports "kokoro-skip" and returns when no
// GPU is visible; ctest then lists it as skipped (tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/core/autocast.hpp>
#include <kokoro/device/auto_device.hpp>
#include <kokoro/trainer.hpp>

#include <torch/optim/sgd.h>

#include <limits>

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
  CHECK_FALSE(at::autocast::is_enabled());
  CHECK((torch::mm(a, a).scalar_type() == torch::kFloat));
}

TEST_CASE("cuda: the minimal example trains on the GPU in float16 with loss scaling") {
  KOKORO_REQUIRE_CUDA();
  struct GpuPolicies : test::SpyPolicies {
    using device = AutoDevice;
    using scaler = DynamicGradScaler;
  };
  minimal::Config config(test::quick_framework_config());
  config.hardware.mixed_precision = true;
  config.regression.hidden_dim = 64;
  config.training.batch_size = 32;
  config.training.epochs = 6;
  config.training.learning_rate = 1e-2;
  config.logging.log_every = 1000;
  Trainer<minimal::RegressionTask, GpuPolicies> trainer(config);
  CHECK(trainer.autocast().enabled);
  CHECK((trainer.autocast().dtype == torch::kHalf));
  const double before = trainer.validate().get("loss").value();
  const double after = trainer.fit().last_validation.get("loss").value();
  MESSAGE("validation loss on CUDA float16: " << before << " -> " << after);
  CHECK(after < 0.1 * before);
}
