// kokoro's own CPU kernels against their definitions and against libtorch:
// Philox dropout (Random123's known answers, the documented element order,
// the keep probability over tens of millions of draws, backward, seeding and
// replay under gradient checkpointing), the attention core (outputs and
// gradients equal to libtorch's ops, with masks and with dropout; its fused
// row kernels against libtorch's masked softmax and its backward), the CPU
// memory cache, and the choice of when to checkpoint.
#include <doctest/doctest.h>

#include <kokoro/device/cpu_device.hpp>
#include <kokoro/device/cpu_memory_cache.hpp>
#include <kokoro/nn/attention.hpp>
#include <kokoro/nn/attention_kernels.hpp>
#include <kokoro/nn/checkpointing_choice.hpp>
#include <kokoro/nn/fast_dropout.hpp>
#include <kokoro/nn/gradient_checkpoint.hpp>

#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

using namespace kokoro;

namespace {

/// The keep pattern the header documents for `n` elements: element
/// 64·g + 16·w + j takes word w of block 16·g + j, kept when below the
/// threshold. Computed one block at a time from philox4x32_10.
std::vector<bool> documented_keeps(std::int64_t n, std::uint64_t key, double p) {
  const auto threshold = nn::keep_threshold(p);
  const std::array<std::uint32_t, 2> k{static_cast<std::uint32_t>(key),
                                       static_cast<std::uint32_t>(key >> 32)};
  std::vector<bool> keeps(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto group = i / 64, w = (i % 64) / 16, j = i % 16;
    const auto block = static_cast<std::uint64_t>(group * 16 + j);
    const auto words = nn::philox4x32_10(
        {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), 0, 0}, k);
    keeps[static_cast<std::size_t>(i)] = words[static_cast<std::size_t>(w)] < threshold;
  }
  return keeps;
}

/// Restores the thread count a test changes.
struct ThreadsGuard {
  int saved = at::get_num_threads();
  ~ThreadsGuard() { at::set_num_threads(saved); }
};

}  // namespace

