// The TTS Transformer's blocks: the gated feed-forward, an encoder block
// (self-attention) and a decoder block (causal self-attention, then
// cross-attention over the length-regulated encoder output). All are
// pre-norm: LayerNorm before each sublayer and a residual around it, so the
// residual path is an identity and deep stacks train without warmup tricks;
// the model applies one final LayerNorm after each stack.
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "kokoro/nn/attention.hpp"
#include "kokoro/nn/fast_dropout.hpp"
#include "kokoro/nn/kernel_choice.hpp"

namespace kokoro::nn {

/// The shape and regularisation of a Transformer block.
struct TransformerBlockOptions {
  std::int64_t dim = 0;
  std::int64_t heads = 1;   ///< must divide dim
  std::int64_t ff_dim = 0;  ///< the feed-forward's hidden width
  double dropout = 0.1;     ///< on each sublayer's output and the feed-forward's hidden units
  double attention_dropout = 0.1;  ///< on the attention weights
  Kernels kernels = Kernels::fast;

  MultiHeadAttentionOptions attention() const {
    return {.dim = dim, .heads = heads, .dropout = attention_dropout, .kernels = kernels};
  }
  DropoutOptions residual_dropout() const { return {.p = dropout, .kernels = kernels}; }
};

/// Linear(dim, 2·hidden) → split into (value, gate) → GELU(gate)·value →
/// dropout → Linear(hidden, dim). Submodules: in, out.
///
/// Kernels::fast computes the value and the gate as two products with the
/// two halves of `in`'s weight (the same parameters and state dict), so each
/// comes out contiguous: GELU and its backward on every other half-row of one
/// [.., 2·hidden] output run 5–7x slower on the CPU than on a contiguous one.
class GatedFeedForwardImpl : public torch::nn::Module {
 public:
  GatedFeedForwardImpl(std::int64_t dim, std::int64_t hidden, const DropoutOptions& dropout)
      : hidden_(hidden), in_(dim, 2 * hidden), out_(hidden, dim), dropout_(dropout) {
    register_module("in", in_);
    register_module("out", out_);
    register_module("dropout", dropout_);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    if (dropout_->options().kernels == Kernels::reference) {
      auto halves = in_->forward(x).chunk(2, -1);
      return out_->forward(dropout_->forward(halves[0] * torch::gelu(halves[1])));
    }
    const auto& w = in_->weight;
    const auto& b = in_->bias;
    auto value = torch::linear(x, w.narrow(0, 0, hidden_), b.narrow(0, 0, hidden_));
    auto gate = torch::linear(x, w.narrow(0, hidden_, hidden_), b.narrow(0, hidden_, hidden_));
    return out_->forward(dropout_->forward(value * torch::gelu(gate)));
  }

 private:
  std::int64_t hidden_;
  torch::nn::Linear in_, out_;
  Dropout dropout_;
};
TORCH_MODULE(GatedFeedForward);

/// The residual stream in float32. Under autocast a projection returns
/// bfloat16 or float16; the stream and the LayerNorms stay in float32 (libtorch
/// 1.13's CPU layer_norm refuses a bfloat16 input with float32 weights, and
/// residual sums lose precision in 16 bits).
inline torch::Tensor residual_stream(const torch::Tensor& x) {
  return x.is_floating_point() && x.element_size() < 4 ? x.to(torch::kFloat) : x;
}

/// x + drop(attn(norm(x))), then x + drop(ff(norm(x))).
/// Submodules: attention_norm, attention, ff_norm, ff.
class EncoderBlockImpl : public torch::nn::Module {
 public:
  explicit EncoderBlockImpl(const TransformerBlockOptions& options)
      : attention_norm_(torch::nn::LayerNormOptions({options.dim})),
        attention_(options.attention()),
        ff_norm_(torch::nn::LayerNormOptions({options.dim})),
        ff_(options.dim, options.ff_dim, options.residual_dropout()),
        dropout_(options.residual_dropout()) {
    register_module("attention_norm", attention_norm_);
    register_module("attention", attention_);
    register_module("ff_norm", ff_norm_);
    register_module("ff", ff_);
    register_module("dropout", dropout_);
  }

