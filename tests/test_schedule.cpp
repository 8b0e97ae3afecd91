// Learning-rate schedules: PyTorch's CosineAnnealingWarmRestarts value for
// value (per epoch and fractional), warmup, decays, resume, and the
// config-selected default policy. Schedules are numbers only: no tensors here
// except the Trainer case at the end.
#include <doctest/doctest.h>

#include <kokoro/schedule/cosine_warm_restarts.hpp>
#include <kokoro/schedule/decay.hpp>
#include <kokoro/schedule/linear_warmup.hpp>
#include <kokoro/schedule/schedule_from_config.hpp>

#include <cmath>
#include <functional>
#include <numbers>
#include <vector>

#include "test_tasks.hpp"

using namespace kokoro;

namespace {

constexpr double kBase = 1e-3;
constexpr double kEtaMin = 1e-6;

/// The closed form of SGDR at a (fractional) epoch, written from the formula.
double sgdr(double epoch, double t0, double t_mult, double eta_min, double base) {
  double t_cur = epoch;
  double t_i = t0;
  if (epoch >= t0) {
    if (t_mult == 1) {
      t_cur = std::fmod(epoch, t0);
    } else {
      const double n = std::floor(std::log(epoch / t0 * (t_mult - 1) + 1) / std::log(t_mult));
      t_cur = epoch - t0 * (std::pow(t_mult, n) - 1) / (t_mult - 1);
      t_i = t0 * std::pow(t_mult, n);
    }
  }
  return eta_min + (base - eta_min) * (1 + std::cos(std::numbers::pi * t_cur / t_i)) / 2;
}

ScheduleClock epoch_end(std::int64_t epoch) { return {epoch, 0, 0, 0}; }

/// Drives a schedule through `epochs` epochs of `steps` steps, recording the
/// rate in force before every step.
template <class S>
std::vector<double> rates(S& schedule, std::int64_t epochs, std::int64_t steps,
                          std::int64_t first_epoch = 0, double base = kBase) {
  std::vector<double> out;
  std::int64_t global = first_epoch * steps;
  for (std::int64_t e = first_epoch; e < first_epoch + epochs; ++e) {
    for (std::int64_t s = 1; s <= steps; ++s) {
      out.push_back(schedule.lr(base));
      schedule.on_step(ScheduleClock{
          .epoch = e, .step_in_epoch = s, .steps_per_epoch = steps, .global_step = ++global});
    }
    schedule.on_epoch_end(ScheduleClock{
        .epoch = e, .step_in_epoch = steps, .steps_per_epoch = steps, .global_step = global});
  }
  out.push_back(schedule.lr(base));
  return out;
}

bool close(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b)); }

}  // namespace

TEST_CASE("per-epoch SGDR with T_0=20, T_mult=2 follows the closed form for 200 epochs") {
  CosineAnnealingWarmRestarts s(20, 2, kEtaMin);
  for (int epoch = 0; epoch <= 200; ++epoch) {
    CHECK_MESSAGE(close(s.lr(kBase), sgdr(epoch, 20, 2, kEtaMin, kBase)), "epoch " << epoch);
    s.on_epoch_end(epoch_end(epoch));
  }
}

TEST_CASE("per-epoch SGDR with T_0=2, T_mult=1 restarts every two epochs") {
  CosineAnnealingWarmRestarts s(2, 1, 0.0);
  std::vector<double> seen;
  for (int epoch = 0; epoch < 8; ++epoch) {
    CHECK(close(s.lr(kBase), sgdr(epoch, 2, 1, 0.0, kBase)));
    seen.push_back(s.lr(kBase));
    s.on_epoch_end(epoch_end(epoch));
  }
  for (int epoch = 0; epoch < 8; epoch += 2) {
    CHECK(close(seen[epoch], kBase));          // a restart: the full rate
    CHECK(close(seen[epoch + 1], kBase / 2));  // halfway: cos(pi/2) = 0
  }
}

TEST_CASE("the restarts of T_0=20, T_mult=2 fall on epochs 20, 60 and 140") {
  CosineAnnealingWarmRestarts s(20, 2, kEtaMin);
  for (int epoch = 0; epoch < 141; ++epoch) {
    const bool restart = epoch == 0 || epoch == 20 || epoch == 60 || epoch == 140;
    CHECK(close(s.t_cur(), 0.0) == restart);
    s.on_epoch_end(epoch_end(epoch));
  }
  CHECK(s.t_i() == 160.0);
}

