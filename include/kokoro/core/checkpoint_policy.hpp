// The checkpoint role: where the Trainer's state dicts (core/state_io.hpp)
// are stored and found again. The Trainer decides when to save and what goes
// in; the policy decides file names, formats, rotation and what "valid"
// means. kokoro::CheckpointManager (checkpoint/) is the default.
#pragma once

#include <concepts>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kokoro/core/state_io.hpp"

namespace kokoro {

namespace detail::checkpoints {
template <class C>
concept has_save_periodic = requires(const C& c, std::int64_t step, const IValueDict& d) {
  { c.save_periodic(step, d) } -> std::convertible_to<std::filesystem::path>;
};
template <class C>
concept has_save_best = requires(const C& c, const IValueDict& d) {
  c.save_best(d);
};
template <class C>
concept has_save_final = requires(const C& c, const IValueDict& state, const IValueDict& weights) {
  { c.save_final(state, weights) } -> std::convertible_to<std::filesystem::path>;
};
template <class C>
concept has_latest_valid = requires(const C& c, std::vector<std::string>* rejected) {
  { c.latest_valid(rejected) } -> std::convertible_to<std::optional<std::filesystem::path>>;
};
template <class C>
concept has_load = requires(const C& c, const std::filesystem::path& path) {
  { c.load(path) } -> std::convertible_to<IValueDict>;
};
}  // namespace detail::checkpoints

/// A checkpoint store.
///  - `path save_periodic(std::int64_t global_step, const IValueDict&) const`:
///    a checkpoint to resume from; older ones may be rotated away.
///  - `void save_best(const IValueDict&) const`: the best epoch so far.
///  - `path save_final(const IValueDict& state, const IValueDict& weights) const`:
///    the end of a run (full state, and the weights alone for inference).
///  - `std::optional<path> latest_valid(std::vector<std::string>* rejected) const`:
///    the newest checkpoint to resume from (`training.resume: auto`),
///    appending why each newer one was refused.
///  - `IValueDict load(const path&) const`: throws kokoro::Error naming the
///    file when it is damaged.
/// Failing saves throw; the store must leave the last good file intact.
template <class C>
concept CheckpointPolicy = detail::checkpoints::has_save_periodic<C> &&
    detail::checkpoints::has_save_best<C> && detail::checkpoints::has_save_final<C> &&
    detail::checkpoints::has_latest_valid<C> && detail::checkpoints::has_load<C>;

/// Fails to compile, naming the first missing member, when C is not a CheckpointPolicy.
template <class C>
constexpr bool check_checkpoint_policy() {
  static_assert(detail::checkpoints::has_save_periodic<C>,
                "kokoro: the checkpoint policy needs `std::filesystem::path "
                "save_periodic(std::int64_t, const kokoro::IValueDict&) const` "
                "(see kokoro/core/checkpoint_policy.hpp)");
  static_assert(detail::checkpoints::has_save_best<C>,
                "kokoro: the checkpoint policy needs `void save_best(const kokoro::IValueDict&) "
                "const` (see kokoro/core/checkpoint_policy.hpp)");
  static_assert(detail::checkpoints::has_save_final<C>,
                "kokoro: the checkpoint policy needs `std::filesystem::path save_final(const "
                "kokoro::IValueDict&, const kokoro::IValueDict&) const` "
                "(see kokoro/core/checkpoint_policy.hpp)");
  static_assert(detail::checkpoints::has_latest_valid<C>,
                "kokoro: the checkpoint policy needs `std::optional<std::filesystem::path> "
                "latest_valid(std::vector<std::string>*) const` "
                "(see kokoro/core/checkpoint_policy.hpp)");
  static_assert(detail::checkpoints::has_load<C>,
                "kokoro: the checkpoint policy needs `kokoro::IValueDict load(const "
                "std::filesystem::path&) const` (see kokoro/core/checkpoint_policy.hpp)");
  return true;
}

namespace archetype {

/// The smallest checkpoint store: keeps nothing, finds nothing. Copy it to
/// start your own.
struct Checkpoints {
  std::filesystem::path save_periodic(std::int64_t, const IValueDict&) const { return {}; }
  void save_best(const IValueDict&) const {}
  std::filesystem::path save_final(const IValueDict&, const IValueDict&) const { return {}; }
  std::optional<std::filesystem::path> latest_valid(std::vector<std::string>*) const {
    return std::nullopt;
  }
  IValueDict load(const std::filesystem::path&) const { return make_ivalue_dict(); }
};
static_assert(CheckpointPolicy<Checkpoints>);

}  // namespace archetype
}  // namespace kokoro
