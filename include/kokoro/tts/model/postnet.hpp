// The PostNet: a Tacotron-2-style stack of 1-D convolutions over time whose
// output is a residual added to the mel head's prediction. Tacotron 2 puts a
// BatchNorm after each convolution; here a per-frame LayerNorm over the
// channels takes its place, because batch statistics would let padding
// frames change real ones and behave differently in train and eval mode.
// Padding frames are zeroed before every convolution, so a clip's output is
// the same however much padding its batch has.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "kokoro/nn/fast_dropout.hpp"
#include "kokoro/nn/kernel_choice.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

struct PostNetOptions {
  PostNetOptions(std::int64_t n_mels) : n_mels_(n_mels) {}  // NOLINT: implicit on purpose
  TORCH_ARG(std::int64_t, n_mels);
  /// Channels of the hidden convolutions (Tacotron 2: 512).
  TORCH_ARG(std::int64_t, channels) = 512;
  /// Kernel width in frames, odd (Tacotron 2: 5).
  TORCH_ARG(std::int64_t, kernel_size) = 5;
  /// Convolutions in all, at least 2 (Tacotron 2: 5).
  TORCH_ARG(std::int64_t, layers) = 5;
  /// Dropout after every convolution.
  TORCH_ARG(double, dropout) = 0.1;
  /// The dropout's implementation.
  TORCH_ARG(nn::Kernels, kernels) = nn::Kernels::fast;
};

/// conv → LayerNorm → tanh → dropout, `layers − 1` times (n_mels → channels
/// → … → channels), then conv → dropout back to n_mels. Submodules: convs,
/// norms.
class PostNetImpl : public torch::nn::Module {
 public:
  explicit PostNetImpl(const PostNetOptions& options)
      : dropout_(nn::DropoutOptions{.p = options.dropout(), .kernels = options.kernels()}) {
    if (options.layers() < 2 || options.kernel_size() % 2 == 0) {
      throw Error("PostNet: needs at least 2 layers and an odd kernel size");
    }
    for (std::int64_t i = 0; i < options.layers(); ++i) {
      const bool first = i == 0, last = i + 1 == options.layers();
      torch::nn::Conv1d conv(torch::nn::Conv1dOptions(first ? options.n_mels() : options.channels(),
                                                      last ? options.n_mels() : options.channels(),
                                                      options.kernel_size())
                                 .padding(options.kernel_size() / 2));
      convs_->push_back(conv);
      conv_list_.push_back(conv);
      if (!last) {
        torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({options.channels()}));
        norms_->push_back(norm);
        norm_list_.push_back(norm);
      }
    }
    register_module("convs", convs_);
    register_module("norms", norms_);
    register_module("dropout", dropout_);
  }

  /// The residual [B, F, n_mels] for `mel` [B, F, n_mels]; `frame_mask`
  /// [B, F] is true on real frames (undefined: all), the residual is 0 elsewhere.
  torch::Tensor forward(const torch::Tensor& mel, const torch::Tensor& frame_mask = {}) {
    const auto padding =
        frame_mask.defined() ? frame_mask.logical_not().unsqueeze(-1) : torch::Tensor{};
    auto x = mel;
    for (std::size_t i = 0; i < conv_list_.size(); ++i) {
      if (padding.defined()) x = x.masked_fill(padding, 0.0);
      x = conv_list_[i]->forward(x.transpose(1, 2)).transpose(1, 2);  // [B, F, C]
      // Under bfloat16 autocast the convolution returns bfloat16, and libtorch
      // 1.13's CPU layer_norm refuses a bfloat16 input with float32 weights.
      if (i < norm_list_.size()) x = torch::tanh(norm_list_[i]->forward(x.to(torch::kFloat)));
      x = dropout_->forward(x);
    }
    return padding.defined() ? x.masked_fill(padding, 0.0) : x;
  }

 private:
  torch::nn::ModuleList convs_;
  torch::nn::ModuleList norms_;
  std::vector<torch::nn::Conv1d> conv_list_;
  std::vector<torch::nn::LayerNorm> norm_list_;
  nn::Dropout dropout_;
};
TORCH_MODULE(PostNet);

}  // namespace kokoro::tts
