// Trainer: the loop's order of hooks, accumulation, clipping, validation,
// limits, seeding and learning-rate application.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/sgd.h>

#include <cmath>

#include "minimal/halving_lr.hpp"
#include "minimal/regression_task.hpp"
#include "test_tasks.hpp"

using namespace kokoro;
using namespace kokoro::test;

namespace {

std::vector<torch::Tensor> grads_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.grad().clone());
  return out;
}

}  // namespace

TEST_CASE("hooks fire in the documented order") {
  auto config = quick_config();
  config.training.epochs = 2;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  trainer.task().train = split(linear_data(4), {2, 2});
  events().clear();
  trainer.fit();
  const std::vector<std::string> epoch = {
      "logger.on_epoch_begin", "scheduler.on_step",      "memory.after_step",
      "logger.on_step",        "scheduler.on_step",      "memory.after_step",
      "logger.on_step",        "scheduler.on_epoch_end", "logger.on_epoch_end"};
  std::vector<std::string> expected = {"logger.on_train_begin"};
  for (int e = 0; e < 2; ++e) expected.insert(expected.end(), epoch.begin(), epoch.end());
  expected.push_back("logger.on_train_end");
  CHECK(events() == expected);
  CHECK(trainer.task().epochs_seen == std::vector<std::int64_t>{0, 1});
}

TEST_CASE("the scheduler sees the counters of each step") {
  auto config = quick_config();
  config.training.epochs = 2;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  trainer.task().train = split(linear_data(6), {2, 2, 2});
  trainer.fit();
  const auto& clocks = trainer.scheduler().clocks;
  REQUIRE(clocks.size() == 6);
  CHECK(clocks[4].epoch == 1);
  CHECK(clocks[4].step_in_epoch == 2);
  CHECK(clocks[4].steps_per_epoch == 3);
  CHECK(clocks[4].global_step == 5);
}

TEST_CASE("a skipped step leaves the parameters and the schedule alone and is counted") {
  struct Skipping : SpyPolicies {
    using scaler = SkippingScaler;
  };
  Trainer<LinearTask, Skipping> trainer(quick_config());
  trainer.task().train = split(linear_data(4), {2, 2});
  const auto before = test::params_of(trainer.task().model());
  const auto summary = trainer.fit();
  CHECK(test::all_equal(before, test::params_of(trainer.task().model())));
  CHECK(trainer.scheduler().clocks.empty());
  CHECK(summary.skipped_steps == 2);
  CHECK(trainer.skipped_steps() == 2);
  CHECK(summary.global_step == 2);
}

TEST_CASE("accumulating micro-batches gives the gradient of the whole batch") {
  const auto data = linear_data(7);
  Trainer<LinearTask, SpyPolicies> whole(quick_config());
  Trainer<LinearTask, SpyPolicies> pieces(quick_config());
  REQUIRE(test::all_equal(test::params_of(whole.task().model()),
                          test::params_of(pieces.task().model())));

  const std::vector<XYBatch> one = {data};
  const auto uneven = split(data, {3, 1, 3});
  const auto r1 = whole.step(one);
  const auto r2 = pieces.step(uneven);
  CHECK(r1.samples == 7);
  CHECK(r2.samples == 7);
  const auto g1 = grads_of(whole.task().model());
  const auto g2 = grads_of(pieces.task().model());
  REQUIRE(g1.size() == g2.size());
  for (std::size_t i = 0; i < g1.size(); ++i) CHECK(torch::allclose(g1[i], g2[i], 1e-5, 1e-6));
  CHECK(r1.grad_norm.item<double>() == doctest::Approx(r2.grad_norm.item<double>()).epsilon(1e-5));
  // The same step was taken: the parameters agree afterwards too.
  const auto p1 = test::params_of(whole.task().model());
  const auto p2 = test::params_of(pieces.task().model());
  for (std::size_t i = 0; i < p1.size(); ++i) CHECK(torch::allclose(p1[i], p2[i], 1e-5, 1e-6));
}

TEST_CASE("fit groups accumulation_steps batches into one optimizer step") {
  auto config = quick_config();
  config.training.accumulation_steps = 2;
  config.training.epochs = 2;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  trainer.task().train = split(linear_data(10), {2, 2, 2, 2, 2});
  const auto summary = trainer.fit();
  CHECK(summary.global_step == 6);  // ceil(5 / 2) per epoch
  CHECK(trainer.scheduler().clocks.back().steps_per_epoch == 3);
}

