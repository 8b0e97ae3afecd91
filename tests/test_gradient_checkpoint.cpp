// Gradient checkpointing: a checkpointed segment gives the losses and gradients
// of running it directly (dropout and autocast included) while its forward keeps
// none of the segment's activations.
#include <doctest/doctest.h>

#include <kokoro/core/autocast.hpp>
#include <kokoro/nn/gradient_checkpoint.hpp>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

using namespace kokoro;
using namespace kokoro::nn;
using torch::autograd::variable_list;

namespace {

constexpr double kTolerance = 1e-6;

/// A pre-norm Transformer-like block: masked single-head self-attention and a
/// feed-forward layer, dropout on the attention weights and on both branches,
/// residuals around both.
struct BlockImpl : torch::nn::Module {
  BlockImpl(std::int64_t d, double dropout)
      : norm1(register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        qkv(register_module("qkv", torch::nn::Linear(d, 3 * d))),
        proj(register_module("proj", torch::nn::Linear(d, d))),
        norm2(register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))),
        ff1(register_module("ff1", torch::nn::Linear(d, 2 * d))),
        ff2(register_module("ff2", torch::nn::Linear(2 * d, d))),
        drop(register_module("drop", torch::nn::Dropout(dropout))) {}

  /// x [batch, frames, d]; mask [batch, frames], true on real frames.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask) {
    const auto parts = qkv(norm1(x)).chunk(3, -1);
    auto scores = torch::matmul(parts[0], parts[1].transpose(1, 2)) /
                  std::sqrt(static_cast<double>(x.size(-1)));
    scores = scores.masked_fill(mask.logical_not().unsqueeze(1), -1e9);
    const auto attention = drop(torch::softmax(scores, -1));
    x = x + drop(proj(torch::matmul(attention, parts[2])));
    x = x + drop(ff2(torch::gelu(ff1(norm2(x)))));
    return x * mask.unsqueeze(-1);
  }

  torch::nn::LayerNorm norm1;
  torch::nn::Linear qkv;
  torch::nn::Linear proj;
  torch::nn::LayerNorm norm2;
  torch::nn::Linear ff1;
  torch::nn::Linear ff2;
  torch::nn::Dropout drop;
};
TORCH_MODULE(Block);

/// Linear, dropout, layer norm, twice.
struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(std::int64_t d)
      : fc1(register_module("fc1", torch::nn::Linear(d, 4 * d))),
        fc2(register_module("fc2", torch::nn::Linear(4 * d, d))),
        drop(register_module("drop", torch::nn::Dropout(0.3))),
        norm(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})))) {}

  torch::Tensor forward(const torch::Tensor& x) { return norm(fc2(drop(torch::relu(fc1(x)))) + x); }

  torch::nn::Linear fc1;
  torch::nn::Linear fc2;
  torch::nn::Dropout drop;
  torch::nn::LayerNorm norm;
};
TORCH_MODULE(Mlp);

/// A loss, and every gradient it produced: the parameters' in order, then the input's.
struct Step {
  torch::Tensor loss;
  std::vector<torch::Tensor> grads;
};

