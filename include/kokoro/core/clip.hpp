// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_
// computes it (coefficient max_norm / (norm + 1e-6), clamped to 1), but
// returning the norm as a tensor so the step never waits on the device.
#pragma once

#include <torch/types.h>

#include <vector>

namespace kokoro {

/// The global L2 norm of the gradients of `parameters`, before clipping.
/// When `max_norm` > 0 the gradients are scaled down in place so that their
/// global norm is at most `max_norm`; 0 only measures. Parameters without a
/// gradient are ignored; with none at all the norm is 0.
inline torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> norms;
  norms.reserve(parameters.size());
  for (const auto& p : parameters) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    auto n = g.detach().norm(2);
    norms.push_back(n.scalar_type() == torch::kFloat ? n : n.to(torch::kFloat));
  }
  if (norms.empty()) return torch::zeros({}, torch::kFloat);
  auto total = norms.size() == 1 ? norms.front() : torch::stack(norms).norm(2);
  if (max_norm > 0) {
    const auto coefficient = (max_norm / (total + 1e-6)).clamp_max_(1.0);
    for (const auto& p : parameters) {
      const auto& g = p.grad();
      if (!g.defined()) continue;
      g.detach().mul_(g.scalar_type() == torch::kFloat ? coefficient : coefficient.to(g.dtype()));
    }
  }
  return total;
}

}  // namespace kokoro
