// Value rules for configuration fields. A rule returns nothing when the value
// is acceptable and otherwise the rule it broke, in words ("must be > 0").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kokoro::rule {

/// value > 0
struct Positive {
  template <class T>
  std::optional<std::string> operator()(const T& v) const {
    if (v > T{}) return std::nullopt;
    return "must be > 0";
  }
};

/// value >= 0
struct NonNegative {
  template <class T>
  std::optional<std::string> operator()(const T& v) const {
    if (v >= T{}) return std::nullopt;
    return "must be >= 0";
  }
};

/// low <= value <= high, or low <= value < high when `open_high`.
struct InRange {
  double low;
  double high;
  bool open_high = false;
  template <class T>
  std::optional<std::string> operator()(const T& v) const {
    const auto x = static_cast<double>(v);
    const bool ok = x >= low && (open_high ? x < high : x <= high);
    if (ok) return std::nullopt;
    return fmt::format("must be in [{}, {}{}", low, high, open_high ? ")" : "]");
  }
};

/// The value is one of a fixed set of words.
struct OneOf {
  std::vector<std::string_view> choices;
  std::optional<std::string> operator()(const std::string& v) const {
    for (auto c : choices) {
      if (c == v) return std::nullopt;
    }
    return fmt::format("must be one of: {}", fmt::join(choices, ", "));
  }
};

/// A string that is not empty.
struct NotEmpty {
  std::optional<std::string> operator()(const std::string& v) const {
    if (!v.empty()) return std::nullopt;
    return "must not be empty";
  }
};

inline constexpr Positive positive{};
inline constexpr NonNegative non_negative{};
inline const NotEmpty not_empty{};

}  // namespace kokoro::rule