/// Seeds the RNG, runs `loss_of` on a fresh leaf copy of `input` and back-propagates.
template <typename LossOf>
Step run_step(torch::nn::Module& model, const torch::Tensor& input, LossOf loss_of,
              std::uint64_t seed = 7) {
  for (auto& p : model.parameters()) p.mutable_grad().reset();
  torch::manual_seed(seed);
  const auto x = input.detach().clone().requires_grad_();
  const auto loss = loss_of(x);
  loss.backward();
  Step step{loss.detach(), {}};
  for (const auto& p : model.parameters()) step.grads.push_back(p.grad());
  step.grads.push_back(x.grad());
  return step;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

/// Same loss and the same gradients, to `tolerance`; undefined exactly where the
/// other is undefined.
void check_same(const Step& direct, const Step& checkpointed, double tolerance = kTolerance) {
  CHECK(max_abs_diff(direct.loss, checkpointed.loss) <= tolerance);
  REQUIRE(direct.grads.size() == checkpointed.grads.size());
  for (std::size_t i = 0; i < direct.grads.size(); ++i) {
    CAPTURE(i);
    REQUIRE(direct.grads[i].defined() == checkpointed.grads[i].defined());
    if (!direct.grads[i].defined()) continue;
    CHECK(max_abs_diff(direct.grads[i], checkpointed.grads[i]) <= tolerance);
  }
}

/// Every gradient of a step is defined.
bool all_defined(const Step& step) {
  return std::all_of(step.grads.begin(), step.grads.end(),
                     [](const torch::Tensor& g) { return g.defined(); });
}

/// [batch, frames] masks with the given numbers of real frames.
torch::Tensor frame_mask(const torch::Tensor& lengths, std::int64_t frames) {
  return torch::arange(frames).unsqueeze(0) < lengths.unsqueeze(1);
}

/// The nodes of the autograd graph below `root`, each once.
std::size_t graph_size(const std::shared_ptr<torch::autograd::Node>& root) {
  std::unordered_set<torch::autograd::Node*> seen{root.get()};
  std::vector<torch::autograd::Node*> pending{root.get()};
  while (!pending.empty()) {
    auto* node = pending.back();
    pending.pop_back();
    for (const auto& edge : node->next_edges()) {
      if (edge.function && seen.insert(edge.function.get()).second) {
        pending.push_back(edge.function.get());
      }
    }
  }
  return seen.size();
}

/// While installed, allocates CPU tensors as the default allocator does and counts
/// the bytes alive. The count is global because a tensor may outlive the scope
/// that allocated it; sizes are looked up by address, since raw_allocate requires
/// the context to be the data pointer itself.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  CountingCpuAllocator() : previous_(c10::GetCPUAllocator()) { c10::SetCPUAllocator(this); }
  ~CountingCpuAllocator() override { c10::SetCPUAllocator(previous_); }
  CountingCpuAllocator(const CountingCpuAllocator&) = delete;
  CountingCpuAllocator& operator=(const CountingCpuAllocator&) = delete;

  static std::int64_t live() {
    std::lock_guard<std::mutex> lock(book().mutex);
    return book().live;
  }

  // Both forms of libtorch's Allocator (see kokoro/device/cpu_memory_cache.hpp).
  c10::DataPtr allocate(std::size_t bytes) const {
    void* data = c10::alloc_cpu(bytes);
    if (data != nullptr) {
      std::lock_guard<std::mutex> lock(book().mutex);
      book().sizes[data] = bytes;
      book().live += static_cast<std::int64_t>(bytes);
    }
    return {data, data, &release, c10::Device(c10::kCPU)};
  }
  c10::DataPtr allocate(std::size_t bytes) { return std::as_const(*this).allocate(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

 private:
  struct Book {
    std::mutex mutex;
    std::unordered_map<void*, std::size_t> sizes;
    std::int64_t live = 0;
  };

  static Book& book() {
    static Book instance;
    return instance;
  }

  static void release(void* data) {
    if (data == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(book().mutex);
      const auto found = book().sizes.find(data);
      book().live -= static_cast<std::int64_t>(found->second);
      book().sizes.erase(found);
    }
    c10::free_cpu(data);
  }

  c10::Allocator* previous_;
};

/// Drops libtorch's warnings while installed through a WarningHandlerGuard.
struct QuietWarnings : c10::WarningHandler {
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning&) override {}
#else
  void process(const c10::SourceLocation&, const std::string&, const bool) override {}
#endif
};

}  // namespace

TEST_CASE("a checkpointed MLP with dropout gives the loss and gradients of running it directly") {
  torch::manual_seed(0);
  Mlp mlp(16);
  const auto input = torch::randn({8, 16});
  const auto target = torch::randn({8, 16});
  auto direct = [&](const torch::Tensor& x) { return (mlp(x) - target).pow(2).mean(); };
  auto checkpointed = [&](const torch::Tensor& x) {
    const auto out =
        checkpoint([&](const variable_list& in) { return variable_list{mlp(in[0])}; }, {x});
    return (out[0] - target).pow(2).mean();
  };
  const auto reference = run_step(*mlp, input, direct);
  // Dropout draws differ between seeds: equal results below are not by chance.
  CHECK(max_abs_diff(reference.loss, run_step(*mlp, input, direct, 8).loss) > 1e-4);
  const auto result = run_step(*mlp, input, checkpointed);
  CHECK(all_defined(result));
  check_same(reference, result);
}

