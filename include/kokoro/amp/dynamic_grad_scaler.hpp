// DynamicGradScaler: loss scaling for float16 training with the semantics,
// defaults and state-dict keys of PyTorch's torch.cuda.amp.GradScaler.
// It runs on any device with plain tensor ops and uses ATen's fused kernels
// on CUDA (the only device 1.13 has them for).
//
//   scale(loss)   loss * scale
//   unscale(opt)  grads *= 1/scale (computed in double, applied in float);
//                 records whether any grad was inf/NaN (checked before scaling)
//   step(opt)     optimizer.step() unless a grad was inf/NaN; true if taken
//   update()      inf/NaN: scale *= backoff_factor, clean-step count = 0;
//                 else count += 1, and at growth_interval: scale *= growth_factor
//                 (kept only if finite) and count = 0
#pragma once

#include <ATen/ops/_amp_foreach_non_finite_check_and_unscale.h>
#include <ATen/ops/_amp_update_scale.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/grad_scaler_policy.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro {

/// Settings of a DynamicGradScaler; the defaults are PyTorch's.
struct DynamicGradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;
};

class DynamicGradScaler {
 public:
  DynamicGradScaler() : DynamicGradScaler(DynamicGradScalerOptions{}) {}

  /// From `hardware.grad_scale_init`, `_growth`, `_backoff` and `_interval`.
  explicit DynamicGradScaler(const TrainingConfig& config)
      : DynamicGradScaler(DynamicGradScalerOptions{
            config.hardware.grad_scale_init, config.hardware.grad_scale_growth,
            config.hardware.grad_scale_backoff, config.hardware.grad_scale_interval}) {}

  explicit DynamicGradScaler(DynamicGradScalerOptions options)
      : options_(options), init_scale_(options.init_scale) {
    if (!(options.growth_factor > 1.0)) throw Error("DynamicGradScaler: growth_factor must be > 1");
    if (!(options.backoff_factor < 1.0 && options.backoff_factor > 0.0)) {
      throw Error("DynamicGradScaler: backoff_factor must be in (0, 1)");
    }
    if (options.growth_interval <= 0) throw Error("DynamicGradScaler: growth_interval must be > 0");
  }

  /// The loss multiplied by the current scale (the scale moves to the loss's
  /// device on first use).
  torch::Tensor scale(const torch::Tensor& loss) {
    lazy_init(loss.device());
    return loss * scale_.to(loss.device(), /*non_blocking=*/true);
  }

  /// Divides the optimizer's gradients by the scale and records inf/NaN.
  /// Once per step: a second call before update() is an error.
  void unscale(torch::optim::Optimizer& optimizer) {
    if (stage_ == Stage::unscaled) {
      throw Error("DynamicGradScaler: unscale() was already called since the last update()");
    }
    if (stage_ == Stage::stepped) throw Error("DynamicGradScaler: unscale() after step()");
    if (!scale_.defined()) throw Error("DynamicGradScaler: unscale() before any scale()");
    found_inf_ = torch::zeros({1}, scale_.options());
    const auto inv_scale = scale_.to(torch::kDouble).reciprocal().to(torch::kFloat);
    std::map<c10::ScalarType, std::vector<torch::Tensor>> by_dtype;
    for (const auto& group : optimizer.param_groups()) {
      for (const auto& p : group.params()) {
        const auto& g = p.grad();
        if (!g.defined()) continue;
        if (g.scalar_type() == torch::kHalf) {
          throw Error(
              "DynamicGradScaler: float16 gradients cannot be unscaled; keep parameters in "
              "float32 and let autocast lower the precision of the operations");
        }
        if (g.device() != scale_.device()) {
          throw Error(fmt::format("DynamicGradScaler: a gradient is on {}, the scale on {}",
                                  g.device().str(), scale_.device().str()));
        }
        by_dtype[g.scalar_type()].push_back(g);
      }
    }
    for (auto& [dtype, grads] : by_dtype) unscale_and_check(grads, inv_scale);
    stage_ = Stage::unscaled;
  }

  /// Runs the optimizer step unless unscale() found inf/NaN; unscales first
  /// if that has not happened. True when the step was taken.
  /// It scales: float16 gradients keep their small values.
  bool scales_loss() const { return true; }

  bool step(torch::optim::Optimizer& optimizer) {
    if (stage_ == Stage::stepped) throw Error("DynamicGradScaler: step() twice without update()");
    if (stage_ == Stage::ready) unscale(optimizer);
    stage_ = Stage::stepped;
    if (found_inf_.item<float>() != 0.0f) return false;
    optimizer.step();
    return true;
  }

