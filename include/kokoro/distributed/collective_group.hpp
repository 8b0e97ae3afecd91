// The c10d object collectives are called on. ProcessGroupGloo and
// ProcessGroupNCCL are themselves c10d::ProcessGroup in libtorch 1.x; from
// 2.0 they are c10d::Backend, which a ProcessGroup dispatches to. Both have
// the same allreduce / broadcast / barrier, so kokoro holds the backend
// directly in either version.
#pragma once

#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace kokoro {

#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

}  // namespace kokoro