TEST_CASE("clip_grad_norm matches libtorch's clip_grad_norm_") {
  torch::manual_seed(3);
  auto make = [] {
    std::vector<torch::Tensor> ps = {torch::randn({4, 3}, torch::requires_grad()),
                                     torch::randn({5}, torch::requires_grad())};
    return ps;
  };
  auto a = make();
  torch::manual_seed(3);
  auto b = make();
  for (auto* set : {&a, &b}) {
    ((*set)[0].pow(3).sum() + (*set)[1].exp().sum()).backward();
  }
  const auto ours = kokoro::clip_grad_norm(a, 0.5);
  const double reference = torch::nn::utils::clip_grad_norm_(b, 0.5);
  CHECK(ours.item<double>() == doctest::Approx(reference).epsilon(1e-6));
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(torch::allclose(a[i].grad(), b[i].grad()));
  const auto after = kokoro::clip_grad_norm(a, 0.0);
  CHECK(after.item<double>() == doctest::Approx(0.5).epsilon(1e-5));
}

TEST_CASE("clipping leaves small gradients alone and measures without a limit") {
  auto p = torch::tensor({3.0f, 4.0f}, torch::requires_grad());
  (p * torch::tensor({0.03f, 0.04f})).sum().backward();  // grad norm 0.05
  const auto norm = kokoro::clip_grad_norm({p}, 1.0);
  CHECK(norm.item<double>() == doctest::Approx(0.05));
  CHECK(torch::allclose(p.grad(), torch::tensor({0.03f, 0.04f})));
  CHECK(kokoro::clip_grad_norm({torch::zeros({2})}, 1.0).item<double>() == 0.0);
}

TEST_CASE("the trainer clips to training.grad_clip_norm and reports the norm before clipping") {
  auto config = quick_config();
  config.training.grad_clip_norm = 0.01;
  Trainer<LinearTask, SpyPolicies> clipped(config);
  Trainer<LinearTask, SpyPolicies> free(quick_config());
  const std::vector<XYBatch> batch = {linear_data(8)};
  const auto rc = clipped.step(batch);
  const auto rf = free.step(batch);
  CHECK(rc.grad_norm.item<double>() == doctest::Approx(rf.grad_norm.item<double>()));
  CHECK(rf.grad_norm.item<double>() > 0.01);
  const auto after = kokoro::clip_grad_norm(clipped.task().model().parameters(), 0.0);
  CHECK(after.item<double>() == doctest::Approx(0.01).epsilon(1e-4));
}

TEST_CASE("a small model's loss goes down") {
  minimal::Config config(quick_framework_config());
  config.regression.hidden_dim = 32;
  config.training.epochs = 6;
  config.training.batch_size = 32;
  config.training.learning_rate = 3e-3;
  config.logging.log_every = 1000;
  Trainer<minimal::RegressionTask, SpyPolicies> trainer(config);
  const double before = trainer.validate().get("loss").value();
  const auto summary = trainer.fit();
  const double after = summary.last_validation.get("loss").value();
  CHECK(after < 0.2 * before);
  CHECK(summary.epochs_completed == 6);
  CHECK(summary.global_step == 6 * 16);
}

