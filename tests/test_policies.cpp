// Conformance: every shipped policy (and each role's archetype) satisfies its
// concept and the role's behavioural contract; plus the small value types.
#include <doctest/doctest.h>

#include <torch/optim/sgd.h>

#include <sstream>

#include <kokoro/amp/dynamic_grad_scaler.hpp>

#include "minimal/halving_lr.hpp"
#include "test_tasks.hpp"

using namespace kokoro;

// ---- distribution -----------------------------------------------------------

/// DataParallel as one process builds it (no launcher): a group of one.
struct SingleDataParallel : DataParallel {
  SingleDataParallel() : DataParallel(HardwareSection{}, LaunchEnvironment{}) {}
};

TEST_CASE_TEMPLATE("a distribution policy of one process leaves tensors and values as they are", D,
                   SingleProcess, SingleDataParallel) {
  static_assert(DistributionPolicy<D>);
  D distribution;
  CHECK(distribution.rank() == 0);
  CHECK(distribution.world_size() == 1);
  std::vector<torch::Tensor> tensors{torch::arange(4.0), torch::ones({2, 3}, torch::kDouble)};
  const auto before = std::vector<torch::Tensor>{tensors[0].clone(), tensors[1].clone()};
  distribution.all_reduce_sum(tensors);
  distribution.broadcast(tensors);
  CHECK(torch::equal(tensors[0], before[0]));
  CHECK(torch::equal(tensors[1], before[1]));
  CHECK(distribution.share("key", "value") == "value");
}

// ---- device ---------------------------------------------------------------

TEST_CASE_TEMPLATE("a device policy places tensors and reports memory sanely", D, CpuDevice,
                   AutoDevice, archetype::Device) {
  static_assert(DevicePolicy<D>);
  D device;
  const auto t = torch::ones({2, 2}).to(device.device());
  CHECK(t.device() == device.device());
  device.synchronize();
  device.release_cached_memory();
  const auto m = device.memory();
  CHECK(m.used_bytes >= -1);
  CHECK(m.total_bytes >= -1);
  if (m.used_bytes >= 0 && m.total_bytes >= 0) CHECK(m.used_bytes <= m.total_bytes);
  CHECK_FALSE(device.supports_autocast(torch::kFloat));  // float32 is never an autocast dtype
}

TEST_CASE("the CPU device reads this process's memory and autocasts to bfloat16 only") {
  CpuDevice cpu;
  const auto m = cpu.memory();
  CHECK(m.used_bytes > 0);
  CHECK(m.total_bytes > m.used_bytes);
  CHECK(cpu.supports_autocast(torch::kBFloat16));
  CHECK_FALSE(cpu.supports_autocast(torch::kHalf));
  CHECK(cpu.device().is_cpu());
  CHECK_FALSE(cpu.pin_memory());
}

TEST_CASE("device names resolve, auto falls back to the CPU here") {
  CHECK(device_type_name(DeviceType::CUDA) == "cuda");
  CHECK(to_torch(DeviceType::MPS) == c10::DeviceType::MPS);
  CHECK(is_available(DeviceType::CPU));
  CHECK(resolve_device_type("cpu") == DeviceType::CPU);
  const auto expected = is_available(DeviceType::CUDA)  ? DeviceType::CUDA
                        : is_available(DeviceType::MPS) ? DeviceType::MPS
                                                        : DeviceType::CPU;
  CHECK(resolve_device_type("auto") == expected);
  CHECK(AutoDevice().type() == expected);
  CHECK_THROWS_WITH_AS(resolve_device_type("tpu"),
                       "hardware.device: must be one of: auto, cuda, mps, cpu (got \"tpu\")",
                       ConfigError);
}

TEST_CASE("asking for a device that is missing stops before training, naming the field") {
  if (is_available(DeviceType::CUDA)) return;  // this machine has one
  auto config = test::quick_config();
  config.hardware.device = "cuda";
  CHECK_THROWS_WITH_AS((Trainer<test::LinearTask, test::SpyPolicies>(config)),
                       doctest::Contains("hardware.device: 'cuda' was requested but"), ConfigError);
}

// ---- grad scaler ----------------------------------------------------------

