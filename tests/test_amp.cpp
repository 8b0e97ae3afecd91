// Mixed precision: DynamicGradScaler against PyTorch's GradScaler semantics,
// the autocast guard, and how a run decides on autocast.
#include <doctest/doctest.h>

#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/core/autocast.hpp>
#include <kokoro/util/autocast_state.hpp>

#include <torch/optim/sgd.h>

#include <limits>

#include "minimal/regression_task.hpp"
#include "test_tasks.hpp"

using namespace kokoro;

namespace {

/// w = [1, 2], loss = sum(w^2): the true gradient is [2, 4].
struct Fixture {
  torch::Tensor w = torch::tensor({1.0f, 2.0f}, torch::requires_grad());
  torch::optim::SGD sgd{std::vector<torch::Tensor>{w}, torch::optim::SGDOptions(0.1)};

  /// One scaler step; `poison` puts a value into the first gradient entry.
  bool step(DynamicGradScaler& scaler, std::optional<float> poison = std::nullopt) {
    w.mutable_grad().reset();
    scaler.scale((w * w).sum()).backward();
    if (poison) w.mutable_grad().index_put_({0}, *poison);
    scaler.unscale(sgd);
    const bool taken = scaler.step(sgd);
    scaler.update();
    return taken;
  }
};

DynamicGradScaler scaler_with_interval(std::int64_t interval) {
  DynamicGradScalerOptions options;
  options.growth_interval = interval;
  return DynamicGradScaler(options);
}

}  // namespace

TEST_CASE("the scaler starts with PyTorch's defaults") {
  DynamicGradScaler scaler;
  CHECK(scaler.scale_factor() == 65536.0);
  CHECK(scaler.options().growth_factor == 2.0);
  CHECK(scaler.options().backoff_factor == 0.5);
  CHECK(scaler.options().growth_interval == 2000);
  const auto config = get_default_config();
  CHECK(DynamicGradScaler(config).scale_factor() == config.hardware.grad_scale_init);
}

TEST_CASE("scale multiplies the loss and unscale restores the true gradient") {
  DynamicGradScaler scaler;
  Fixture f;
  const auto scaled = scaler.scale((f.w * f.w).sum());
  CHECK(scaled.item<float>() == 5.0f * 65536.0f);
  scaled.backward();
  CHECK(torch::allclose(f.w.grad(), torch::tensor({2.0f, 4.0f}) * 65536.0f));
  scaler.unscale(f.sgd);
  CHECK(torch::equal(f.w.grad(), torch::tensor({2.0f, 4.0f})));
}

TEST_CASE("an overflow skips the step, halves the scale and resets the clean-step count") {
  auto scaler = scaler_with_interval(5);
  Fixture f;
  REQUIRE(f.step(scaler));
  REQUIRE(f.step(scaler));
  CHECK(scaler.growth_tracker() == 2);
  const auto before = f.w.detach().clone();
  CHECK_FALSE(f.step(scaler, std::numeric_limits<float>::infinity()));
  CHECK(torch::equal(f.w.detach(), before));  // parameters unchanged
  CHECK(scaler.scale_factor() == 32768.0);
  CHECK(scaler.growth_tracker() == 0);
  CHECK_FALSE(f.step(scaler, std::numeric_limits<float>::quiet_NaN()));
  CHECK(scaler.scale_factor() == 16384.0);
  CHECK_FALSE(f.step(scaler, -std::numeric_limits<float>::infinity()));
  CHECK(scaler.scale_factor() == 8192.0);
}

TEST_CASE("the scale grows after growth_interval clean steps") {
  auto scaler = scaler_with_interval(3);
  Fixture f;
  for (int i = 0; i < 2; ++i) CHECK(f.step(scaler));
  CHECK(scaler.scale_factor() == 65536.0);
  CHECK(f.step(scaler));
  CHECK(scaler.scale_factor() == 131072.0);
  CHECK(scaler.growth_tracker() == 0);
  CHECK(f.step(scaler));
  CHECK(scaler.growth_tracker() == 1);
}

