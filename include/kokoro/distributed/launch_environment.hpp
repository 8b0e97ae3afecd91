// What a launcher tells a process about the group it belongs to, in the
// variables torchrun sets (and `torch.distributed`'s env:// rendezvous
// reads): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; and
// TORCHELASTIC_USE_AGENT_STORE, which torchrun's static rendezvous (a
// multi-node launch with --master_addr) sets when its agent already hosts
// the store at MASTER_ADDR:MASTER_PORT.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro {

/// The launch variables of this process.
struct LaunchEnvironment {
  bool launched = false;  ///< WORLD_SIZE is set: a launcher started this process
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;         ///< every rank is a client of the launcher's store
  std::string restart_count = "0";  ///< TORCHELASTIC_RESTART_COUNT: the store's key prefix
};

namespace detail {

inline std::optional<std::string> environment_value(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

/// The variable `name` as an integer in [low, high]; `fallback` when unset.
inline int environment_int(const char* name, int fallback, int low, int high) {
  const auto text = environment_value(name);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0 || value < low || value > high) {
    throw ConfigError(fmt::format(
        "the environment variable {}=\"{}\" is not a whole number in [{}, {}] (a launcher such as "
        "torchrun sets it)",
        name, *text, low, high));
  }
  return static_cast<int>(value);
}

}  // namespace detail

/// Reads the launch variables. Throws kokoro::ConfigError naming the
/// variable when one is malformed or they disagree (RANK ≥ WORLD_SIZE, a
/// group of several processes without RANK).
inline LaunchEnvironment read_launch_environment() {
  LaunchEnvironment env;
  env.launched = detail::environment_value("WORLD_SIZE").has_value();
  if (!env.launched) return env;
  constexpr int kMax = std::numeric_limits<int>::max();
  env.world_size = detail::environment_int("WORLD_SIZE", 1, 1, kMax);
  if (env.world_size > 1 && !detail::environment_value("RANK")) {
    throw ConfigError(fmt::format(
        "WORLD_SIZE={} is set but RANK is not: start each process with its RANK (torchrun sets "
        "both)",
        env.world_size));
  }
  env.rank = detail::environment_int("RANK", 0, 0, env.world_size - 1);
  env.local_rank = detail::environment_int("LOCAL_RANK", 0, 0, kMax);
  if (const auto addr = detail::environment_value("MASTER_ADDR"); addr && !addr->empty()) {
    env.master_addr = *addr;
  }
  env.master_port = detail::environment_int("MASTER_PORT", env.master_port, 1, 65535);
  env.agent_store = detail::environment_value("TORCHELASTIC_USE_AGENT_STORE") == "True";
  if (const auto count = detail::environment_value("TORCHELASTIC_RESTART_COUNT")) {
    env.restart_count = *count;
  }
  return env;
}

}  // namespace kokoro
