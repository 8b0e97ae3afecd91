// Converting training state to and from the values torch's pickle format
// holds, in PyTorch's own layouts: a module's state dict (name -> tensor) and
// an optimizer's state dict ({"state": {index: {...}}, "param_groups": [...]})
// for AdamW, Adam and SGD, so Python's torch.load and load_state_dict accept
// them. Loading checks everything before changing anything.
#pragma once

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>
#include <torch/nn/module.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro {

using IValueDict = c10::impl::GenericDict;

/// An empty dict with string keys, as torch.load returns them.
inline IValueDict make_ivalue_dict() {
  return IValueDict(c10::StringType::get(), c10::AnyType::get());
}

/// The entry `key` of a dict loaded from `source`; throws naming both.
inline c10::IValue dict_at(const IValueDict& dict, const std::string& key,
                           const std::string& source) {
  const auto it = dict.find(key);
  if (it == dict.end()) throw Error(fmt::format("{}: no '{}' entry", source, key));
  return it->value();
}

// ---- StateDict ------------------------------------------------------------

inline c10::IValue to_ivalue(const StateDict& state) {
  auto dict = make_ivalue_dict();
  for (const auto& entry : state) {
    // A name, not a structured binding: clang before 16 cannot capture one.
    const auto& key = entry.first;
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::vector<double>> ||
                        std::is_same_v<T, std::vector<std::int64_t>> ||
                        std::is_same_v<T, std::vector<std::string>>) {
            c10::impl::GenericList list(c10::AnyType::get());
            for (const auto& x : v) list.push_back(x);
            dict.insert(key, list);
          } else {
            dict.insert(key, v);
          }
        },
        entry.second);
  }
  return dict;
}

inline StateDict state_dict_from_ivalue(const c10::IValue& value, const std::string& source) {
  if (!value.isGenericDict()) throw Error(fmt::format("{}: expected a dict", source));
  StateDict state;
  for (const auto& entry : value.toGenericDict()) {
    const auto key = entry.key().toStringRef();
    const auto& v = entry.value();
    if (v.isBool()) {
      state[key] = v.toBool();
    } else if (v.isInt()) {
      state[key] = v.toInt();
    } else if (v.isDouble()) {
      state[key] = v.toDouble();
    } else if (v.isString()) {
      state[key] = v.toStringRef();
    } else if (v.isList()) {
      const auto items = v.toListRef();
      if (!items.empty() && items[0].isString()) {
        std::vector<std::string> out;
        for (const auto& x : items) out.push_back(x.toStringRef());
        state[key] = out;
      } else if (!items.empty() && items[0].isInt()) {
        std::vector<std::int64_t> out;
        for (const auto& x : items) out.push_back(x.toInt());
        state[key] = out;
      } else {
        std::vector<double> out;
        for (const auto& x : items) out.push_back(x.toDouble());
        state[key] = out;
      }
    } else {
      throw Error(fmt::format("{}: '{}' holds a value of an unexpected type", source, key));
    }
  }
  return state;
}

// ---- modules --------------------------------------------------------------

/// Parameters and buffers by dotted name, on the CPU: PyTorch's state_dict().
inline IValueDict module_state_dict(const torch::nn::Module& module) {
  auto dict = make_ivalue_dict();
  for (const auto& item : module.named_parameters())
    dict.insert(item.key(), item.value().detach().cpu());
  for (const auto& item : module.named_buffers())
    dict.insert(item.key(), item.value().detach().cpu());
  return dict;
}

