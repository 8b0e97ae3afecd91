// The task role: what is trained. A task owns the model, provides batches and
// computes the loss. The Trainer handles everything else (devices, steps,
// scaling, clipping, schedules, logging).
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <ranges>
#include <vector>

#include "kokoro/core/loss.hpp"
#include "kokoro/core/training_config.hpp"

namespace kokoro {

/// A batch: a value that moves to a device and knows its sample count.
///  - `Batch to(torch::Device) const`
///  - `std::int64_t size() const`: samples in the batch (weights accumulation)
/// Optional: `Batch slice(std::int64_t begin, std::int64_t end) const`, the
/// samples [begin, end): lets the Trainer recover from out-of-memory errors
/// by running the batch in pieces.
template <class B>
concept BatchType = std::copy_constructible<B> && requires(const B& b, c10::Device d) {
  { b.to(d) } -> std::convertible_to<B>;
  { b.size() } -> std::convertible_to<std::int64_t>;
};

namespace detail::task {
template <class T>
concept has_batch = requires {
  typename T::Batch;
};
template <class T>
concept has_model = requires(T& t) {
  { t.model() } -> std::convertible_to<torch::nn::Module&>;
};
template <class T>
concept has_loss = requires(T& t, const typename T::Batch& b) {
  { t.loss(b) } -> std::same_as<Loss>;
};
template <class R, class B>
concept range_of =
    std::ranges::input_range<R> && std::convertible_to<std::ranges::range_reference_t<R>, B>;
template <class T>
concept has_train_data = requires(T& t, std::int64_t epoch) {
  { t.train_data(epoch) } -> range_of<typename T::Batch>;
};
}  // namespace detail::task

/// A task.
///  - `using Batch = ...;` satisfying kokoro::BatchType.
///  - `torch::nn::Module& model()`: the model; the Trainer moves it to the
///    device, switches train/eval mode and optimises its parameters.
///  - `kokoro::Loss loss(const Batch&)`: forward pass and loss on a batch that
///    is already on the device.
///  - `train_data(std::int64_t epoch)`: a range of Batch for that epoch (the
///    epoch lets a task reshuffle deterministically).
/// Optional: `valid_data()`: a range of Batch for validation;
/// `using ConfigSections = ...;`: the task's own configuration sections (the
/// run then reads kokoro::RunConfig<ConfigSections>, see task_config_t);
/// `make_optimizer(const kokoro::TrainingConfig&)`: a
/// std::unique_ptr<torch::optim::Optimizer> replacing the default AdamW;
/// `void media(kokoro::Media&, std::int64_t epoch)`: samples for the loggers
/// (a predicted mel as an image, its audio), called in eval mode without
/// gradients every `logging.media_every_epochs` epochs, whether or not a
/// logger renders them (a task may also write them to disk);
/// `void adapt_to_memory(const kokoro::MemoryState&)`: hears the memory's
/// state before the first step, when pressure starts or ends and after an
/// out-of-memory step (see MemoryState in kokoro/core/context.hpp).
/// A task constructible from its configuration (`const task_config_t<T>&`) is built by the
/// Trainer after seeding, so its initial weights are reproducible.
template <class T>
concept Task = detail::task::has_batch<T> && BatchType<typename T::Batch> &&
    detail::task::has_model<T> && detail::task::has_loss<T> && detail::task::has_train_data<T>;

namespace detail::task {
template <class T>
struct config_of {
  using type = TrainingConfig;
};
template <class T>
requires requires { typename T::ConfigSections; }
struct config_of<T> {
  using type = RunConfig<typename T::ConfigSections>;
};
}  // namespace detail::task

/// The configuration a run of task T reads: TrainingConfig, plus the task's
/// own sections when it names them (`using ConfigSections = ...;`, a struct
/// with a static `sections()`, see core/training_config.hpp).
template <class T>
using task_config_t = typename detail::task::config_of<T>::type;

/// Whether a batch can be cut into pieces (for out-of-memory recovery).
template <class B>
concept SliceableBatch = requires(const B& b, std::int64_t i) {
  { b.slice(i, i) } -> std::convertible_to<B>;
};

/// Fails to compile, naming the first missing member, when T is not a Task.
template <class T>
constexpr bool check_task() {
  static_assert(detail::task::has_batch<T>,
                "kokoro: the task needs a member type `Batch` (see kokoro/core/task.hpp)");
  if constexpr (detail::task::has_batch<T>) {
    static_assert(BatchType<typename T::Batch>,
                  "kokoro: the task's Batch needs `Batch to(torch::Device) const` and "
                  "`std::int64_t size() const` (see kokoro/core/task.hpp)");
    static_assert(detail::task::has_loss<T>,
                  "kokoro: the task needs `kokoro::Loss loss(const Batch&)` "
                  "(see kokoro/core/task.hpp)");
    static_assert(detail::task::has_train_data<T>,
                  "kokoro: the task needs `train_data(std::int64_t epoch)` returning a range of "
                  "Batch (see kokoro/core/task.hpp)");
  }
  static_assert(detail::task::has_model<T>,
                "kokoro: the task needs `torch::nn::Module& model()` (see kokoro/core/task.hpp)");
  return true;
}

namespace archetype {

/// The smallest task: copy it to start your own.
struct Task {
  struct Batch {
    torch::Tensor inputs;
    Batch to(c10::Device device) const { return {inputs.to(device)}; }
    std::int64_t size() const { return inputs.size(0); }
  };
  torch::nn::Module& model() { return model_; }
  Loss loss(const Batch& batch) { return {batch.inputs.mean(), {}}; }
  std::vector<Batch> train_data(std::int64_t /*epoch*/) { return {}; }

 private:
  torch::nn::Module model_;
};
static_assert(kokoro::Task<Task>);

}  // namespace archetype
}  // namespace kokoro
