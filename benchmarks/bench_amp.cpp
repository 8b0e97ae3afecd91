// Mixed precision on the CPU: Trainer::step time of a Transformer encoder the
// size of the small TTS configuration (d=256, 4 layers, 4 heads, ff 1024,
// batch 8 x 128 frames) in float32 vs bfloat16 autocast, and with
// DynamicGradScaler vs NoGradScaler; and the scaler's own per-step work.
// Compare times within one run.
#include <benchmark/benchmark.h>

#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/trainer.hpp>

#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/transformercoder.h>
#include <torch/nn/options/transformercoder.h>

#include <vector>

namespace {

struct SequenceBatch {
  torch::Tensor x;  // [frames, batch, d]
  torch::Tensor y;
  SequenceBatch to(torch::Device d) const { return {x.to(d), y.to(d)}; }
  std::int64_t size() const { return x.size(1); }
};

/// Regression of random targets through a Transformer encoder of the small
/// TTS model's shape (d=256, 8 heads, feed-forward 1024, 4 layers).
class EncoderTask {
 public:
  using Batch = SequenceBatch;
  static constexpr std::int64_t kFrames = 128;
  static constexpr std::int64_t kWidth = 256;

  explicit EncoderTask(const kokoro::TrainingConfig& c)
      : encoder_(torch::nn::TransformerEncoderOptions(
            torch::nn::TransformerEncoderLayerOptions(kWidth, 8).dim_feedforward(1024).dropout(0.1),
            4)) {
    holder_.register_module("encoder", encoder_);
    const auto shape = std::vector<std::int64_t>{kFrames, c.training.batch_size, kWidth};
    batch_ = {torch::randn(shape), torch::randn(shape)};
  }

  torch::nn::Module& model() { return holder_; }
  kokoro::Loss loss(const Batch& b) {
    return {torch::mse_loss(encoder_->forward(b.x).to(torch::kFloat), b.y), {}};
  }
  std::vector<Batch> train_data(std::int64_t) { return {batch_}; }

 private:
  torch::nn::Module holder_;
  torch::nn::TransformerEncoder encoder_;
  Batch batch_;
};

template <class Scaler>
struct BenchPolicies : kokoro::DefaultPolicies {
  using scaler = Scaler;
  using logger = kokoro::archetype::Logger;  // silent
};

/// Argument 0: float32; 1: bfloat16 autocast.
template <class Scaler>
void BM_EncoderStep(benchmark::State& state) {
  auto config = kokoro::get_default_config();
  config.training.batch_size = 8;
  config.hardware.num_threads = 0;
  config.hardware.mixed_precision = state.range(0) == 1;
  config.hardware.amp_dtype = "bfloat16";
  config.logging.log_every = 1'000'000;
  kokoro::Trainer<EncoderTask, BenchPolicies<Scaler>> trainer(config);
  const auto batches = trainer.task().train_data(0);
  trainer.step(batches);  // warm-up: allocator and autocast caches
  for (auto _ : state) {
    benchmark::DoNotOptimize(trainer.step(batches).grad_norm.template item<float>());
  }
  state.SetLabel(trainer.autocast().describe());
  state.SetItemsProcessed(state.iterations() * config.training.batch_size);
}

/// The scaler's own work per step (unscale with the inf/NaN check, update) on
/// the encoder's gradients: its overhead without the noise of a whole step.
void BM_ScalerUnscaleUpdate(benchmark::State& state) {
  auto config = kokoro::get_default_config();
  config.training.batch_size = 8;
  config.hardware.num_threads = 0;
  config.hardware.mixed_precision = false;
  kokoro::Trainer<EncoderTask, BenchPolicies<kokoro::DynamicGradScaler>> trainer(config);
  trainer.step(trainer.task().train_data(0));  // leaves gradients on every parameter
  auto& scaler = trainer.scaler();
  const auto one = torch::ones({});
  for (auto _ : state) {
    scaler.scale(one);
    scaler.unscale(trainer.optimizer());
    scaler.update();
  }
  std::int64_t n = 0;
  for (const auto& p : trainer.task().model().parameters()) n += p.numel();
  state.counters["parameters"] = static_cast<double>(n);
}

}  // namespace

BENCHMARK(BM_ScalerUnscaleUpdate)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_EncoderStep, kokoro::NoGradScaler)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);
BENCHMARK_TEMPLATE(BM_EncoderStep, kokoro::DynamicGradScaler)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);
BENCHMARK_MAIN();
