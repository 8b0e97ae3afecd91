// Multi-head attention for the TTS Transformer, and the sinusoidal positions
// it reads. Queries, keys and values are projected without bias, the output
// with bias. Masks are true where a key may be attended. Keys and values can
// be projected once and reused (cross-attention at inference) or grown one
// frame at a time (the decoder's self-attention cache).
//
// The core, softmax(q·kᵀ/√d + mask)·v with dropout on the weights, is one
// autograd node with a hand-written backward (Kernels::fast): it keeps only
// the attention weights for backward (libtorch's ops would keep the scores'
// dropout mask, the dropped weights and the weights, three [B, heads, L, S]
// maps), and regenerates the dropout mask from its key. Its masked softmax
// and dropout run as one pass over each map, forward and backward
// (nn/attention_kernels.hpp).
// Kernels::reference computes the same with libtorch's ops and autograd.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <fmt/format.h>

#include "kokoro/nn/attention_kernels.hpp"
#include "kokoro/nn/fast_dropout.hpp"
#include "kokoro/nn/kernel_choice.hpp"
#include "kokoro/util/autocast_state.hpp"
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

/// The score given to a blocked key: finite, so that a row with every key
/// blocked is uniform rather than NaN, and within float16's range.
inline double blocked_score(c10::ScalarType dtype) { return dtype == torch::kHalf ? -1e4 : -1e9; }

/// Where keys are blocked, as a mask broadcastable to [B, heads, L, S]:
/// `key_mask` [B, S] true on keys that may be attended (undefined: all), and
/// with `causal`, query i (the frame at position S − L + i) sees keys up to
/// its own position. Undefined when nothing is blocked.
inline torch::Tensor blocked_keys(const torch::Tensor& key_mask, bool causal, std::int64_t length,
                                  std::int64_t frames, c10::Device device) {
  torch::Tensor blocked;
  if (key_mask.defined()) blocked = key_mask.logical_not().view({key_mask.size(0), 1, 1, frames});
  if (causal && length > 1) {
    auto future = torch::ones({length, frames}, torch::TensorOptions(device).dtype(torch::kBool))
                      .triu(frames - length + 1)
                      .view({1, 1, length, frames});
    blocked = blocked.defined() ? blocked.logical_or(future) : future;
  }
  return blocked;
}