TEST_CASE("growth that would overflow keeps the scale and still resets the count") {
  DynamicGradScalerOptions options;
  options.init_scale = 3.0e38;  // x2 is beyond float32's 3.4e38
  options.growth_interval = 1;
  DynamicGradScaler scaler(options);
  auto w = torch::tensor({1e-3f}, torch::requires_grad());  // scaled values stay finite
  torch::optim::SGD sgd({w}, torch::optim::SGDOptions(0.1));
  scaler.scale((w * w).sum()).backward();
  CHECK(scaler.step(sgd));
  scaler.update();
  CHECK(scaler.scale_factor() == doctest::Approx(3.0e38));
  CHECK(scaler.growth_tracker() == 0);
}

TEST_CASE("a finite gradient is not taken for an overflow when the scale is below one") {
  DynamicGradScalerOptions options;
  options.init_scale = 1.0 / 1024;
  DynamicGradScaler scaler(options);
  Fixture f;
  // A gradient of 1e36 is finite; unscaled (x1024) it overflows float32.
  CHECK(f.step(scaler, 1.0e36f));
  CHECK(scaler.scale_factor() == doctest::Approx(1.0 / 1024));
}

TEST_CASE("the scaler's calls must come in order") {
  DynamicGradScaler scaler;
  Fixture f;
  CHECK_THROWS_WITH_AS(scaler.unscale(f.sgd), "DynamicGradScaler: unscale() before any scale()",
                       Error);
  scaler.scale((f.w * f.w).sum()).backward();
  scaler.unscale(f.sgd);
  CHECK_THROWS_WITH_AS(scaler.unscale(f.sgd),
                       "DynamicGradScaler: unscale() was already called since the last update()",
                       Error);
  CHECK(scaler.step(f.sgd));
  scaler.update();
  CHECK_THROWS_AS(scaler.update(), Error);
}

TEST_CASE("step unscales first when unscale was not called") {
  DynamicGradScaler scaler;
  Fixture f;
  scaler.scale((f.w * f.w).sum()).backward();
  CHECK(scaler.step(f.sgd));
  scaler.update();
  CHECK(torch::allclose(f.w.detach(), torch::tensor({0.8f, 1.6f})));
}

TEST_CASE("float16 gradients are refused with a reason") {
  DynamicGradScaler scaler;
  auto w = torch::ones({2}, torch::TensorOptions().dtype(torch::kHalf).requires_grad(true));
  torch::optim::SGD sgd({w}, torch::optim::SGDOptions(0.1));
  scaler.scale(w.sum()).backward();
  CHECK_THROWS_WITH_AS(scaler.unscale(sgd),
                       doctest::Contains("float16 gradients cannot be unscaled"), Error);
}

TEST_CASE("a zero-dimensional parameter is unscaled too") {
  DynamicGradScaler scaler;
  auto w = torch::tensor(3.0f, torch::requires_grad());
  torch::optim::SGD sgd({w}, torch::optim::SGDOptions(0.1));
  scaler.scale(w * w).backward();
  scaler.unscale(sgd);
  CHECK(w.grad().item<float>() == 6.0f);
}

TEST_CASE("the state dict has PyTorch's keys and a restored scaler continues the same way") {
  auto a = scaler_with_interval(4);
  Fixture fa;
  fa.step(a);
  fa.step(a, std::numeric_limits<float>::infinity());
  fa.step(a);
  const auto state = a.state_dict();
  std::vector<std::string> keys;
  for (const auto& [key, value] : state) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"_growth_tracker", "backoff_factor", "growth_factor",
                                         "growth_interval", "scale"});
  CHECK(state_get<double>(state, "scale") == 32768.0);
  CHECK(state_get<std::int64_t>(state, "_growth_tracker") == 1);

  DynamicGradScaler b;  // default interval: load must bring 4 back
  b.load_state_dict(state);
  Fixture fb;
  for (int i = 0; i < 4; ++i) {
    fa.step(a);
    fb.step(b);
    CHECK(a.scale_factor() == b.scale_factor());
    CHECK(a.growth_tracker() == b.growth_tracker());
  }
  CHECK(b.scale_factor() == 65536.0);  // grew once, after 3 more clean steps
}

TEST_CASE("a state dict missing a key is refused by name") {
  DynamicGradScaler scaler;
  auto state = scaler.state_dict();
  state.erase("growth_interval");
  CHECK_THROWS_WITH_AS(scaler.load_state_dict(state), "state dict: missing key 'growth_interval'",
                       Error);
}

// ---- autocast -------------------------------------------------------------