/// Copies a saved state dict into `module`. Every name and shape must match:
/// otherwise nothing is copied and the error lists the missing, unexpected
/// and mis-shaped tensors.
inline void load_module_state_dict(torch::nn::Module& module, const IValueDict& saved,
                                   const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters()) targets[item.key()] = item.value();
  for (const auto& item : module.named_buffers()) targets[item.key()] = item.value();

  std::vector<std::string> missing, unexpected, misshaped;
  std::map<std::string, torch::Tensor> found;
  for (const auto& entry : saved) {
    const auto name = entry.key().toStringRef();
    const auto it = targets.find(name);
    if (it == targets.end() || !entry.value().isTensor()) {
      unexpected.push_back(name);
      continue;
    }
    const auto tensor = entry.value().toTensor();
    if (tensor.sizes() != it->second.sizes()) {
      misshaped.push_back(fmt::format("{} (saved {}, model {})", name, c10::str(tensor.sizes()),
                                      c10::str(it->second.sizes())));
      continue;
    }
    found[name] = tensor;
  }
  for (const auto& [name, tensor] : targets) {
    if (!saved.contains(name)) missing.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string message = fmt::format("{}: the checkpoint does not fit this model", source);
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (!names.empty())
        message += fmt::format("\n  {} ({}): {}", what, names.size(), fmt::join(names, ", "));
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("mis-shaped", misshaped);
    throw Error(message);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(found.at(name));
}

// ---- optimizers -----------------------------------------------------------

namespace detail {

/// How Optimizer::state() is keyed: by the parameter's TensorImpl address,
/// as text in libtorch 1.x and as the pointer itself from 2.x.
using OptimizerStateKey =
    typename std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

template <class Key = OptimizerStateKey>  // a template: only one branch compiles
Key state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream address;  // the text libtorch 1.x makes of it
    address << p.unsafeGetTensorImpl();
    return address.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

inline c10::IValue step_tensor(std::int64_t step) {
  return torch::tensor(static_cast<float>(step));
}

inline std::int64_t step_value(const c10::IValue& v) {
  return v.isTensor() ? static_cast<std::int64_t>(v.toTensor().item<double>()) : v.toInt();
}

inline torch::Tensor tensor_entry(const IValueDict& d, const std::string& key,
                                  const torch::Tensor& like, const std::string& source) {
  // A copy, as PyTorch's load_state_dict makes: the optimizer must not share
  // buffers with the dict it was loaded from.
  return dict_at(d, key, source).toTensor().to(like.device(), like.scalar_type(), false, true);
}

// Adam and AdamW share their options and per-parameter state in PyTorch's layout.
template <class Options>
void save_adam_options(IValueDict& group, const Options& o) {
  group.insert("betas", c10::ivalue::Tuple::create(std::get<0>(o.betas()), std::get<1>(o.betas())));
  group.insert("eps", o.eps());
  group.insert("weight_decay", o.weight_decay());
  group.insert("amsgrad", o.amsgrad());
}

template <class Options>
void load_adam_options(Options& o, const IValueDict& group, const std::string& source) {
  const auto betas = dict_at(group, "betas", source).toTupleRef().elements();
  o.betas({betas[0].toDouble(), betas[1].toDouble()});
  o.eps(dict_at(group, "eps", source).toDouble());
  o.weight_decay(dict_at(group, "weight_decay", source).toDouble());
}

template <class State>
IValueDict save_adam_state(const State& st) {
  auto s = make_ivalue_dict();
  s.insert("step", step_tensor(st.step()));
  s.insert("exp_avg", st.exp_avg().cpu());
  s.insert("exp_avg_sq", st.exp_avg_sq().cpu());
  if (st.max_exp_avg_sq().defined()) s.insert("max_exp_avg_sq", st.max_exp_avg_sq().cpu());
  return s;
}

template <class State>
std::unique_ptr<State> load_adam_state(const IValueDict& s, const torch::Tensor& p,
                                       const std::string& where) {
  auto st = std::make_unique<State>();
  st->step(step_value(dict_at(s, "step", where)));
  st->exp_avg(tensor_entry(s, "exp_avg", p, where));
  st->exp_avg_sq(tensor_entry(s, "exp_avg_sq", p, where));
  if (s.contains("max_exp_avg_sq")) st->max_exp_avg_sq(tensor_entry(s, "max_exp_avg_sq", p, where));
  return st;
}

}  // namespace detail

