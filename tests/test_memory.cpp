// Memory pressure, the adaptive cleanup policy with injected readings, and
// out-of-memory recovery by splitting batches.
#include <doctest/doctest.h>

#include <kokoro/memory/adaptive_memory.hpp>

#include <c10/util/Exception.h>

#include <filesystem>
#include <fstream>
#include <new>

#include "test_tasks.hpp"

using namespace kokoro;

namespace {

/// A reader whose share of memory in use the test sets.
struct FakeReader {
  static inline double share = 0.0;
  static inline int reads = 0;
  MemoryReading read() const {
    ++reads;
    return {static_cast<std::int64_t>(share * 1000), 1000};
  }
  PressureThresholds profile() const { return kCudaPressure; }
};

AdaptiveMemoryOptions fast_options() {
  AdaptiveMemoryOptions o;
  o.thresholds = kCudaPressure;
  o.cleanup_every_moderate = 4;
  o.cleanup_every_high = 2;
  o.cleanup_every_critical = 1;
  o.read_interval = std::chrono::nanoseconds(0);
  return o;
}

int cleanups_over(AdaptiveMemory<FakeReader>& memory, int steps) {
  const Metrics none;
  int count = 0;
  for (int i = 0; i < steps; ++i) {
    if (memory.after_step(StepContext{.epoch = 0,
                                      .global_step = i + 1,
                                      .step_in_epoch = i + 1,
                                      .steps_per_epoch = 0,
                                      .samples = 1,
                                      .step_taken = true,
                                      .metrics = none}) == MemoryAction::release_cache) {
      ++count;
    }
  }
  return count;
}

}  // namespace

TEST_CASE("pressure levels switch at each device profile's thresholds") {
  for (auto profile : {kCudaPressure, kMpsPressure, kCpuPressure}) {
    CHECK(profile.classify(0.0) == PressureLevel::low);
    CHECK(profile.classify(profile.moderate - 1e-9) == PressureLevel::low);
    CHECK(profile.classify(profile.moderate) == PressureLevel::moderate);
    CHECK(profile.classify(profile.high - 1e-9) == PressureLevel::moderate);
    CHECK(profile.classify(profile.high) == PressureLevel::high);
    CHECK(profile.classify(profile.critical - 1e-9) == PressureLevel::high);
    CHECK(profile.classify(profile.critical) == PressureLevel::critical);
    CHECK(profile.classify(1.0) == PressureLevel::critical);
  }
  CHECK(kCudaPressure.moderate == 0.60);
  CHECK(kCudaPressure.high == 0.75);
  CHECK(kCudaPressure.critical == 0.85);
  CHECK(pressure_name(PressureLevel::high) == "high");
}

TEST_CASE("the CPU reader measures this process against its limit") {
  const auto reading = CpuMemoryReader().read();
  CHECK(reading.known());
  CHECK(reading.used_bytes > 0);
  CHECK(reading.share() > 0.0);
  CHECK(reading.share() < 1.0);
  CHECK(AutoMemoryReader(DeviceType::CPU).profile().critical == kCpuPressure.critical);
  CHECK_FALSE(AutoMemoryReader(DeviceType::MPS).read().known());
}