TEST_CASE("the autocast guard switches CPU bfloat16 on and restores the state, nested") {
  REQUIRE_FALSE(autocast_state::enabled(c10::DeviceType::CPU));
  const auto a = torch::randn({4, 4});
  {
    AutocastGuard outer(c10::DeviceType::CPU, torch::kBFloat16);
    CHECK(autocast_state::enabled(c10::DeviceType::CPU));
    CHECK((autocast_state::dtype(c10::DeviceType::CPU) == torch::kBFloat16));
    CHECK((torch::mm(a, a).scalar_type() == torch::kBFloat16));
    {
      AutocastGuard inner(c10::DeviceType::CPU, torch::kBFloat16, /*enabled=*/false);
      CHECK_FALSE(autocast_state::enabled(c10::DeviceType::CPU));
      CHECK((torch::mm(a, a).scalar_type() == torch::kFloat));
    }
    CHECK(autocast_state::enabled(c10::DeviceType::CPU));
    CHECK((torch::mm(a, a).scalar_type() == torch::kBFloat16));
  }
  CHECK_FALSE(autocast_state::enabled(c10::DeviceType::CPU));
  CHECK((torch::mm(a, a).scalar_type() == torch::kFloat));
}

TEST_CASE("the autocast guard refuses what libtorch cannot autocast") {
  CHECK_THROWS_WITH_AS(AutocastGuard(c10::DeviceType::CPU, torch::kHalf),
                       "autocast on cpu supports bfloat16 only, not Half", Error);
  CHECK_THROWS_AS(AutocastGuard(c10::DeviceType::MPS, torch::kHalf), Error);
  CHECK_FALSE(autocast_state::enabled(c10::DeviceType::CPU));
}

namespace {

/// A device policy that claims to be `type` and to autocast what it is told.
struct FakeDevice : archetype::Device {
  c10::DeviceType type = c10::DeviceType::CUDA;
  bool half = true;
  bool bf16 = false;
  c10::Device device() const { return c10::Device(type); }
  bool supports_autocast(c10::ScalarType t) const {
    return (t == torch::kHalf && half) || (t == torch::kBFloat16 && bf16);
  }
};

HardwareSection hardware(bool mixed, const char* dtype) {
  HardwareSection h;
  h.mixed_precision = mixed;
  h.amp_dtype = dtype;
  return h;
}

}  // namespace

TEST_CASE("mixed precision is planned from the config and the device") {
  const CpuDevice cpu;
  SUBCASE("off when not asked for, without a warning") {
    const auto plan = plan_autocast(hardware(false, "auto"), cpu, true);
    CHECK_FALSE(plan.enabled);
    CHECK(plan.warning.empty());
    CHECK(plan.describe() == "float32");
  }
  SUBCASE("auto on a CPU with native bfloat16 gives bfloat16") {
    const auto plan = plan_autocast(hardware(true, "auto"), cpu, true);
    CHECK(plan.enabled);
    CHECK((plan.dtype == torch::kBFloat16));
    CHECK(plan.describe() == "bfloat16 autocast");
  }
  SUBCASE("auto on a CPU without native bfloat16 stays in float32 and says why") {
    const auto plan = plan_autocast(hardware(true, "auto"), cpu, false);
    CHECK_FALSE(plan.enabled);
    CHECK(plan.warning.find("no native bfloat16") != std::string::npos);
  }
  SUBCASE("bfloat16 asked for by name runs even without native support") {
    CHECK(plan_autocast(hardware(true, "bfloat16"), cpu, false).enabled);
  }
  SUBCASE("float16 on the CPU turns mixed precision off with one warning") {
    const auto plan = plan_autocast(hardware(true, "float16"), cpu, true);
    CHECK_FALSE(plan.enabled);
    CHECK(plan.warning ==
          "mixed precision is off: float16 autocast is not supported on cpu (libtorch "
          "autocasts the CPU to bfloat16 only); training in float32");
  }
  SUBCASE("auto on CUDA gives float16; bfloat16 needs a device that has it") {
    FakeDevice cuda;
    CHECK((plan_autocast(hardware(true, "auto"), cuda).dtype == torch::kHalf));
    CHECK((plan_autocast(hardware(true, "auto"), cuda).device == c10::DeviceType::CUDA));
    const auto plan = plan_autocast(hardware(true, "bfloat16"), cuda);
    CHECK_FALSE(plan.enabled);
    CHECK(plan.warning.find("bfloat16 autocast is not supported on cuda") != std::string::npos);
  }
  SUBCASE("without loss scaling, auto on CUDA takes bfloat16, or float32 where there is none") {
    FakeDevice ampere;
    ampere.bf16 = true;
    const auto plan = without_loss_scaling(plan_autocast(hardware(true, "auto"), ampere),
                                           hardware(true, "auto"), ampere);
    CHECK(plan.enabled);
    CHECK((plan.dtype == torch::kBFloat16));
    CHECK(plan.warning.empty());
    FakeDevice turing;  // float16 only
    const auto off = without_loss_scaling(plan_autocast(hardware(true, "auto"), turing),
                                          hardware(true, "auto"), turing);
    CHECK_FALSE(off.enabled);
    CHECK(off.warning.find("float16 needs loss scaling") != std::string::npos);
    // Asked for by name, float16 stays, with a warning.
    const auto named = without_loss_scaling(plan_autocast(hardware(true, "float16"), turing),
                                            hardware(true, "float16"), turing);
    CHECK(named.enabled);
    CHECK(named.warning.find("without loss scaling") != std::string::npos);
    // bfloat16 and float32 plans are left as they are.
    const auto cpu_plan = plan_autocast(hardware(true, "auto"), cpu, true);
    CHECK((without_loss_scaling(cpu_plan, hardware(true, "auto"), cpu).dtype == torch::kBFloat16));
  }
  SUBCASE("a device without autocast (MPS on libtorch 1.13) trains in float32") {
    FakeDevice mps;
    mps.type = c10::DeviceType::MPS;
    mps.half = false;
    const auto plan = plan_autocast(hardware(true, "auto"), mps);
    CHECK_FALSE(plan.enabled);
    CHECK(plan.warning.find("not supported on mps") != std::string::npos);
  }
}

