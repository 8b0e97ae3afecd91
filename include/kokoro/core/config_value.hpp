// One setting of a run as a typed value (section, key, doc, value): how a
// configuration is handed to code that must not know its type, such as a
// logger writing the run's settings. Plain data, no torch.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace kokoro {

struct ConfigValue {
  std::string section;
  std::string key;
  std::string doc;
  std::variant<bool, std::int64_t, double, std::string> value;
};

/// Every field of a configuration, in file order (see kokoro::config_values).
using ConfigValues = std::vector<ConfigValue>;

}  // namespace kokoro
