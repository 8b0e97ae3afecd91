// Histograms from tensors: what the Trainer sends loggers about the weights
// and gradients every media epoch. Plain kokoro::Histogram values
// (core/media.hpp), in TensorBoard's bucket convention.
#pragma once

#include <string>
#include <utility>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "kokoro/core/media.hpp"

namespace kokoro {

/// `values` in `bins` equal buckets between their min and max; non-finite
/// values are left out (a NaN weight shows as a gap, not as a crash).
inline Histogram histogram_of(std::string tag, const torch::Tensor& values, int bins = 30) {
  Histogram h;
  h.tag = std::move(tag);
  auto v = values.detach().flatten().to(torch::kCPU, torch::kDouble);
  v = v.masked_select(torch::isfinite(v));
  if (v.numel() == 0) return h;
  h.min = v.min().item<double>();
  h.max = v.max().item<double>();
  h.count = static_cast<double>(v.numel());
  h.sum = v.sum().item<double>();
  h.sum_squares = v.square().sum().item<double>();
  if (h.min == h.max) {
    h.bucket_limits = {h.max};
    h.bucket_counts = {h.count};
    return h;
  }
  const auto counts = torch::histc(v, bins, h.min, h.max);
  const auto* c = counts.data_ptr<double>();
  const double width = (h.max - h.min) / bins;
  for (int i = 0; i < bins; ++i) {
    h.bucket_limits.push_back(i + 1 == bins ? h.max : h.min + (i + 1) * width);
    h.bucket_counts.push_back(c[i]);
  }
  return h;
}

/// A histogram of every parameter ("weights/<name>") and of every gradient
/// that is present ("grads/<name>").
inline void add_parameter_histograms(Media& media, const torch::nn::Module& model) {
  for (const auto& p : model.named_parameters()) {
    media.histograms.push_back(histogram_of("weights/" + p.key(), p.value()));
    if (p.value().grad().defined()) {
      media.histograms.push_back(histogram_of("grads/" + p.key(), p.value().grad()));
    }
  }
}

}  // namespace kokoro
