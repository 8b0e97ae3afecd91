// The adaptive memory policy's per-step cost: Trainer::step on the minimal
// example's MLP (the cheapest step there is, so the worst case for the
// policy's share) with NoMemoryPolicy vs AdaptiveMemory<> reading this
// process's memory; and after_step() alone. Compare within one run.
#include <benchmark/benchmark.h>

#include <kokoro/trainer.hpp>

#include "minimal/regression_task.hpp"

namespace {

template <class Memory>
struct BenchPolicies : kokoro::DefaultPolicies {
  using memory = Memory;
  using logger = kokoro::archetype::Logger;  // silent
};

template <class Memory>
void BM_MinimalStep(benchmark::State& state) {
  minimal::Config config;
  config.regression.hidden_dim = 64;
  config.training.batch_size = 64;
  config.hardware.num_threads = 1;
  config.hardware.mixed_precision = false;
  config.logging.checkpoints = false;
  config.logging.log_every = 1'000'000;
  kokoro::Trainer<minimal::RegressionTask, BenchPolicies<Memory>> trainer(config);
  const auto batches = trainer.task().train_data(0);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& batch = batches[i++ % batches.size()];
    benchmark::DoNotOptimize(trainer.step({&batch, 1}).grad_norm.template item<float>());
  }
}

/// after_step() alone, at low pressure (reads at most every 0.1 s).
void BM_AdaptiveAfterStep(benchmark::State& state) {
  kokoro::AdaptiveMemory<kokoro::CpuMemoryReader> memory;
  const kokoro::Metrics none;
  const kokoro::StepContext ctx{0, 1, 1, 0, 64, true, none};
  for (auto _ : state) benchmark::DoNotOptimize(memory.after_step(ctx));
}

/// One memory reading (/proc/self/statm), what after_step pays when it reads.
void BM_CpuMemoryRead(benchmark::State& state) {
  kokoro::CpuMemoryReader reader;
  for (auto _ : state) benchmark::DoNotOptimize(reader.read());
}

}  // namespace

BENCHMARK_TEMPLATE(BM_MinimalStep, kokoro::NoMemoryPolicy)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_MinimalStep, kokoro::AdaptiveMemory<>)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AdaptiveAfterStep);
BENCHMARK(BM_CpuMemoryRead);
BENCHMARK_MAIN();