  /// x [B, T, dim]; key_mask [B, T] true on real phonemes.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& key_mask) {
    x = residual_stream(x);
    auto h = attention_norm_->forward(x);
    x = x + dropout_->forward(attention_->forward(h, h, key_mask));
    return x + dropout_->forward(ff_->forward(ff_norm_->forward(x)));
  }

 private:
  torch::nn::LayerNorm attention_norm_;
  MultiHeadAttention attention_;
  torch::nn::LayerNorm ff_norm_;
  GatedFeedForward ff_;
  Dropout dropout_;
};
TORCH_MODULE(EncoderBlock);

/// One decoder block's inference state: its self-attention keys and values
/// so far, and the memory's keys and values, projected once.
struct DecoderBlockCache {
  KeyValueCache self;
  KeyValue memory;
};

/// Causal self-attention, cross-attention over the memory, feed-forward;
/// each pre-norm with a residual. Submodules: self_norm, self_attention,
/// cross_norm, cross_attention, ff_norm, ff.
class DecoderBlockImpl : public torch::nn::Module {
 public:
  explicit DecoderBlockImpl(const TransformerBlockOptions& options)
      : self_norm_(torch::nn::LayerNormOptions({options.dim})),
        self_attention_(options.attention()),
        cross_norm_(torch::nn::LayerNormOptions({options.dim})),
        cross_attention_(options.attention()),
        ff_norm_(torch::nn::LayerNormOptions({options.dim})),
        ff_(options.dim, options.ff_dim, options.residual_dropout()),
        dropout_(options.residual_dropout()) {
    register_module("self_norm", self_norm_);
    register_module("self_attention", self_attention_);
    register_module("cross_norm", cross_norm_);
    register_module("cross_attention", cross_attention_);
    register_module("ff_norm", ff_norm_);
    register_module("ff", ff_);
    register_module("dropout", dropout_);
  }

  /// Teacher-forced: x [B, F, dim] (frame i sees frames <= i), memory
  /// [B, S, dim] with memory_mask [B, S] true on real frames.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& memory,
                        const torch::Tensor& memory_mask) {
    x = residual_stream(x);
    auto h = self_norm_->forward(x);
    x = x + dropout_->forward(self_attention_->forward(h, h, {}, /*causal=*/true));
    x = x +
        dropout_->forward(cross_attention_->forward(cross_norm_->forward(x), memory, memory_mask));
    return x + dropout_->forward(ff_->forward(ff_norm_->forward(x)));
  }

  /// The cache for decoding against `memory` [B, S, dim].
  DecoderBlockCache start(const torch::Tensor& memory) {
    return {KeyValueCache{}, cross_attention_->project(memory)};
  }

  /// Incremental: x [B, n, dim] are the next n frames after those in the
  /// cache; the result equals forward() on the whole prefix, last n frames.
  torch::Tensor step(torch::Tensor x, DecoderBlockCache& cache,
                     const torch::Tensor& memory_mask = {}) {
    x = residual_stream(x);
    auto h = self_norm_->forward(x);
    cache.self.append(self_attention_->project(h));
    x = x + dropout_->forward(self_attention_->attend(h, cache.self.view(), {}, /*causal=*/true));
    x = x + dropout_->forward(
                cross_attention_->attend(cross_norm_->forward(x), cache.memory, memory_mask));
    return x + dropout_->forward(ff_->forward(ff_norm_->forward(x)));
  }

 private:
  torch::nn::LayerNorm self_norm_;
  MultiHeadAttention self_attention_;
  torch::nn::LayerNorm cross_norm_;
  MultiHeadAttention cross_attention_;
  torch::nn::LayerNorm ff_norm_;
  GatedFeedForward ff_;
  Dropout dropout_;
};
TORCH_MODULE(DecoderBlock);

}  // namespace kokoro::nn
