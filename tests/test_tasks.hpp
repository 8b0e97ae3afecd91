// Tasks and spy policies shared by the Trainer tests.
#pragma once

#include <kokoro/trainer.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace kokoro::test {

/// Regression batch: inputs [n, 3] and targets [n, 1].
struct XYBatch {
  torch::Tensor x;
  torch::Tensor y;
  XYBatch to(torch::Device d) const { return {x.to(d), y.to(d)}; }
  std::int64_t size() const { return x.size(0); }
  XYBatch slice(std::int64_t begin, std::int64_t end) const {
    return {x.slice(0, begin, end), y.slice(0, begin, end)};
  }
};

/// Data for y = x . [1, -2, 0.5] + 0.3, `n` samples, seeded.
/// Drawn from its own generator: making data never disturbs the global one.
inline XYBatch linear_data(std::int64_t n, std::uint64_t seed = 1) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto x = torch::randn({n, 3}, generator);
  auto w = torch::tensor({1.0f, -2.0f, 0.5f}).reshape({3, 1});
  return {x, x.matmul(w) + 0.3};
}

/// Splits a batch into consecutive pieces of the given sizes.
inline std::vector<XYBatch> split(const XYBatch& b, const std::vector<std::int64_t>& sizes) {
  std::vector<XYBatch> out;
  std::int64_t start = 0;
  for (auto n : sizes) {
    out.push_back({b.x.slice(0, start, start + n), b.y.slice(0, start, start + n)});
    start += n;
  }
  return out;
}

/// The test tasks' own configuration section, `model`.
struct TestModelSection {
  double dropout = 0.0;

  friend bool operator==(const TestModelSection&, const TestModelSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("dropout", s.dropout, "dropout before the linear layer", rule::InRange{0.0, 1.0, true});
  }
};

struct TestSections {
  TestModelSection model;

  friend bool operator==(const TestSections&, const TestSections&) = default;

  template <class Self, class Visitor>
  static void sections(Self& s, Visitor&& v) {
    v("model", s.model);
  }
};

/// The configuration of a run of the test tasks.
using Config = RunConfig<TestSections>;

/// A linear model (optionally behind dropout) fitted by mean squared error to
/// fixed batches.
class LinearTask {
 public:
  using Batch = XYBatch;
  using ConfigSections = TestSections;

  explicit LinearTask(const Config& config) : dropout_(config.model.dropout) {
    net_->register_module("linear", linear_);
    net_->register_module("dropout", dropout_);
  }

  torch::nn::Module& model() { return *net_; }

  Loss loss(const Batch& b) {
    const auto dropped = dropout_->forward(b.x);
    last_dropped = dropped.detach() == 0;
    auto mse = (linear_->forward(dropped) - b.y).pow(2).mean();
    return Loss{mse, {}}.with("mse", mse).with("mse_x2", 2 * mse);
  }

  std::vector<Batch> train_data(std::int64_t epoch) {
    epochs_seen.push_back(epoch);
    return train;
  }
  std::vector<Batch> valid_data() { return valid; }

  torch::nn::Linear& linear() { return linear_; }

  std::vector<Batch> train;
  std::vector<Batch> valid;
  std::vector<std::int64_t> epochs_seen;
  /// The last forward's dropout mask: where its input was zeroed.
  torch::Tensor last_dropped;

 private:
  std::shared_ptr<torch::nn::Module> net_ = std::make_shared<torch::nn::Module>();
  torch::nn::Linear linear_{3, 1};
  torch::nn::Dropout dropout_;
};

/// Every hook that fired, in order: "logger.on_step", "scheduler.on_epoch_end", ...
inline std::vector<std::string>& events() {
  static std::vector<std::string> log;
  return log;
}

struct SpyLogger {
  void on_train_begin(const RunContext&) { events().push_back("logger.on_train_begin"); }
  void on_epoch_begin(const EpochContext&) { events().push_back("logger.on_epoch_begin"); }
  void on_step(const StepContext& s) {
    events().push_back("logger.on_step");
    steps.push_back(s.global_step);
    last_metrics = s.metrics;
  }
  void on_epoch_end(const EpochContext& e) {
    events().push_back("logger.on_epoch_end");
    last_validation = e.validation;
    last_train = e.train;
  }
  void on_train_end(const RunSummary&) { events().push_back("logger.on_train_end"); }

  std::vector<std::int64_t> steps;
  Metrics last_metrics;
  Metrics last_train;
  Metrics last_validation;
};

struct SpyScheduler {
  double lr(double base) const { return base * factor; }
  void on_step(const ScheduleClock& c) {
    events().push_back("scheduler.on_step");
    clocks.push_back(c);
  }
  void on_epoch_end(const ScheduleClock&) { events().push_back("scheduler.on_epoch_end"); }
  double factor = 1.0;
  std::vector<ScheduleClock> clocks;
};

struct SpyMemory {
  MemoryAction after_step(const StepContext&) {
    events().push_back("memory.after_step");
    return MemoryAction::none;
  }
};

/// Skips every step (as a grad scaler does on overflow).
struct SkippingScaler {
  torch::Tensor scale(const torch::Tensor& loss) { return loss; }
  void unscale(torch::optim::Optimizer&) {}
  bool step(torch::optim::Optimizer&) { return false; }
  void update() {}
  double scale_factor() const { return 1.0; }
};

struct SpyPolicies : DefaultPolicies {
  using logger = SpyLogger;
  using scheduler = SpyScheduler;
  using memory = SpyMemory;
};

/// Copies of a module's parameters, in order.
inline std::vector<torch::Tensor> params_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

/// Whether two parameter lists are equal bit for bit.
inline bool all_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

/// A fresh, empty folder under the temporary directory, unique to this process.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("kokoro-test-{}-{}", ::getpid(), name);
  std::filesystem::remove_all(dir);
  return dir;
}

/// The framework's part of quick_config().
inline TrainingConfig quick_framework_config() {
  auto c = get_default_config();
  c.hardware.num_threads = 1;
  c.hardware.mixed_precision = false;  // exact comparisons need float32
  c.training.epochs = 1;
  c.training.learning_rate = 0.05;
  c.training.weight_decay = 0.0;
  c.training.grad_clip_norm = 0.0;
  c.logging.log_every = 1;
  // Tests that want files ask for them in a temporary folder.
  c.logging.checkpoints = false;
  c.logging.jsonl = false;
  c.logging.tensorboard = false;
  // Samples every epoch they are due, whatever they take beside a toy's
  // milliseconds of training (the test of the share sets its own).
  c.logging.media_max_share = 1.0;
  return c;
}

/// A config for quick tests: one thread, float32, no clipping unless asked,
/// no dropout.
inline Config quick_config() { return Config(quick_framework_config()); }

/// A RunContext for calling a logger's on_train_begin by hand. Its settings
/// live in a static, so the context stays valid until the next call.
inline RunContext run_context(const TrainingConfig& config, std::string device = "cpu",
                              std::string precision = "float32", std::int64_t parameters = 1,
                              int threads = 1, std::int64_t start_epoch = 0,
                              std::int64_t epochs = 1, std::int64_t max_steps = 0) {
  static ConfigValues settings;
  settings = config_values(config);
  return RunContext{.config = config,
                    .settings = settings,
                    .device = std::move(device),
                    .precision = std::move(precision),
                    .parameters = parameters,
                    .threads = threads,
                    .start_epoch = start_epoch,
                    .epochs = epochs,
                    .max_steps = max_steps};
}

}  // namespace kokoro::test
