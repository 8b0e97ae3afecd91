// The TTS data pipeline's throughput: building the demo corpus (espeak-ng),
// preparing features (audio, log-mel, phonemes, durations, cache files) on 1
// and 2 threads, and serving an epoch of training batches from the cache
// with 0 and 2 loader workers. Compare batches/s with the training step rate:
// the loader has headroom when it delivers batches much faster than the
// model consumes them.
#include <benchmark/benchmark.h>

#include <kokoro/tts/data/corpus.hpp>
#include <kokoro/tts/data/tts_data.hpp>
#include "english_tts/demo_corpus.hpp"

#include <unistd.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace kokoro;
using namespace kokoro::tts;
using namespace english_tts;

namespace {

constexpr int kClips = 48;

const fs::path& scratch() {
  static const fs::path dir =
      fs::temp_directory_path() / fmt::format("kokoro-bench-tts-{}", ::getpid());
  return dir;
}

const fs::path& corpus() {
  static const fs::path root = [] {
    DemoCorpusOptions options;
    options.out = scratch() / "demo";
    options.clips = kClips;
    return build_demo_corpus(options).root;
  }();
  return root;
}

TtsConfig config(std::int64_t workers) {
  auto c = small_config();
  c.data.num_workers = workers;
  c.hardware.num_threads = 1;
  return c;
}

void BM_BuildDemoCorpus(benchmark::State& state) {
  for (auto _ : state) {
    DemoCorpusOptions options;
    options.out = scratch() / "demo-build";
    options.clips = kClips;
    benchmark::DoNotOptimize(build_demo_corpus(options));
  }
  state.counters["clips/s"] =
      benchmark::Counter(kClips * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_PrepareFeatures(benchmark::State& state) {
  const EnglishPhonemeProcessor processor;
  const auto c = config(state.range(0));
  corpus();
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(scratch() / "cache");
    state.ResumeTiming();
    benchmark::DoNotOptimize(prepare_corpus(c, processor, corpus(), scratch() / "cache"));
  }
  state.counters["clips/s"] =
      benchmark::Counter(kClips * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_LoaderEpoch(benchmark::State& state) {
  const EnglishPhonemeProcessor processor;
  const auto c = config(state.range(0));
  const TtsData data(prepare_corpus(c, processor, corpus(), scratch() / "cache-loader"), c);
  std::int64_t batches = 0;
  for (auto _ : state) {
    for (const auto& batch : data.train(batches)) {
      benchmark::DoNotOptimize(batch.mels.data_ptr());
      ++batches;
    }
  }
  state.counters["batches/s"] =
      benchmark::Counter(static_cast<double>(batches), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_BuildDemoCorpus)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PrepareFeatures)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LoaderEpoch)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fs::remove_all(scratch());
}