TEST_CASE_TEMPLATE("a grad scaler yields true gradients after unscale and takes finite steps", S,
                   NoGradScaler, DynamicGradScaler, archetype::GradScaler) {
  static_assert(GradScalerPolicy<S>);
  S scaler;
  auto w = torch::tensor({1.0f, 2.0f}, torch::requires_grad());
  torch::optim::SGD sgd({w}, torch::optim::SGDOptions(0.1));
  const auto loss = (w * w).sum();  // gradient 2w = [2, 4]
  scaler.scale(loss).backward();
  scaler.unscale(sgd);
  CHECK(torch::allclose(w.grad(), torch::tensor({2.0f, 4.0f})));
  CHECK(scaler.step(sgd));
  scaler.update();
  CHECK(torch::allclose(w.detach(), torch::tensor({0.8f, 1.6f})));
  CHECK(scaler.scale_factor() > 0.0);
}

// ---- scheduler ------------------------------------------------------------

TEST_CASE_TEMPLATE("a scheduler keeps the rate positive and at most the base rate", S, ConstantLR,
                   archetype::Scheduler, minimal::HalvingLR) {
  static_assert(SchedulerPolicy<S>);
  S scheduler;
  for (std::int64_t epoch = 0; epoch < 10; ++epoch) {
    for (std::int64_t step = 1; step <= 5; ++step) {
      scheduler.on_step(ScheduleClock{.epoch = epoch,
                                      .step_in_epoch = step,
                                      .steps_per_epoch = 5,
                                      .global_step = epoch * 5 + step});
      const double lr = scheduler.lr(1e-3);
      CHECK(lr > 0.0);
      CHECK(lr <= 1e-3);
    }
    scheduler.on_epoch_end(ScheduleClock{
        .epoch = epoch, .step_in_epoch = 5, .steps_per_epoch = 5, .global_step = epoch * 5 + 5});
  }
}

TEST_CASE("ConstantLR returns every base rate unchanged") {
  ConstantLR s;
  s.on_epoch_end({});
  CHECK(s.lr(0.3) == 0.3);
  CHECK(s.lr(1e-5) == 1e-5);
}

// ---- memory ---------------------------------------------------------------

TEST_CASE_TEMPLATE("a memory policy answers after every step", M, NoMemoryPolicy,
                   archetype::Memory) {
  static_assert(MemoryPolicy<M>);
  M memory;
  const Metrics none;
  CHECK(memory.after_step(StepContext{.epoch = 0,
                                      .global_step = 1,
                                      .step_in_epoch = 1,
                                      .steps_per_epoch = 1,
                                      .samples = 8,
                                      .step_taken = true,
                                      .metrics = none}) == MemoryAction::none);
}

// ---- logger ---------------------------------------------------------------

TEST_CASE_TEMPLATE("a logger accepts a whole run's hooks", L, ConsoleLogger, archetype::Logger,
                   Loggers<archetype::Logger>, test::SpyLogger) {
  static_assert(LoggerPolicy<L>);
  std::ostringstream sink;
  L logger = [&] {
    if constexpr (std::is_same_v<L, ConsoleLogger>) {
      return ConsoleLogger(sink);
    } else {
      return L{};
    }
  }();
  const auto config = get_default_config();
  Metrics m;
  m.set("loss", 0.5);
  notify_train_begin(logger, test::run_context(config, "cpu", "float32", 10, 1, 0, 1, 0));
  notify_epoch_begin(
      logger,
      EpochContext{.epoch = 0, .global_step = 0, .train = m, .validation = m, .seconds = 0.0});
  logger.on_step(StepContext{.epoch = 0,
                             .global_step = 1,
                             .step_in_epoch = 1,
                             .steps_per_epoch = 1,
                             .samples = 4,
                             .step_taken = true,
                             .metrics = m});
  logger.on_epoch_end(
      EpochContext{.epoch = 0, .global_step = 1, .train = m, .validation = m, .seconds = 0.5});
  notify_train_end(logger, RunSummary{.epochs_completed = 1,
                                      .global_step = 1,
                                      .seconds = 0.5,
                                      .last_train = m,
                                      .last_validation = m});
  CHECK(true);  // reaching here without throwing is the contract
}

