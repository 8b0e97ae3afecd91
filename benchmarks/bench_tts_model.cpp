// The small TTS model's training step (KokoroModel: d=256, 4+4 layers, ff
// 1024, PostNet, batch 8) on a synthetic batch shaped like the demo corpus,
// two threads, measured against the machine's limit: the GEMM peak at the
// model's own shapes (float32 and bfloat16), the step's FLOPs counted from
// its shapes, and the model FLOP utilisation (MFU) of each step variant —
// kokoro's kernels against the reference path (libtorch's stock dropout and
// attention, the system allocator), with gradient checkpointing off, on or
// auto, with and without the PostNet. Also the tensor memory of one step,
// counted by a CPU allocator that tracks every allocation, against the
// model's own estimate. `--breakdown` prints one step's time per libtorch op
// for each variant instead. Compare figures within one run.
#include <benchmark/benchmark.h>

#include <kokoro/core/autocast.hpp>
#include <kokoro/core/clip.hpp>
#include <kokoro/core/loss.hpp>
#include <kokoro/core/training_config.hpp>
#include <kokoro/device/cpu_device.hpp>
#include <kokoro/device/cpu_memory_cache.hpp>
#include <kokoro/nn/attention.hpp>
#include <kokoro/nn/attention_kernels.hpp>
#include <kokoro/nn/checkpointing_choice.hpp>
#include <kokoro/nn/fast_dropout.hpp>
#include <kokoro/tts/data/batch.hpp>
#include <kokoro/tts/english_tts_task.hpp>
#include <kokoro/tts/model/kokoro_model.hpp>
#include <kokoro/tts/model/losses.hpp>
#include <kokoro/tts/text/phoneme_processor.hpp>

#include <ATen/Parallel.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>

#include <fmt/format.h>

#include "tts_step_shapes.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using namespace kokoro;
using namespace kokoro::tts;

constexpr int kThreads = 2;
constexpr std::int64_t kSeed = 42;
using bench::kMels;
using bench::step_flops;
using bench::synthetic_batch;

/// A step variant: which kernels and allocator, the precision, when to
/// checkpoint, whether the model has its PostNet.
struct Variant {
  bool reference = false;  ///< libtorch's dropout and attention, the system allocator
  bool bf16 = true;
  std::string checkpointing = "auto";  ///< "auto", "true", "false"
  bool postnet = true;

  std::string describe() const {
    return fmt::format("{}, {}, checkpointing {}{}", reference ? "reference" : "fast",
                       bf16 ? "bfloat16" : "float32", checkpointing, postnet ? "" : ", no PostNet");
  }
};

/// libtorch's CPU allocator for a variant: kokoro's memory cache, or the
/// default allocator with the cache emptied.
void use_allocator(bool reference) {
  if (reference) {
    c10::SetCPUAllocator(c10::GetDefaultCPUAllocator());
    CpuMemoryCache::instance().release();
  } else {
    CpuDevice(TrainingConfig{}).install_memory_cache();
  }
}

