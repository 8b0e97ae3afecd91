// Dropout whose mask is a pure function of (key, element index), drawn from
// the counter-based Philox4x32-10 generator (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011; the generator CUDA's dropout uses).
//
// Written here because libtorch 1.13's CPU `bernoulli_` draws one mt19937
// number per element under a lock (6–10 ns an element on the development
// machine), which made dropout the largest single cost of a TTS training
// step. A counter-based generator has no sequential state: blocks of four
// elements are computed independently, so the loop vectorises and splits
// across threads, and backward regenerates the mask from the key instead of
// keeping a mask tensor alive between forward and backward.
//
// Reproducibility: each call draws its 64-bit key from libtorch's default CPU
// generator. So torch::manual_seed seeds it, the generator state saved in a
// checkpoint resumes it bitwise, and gradient checkpointing (which restores
// that generator for its recomputation) replays the same masks.
//
// Tensors on other devices use libtorch's own dropout (CUDA's is already
// Philox). `Kernels::reference` keeps libtorch's dropout on the CPU too,
// for comparisons and benchmarks.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/Generator.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <type_traits>

#include "kokoro/nn/kernel_choice.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::nn {

/// One Philox4x32-10 block: four 32-bit outputs for a 128-bit counter and a
/// 64-bit key (Random123's philox4x32, 10 rounds).
inline std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                                  std::array<std::uint32_t, 2> key) {
  constexpr std::uint64_t kM0 = 0xD2511F53u;
  constexpr std::uint64_t kM1 = 0xCD9E8D57u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    const std::uint64_t p0 = kM0 * counter[0];
    const std::uint64_t p1 = kM1 * counter[2];
    counter = {
        static_cast<std::uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(p1),
        static_cast<std::uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(p0)};
  }
  return counter;
}

/// The keep test: an element is kept when its 32-bit draw is below
/// `threshold`, so the keep probability is threshold / 2^32, the nearest such
/// fraction to 1 − p.
inline std::uint64_t keep_threshold(double p) {
  return static_cast<std::uint64_t>(std::llround((1.0 - p) * 4294967296.0));
}