TEST_CASE("the console logger writes a banner, step lines, epoch lines and a summary") {
  std::ostringstream out;
  ConsoleLogger logger(out);
  const auto config = get_default_config();
  Metrics step;
  step.set("loss", 0.123456);
  step.set("lr", 1e-4);
  step.set("samples_per_sec", 1234.56);
  Metrics valid;
  valid.set("loss", 0.25);
  logger.on_train_begin(test::run_context(config, "cpu", "bfloat16 autocast", 641, 2, 0, 3, 0));
  logger.on_step(StepContext{.epoch = 0,
                             .global_step = 7,
                             .step_in_epoch = 7,
                             .steps_per_epoch = 16,
                             .samples = 32,
                             .step_taken = true,
                             .metrics = step});
  logger.on_step(StepContext{.epoch = 0,
                             .global_step = 8,
                             .step_in_epoch = 8,
                             .steps_per_epoch = 0,
                             .samples = 32,
                             .step_taken = false,
                             .metrics = step});
  logger.on_epoch_end(EpochContext{
      .epoch = 0, .global_step = 16, .train = step, .validation = valid, .seconds = 1.25});
  logger.on_train_end(RunSummary{.epochs_completed = 3,
                                 .global_step = 48,
                                 .skipped_steps = 2,
                                 .seconds = 4.0,
                                 .stopped_by_max_steps = true,
                                 .last_train = step,
                                 .last_validation = valid});
  const auto text = out.str();
  CHECK(text.find("kokoro: training on cpu (bfloat16 autocast) with 2 threads, 641 parameters, "
                  "epochs 1..3\n") != std::string::npos);
  CHECK(text.find("epoch 1/3 step 7/16 (global 7) | loss 0.1235 | lr 1.000e-04 | "
                  "samples_per_sec 1234.6\n") != std::string::npos);
  CHECK(text.find("epoch 1/3 step 8 (global 8) skipped |") != std::string::npos);
  CHECK(text.find("epoch 1/3 done in 1.2 s | train: loss 0.1235") != std::string::npos);
  CHECK(text.find("| validation: loss 0.25\n") != std::string::npos);
  CHECK(text.find("kokoro: finished 3 epochs (48 steps, 2 skipped) in 4.0 s, stopped at "
                  "training.max_steps\n") != std::string::npos);
  CHECK(text.find("went on through") == std::string::npos);
  // A resumed call counts its own steps and says where in the run they were;
  // the troubles it trained through get a line.
  std::ostringstream resumed_out;
  ConsoleLogger resumed(resumed_out);
  resumed.on_train_end(RunSummary{.epochs_completed = 0,
                                  .global_step = 10,
                                  .seconds = 2.0,
                                  .stopped_by_time_limit = true,
                                  .nonfinite_steps = 2,
                                  .logger_failures = 7,
                                  .start_step = 5});
  CHECK(resumed_out.str() ==
        "kokoro: finished 0 epochs (5 steps, steps 6..10 of the run) in 2.0 s, stopped at "
        "training.max_minutes\n"
        "kokoro: training went on through 2 non-finite steps not applied, 7 logger failures\n");
}

TEST_CASE("on a terminal the console draws a progress bar instead of step lines") {
  std::ostringstream out;
  ConsoleLogger logger(out, ConsoleLogger::Mode::progress);
  CHECK(logger.shows_progress());
  CHECK_FALSE(ConsoleLogger(out, ConsoleLogger::Mode::plain).shows_progress());
  const auto config = get_default_config();
  const Metrics none;
  Metrics logged;
  logged.set("loss", 0.5);
  logger.on_train_begin(test::run_context(config, "cpu", "float32", 10, 1, 0, 2, 0));
  logger.on_epoch_begin(EpochContext{
      .epoch = 0, .global_step = 0, .train = none, .validation = none, .seconds = 0.0});
  logger.on_step_end(StepContext{.epoch = 0,
                                 .global_step = 1,
                                 .step_in_epoch = 1,
                                 .steps_per_epoch = 4,
                                 .samples = 8,
                                 .step_taken = true,
                                 .metrics = none});
  logger.on_step(StepContext{.epoch = 0,
                             .global_step = 2,
                             .step_in_epoch = 2,
                             .steps_per_epoch = 4,
                             .samples = 8,
                             .step_taken = true,
                             .metrics = logged});  // no line: the bar shows it
  logger.on_step_end(StepContext{.epoch = 0,
                                 .global_step = 4,
                                 .step_in_epoch = 4,
                                 .steps_per_epoch = 4,
                                 .samples = 8,
                                 .step_taken = true,
                                 .metrics = none});  // the last step is always drawn
  Metrics train;
  train.set("loss", 0.4);
  train.set("lr", 1e-3);
  logger.on_epoch_end(EpochContext{
      .epoch = 0, .global_step = 4, .train = train, .validation = none, .seconds = 0.5});
  logger.on_train_end(RunSummary{.epochs_completed = 1,
                                 .global_step = 4,
                                 .seconds = 0.5,
                                 .last_train = train,
                                 .last_validation = none});
  const auto text = out.str();
  CHECK(text.find("\repoch 1/2  25% [######..................] 1/4 ") != std::string::npos);
  CHECK(text.find("\repoch 1/2 100% [########################] 4/4 ") != std::string::npos);
  CHECK(text.find("| loss 0.5000") != std::string::npos);  // the running loss
  CHECK(text.find("steps/s") != std::string::npos);
  CHECK(text.find("step 2/4 (global 2)") == std::string::npos);
  CHECK(text.find("\r\033[Kepoch 1/2 done in 0.5 s") != std::string::npos);  // the bar cleared
  // The table of epochs at the end.
  CHECK(text.find("epoch   train loss   valid loss          lr  seconds\n") != std::string::npos);
  CHECK(text.find("     1       0.4000            -   1.000e-03      0.5\n") != std::string::npos);
}