/// The small configuration's model, its AdamW (the Trainer's options) and the
/// synthetic batch, seeded; step() is the Trainer's step written out, with the
/// TTS task's choice of checkpointing.
class TtsStep {
 public:
  explicit TtsStep(const Variant& variant)
      : seeded_(kSeed),
        config_(configure(variant)),
        vocab_(static_cast<std::int64_t>(english_phoneme_vocabulary().size())),
        model_(model_options(config_.model, vocab_, kMels)),
        optimizer_(model_->parameters(),
                   torch::optim::AdamWOptions(config_.training.learning_rate)
                       .betas({config_.training.adam_beta1, config_.training.adam_beta2})
                       .eps(config_.training.adam_eps)
                       .weight_decay(config_.training.weight_decay)),
        parameters_(model_->parameters()),
        batch_(synthetic_batch(vocab_)),
        checkpointing_(*nn::parse_checkpointing_mode(config_.model.gradient_checkpointing)),
        bf16_(variant.bf16) {
    model_->train();
    // What the Trainer tells the task before the first step: the device's
    // free memory.
    const auto memory = CpuDevice().memory();
    checkpointing_.observe({.used_bytes = memory.used_bytes, .total_bytes = memory.total_bytes});
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
  const TtsBatch& batch() const { return batch_; }
  KokoroModel& model() { return model_; }
  /// Whether the last step checkpointed.
  bool checkpointed() const { return model_->gradient_checkpointing(); }

  /// The model's activation estimate for this batch.
  std::int64_t activation_estimate() const {
    return model_->activation_bytes(batch_.size(), batch_.mels.size(1), batch_.phonemes.size(1),
                                    bf16_ ? 2 : 4);
  }

 private:
  /// Seeds libtorch's generator before the model and the batch are drawn.
  struct Seeded {
    explicit Seeded(std::int64_t seed) { torch::manual_seed(static_cast<std::uint64_t>(seed)); }
  };

  static TtsConfig configure(const Variant& variant) {
    auto c = small_config();
    c.model.gradient_checkpointing = variant.checkpointing;
    c.model.postnet = variant.postnet;
    c.model.kernels = variant.reference ? "reference" : "fast";
    c.training.grad_clip_norm = 1.0;
    return c;
  }

  Loss forward() {
    std::optional<AutocastGuard> autocast;
    if (bf16_) autocast.emplace(c10::DeviceType::CPU, c10::ScalarType::BFloat16);
    model_->set_gradient_checkpointing(checkpointing_.for_batch(activation_estimate()));
    return tts_loss(model_->forward(batch_), batch_, loss_options(config_.loss));
  }

  Seeded seeded_;
  TtsConfig config_;
  std::int64_t vocab_;
  KokoroModel model_;
  torch::optim::AdamW optimizer_;
  std::vector<torch::Tensor> parameters_;
  TtsBatch batch_;
  nn::CheckpointingChoice checkpointing_;
  bool bf16_;
};

/// Minor page faults of this process so far (/proc/self/stat, field 10).
std::int64_t minor_faults() {
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (in parentheses, which may hold spaces).
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 10 && rest >> field; ++i) {
    if (i == 10) return std::stoll(field);
  }
  return -1;
}

/// The model's matrix-product shapes for the benchmark batch, rows = B·F:
/// (rows, in, out) of the projections, the feed-forward's two products and
/// the PostNet's middle convolution as a GEMM (k·c inputs).
std::vector<std::array<std::int64_t, 3>> model_gemm_shapes() {
  const std::int64_t rows = 8 * 620;
  return {{rows, 256, 256}, {rows, 256, 2048}, {rows, 1024, 256}, {rows, 5 * 512, 512}};
}

/// The best FLOP/s of torch::mm over the model's shapes in `dtype`, two
/// threads; measured once per process (about a second).
double gemm_peak(c10::ScalarType dtype) {
  static std::unordered_map<int, double> measured;
  const auto found = measured.find(static_cast<int>(dtype));
  if (found != measured.end()) return found->second;
  at::set_num_threads(kThreads);
  double best = 0.0;
  for (const auto& [m, k, n] : model_gemm_shapes()) {
    const auto a = torch::randn({m, k}).to(dtype);
    const auto w = torch::randn({k, n}).to(dtype);
    for (int i = 0; i < 3; ++i) benchmark::DoNotOptimize(torch::mm(a, w));
    const int reps = 10;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) benchmark::DoNotOptimize(torch::mm(a, w));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * m * k * n * reps / seconds);
  }
  measured[static_cast<int>(dtype)] = best;
  return best;
}

/// Arguments: precision (0: float32, 1: bfloat16). The best of the model's
/// GEMM shapes, and each shape's own rate.
void BM_GemmPeak(benchmark::State& state) {
  const auto dtype = state.range(0) == 1 ? c10::ScalarType::BFloat16 : c10::ScalarType::Float;
  if (dtype == c10::ScalarType::BFloat16 && !cpu_has_native_bf16()) {
    state.SkipWithError("no native bfloat16 on this CPU (avx512_bf16 or amx_bf16)");
    return;
  }
  at::set_num_threads(kThreads);
  const auto shapes = model_gemm_shapes();
  std::vector<std::pair<torch::Tensor, torch::Tensor>> operands;
  double flops = 0.0;
  for (const auto& [m, k, n] : shapes) {
    operands.emplace_back(torch::randn({m, k}).to(dtype), torch::randn({k, n}).to(dtype));
    flops += 2.0 * m * k * n;
  }
  for (auto _ : state) {
    for (const auto& [a, w] : operands) benchmark::DoNotOptimize(torch::mm(a, w));
  }
  state.SetLabel(dtype == c10::ScalarType::BFloat16 ? "bfloat16" : "float32");
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["best_shape_GFLOP/s"] = gemm_peak(dtype) * 1e-9;
}