TEST_CASE("validation runs in eval mode without gradients and restores train mode") {
  auto config = quick_config();
  config.model.dropout = 0.5;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  trainer.task().valid = split(linear_data(32), {16, 16});
  const auto first = trainer.validate();
  const auto second = trainer.validate();
  CHECK(first.get("loss").value() == second.get("loss").value());  // dropout was off
  CHECK(trainer.task().model().is_training());
  for (const auto& p : trainer.task().model().parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("validation averages each loss component weighted by samples") {
  Trainer<LinearTask, SpyPolicies> trainer(quick_config());
  const auto data = linear_data(5);
  trainer.task().valid = split(data, {4, 1});
  const auto m = trainer.validate();
  torch::NoGradGuard no_grad;
  const double expected = trainer.task().loss(data).total.item<double>();
  CHECK(m.get("loss").value() == doctest::Approx(expected).epsilon(1e-6));
  CHECK(m.get("loss/mse").value() == doctest::Approx(expected).epsilon(1e-6));
  CHECK(m.get("loss/mse_x2").value() == doctest::Approx(2 * expected).epsilon(1e-6));
}

TEST_CASE("step metrics and epoch metrics reach the logger") {
  auto config = quick_config();
  config.logging.log_every = 2;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  trainer.task().train = split(linear_data(6), {2, 2, 2});
  trainer.task().valid = split(linear_data(4, 9), {4});
  trainer.fit();
  const auto& logger = trainer.logger();
  CHECK(logger.steps == std::vector<std::int64_t>{2, 3});  // every 2 steps, then the last one
  for (const char* name :
       {"loss", "loss/mse", "lr", "grad_norm", "grad_scale", "samples_per_sec"}) {
    CHECK_MESSAGE(logger.last_metrics.get(name).has_value(), name);
  }
  CHECK(logger.last_train.get("loss").has_value());
  CHECK(logger.last_train.get("samples_per_sec").has_value());
  CHECK(logger.last_validation.get("loss/mse").has_value());
}

TEST_CASE("max_steps stops in the middle of an epoch") {
  auto config = quick_config();
  config.training.epochs = 5;
  config.training.max_steps = 4;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  trainer.task().train = split(linear_data(6), {2, 2, 2});
  const auto summary = trainer.fit();
  CHECK(summary.global_step == 4);
  CHECK(summary.epochs_completed == 1);
  CHECK(summary.stopped_by_max_steps);
  CHECK(trainer.logger().steps.back() == 4);
  CHECK(trainer.epoch() == 1);  // the interrupted epoch is not counted as done
}

TEST_CASE("max_minutes stops the run when its time is up") {
  auto config = quick_config();
  config.training.epochs = 1000;
  config.training.max_minutes = 0.5 / 60;  // half a second; the task takes 50 ms a batch
  struct SlowTask : LinearTask {
    using LinearTask::LinearTask;
    Loss loss(const Batch& b) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return LinearTask::loss(b);
    }
  };
  Trainer<SlowTask, SpyPolicies> trainer(config);
  trainer.task().train = split(linear_data(6), {2, 2, 2});
  const auto summary = trainer.fit();
  CHECK(summary.stopped_by_time_limit);
  CHECK_FALSE(summary.stopped_by_max_steps);
  CHECK(summary.global_step >= 1);
  CHECK(summary.global_step <= 12);  // and it did stop
  CHECK(summary.epochs_completed < 1000);
}

TEST_CASE("max_steps on an epoch boundary completes that epoch") {
  auto config = quick_config();
  config.training.epochs = 5;
  config.training.max_steps = 3;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  trainer.task().train = split(linear_data(6), {2, 2, 2});
  const auto summary = trainer.fit();
  CHECK(summary.epochs_completed == 1);
  CHECK(summary.global_step == 3);
}

TEST_CASE("the same seed gives the same run and another seed another") {
  auto run = [](std::int64_t seed) {
    auto config = quick_config();
    config.training.seed = seed;
    config.model.dropout = 0.3;
    config.training.epochs = 2;
    Trainer<LinearTask, SpyPolicies> trainer(config);
    trainer.task().train = split(linear_data(8), {4, 4});
    trainer.fit();
    return test::params_of(trainer.task().model());
  };
  CHECK(test::all_equal(run(11), run(11)));
  CHECK_FALSE(test::all_equal(run(11), run(12)));
}

TEST_CASE("hardware.num_threads sets libtorch's intra-op threads") {
  auto config = quick_config();
  config.hardware.num_threads = 2;
  Trainer<LinearTask, SpyPolicies> trainer(config);
  CHECK(trainer.threads() == 2);
  CHECK(at::get_num_threads() == 2);
  config.hardware.num_threads = 1;
  Trainer<LinearTask, SpyPolicies> single(config);
  CHECK(at::get_num_threads() == 1);
}

TEST_CASE("an invalid config stops the trainer before anything runs") {
  auto config = quick_config();
  config.training.batch_size = 0;
  CHECK_THROWS_WITH_AS((Trainer<LinearTask, SpyPolicies>(config)),
                       "training.batch_size: must be > 0 (got 0)", ConfigError);
}

TEST_CASE("a policy written outside the library drives the learning rate") {
  struct Halving : DefaultPolicies {
    using scheduler = minimal::HalvingLR;
    using logger = SpyLogger;
  };
  auto config = quick_config();
  config.training.epochs = 20;
  Trainer<LinearTask, Halving> trainer(config);
  trainer.task().train = split(linear_data(2), {2});
  CHECK(trainer.current_lr() == doctest::Approx(0.05));
  trainer.fit();
  CHECK(trainer.current_lr() == doctest::Approx(0.025));  // halved after 20 epochs
}

namespace {

/// A task that brings its own optimizer with two parameter groups.
class TwoGroupTask : public LinearTask {
 public:
  using LinearTask::LinearTask;
  std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainingConfig&) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<torch::Tensor>{linear()->weight},
                        std::make_unique<torch::optim::SGDOptions>(0.1));
    groups.emplace_back(std::vector<torch::Tensor>{linear()->bias},
                        std::make_unique<torch::optim::SGDOptions>(0.01));
    return std::make_unique<torch::optim::SGD>(std::move(groups), torch::optim::SGDOptions(0.1));
  }
};

}  // namespace

TEST_CASE("each parameter group keeps its own base learning rate") {
  Trainer<TwoGroupTask, SpyPolicies> trainer(quick_config());
  trainer.scheduler().factor = 0.5;
  trainer.task().train = split(linear_data(2), {2});
  trainer.fit();  // one step: the scheduler's rate is applied after it
  auto& groups = trainer.optimizer().param_groups();
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].options().get_lr() == doctest::Approx(0.05));
  CHECK(groups[1].options().get_lr() == doctest::Approx(0.005));
}