TEST_CASE("off a terminal the console prints no progress bar") {
  std::ostringstream out;
  ConsoleLogger logger(out);
  const auto config = get_default_config();
  const Metrics none;
  logger.on_train_begin(test::run_context(config, "cpu", "float32", 10, 1, 0, 2, 0));
  logger.on_epoch_begin(EpochContext{
      .epoch = 0, .global_step = 0, .train = none, .validation = none, .seconds = 0.0});
  logger.on_step_end(StepContext{.epoch = 0,
                                 .global_step = 4,
                                 .step_in_epoch = 4,
                                 .steps_per_epoch = 4,
                                 .samples = 8,
                                 .step_taken = true,
                                 .metrics = none});
  CHECK(out.str().find('\r') == std::string::npos);
}

TEST_CASE("Loggers fans every hook out to each logger in order") {
  Loggers<test::SpyLogger, archetype::Logger, test::SpyLogger> both;
  const Metrics m;
  test::events().clear();
  both.on_step(StepContext{.epoch = 0,
                           .global_step = 3,
                           .step_in_epoch = 3,
                           .steps_per_epoch = 0,
                           .samples = 1,
                           .step_taken = true,
                           .metrics = m});
  both.on_train_end(RunSummary{});
  CHECK(test::events() == std::vector<std::string>{"logger.on_step", "logger.on_step",
                                                   "logger.on_train_end", "logger.on_train_end"});
}

// ---- value types ----------------------------------------------------------

TEST_CASE("Metrics keeps insertion order and replaces by name") {
  Metrics m;
  m.set("loss", 1.0);
  m.set("lr", 0.1);
  m.set("loss", 2.0);
  REQUIRE(m.size() == 2);
  CHECK(m.begin()->first == "loss");
  CHECK(m.get("loss") == 2.0);
  CHECK_FALSE(m.get("missing").has_value());
  Metrics other;
  other.merge(m, "valid/");
  CHECK(other.get("valid/lr") == 0.1);
}

TEST_CASE("LossMeter averages each component weighted by sample count") {
  LossMeter meter;
  meter.add(Loss{torch::tensor(1.0f), {}}.with("a", torch::tensor(10.0f)), 1);
  meter.add(Loss{torch::tensor(4.0f), {}}.with("a", torch::tensor(40.0f)), 3);
  const auto m = meter.mean();
  CHECK(m.get("loss").value() == doctest::Approx((1.0 + 12.0) / 4));
  CHECK(m.get("loss/a").value() == doctest::Approx((10.0 + 120.0) / 4));
  CHECK(meter.samples() == 4);
  meter.reset();
  CHECK(meter.mean().empty());
}

TEST_CASE("make_policy uses a config constructor when there is one") {
  struct FromConfig {
    explicit FromConfig(const TrainingConfig& c) : batch(c.training.batch_size) {}
    std::int64_t batch;
  };
  struct Plain {
    int value = 7;
  };
  auto config = get_default_config();
  config.training.batch_size = 5;
  CHECK(make_policy<FromConfig>(config).batch == 5);
  CHECK(make_policy<Plain>(config).value == 7);
}