  /// Adapts the scale to this step's outcome.
  void update() {
    if (stage_ == Stage::ready || !found_inf_.defined()) {
      throw Error(
          "DynamicGradScaler: update() without unscale() or step() since the last update()");
    }
    if (scale_.is_cuda()) {
      at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, options_.growth_factor,
                             options_.backoff_factor, options_.growth_interval);
    } else {
      // The same arithmetic as ATen's CUDA kernel, in float32 like the scale.
      float scale = scale_.item<float>();
      std::int32_t tracker = growth_tracker_.item<std::int32_t>();
      if (found_inf_.item<float>() != 0.0f) {
        scale = static_cast<float>(scale * options_.backoff_factor);
        tracker = 0;
      } else {
        const std::int32_t successful = tracker + 1;
        if (successful == options_.growth_interval) {
          const auto grown = static_cast<float>(scale * options_.growth_factor);
          if (std::isfinite(grown)) scale = grown;
          tracker = 0;
        } else {
          tracker = successful;
        }
      }
      scale_.fill_(scale);
      growth_tracker_.fill_(tracker);
    }
    stage_ = Stage::ready;
  }

  /// The current scale (reads it back from the device).
  double scale_factor() const { return scale_.defined() ? scale_.item<float>() : init_scale_; }

  /// Clean steps since the last change of scale.
  std::int64_t growth_tracker() const {
    return growth_tracker_.defined() ? growth_tracker_.item<std::int32_t>() : init_growth_tracker_;
  }

  const DynamicGradScalerOptions& options() const { return options_; }

  /// PyTorch's keys: scale, growth_factor, backoff_factor, growth_interval,
  /// _growth_tracker.
  StateDict state_dict() const {
    return {{"scale", scale_factor()},
            {"growth_factor", options_.growth_factor},
            {"backoff_factor", options_.backoff_factor},
            {"growth_interval", options_.growth_interval},
            {"_growth_tracker", growth_tracker()}};
  }

  void load_state_dict(const StateDict& state) {
    init_scale_ = state_get<double>(state, "scale");
    options_.growth_factor = state_get<double>(state, "growth_factor");
    options_.backoff_factor = state_get<double>(state, "backoff_factor");
    options_.growth_interval = state_get<std::int64_t>(state, "growth_interval");
    init_growth_tracker_ = state_get<std::int64_t>(state, "_growth_tracker");
    if (scale_.defined()) {
      scale_.fill_(init_scale_);
      growth_tracker_.fill_(init_growth_tracker_);
    }
  }

 private:
  enum class Stage { ready, unscaled, stepped };

  void lazy_init(c10::Device device) {
    if (scale_.defined()) return;
    scale_ =
        torch::full({1}, init_scale_, torch::TensorOptions().dtype(torch::kFloat).device(device));
    growth_tracker_ = torch::full({1}, init_growth_tracker_,
                                  torch::TensorOptions().dtype(torch::kInt).device(device));
  }

  void unscale_and_check(std::vector<torch::Tensor>& grads, const torch::Tensor& inv_scale) {
    if (scale_.is_cuda()) {
      at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, inv_scale);
      return;
    }
    // Checked before scaling: scaling may overflow a finite value when the
    // scale has fallen below 1, and PyTorch tests the original value. A
    // gradient's min and max (one pass, NaN-propagating) are finite exactly
    // when all its values are, without isfinite's full-size temporaries.
    const auto factor = inv_scale.reshape({});  // 0-dim: broadcasts into any gradient
    std::vector<torch::Tensor> extremes;
    extremes.reserve(2 * grads.size());
    for (auto& g : grads) {
      auto [low, high] = torch::aminmax(g);
      extremes.push_back(low);
      extremes.push_back(high);
      g.mul_(factor);
    }
    const auto any_bad = torch::isfinite(torch::stack(extremes)).logical_not().any();
    found_inf_.add_(any_bad.to(torch::kFloat)).clamp_max_(1.0);
  }

  DynamicGradScalerOptions options_;
  double init_scale_;
  std::int64_t init_growth_tracker_ = 0;
  torch::Tensor scale_;           // float32 [1], on the loss's device
  torch::Tensor growth_tracker_;  // int32 [1]
  torch::Tensor found_inf_;       // float32 [1]: 1 when this step saw inf/NaN
  Stage stage_ = Stage::ready;
};

static_assert(GradScalerPolicy<DynamicGradScaler>);

}  // namespace kokoro