namespace {

void write_text(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

}  // namespace

TEST_CASE("the cgroup reader follows /proc/self/cgroup to the process's own cgroup (v2)") {
  const auto root = test::scratch_dir("cgroup-v2");
  const CgroupPaths paths{.self_cgroup = root / "proc-self-cgroup",
                          .mount = root / "sys-fs-cgroup"};
  // A Slurm-like job: the limit is on the job's parent, not at the mount's root.
  write_text(paths.self_cgroup, "0::/system.slice/slurmstepd.scope/job_42/step_0\n");
  const auto job = paths.mount / "system.slice" / "slurmstepd.scope" / "job_42";
  write_text(paths.mount / "memory.max", "max\n");  // what a reader of the root alone sees
  write_text(job / "memory.max", "8589934592\n");
  write_text(job / "step_0" / "memory.max", "max\n");
  write_text(job / "step_0" / "memory.current", "3221225472\n");
  write_text(job / "step_0" / "memory.stat",
             "anon 2000000000\nfile 1221225472\ninactive_file 221225472\nactive_file 1000000000\n");
  const auto m = read_cgroup_memory(paths);
  CHECK(m.version == 2);
  CHECK(m.cgroup == job / "step_0");
  CHECK(m.limit_bytes == 8589934592);
  CHECK(m.working_set_bytes == 3221225472 - 221225472);
  // The reader holds the process to the job's limit, with the job's working set.
  const auto reading = CpuMemoryReader(paths).read();
  if (CpuDevice().memory().total_bytes > 8589934592) {
    CHECK(reading.total_bytes == 8589934592);
    CHECK(reading.used_bytes >= 3000000000);
  }
  // No limit anywhere: the machine's memory.
  write_text(job / "memory.max", "max\n");
  CHECK(read_cgroup_memory(paths).limit_bytes == 0);
  CHECK(CpuMemoryReader(paths).read().total_bytes == CpuDevice().memory().total_bytes);
  std::filesystem::remove_all(root);
}

TEST_CASE("the cgroup reader reads v1's memory controller, and nothing where there is none") {
  const auto root = test::scratch_dir("cgroup-v1");
  const CgroupPaths paths{.self_cgroup = root / "proc-self-cgroup",
                          .mount = root / "sys-fs-cgroup"};
  write_text(paths.self_cgroup,
             "12:cpu,cpuacct:/slurm/uid_0/job_7\n11:memory:/slurm/uid_0/job_7\n0::/\n");
  const auto job = paths.mount / "memory" / "slurm" / "uid_0" / "job_7";
  write_text(paths.mount / "memory" / "memory.limit_in_bytes", "9223372036854771712\n");  // none
  write_text(job / "memory.limit_in_bytes", "2147483648\n");
  write_text(job / "memory.usage_in_bytes", "1500000000\n");
  write_text(job / "memory.stat",
             "cache 600000000\nrss 900000000\ntotal_inactive_file 500000000\n");
  const auto m = read_cgroup_memory(paths);
  CHECK(m.version == 1);
  CHECK(m.limit_bytes == 2147483648);
  CHECK(m.working_set_bytes == 1000000000);
  // A controller list with memory among others ("…,memory,…") is found too.
  write_text(paths.self_cgroup, "5:blkio,memory:/slurm/uid_0/job_7\n");
  CHECK(read_cgroup_memory(paths).limit_bytes == 2147483648);
  // Nothing to read: no limit, the machine's figures.
  const CgroupPaths missing{.self_cgroup = root / "nothing", .mount = root / "nowhere"};
  CHECK(read_cgroup_memory(missing).version == 0);
  CHECK(read_cgroup_memory(missing).limit_bytes == 0);
  CHECK(CpuMemoryReader(missing).read().known());
  std::filesystem::remove_all(root);
}

TEST_CASE("injected readings trigger cleanups at each level's interval") {
  AdaptiveMemory<FakeReader> memory(FakeReader{}, fast_options());
  FakeReader::share = 0.10;
  CHECK(cleanups_over(memory, 20) == 0);
  CHECK(memory.level() == PressureLevel::low);
  FakeReader::share = 0.65;
  CHECK(cleanups_over(memory, 20) == 5);  // every 4th step
  FakeReader::share = 0.80;
  CHECK(cleanups_over(memory, 20) == 10);  // every 2nd
  FakeReader::share = 0.90;
  CHECK(cleanups_over(memory, 20) == 20);  // every step
  CHECK(memory.level() == PressureLevel::critical);
}

TEST_CASE("cleanup never runs when memory management is off") {
  auto options = fast_options();
  options.enabled = false;
  AdaptiveMemory<FakeReader> memory(FakeReader{}, options);
  FakeReader::share = 0.99;
  FakeReader::reads = 0;
  CHECK(cleanups_over(memory, 10) == 0);
  CHECK(FakeReader::reads == 0);
  Metrics m;
  memory.metrics(m);
  CHECK(m.empty());
  auto config = get_default_config();
  config.hardware.memory_management = false;
  CHECK_FALSE(AdaptiveMemory<FakeReader>(config).options().enabled);
}

TEST_CASE("at low pressure memory is read at most once per interval, at high pressure every step") {
  auto options = fast_options();
  options.read_interval = std::chrono::hours(1);
  AdaptiveMemory<FakeReader> memory(FakeReader{}, options);
  FakeReader::share = 0.10;
  FakeReader::reads = 0;
  cleanups_over(memory, 100);
  CHECK(FakeReader::reads == 1);
  AdaptiveMemory<FakeReader> pressed(FakeReader{}, options);
  FakeReader::share = 0.80;
  FakeReader::reads = 0;
  cleanups_over(pressed, 100);
  CHECK(FakeReader::reads == 100);
}

TEST_CASE("thresholds and intervals come from the config, 0 meaning the device profile") {
  auto config = get_default_config();
  config.hardware.memory_high = 0.5;
  config.hardware.cleanup_every_high = 7;
  const AdaptiveMemory<FakeReader> memory(config);
  CHECK(memory.options().thresholds.moderate == kCudaPressure.moderate);
  CHECK(memory.options().thresholds.high == 0.5);
  CHECK(memory.options().cleanup_every_high == 7);
}

TEST_CASE("the trainer carries out requested cleanups and reports them") {
  struct Policies : test::SpyPolicies {
    using memory = AdaptiveMemory<FakeReader>;
  };
  auto config = test::quick_config();
  config.hardware.cleanup_every_critical = 1;
  FakeReader::share = 0.95;
  Trainer<test::LinearTask, Policies> trainer(config);
  trainer.task().train = test::split(test::linear_data(6), {2, 2, 2});
  trainer.fit();
  const auto& m = trainer.logger().last_metrics;
  CHECK(m.get("memory/cleanups") == 3.0);
  CHECK(m.get("memory/level") == 3.0);
  CHECK(m.get("memory/used_share") == doctest::Approx(0.95));
  CHECK(m.get("memory/overhead_pct").has_value());
  FakeReader::share = 0.0;
}

// ---- out-of-memory recovery ----------------------------------------------

namespace {

/// LinearTask that runs out of memory on pieces larger than `limit` samples
/// during training step `on_step`, and records the sizes it computed.
class TightTask : public test::LinearTask {
 public:
  using LinearTask::LinearTask;
  Loss loss(const Batch& b) {
    if (b.size() > limit && (on_step == 0 || step == on_step)) {
      if (kind == 0) throw std::bad_alloc();
      if (kind == 1)
        TORCH_CHECK(false,
                    "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes");
      throw std::runtime_error("not a memory problem");
    }
    sizes.push_back(b.size());
    return LinearTask::loss(b);
  }
  std::int64_t limit = 1000;
  std::int64_t on_step = 0;  // 0: every step
  std::int64_t step = 0;     // set by the test before each step
  int kind = 0;              // 0: std::bad_alloc, 1: CPU allocator c10::Error, 2: another error
  std::vector<std::int64_t> sizes;
};

using TightTrainer = Trainer<TightTask, test::SpyPolicies>;

std::vector<torch::Tensor> grads(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.grad().clone());
  return out;
}

}  // namespace