TEST_CASE("per-step SGDR sets fractional epochs and follows the closed form") {
  for (auto [t0, t_mult] : {std::pair{20, 2}, std::pair{2, 1}}) {
    CosineAnnealingWarmRestarts s(t0, t_mult, kEtaMin, ScheduleInterval::step);
    const auto seen = rates(s, 50, 7);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      const double epoch = static_cast<double>(i) / 7;
      CHECK_MESSAGE(close(seen[i], sgdr(epoch, t0, t_mult, kEtaMin, kBase)),
                    "T_0 " << t0 << " step " << i);
    }
  }
}

TEST_CASE("PyTorch's step(epoch) and step() may be mixed") {
  CosineAnnealingWarmRestarts s(10, 2, 0.0);
  s.step(25.5);  // second cycle (10..30), 15.5 into it
  CHECK(close(s.t_cur(), 15.5));
  CHECK(s.t_i() == 20.0);
  CHECK(s.last_epoch() == 25);
  s.step();  // unit step from there: 16.5
  CHECK(close(s.t_cur(), 16.5));
  CHECK(close(s.lr(1.0), (1 + std::cos(std::numbers::pi * 16.5 / 20)) / 2));
  CHECK_THROWS_AS(s.step(-1.0), Error);
}

TEST_CASE("every schedule keeps the rate within [eta_min, base]") {
  auto config = get_default_config();
  for (const std::string name :
       {"constant", "cosine_warm_restarts", "inverse_sqrt", "step", "exponential"}) {
    config.training.scheduler = name;
    config.training.warmup_steps = name == "inverse_sqrt" ? 5 : 0;  // a ramp starts below eta_min
    const double floor = name == "cosine_warm_restarts" ? kEtaMin : 0.0;
    for (const char* interval : {"epoch", "step"}) {
      config.training.scheduler_interval = interval;
      ScheduleFromConfig s(config);
      for (double lr : rates(s, 60, 3)) {
        CHECK_MESSAGE(lr <= kBase, name);
        CHECK_MESSAGE(lr >= floor, name);
      }
    }
  }
}

TEST_CASE("linear warmup ramps over its steps, then hands over") {
  LinearWarmup<ConstantLR> s(4, ConstantLR{});
  const auto seen = rates(s, 1, 6);
  const std::vector<double> expected = {0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0};
  REQUIRE(seen.size() == expected.size());
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(close(seen[i], expected[i] * kBase));
  LinearWarmup<ConstantLR> none(0, ConstantLR{});
  CHECK(none.lr(kBase) == kBase);
}

TEST_CASE("warmup in front of SGDR scales it while SGDR runs underneath") {
  LinearWarmup<CosineAnnealingWarmRestarts> s(10, CosineAnnealingWarmRestarts(2, 1, 0.0));
  const auto seen = rates(s, 3, 4);  // 12 steps, 3 epochs
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const double ramp = std::min(1.0, static_cast<double>(i + 1) / 10);
    const double epoch = static_cast<double>(i / 4);  // per epoch: moves at epoch ends
    CHECK(close(seen[i], ramp * sgdr(epoch, 2, 1, 0.0, kBase)));
  }
}

TEST_CASE("inverse square root with warmup is the Noam schedule peaking at the base rate") {
  auto config = get_default_config();
  config.training.scheduler = "inverse_sqrt";
  config.training.warmup_steps = 4;
  ScheduleFromConfig s(config);
  const auto seen = rates(s, 1, 20);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const double step = static_cast<double>(i + 1);
    CHECK(close(seen[i], kBase * std::min(step / 4, std::sqrt(4 / step))));
  }
  CHECK(close(seen[3], kBase));         // step 4: the peak
  CHECK(close(seen[15], kBase * 0.5));  // step 16: sqrt(4 / 16)
}

TEST_CASE("step and exponential decay count epochs or steps") {
  StepLR per_epoch(3, 0.5);
  const auto epochs = rates(per_epoch, 7, 2);  // the rate before each of 14 steps, then after
  CHECK(close(epochs[0], kBase));
  CHECK(close(epochs[5], kBase));          // epoch 2
  CHECK(close(epochs[6], kBase * 0.5));    // epoch 3
  CHECK(close(epochs[12], kBase * 0.25));  // epoch 6
  StepLR per_step(3, 0.5, ScheduleInterval::step);
  const auto steps = rates(per_step, 2, 4);
  CHECK(close(steps[2], kBase));
  CHECK(close(steps[3], kBase * 0.5));
  CHECK(close(steps[6], kBase * 0.25));
  ExponentialLR exponential(0.9);
  const auto decay = rates(exponential, 4, 1);
  for (std::size_t e = 0; e < decay.size(); ++e) CHECK(close(decay[e], kBase * std::pow(0.9, e)));
}