namespace detail {

/// Elements are drawn in groups of 64: element 64·g + 16·w + j takes word w
/// of block 16·g + j (block b's counter is {low 32 bits of b, high 32 bits, 0,
/// 0}). Laid out so, the words of consecutive blocks are consecutive
/// elements, and a vector of blocks is stored without a transpose.
constexpr std::int64_t kBlocksPerGroup = 16;
constexpr std::int64_t kGroupElements = 4 * kBlocksPerGroup;

/// The 64 draws of group `group` for `key`, one block at a time (the portable
/// path, and the definition the vector path is tested against).
inline void philox_group_scalar(std::uint64_t group, std::uint64_t key,
                                std::uint32_t (&draws)[kGroupElements]) {
  const std::array<std::uint32_t, 2> k{static_cast<std::uint32_t>(key),
                                       static_cast<std::uint32_t>(key >> 32)};
  for (std::int64_t j = 0; j < kBlocksPerGroup; ++j) {
    const auto block = group * kBlocksPerGroup + static_cast<std::uint64_t>(j);
    const auto words = philox4x32_10(
        {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), 0, 0}, k);
    for (std::int64_t w = 0; w < 4; ++w) draws[w * kBlocksPerGroup + j] = words[w];
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KOKORO_PHILOX_X86 1
/// The same draws eight blocks to a vector, compiled for AVX2 whatever the
/// caller's flags and used only where the CPU has it (philox_group checks
/// once); the AVX-512 variant below likewise. The multiply is vpmuludq on the
/// even and odd lanes: x86 has no 32-bit high-half multiply, and compilers do
/// not vectorise the scalar form. One copy per instruction set, since a
/// function's target cannot be a template parameter.
__attribute__((target("avx2"))) inline void philox_group_avx2(
    std::uint64_t group, std::uint64_t key, std::uint32_t (&draws)[kGroupElements]) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const __m256i low = _mm256_set1_epi64x(0x00000000FFFFFFFFll);
  const __m256i high = _mm256_set1_epi64x(static_cast<long long>(0xFFFFFFFF00000000ull));
  for (std::int64_t q = 0; q < kBlocksPerGroup; q += 8) {
    const auto block = group * kBlocksPerGroup + static_cast<std::uint64_t>(q);
    alignas(32) std::uint32_t lo_words[8], hi_words[8];
    for (int i = 0; i < 8; ++i) {
      lo_words[i] = static_cast<std::uint32_t>(block + i);
      hi_words[i] = static_cast<std::uint32_t>((block + i) >> 32);
    }
    __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo_words));
    __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi_words));
    __m256i c2 = _mm256_setzero_si256();
    __m256i c3 = _mm256_setzero_si256();
    auto k0 = static_cast<std::uint32_t>(key);
    auto k1 = static_cast<std::uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      if (round > 0) {
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
      }
      const __m256i e0 = _mm256_mul_epu32(c0, m0);
      const __m256i o0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
      const __m256i e1 = _mm256_mul_epu32(c2, m1);
      const __m256i o1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
      const __m256i lo0 = _mm256_or_si256(_mm256_and_si256(e0, low), _mm256_slli_epi64(o0, 32));
      const __m256i hi0 = _mm256_or_si256(_mm256_srli_epi64(e0, 32), _mm256_and_si256(o0, high));
      const __m256i lo1 = _mm256_or_si256(_mm256_and_si256(e1, low), _mm256_slli_epi64(o1, 32));
      const __m256i hi1 = _mm256_or_si256(_mm256_srli_epi64(e1, 32), _mm256_and_si256(o1, high));
      const __m256i n0 =
          _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
      const __m256i n2 =
          _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
      c1 = lo1;
      c3 = lo0;
      c0 = n0;
      c2 = n2;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(draws + 0 * kBlocksPerGroup + q), c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(draws + 1 * kBlocksPerGroup + q), c1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(draws + 2 * kBlocksPerGroup + q), c2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(draws + 3 * kBlocksPerGroup + q), c3);
  }
}

// GCC 12's AVX-512 intrinsics start from an "undefined" vector that its
// -Wuninitialized then reports (GCC bug 105593); nothing here is uninitialised.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/// Sixteen blocks to a vector: the whole group at once, where the CPU has
/// AVX-512F.
__attribute__((target("avx512f"))) inline void philox_group_avx512(
    std::uint64_t group, std::uint64_t key, std::uint32_t (&draws)[kGroupElements]) {
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const __m512i low = _mm512_set1_epi64(0x00000000FFFFFFFFll);
  const __m512i high = _mm512_set1_epi64(static_cast<long long>(0xFFFFFFFF00000000ull));
  const auto block = group * kBlocksPerGroup;
  alignas(64) std::uint32_t lo_words[16], hi_words[16];
  for (int i = 0; i < 16; ++i) {
    lo_words[i] = static_cast<std::uint32_t>(block + i);
    hi_words[i] = static_cast<std::uint32_t>((block + i) >> 32);
  }
  __m512i c0 = _mm512_load_si512(lo_words);
  __m512i c1 = _mm512_load_si512(hi_words);
  __m512i c2 = _mm512_setzero_si512();
  __m512i c3 = _mm512_setzero_si512();
  auto k0 = static_cast<std::uint32_t>(key);
  auto k1 = static_cast<std::uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const __m512i e0 = _mm512_mul_epu32(c0, m0);
    const __m512i o0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
    const __m512i e1 = _mm512_mul_epu32(c2, m1);
    const __m512i o1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
    const __m512i lo0 = _mm512_or_si512(_mm512_and_si512(e0, low), _mm512_slli_epi64(o0, 32));
    const __m512i hi0 = _mm512_or_si512(_mm512_srli_epi64(e0, 32), _mm512_and_si512(o0, high));
    const __m512i lo1 = _mm512_or_si512(_mm512_and_si512(e1, low), _mm512_slli_epi64(o1, 32));
    const __m512i hi1 = _mm512_or_si512(_mm512_srli_epi64(e1, 32), _mm512_and_si512(o1, high));
    const __m512i n0 =
        _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    const __m512i n2 =
        _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
  }
  _mm512_storeu_si512(draws + 0 * kBlocksPerGroup, c0);
  _mm512_storeu_si512(draws + 1 * kBlocksPerGroup, c1);
  _mm512_storeu_si512(draws + 2 * kBlocksPerGroup, c2);
  _mm512_storeu_si512(draws + 3 * kBlocksPerGroup, c3);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

