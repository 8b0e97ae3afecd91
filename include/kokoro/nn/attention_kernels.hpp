// The attention core's row kernels on the CPU, for float and bfloat16 maps:
//
// - forward: scores [B, heads, L, S] → weights = softmax over each row, with
//   blocked keys at blocked_score, written in place; and the weights with
//   Philox dropout (nn/fast_dropout.hpp's mask, element for element) into a
//   second tensor. One pass over the map where libtorch takes three
//   (masked_fill_, softmax, the mask) and re-reads it each time.
// - backward: the dropout's backward and the softmax's, fused: from the
//   weights W and the dropped weights' gradient dD it writes the scores'
//   gradient dS = W ⊙ (dW − Σ_row dW ⊙ W), dW = mask(dD), in place over dD,
//   and the dropped weights D again (for dV = Dᵀ·dO), drawing the mask once.
//
// Written here because libtorch 1.13 has no fused masked softmax on the CPU
// and no way to apply a dropout mask inside its softmax. The loops are plain
// C++ that the compiler vectorises, compiled once each for AVX-512 and AVX2
// (`target` attributes, chosen at run time as the Philox kernel is) and for
// the caller's flags; exp is Cephes' single-precision polynomial, within two
// units in the last place of float, far below bfloat16's rounding.
#pragma once

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <torch/types.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kokoro/nn/fast_dropout.hpp"
#include "kokoro/util/errors.hpp"

#if defined(_OPENMP)
#define KOKORO_PRAGMA(text) _Pragma(#text)
#define KOKORO_SIMD KOKORO_PRAGMA(omp simd)
#define KOKORO_SIMD_MAX(x) KOKORO_PRAGMA(omp simd reduction(max : x))
#define KOKORO_SIMD_SUM(x) KOKORO_PRAGMA(omp simd reduction(+ : x))
#else
#define KOKORO_SIMD
#define KOKORO_SIMD_MAX(x)
#define KOKORO_SIMD_SUM(x)
#endif

namespace kokoro::nn::detail {

/// float storage.
struct FloatRow {
  using Stored = float;
  [[gnu::always_inline]] static inline float load(Stored v) { return v; }
  [[gnu::always_inline]] static inline Stored store(float f) { return f; }
};

/// bfloat16 storage as its 16 bits, converted with integer operations the
/// compiler vectorises: rounding to nearest even, NaN kept NaN (the plain
/// rounding would carry a NaN's low mantissa bits into infinity).
struct BFloat16Row {
  using Stored = std::uint16_t;
  [[gnu::always_inline]] static inline float load(Stored v) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(v) << 16);
  }
  [[gnu::always_inline]] static inline Stored store(float f) {
    const auto bits = std::bit_cast<std::uint32_t>(f);
    const auto rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    return static_cast<Stored>(f != f ? 0x7FC0u : rounded);
  }
};

/// e^x for x ≤ 0 (a score minus its row's maximum): 2^n · e^r with
/// n = round(x · log2 e) and |r| ≤ ln 2 / 2, e^r from Cephes' expf
/// polynomial. Below −87 (where float's normal range ends) it is 0, as
/// softmax needs for a blocked key; NaN stays NaN.
[[gnu::always_inline]] inline float exp_nonpositive(float x) {
  const float clamped = x < -87.0f ? -87.0f : x;
  // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer.
  const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
  float poly = 1.9875691500e-4f;
  poly = poly * r + 1.3981999507e-3f;
  poly = poly * r + 8.3334519073e-3f;
  poly = poly * r + 4.1665795894e-2f;
  poly = poly * r + 1.6666665459e-1f;
  poly = poly * r + 5.0000001201e-1f;
  const float e = poly * r * r + r + 1.0f;
  const auto two_n = std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : e * two_n;
}

/// The Philox draws of consecutive flat ranges (a thread's rows, in order):
/// the group a range ends in is kept for the next range, which starts in it.
class RowDraws {
 public:
  RowDraws(std::uint64_t key, std::int64_t length)
      : key_(key), draws_(static_cast<std::size_t>(length)) {}