TEST_CASE("a resumed schedule continues exactly where an uninterrupted one goes") {
  struct Case {
    const char* scheduler;
    const char* interval;
  };
  for (auto c : {Case{"cosine_warm_restarts", "epoch"}, Case{"cosine_warm_restarts", "step"},
                 Case{"inverse_sqrt", "step"}, Case{"step", "epoch"}, Case{"exponential", "step"},
                 Case{"constant", "epoch"}}) {
    auto config = get_default_config();
    config.training.scheduler = c.scheduler;
    config.training.scheduler_interval = c.interval;
    config.training.scheduler_t0 = 3;
    config.training.warmup_steps = 7;
    ScheduleFromConfig straight(config);
    const auto all = rates(straight, 12, 5);

    ScheduleFromConfig first(config);
    rates(first, 5, 5);  // stop in the middle of the second cycle
    const StateDict saved = first.state_dict();
    ScheduleFromConfig resumed(config);
    resumed.load_state_dict(saved);
    const auto rest = rates(resumed, 7, 5, /*first_epoch=*/5);
    REQUIRE(rest.size() == 36);
    for (std::size_t i = 0; i < rest.size(); ++i) {
      CHECK_MESSAGE(rest[i] == all[25 + i], c.scheduler << "/" << c.interval << " at " << i);
    }
  }
}

TEST_CASE("SGDR's state has PyTorch's keys") {
  CosineAnnealingWarmRestarts s(20, 2, kEtaMin);
  for (int e = 0; e < 25; ++e) s.on_epoch_end(epoch_end(e));
  const auto state = s.state_dict();
  CHECK(state_get<std::int64_t>(state, "T_0") == 20);
  CHECK(state_get<double>(state, "T_i") == 40.0);
  CHECK(state_get<std::int64_t>(state, "T_mult") == 2);
  CHECK(state_get<double>(state, "eta_min") == kEtaMin);
  CHECK(state_get<double>(state, "T_cur") == 5.0);
  CHECK(state_get<std::int64_t>(state, "last_epoch") == 25);
}

TEST_CASE("a state saved by another schedule is refused") {
  auto config = get_default_config();
  config.training.scheduler = "step";
  const auto saved = ScheduleFromConfig(config).state_dict();
  config.training.scheduler = "exponential";
  ScheduleFromConfig other(config);
  CHECK_THROWS_WITH_AS(other.load_state_dict(saved),
                       "the saved learning-rate schedule is 'step' but training.scheduler is "
                       "'exponential'",
                       Error);
}

TEST_CASE("schedule settings are validated with the config") {
  auto config = get_default_config();
  config.training.scheduler = "inverse_sqrt";
  const auto problems = validate(config);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].field == "training.warmup_steps");
  config.training.scheduler = "cosine";
  CHECK(validate(config).at(0).message ==
        "must be one of: constant, cosine_warm_restarts, inverse_sqrt, step, exponential (got "
        "\"cosine\")");
  CHECK_THROWS_AS(CosineAnnealingWarmRestarts(0, 2, 0.0), Error);
}

TEST_CASE("the default policies take the schedule from the config, per epoch or per step") {
  auto config = test::quick_config();
  config.training.scheduler = "cosine_warm_restarts";
  config.training.scheduler_t0 = 2;
  config.training.scheduler_t_mult = 1;
  config.training.min_learning_rate = 0.0;
  config.training.epochs = 1;
  struct Policies : DefaultPolicies {
    using logger = test::SpyLogger;
  };
  Trainer<test::LinearTask, Policies> per_epoch(config);
  per_epoch.task().train = test::split(test::linear_data(8), {2, 2, 2, 2});
  per_epoch.fit();
  CHECK(per_epoch.current_lr() == doctest::Approx(0.05 / 2));  // epoch 1 of a 2-epoch cycle

  config.training.scheduler_interval = "step";
  config.training.scheduler_t0 = 1;
  config.training.max_steps = 2;
  Trainer<test::LinearTask, Policies> per_step(config);
  per_step.task().train = test::split(test::linear_data(8), {2, 2, 2, 2});
  per_step.fit();
  CHECK(per_step.current_lr() == doctest::Approx(0.05 / 2));  // half of a 1-epoch cycle
}
