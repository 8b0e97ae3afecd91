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