TEST_CASE(
    "an out-of-memory step is run again in halves with the same gradient, every sample used") {
  for (int kind : {0, 1}) {
    const std::vector<test::XYBatch> batch = {test::linear_data(8)};
    TightTrainer plain(test::quick_config());
    plain.step(batch);
    TightTrainer tight(test::quick_config());
    tight.task().limit = 2;
    tight.task().kind = kind;
    tight.step(batch);
    CHECK(tight.oom_recoveries() == 2);  // 8 -> 4+4 -> 2+2+2+2
    CHECK(tight.task().sizes == std::vector<std::int64_t>{2, 2, 2, 2});
    const auto g1 = grads(plain.task().model());
    const auto g2 = grads(tight.task().model());
    for (std::size_t i = 0; i < g1.size(); ++i) CHECK(torch::allclose(g1[i], g2[i], 1e-5, 1e-6));
  }
}

TEST_CASE("an out-of-memory error at step k of a run is recovered and training goes on") {
  auto config = test::quick_config();
  TightTrainer trainer(config);
  trainer.task().train = test::split(test::linear_data(12), {4, 4, 4});
  trainer.task().limit = 1;
  trainer.task().on_step = 2;
  for (int k = 1; k <= 3; ++k) {  // only step 2 runs short of memory
    trainer.task().step = k;
    const std::vector<test::XYBatch> one = {trainer.task().train[k - 1]};
    trainer.step(one);
  }
  CHECK(trainer.global_step() == 3);
  CHECK(trainer.oom_recoveries() == 2);
  CHECK(trainer.task().sizes == std::vector<std::int64_t>{4, 1, 1, 1, 1, 4});
}

TEST_CASE("validation that runs out of memory is evaluated in halves to the same loss") {
  TightTrainer plain(test::quick_config());
  plain.task().valid = {test::linear_data(8, 4)};
  const auto expected = plain.validate().get("loss");
  TightTrainer tight(test::quick_config());
  tight.task().valid = {test::linear_data(8, 4)};
  tight.task().limit = 2;
  const auto loss = tight.validate().get("loss");
  REQUIRE(expected.has_value());
  REQUIRE(loss.has_value());
  CHECK(*loss == doctest::Approx(*expected).epsilon(1e-6));
  CHECK(tight.task().sizes == std::vector<std::int64_t>{2, 2, 2, 2});
  CHECK(tight.oom_recoveries() == 3);  // 8 -> 4 + 4, each 4 -> 2 + 2
  tight.task().limit = 0;
  CHECK_THROWS_WITH_AS(tight.validate(), doctest::Contains("out of memory in validation"), Error);
}

