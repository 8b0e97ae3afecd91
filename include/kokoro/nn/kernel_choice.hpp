// Which implementation the nn/ building blocks run. `fast` is kokoro's own
// CPU kernels (Philox dropout, the attention core with its own backward);
// `reference` is the same computation written with libtorch's stock ops and
// autograd, kept for comparisons, benchmarks and as a fallback.
#pragma once

namespace kokoro::nn {

enum class Kernels {
  fast,
  reference,
};

}  // namespace kokoro::nn