TEST_CASE("a chain of checkpointed transformer blocks matches the same chain run directly") {
  torch::manual_seed(1);
  torch::nn::Module model;  // holds every parameter, for run_step
  std::vector<Block> blocks;
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(model.register_module("block" + std::to_string(i), Block(16, 0.2)));
  }
  torch::nn::Linear head = model.register_module("head", torch::nn::Linear(16, 4));
  const auto input = torch::randn({3, 10, 16});
  const auto mask = frame_mask(torch::tensor({10, 7, 4}), 10);

  auto loss_of = [&](bool use_checkpoint) {
    return [&, use_checkpoint](const torch::Tensor& x) {
      auto h = x;
      for (auto& block : blocks) {
        auto segment = [block](const variable_list& in) mutable {
          return variable_list{block->forward(in[0], in[1])};
        };
        h = use_checkpoint ? checkpoint(segment, {h, mask})[0] : segment({h, mask})[0];
      }
      return head(h).pow(2).mean();
    };
  };
  const auto reference = run_step(model, input, loss_of(false));
  const auto result = run_step(model, input, loss_of(true));
  CHECK(all_defined(result));
  check_same(reference, result);
}

TEST_CASE("checkpoints nest") {
  torch::manual_seed(2);
  torch::nn::Module model;
  Block inner = model.register_module("inner", Block(16, 0.2));
  Block outer = model.register_module("outer", Block(16, 0.2));
  const auto input = torch::randn({2, 6, 16});
  const auto mask = torch::ones({2, 6}, torch::kBool);
  auto direct = [&](const torch::Tensor& x) { return outer(inner(x, mask), mask).pow(2).mean(); };
  auto nested = [&](const torch::Tensor& x) {
    const auto out = checkpoint(
        [&](const variable_list& in) {
          const auto h = checkpoint(
              [&](const variable_list& in2) { return variable_list{inner(in2[0], mask)}; },
              {in[0]});
          return variable_list{outer(h[0], mask)};
        },
        {x});
    return out[0].pow(2).mean();
  };
  check_same(run_step(model, input, direct), run_step(model, input, nested));
}

TEST_CASE("a segment may take a bool mask, an integer tensor and an undefined tensor") {
  torch::manual_seed(3);
  Block block(16, 0.2);
  const auto input = torch::randn({3, 8, 16});
  const auto lengths = torch::tensor({8, 5, 2});
  const auto mask = frame_mask(lengths, 8);
  // Mean over the real frames of each sequence.
  auto pooled = [&](const variable_list& in) {
    CHECK_FALSE(in[3].defined());
    const auto h = block(in[0], in[1]);
    return variable_list{h.sum(1) / in[2].unsqueeze(1).to(h.dtype())};
  };
  auto direct = [&](const torch::Tensor& x) {
    return pooled({x, mask, lengths, torch::Tensor()})[0].pow(2).sum();
  };
  auto checkpointed = [&](const torch::Tensor& x) {
    return checkpoint(pooled, {x, mask, lengths, torch::Tensor()})[0].pow(2).sum();
  };
  const auto result = run_step(*block, input, checkpointed);
  CHECK(all_defined(result));
  check_same(run_step(*block, input, direct), result);
}

TEST_CASE("outputs the loss does not use, and integer outputs, get no gradient") {
  torch::manual_seed(4);
  torch::nn::Module model;
  torch::nn::Linear used = model.register_module("used", torch::nn::Linear(8, 8));
  torch::nn::Linear unused = model.register_module("unused", torch::nn::Linear(8, 8));
  torch::nn::Dropout drop = model.register_module("drop", torch::nn::Dropout(0.5));
  const auto input = torch::randn({4, 8});
  auto segment = [&](const variable_list& in) {
    const auto h = drop(in[0]);
    return variable_list{used(h), unused(h), h.argmax(-1)};
  };
  variable_list outputs;
  auto loss_of = [&](bool use_checkpoint) {
    return [&, use_checkpoint](const torch::Tensor& x) {
      outputs = use_checkpoint ? checkpoint(segment, {x}) : segment({x});
      return outputs[0].pow(2).mean();
    };
  };
  const auto reference = run_step(model, input, loss_of(false));
  const auto result = run_step(model, input, loss_of(true));
  CHECK(outputs[1].requires_grad());
  CHECK_FALSE(outputs[2].requires_grad());
  CHECK(outputs[2].dtype() == torch::kLong);
  CHECK_FALSE(unused->weight.grad().defined());
  CHECK(used->weight.grad().defined());
  check_same(reference, result);
}

TEST_CASE("parameters get gradients even when no input of the segment needs one") {
  torch::manual_seed(5);
  Mlp mlp(8);
  const auto x = torch::randn({4, 8});  // data: nothing before the segment needs a gradient
  auto grads_of = [&](bool use_checkpoint) {
    for (auto& p : mlp->parameters()) p.mutable_grad().reset();
    torch::manual_seed(9);
    auto segment = [&](const variable_list& in) { return variable_list{mlp(in[0])}; };
    const auto y = use_checkpoint ? checkpoint(segment, {x})[0] : segment({x})[0];
    y.pow(2).mean().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : mlp->parameters()) grads.push_back(p.grad());
    return grads;
  };
  const auto direct = grads_of(false);
  const auto checkpointed = grads_of(true);
  for (std::size_t i = 0; i < direct.size(); ++i) {
    CAPTURE(i);
    REQUIRE(checkpointed[i].defined());
    CHECK(max_abs_diff(direct[i], checkpointed[i]) <= kTolerance);
  }
}

