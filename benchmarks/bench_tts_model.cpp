// The small TTS model's training step (KokoroModel: d=256, 4+4 layers, ff
// 1024, PostNet, batch 8) on a synthetic batch shaped like the demo corpus,
// two threads: float32 vs bfloat16 autocast, each with gradient
// checkpointing on and off, in samples/s; and the memory of one float32 step
// with checkpointing on and off, counted by a CPU allocator that tracks every
// tensor allocation. Compare figures within one run.
#include <benchmark/benchmark.h>

#include <kokoro/core/autocast.hpp>
#include <kokoro/core/clip.hpp>
#include <kokoro/core/loss.hpp>
#include <kokoro/tts/data/batch.hpp>
#include <kokoro/tts/english_tts_task.hpp>
#include <kokoro/tts/model/kokoro_model.hpp>
#include <kokoro/tts/model/losses.hpp>
#include <kokoro/tts/text/phoneme_processor.hpp>

#include <ATen/Parallel.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/optim/adamw.h>

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace kokoro;
using namespace kokoro::tts;

constexpr int kThreads = 2;
constexpr std::int64_t kSeed = 42;
constexpr std::int64_t kMels = 80;

// Eight clips with the demo corpus's spread: 300..620 frames (mean 465) and
// 39..80 phonemes (mean 60), about 7.75 frames a phoneme, in no length order
// (a batch padded to its longest clip, as an unbucketed loader makes it).
constexpr std::array<std::int64_t, 8> kClipFrames{300, 620, 410, 520, 365, 575, 455, 475};
constexpr std::array<std::int64_t, 8> kClipPhonemes{39, 80, 53, 67, 47, 74, 59, 61};

/// One clip: random phoneme ids (never <pad>), durations drawn around the
/// mean and summing exactly to `frames`, a log-mel in the range real speech
/// has (silence is log(1e-5) = -11.5).
TtsItem synthetic_clip(std::size_t index, std::int64_t vocab) {
  const auto frames = kClipFrames[index];
  const auto tokens = kClipPhonemes[index];
  const auto weights = torch::rand({tokens}, torch::kDouble) + 0.5;  // 0.5..1.5
  auto durations = (weights / weights.sum() * static_cast<double>(frames)).floor().to(torch::kLong);
  const auto remainder = frames - durations.sum().item<std::int64_t>();  // in [0, tokens)
  durations.slice(0, 0, remainder) += 1;
  TtsItem item;
  item.id = fmt::format("synthetic_{}", index);
  item.phonemes = torch::randint(1, vocab, {tokens}, torch::kLong);
  item.durations = durations;
  item.mel = (torch::randn({frames, kMels}) * 2.0 - 5.0).clamp_min(kSilenceLogMel);
  return item;
}

TtsBatch synthetic_batch(std::int64_t vocab) {
  std::vector<TtsItem> items;
  for (std::size_t i = 0; i < kClipFrames.size(); ++i) items.push_back(synthetic_clip(i, vocab));
  return collate(items);
}

/// The small configuration's model, its AdamW (the Trainer's options) and the
/// synthetic batch, seeded; step() is the Trainer's step written out.
class TtsStep {
 public:
  TtsStep(bool bf16, bool checkpointing)
      : seeded_(kSeed),
        config_(configure(checkpointing)),
        vocab_(static_cast<std::int64_t>(english_phoneme_vocabulary().size())),
        model_(model_options(config_.model, vocab_, kMels)),
        optimizer_(model_->parameters(),
                   torch::optim::AdamWOptions(config_.training.learning_rate)
                       .betas({config_.training.adam_beta1, config_.training.adam_beta2})
                       .eps(config_.training.adam_eps)
                       .weight_decay(config_.training.weight_decay)),
        parameters_(model_->parameters()),
        batch_(synthetic_batch(vocab_)),
        bf16_(bf16) {
    model_->train();
  }

  /// Zero grads (set to none, as the Trainer does), forward and loss under
  /// the autocast mode, backward, clip to norm 1, AdamW. `started` runs once
  /// the gradients are dropped, `forwarded` between the loss and backward.
  /// Returns the gradient norm before clipping.
  template <class Started, class Forwarded>
  torch::Tensor step(Started&& started, Forwarded&& forwarded) {
    for (auto& p : parameters_) p.mutable_grad().reset();
    started();
    auto loss = forward();
    forwarded();
    loss.total.backward();
    auto norm = clip_grad_norm(parameters_, config_.training.grad_clip_norm);
    optimizer_.step();
    return norm;
  }

  torch::Tensor step() {
    return step([] {}, [] {});
  }

  std::int64_t samples() const { return batch_.size(); }

 private:
  /// Seeds libtorch's generator before the model and the batch are drawn.
  struct Seeded {
    explicit Seeded(std::int64_t seed) { torch::manual_seed(static_cast<std::uint64_t>(seed)); }
  };

  static TtsConfig configure(bool checkpointing) {
    auto c = small_config();
    c.model.gradient_checkpointing = checkpointing;
    c.training.grad_clip_norm = 1.0;
    return c;
  }

