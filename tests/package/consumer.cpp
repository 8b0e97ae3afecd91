// A downstream program: its own task and a policy bundle that overrides one
// policy; trains three steps and says so.
#include <kokoro/trainer.hpp>

#include <torch/nn/modules/linear.h>

#include <cstdio>
#include <vector>

struct Batch {
  torch::Tensor x, y;
  Batch to(torch::Device d) const { return {x.to(d), y.to(d)}; }
  std::int64_t size() const { return x.size(0); }
};

struct FitLine {
  using Batch = ::Batch;
  explicit FitLine(const kokoro::TrainingConfig&) { holder.register_module("linear", linear); }
  torch::nn::Module& model() { return holder; }
  kokoro::Loss loss(const Batch& b) { return {(linear->forward(b.x) - b.y).pow(2).mean(), {}}; }
  std::vector<Batch> train_data(std::int64_t) {
    auto x = torch::linspace(-1, 1, 16).unsqueeze(1);
    return {Batch{x, 3 * x + 1}};
  }
  torch::nn::Module holder;
  torch::nn::Linear linear{1, 1};
};

struct Quiet {
  void on_step(const kokoro::StepContext&) {}
  void on_epoch_end(const kokoro::EpochContext&) {}
};

struct ConsumerPolicies : kokoro::DefaultPolicies {
  using logger = Quiet;
};

int main() {
  auto config = kokoro::get_default_config();
  kokoro::apply_overrides(
      config, {"training.epochs=3", "hardware.num_threads=1", "logging.checkpoints=false"});
  kokoro::Trainer<FitLine, ConsumerPolicies> trainer(config);
  const auto summary = trainer.fit();
  std::printf("consumer: trained %lld steps\n", static_cast<long long>(summary.global_step));
  return summary.global_step == 3 ? 0 : 1;
}