TEST_CASE("with grad mode off the segment runs once, directly, and records nothing") {
  torch::manual_seed(6);
  Mlp mlp(8);
  const auto x = torch::randn({4, 8}, torch::requires_grad());
  int calls = 0;
  auto segment = [&](const variable_list& in) {
    ++calls;
    return variable_list{mlp(in[0])};
  };
  torch::NoGradGuard no_grad;
  torch::manual_seed(10);
  const auto direct = segment({x})[0];
  calls = 0;
  torch::manual_seed(10);
  const auto checkpointed = checkpoint(segment, {x})[0];
  CHECK(calls == 1);
  CHECK_FALSE(checkpointed.requires_grad());
  CHECK(checkpointed.grad_fn() == nullptr);
  CHECK(torch::equal(direct, checkpointed));
}

TEST_CASE("the forward of a checkpointed segment keeps none of its activations") {
  torch::manual_seed(7);
  Block block(32, 0.1);
  const auto mask = torch::ones({4, 50}, torch::kBool);
  const auto x = torch::randn({4, 50, 32}, torch::requires_grad());
  auto segment = [&](const variable_list& in) { return variable_list{block(in[0], in[1])}; };

  SUBCASE("the graph is the checkpoint node over the input, nothing of the block") {
    const auto out = checkpoint(segment, {x, mask})[0];
    REQUIRE(out.grad_fn() != nullptr);
    CHECK(out.grad_fn()->name().find("CheckpointFunction") != std::string::npos);
    CHECK(graph_size(out.grad_fn()) == 2);  // the checkpoint and x's gradient accumulator
    CHECK(graph_size(segment({x, mask})[0].grad_fn()) > 20);
  }

  SUBCASE("the tensors alive after the forward are its output and the RNG state") {
    std::int64_t kept_direct = 0;
    std::int64_t kept_checkpointed = 0;
    std::int64_t output_bytes = 0;
    {
      CountingCpuAllocator counting;
      const auto before = CountingCpuAllocator::live();
      const auto direct = segment({x, mask})[0];
      kept_direct = CountingCpuAllocator::live() - before;
      output_bytes = static_cast<std::int64_t>(direct.nbytes());
    }
    {
      CountingCpuAllocator counting;
      const auto before = CountingCpuAllocator::live();
      const auto out = checkpoint(segment, {x, mask})[0];
      kept_checkpointed = CountingCpuAllocator::live() - before;
    }
    CAPTURE(kept_direct);
    CAPTURE(kept_checkpointed);
    CHECK(kept_checkpointed <= output_bytes + 16 * 1024);  // the CPU RNG state is 5 KiB
    CHECK(kept_direct >= 8 * output_bytes);
  }
}

TEST_CASE("checkpointing leaves the caller's random stream where a direct run leaves it") {
  torch::manual_seed(8);
  Mlp mlp(8);
  const auto input = torch::randn({4, 8});
  // The dropout after the segment draws after the segment's own draws: replaying
  // those in backward must not leave the stream there.
  run_step(*mlp, input, [&](const torch::Tensor& x) {
    return torch::dropout(mlp(x), 0.5, /*train=*/true).sum();
  });
  const auto after_direct = torch::rand({16});
  run_step(*mlp, input, [&](const torch::Tensor& x) {
    const auto out =
        checkpoint([&](const variable_list& in) { return variable_list{mlp(in[0])}; }, {x});
    return torch::dropout(out[0], 0.5, /*train=*/true).sum();
  });
  CHECK(torch::equal(after_direct, torch::rand({16})));
}

TEST_CASE("a retained graph through a segment can be back-propagated twice") {
  torch::manual_seed(12);
  Mlp mlp(8);
  const auto x = torch::randn({4, 8}, torch::requires_grad());
  const auto loss =
      checkpoint([&](const variable_list& in) { return variable_list{mlp(in[0])}; }, {x})[0]
          .pow(3)
          .sum();
  loss.backward({}, /*retain_graph=*/true);
  const auto input_grad = x.grad().clone();
  const auto weight_grad = mlp->fc1->weight.grad().clone();
  loss.backward();
  CHECK(max_abs_diff(x.grad(), 2 * input_grad) <= kTolerance);
  CHECK(max_abs_diff(mlp->fc1->weight.grad(), 2 * weight_grad) <= kTolerance);
}

