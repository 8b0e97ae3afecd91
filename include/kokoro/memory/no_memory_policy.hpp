// NoMemoryPolicy: never asks for a cleanup. The default for small models and
// for runs where the allocator's own caching is enough.
#pragma once

#include "kokoro/core/memory_policy.hpp"

namespace kokoro {

/// Leaves memory to the allocator. It is the role's archetype
/// (core/memory_policy.hpp), shipped under a name.
struct NoMemoryPolicy : archetype::Memory {};

static_assert(MemoryPolicy<NoMemoryPolicy>);

}  // namespace kokoro
