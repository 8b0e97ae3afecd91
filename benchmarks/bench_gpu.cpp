// kokoro_bench_gpu: the GPU figures of scripts/gpu-check. The bfloat16 GEMM
// peak of this GPU (torch::mm at large square shapes and at the small
// model's own shapes, the best of them), then the small TTS model's training
// step on a synthetic batch shaped like the demo corpus (8 clips, `--copies`
// times over), in bfloat16 autocast and in float16 autocast with
// DynamicGradScaler: seconds per step, samples/s, and the model FLOP
// utilisation (MFU) against that peak, the FLOPs counted as the CPU
// benchmark counts them (tts_step_shapes.hpp). Without a GPU it says
// "kokoro-skip" and exits 0.
//   kokoro_bench_gpu [--copies N] [--seconds S]
#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/core/autocast.hpp>
#include <kokoro/core/clip.hpp>
#include <kokoro/tts/english_tts_task.hpp>
#include <kokoro/tts/model/losses.hpp>
#include <kokoro/tts/text/phoneme_processor.hpp>

#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "tts_step_shapes.hpp"

namespace {

using namespace kokoro;
using namespace kokoro::tts;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// The best bfloat16 FLOP/s of torch::mm over large squares and the model's
/// shapes (rows = clips x frames of the benchmark batch).
double gemm_peak(std::int64_t rows) {
  const std::vector<std::array<std::int64_t, 3>> shapes{{8192, 8192, 8192},
                                                        {4096, 4096, 4096},
                                                        {rows, 256, 1024},
                                                        {rows, 1024, 256},
                                                        {rows, 5 * 512, 512}};
  double best = 0.0;
  for (const auto& [m, k, n] : shapes) {
    const auto options = torch::TensorOptions(torch::kCUDA).dtype(torch::kBFloat16);
    const auto a = torch::randn({m, k}, options);
    const auto b = torch::randn({k, n}, options);
    for (int i = 0; i < 3; ++i) (void)torch::mm(a, b);
    torch::cuda::synchronize();
    const int reps = 20;
    const auto start = Clock::now();
    for (int i = 0; i < reps; ++i) (void)torch::mm(a, b);
    torch::cuda::synchronize();
    const double rate = 2.0 * m * k * n * reps / seconds_since(start);
    fmt::print("  mm {}x{}x{}: {:.1f} TFLOP/s\n", m, k, n, rate * 1e-12);
    best = std::max(best, rate);
  }
  return best;
}

struct StepFigures {
  double seconds_per_step = 0.0;
  double samples_per_second = 0.0;
  double mfu = 0.0;
  double last_loss = 0.0;
  std::int64_t skipped = 0;
};

/// The small model's training steps on the GPU in `dtype` autocast (float16
/// with loss scaling) for about `budget` seconds after a warm-up.
StepFigures train_steps(c10::ScalarType dtype, int copies, double budget, double peak) {
  torch::manual_seed(42);
  auto config = small_config();
  config.model.gradient_checkpointing = "false";
  const auto vocab = static_cast<std::int64_t>(english_phoneme_vocabulary().size());
  KokoroModel model(model_options(config.model, vocab, bench::kMels));
  const torch::Device gpu(torch::kCUDA, 0);
  model->to(gpu);
  model->train();
  auto parameters = model->parameters();
  torch::optim::AdamW optimizer(parameters,
                                torch::optim::AdamWOptions(config.training.learning_rate)
                                    .betas({config.training.adam_beta1, config.training.adam_beta2})
                                    .eps(config.training.adam_eps)
                                    .weight_decay(config.training.weight_decay));
  const auto host = bench::synthetic_batch(vocab, copies);
  const auto batch = host.to(gpu);
  const bool scaled = dtype == torch::kHalf;
  DynamicGradScaler scaler;
  StepFigures figures;
  const auto step = [&] {
    for (auto& p : parameters) p.mutable_grad().reset();
    Loss loss;
    {
      AutocastGuard autocast(c10::DeviceType::CUDA, dtype);
      loss = tts_loss(model->forward(batch), batch, loss_options(config.loss));
    }
    if (scaled) {
      scaler.scale(loss.total).backward();
      scaler.unscale(optimizer);
      clip_grad_norm(parameters, 1.0);
      if (!scaler.step(optimizer)) ++figures.skipped;
      scaler.update();
    } else {
      loss.total.backward();
      clip_grad_norm(parameters, 1.0);
      optimizer.step();
    }
    return loss.total;
  };
  for (int i = 0; i < 5; ++i) step();
  torch::cuda::synchronize();
  std::int64_t steps = 0;
  torch::Tensor last;
  const auto start = Clock::now();
  while (seconds_since(start) < budget) {
    last = step();
    ++steps;
    if (steps % 10 == 0) torch::cuda::synchronize();
  }
  torch::cuda::synchronize();
  const double elapsed = seconds_since(start);
  figures.seconds_per_step = elapsed / static_cast<double>(steps);
  figures.samples_per_second = static_cast<double>(host.size() * steps) / elapsed;
  figures.mfu = bench::step_flops(model->options(), host, false) / figures.seconds_per_step / peak;
  figures.last_loss = last.item<double>();
  return figures;
}

}  // namespace

int main(int argc, char** argv) {
  int copies = 4;
  double seconds = 20.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--copies") copies = std::atoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  if (!torch::cuda::is_available()) {
    fmt::print("kokoro-skip: no CUDA device here\n");
    return 0;
  }
  const auto rows = static_cast<std::int64_t>(copies) * 8 * 620;
  fmt::print("bfloat16 GEMM:\n");
  const double peak = gemm_peak(rows);
  fmt::print("gemm_peak_bf16_tflops {:.1f}\n", peak * 1e-12);
  for (const auto dtype : {torch::kBFloat16, torch::kHalf}) {
    const auto f = train_steps(dtype, copies, seconds, peak);
    const std::string name = dtype == torch::kHalf ? "float16+scaler" : "bfloat16";
    fmt::print(
        "step {}: batch {}, {:.1f} ms/step, {:.1f} samples/s, MFU {:.1f}%, loss {:.3f}, "
        "{} skipped\n",
        name, copies * 8, f.seconds_per_step * 1e3, f.samples_per_second, f.mfu * 100.0,
        f.last_loss, f.skipped);
  }
  return 0;
}
