// StateDict: the saved state of a policy (grad scaler, scheduler, ...) as
// named plain values, with PyTorch's key names where a policy mirrors a
// PyTorch class. No torch types, so pure policies stay torch-free; the
// checkpoint code converts it for torch's pickle format.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro {

using StateValue = std::variant<bool, std::int64_t, double, std::string, std::vector<double>,
                                std::vector<std::int64_t>, std::vector<std::string>>;
using StateDict = std::map<std::string, StateValue>;

/// The value under `key` as a T; throws kokoro::Error naming the key when it
/// is missing or of another type. An integer is accepted where a double is
/// expected (Python writes 2 for 2.0).
template <class T>
T state_get(const StateDict& state, const std::string& key) {
  const auto it = state.find(key);
  if (it == state.end()) throw Error(fmt::format("state dict: missing key '{}'", key));
  if (const auto* value = std::get_if<T>(&it->second)) return *value;
  if constexpr (std::is_same_v<T, double>) {
    if (const auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  }
  throw Error(fmt::format("state dict: key '{}' holds another type", key));
}

}  // namespace kokoro