inline bool cpu_has_avx512f() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

/// The draws of group `group`: the widest vector path the CPU has.
inline void philox_group(std::uint64_t group, std::uint64_t key,
                         std::uint32_t (&draws)[kGroupElements]) {
#if defined(KOKORO_PHILOX_X86)
  if (cpu_has_avx512f()) return philox_group_avx512(group, key, draws);
  if (cpu_has_avx2()) return philox_group_avx2(group, key, draws);
#endif
  philox_group_scalar(group, key, draws);
}

/// out[i] = keep(i) ? in[i] · scale : 0 over elements [begin, end) of a
/// contiguous tensor, begin a multiple of kGroupElements. Arithmetic in float
/// (double for double tensors), rounded once to T.
template <class T>
void apply_mask(const T* in, T* out, std::int64_t begin, std::int64_t end, std::uint64_t key,
                std::uint32_t threshold, double scale) {
  using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const auto s = static_cast<Acc>(scale);
  std::uint32_t draws[kGroupElements];
  for (std::int64_t start = begin; start < end; start += kGroupElements) {
    philox_group(static_cast<std::uint64_t>(start / kGroupElements), key, draws);
    const auto n = std::min(kGroupElements, end - start);
    for (std::int64_t j = 0; j < n; ++j) {
      const Acc kept = draws[j] < threshold ? s : Acc{0};
      out[start + j] = static_cast<T>(static_cast<Acc>(in[start + j]) * kept);
    }
  }
}

/// out = keep ? in · 1 / (1 − p) : 0 for contiguous CPU tensors of one
/// shape and dtype; `out` may be `in` (each element is read before it is
/// written, by the thread that writes it).
inline void mask_into(const torch::Tensor& in, torch::Tensor& out, std::uint64_t key, double p) {
  const auto threshold = static_cast<std::uint32_t>(keep_threshold(p));
  const double scale = 1.0 / (1.0 - p);
  const auto n = in.numel();
  const auto groups = (n + kGroupElements - 1) / kGroupElements;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, in.scalar_type(), "kokoro_philox_dropout", [&] {
        const auto* src = in.data_ptr<scalar_t>();
        auto* dst = out.data_ptr<scalar_t>();
        at::parallel_for(0, groups, 256, [&](std::int64_t g0, std::int64_t g1) {
          apply_mask(src, dst, g0 * kGroupElements, std::min(n, g1 * kGroupElements), key,
                     threshold, scale);
        });
      });
}

inline void check_maskable(const torch::Tensor& t, double p) {
  if (!t.device().is_cpu() || !t.is_floating_point()) {
    throw Error(fmt::format("dropout mask: needs a floating-point CPU tensor, got {} on {}",
                            c10::toString(t.scalar_type()), t.device().str()));
  }
  if (!(p > 0.0 && p < 1.0)) {
    throw Error(fmt::format("dropout mask: the probability must be in (0, 1), got {}", p));
  }
}

}  // namespace detail

/// A fresh dropout key from libtorch's default CPU generator (under its lock,
/// as libtorch's own samplers take it).
inline std::uint64_t draw_dropout_key() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