TEST_CASE("Philox4x32-10 gives Random123's known answers") {
  // Random123's tests/kat_vectors, the three philox4x32 10 lines.
  using Words = std::array<std::uint32_t, 4>;
  CHECK(nn::philox4x32_10({0, 0, 0, 0}, {0, 0}) ==
        Words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(nn::philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                          {0xffffffff, 0xffffffff}) ==
        Words{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(nn::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                          {0xa4093822, 0x299f31d0}) ==
        Words{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("each vector path draws what the scalar definition draws") {
  // philox_group takes the widest path the CPU has; the narrower ones would
  // go untested on a machine with AVX-512, so each is called directly.
  const std::uint64_t key = 0xD1B54A32D192ED03ull;
  // Groups whose blocks cross 2^32 in the counter's low word, and the last one.
  for (const std::uint64_t group :
       {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x0FFFFFFF}, std::uint64_t{0x10000000},
        std::uint64_t{0x123456789}, std::uint64_t{0x0FFFFFFFFFFFFFFF}}) {
    CAPTURE(group);
    std::uint32_t scalar[nn::detail::kGroupElements];
    nn::detail::philox_group_scalar(group, key, scalar);
#if defined(KOKORO_PHILOX_X86)
    std::uint32_t vector[nn::detail::kGroupElements];
    if (nn::detail::cpu_has_avx2()) {
      nn::detail::philox_group_avx2(group, key, vector);
      CHECK(std::equal(std::begin(scalar), std::end(scalar), std::begin(vector)));
    }
    if (nn::detail::cpu_has_avx512f()) {
      nn::detail::philox_group_avx512(group, key, vector);
      CHECK(std::equal(std::begin(scalar), std::end(scalar), std::begin(vector)));
    }
#endif
  }
}

TEST_CASE("the dropout mask follows the documented element order on any thread count") {
  const ThreadsGuard threads;
  // Not a multiple of 64, so the last group is partial; the key's high word
  // is set, so both key words matter.
  const std::int64_t n = 64 * 300 + 37;
  const std::uint64_t key = 0x9E3779B97F4A7C15ull;
  const double p = 0.3;
  const auto expected = documented_keeps(n, key, p);
  for (const int count : {1, 2}) {
    CAPTURE(count);
    at::set_num_threads(count);
    for (const auto dtype : {torch::kFloat, torch::kDouble, torch::kBFloat16, torch::kHalf}) {
      CAPTURE(static_cast<int>(dtype));
      const auto out = nn::apply_dropout_mask(torch::ones({n}, dtype), key, p).to(torch::kDouble);
      const auto* values = out.data_ptr<double>();
      std::int64_t mismatches = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const bool kept = values[i] != 0.0;
        if (kept != expected[static_cast<std::size_t>(i)]) ++mismatches;
        // Kept elements carry 1 / (1 - p), rounded once to the dtype.
        if (kept) {
          const double scale = torch::scalar_tensor(1.0 / (1.0 - p), torch::kDouble)
                                   .to(dtype)
                                   .to(torch::kDouble)
                                   .item<double>();
          if (std::abs(values[i] - scale) > 1e-12) ++mismatches;
        }
      }
      CHECK(mismatches == 0);
    }
  }
  // In place gives the same.
  auto x = torch::ones({n});
  nn::apply_dropout_mask_(x, key, p);
  CHECK(torch::equal(x, nn::apply_dropout_mask(torch::ones({n}), key, p)));
}

TEST_CASE("the keep probability is exact over tens of millions of draws") {
  // 2^25 = 33.5 M draws per probability: the kept share's standard deviation
  // is at most 0.5 / sqrt(2^25) = 8.6e-5; five of them is the bound.
  const std::int64_t n = std::int64_t{1} << 25;
  std::uint64_t key = 12345;
  for (const double p : {0.1, 0.5, 0.9}) {
    CAPTURE(p);
    const auto out = nn::apply_dropout_mask(torch::ones({n}, torch::kBFloat16), key++, p);
    const double kept = out.ne(0).sum().item<double>() / static_cast<double>(n);
    const double sigma = std::sqrt(p * (1.0 - p) / static_cast<double>(n));
    CHECK(std::abs(kept - (1.0 - p)) < 5.0 * sigma);
    // The threshold is the nearest 32-bit fraction to 1 − p.
    CHECK(std::abs(static_cast<double>(nn::keep_threshold(p)) / 4294967296.0 - (1.0 - p)) <=
          0.5 / 4294967296.0);
  }
  // Neighbouring keys and counters are not correlated: two masks of one
  // tensor agree on about q² + p² of the elements.
  const auto a = nn::apply_dropout_mask(torch::ones({n / 8}), 1, 0.5).ne(0);
  const auto b = nn::apply_dropout_mask(torch::ones({n / 8}), 2, 0.5).ne(0);
  const double agree = a.eq(b).sum().item<double>() / static_cast<double>(n / 8);
  CHECK(std::abs(agree - 0.5) < 5.0 * std::sqrt(0.25 / static_cast<double>(n / 8)));
}

TEST_CASE("fast dropout: backward applies the forward's mask, eval, p = 0 and p = 1") {
  torch::manual_seed(3);
  auto x = torch::randn({7, 131}, torch::requires_grad());
  const auto weights = torch::randn({7, 131});
  const auto y = nn::fast_dropout(x, 0.25, /*training=*/true);
  (y * weights).sum().backward();
  const auto kept = y.ne(0).to(torch::kFloat);
  CHECK(torch::allclose(x.grad(), kept * weights / 0.75, 1e-6, 1e-6));
  CHECK(torch::allclose(y, x.detach() * kept / 0.75, 1e-6, 1e-6));
  CHECK(torch::equal(nn::fast_dropout(x, 0.25, /*training=*/false), x));
  CHECK(torch::equal(nn::fast_dropout(x, 0.0, true), x));
  CHECK(nn::fast_dropout(x, 1.0, true).abs().sum().item<double>() == 0.0);
  CHECK_THROWS_AS(nn::fast_dropout(x, 1.5, true), Error);
  // A non-contiguous input is masked in row-major order of its shape.
  const auto t = torch::ones({131, 7}).t();
  CHECK(torch::equal(nn::apply_dropout_mask(t, 9, 0.5),
                     nn::apply_dropout_mask(torch::ones({7, 131}), 9, 0.5)));
}

TEST_CASE("fast dropout follows torch::manual_seed and the CPU generator's saved state") {
  const auto x = torch::ones({4096});
  torch::manual_seed(11);
  const auto first = nn::fast_dropout(x, 0.5, true);
  const auto state = at::detail::getDefaultCPUGenerator().get_state();
  const auto second = nn::fast_dropout(x, 0.5, true);
  CHECK_FALSE(torch::equal(first, second));  // each call draws a new key
  torch::manual_seed(11);
  CHECK(torch::equal(nn::fast_dropout(x, 0.5, true), first));
  auto generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(state);
  CHECK(torch::equal(nn::fast_dropout(x, 0.5, true), second));
}

TEST_CASE("gradient checkpointing replays fast dropout's masks") {
  torch::manual_seed(5);
  torch::nn::Linear first(32, 64), second(64, 32);
  nn::Dropout drop(nn::DropoutOptions{.p = 0.4});
  drop->train();
  const auto input = torch::randn({16, 32});
  auto segment = [&](const torch::autograd::variable_list& in) {
    return torch::autograd::variable_list{
        second->forward(drop->forward(torch::relu(first->forward(in[0]))))};
  };
  auto grads = [&](bool checkpointed) {
    first->zero_grad();
    second->zero_grad();
    torch::manual_seed(21);
    auto x = input.clone().requires_grad_(true);
    auto out = checkpointed ? nn::checkpoint(segment, {x})[0] : segment({x})[0];
    out.pow(2).sum().backward();
    return std::vector<torch::Tensor>{out.detach(), x.grad(), first->weight.grad().clone(),
                                      second->weight.grad().clone()};
  };
  const auto direct = grads(false);
  const auto replayed = grads(true);
  for (std::size_t i = 0; i < direct.size(); ++i) {
    CAPTURE(i);
    CHECK(torch::equal(direct[i], replayed[i]));
  }
}

namespace {

struct AttentionCase {
  torch::Tensor q, k, v;  // [B, h, L, d], [B, h, S, d]
  torch::Tensor blocked;
};

AttentionCase attention_case(bool causal, std::int64_t length, std::int64_t frames) {
  torch::manual_seed(17);
  AttentionCase c;
  c.q = torch::randn({3, 2, length, 8});
  c.k = torch::randn({3, 2, frames, 8});
  c.v = torch::randn({3, 2, frames, 8});
  auto key_mask = torch::ones({3, frames}, torch::kBool);
  key_mask[1].slice(0, frames - 3).fill_(false);  // padded keys
  key_mask[2].fill_(false);                       // a clip with no visible key
  c.blocked = nn::blocked_keys(key_mask, causal, length, frames, torch::kCPU);
  return c;
}

/// Output and the gradients of q, k, v for sum(out · w).
std::vector<torch::Tensor> run_core(const AttentionCase& c, nn::Kernels kernels, double p,
                                    const torch::Tensor& w) {
  auto q = c.q.clone().requires_grad_(true);
  auto k = c.k.clone().requires_grad_(true);
  auto v = c.v.clone().requires_grad_(true);
  auto out = nn::attention_core(q, k, v, c.blocked, 0.35, p, /*training=*/true, kernels);
  (out * w).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

}  // namespace

TEST_CASE("the attention core's output and gradients equal libtorch's ops") {
  for (const bool causal : {false, true}) {
    CAPTURE(causal);
    const auto c = attention_case(causal, causal ? 11 : 5, 11);
    const auto w = torch::randn(c.q.sizes().vec());
    const auto fast = run_core(c, nn::Kernels::fast, 0.0, w);
    const auto reference = run_core(c, nn::Kernels::reference, 0.0, w);
    for (std::size_t i = 0; i < fast.size(); ++i) {
      CAPTURE(i);
      CHECK(torch::allclose(fast[i], reference[i], 1e-5, 1e-6));
    }
    // The clip with every key blocked gets the mean of the values, not NaN.
    CHECK(torch::isfinite(fast[0]).all().item<bool>());
    if (!causal) {
      CHECK(torch::allclose(fast[0][2], c.v[2].mean(1, true).expand({2, 5, 8}), 1e-5, 1e-6));
    }
  }
}

TEST_CASE("the attention core's dropout: the weights dropped with its key, gradients to match") {
  const auto c = attention_case(true, 9, 9);
  const auto w = torch::randn(c.q.sizes().vec());
  const double p = 0.3;
  torch::manual_seed(99);
  const auto fast = run_core(c, nn::Kernels::fast, p, w);
  // The same computation in libtorch's ops, with the mask of the key the
  // core drew (the first draw after the same seed) as a constant.
  torch::manual_seed(99);
  const auto key = nn::draw_dropout_key();
  auto q = c.q.clone().requires_grad_(true);
  auto k = c.k.clone().requires_grad_(true);
  auto v = c.v.clone().requires_grad_(true);
  auto scores = torch::matmul(q * 0.35, k.transpose(-2, -1)).masked_fill(c.blocked, -1e9);
  auto weights = torch::softmax(scores, -1);
  const auto mask = nn::apply_dropout_mask(torch::ones_like(weights), key, p);
  auto out = torch::matmul(weights * mask, v);
  (out * w).sum().backward();
  const std::vector<torch::Tensor> expected{out.detach(), q.grad(), k.grad(), v.grad()};
  for (std::size_t i = 0; i < fast.size(); ++i) {
    CAPTURE(i);
    CHECK(torch::allclose(fast[i], expected[i], 1e-5, 1e-6));
  }
}

TEST_CASE("the attention core under bfloat16 autocast stays close to float32") {
  const auto c = attention_case(true, 11, 11);
  const auto w = torch::randn(c.q.sizes().vec());
  const auto exact = run_core(c, nn::Kernels::reference, 0.0, w);
  AttentionCase low = c;
  low.q = c.q.to(torch::kBFloat16);
  low.k = c.k.to(torch::kBFloat16);
  low.v = c.v.to(torch::kBFloat16);
  const auto fast = run_core(low, nn::Kernels::fast, 0.0, w.to(torch::kBFloat16));
  for (std::size_t i = 0; i < fast.size(); ++i) {
    CAPTURE(i);
    CHECK(fast[i].dtype() == torch::kBFloat16);
    // bfloat16 keeps 8 significant bits: a few parts in a hundred, through
    // three products and a softmax.
    CHECK(torch::allclose(fast[i].to(torch::kFloat), exact[i], 5e-2, 5e-2));
  }
}

namespace {

/// The row kernels' forward and backward for `scores` [B, h, L, S] against
/// libtorch's masked_fill_, softmax, _softmax_backward_data and the Philox
/// mask applied separately: returns {weights, dropped, dS, D} of each, and
/// for dS the rounding bound 2^-8 · W · (|mask(dD)| + Σ_row |mask(dD) · W|):
/// one unit in the last place of bfloat16 on each of dS's two terms, which
/// libtorch computes from the masked gradient rounded to the map's dtype and
/// the row kernel from it unrounded.
struct RowResults {
  std::vector<torch::Tensor> rows, composed;
  torch::Tensor grad_bound;
};
RowResults rows_and_composed(const torch::Tensor& scores, const torch::Tensor& blocked,
                             const torch::Tensor& grad, double p, std::uint64_t key) {
  const float blocked_value = static_cast<float>(nn::blocked_score(scores.scalar_type()));
  auto weights = scores.clone();
  const auto dropped = nn::detail::softmax_dropout_(weights, blocked, p, key, blocked_value);
  auto grad_scores = grad.clone();
  const auto dropped_again = nn::detail::dropout_softmax_backward_(grad_scores, weights, p, key);

  auto masked = blocked.defined() ? scores.masked_fill(blocked, blocked_value) : scores;
  const auto expected_weights = torch::softmax(masked, -1);
  auto expected_grad = grad.clone();
  torch::Tensor expected_dropped;
  if (p > 0.0) {
    expected_dropped = nn::apply_dropout_mask(expected_weights, key, p);
    nn::apply_dropout_mask_(expected_grad, key, p);
  }
  const auto expected_scores = torch::_softmax_backward_data(expected_grad, expected_weights, -1,
                                                             expected_weights.scalar_type());
  const auto w = expected_weights.to(torch::kFloat);
  const auto masked_grad = expected_grad.to(torch::kFloat);
  const auto bound =
      std::ldexp(1.0, -8) * w * (masked_grad.abs() + (masked_grad * w).abs().sum(-1, true));
  return {{weights, dropped, grad_scores, dropped_again},
          {expected_weights, expected_dropped, expected_scores, expected_dropped},
          bound};
}

}  // namespace

TEST_CASE("the attention row kernels compute libtorch's masked softmax, Philox mask and backward") {
  ThreadsGuard guard;
  torch::manual_seed(5);
  // Rows of 130 and 7 elements: rows start inside Philox groups of 64 and
  // end inside them; two threads split the rows.
  for (const std::int64_t frames : {130, 7}) {
    for (const bool bf16 : {false, true}) {
      for (const int blocking : {0, 1, 2}) {
        for (const double p : {0.0, 0.2}) {
          CAPTURE(frames);
          CAPTURE(bf16);
          CAPTURE(blocking);
          CAPTURE(p);
          at::set_num_threads(2);
          const std::int64_t length = 33;
          const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
          const auto scores = (torch::randn({3, 4, length, frames}) * 3).to(dtype);
          const auto grad = torch::randn({3, 4, length, frames}).to(dtype);
          auto key_mask = torch::rand({3, frames}) > 0.3;
          key_mask[1].fill_(true);
          key_mask[1].slice(0, frames - 2).fill_(false);  // padded keys
          key_mask[2].fill_(false);                       // a clip with no visible key
          const auto blocked = blocking == 0 ? torch::Tensor()
                                             : nn::blocked_keys(key_mask, blocking == 2, length,
                                                                frames, torch::kCPU);
          const auto results = rows_and_composed(scores, blocked, grad, p, 77);
          const auto& rows = results.rows;
          const auto& composed = results.composed;
          for (std::size_t i = 0; i < rows.size(); ++i) {
            CAPTURE(i);
            REQUIRE(rows[i].defined() == composed[i].defined());
            if (!rows[i].defined()) continue;
            CHECK((rows[i].scalar_type() == dtype));
            const auto got = rows[i].to(torch::kFloat);
            const auto want = composed[i].to(torch::kFloat);
            // float: the exp polynomial and the summation order move the last
            // bits. bfloat16: both round a float result to 8 significant
            // bits, so they differ by at most one unit there (2^-7
            // relative); dS, a difference of products, by its terms' units.
            // In float too dS moves with its terms, not with itself: the exp
            // polynomial puts W an ulp or two off libtorch's, and an FMA or
            // another summation order more, so it is held to 16 float units
            // of its terms (2^-12 of the bfloat16 bound). Measured on an AVX2
            // machine: 1.2e-6 off where dS is 0.015.
            if (i == 2) {
              const auto terms =
                  bf16 ? results.grad_bound : results.grad_bound * std::ldexp(1.0, -12);
              const auto excess = (got - want).abs() - terms - want.abs() * (bf16 ? 8e-3 : 1e-5);
              CHECK(excess.max().item<float>() <= 1e-6f);
            } else {
              CHECK(torch::allclose(got, want, bf16 ? 8e-3 : 1e-5, bf16 ? 1e-4 : 1e-6));
            }
            CHECK(torch::isfinite(got).all().item<bool>());
          }
          // Blocked keys get exactly zero weight where a row has a visible key.
          if (blocking != 0) {
            const auto visible_rows = blocked.logical_not().any(-1, true).expand_as(rows[0]);
            const auto on_blocked =
                rows[0]
                    .to(torch::kFloat)
                    .masked_select(blocked.expand_as(rows[0]).logical_and(visible_rows));
            CHECK(on_blocked.numel() > 0);
            CHECK(on_blocked.abs().max().item<float>() == 0.0f);
          }
        }
      }
    }
  }
}

TEST_CASE("the attention row kernels keep NaN and extreme scores as softmax does") {
  auto scores = torch::zeros({1, 1, 3, 70});
  scores[0][0][0][5] = std::numeric_limits<float>::quiet_NaN();
  scores[0][0][1][9] = 1e30;  // one key takes all the weight
  scores[0][0][2].fill_(-3e38);
  auto weights = scores.clone();
  nn::detail::softmax_dropout_(weights, torch::Tensor(), 0.0, 0, -1e9f);
  CHECK(torch::isnan(weights[0][0][0]).all().item<bool>());
  CHECK(weights[0][0][1][9].item<float>() == 1.0f);
  CHECK(weights[0][0][1].sum().item<float>() == 1.0f);
  CHECK(torch::allclose(weights[0][0][2], torch::full({70}, 1.0f / 70)));
  // bfloat16 stores keep NaN NaN rather than rounding it into infinity.
  auto low = scores.to(torch::kBFloat16);
  nn::detail::softmax_dropout_(low, torch::Tensor(), 0.0, 0, -1e9f);
  CHECK(torch::isnan(low[0][0][0]).all().item<bool>());
  CHECK(low[0][0][1][9].item<float>() == 1.0f);
}

TEST_CASE("the CPU memory cache serves freed blocks again, and hands them back on release") {
  CHECK(CpuMemoryCache::block_size(1000) == 1000);
  CHECK(CpuMemoryCache::block_size(std::size_t{1} << 20) == std::size_t{1} << 20);
  // 5 MiB + 1 byte: 1/16 of 4 MiB is 256 KiB, so 5.25 MiB.
  CHECK(CpuMemoryCache::block_size((std::size_t{5} << 20) + 1) == (std::size_t{21} << 18));
  auto* previous = c10::GetCPUAllocator();
  CpuDevice(TrainingConfig{}).install_memory_cache();
  REQUIRE(CpuMemoryCache::installed());
  auto& cache = CpuMemoryCache::instance();
  cache.release();
  const auto before = cache.stats();
  void* first = nullptr;
  {
    const auto t = torch::empty({5 << 18});  // 5 MiB of float
    first = t.data_ptr();
  }
  CHECK(cache.stats().idle_bytes == (std::size_t{5} << 20));
  {
    const auto t = torch::empty({(5 << 18) - 7});  // rounds to the same block size
    CHECK(t.data_ptr() == first);
  }
  {
    // A smaller request takes the block when it is at most twice its size,
    // and the block keeps its own size.
    const auto t = torch::empty({3 << 18});
    CHECK(t.data_ptr() == first);
    CHECK(cache.stats().live_bytes >= (std::size_t{5} << 20));
  }
  {
    // 2 MiB: the 5 MiB block is over twice that. Both live at once, so that
    // 7 MiB were live together and both may then be kept idle.
    const auto five = torch::empty({5 << 18});
    CHECK(five.data_ptr() == first);
    const auto two = torch::empty({2 << 18});
    CHECK(two.data_ptr() != first);
  }
  const auto after = cache.stats();
  CHECK(after.hits == before.hits + 3);
  CHECK(after.misses == before.misses + 2);
  // Small tensors are not cached.
  { const auto small = torch::empty({100}); }
  CHECK(cache.stats().idle_bytes == (std::size_t{7} << 20));
  // Release empties it; CpuDevice::release_cached_memory does the same.
  CHECK(cache.release() == (std::size_t{7} << 20));
  CHECK(cache.stats().idle_bytes == 0);
  { const auto t = torch::empty({5 << 18}); }
  CpuDevice().release_cached_memory();
  CHECK(cache.stats().idle_bytes == 0);
  // Idle memory never exceeds the most that was live at once.
  CHECK(cache.stats().peak_live_bytes >= (std::size_t{5} << 20));
  CHECK(cache.stats().idle_bytes <= cache.stats().peak_live_bytes);
  // Beyond the cap on idle bytes, freed blocks go back to the system.
  CpuMemoryCache::install(std::size_t{3} << 20);
  { const auto t = torch::empty({5 << 18}); }
  CHECK(cache.stats().idle_bytes == 0);
  CpuDevice(TrainingConfig{}).install_memory_cache();
  // Off in the config, the device leaves libtorch's allocator alone.
  c10::SetCPUAllocator(previous);
  TrainingConfig off;
  off.hardware.cpu_memory_cache = false;
  { const CpuDevice device(off); }
  CHECK(c10::GetCPUAllocator() == previous);
}

TEST_CASE(
    "checkpointing: auto turns on for a batch that would not fit, and for good under pressure") {
  CHECK(nn::parse_checkpointing_mode("auto") == nn::CheckpointingMode::automatic);
  CHECK(nn::parse_checkpointing_mode("true") == nn::CheckpointingMode::on);
  CHECK(nn::parse_checkpointing_mode("false") == nn::CheckpointingMode::off);
  CHECK_FALSE(nn::parse_checkpointing_mode("yes").has_value());

  nn::CheckpointingChoice choice;                        // auto, half the free memory
  CHECK_FALSE(choice.for_batch(std::int64_t{1} << 40));  // nothing known yet: no reason to
  choice.observe({.used_bytes = 6000, .total_bytes = 10000});
  CHECK(choice.free_bytes() == 4000);
  CHECK_FALSE(choice.for_batch(2000));
  CHECK(choice.for_batch(2001));
  choice.observe({.used_bytes = 1000, .total_bytes = 10000, .pressure = true});
  CHECK(choice.for_batch(1));
  CHECK(choice.reason() == "memory pressure");
  choice.observe({.used_bytes = 1000, .total_bytes = 10000});
  CHECK(choice.for_batch(1));  // stays on
  nn::CheckpointingChoice after_oom;
  after_oom.observe({.out_of_memory = true});
  CHECK(after_oom.forced());
  CHECK(after_oom.reason() == "a step ran out of memory");
  // true and false are not moved by memory.
  nn::CheckpointingChoice off(nn::CheckpointingMode::off), on(nn::CheckpointingMode::on);
  off.observe({.pressure = true});
  CHECK_FALSE(off.for_batch(std::int64_t{1} << 40));
  CHECK(on.for_batch(0));
}
