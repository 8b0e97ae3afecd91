// Multi-head attention for the TTS Transformer, and the sinusoidal positions
// it reads. Queries, keys and values are projected without bias, the output
// with bias. Masks are true where a key may be attended. Keys and values can
// be projected once and reused (cross-attention at inference) or grown one
// frame at a time (the decoder's self-attention cache).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::nn {

/// Sinusoidal positions [length, dim] for positions offset .. offset+length-1
/// (sin on even channels, cos on odd ones, wavelengths up to 10000·2π).
/// Computed in float32 and returned in `options`' dtype and device; a row
/// depends only on its position, so one frame's row equals that row of a
/// longer table.
inline torch::Tensor sinusoidal_positions(std::int64_t length, std::int64_t dim,
                                          std::int64_t offset,
                                          const torch::TensorOptions& options) {
  const auto f32 = options.dtype(torch::kFloat);
  auto position = torch::arange(offset, offset + length, f32).unsqueeze(1);
  auto frequency = torch::exp(torch::arange(0, dim, 2, f32) * (-std::log(10000.0) / dim));
  auto angle = position * frequency;  // [length, ceil(dim / 2)]
  auto table = torch::empty({length, dim}, f32);
  table.slice(1, 0, dim, 2).copy_(angle.sin());
  table.slice(1, 1, dim, 2).copy_(angle.slice(1, 0, dim / 2).cos());
  return table.to(options.dtype());
}

/// Keys and values split into heads: [B, heads, S, head_dim] each.
struct KeyValue {
  torch::Tensor keys;
  torch::Tensor values;

  std::int64_t size() const { return keys.defined() ? keys.size(2) : 0; }
};

/// A growing key/value store for autoregressive decoding. Storage doubles
/// when full, so appending one frame at a time costs amortised O(1) copies.
class KeyValueCache {
 public:
  /// Appends `more` after the stored frames.
  void append(const KeyValue& more) {
    const auto added = more.size();
    const auto needed = length_ + added;
    if (!keys_.defined() || needed > keys_.size(2)) grow(more, needed);
    keys_.narrow(2, length_, added).copy_(more.keys);
    values_.narrow(2, length_, added).copy_(more.values);
    length_ = needed;
  }

  /// The stored frames (views, valid until the next append).
  KeyValue view() const { return {keys_.narrow(2, 0, length_), values_.narrow(2, 0, length_)}; }

  std::int64_t size() const { return length_; }

 private:
  void grow(const KeyValue& like, std::int64_t needed) {
    const auto old = keys_.defined() ? keys_.size(2) : 0;
    const auto capacity = std::max({needed, 2 * old, std::int64_t{64}});
    auto shape = like.keys.sizes().vec();
    shape[2] = capacity;
    auto keys = torch::empty(shape, like.keys.options());
    auto values = torch::empty(shape, like.values.options());
    if (length_ > 0) {
      keys.narrow(2, 0, length_).copy_(keys_.narrow(2, 0, length_));
      values.narrow(2, 0, length_).copy_(values_.narrow(2, 0, length_));
    }
    keys_ = keys;
    values_ = values;
  }

  torch::Tensor keys_;
  torch::Tensor values_;
  std::int64_t length_ = 0;
};

/// Scaled dot-product attention over `heads` heads of width dim / heads.
/// Submodules: q, k, v (no bias), out (bias).
class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  MultiHeadAttentionImpl(std::int64_t dim, std::int64_t heads, double dropout)
      : heads_(heads),
        head_dim_(heads > 0 ? dim / heads : 0),
        q_(torch::nn::LinearOptions(dim, dim).bias(false)),
        k_(torch::nn::LinearOptions(dim, dim).bias(false)),
        v_(torch::nn::LinearOptions(dim, dim).bias(false)),
        out_(dim, dim),
        dropout_(dropout) {
    if (heads <= 0 || dim % heads != 0) {
      throw Error(fmt::format("attention: {} heads do not divide the width {}", heads, dim));
    }
    register_module("q", q_);
    register_module("k", k_);
    register_module("v", v_);
    register_module("out", out_);
    register_module("dropout", dropout_);
  }

  /// Projects `source` [B, S, dim] into per-head keys and values.
  KeyValue project(const torch::Tensor& source) {
    return {split_heads(k_->forward(source)), split_heads(v_->forward(source))};
  }

  /// `query` [B, L, dim] attends to `kv` (S frames) and returns [B, L, dim].
  /// `key_mask` [B, S] is true on keys that may be attended (undefined: all).
  /// `causal`: query i is the frame at position S - L + i and sees keys up
  /// to that position, so a one-frame query after a cache sees all of it.
  /// A query with no visible key gets the mean of the values, not NaN.
  torch::Tensor attend(const torch::Tensor& query, const KeyValue& kv,
                       const torch::Tensor& key_mask = {}, bool causal = false) {
    const auto length = query.size(1);
    const auto frames = kv.size();
    auto q = split_heads(q_->forward(query)) * (1.0 / std::sqrt(static_cast<double>(head_dim_)));
    auto scores = torch::matmul(q, kv.keys.transpose(-2, -1));  // [B, h, L, S]
    torch::Tensor allowed;
    if (key_mask.defined()) allowed = key_mask.view({key_mask.size(0), 1, 1, frames});
    if (causal && length > 1) {
      auto visible = torch::ones({length, frames}, query.options().dtype(torch::kBool))
                         .tril(frames - length)
                         .view({1, 1, length, frames});
      allowed = allowed.defined() ? allowed.logical_and(visible) : visible;
    }
    if (allowed.defined()) {
      // Finite, so a fully masked row is uniform rather than NaN.
      const double blocked = scores.scalar_type() == torch::kHalf ? -1e4 : -1e9;
      scores = scores.masked_fill(allowed.logical_not(), blocked);
    }
    auto weights = dropout_->forward(torch::softmax(scores, -1));
    return out_->forward(merge_heads(torch::matmul(weights, kv.values)));
  }

  /// attend(query, project(source), key_mask, causal).
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& source,
                        const torch::Tensor& key_mask = {}, bool causal = false) {
    return attend(query, project(source), key_mask, causal);
  }

 private:
  torch::Tensor split_heads(const torch::Tensor& x) const {
    return x.view({x.size(0), x.size(1), heads_, head_dim_}).transpose(1, 2);
  }
  torch::Tensor merge_heads(const torch::Tensor& x) const {
    return x.transpose(1, 2).reshape({x.size(0), x.size(2), heads_ * head_dim_});
  }

  std::int64_t heads_;
  std::int64_t head_dim_;
  torch::nn::Linear q_, k_, v_, out_;
  torch::nn::Dropout dropout_;
};
TORCH_MODULE(MultiHeadAttention);

}  // namespace kokoro::nn