/// Arguments: reference (0, 1), bf16 (0, 1), checkpointing (0: false, 1:
/// true, 2: auto), postnet (0, 1). Counters: samples/s, the counted FLOPs and
/// achieved FLOP/s, MFU against the bfloat16 GEMM peak measured in this
/// process, minor page faults per step, and whether auto checkpointed.
void BM_TtsStep(benchmark::State& state) {
  static const char* const kCheckpointing[] = {"false", "true", "auto"};
  const Variant variant{.reference = state.range(0) == 1,
                        .bf16 = state.range(1) == 1,
                        .checkpointing = kCheckpointing[state.range(2)],
                        .postnet = state.range(3) == 1};
  if (variant.bf16 && !cpu_has_native_bf16()) {
    state.SkipWithError("no native bfloat16 on this CPU (avx512_bf16 or amx_bf16)");
    return;
  }
  const double peak = gemm_peak(c10::ScalarType::BFloat16);
  at::set_num_threads(kThreads);
  use_allocator(variant.reference);
  double flops = 0.0;
  std::int64_t faults = 0;
  bool checkpointed = false;
  {
    TtsStep bench(variant);
    bench.step();  // warm-up: AdamW state, oneDNN primitives, the allocator's cache
    checkpointed = bench.checkpointed();
    flops = step_flops(bench.model()->options(), bench.batch(), checkpointed);
    const auto faults_before = minor_faults();
    for (auto _ : state) benchmark::DoNotOptimize(bench.step().item<float>());
    faults = minor_faults() - faults_before;
    state.counters["samples/s"] = benchmark::Counter(
        static_cast<double>(bench.samples() * state.iterations()), benchmark::Counter::kIsRate);
  }
  use_allocator(false);
  const double steps = static_cast<double>(state.iterations());
  state.SetLabel(variant.describe());
  state.counters["GFLOP/step"] = flops * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9 * steps, benchmark::Counter::kIsRate);
  // MFU needs the step time, which the rate counter only knows after the
  // run; recorded as FLOPs per peak-second and divided by time there.
  state.counters["MFU"] = benchmark::Counter(flops * steps / peak, benchmark::Counter::kIsRate);
  state.counters["faults/step"] = static_cast<double>(faults) / steps;
  state.counters["checkpointed"] = checkpointed ? 1.0 : 0.0;
}

