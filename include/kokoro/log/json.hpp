// Just enough JSON writing for the loggers: strings escaped per RFC 8259,
// numbers (NaN and infinities become null, as JSON has neither), flat objects,
// and the wall-clock timestamp (Unix seconds) every logger's rows carry.
#pragma once

#include <chrono>
#include <cmath>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "kokoro/core/metrics.hpp"

namespace kokoro {

namespace detail {

inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(ch));
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

/// JSON has no NaN or infinity: those become null.
inline std::string json_number(double value) {
  return std::isfinite(value) ? fmt::format("{}", value) : "null";
}

inline std::string json_object(const Metrics& metrics) {
  std::string out = "{";
  for (const auto& [name, value] : metrics) {
    if (out.size() > 1) out += ",";
    out += json_string(name) + ":" + json_number(value);
  }
  return out + "}";
}

/// Seconds since the Unix epoch, as the "time" of JSONL rows, TensorBoard
/// events and W&B history rows.
inline double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace detail

}  // namespace kokoro
