// The Trainer's per-step overhead: Trainer::step against the same step
// written by hand in libtorch (forward, backward, clip, AdamW), on the
// minimal example's MLP at two widths. Compare the two times of a width.
#include <benchmark/benchmark.h>

#include <kokoro/trainer.hpp>

#include <torch/nn/utils/clip_grad.h>

#include <vector>

#include "minimal/regression_task.hpp"

namespace {

struct BenchPolicies : kokoro::DefaultPolicies {
  using logger = kokoro::archetype::Logger;  // silent
};

minimal::Config bench_config(std::int64_t width) {
  minimal::Config c;
  c.regression.hidden_dim = width;
  c.training.batch_size = 64;
  c.hardware.num_threads = 1;
  c.logging.log_every = 1'000'000;
  c.logging.checkpoints = false;
  c.logging.jsonl = false;
  c.logging.tensorboard = false;
  c.hardware.mixed_precision = false;
  return c;
}

void BM_HandWrittenStep(benchmark::State& state) {
  const auto config = bench_config(state.range(0));
  at::set_num_threads(1);
  minimal::RegressionTask task(config);
  auto& model = task.model();
  const auto tc = config.training;
  torch::optim::AdamW optimizer(model.parameters(), torch::optim::AdamWOptions(tc.learning_rate)
                                                        .betas({tc.adam_beta1, tc.adam_beta2})
                                                        .eps(tc.adam_eps)
                                                        .weight_decay(tc.weight_decay));
  const auto batches = task.train_data(0);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& batch = batches[i++ % batches.size()];
    optimizer.zero_grad();
    auto loss = task.loss(batch.to(torch::kCPU));
    loss.total.backward();
    torch::nn::utils::clip_grad_norm_(model.parameters(), tc.grad_clip_norm);
    optimizer.step();
    benchmark::DoNotOptimize(loss.total.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * tc.batch_size);
}

/// Argument 1: the interbatch profiler recording (logging.profile: true).
void BM_TrainerStep(benchmark::State& state) {
  auto config = bench_config(state.range(0));
  config.logging.profile = state.range(1) == 1;
  kokoro::Trainer<minimal::RegressionTask, BenchPolicies> trainer(config);
  const auto batches = trainer.task().train_data(0);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& batch = batches[i++ % batches.size()];
    const auto result = trainer.step({&batch, 1});
    // The hand-written loop reads its loss back; read the norm back here.
    benchmark::DoNotOptimize(result.grad_norm.item<float>());
  }
  state.SetItemsProcessed(state.iterations() * trainer.config().training.batch_size);
}

}  // namespace

BENCHMARK(BM_HandWrittenStep)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TrainerStep)
    ->Args({64, 0})
    ->Args({64, 1})
    ->Args({1024, 0})
    ->Args({1024, 1})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
