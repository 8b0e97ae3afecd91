// Gradient (activation) checkpointing, which libtorch 1.13 lacks: a segment runs
// without keeping its intermediate activations and is recomputed during backward,
// one extra forward in exchange for the memory. Losses, gradients and dropout masks
// are those of running the segment directly.
#pragma once

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Generator.h>
#include <ATen/core/ivalue.h>
#include <c10/core/Device.h>
#include <c10/util/Optional.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "kokoro/util/autocast_state.hpp"

namespace kokoro::nn {

namespace detail {

/// The states of the default generators a segment may draw from: the CPU's, and
/// those of the CUDA devices its inputs live on (as torch.utils.checkpoint does).
struct RngState {
  at::Tensor cpu;
  std::vector<std::pair<c10::DeviceIndex, at::Tensor>> cuda;
};

/// The default generator of `device`. Goes through the Context so that no CUDA
/// header is needed; it is only asked for CUDA when an input is on CUDA, which
/// implies a CUDA build.
inline at::Generator default_generator(c10::Device device) {
  return at::globalContext().defaultGenerator(device);
}

// Generators are shared by every thread; their own mutex guards reading and
// writing the state, as torch.get_rng_state / set_rng_state do.
inline at::Tensor generator_state(at::Generator generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

inline void set_generator_state(at::Generator generator, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

inline RngState capture_rng(const std::vector<c10::DeviceIndex>& cuda_devices) {
  RngState state;
  state.cpu = generator_state(default_generator(c10::Device(c10::kCPU)));
  for (const auto index : cuda_devices) {
    state.cuda.emplace_back(index, generator_state(default_generator({c10::kCUDA, index})));
  }
  return state;
}

inline void restore_rng(const RngState& state) {
  set_generator_state(default_generator(c10::Device(c10::kCPU)), state.cpu);
  for (const auto& [index, cuda] : state.cuda) {
    set_generator_state(default_generator({c10::kCUDA, index}), cuda);
  }
}

/// The CUDA devices of `tensors`, each once.
inline std::vector<c10::DeviceIndex> cuda_devices(const torch::autograd::variable_list& tensors) {
  std::vector<c10::DeviceIndex> devices;
  for (const auto& t : tensors) {
    if (!t.defined() || !t.is_cuda()) continue;
    const auto index = t.device().index();
    if (std::find(devices.begin(), devices.end(), index) == devices.end()) devices.push_back(index);
  }
  return devices;
}

/// Puts the forward's RNG state in place for the recomputation and gives the
/// caller's back afterwards, so the recomputation draws the forward's dropout
/// masks without disturbing the random stream of the rest of the step.
class RngFork {
 public:
  explicit RngFork(const RngState& forward) : caller_(capture_rng(devices_of(forward))) {
    restore_rng(forward);
  }
  ~RngFork() { restore_rng(caller_); }

  RngFork(const RngFork&) = delete;
  RngFork& operator=(const RngFork&) = delete;

 private:
  static std::vector<c10::DeviceIndex> devices_of(const RngState& state) {
    std::vector<c10::DeviceIndex> devices;
    for (const auto& entry : state.cuda) devices.push_back(entry.first);
    return devices;
  }

  RngState caller_;
};

/// The thread's autocast settings for CPU and CUDA, and whether casts are cached.
struct AutocastState {
  bool cpu_enabled = false;
  at::ScalarType cpu_dtype = at::kBFloat16;
  bool cuda_enabled = false;
  at::ScalarType cuda_dtype = at::kHalf;
  bool cache_enabled = true;

  static AutocastState current() {
    return {
        autocast_state::enabled(c10::DeviceType::CPU), autocast_state::dtype(c10::DeviceType::CPU),
        autocast_state::enabled(c10::DeviceType::CUDA),
        autocast_state::dtype(c10::DeviceType::CUDA), at::autocast::is_autocast_cache_enabled()};
  }

  void apply() const {
    autocast_state::set_enabled(c10::DeviceType::CPU, cpu_enabled);
    autocast_state::set_dtype(c10::DeviceType::CPU, cpu_dtype);
    autocast_state::set_enabled(c10::DeviceType::CUDA, cuda_enabled);
    autocast_state::set_dtype(c10::DeviceType::CUDA, cuda_dtype);
    at::autocast::set_autocast_cache_enabled(cache_enabled);
  }
};

/// Turns autocast's cast cache off for its lifetime. Under no-grad, the fp32 to
/// low-precision copies of the weights carry no autograd history; cached, they
/// would be handed to later grad-mode uses of the same weights in the same autocast
/// region, which would then get no gradient.
class AutocastCacheOff {
 public:
  AutocastCacheOff() : was_enabled_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~AutocastCacheOff() { at::autocast::set_autocast_cache_enabled(was_enabled_); }

  AutocastCacheOff(const AutocastCacheOff&) = delete;
  AutocastCacheOff& operator=(const AutocastCacheOff&) = delete;

 private:
  bool was_enabled_;
};

/// Recomputes under the forward's autocast settings, entered like a nested
/// torch.autocast region (the cast cache is dropped when the outermost region
/// ends), then restores the caller's settings.
class AutocastReplay {
 public:
  explicit AutocastReplay(const AutocastState& forward) : caller_(AutocastState::current()) {
    forward.apply();
    at::autocast::increment_nesting();
  }
  ~AutocastReplay() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    caller_.apply();
  }

  AutocastReplay(const AutocastReplay&) = delete;
  AutocastReplay& operator=(const AutocastReplay&) = delete;

 private:
  AutocastState caller_;
};

/// What backward needs besides the saved inputs. The autograd context stores only
/// IValues, and a capsule is the IValue that holds an opaque C++ object; it never
/// leaves this process, so that capsules do not serialise does not matter here.
struct Segment : torch::CustomClassHolder {
  explicit Segment(
      std::function<torch::autograd::variable_list(const torch::autograd::variable_list&)> f)
      : fn(std::move(f)) {}

  /// The segment's inputs with the undefined ones put back where `slots` says.
  torch::autograd::variable_list expand(const torch::autograd::variable_list& defined) const {
    torch::autograd::variable_list all(slots.size());
    for (std::size_t i = 0, next = 0; i < slots.size(); ++i) {
      if (slots[i]) all[i] = defined[next++];
    }
    return all;
  }

  std::function<torch::autograd::variable_list(const torch::autograd::variable_list&)> fn;
  /// Which of the segment's inputs are defined; only those pass through autograd,
  /// which cannot describe an undefined tensor.
  std::vector<bool> slots;
  RngState rng;
  AutocastState autocast;
};

/// The autograd node of one checkpointed segment. Its inputs are the segment, an
/// optional anchor (see `checkpoint`) and the segment's defined tensors; its
/// backward returns no gradient for the first two.
struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                c10::intrusive_ptr<Segment> segment,
                                                const c10::optional<at::Tensor>& anchor,
                                                at::TensorList inputs) {
    const torch::autograd::variable_list in(inputs.begin(), inputs.end());
    segment->rng = capture_rng(cuda_devices(in));
    segment->autocast = AutocastState::current();

    std::vector<std::int64_t> versions;
    versions.reserve(in.size());
    for (const auto& t : in) versions.push_back(t._version());

    torch::autograd::variable_list outputs;
    {
      // Function::apply already turns grad mode off; stated here because not
      // recording is the whole point.
      at::NoGradGuard no_grad;
      AutocastCacheOff no_cast_cache;
      outputs = segment->fn(segment->expand(in));
    }
    // The recomputation reads the saved inputs, so they must be what the forward
    // read; an in-place change made by the segment itself escapes the version
    // check that save_for_backward does, hence this one.
    for (std::size_t i = 0; i < in.size(); ++i) {
      TORCH_CHECK(in[i]._version() == versions[i],
                  "kokoro::nn::checkpoint: the segment modified an input in place; a "
                  "checkpointed segment must leave its inputs unchanged");
    }

    torch::autograd::variable_list non_differentiable;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      TORCH_CHECK(outputs[i].defined(), "kokoro::nn::checkpoint: output ", i,
                  " of the segment is an undefined tensor; return only defined tensors");
      if (!torch::autograd::isDifferentiableType(outputs[i].scalar_type())) {
        non_differentiable.push_back(outputs[i]);
      }
    }
    ctx->mark_non_differentiable(non_differentiable);
    ctx->save_for_backward(in);
    ctx->saved_data["segment"] = at::IValue::make_capsule(std::move(segment));
    // Outputs the loss does not use get no gradient; skipping them beats
    // back-propagating zeros.
    ctx->set_materialize_grads(false);
    return outputs;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    // The recomputed graph is back-propagated into every leaf's .grad, which is
    // only what the caller asked for when backward() was called without `inputs`.
    TORCH_CHECK(torch::autograd::Engine::get_default_engine().is_checkpoint_valid(),
                "kokoro::nn::checkpoint: gradients through a checkpointed segment need "
                "backward() without `inputs`; torch::autograd::grad() is not supported");
    // The engine runs a node's backward in grad mode exactly when create_graph is
    // set. The recomputed graph would be back-propagated without one, so the
    // second-order terms of the segment would be silently missing.
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "kokoro::nn::checkpoint: backward with create_graph (higher-order "
                "gradients) through a checkpointed segment is not supported");
    const auto segment =
        c10::static_intrusive_pointer_cast<Segment>(ctx->saved_data.at("segment").toCapsule());