/// Arguments: kernel (0: libtorch's dropout, bernoulli_ on the CPU; 1: the
/// Philox kernel), dtype (0: float32, 1: bfloat16). Dropout p = 0.1 on one
/// decoder attention map of the benchmark batch, [8, 8, 620, 620], two
/// threads, through the memory cache; ns per element.
void BM_Dropout(benchmark::State& state) {
  const bool philox = state.range(0) == 1;
  const auto dtype = state.range(1) == 1 ? torch::kBFloat16 : torch::kFloat;
  at::set_num_threads(kThreads);
  use_allocator(false);
  const auto map = torch::rand({8, 8, 620, 620}).to(dtype);
  for (auto _ : state) {
    benchmark::DoNotOptimize(philox ? nn::fast_dropout(map, 0.1, true)
                                    : torch::dropout(map, 0.1, true));
  }
  state.SetLabel(fmt::format("{}, {}", philox ? "Philox" : "bernoulli_",
                             dtype == torch::kBFloat16 ? "bfloat16" : "float32"));
  // Elements per nanosecond, inverted.
  state.counters["ns/element"] = benchmark::Counter(
      static_cast<double>(map.numel()) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

/// Arguments: kernel (0: libtorch's masked_fill_ and softmax and the Philox
/// mask as separate passes, as the attention core ran before its row
/// kernels; 1: the fused row kernels of nn/attention_kernels.hpp),
/// direction (0: forward, 1: backward). One decoder self-attention map of
/// the benchmark batch, [8, 8, 620, 620] bfloat16, causal and padded, with
/// attention dropout 0.1, two threads; ns per element.
void BM_AttentionRows(benchmark::State& state) {
  const bool fused = state.range(0) == 1;
  const bool backward = state.range(1) == 1;
  at::set_num_threads(kThreads);
  use_allocator(false);
  torch::manual_seed(3);
  const std::int64_t frames = 620;
  const auto scores = torch::randn({8, 8, frames, frames}).to(torch::kBFloat16);
  const auto grad = torch::randn({8, 8, frames, frames}).to(torch::kBFloat16);
  auto key_mask = torch::ones({8, frames}, torch::kBool);
  key_mask.slice(1, 400).fill_(false);
  const auto blocked = nn::blocked_keys(key_mask, true, frames, frames, torch::kCPU);
  const double p = 0.1;
  const float blocked_value = static_cast<float>(nn::blocked_score(torch::kBFloat16));
  const auto weights = torch::softmax(scores.masked_fill(blocked, blocked_value), -1);
  for (auto _ : state) {
    if (!backward) {
      auto map = scores.clone();
      if (fused) {
        benchmark::DoNotOptimize(nn::detail::softmax_dropout_(map, blocked, p, 11, blocked_value));
      } else {
        map.masked_fill_(blocked, blocked_value);
        auto w = torch::softmax(map, -1);
        benchmark::DoNotOptimize(nn::apply_dropout_mask(w, 11, p));
      }
    } else {
      auto g = grad.clone();
      if (fused) {
        benchmark::DoNotOptimize(nn::detail::dropout_softmax_backward_(g, weights, p, 11));
      } else {
        benchmark::DoNotOptimize(nn::apply_dropout_mask(weights, 11, p));
        nn::apply_dropout_mask_(g, 11, p);
        benchmark::DoNotOptimize(
            torch::_softmax_backward_data(g, weights, -1, weights.scalar_type()));
      }
    }
  }
  state.SetLabel(fmt::format("{}, {}", fused ? "row kernels" : "separate passes",
                             backward ? "backward" : "forward"));
  state.counters["ns/element"] = benchmark::Counter(
      static_cast<double>(scores.numel()) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
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

  // Both forms of libtorch's Allocator (see kokoro/device/cpu_memory_cache.hpp).
  c10::DataPtr allocate(std::size_t bytes) const {
    void* data = c10::alloc_cpu(bytes);
    if (data != nullptr) instance().add(data, bytes);
    // The context is the data pointer itself, as raw_deleter requires.
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DataPtr allocate(std::size_t bytes) { return std::as_const(*this).allocate(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
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

/// Makes `allocator` libtorch's CPU allocator for a scope, then kokoro's
/// memory cache again.
class CpuAllocatorScope {
 public:
  explicit CpuAllocatorScope(c10::Allocator* allocator) { c10::SetCPUAllocator(allocator); }
  ~CpuAllocatorScope() { use_allocator(false); }
  CpuAllocatorScope(const CpuAllocatorScope&) = delete;
  CpuAllocatorScope& operator=(const CpuAllocatorScope&) = delete;
};

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

/// Arguments: reference (0, 1), bf16 (0, 1), checkpointing (0: false, 1:
/// true). One step after a warm-up step, counting every tensor allocated
/// since the model was built. Counters: resident (parameters, AdamW moments,
/// the batch: live when the step starts, gradients dropped), kept after
/// forward (what the loss holds on to for backward, on top of resident), the
/// model's estimate of that without checkpointing, peak (the most live at
/// once in the step, resident included).
void BM_StepPeakMemory(benchmark::State& state) {
  const Variant variant{.reference = state.range(0) == 1,
                        .bf16 = state.range(1) == 1,
                        .checkpointing = state.range(2) == 1 ? "true" : "false"};
  if (variant.bf16 && !cpu_has_native_bf16()) {
    state.SkipWithError("no native bfloat16 on this CPU (avx512_bf16 or amx_bf16)");
    return;
  }
  at::set_num_threads(kThreads);
  auto& counter = CountingCpuAllocator::instance();
  const CpuAllocatorScope scope(&counter);  // before the model: its tensors are counted
  if (c10::GetCPUAllocator() != &counter) {
    state.SkipWithError("the counting allocator could not be installed");
    return;
  }
  std::size_t resident = 0, kept = 0, peak = 0;
  std::int64_t estimate = 0;
  {
    TtsStep bench(variant);
    estimate = bench.activation_estimate();
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
  state.SetLabel(variant.describe());
  state.counters["resident_MiB"] = mib(resident);
  state.counters["kept_after_forward_MiB"] = mib(kept);
  state.counters["estimate_MiB"] = mib(static_cast<std::size_t>(estimate));
  state.counters["peak_MiB"] = mib(peak);
}

/// One step of `variant` under libtorch's profiler: self time per op name,
/// most first (the top 25), and the step's wall time.
void print_breakdown(const Variant& variant) {
  at::set_num_threads(kThreads);
  use_allocator(variant.reference);
  TtsStep bench(variant);
  bench.step();
  bench.step();
  using namespace torch::autograd::profiler;
  struct Row {
    double self_us = 0.0;
    std::int64_t calls = 0;
  };
  std::unordered_map<std::string, Row> rows;
  double in_ops = 0.0;
  const auto start = std::chrono::steady_clock::now();
  {
    const TLSLegacyProfilerGuard guard(
        torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU),
        [&](const thread_event_lists& lists) {
          for (const auto& list : lists) {
            struct Open {
              const LegacyEvent* event;
              double children_us;
            };
            std::vector<Open> stack;
            for (const auto& e : list) {
              if (e.kind() == EventKind::PushRange) stack.push_back({&e, 0.0});
              if (e.kind() != EventKind::PopRange || stack.empty()) continue;
              const auto open = stack.back();
              stack.pop_back();
              const double us = open.event->cpuElapsedUs(e);
              auto& row = rows[open.event->name()];
              row.self_us += us - open.children_us;
              ++row.calls;
              if (stack.empty()) {
                in_ops += us;
              } else {
                stack.back().children_us += us;
              }
            }
          }
        });
    bench.step();
  }
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  fmt::print("## {}: {:.0f} ms a step (profiled), {:.0f} ms inside ops, checkpointed: {}\n\n",
             variant.describe(), wall, in_ops / 1000.0, bench.checkpointed() ? "yes" : "no");
  fmt::print("| op | self ms | share | calls |\n|---|---|---|---|\n");
  for (std::size_t i = 0; i < sorted.size() && i < 25; ++i) {
    const auto& [name, row] = sorted[i];
    fmt::print("| {} | {:.1f} | {:.1f}% | {} |\n", name, row.self_us / 1000.0,
               100.0 * row.self_us / in_ops, row.calls);
  }
  fmt::print("\n");
  use_allocator(false);
}

}  // namespace

BENCHMARK(BM_GemmPeak)
    ->ArgName("bf16")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Dropout)
    ->ArgNames({"philox", "bf16"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_AttentionRows)
    ->ArgNames({"fused", "backward"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_TtsStep)
    ->ArgNames({"reference", "bf16", "checkpointing", "postnet"})
    ->Args({1, 1, 1, 1})  // the reference path at the old defaults (checkpointing on)
    ->Args({0, 1, 2, 1})  // the defaults: fast kernels, bfloat16, checkpointing auto, PostNet
    ->Args({0, 1, 0, 1})  // no checkpointing
    ->Args({0, 1, 1, 1})  // checkpointing forced on
    ->Args({0, 1, 0, 0})  // the original's knobs: no PostNet, no checkpointing
    ->Args({1, 1, 0, 0})  // the same on the reference path
    ->Args({0, 0, 0, 1})  // float32, no checkpointing
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5.0);
BENCHMARK(BM_StepPeakMemory)
    ->ArgNames({"reference", "bf16", "checkpointing"})
    ->Args({1, 0, 0})
    ->Args({0, 0, 0})
    ->Args({0, 0, 1})
    ->Args({0, 1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--breakdown") {
    for (const auto& variant :
         {Variant{.reference = true, .checkpointing = "true"}, Variant{},
          Variant{.checkpointing = "false"}, Variant{.checkpointing = "false", .postnet = false}}) {
      print_breakdown(variant);
    }
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