  /// The draws of elements [start, start + length).
  const std::uint32_t* of(std::int64_t start) {
    const auto length = static_cast<std::int64_t>(draws_.size());
    std::int64_t done = 0;
    while (done < length) {
      const auto element = start + done;
      const auto group = element / kGroupElements;
      if (group != cached_group_) {
        philox_group(static_cast<std::uint64_t>(group), key_, group_);
        cached_group_ = group;
      }
      const auto offset = element - group * kGroupElements;
      const auto count = std::min(kGroupElements - offset, length - done);
      std::memcpy(draws_.data() + done, group_ + offset,
                  static_cast<std::size_t>(count) * sizeof(std::uint32_t));
      done += count;
    }
    return draws_.data();
  }

 private:
  std::uint64_t key_;
  std::vector<std::uint32_t> draws_;
  std::uint32_t group_[kGroupElements] = {};
  std::int64_t cached_group_ = -1;
};

/// One call's worth of rows: pointers to the [rows, S] maps (contiguous),
/// and where each row's blocked keys are.
struct RowJob {
  void* primary = nullptr;        ///< forward: scores → weights; backward: dD → dS
  const void* weights = nullptr;  ///< backward: W
  void* dropped = nullptr;        ///< D, or null without dropout
  std::int64_t length = 0;        ///< S
  // Blocked keys, expanded to [B, heads, L, S]: row r = (b·heads + h)·L + i
  // starts at blocked + b·stride_b + h·stride_h + i·stride_l. Null: none.
  const bool* blocked = nullptr;
  std::int64_t heads = 1, queries = 1;
  std::int64_t stride_b = 0, stride_h = 0, stride_l = 0;
  float blocked_value = -1e9f;
  bool bfloat16 = false;
  std::uint64_t key = 0;
  bool drop = false;            ///< whether dropout applies
  std::uint32_t threshold = 0;  ///< keep a draw below it
  float keep_scale = 1.0f;      ///< 1 / (1 − p)

  const bool* blocked_row(std::int64_t row) const {
    if (blocked == nullptr) return nullptr;
    const auto i = row % queries;
    const auto h = (row / queries) % heads;
    const auto b = row / (queries * heads);
    return blocked + b * stride_b + h * stride_h + i * stride_l;
  }
};

template <class Row>
[[gnu::always_inline]] inline void softmax_dropout_rows(const RowJob& job, std::int64_t first,
                                                        std::int64_t last) {
  using T = typename Row::Stored;
  const auto n = job.length;
  std::vector<float> buffer(static_cast<std::size_t>(n));
  float* buf = buffer.data();
  RowDraws draws(job.key, n);
  const float blocked_value = job.blocked_value;
  const float keep_scale = job.keep_scale;
  const std::uint32_t threshold = job.threshold;
  for (std::int64_t row = first; row < last; ++row) {
    T* scores = static_cast<T*>(job.primary) + row * n;
    float top = -std::numeric_limits<float>::infinity();
    if (const bool* blocked = job.blocked_row(row)) {
      KOKORO_SIMD_MAX(top)
      for (std::int64_t j = 0; j < n; ++j) {
        const float v = blocked[j] ? blocked_value : Row::load(scores[j]);
        buf[j] = v;
        top = top > v ? top : v;
      }
    } else {
      KOKORO_SIMD_MAX(top)
      for (std::int64_t j = 0; j < n; ++j) {
        const float v = Row::load(scores[j]);
        buf[j] = v;
        top = top > v ? top : v;
      }
    }
    float sum = 0.0f;
    KOKORO_SIMD_SUM(sum)
    for (std::int64_t j = 0; j < n; ++j) {
      const float e = exp_nonpositive(buf[j] - top);
      buf[j] = e;
      sum += e;
    }
    const float inverse = 1.0f / sum;
    if (job.dropped != nullptr) {
      T* dropped = static_cast<T*>(job.dropped) + row * n;
      const std::uint32_t* draw = draws.of(row * n);
      KOKORO_SIMD
      for (std::int64_t j = 0; j < n; ++j) {
        const T w = Row::store(buf[j] * inverse);
        scores[j] = w;
        dropped[j] = Row::store(Row::load(w) * (draw[j] < threshold ? keep_scale : 0.0f));
      }
    } else {
      KOKORO_SIMD
      for (std::int64_t j = 0; j < n; ++j) scores[j] = Row::store(buf[j] * inverse);
    }
  }
}