    // Fresh leaves cut the recomputed graph off from the graph before the segment,
    // which the outer backward is already walking.
    torch::autograd::variable_list leaves;
    for (const auto& saved : ctx->get_saved_variables()) {
      auto leaf = saved.detach();
      leaf.requires_grad_(saved.requires_grad());
      leaves.push_back(std::move(leaf));
    }

    torch::autograd::variable_list outputs;
    {
      RngFork rng(segment->rng);
      AutocastReplay autocast(segment->autocast);
      torch::AutoGradMode grad_mode(true);
      outputs = segment->fn(segment->expand(leaves));
    }
    TORCH_CHECK(outputs.size() == grad_outputs.size(), "kokoro::nn::checkpoint: the segment ",
                "returned ", outputs.size(), " outputs when recomputed, ", grad_outputs.size(),
                " in the forward; it must be deterministic apart from the RNG");

    torch::autograd::variable_list roots;
    torch::autograd::variable_list root_grads;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (!outputs[i].defined() || !outputs[i].requires_grad() || !grad_outputs[i].defined()) {
        continue;
      }
      roots.push_back(outputs[i]);
      root_grads.push_back(grad_outputs[i]);
    }
    // A backward inside this backward (the engine supports re-entry): parameters
    // used by the segment accumulate into .grad exactly as in a direct backward,
    // and the fresh leaves collect the gradients of the inputs.
    if (!roots.empty()) torch::autograd::backward(roots, root_grads);

    torch::autograd::variable_list grads{at::Tensor(), at::Tensor()};  // segment, anchor
    for (const auto& leaf : leaves) {
      grads.push_back(leaf.requires_grad() ? leaf.grad() : at::Tensor());
    }
    return grads;
  }
};

}  // namespace detail

