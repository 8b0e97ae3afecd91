// The parameters' gradients all-reduced while backward is still running, as
// PyTorch DDP's C++ c10d::Reducer does it: the parameters are grouped into
// buckets in the reverse of their order (roughly the order backward finishes
// them; the first bucket small, so that communication starts early), a post
// hook on each parameter's gradient accumulator marks it ready, and a bucket
// whose parameters are all ready is flattened and its all-reduce started at
// once, in bucket order on every rank, while backward goes on.
//
// Written here rather than taken from c10d::Reducer, which libtorch_cpu does
// export: the Reducer averages by world size, so each rank's gradient would
// weigh the same whatever its samples, and it has no way back from a backward
// that stops half way. Here each rank's gradient is weighted by its samples,
// and a step whose overlap cannot be trusted is reduced again, after
// backward, from the gradients themselves, which the buckets never touch:
//   - a backward abandoned for an out-of-memory retry (some buckets already
//     went out with part of the gradient);
//   - a parameter whose gradient grew after its bucket went out (it reached
//     the accumulator twice, as with a weight shared across checkpointed
//     segments).
// Either rank's reason counts for all: the ranks agree on it in the small
// collective that ends every step. What the buckets carried is copied into
// the gradients only when no rank had a reason.
//
// Parameters without a gradient are left as DDP leaves them: a frozen one
// (requires_grad false when tracking starts) is in no bucket and never
// touched; one that no rank used in a step keeps an undefined gradient, so
// the optimizer skips it as one process would (the same small collective
// carries which parameters each rank used). Every tensor handed to the
// process group lives on its device (`Options::device`: the CPU for Gloo,
// the rank's GPU for NCCL, which refuses anything else).
#pragma once

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kokoro/distributed/collective_group.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

/// What the overlap achieved, over the steps so far.
struct GradientOverlapReport {
  std::int64_t steps = 0;
  std::int64_t buckets = 0;  ///< buckets per step
  /// Buckets whose all-reduce started while backward was running; the rest
  /// started after it (a parameter without a gradient holds its bucket back).
  std::int64_t started_in_backward = 0;
  std::int64_t started_after_backward = 0;
  /// Steps reduced again after backward, by any rank's reason (see above).
  std::int64_t redone_steps = 0;
};

class GradientBuckets {
 public:
  /// Buckets hold at most `bucket_bytes` of one dtype and device, the
  /// first at most `first_bucket_bytes` (DDP: 25 MiB and 1 MiB).
  struct Options {
    std::int64_t bucket_bytes = std::int64_t{25} << 20;
    std::int64_t first_bucket_bytes = std::int64_t{1} << 20;
    std::chrono::milliseconds timeout{600000};
    /// Where the process group takes its tensors (Gloo: the CPU, also for
    /// CUDA parameters; NCCL: the rank's GPU).
    torch::Device device = torch::kCPU;
    /// Called with a bucket's index just before it is flattened and sent. A
    /// throw from here is what an out-of-memory error in the bucket does:
    /// the fault-injection tests use it.
    std::function<void(std::size_t)> before_start{};
  };
  /// Turns a failed collective (what, cause) into the error the run reports.
  using Failure = std::function<Error(const std::string&, const std::exception&)>;

  GradientBuckets(c10::intrusive_ptr<CollectiveGroup> group,
                  const std::vector<torch::Tensor>& parameters, Options options, Failure failure)
      : state_(std::make_shared<State>()), options_(options), failure_(std::move(failure)) {
    state_->group = std::move(group);
    state_->device = options.device;
    state_->before_start = options.before_start;
    for (const auto& p : parameters) {
      (p.requires_grad() ? state_->params : frozen_).push_back(p);
    }
    plan();
    hook();
  }

  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  ~GradientBuckets() {
    // Hooks outlive this object in the accumulators (libtorch cannot be
    // made to drop them all); they hold only a weak pointer to the state.
    for (std::size_t i = 0; i < accumulators_.size(); ++i) {
      if (accumulators_[i]) accumulators_[i]->del_post_hook(hook_keys_[i]);
    }
  }