  Loss forward() {
    std::optional<AutocastGuard> autocast;
    if (bf16_) autocast.emplace(c10::DeviceType::CPU, c10::ScalarType::BFloat16);
    return tts_loss(model_->forward(batch_), batch_, loss_options(config_.loss));
  }

  Seeded seeded_;
  TtsConfig config_;
  std::int64_t vocab_;
  KokoroModel model_;
  torch::optim::AdamW optimizer_;
  std::vector<torch::Tensor> parameters_;
  TtsBatch batch_;
  bool bf16_;
};

std::string describe(bool bf16, bool checkpointing) {
  return fmt::format("{}, checkpointing {}", bf16 ? "bfloat16 autocast" : "float32",
                     checkpointing ? "on" : "off");
}

/// Arguments: bf16 (0: float32, 1: bfloat16 autocast), checkpointing (0, 1).
void BM_TtsStep(benchmark::State& state) {
  const bool bf16 = state.range(0) == 1;
  const bool checkpointing = state.range(1) == 1;
  if (bf16 && !cpu_has_native_bf16()) {
    state.SkipWithError("no native bfloat16 on this CPU (avx512_bf16 or amx_bf16)");
    return;
  }
  at::set_num_threads(kThreads);
  TtsStep bench(bf16, checkpointing);
  bench.step();  // warm-up: AdamW state, oneDNN primitives, allocator
  for (auto _ : state) benchmark::DoNotOptimize(bench.step().item<float>());
  state.SetLabel(describe(bf16, checkpointing));
  state.counters["samples/s"] = benchmark::Counter(
      static_cast<double>(bench.samples() * state.iterations()), benchmark::Counter::kIsRate);
}

/// The default CPU allocation (c10::alloc_cpu / free_cpu), counting the live
/// bytes by address and their peak. Lives for the whole process, so that
/// tensors it allocated can be freed after it is uninstalled.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  static CountingCpuAllocator& instance() {
    static CountingCpuAllocator allocator;
    return allocator;
  }

  c10::DataPtr allocate(std::size_t bytes) const override {
    void* data = c10::alloc_cpu(bytes);
    if (data != nullptr) instance().add(data, bytes);
    // The context is the data pointer itself, as raw_deleter requires.
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  /// The peak restarts from the bytes live now.
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_ = live_;
  }
  std::size_t live() {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_;
  }
  std::size_t peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }

 private:
  CountingCpuAllocator() = default;

  static void release(void* data) {
    instance().remove(data);
    c10::free_cpu(data);
  }

  void add(void* data, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[data] = bytes;
    live_ += bytes;
    if (live_ > peak_) peak_ = live_;
  }

  void remove(void* data) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = sizes_.find(data);
    if (it == sizes_.end()) return;
    live_ -= it->second;
    sizes_.erase(it);
  }

  std::mutex mutex_;
  std::unordered_map<void*, std::size_t> sizes_;
  std::size_t live_ = 0;
  std::size_t peak_ = 0;
};

/// Makes `allocator` libtorch's CPU allocator for a scope, then puts the
/// previous one back.
class CpuAllocatorScope {
 public:
  explicit CpuAllocatorScope(c10::Allocator* allocator) : previous_(c10::GetCPUAllocator()) {
    c10::SetCPUAllocator(allocator);
  }
  ~CpuAllocatorScope() { c10::SetCPUAllocator(previous_); }
  CpuAllocatorScope(const CpuAllocatorScope&) = delete;
  CpuAllocatorScope& operator=(const CpuAllocatorScope&) = delete;

 private:
  c10::Allocator* previous_;
};

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

/// Argument: checkpointing (0, 1). One float32 step after a warm-up step,
/// counting every tensor allocated since the model was built. Counters:
/// resident (parameters, AdamW moments, the batch: live when the step starts,
/// gradients dropped), kept after forward (what the loss holds on to for
/// backward, on top of resident), peak (the most live at once in the step,
/// resident included).
void BM_StepPeakMemory(benchmark::State& state) {
  const bool checkpointing = state.range(0) == 1;
  at::set_num_threads(kThreads);
  auto& counter = CountingCpuAllocator::instance();
  const CpuAllocatorScope scope(&counter);  // before the model: its tensors are counted
  if (c10::GetCPUAllocator() != &counter) {
    state.SkipWithError("the counting allocator could not be installed");
    return;
  }
  std::size_t resident = 0, kept = 0, peak = 0;
  {
    TtsStep bench(/*bf16=*/false, checkpointing);
    bench.step();  // warm-up: AdamW state
    for (auto _ : state) {
      const auto norm = bench.step(
          [&] {
            counter.reset_peak();
            resident = counter.live();
          },
          [&] { kept = counter.live() - resident; });
      peak = counter.peak();
      benchmark::DoNotOptimize(norm.item<float>());
    }
  }
  state.SetLabel(describe(false, checkpointing));
  state.counters["resident_MiB"] = mib(resident);
  state.counters["kept_after_forward_MiB"] = mib(kept);
  state.counters["peak_MiB"] = mib(peak);
}

}  // namespace

BENCHMARK(BM_TtsStep)
    ->ArgNames({"bf16", "checkpointing"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5.0);
BENCHMARK(BM_StepPeakMemory)
    ->ArgName("checkpointing")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_MAIN();