/// The mask of `key` applied to `input` (CPU, floating point; made
/// contiguous): element i, in row-major order, is zeroed with probability p
/// (0 < p < 1) and otherwise scaled by 1 / (1 − p). Element i's draw depends
/// on i and the key only, never on the thread that computes it; the same key
/// gives the same mask for any tensor with as many elements.
inline torch::Tensor apply_dropout_mask(const torch::Tensor& input, std::uint64_t key, double p) {
  detail::check_maskable(input, p);
  const auto in = input.contiguous();
  // A threshold of 2^32 (p below 2^-33) keeps every element.
  if (keep_threshold(p) > 0xFFFFFFFFull) return in.clone();
  auto out = torch::empty_like(in, torch::MemoryFormat::Contiguous);
  detail::mask_into(in, out, key, p);
  return out;
}

/// apply_dropout_mask in place, for a contiguous `tensor`.
inline void apply_dropout_mask_(torch::Tensor& tensor, std::uint64_t key, double p) {
  detail::check_maskable(tensor, p);
  if (!tensor.is_contiguous()) {
    throw Error(
        "apply_dropout_mask_: needs a contiguous tensor (the mask follows row-major order)");
  }
  if (keep_threshold(p) > 0xFFFFFFFFull) return;
  detail::mask_into(tensor, tensor, key, p);
}

namespace detail {

/// Dropout as an autograd node: backward applies the same mask and scale to
/// the gradient, regenerated from the key.
struct PhiloxDropoutFunction : torch::autograd::Function<PhiloxDropoutFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               std::int64_t key, double p) {
    ctx->saved_data["key"] = key;
    ctx->saved_data["p"] = p;
    return apply_dropout_mask(input, static_cast<std::uint64_t>(key), p);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto key = static_cast<std::uint64_t>(ctx->saved_data.at("key").toInt());
    const auto p = ctx->saved_data.at("p").toDouble();
    return {grads[0].defined() ? apply_dropout_mask(grads[0], key, p) : torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace detail

/// Zeroes each element with probability p and scales the rest by 1 / (1 − p)
/// when `training`; the identity otherwise or when p = 0. Float, double,
/// bfloat16 and float16 CPU tensors take the Philox kernel (unless `kernels`
/// is reference); other tensors libtorch's dropout. Throws kokoro::Error when
/// p is outside [0, 1].
inline torch::Tensor fast_dropout(const torch::Tensor& input, double p, bool training,
                                  Kernels kernels = Kernels::fast) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw Error(fmt::format("fast_dropout: the probability must be in [0, 1], got {}", p));
  }
  if (!training || p == 0.0) return input;
  if (p == 1.0) return input * 0;
  const bool philox =
      kernels == Kernels::fast && input.device().is_cpu() && input.is_floating_point();
  if (!philox) return torch::dropout(input, p, /*train=*/true);
  const auto key = static_cast<std::int64_t>(draw_dropout_key());
  return detail::PhiloxDropoutFunction::apply(input, key, p);
}

/// Options of the Dropout module.
struct DropoutOptions {
  double p = 0.1;
  Kernels kernels = Kernels::fast;
};

/// The module form of fast_dropout(): active in training mode. Holds no
/// parameters or buffers, so swapping it for torch::nn::Dropout leaves a
/// state dict unchanged.
class DropoutImpl : public torch::nn::Module {
 public:
  explicit DropoutImpl(DropoutOptions options = {}) : options_(options) {
    if (!(options.p >= 0.0 && options.p <= 1.0)) {
      throw Error(fmt::format("Dropout: the probability must be in [0, 1], got {}", options.p));
    }
  }

  torch::Tensor forward(const torch::Tensor& input) {
    return fast_dropout(input, options_.p, is_training(), options_.kernels);
  }

  const DropoutOptions& options() const { return options_; }

 private:
  DropoutOptions options_;
};
TORCH_MODULE(Dropout);

}  // namespace kokoro::nn
