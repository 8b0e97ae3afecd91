// Metrics: an ordered list of named scalars handed to loggers. Plain values
// (no tensors), so loggers and tests need no torch headers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kokoro {

/// Named scalars in insertion order ("loss", "loss/mel", "lr", ...).
/// Setting an existing name replaces its value in place.
class Metrics {
 public:
  using Entry = std::pair<std::string, double>;

  void set(std::string_view name, double value) {
    for (auto& [key, v] : entries_) {
      if (key == name) {
        v = value;
        return;
      }
    }
    entries_.emplace_back(std::string(name), value);
  }

  [[nodiscard]] std::optional<double> get(std::string_view name) const {
    for (const auto& [key, v] : entries_) {
      if (key == name) return v;
    }
    return std::nullopt;
  }

  /// Copies every entry of `other` in, with `prefix` in front of its name.
  void merge(const Metrics& other, std::string_view prefix = {}) {
    for (const auto& [key, v] : other.entries_) set(std::string(prefix) + key, v);
  }

  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] auto begin() const { return entries_.begin(); }
  [[nodiscard]] auto end() const { return entries_.end(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace kokoro
