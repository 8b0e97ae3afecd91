// The all-reduce of data parallel, measured: run it under torchrun,
//   PET_REDIRECTS=1 PET_TEE=1 torchrun --standalone --nproc_per_node=2
//       --no_python build/benchmarks/kokoro_bench_allreduce [repetitions]
// Rank 0 prints the median time of DataParallel::all_reduce_sum over the
// small TTS model's gradients (one tensor per parameter, float32, bucketed
// as the Trainer sends them) and over one flat tensor of the same size, with
// the algorithm bandwidth (bytes / time) and the bus bandwidth (times
// 2 (W − 1) / W, what a ring moves per rank), the figures NCCL's tests
// report. A measured run rather than a Google Benchmark: it needs a group of
// processes.
#include <kokoro/distributed/data_parallel.hpp>
#include <kokoro/tts/english_tts_task.hpp>
#include <kokoro/tts/tts_config.hpp>

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

template <class Work>
double median_ms(int repetitions, Work&& work) {
  work();  // warm: connections, buffers
  std::vector<double> times;
  for (int i = 0; i < repetitions; ++i) {
    const auto start = std::chrono::steady_clock::now();
    work();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int repetitions = argc > 1 ? std::atoi(argv[1]) : 20;
    at::set_num_threads(1);
    auto config = kokoro::tts::small_config();
    config.hardware.distributed = "on";
    kokoro::DataParallel group(config);
    // The small model's parameters, as gradients.
    const kokoro::tts::KokoroModel model(kokoro::tts::model_options(config.model, 100, 80));
    std::vector<torch::Tensor> grads;
    std::int64_t elements = 0;
    for (const auto& p : model->parameters()) {
      grads.push_back(torch::randn_like(p));
      elements += p.numel();
    }
    std::vector<torch::Tensor> flat{torch::randn({elements})};
    const double bytes = static_cast<double>(elements) * 4.0;
    const double bucketed = median_ms(repetitions, [&] { group.all_reduce_sum(grads); });
    const double single = median_ms(repetitions, [&] { group.all_reduce_sum(flat); });
    if (group.rank() == 0) {
      const int world = group.world_size();
      const double ring = 2.0 * (world - 1) / world;
      std::printf("ranks %d, backend %s, %zu gradient tensors, %lld elements (%.1f MB float32)\n",
                  world, group.backend().c_str(), grads.size(), static_cast<long long>(elements),
                  bytes / 1e6);
      for (const auto& [what, ms] :
           {std::pair{"the gradients, bucketed", bucketed}, std::pair{"one flat tensor", single}}) {
        const double algorithm = bytes / (ms / 1e3) / 1e9;
        std::printf("%-24s median %.1f ms of %d: %.2f GB/s algorithm, %.2f GB/s bus\n", what, ms,
                    repetitions, algorithm, algorithm * ring);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kokoro_bench_allreduce: %s\n", e.what());
    return 1;
  }
}
