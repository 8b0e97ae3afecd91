// The logger role: receives step and epoch metrics. Every hook takes one
// context struct; the optional hooks are detected, so a logger implements
// only what it needs. Several loggers combine with kokoro::Loggers<...>.
#pragma once

#include <concepts>
#include <vector>

#include "kokoro/core/context.hpp"
#include "kokoro/core/media.hpp"

namespace kokoro {

namespace detail::logger {
template <class L>
concept has_on_step = requires(L& l, const StepContext& ctx) {
  l.on_step(ctx);
};
template <class L>
concept has_on_epoch_end = requires(L& l, const EpochContext& ctx) {
  l.on_epoch_end(ctx);
};
}  // namespace detail::logger

/// True when L renders media: the Trainer builds histograms and asks the task
/// for samples only for such a logger.
template <class L>
concept MediaLogger = requires(L& l, const MediaContext& ctx) {
  l.on_media(ctx);
};

/// A logger.
///  - `void on_step(const StepContext&)`: every `logging.log_every` optimizer
///    steps and at the end of each epoch, with the running means since the
///    previous call.
///  - `void on_epoch_end(const EpochContext&)`: after each epoch (and its
///    validation), with epoch means.
/// Optional hooks: `on_train_begin(const RunContext&)`,
/// `on_epoch_begin(const EpochContext&)`, `on_step_end(const StepContext&)`
/// (after every optimizer step, metrics empty: for progress displays; keep it
/// cheap), `on_media(const MediaContext&)` (images, audio and histograms,
/// every `logging.media_every_epochs` epochs), `on_evaluation(const
/// EvaluationContext&)` (the task's quality figures, when it measured them),
/// `on_train_end(const RunSummary&)`,
/// `on_message(const Message&)` (resumes, stops, warnings), and
/// `std::vector<Message> take_messages()` for a logger with notices of its own
/// (the Trainer collects them after on_train_begin, each epoch and
/// on_train_end, and passes them to the loggers that take messages).
template <class L>
concept LoggerPolicy = detail::logger::has_on_step<L> && detail::logger::has_on_epoch_end<L>;

/// Fails to compile, naming the missing member, when L is not a LoggerPolicy.
template <class L>
constexpr bool check_logger_policy() {
  static_assert(detail::logger::has_on_step<L>,
                "kokoro: the logger policy needs `void on_step(const kokoro::StepContext&)` "
                "(see kokoro/core/logger_policy.hpp)");
  static_assert(detail::logger::has_on_epoch_end<L>,
                "kokoro: the logger policy needs `void on_epoch_end(const kokoro::EpochContext&)` "
                "(see kokoro/core/logger_policy.hpp)");
  return true;
}

/// Calls each optional hook when the logger has it.
template <class L>
void notify_train_begin(L& logger, const RunContext& ctx) {
  if constexpr (requires { logger.on_train_begin(ctx); }) logger.on_train_begin(ctx);
}
template <class L>
void notify_epoch_begin(L& logger, const EpochContext& ctx) {
  if constexpr (requires { logger.on_epoch_begin(ctx); }) logger.on_epoch_begin(ctx);
}
template <class L>
void notify_step_end(L& logger, const StepContext& ctx) {
  if constexpr (requires { logger.on_step_end(ctx); }) logger.on_step_end(ctx);
}
/// Optional: the task's quality figures (EvaluationContext).
template <class L>
void notify_evaluation(L& logger, const EvaluationContext& ctx) {
  if constexpr (requires { logger.on_evaluation(ctx); }) logger.on_evaluation(ctx);
}
/// True when L takes the Trainer's messages.
template <class L>
concept MessageLogger = requires(L& l, const Message& m) {
  l.on_message(m);
};

/// True when L has notices of its own for the Trainer to pass on.
template <class L>
concept SpeakingLogger = requires(L& l) {
  { l.take_messages() } -> std::same_as<std::vector<Message>>;
};

template <class L>
void notify_train_end(L& logger, const RunSummary& ctx) {
  if constexpr (requires { logger.on_train_end(ctx); }) logger.on_train_end(ctx);
}

namespace archetype {

/// The smallest logger: copy it to start your own.
struct Logger {
  /// Running metrics every `logging.log_every` steps and at each epoch's end.
  void on_step(const StepContext&) {}
  /// Epoch means after each epoch.
  void on_epoch_end(const EpochContext&) {}
};
static_assert(LoggerPolicy<Logger>);

}  // namespace archetype
}  // namespace kokoro