TEST_CASE("under bfloat16 CPU autocast a checkpointed block matches the block run directly") {
  torch::manual_seed(9);
  Block block(16, 0.2);
  const auto input = torch::randn({2, 8, 16});
  const auto mask = frame_mask(torch::tensor({8, 5}), 8);
  auto loss_of = [&](bool use_checkpoint) {
    return [&, use_checkpoint](const torch::Tensor& x) {
      torch::Tensor out;
      {
        AutocastGuard autocast(c10::DeviceType::CPU, torch::kBFloat16);
        auto segment = [&](const variable_list& in) { return variable_list{block(in[0], in[1])}; };
        out = use_checkpoint ? checkpoint(segment, {x, mask})[0] : segment({x, mask})[0];
      }
      return out.to(torch::kFloat).pow(2).mean();
    };
  };
  const auto reference = run_step(*block, input, loss_of(false));
  const auto result = run_step(*block, input, loss_of(true));
  CHECK(all_defined(result));
  check_same(reference, result);
}

TEST_CASE("under autocast a checkpointed segment leaves later uses of its weights their gradient") {
  // Casts cached during the no-grad forward would carry no history; the direct use
  // of the same layer later in the region would pick them up and lose the bias
  // gradient.
  torch::manual_seed(10);
  torch::nn::Linear layer(8, 8);
  const auto input = torch::randn({4, 8});
  auto loss_of = [&](bool use_checkpoint) {
    return [&, use_checkpoint](const torch::Tensor& x) {
      AutocastGuard autocast(c10::DeviceType::CPU, torch::kBFloat16);
      auto segment = [&](const variable_list& in) { return variable_list{layer(in[0])}; };
      const auto first = use_checkpoint ? checkpoint(segment, {x})[0] : segment({x})[0];
      const auto second = layer(x * 2);
      return (first.to(torch::kFloat).pow(2).sum() + second.to(torch::kFloat).pow(2).sum());
    };
  };
  const auto reference = run_step(*layer, input, loss_of(false));
  const auto result = run_step(*layer, input, loss_of(true));
  REQUIRE(all_defined(result));
  // Only the rounding differs: the direct run sums the two bias gradients in
  // bfloat16 before casting back, the checkpointed one after.
  for (std::size_t i = 0; i < reference.grads.size(); ++i) {
    CAPTURE(i);
    CHECK(torch::allclose(reference.grads[i], result.grads[i], 2e-2, 1e-2));
  }
}

TEST_CASE("what checkpointing cannot support is refused with a reason") {
  torch::manual_seed(11);
  torch::nn::Linear layer(4, 4);
  const auto x = torch::randn({2, 4}, torch::requires_grad());

  SUBCASE("torch::autograd::grad through a segment") {
    const auto y =
        checkpoint([&](const variable_list& in) { return variable_list{layer(in[0])}; }, {x})[0];
    CHECK_THROWS_WITH_AS(torch::autograd::grad({y.sum()}, {x}),
                         doctest::Contains("torch::autograd::grad() is not supported"), c10::Error);
  }

  SUBCASE("higher-order gradients through a segment") {
    const auto y =
        checkpoint([&](const variable_list& in) { return variable_list{layer(in[0])}; }, {x})[0];
    QuietWarnings quiet;  // backward() with create_graph warns of a reference cycle
#if TORCH_VERSION_MAJOR >= 2
    c10::WarningUtils::WarningHandlerGuard guard(&quiet);
#else
    c10::Warning::WarningHandlerGuard guard(&quiet);
#endif
    CHECK_THROWS_WITH_AS(y.sum().backward({}, /*retain_graph=*/true, /*create_graph=*/true),
                         doctest::Contains("create_graph"), c10::Error);
  }

  SUBCASE("a segment that modifies its input in place") {
    const auto h = x * 1.0;
    CHECK_THROWS_WITH_AS(
        checkpoint([&](const variable_list& in) { return variable_list{in[0].mul_(2)}; }, {h}),
        doctest::Contains("modified an input in place"), c10::Error);
  }

  SUBCASE("a segment that returns an undefined tensor") {
    CHECK_THROWS_WITH_AS(checkpoint(
                             [&](const variable_list& in) {
                               return variable_list{layer(in[0]), torch::Tensor()};
                             },
                             {x}),
                         doctest::Contains("undefined tensor"), c10::Error);
  }
}
