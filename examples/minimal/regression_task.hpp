// A small non-TTS task: a two-layer MLP learns a smooth nonlinear function of
// eight inputs from synthetic, seeded data. Used by the minimal example and by
// the tests as "a task a downstream user would write".
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include <kokoro/core/config_rules.hpp>
#include <kokoro/core/loss.hpp>
#include <kokoro/core/training_config.hpp>
#include <kokoro/util/seeded_shuffle.hpp>

namespace minimal {

/// The example's own configuration section, `regression`, next to the
/// framework's training/hardware/logging in the same YAML file.
struct RegressionSection {
  std::int64_t hidden_dim = 64;

  friend bool operator==(const RegressionSection&, const RegressionSection&) = default;

  template <class Self, class Visitor>
  static void fields(Self& s, Visitor&& v) {
    v("hidden_dim", s.hidden_dim, "width of the MLP's hidden layer", kokoro::rule::positive);
  }
};

struct RegressionSections {
  RegressionSection regression;

  friend bool operator==(const RegressionSections&, const RegressionSections&) = default;

  template <class Self, class Visitor>
  static void sections(Self& s, Visitor&& v) {
    v("regression", s.regression);
  }

  /// Configurations written before the split by layer borrowed the TTS
  /// model's width and carried the TTS sections; they still load.
  static std::vector<kokoro::LegacyKey> legacy_keys() {
    return {{"model.hidden_dim", "regression.hidden_dim"},
            {"model.*", ""},
            {"data.*", ""},
            {"audio.*", ""}};
  }
};

using Config = kokoro::RunConfig<RegressionSections>;

/// Inputs and targets for a few samples.
struct RegressionBatch {
  torch::Tensor inputs;   // [n, 8]
  torch::Tensor targets;  // [n, 1]

  RegressionBatch to(torch::Device device) const {
    return {inputs.to(device, /*non_blocking=*/true), targets.to(device, /*non_blocking=*/true)};
  }
  std::int64_t size() const { return inputs.size(0); }
  /// Samples [begin, end): lets the Trainer split the batch after running out of memory.
  RegressionBatch slice(std::int64_t begin, std::int64_t end) const {
    return {inputs.slice(0, begin, end), targets.slice(0, begin, end)};
  }
};

/// y = w.x + 0.5 sin(2 x0) + small noise, learned by an MLP of width
/// `regression.hidden_dim`. Mean squared error, reported also as its "mse" part.
class RegressionTask {
 public:
  using Batch = RegressionBatch;
  using ConfigSections = RegressionSections;
  static constexpr std::int64_t kFeatures = 8;

  explicit RegressionTask(const Config& config, std::int64_t train_samples = 512,
                          std::int64_t valid_samples = 128)
      : batch_size_(config.training.batch_size),
        seed_(config.training.seed),
        net_(torch::nn::Linear(kFeatures, config.regression.hidden_dim), torch::nn::Tanh(),
             torch::nn::Linear(config.regression.hidden_dim, 1)) {
    holder_.register_module("net", net_);
    const auto teacher = make_data(train_samples + valid_samples);
    train_ = {teacher.inputs.slice(0, 0, train_samples),
              teacher.targets.slice(0, 0, train_samples)};
    valid_ = {teacher.inputs.slice(0, train_samples), teacher.targets.slice(0, train_samples)};
  }

  torch::nn::Module& model() { return holder_; }

  kokoro::Loss loss(const Batch& batch) {
    auto mse = (net_->forward(batch.inputs) - batch.targets).pow(2).mean();
    return kokoro::Loss{mse, {}}.with("mse", mse);
  }

  /// The training set in batches, reshuffled every epoch from (seed, epoch).
  std::vector<Batch> train_data(std::int64_t epoch) const {
    std::vector<std::int64_t> order(static_cast<std::size_t>(train_.size()));
    std::iota(order.begin(), order.end(), 0);
    kokoro::seeded_shuffle(order, static_cast<std::uint64_t>(seed_ * 1000003 + epoch));
    const auto index = torch::tensor(order, torch::kLong);
    return split(
        Batch{train_.inputs.index_select(0, index), train_.targets.index_select(0, index)});
  }

  std::vector<Batch> valid_data() const { return split(valid_); }

 private:
  Batch make_data(std::int64_t n) const {
    // Data come from their own generator so they do not depend on how many
    // random numbers model initialisation drew.
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed_) + 7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(n * kFeatures));
    for (auto& v : x) v = normal(rng);
    auto inputs = torch::tensor(x).reshape({n, kFeatures});
    const auto weights = torch::linspace(-1.0, 1.0, kFeatures).reshape({kFeatures, 1});
    std::vector<float> noise(static_cast<std::size_t>(n));
    for (auto& v : noise) v = 0.01f * normal(rng);
    auto targets = inputs.matmul(weights) + 0.5 * torch::sin(2 * inputs.select(1, 0)).unsqueeze(1) +
                   torch::tensor(noise).unsqueeze(1);
    return {inputs, targets};
  }

  std::vector<Batch> split(const Batch& all) const {
    std::vector<Batch> batches;
    for (std::int64_t start = 0; start < all.size(); start += batch_size_) {
      const auto end = std::min(start + batch_size_, all.size());
      batches.push_back({all.inputs.slice(0, start, end), all.targets.slice(0, start, end)});
    }
    return batches;
  }

  std::int64_t batch_size_;
  std::int64_t seed_;
  torch::nn::Module holder_;
  torch::nn::Sequential net_;
  Batch train_;
  Batch valid_;
};

}  // namespace minimal
