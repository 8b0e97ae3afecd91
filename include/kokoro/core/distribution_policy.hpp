// The distribution role: how many processes train together and how they
// combine their work. The Trainer asks it to start every rank from rank 0's
// weights, to sum tensors across ranks (gradients weighted by each rank's
// samples, the step's finiteness, validation sums), and to hand rank 0's
// decisions (the run folder, the checkpoint to resume) to the others; only
// the rank that `writes()` logs and saves.
//
// SingleProcess, the default when a policy bundle names none, is one process:
// every call returns at once and the Trainer compiles the collectives away
// (`world_size()` is a constant 1). kokoro::DataParallel
// (distributed/data_parallel.hpp) runs over PyTorch's c10d.
#pragma once

#include <torch/types.h>

#include <concepts>
#include <string>
#include <vector>

namespace kokoro {

namespace detail::distribution {
template <class D>
concept has_rank = requires(const D& d) {
  { d.rank() } -> std::convertible_to<int>;
  { d.world_size() } -> std::convertible_to<int>;
};
template <class D>
concept has_sum = requires(D& d, std::vector<torch::Tensor>& tensors) {
  d.all_reduce_sum(tensors);
};
template <class D>
concept has_broadcast = requires(D& d, std::vector<torch::Tensor>& tensors) {
  d.broadcast(tensors);
};
template <class D>
concept has_share = requires(D& d, const std::string& key, const std::string& value) {
  { d.share(key, value) } -> std::convertible_to<std::string>;
};
/// The optional gradient protocol: a policy that has it gets the step's
/// gradients through it instead of all_reduce_sum, and may send them while
/// backward runs.
template <class D>
concept reduces_gradients = requires(D& d, const std::vector<torch::Tensor>& parameters,
                                     double weight, const torch::Tensor& totals) {
  d.track_gradients(parameters);
  d.expect_last_backward(weight);
  d.abandon_backward();
  { d.finish_gradients(weight, totals) } -> std::convertible_to<torch::Tensor>;
};
}  // namespace detail::distribution

/// A distribution policy.
///  - `int rank() const`, `int world_size() const`: this process among all.
///  - `void all_reduce_sum(std::vector<torch::Tensor>&)`: each tensor
///    becomes its sum over the ranks, in place (every rank passes tensors of
///    the same shapes and dtypes in the same order).
///  - `void broadcast(std::vector<torch::Tensor>&)`: every rank's tensors
///    become rank 0's, in place.
///  - `std::string share(const std::string& key, const std::string& value)`:
///    rank 0's `value` for `key`, on every rank (a rendezvous for small
///    decisions such as the run folder's name).
/// Optionally, to overlap the gradients' all-reduce with backward (as
/// DataParallel does):
///  - `void track_gradients(const std::vector<torch::Tensor>& parameters)`,
///    once, with the optimizer's parameters;
///  - `void expect_last_backward(double weight)`: the next backward is the
///    step's last, and this rank's gradients weigh `weight`;
///  - `void abandon_backward()`: that backward failed (out of memory) and
///    the step's micro-batches run again;
///  - `torch::Tensor finish_gradients(double weight, const torch::Tensor&
///    totals)`: after backward, every gradient becomes the sum over the
///    ranks of gradient x weight, and the returned tensor is `totals`
///    summed over the ranks.
template <class D>
concept DistributionPolicy =
    detail::distribution::has_rank<D> && detail::distribution::has_sum<D> &&
    detail::distribution::has_broadcast<D> && detail::distribution::has_share<D>;

/// Fails to compile, naming the first missing member, when D is not a
/// DistributionPolicy.
template <class D>
constexpr bool check_distribution_policy() {
  static_assert(detail::distribution::has_rank<D>,
                "kokoro: the distribution policy needs `int rank() const` and "
                "`int world_size() const` (see kokoro/core/distribution_policy.hpp)");
  static_assert(detail::distribution::has_sum<D>,
                "kokoro: the distribution policy needs "
                "`void all_reduce_sum(std::vector<torch::Tensor>&)` "
                "(see kokoro/core/distribution_policy.hpp)");
  static_assert(detail::distribution::has_broadcast<D>,
                "kokoro: the distribution policy needs "
                "`void broadcast(std::vector<torch::Tensor>&)` "
                "(see kokoro/core/distribution_policy.hpp)");
  static_assert(detail::distribution::has_share<D>,
                "kokoro: the distribution policy needs "
                "`std::string share(const std::string& key, const std::string& value)` "
                "(see kokoro/core/distribution_policy.hpp)");
  return true;
}

/// One process, and the archetype of the role: copy it to start your own.
/// `world_size()` is constexpr, so the Trainer's collectives vanish.
struct SingleProcess {
  static constexpr int rank() { return 0; }
  static constexpr int world_size() { return 1; }
  void all_reduce_sum(std::vector<torch::Tensor>&) {}
  void broadcast(std::vector<torch::Tensor>&) {}
  std::string share(const std::string&, const std::string& value) { return value; }
};
static_assert(DistributionPolicy<SingleProcess>);

}  // namespace kokoro