template <class Row>
[[gnu::always_inline]] inline void dropout_softmax_backward_rows(const RowJob& job,
                                                                 std::int64_t first,
                                                                 std::int64_t last) {
  using T = typename Row::Stored;
  const auto n = job.length;
  RowDraws draws(job.key, n);
  const float keep_scale = job.keep_scale;
  const std::uint32_t threshold = job.threshold;
  for (std::int64_t row = first; row < last; ++row) {
    T* grad = static_cast<T*>(job.primary) + row * n;
    const T* weights = static_cast<const T*>(job.weights) + row * n;
    float dot = 0.0f;
    if (job.dropped != nullptr) {
      T* dropped = static_cast<T*>(job.dropped) + row * n;
      const std::uint32_t* draw = draws.of(row * n);
      KOKORO_SIMD_SUM(dot)
      for (std::int64_t j = 0; j < n; ++j) {
        const float m = draw[j] < threshold ? keep_scale : 0.0f;
        const float w = Row::load(weights[j]);
        dropped[j] = Row::store(w * m);
        dot += Row::load(grad[j]) * m * w;
      }
      KOKORO_SIMD
      for (std::int64_t j = 0; j < n; ++j) {
        const float m = draw[j] < threshold ? keep_scale : 0.0f;
        const float w = Row::load(weights[j]);
        grad[j] = Row::store(w * (Row::load(grad[j]) * m - dot));
      }
    } else {
      KOKORO_SIMD_SUM(dot)
      for (std::int64_t j = 0; j < n; ++j) dot += Row::load(grad[j]) * Row::load(weights[j]);
      KOKORO_SIMD
      for (std::int64_t j = 0; j < n; ++j) {
        const float w = Row::load(weights[j]);
        grad[j] = Row::store(w * (Row::load(grad[j]) - dot));
      }
    }
  }
}

template <bool Forward>
[[gnu::always_inline]] inline void attention_rows(const RowJob& job, std::int64_t first,
                                                  std::int64_t last) {
  if constexpr (Forward) {
    job.bfloat16 ? softmax_dropout_rows<BFloat16Row>(job, first, last)
                 : softmax_dropout_rows<FloatRow>(job, first, last);
  } else {
    job.bfloat16 ? dropout_softmax_backward_rows<BFloat16Row>(job, first, last)
                 : dropout_softmax_backward_rows<FloatRow>(job, first, last);
  }
}

// The same loops compiled for each instruction set (a target attribute
// cannot depend on a template parameter, so one function per set).
template <bool Forward>
void attention_rows_portable(const RowJob& job, std::int64_t first, std::int64_t last) {
  attention_rows<Forward>(job, first, last);
}
#if defined(KOKORO_PHILOX_X86)
template <bool Forward>
__attribute__((target("avx2,fma"))) void attention_rows_avx2(const RowJob& job, std::int64_t first,
                                                             std::int64_t last) {
  attention_rows<Forward>(job, first, last);
}
template <bool Forward>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))) void attention_rows_avx512(
    const RowJob& job, std::int64_t first, std::int64_t last) {
  attention_rows<Forward>(job, first, last);
}

inline bool cpu_has_avx512_rows() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
  return has;
}
inline bool cpu_has_avx2_rows() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

/// Runs the job's rows split across libtorch's threads, on the widest
/// instruction set the CPU has.
template <bool Forward>
void run_attention_rows(const RowJob& job, std::int64_t rows) {
  const auto grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(job.length, 1));
  at::parallel_for(0, rows, grain, [&](std::int64_t first, std::int64_t last) {
#if defined(KOKORO_PHILOX_X86)
    if (cpu_has_avx512_rows()) return attention_rows_avx512<Forward>(job, first, last);
    if (cpu_has_avx2_rows()) return attention_rows_avx2<Forward>(job, first, last);
#endif
    attention_rows_portable<Forward>(job, first, last);
  });
}

