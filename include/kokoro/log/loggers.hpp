// Loggers<A, B, ...>: fan-out. Every hook goes to every logger that has it,
// in the order listed; each logger is built from the configuration if it can be.
// One logger that throws (a full disk under TensorBoard) does not keep the
// hook from the others: after all of them had it, one kokoro::Error names
// each that failed, for the Trainer to report and count.
#pragma once

#include <exception>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "kokoro/core/logger_policy.hpp"
#include "kokoro/core/make_policy.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro {

/// Several loggers acting as one.
template <LoggerPolicy... L>
class Loggers {
 public:
  Loggers() = default;
  explicit Loggers(const TrainingConfig& config) : loggers_(make_policy<L>(config)...) {}
  explicit Loggers(L... loggers) requires(sizeof...(L) > 0) : loggers_(std::move(loggers)...) {}

  void on_train_begin(const RunContext& ctx) {
    each([&](auto& l) { notify_train_begin(l, ctx); });
  }
  void on_epoch_begin(const EpochContext& ctx) {
    each([&](auto& l) { notify_epoch_begin(l, ctx); });
  }
  void on_step_end(const StepContext& ctx) {
    each([&](auto& l) { notify_step_end(l, ctx); });
  }
  void on_step(const StepContext& ctx) {
    each([&](auto& l) { l.on_step(ctx); });
  }
  void on_epoch_end(const EpochContext& ctx) {
    each([&](auto& l) { l.on_epoch_end(ctx); });
  }
  void on_evaluation(const EvaluationContext& ctx) {
    each([&](auto& l) { notify_evaluation(l, ctx); });
  }
  /// Present only when one of the loggers renders media.
  void on_media(const MediaContext& ctx) requires(MediaLogger<L> || ...) {
    each([&](auto& l) {
      if constexpr (MediaLogger<std::remove_reference_t<decltype(l)>>) l.on_media(ctx);
    });
  }
  /// Present only when one of the loggers takes messages.
  void on_message(const Message& message) requires(MessageLogger<L> || ...) {
    each([&](auto& l) {
      if constexpr (MessageLogger<std::remove_reference_t<decltype(l)>>) l.on_message(message);
    });
  }
  /// Present only when one of the loggers has notices of its own.
  std::vector<Message> take_messages() requires(SpeakingLogger<L> || ...) {
    std::vector<Message> all;
    each([&](auto& l) {
      if constexpr (SpeakingLogger<std::remove_reference_t<decltype(l)>>) {
        for (auto& m : l.take_messages()) all.push_back(std::move(m));
      }
    });
    return all;
  }
  void on_train_end(const RunSummary& ctx) {
    each([&](auto& l) { notify_train_end(l, ctx); });
  }

  /// The logger of type X.
  template <class X>
  X& get() {
    return std::get<X>(loggers_);
  }

 private:
  template <class Fn>
  void each(Fn&& fn) {
    std::string failures;
    auto call = [&](auto& l) {
      try {
        fn(l);
      } catch (const std::exception& e) {
        std::string what = e.what();
        failures += (failures.empty() ? "" : "; ") + what.substr(0, what.find('\n'));
      }
    };
    std::apply([&](auto&... l) { (call(l), ...); }, loggers_);
    if (!failures.empty()) throw Error(failures);
  }

  std::tuple<L...> loggers_;
};

}  // namespace kokoro