// ---- in the Trainer ---------------------------------------------------------

namespace {

/// LinearTask whose loss is infinite on the `poisoned`-th call (1-based).
class PoisonedTask : public test::LinearTask {
 public:
  using LinearTask::LinearTask;
  Loss loss(const Batch& b) {
    auto l = LinearTask::loss(b);
    if (++calls_ == poisoned) l.total = l.total * std::numeric_limits<float>::infinity();
    return l;
  }
  int poisoned = 2;

 private:
  int calls_ = 0;
};

struct ScaledSpyPolicies : test::SpyPolicies {
  using scaler = DynamicGradScaler;
};

}  // namespace

TEST_CASE("in the trainer an overflowing step is skipped and the schedule does not advance") {
  auto config = test::quick_config();
  Trainer<PoisonedTask, ScaledSpyPolicies> trainer(config);
  trainer.task().train = test::split(test::linear_data(6), {2, 2, 2});
  const auto summary = trainer.fit();
  CHECK(summary.global_step == 3);
  CHECK(summary.skipped_steps == 1);
  CHECK(trainer.scheduler().clocks.size() == 2);  // only the two steps taken
  CHECK(trainer.scaler().scale_factor() == 32768.0);
  CHECK(trainer.logger().last_metrics.get("skipped_steps") == 1.0);
  CHECK(trainer.logger().last_metrics.get("grad_scale") == 32768.0);
  for (const auto& p : trainer.task().model().parameters())
    CHECK(torch::isfinite(p).all().item<bool>());
}

TEST_CASE("the minimal example under CPU bfloat16 autocast ends within 10% of float32") {
  auto train = [](bool mixed) {
    minimal::Config config(test::quick_framework_config());
    config.hardware.mixed_precision = mixed;
    config.hardware.amp_dtype = "bfloat16";
    config.regression.hidden_dim = 64;
    config.training.batch_size = 32;
    config.training.epochs = 8;
    config.training.learning_rate = 1e-2;
    config.logging.log_every = 1000;
    Trainer<minimal::RegressionTask, test::SpyPolicies> trainer(config);
    CHECK(trainer.autocast().enabled == mixed);
    const double before = trainer.validate().get("loss").value();
    const double after = trainer.fit().last_validation.get("loss").value();
    CHECK(after < 0.1 * before);
    return after;
  };
  const double fp32 = train(false);
  const double bf16 = train(true);
  MESSAGE("validation loss after 8 epochs: float32 " << fp32 << ", bfloat16 autocast " << bf16);
  CHECK(std::abs(bf16 - fp32) <= 0.1 * fp32);
}
