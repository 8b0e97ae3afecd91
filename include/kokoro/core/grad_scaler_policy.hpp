// The grad-scaler role: loss scaling for mixed precision. The Trainer runs
// scale -> backward -> unscale -> clip -> step (may be skipped) -> update.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <concepts>

namespace kokoro {

namespace detail::scaler {
template <class S>
concept has_scale = requires(S& s, const torch::Tensor& loss) {
  { s.scale(loss) } -> std::same_as<torch::Tensor>;
};
template <class S>
concept has_unscale = requires(S& s, torch::optim::Optimizer& opt) {
  s.unscale(opt);
};
template <class S>
concept has_step = requires(S& s, torch::optim::Optimizer& opt) {
  { s.step(opt) } -> std::same_as<bool>;
};
template <class S>
concept has_update = requires(S& s) {
  s.update();
};
template <class S>
concept has_scale_factor = requires(const S& s) {
  { s.scale_factor() } -> std::convertible_to<double>;
};
}  // namespace detail::scaler

/// A gradient scaler.
///  - `torch::Tensor scale(const torch::Tensor& loss)`: the loss to backpropagate.
///  - `void unscale(torch::optim::Optimizer&)`: turn gradients back into true
///    gradients (called once per step, before clipping).
///  - `bool step(torch::optim::Optimizer&)`: run the optimizer step unless the
///    gradients are not finite; true when the step was taken.
///  - `void update()`: adapt the scale after the step.
///  - `double scale_factor() const`: the current scale (1 when not scaling).
/// Optional: `state_dict()` / `load_state_dict()` for checkpoints;
/// `bool scales_loss() const`: false for a scaler that never scales (the
/// Trainer then warns that float16 autocast may underflow); taken as true
/// when absent.
template <class S>
concept GradScalerPolicy =
    detail::scaler::has_scale<S> && detail::scaler::has_unscale<S> && detail::scaler::has_step<S> &&
    detail::scaler::has_update<S> && detail::scaler::has_scale_factor<S>;

/// Fails to compile, naming the first missing member, when S is not a GradScalerPolicy.
template <class S>
constexpr bool check_grad_scaler_policy() {
  static_assert(detail::scaler::has_scale<S>,
                "kokoro: the grad scaler policy needs `torch::Tensor scale(const torch::Tensor&)` "
                "(see kokoro/core/grad_scaler_policy.hpp)");
  static_assert(detail::scaler::has_unscale<S>,
                "kokoro: the grad scaler policy needs `void unscale(torch::optim::Optimizer&)` "
                "(see kokoro/core/grad_scaler_policy.hpp)");
  static_assert(detail::scaler::has_step<S>,
                "kokoro: the grad scaler policy needs `bool step(torch::optim::Optimizer&)` "
                "(see kokoro/core/grad_scaler_policy.hpp)");
  static_assert(detail::scaler::has_update<S>,
                "kokoro: the grad scaler policy needs `void update()` "
                "(see kokoro/core/grad_scaler_policy.hpp)");
  static_assert(detail::scaler::has_scale_factor<S>,
                "kokoro: the grad scaler policy needs `double scale_factor() const` "
                "(see kokoro/core/grad_scaler_policy.hpp)");
  return true;
}

namespace archetype {

/// The smallest grad scaler (it does not scale): copy it to start your own.
struct GradScaler {
  torch::Tensor scale(const torch::Tensor& loss) { return loss; }
  void unscale(torch::optim::Optimizer&) {}
  bool step(torch::optim::Optimizer& optimizer) {
    optimizer.step();
    return true;
  }
  void update() {}
  double scale_factor() const { return 1.0; }
  bool scales_loss() const { return false; }
};
static_assert(GradScalerPolicy<GradScaler>);

}  // namespace archetype
}  // namespace kokoro
