// Each KOKORO_FAIL_* variant breaks one role's contract; the build of that
// variant must fail with the message that names the missing member (see
// tests/CMakeLists.txt). Without a variant the file compiles: the control.
#include <kokoro/trainer.hpp>

#include "test_tasks.hpp"

using namespace kokoro;

struct Device : archetype::Device {
#ifdef KOKORO_FAIL_DEVICE
  void synchronize() = delete;
#endif
};

struct Scaler : archetype::GradScaler {
#ifdef KOKORO_FAIL_SCALER
  void step() {}  // hides step(Optimizer&)
#endif
};

struct Memory {
#ifdef KOKORO_FAIL_MEMORY
  bool after_step(const StepContext&) { return false; }  // wrong return type
#else
  MemoryAction after_step(const StepContext&) { return MemoryAction::none; }
#endif
};

struct Scheduler {
#ifndef KOKORO_FAIL_SCHEDULER
  double lr(double base) const { return base; }
#endif
  void on_step(const ScheduleClock&) {}
  void on_epoch_end(const ScheduleClock&) {}
};

struct Logger {
  void on_step(const StepContext&) {}
#ifndef KOKORO_FAIL_LOGGER
  void on_epoch_end(const EpochContext&) {}
#endif
};

struct Checkpoints : archetype::Checkpoints {
#ifdef KOKORO_FAIL_CHECKPOINTS
  void load(const std::filesystem::path&) const {}  // must return the state
#endif
};

struct MyTask : test::LinearTask {
  using LinearTask::LinearTask;
#ifdef KOKORO_FAIL_TASK
  void loss(const Batch&) {}  // must return kokoro::Loss
#endif
};

#ifdef KOKORO_FAIL_BUNDLE
struct Policies {  // not derived from DefaultPolicies, and no scheduler
  using device = Device;
  using scaler = Scaler;
  using memory = Memory;
  using logger = Logger;
};
#else
struct Policies : DefaultPolicies {
  using device = Device;
  using scaler = Scaler;
  using memory = Memory;
  using scheduler = Scheduler;
  using logger = Logger;
  using checkpoints = Checkpoints;
};
#endif

int main() {
  Trainer<MyTask, Policies> trainer(get_default_config());
  return static_cast<int>(trainer.global_step());
}