/// Runs fn(inputs) without keeping its activations when grad mode is on and any input or
/// parameter needs a gradient; recomputes it in backward (with the CPU/CUDA RNG state of the
/// forward, so dropout matches). Gradients flow to the inputs and to every parameter fn uses.
///
/// Under grad mode fn runs twice per step: once here without recording, once in backward
/// with recording, under the forward's RNG and autocast settings. It behaves like
/// `torch.utils.checkpoint(..., use_reentrant=True)`, with these terms:
/// - fn must be deterministic apart from the RNG, return defined tensors only, and not
///   modify its inputs in place (checked). Integer and bool inputs (masks, lengths) and
///   undefined inputs are fine; integer and bool outputs carry no gradient.
/// - The RNG replayed is the default CPU generator's and that of each CUDA device an input
///   lives on; a segment drawing random numbers on another device, or from its own
///   generator, is not replayed.
/// - Parameters are reached through the reentrant backward, which accumulates into their
///   .grad: call backward() on the loss. torch::autograd::grad() or backward with `inputs`
///   through a segment throws, and so does backward with create_graph (higher-order
///   gradients).
/// - With grad mode off (torch::NoGradGuard, inference mode) fn is called directly, at no
///   cost. With grad mode on, the parameters fn uses cannot be seen from here, so even when
///   no input needs a gradient the segment is checkpointed (through an empty anchor that
///   requires grad) and its outputs require grad; evaluate under torch::NoGradGuard.
inline torch::autograd::variable_list checkpoint(
    std::function<torch::autograd::variable_list(const torch::autograd::variable_list&)> fn,
    const torch::autograd::variable_list& inputs) {
  if (!torch::GradMode::is_enabled()) return fn(inputs);
  auto segment = c10::make_intrusive<detail::Segment>(std::move(fn));
  torch::autograd::variable_list defined;
  bool input_needs_grad = false;
  for (const auto& t : inputs) {
    segment->slots.push_back(t.defined());
    if (!t.defined()) continue;
    defined.push_back(t);
    input_needs_grad = input_needs_grad || t.requires_grad();
  }
  c10::optional<at::Tensor> anchor;
  if (!input_needs_grad) anchor = torch::empty({0}, torch::requires_grad());
  // A std::vector would be taken for a non-tensor argument; a TensorList is not.
  return detail::CheckpointFunction::apply(std::move(segment), anchor, at::TensorList(defined));
}

}  // namespace kokoro::nn