/// PyTorch's layout of an AdamW, Adam or SGD optimizer's state; throws for
/// other optimizers.
inline IValueDict optimizer_state_dict(torch::optim::Optimizer& optimizer) {
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  c10::impl::GenericList groups(c10::AnyType::get());
  std::int64_t index = 0;
  for (auto& group : optimizer.param_groups()) {
    auto g = make_ivalue_dict();
    c10::impl::GenericList params(c10::IntType::get());
    auto& options = group.options();
    g.insert("lr", options.get_lr());
    if (auto* o = dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
      detail::save_adam_options(g, *o);
    } else if (auto* a = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
      detail::save_adam_options(g, *a);
    } else if (auto* s = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
      g.insert("momentum", s->momentum());
      g.insert("dampening", s->dampening());
      g.insert("weight_decay", s->weight_decay());
      g.insert("nesterov", s->nesterov());
    } else {
      throw Error("checkpoints can hold AdamW, Adam and SGD optimizers; this one is another kind");
    }
    g.insert("maximize", false);
    g.insert("foreach", c10::IValue());
    for (const auto& p : group.params()) {
      params.push_back(index);
      const auto it = optimizer.state().find(detail::state_key(p));
      if (it != optimizer.state().end()) {
        auto s = make_ivalue_dict();
        if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
          s = detail::save_adam_state(*w);
        } else if (auto* a = dynamic_cast<torch::optim::AdamParamState*>(it->second.get())) {
          s = detail::save_adam_state(*a);
        } else if (auto* m = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
          s.insert("momentum_buffer", m->momentum_buffer().defined()
                                          ? c10::IValue(m->momentum_buffer().cpu())
                                          : c10::IValue());
        }
        state.insert(index, s);
      }
      ++index;
    }
    g.insert("params", params);
    groups.push_back(g);
  }
  auto out = make_ivalue_dict();
  out.insert("state", state);
  out.insert("param_groups", groups);
  return out;
}

/// Restores an optimizer from PyTorch's layout: group hyperparameters and
/// per-parameter state. The groups and their sizes must match.
inline void load_optimizer_state_dict(torch::optim::Optimizer& optimizer, const IValueDict& saved,
                                      const std::string& source) {
  const auto groups = dict_at(saved, "param_groups", source).toList();
  const auto state = dict_at(saved, "state", source).toGenericDict();
  auto& mine = optimizer.param_groups();
  if (groups.size() != mine.size()) {
    throw Error(
        fmt::format("{}: the optimizer has {} parameter groups, the checkpoint {} (an "
                    "option that groups the parameters differs from the saved run's)",
                    source, mine.size(), groups.size()));
  }
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto n = groups.get(i).toGenericDict().at("params").toList().size();
    if (n != mine[i].params().size()) {
      throw Error(fmt::format("{}: optimizer group {} has {} parameters, the checkpoint {}", source,
                              i, mine[i].params().size(), n));
    }
  }
  std::int64_t index = 0;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto g = groups.get(i).toGenericDict();
    auto& options = mine[i].options();
    options.set_lr(dict_at(g, "lr", source).toDouble());
    if (auto* o = dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
      detail::load_adam_options(*o, g, source);
    } else if (auto* a = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
      detail::load_adam_options(*a, g, source);
    } else if (auto* s = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
      s->momentum(dict_at(g, "momentum", source).toDouble());
      s->weight_decay(dict_at(g, "weight_decay", source).toDouble());
    }
    for (const auto& p : mine[i].params()) {
      const auto it = state.find(index++);
      const auto key = detail::state_key(p);
      if (it == state.end()) {
        optimizer.state().erase(key);
        continue;
      }
      const auto s = it->value().toGenericDict();
      const auto where = fmt::format("{} (optimizer state {})", source, index - 1);
      if (dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
        optimizer.state()[key] =
            detail::load_adam_state<torch::optim::AdamWParamState>(s, p, where);
      } else if (dynamic_cast<torch::optim::AdamOptions*>(&options)) {
        optimizer.state()[key] = detail::load_adam_state<torch::optim::AdamParamState>(s, p, where);
      } else if (dynamic_cast<torch::optim::SGDOptions*>(&options)) {
        auto st = std::make_unique<torch::optim::SGDParamState>();
        const auto buffer = dict_at(s, "momentum_buffer", where);
        if (buffer.isTensor())
          st->momentum_buffer(detail::tensor_entry(s, "momentum_buffer", p, where));
        optimizer.state()[key] = std::move(st);
      }
    }
  }
}

}  // namespace kokoro
