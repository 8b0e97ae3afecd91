// The loggers' JSON, on nlohmann-json: metrics as objects that keep their
// insertion order (rows read as they were logged), and the wall-clock
// timestamp (Unix seconds) every logger's rows carry.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "kokoro/core/metrics.hpp"

namespace kokoro {

/// A JSON value whose objects keep the order their keys were added in.
using Json = nlohmann::ordered_json;

namespace detail {

/// {"name": value, ...} in the metrics' order. Whole numbers (steps,
/// epochs, counts) are written as integers, as services such as W&B expect
/// of `_step`; nlohmann-json writes NaN and the infinities as null (JSON has
/// neither), so a diverged loss still makes a valid row.
inline Json json_object(const Metrics& metrics) {
  Json out = Json::object();
  for (const auto& [name, value] : metrics) {
    constexpr double exact_integers = 9007199254740992.0;  // 2^53
    if (std::isfinite(value) && value == std::trunc(value) && std::abs(value) < exact_integers) {
      out[name] = static_cast<std::int64_t>(value);
    } else {
      out[name] = value;
    }
  }
  return out;
}

/// Compact JSON text. Invalid UTF-8 (a metric or file name from anywhere)
/// is replaced rather than thrown: a log row must never stop a run.
inline std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// Seconds since the Unix epoch, as the "time" of JSONL rows, TensorBoard
/// events and W&B history rows.
inline double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace detail

}  // namespace kokoro
