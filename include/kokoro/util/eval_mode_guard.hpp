// EvalModeGuard: a module in eval mode for a scope, its previous mode back
// afterwards (even on an exception). The one such guard: the Trainer's
// validation and a model's own inference both use it.
#pragma once

#include <torch/nn/module.h>

namespace kokoro {

class EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::nn::Module& module)
      : module_(module), was_training_(module.is_training()) {
    module_.eval();
  }
  ~EvalModeGuard() { module_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

}  // namespace kokoro
