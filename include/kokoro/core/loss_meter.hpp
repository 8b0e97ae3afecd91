// LossMeter: sample-weighted running means of a task's losses. The sums stay
// on the device in one tensor ([total, part 1, part 2, ...]); adding a batch
// costs three small tensor ops and `mean()` reads everything back at once,
// so logging costs one device synchronisation, not one per component.
#pragma once

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kokoro/core/loss.hpp"
#include "kokoro/core/metrics.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

class LossMeter {
 public:
  /// Adds one batch's loss, weighted by its sample count. Every batch must
  /// report the same parts, in the same order.
  void add(const Loss& loss, std::int64_t samples) {
    if (names_.empty()) {
      names_.emplace_back("loss");
      for (const auto& part : loss.parts) names_.push_back("loss/" + part.first);
    } else {
      check_parts(loss);
    }
    std::vector<torch::Tensor> values;
    values.reserve(loss.parts.size() + 1);
    values.push_back(as_float(loss.total));
    for (const auto& part : loss.parts) values.push_back(as_float(part.second));
    auto weighted = torch::stack(values).mul_(static_cast<double>(samples));
    if (sums_.defined()) {
      sums_.add_(weighted);
    } else {
      sums_ = weighted;
    }
    samples_ += samples;
  }

  /// Adds everything another meter has collected (same parts).
  void add(const LossMeter& other) {
    if (other.samples_ == 0) return;
    if (!sums_.defined()) {
      names_ = other.names_;
      sums_ = other.sums_.clone();
    } else {
      if (names_ != other.names_) throw Error("LossMeter: merging meters with different parts");
      sums_.add_(other.sums_);
    }
    samples_ += other.samples_;
  }

  /// Sample-weighted means: "loss" then "loss/<part>" in the task's order.
  [[nodiscard]] Metrics mean() const {
    Metrics m;
    if (samples_ == 0) return m;
    const auto host = sums_.to(torch::kCPU, torch::kDouble);
    const auto* values = host.data_ptr<double>();
    for (std::size_t i = 0; i < names_.size(); ++i) {
      m.set(names_[i], values[i] / static_cast<double>(samples_));
    }
    return m;
  }

  [[nodiscard]] std::int64_t samples() const { return samples_; }

  /// Takes another meter's parts with nothing added (zero sums, zero
  /// samples), so that a rank with no batch of its own brings the same
  /// tensor to sum_across as the others.
  void add_parts_of(const LossMeter& other) {
    if (!other.sums_.defined() || sums_.defined()) return;
    names_ = other.names_;
    sums_ = torch::zeros_like(other.sums_);
  }

  /// The sums and the sample count over every rank: `all_reduce_sum` (the
  /// distribution policy's) adds up a vector of tensors in place. Every rank
  /// must call it, each with the same parts.
  template <class AllReduceSum>
  void sum_across(AllReduceSum&& all_reduce_sum) {
    if (!sums_.defined()) return;
    const auto parts = sums_.numel();
    std::vector<torch::Tensor> packed{
        torch::cat({sums_.detach().to(torch::kCPU, torch::kDouble).reshape({-1}),
                    torch::tensor({static_cast<double>(samples_)}, torch::kDouble)})};
    all_reduce_sum(packed);
    sums_ = packed[0].narrow(0, 0, parts).to(sums_.options()).view_as(sums_);
    samples_ = static_cast<std::int64_t>(std::llround(packed[0][parts].item<double>()));
  }

  /// The sample-weighted sum of the total loss, on the device (a 0-dim
  /// tensor; 0 before anything was added): read it without a sync.
  [[nodiscard]] torch::Tensor total_sum() const {
    return sums_.defined() ? sums_[0] : torch::zeros({});
  }

  void reset() {
    names_.clear();
    sums_ = torch::Tensor();
    samples_ = 0;
  }

 private:
  static torch::Tensor as_float(const torch::Tensor& t) {
    auto d = t.detach();
    return d.scalar_type() == torch::kFloat ? d : d.to(torch::kFloat);
  }

  void check_parts(const Loss& loss) const {
    bool same = loss.parts.size() + 1 == names_.size();
    for (std::size_t i = 0; same && i < loss.parts.size(); ++i) {
      same = names_[i + 1] == "loss/" + loss.parts[i].first;
    }
    if (!same) {
      std::vector<std::string> now;
      for (const auto& part : loss.parts) now.push_back(part.first);
      throw Error(fmt::format(
          "the task's loss parts changed between batches: first [{}], now [{}]; report the same "
          "parts in the same order for every batch",
          fmt::join(names_.begin() + 1, names_.end(), ", "), fmt::join(now, ", ")));
    }
  }

  std::vector<std::string> names_;
  torch::Tensor sums_;
  std::int64_t samples_ = 0;
};

}  // namespace kokoro