/// Whether the row kernels take `map`: a contiguous float or bfloat16 CPU
/// tensor of rank 4 with rows.
inline bool fused_rows_apply(const torch::Tensor& map) {
  return map.device().is_cpu() && map.dim() == 4 && map.is_contiguous() && map.size(-1) > 0 &&
         (map.scalar_type() == torch::kFloat || map.scalar_type() == torch::kBFloat16);
}

/// The tensors a job's pointers point into, held for as long as it runs.
struct RowTensors {
  torch::Tensor blocked;  ///< the blocked keys expanded to the map's shape
  torch::Tensor dropped;  ///< D, allocated when dropout applies
};

/// The job for `map` [B, heads, L, S], `blocked` broadcastable to it
/// (undefined: none), dropout p with `key` (p = 0: none).
inline RowJob row_job(const torch::Tensor& map, const torch::Tensor& blocked, double p,
                      std::uint64_t key, float blocked_value, RowTensors& held) {
  RowJob job;
  job.primary = map.data_ptr();
  job.length = map.size(3);
  job.heads = map.size(1);
  job.queries = map.size(2);
  job.bfloat16 = map.scalar_type() == torch::kBFloat16;
  job.blocked_value = blocked_value;
  if (blocked.defined()) {
    held.blocked = blocked.to(torch::kBool).expand(map.sizes());
    if (held.blocked.stride(3) != 1) held.blocked = held.blocked.contiguous();
    job.blocked = held.blocked.data_ptr<bool>();
    job.stride_b = held.blocked.stride(0);
    job.stride_h = held.blocked.stride(1);
    job.stride_l = held.blocked.stride(2);
  }
  // A threshold of 2^32 (p below 2^-33) keeps every element: no dropout.
  if (p > 0.0 && keep_threshold(p) <= 0xFFFFFFFFull) {
    job.drop = true;
    job.key = key;
    job.threshold = static_cast<std::uint32_t>(keep_threshold(p));
    job.keep_scale = static_cast<float>(1.0 / (1.0 - p));
    held.dropped = torch::empty_like(map, torch::MemoryFormat::Contiguous);
    job.dropped = held.dropped.data_ptr();
  }
  return job;
}

/// Forward rows: `scores` (fused_rows_apply) becomes the softmax weights
/// with `blocked` keys at `blocked_value`; returns the weights dropped with
/// `key` (undefined when p = 0).
inline torch::Tensor softmax_dropout_(torch::Tensor& scores, const torch::Tensor& blocked, double p,
                                      std::uint64_t key, float blocked_value) {
  if (!fused_rows_apply(scores)) {
    throw Error("softmax_dropout_: needs a contiguous float or bfloat16 CPU map of rank 4");
  }
  RowTensors held;
  const auto job = row_job(scores, blocked, p, key, blocked_value, held);
  run_attention_rows<true>(job, scores.numel() / job.length);
  return held.dropped;
}

/// Backward rows: `grad` (the dropped weights' gradient, fused_rows_apply)
/// becomes the scores' gradient, from `weights` (same shape, dtype and
/// layout); returns the dropped weights regenerated from `key` (undefined
/// when p = 0).
inline torch::Tensor dropout_softmax_backward_(torch::Tensor& grad, const torch::Tensor& weights,
                                               double p, std::uint64_t key) {
  if (!fused_rows_apply(grad) || !weights.is_contiguous() || weights.sizes() != grad.sizes() ||
      weights.scalar_type() != grad.scalar_type()) {
    throw Error(
        "dropout_softmax_backward_: needs contiguous float or bfloat16 CPU maps of rank 4 and "
        "one shape");
  }
  RowTensors held;
  auto job = row_job(grad, torch::Tensor(), p, key, 0.0f, held);
  job.weights = weights.data_ptr();
  run_attention_rows<false>(job, grad.numel() / job.length);
  return held.dropped;
}

}  // namespace kokoro::nn::detail

#undef KOKORO_PRAGMA
#undef KOKORO_SIMD
#undef KOKORO_SIMD_MAX
#undef KOKORO_SIMD_SUM