  /// The next backward is the step's last: its ready gradients are final
  /// and go out, each rank's weighted by `weight` (its samples). Ignored
  /// after `abandon()` in the same step.
  void expect_last_backward(double weight) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    auto& s = *state_;
    if (s.abandoned) return;
    s.reset_step();
    s.weight = weight;
    s.armed = true;
  }

  /// The armed backward failed (out of memory) and the step is being run
  /// again: what went out cannot be trusted; the step is reduced again.
  void abandon() {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (!state_->armed) return;
    state_->armed = false;
    state_->abandoned = true;
  }

  /// After backward: every gradient becomes the sum over the ranks of
  /// gradient x weight (an undefined one counts as zeros; one undefined on
  /// every rank stays undefined), and `totals` (a 1-d tensor, on any device)
  /// its sum over the ranks, returned as a double tensor where `totals` was.
  torch::Tensor finish(double weight, const torch::Tensor& totals) {
    auto& s = *state_;
    for (const auto& p : frozen_) {
      if (p.grad().defined()) {
        throw Error(
            "data parallel: a parameter that was frozen (requires_grad false) when the ranks "
            "began has a gradient now; its gradient would not be shared between the ranks. "
            "Unfreeze parameters before training starts, or start a new run for the new stage");
      }
    }
    std::unique_lock<std::mutex> lock(s.mutex);
    s.armed = false;
    if (!s.started_any) s.weight = weight;  // no hook fired: nothing was armed
    // `next` moves past a bucket only once it went out: a bucket that threw
    // in backward goes out here, so every rank sends every bucket.
    for (; s.next < s.buckets.size(); ++s.next) s.start(s.next, false);
    bool redo = s.abandoned || s.stale || s.weight != weight;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& b : s.buckets) works.push_back(std::exchange(b.work, {}));
    lock.unlock();
    for (auto& w : works) wait("all_reduce", w);

    // The totals, whether any rank wants the step reduced again, and which
    // parameters each rank used, in one collective.
    const auto sums = totals.to(torch::kCPU, torch::kDouble).reshape({-1});
    const auto n_totals = sums.numel();
    auto used = torch::empty({static_cast<std::int64_t>(s.params.size())}, torch::kDouble);
    auto* used_flags = used.data_ptr<double>();
    for (std::size_t i = 0; i < s.params.size(); ++i) {
      used_flags[i] = s.params[i].grad().defined() ? 1.0 : 0.0;
    }
    std::vector<torch::Tensor> agreed{
        torch::cat({sums, torch::full({1}, redo ? 1.0 : 0.0, torch::kDouble), used}).to(s.device)};
    wait("all_reduce", s.group->allreduce(agreed, sum()));
    const auto reduced = agreed[0].to(torch::kCPU);
    const auto* values = reduced.data_ptr<double>();
    redo = values[n_totals] > 0.0;
    s.used_anywhere.assign(s.params.size(), false);
    for (std::size_t i = 0; i < s.params.size(); ++i) {
      s.used_anywhere[i] = values[n_totals + 1 + static_cast<std::int64_t>(i)] > 0.0;
    }

    ++report_.steps;
    report_.started_in_backward += s.started_in_backward;
    report_.started_after_backward +=
        static_cast<std::int64_t>(s.buckets.size()) - s.started_in_backward;
    if (redo) {
      ++report_.redone_steps;
      for (std::size_t b = 0; b < s.buckets.size(); ++b) {
        s.buckets[b].flat = s.flatten(b, weight);
        std::vector<torch::Tensor> one{s.buckets[b].flat};
        wait("all_reduce", s.group->allreduce(one, sum()));
      }
    }
    for (std::size_t b = 0; b < s.buckets.size(); ++b) s.scatter(b);
    lock.lock();
    s.reset_step();
    s.abandoned = false;
    return reduced.narrow(0, 0, n_totals).to(totals.device());
  }

  /// Replaces Options::before_start.
  void set_before_start(std::function<void(std::size_t)> hook) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->before_start = std::move(hook);
  }

  /// The parameters that get buckets (those that required a gradient when
  /// tracking started).
  std::size_t tracked() const { return state_->params.size(); }

  GradientOverlapReport report() const {
    auto r = report_;
    r.buckets = static_cast<std::int64_t>(state_->buckets.size());
    return r;
  }

 private:
  struct Bucket {
    std::vector<std::size_t> members;  // indices into params
    std::size_t waiting = 0;           // members not ready yet
    bool started = false;
    torch::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };

  struct State {
    std::mutex mutex;
    c10::intrusive_ptr<CollectiveGroup> group;
    torch::Device device = torch::kCPU;
    std::function<void(std::size_t)> before_start{};
    std::vector<torch::Tensor> params;
    std::vector<bool> used_anywhere;  // by the step being finished, on any rank
    std::vector<std::size_t> bucket_of;
    std::vector<Bucket> buckets;
    std::vector<bool> ready;
    std::size_t next = 0;  // the next bucket to start; buckets start in order
    bool armed = false;
    bool abandoned = false;
    bool stale = false;
    bool started_any = false;
    double weight = 1.0;
    std::int64_t started_in_backward = 0;

    void reset_step() {
      ready.assign(params.size(), false);
      for (auto& b : buckets) {
        b.waiting = b.members.size();
        b.started = false;
        b.flat = torch::Tensor();
        b.work.reset();
      }
      next = 0;
      armed = false;
      stale = false;
      started_any = false;
      started_in_backward = 0;
    }

    /// The hook of parameter i's accumulator: its gradient is complete for
    /// this backward.
    void on_ready(std::size_t i) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!armed) return;
      auto& bucket = buckets[bucket_of[i]];
      if (ready[i]) {
        // Accumulated again: fine unless its bucket already went out.
        if (bucket.started) stale = true;
        return;
      }
      ready[i] = true;
      --bucket.waiting;
      // Past a bucket only once it went out (see finish).
      for (; next < buckets.size() && buckets[next].waiting == 0; ++next) start(next, true);
    }

    torch::Tensor flatten(std::size_t b, double w) const {
      std::vector<torch::Tensor> parts;
      for (const auto i : buckets[b].members) {
        const auto& g = params[i].grad();
        parts.push_back(g.defined() ? g.reshape({-1})
                                    : torch::zeros({params[i].numel()}, params[i].options()));
      }
      auto flat = torch::cat(parts).mul_(w);
      return flat.device() == device ? flat : flat.to(device);
    }

    /// Sends bucket b; changes nothing when it throws.
    void start(std::size_t b, bool in_backward) {
      auto& bucket = buckets[b];
      if (before_start) before_start(b);
      auto flat = flatten(b, weight);
      std::vector<torch::Tensor> one{flat};
      bucket.work = group->allreduce(one, sum());
      bucket.flat = std::move(flat);
      bucket.started = true;
      started_any = true;
      if (in_backward) ++started_in_backward;
    }

    /// The bucket's sums into its parameters' gradients; a parameter no
    /// rank used keeps its undefined gradient.
    void scatter(std::size_t b) {
      torch::NoGradGuard no_grad;
      auto& bucket = buckets[b];
      std::int64_t offset = 0;
      for (const auto i : bucket.members) {
        auto& p = params[i];
        const auto n = p.numel();
        auto part = bucket.flat.narrow(0, offset, n).view(p.sizes());
        offset += n;
        if (!used_anywhere[i]) continue;
        auto& grad = p.mutable_grad();
        if (!grad.defined()) grad = torch::empty_like(p);
        grad.copy_(part);
      }
    }
  };

  static c10d::AllreduceOptions sum() {
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    return options;
  }

  void wait(const char* what, const c10::intrusive_ptr<c10d::Work>& work) {
    if (!work) return;
    try {
      work->wait(options_.timeout);
    } catch (const std::exception& e) {
      throw failure_(what, e);
    }
  }

  /// Buckets over the parameters in reverse order, by dtype and device.
  void plan() {
    auto& s = *state_;
    const auto n = s.params.size();
    s.bucket_of.assign(n, 0);
    std::int64_t cap = options_.first_bucket_bytes;
    std::int64_t bytes = 0;
    for (std::size_t k = n; k-- > 0;) {
      const auto& p = s.params[k];
      const auto size = p.numel() * static_cast<std::int64_t>(p.element_size());
      const bool fits = !s.buckets.empty() && bytes + size <= cap &&
                        same_kind(s.params[s.buckets.back().members.front()], p);
      if (!fits) {
        if (!s.buckets.empty()) cap = options_.bucket_bytes;
        s.buckets.emplace_back();
        bytes = 0;
      }
      s.buckets.back().members.push_back(k);
      s.bucket_of[k] = s.buckets.size() - 1;
      bytes += size;
    }
    s.reset_step();
  }

  void hook() {
    auto& s = *state_;
    for (std::size_t i = 0; i < s.params.size(); ++i) {
      std::shared_ptr<torch::autograd::Node> accumulator =
          torch::autograd::impl::grad_accumulator(s.params[i]);
      std::uintptr_t key = 0;
      if (accumulator) {
        std::weak_ptr<State> weak = state_;
        key = accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [weak, i](const torch::autograd::variable_list& outputs,
                      const torch::autograd::variable_list&) {
              if (auto state = weak.lock()) state->on_ready(i);
              return outputs;
            }));
      }
      // Held, so that every backward reaches this accumulator and its hook
      // (a parameter keeps only a weak pointer to it).
      accumulators_.push_back(std::move(accumulator));
      hook_keys_.push_back(key);
    }
  }

  static bool same_kind(const torch::Tensor& a, const torch::Tensor& b) {
    return a.scalar_type() == b.scalar_type() && a.device() == b.device();
  }

  std::shared_ptr<State> state_;
  std::vector<torch::Tensor> frozen_;  // in no bucket: they must stay without a gradient
  Options options_;
  Failure failure_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<std::uintptr_t> hook_keys_;
  GradientOverlapReport report_;
};

}  // namespace kokoro