namespace detail {

/// Autocast off for a scope: the core's inputs already have the dtype autocast
/// chose for the projections, and its backward must not cast again.
class AutocastOff {
 public:
  AutocastOff()
      : cpu_(autocast_state::enabled(c10::DeviceType::CPU)),
        cuda_(autocast_state::enabled(c10::DeviceType::CUDA)) {
    autocast_state::set_enabled(c10::DeviceType::CPU, false);
    autocast_state::set_enabled(c10::DeviceType::CUDA, false);
  }
  ~AutocastOff() {
    autocast_state::set_enabled(c10::DeviceType::CPU, cpu_);
    autocast_state::set_enabled(c10::DeviceType::CUDA, cuda_);
  }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  bool cpu_;
  bool cuda_;
};

/// weights = softmax(q·kᵀ·scale, blocked keys at blocked_score), dropped
/// with `key` when p > 0; returns (weights·v, weights before dropout).
inline std::pair<torch::Tensor, torch::Tensor> attention_forward(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
    const torch::Tensor& blocked, double scale, double p, std::uint64_t key) {
  // The scale goes on q, d/S of a pass over the scores.
  auto scores = torch::matmul(scale != 1.0 ? q * scale : q, k.transpose(-2, -1));  // [B, h, L, S]
  if (fused_rows_apply(scores)) {
    // One pass: masked softmax in place, then the dropout into its own map.
    const auto dropped = softmax_dropout_(scores, blocked, p, key,
                                          static_cast<float>(blocked_score(scores.scalar_type())));
    return {torch::matmul(dropped.defined() ? dropped : scores, v), scores};
  }
  if (blocked.defined()) scores.masked_fill_(blocked, blocked_score(scores.scalar_type()));
  auto weights = torch::softmax(scores, -1);
  scores = torch::Tensor();
  auto out =
      p > 0.0 ? torch::matmul(apply_dropout_mask(weights, key, p), v) : torch::matmul(weights, v);
  return {out, weights};
}

/// The backward of dropout and softmax in libtorch's ops, for maps the row
/// kernels do not take: returns dS and sets dV.
inline torch::Tensor composed_softmax_backward(torch::Tensor& grad_weights,
                                               const torch::Tensor& weights,
                                               const torch::Tensor& grad_out, double p,
                                               std::uint64_t key, torch::Tensor& grad_v) {
  if (p > 0.0) {
    grad_v = torch::matmul(apply_dropout_mask(weights, key, p).transpose(-2, -1), grad_out);
    apply_dropout_mask_(grad_weights, key, p);
  } else {
    grad_v = torch::matmul(weights.transpose(-2, -1), grad_out);
  }
  return torch::_softmax_backward_data(grad_weights, weights, -1, weights.scalar_type());
}

/// The core as one autograd node. Saved for backward: q, k, v and the
/// weights before dropout; the dropout mask is regenerated from its key.
struct AttentionCoreFunction : torch::autograd::Function<AttentionCoreFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& blocked_or_empty, double scale, double p,
                               std::int64_t key) {
    AutocastOff autocast_off;
    const auto blocked = blocked_or_empty.numel() > 0 ? blocked_or_empty : torch::Tensor();
    auto [out, weights] =
        attention_forward(q, k, v, blocked, scale, p, static_cast<std::uint64_t>(key));
    // A row with every key blocked has uniform weights, whose softmax
    // gradient is not zero on its (blocked) scores; libtorch's masked_fill
    // stops it there, and so must backward. Rows with a visible key have
    // weight exactly 0 on blocked keys, so only then is the mask needed.
    const bool blocked_rows = blocked.defined() && blocked.all(-1).any().item<bool>();
    ctx->save_for_backward({q, k, v, weights, blocked_rows ? blocked : torch::Tensor()});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["p"] = p;
    ctx->saved_data["key"] = key;
    return out;
  }

  // With W the weights, D the dropped weights, dO the output's gradient:
  // dV = Dᵀ·dO, dD = dO·vᵀ, dW = mask(dD), dS = W ⊙ (dW − Σ_row dW ⊙ W),
  // dQ = dS·k·scale, dK = dSᵀ·q·scale. Blocked keys have W = 0, so dS = 0
  // there, except in rows with no visible key (see forward).
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    AutocastOff autocast_off;
    const auto saved = ctx->get_saved_variables();
    const auto& q = saved[0];
    const auto& k = saved[1];
    const auto& v = saved[2];
    const auto& weights = saved[3];
    const auto& blocked_rows = saved[4];
    const auto scale = ctx->saved_data.at("scale").toDouble();
    const auto p = ctx->saved_data.at("p").toDouble();
    const auto key = static_cast<std::uint64_t>(ctx->saved_data.at("key").toInt());
    const auto grad_out = grads[0].to(v.scalar_type());

    auto grad_weights = torch::matmul(grad_out, v.transpose(-2, -1));  // fresh, contiguous
    torch::Tensor grad_v;
    torch::Tensor grad_scores;
    if (fused_rows_apply(grad_weights) && weights.is_contiguous() &&
        weights.sizes() == grad_weights.sizes() &&
        weights.scalar_type() == grad_weights.scalar_type()) {
      // One pass: the mask drawn once for dD's dropout and D, the softmax
      // backward written over dD.
      const auto dropped = dropout_softmax_backward_(grad_weights, weights, p, key);
      grad_v = torch::matmul((dropped.defined() ? dropped : weights).transpose(-2, -1), grad_out);
      grad_scores = std::move(grad_weights);
    } else {
      grad_scores = composed_softmax_backward(grad_weights, weights, grad_out, p, key, grad_v);
    }
    grad_weights = torch::Tensor();
    if (blocked_rows.defined()) grad_scores.masked_fill_(blocked_rows, 0.0);
    auto grad_q = torch::matmul(grad_scores, k);
    if (scale != 1.0) grad_q.mul_(scale);
    auto grad_k = torch::matmul(grad_scores.transpose(-2, -1), scale != 1.0 ? q * scale : q);
    return {grad_q,          grad_k,          grad_v,         torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace detail

/// softmax(q·kᵀ·scale + blocked)·v with dropout p on the weights (when
/// `training`), for q [B, h, L, d], k and v [B, h, S, d]; `blocked` (from
/// blocked_keys, or undefined) broadcasts to [B, h, L, S]. k and v are used
/// in q's dtype. Kernels::fast takes the single autograd node above on CPU
/// tensors; CUDA/MPS tensors and Kernels::reference run libtorch's ops.
inline torch::Tensor attention_core(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& blocked,
                                    double scale, double p, bool training,
                                    Kernels kernels = Kernels::fast) {
  const double drop = training ? p : 0.0;
  if (kernels == Kernels::fast && q.device().is_cpu()) {
    const auto dtype = q.scalar_type();
    const auto key = drop > 0.0 ? static_cast<std::int64_t>(draw_dropout_key()) : 0;
    // An autograd node's tensor inputs must be defined: "nothing blocked" is
    // an empty tensor here.
    const auto blocked_or_empty =
        blocked.defined() ? blocked : torch::empty({0}, q.options().dtype(torch::kBool));
    return detail::AttentionCoreFunction::apply(q, k.to(dtype), v.to(dtype), blocked_or_empty,
                                                scale, drop, key);
  }
  auto scores = torch::matmul(q * scale, k.transpose(-2, -1));
  if (blocked.defined()) scores = scores.masked_fill(blocked, blocked_score(scores.scalar_type()));
  auto weights = torch::softmax(scores, -1);
  return torch::matmul(fast_dropout(weights, drop, drop > 0.0, kernels), v);
}

/// The options of MultiHeadAttention.
struct MultiHeadAttentionOptions {
  std::int64_t dim = 0;
  std::int64_t heads = 1;  ///< must divide dim
  double dropout = 0.0;    ///< on the attention weights
  Kernels kernels = Kernels::fast;
};

/// Scaled dot-product attention over `heads` heads of width dim / heads.
/// Submodules: q, k, v (no bias), out (bias).
class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const MultiHeadAttentionOptions& options)
      : options_(checked(options)),
        head_dim_(options.dim / options.heads),
        q_(torch::nn::LinearOptions(options.dim, options.dim).bias(false)),
        k_(torch::nn::LinearOptions(options.dim, options.dim).bias(false)),
        v_(torch::nn::LinearOptions(options.dim, options.dim).bias(false)),
        out_(options.dim, options.dim) {
    register_module("q", q_);
    register_module("k", k_);
    register_module("v", v_);
    register_module("out", out_);
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
    const auto blocked = blocked_keys(key_mask, causal, query.size(1), kv.size(), query.device());
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
    auto mixed = attention_core(split_heads(q_->forward(query)), kv.keys, kv.values, blocked, scale,
                                options_.dropout, is_training(), options_.kernels);
    return out_->forward(merge_heads(mixed));
  }

  /// attend(query, project(source), key_mask, causal).
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& source,
                        const torch::Tensor& key_mask = {}, bool causal = false) {
    return attend(query, project(source), key_mask, causal);
  }

 private:
  static const MultiHeadAttentionOptions& checked(const MultiHeadAttentionOptions& options) {
    if (options.heads <= 0 || options.dim <= 0 || options.dim % options.heads != 0) {
      throw Error(fmt::format("attention: {} heads do not divide the width {}", options.heads,
                              options.dim));
    }
    if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
      throw Error(fmt::format("attention: dropout must be in [0, 1), got {}", options.dropout));
    }
    return options;
  }

  torch::Tensor split_heads(const torch::Tensor& x) const {
    return x.view({x.size(0), x.size(1), options_.heads, head_dim_}).transpose(1, 2);
  }
  torch::Tensor merge_heads(const torch::Tensor& x) const {
    return x.transpose(1, 2).reshape({x.size(0), x.size(2), options_.dim});
  }

  MultiHeadAttentionOptions options_;
  std::int64_t head_dim_;
  torch::nn::Linear q_, k_, v_, out_;
};
TORCH_MODULE(MultiHeadAttention);

}  // namespace kokoro::nn