TEST_CASE("with oom_keep_split the smaller pieces stay for the rest of the epoch") {
  auto config = test::quick_config();
  config.hardware.oom_keep_split = true;
  TightTrainer trainer(config);
  trainer.task().train = test::split(test::linear_data(12), {4, 4, 4});
  trainer.task().limit = 2;
  trainer.task().on_step = 1;
  trainer.task().step = 1;  // every batch would be too large: after the first, they come split
  trainer.fit();
  CHECK(trainer.oom_recoveries() == 1);
  CHECK(trainer.task().sizes == std::vector<std::int64_t>{2, 2, 2, 2, 2, 2});
}

TEST_CASE("out of memory with one sample per piece stops with a clear error and a checkpoint") {
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("kokoro-oom-{}", ::getpid());
  std::filesystem::remove_all(dir);
  auto config = test::quick_config();
  config.logging.checkpoints = true;
  config.logging.output_dir = dir.string();
  TightTrainer trainer(config);
  trainer.task().limit = 0;
  const std::vector<test::XYBatch> batch = {test::linear_data(2)};
  CHECK_THROWS_WITH_AS(trainer.step(batch),
                       doctest::Contains("out of memory at step 1 even with one sample per piece; "
                                         "checkpoint saved to"),
                       Error);
  CHECK(std::filesystem::exists(trainer.run_directory() / "checkpoints" /
                                "checkpoint_step000000000.pt"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("other errors are not taken for out of memory, and recovery can be switched off") {
  TightTrainer other(test::quick_config());
  other.task().limit = 1;
  other.task().kind = 2;
  const std::vector<test::XYBatch> batch = {test::linear_data(4)};
  CHECK_THROWS_WITH_AS(other.step(batch), "not a memory problem", std::runtime_error);
  auto config = test::quick_config();
  config.hardware.oom_recovery = false;
  TightTrainer off(config);
  off.task().limit = 1;
  CHECK_THROWS_AS(off.step(batch), std::bad_alloc);
  CHECK(off.oom_recoveries() == 0);
}

// ---- what the task hears of memory ---------------------------------------

namespace {

/// A memory policy whose pressure the test sets.
struct PressureSwitch {
  static inline bool pressure = false;
  MemoryAction after_step(const StepContext&) { return MemoryAction::none; }
  MemoryState memory_state() const {
    return {.used_bytes = pressure ? 900 : 100, .total_bytes = 1000, .pressure = pressure};
  }
};

/// TightTask that records what it hears through adapt_to_memory, and turns
/// the pressure on while computing step `pressure_on`.
class ListeningTask : public TightTask {
 public:
  using TightTask::TightTask;
  Loss loss(const Batch& b) {
    if (step == pressure_on) PressureSwitch::pressure = true;
    return TightTask::loss(b);
  }
  void adapt_to_memory(const MemoryState& state) { heard.push_back(state); }
  std::int64_t pressure_on = 0;
  std::vector<MemoryState> heard;
};

}  // namespace

TEST_CASE("the task hears of memory before the first step, when pressure starts, after an OOM") {
  struct Policies : test::SpyPolicies {
    using memory = PressureSwitch;
  };
  PressureSwitch::pressure = false;
  Trainer<ListeningTask, Policies> trainer(test::quick_config());
  auto& task = trainer.task();
  task.pressure_on = 2;
  task.limit = 2;
  task.on_step = 3;
  // fit() tells the task before its first step; then each step is driven by hand.
  task.train = {};
  trainer.fit();
  REQUIRE(task.heard.size() == 1);
  CHECK(task.heard[0].free_bytes() == 900);
  CHECK_FALSE(task.heard[0].pressure);
  CHECK_FALSE(task.heard[0].out_of_memory);
  const auto data = test::split(test::linear_data(12), {4, 4, 4});
  for (int k = 1; k <= 3; ++k) {
    task.step = k;
    trainer.step(std::vector<test::XYBatch>{data[k - 1]});
  }
  // Step 1: nothing new. Step 2: the pressure starts. Step 3: out of memory
  // (and the pressure, still on, is not repeated).
  REQUIRE(task.heard.size() == 3);
  CHECK(task.heard[1].pressure);
  CHECK(task.heard[1].free_bytes() == 100);
  CHECK_FALSE(task.heard[1].out_of_memory);
  CHECK(task.heard[2].out_of_memory);
  CHECK(trainer.oom_recoveries() == 1);
  PressureSwitch::pressure = false;
}
