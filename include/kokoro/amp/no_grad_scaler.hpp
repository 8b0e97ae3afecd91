// NoGradScaler: full-precision training, no loss scaling. Every step is taken;
// the default scaler of kokoro::DefaultPolicies.
#pragma once

#include "kokoro/core/grad_scaler_policy.hpp"

namespace kokoro {

/// Leaves the loss and the gradients as they are; every step is taken. It is
/// the role's archetype (core/grad_scaler_policy.hpp), shipped under a name.
struct NoGradScaler : archetype::GradScaler {};

static_assert(GradScalerPolicy<NoGradScaler>);

}  // namespace kokoro
