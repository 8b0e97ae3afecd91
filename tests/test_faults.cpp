// The fault-injection suite: every kind of stop followed by a resume, runs
// sharing a folder, side tasks and loggers that fail, full disks and
// unwritable folders, non-finite steps, SIGKILL at random moments of a run,
// a second signal. Each test asserts that nothing is lost.
#include <doctest/doctest.h>

#include <kokoro/checkpoint/checkpoint_file.hpp>
#include <kokoro/log/media.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_tasks.hpp"

#ifndef KOKORO_TRAINING_RUNNER
#error "KOKORO_TRAINING_RUNNER must be the path of kokoro_training_runner"
#endif

extern char** environ;

using namespace kokoro;
namespace fs = std::filesystem;

namespace {

// ---- the runner as a child process ------------------------------------------

/// Starts the training runner with `args` (after its program name), its
/// output in `log`.
pid_t spawn_runner(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> all = {KOKORO_TRAINING_RUNNER};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t child = 0;
  const int error = posix_spawn(&child, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(error == 0);
  return child;
}

int wait_for(pid_t child) {
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

/// Runs the runner to its end; returns its exit code (-signal when killed).
int run_runner(const std::vector<std::string>& args, const fs::path& log) {
  const int status = wait_for(spawn_runner(args, log));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The highest global_step of a step row in metrics.jsonl, and how many
/// lines do not parse (a row torn by SIGKILL).
std::pair<std::int64_t, int> last_logged_step(const fs::path& jsonl) {
  std::ifstream in(jsonl);
  std::int64_t step = 0;
  int torn = 0;
  for (std::string line; std::getline(in, line);) {
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) {
      ++torn;
      continue;
    }
    if (row.value("type", "") == "step") step = std::max<std::int64_t>(step, row["global_step"]);
  }
  return {step, torn};
}

std::map<std::string, torch::Tensor> weights_of(const fs::path& checkpoint) {
  std::map<std::string, torch::Tensor> out;
  const auto state = load_checkpoint_file(checkpoint);
  for (const auto& entry : state.at("model_state_dict").toGenericDict()) {
    out[entry.key().toStringRef()] = entry.value().toTensor();
  }
  return out;
}

bool same_weights(const std::map<std::string, torch::Tensor>& a,
                  const std::map<std::string, torch::Tensor>& b) {
  if (a.size() != b.size() || a.empty()) return false;
  for (const auto& [name, tensor] : a) {
    if (!b.count(name) || !torch::equal(tensor, b.at(name))) return false;
  }
  return true;
}

// ---- in-process runs ----------------------------------------------------------

/// The linear task behind dropout, with faults to inject by training loss
/// call (validation, in eval mode, is left alone and not counted).
class FaultyTask : public test::LinearTask {
 public:
  using LinearTask::LinearTask;
  Loss loss(const Batch& b) {
    if (!model().is_training()) return LinearTask::loss(b);
    ++calls;
    if (calls == sigterm_at) std::raise(SIGTERM);
    if (oom_from > 0 && calls >= oom_from) throw std::bad_alloc();
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    Loss loss = LinearTask::loss(b);
    if (calls >= nan_from && calls < nan_until) loss.total = loss.total * std::nan("");
    if (calls >= inf_grad_from && calls < inf_grad_until) {
      // A finite loss whose gradients overflow.
      loss.total = loss.total * 1.0;
      loss.total.register_hook([](torch::Tensor g) {
        return torch::full_like(g, std::numeric_limits<float>::infinity());
      });
    }
    return loss;
  }
  std::int64_t calls = 0;
  std::int64_t sigterm_at = -1;
  std::int64_t oom_from = 0;
  std::int64_t nan_from = -1, nan_until = -1;
  std::int64_t inf_grad_from = -1, inf_grad_until = -1;
  int sleep_ms = 0;
};

struct FilePolicies : DefaultPolicies {
  using logger = Loggers<JsonlLogger, TensorBoardLogger>;
};
using FaultyTrainer = Trainer<FaultyTask, FilePolicies>;

test::Config run_config(const fs::path& dir) {
  auto c = test::quick_config();
  c.model.dropout = 0.3;
  c.training.epochs = 1000;
  c.training.scheduler = "cosine_warm_restarts";
  c.training.scheduler_interval = "step";
  c.training.scheduler_t0 = 3;
  c.training.warmup_steps = 2;
  c.logging.output_dir = dir.string();
  c.logging.checkpoints = true;
  c.logging.checkpoint_every_steps = 4;
  c.logging.checkpoint_every_epochs = 0;
  c.logging.keep_checkpoints = 3;
  return c;
}

void give_data(FaultyTrainer& t) {
  static const auto train = test::split(test::linear_data(40), {8, 8, 8, 8, 8});
  static const auto valid = test::split(test::linear_data(8, 3), {8});
  t.task().train = train;
  t.task().valid = valid;
}

/// A straight run of `steps` steps: its final parameters.
std::vector<torch::Tensor> straight_run(const fs::path& dir, std::int64_t steps) {
  auto config = run_config(dir);
  config.training.max_steps = steps;
  FaultyTrainer t(config);
  give_data(t);
  t.fit();
  return test::params_of(t.task().model());
}

/// Resumes the latest run in `dir` and trains it to `steps` steps in all.
std::vector<torch::Tensor> resume_to(const fs::path& dir, std::int64_t steps) {
  auto config = run_config(dir);
  config.training.max_steps = steps;
  config.training.resume = "auto";
  FaultyTrainer t(config);
  give_data(t);
  REQUIRE(t.global_step() > 0);
  const auto summary = t.fit();
  CHECK(summary.global_step == steps);
  return test::params_of(t.task().model());
}

std::vector<std::string> warnings_of(const std::vector<Message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) {
    if (m.level == Message::Level::warning) out.push_back(m.text);
  }
  return out;
}

/// Keeps the Trainer's messages.
struct MessageKeeper : test::SpyLogger {
  void on_message(const Message& m) { messages.push_back(m); }
  std::vector<Message> messages;
};

}  // namespace

// ---- resume from any stop ------------------------------------------------------

TEST_CASE("every kind of stop, then --resume auto, gives bitwise the weights of a straight run") {
  const auto dir = test::scratch_dir("faults-stops");
  const auto straight = straight_run(dir / "straight", 23);

  SUBCASE("the step budget, in the middle of an epoch") {
    auto config = run_config(dir / "steps");
    config.training.max_steps = 7;
    {
      FaultyTrainer t(config);
      give_data(t);
      CHECK(t.fit().stopped_by_max_steps);
    }
    CHECK(test::all_equal(resume_to(dir / "steps", 23), straight));
  }
  SUBCASE("the time budget") {
    auto config = run_config(dir / "time");
    config.training.max_minutes = 0.1 / 60.0;  // 100 ms: a few steps of 10 ms
    std::int64_t stopped_at = 0;
    {
      FaultyTrainer t(config);
      give_data(t);
      t.task().sleep_ms = 10;
      const auto summary = t.fit();
      CHECK(summary.stopped_by_time_limit);
      stopped_at = summary.global_step;
    }
    REQUIRE(stopped_at > 0);
    REQUIRE(stopped_at < 23);
    CHECK(test::all_equal(resume_to(dir / "time", 23), straight));
  }
  SUBCASE("a signal") {
    auto config = run_config(dir / "signal");
    {
      FaultyTrainer t(config);
      give_data(t);
      t.task().sigterm_at = 9;  // during step 9: it finishes, then the run stops
      const auto summary = t.fit();
      CHECK(summary.stop_signal == SIGTERM);
      CHECK(summary.global_step == 9);
    }
    CHECK(test::all_equal(resume_to(dir / "signal", 23), straight));
  }
  SUBCASE("the end of training, then more epochs") {
    auto config = run_config(dir / "end");
    config.training.epochs = 2;  // 10 steps
    {
      FaultyTrainer t(config);
      give_data(t);
      CHECK(t.fit().epochs_completed == 2);
    }
    config.training.epochs = 1000;
    config.training.max_steps = 23;
    config.training.resume = "auto";
    FaultyTrainer resumed(config);
    give_data(resumed);
    CHECK(resumed.global_step() == 10);
    resumed.fit();
    CHECK(test::all_equal(test::params_of(resumed.task().model()), straight));
  }
  SUBCASE("giving up on out of memory") {
    auto config = run_config(dir / "oom");
    {
      FaultyTrainer t(config);
      give_data(t);
      t.task().oom_from = 12;  // step 12 fails at every size down to one sample
      CHECK_THROWS_WITH_AS(t.fit(), doctest::Contains("even with one sample per piece"), Error);
      CHECK(t.global_step() == 11);
    }
    CHECK(test::all_equal(resume_to(dir / "oom", 23), straight));
  }
  fs::remove_all(dir);
}

TEST_CASE("a resumed run that is already complete says so and rewrites nothing") {
  const auto dir = test::scratch_dir("faults-complete");
  auto config = run_config(dir);
  config.training.max_steps = 6;
  fs::path final_path;
  {
    FaultyTrainer t(config);
    give_data(t);
    final_path = fs::path(t.fit().checkpoint);
  }
  const auto written = fs::last_write_time(final_path);
  config.training.resume = "auto";
  struct Policies : FilePolicies {
    using logger = MessageKeeper;
  };
  Trainer<FaultyTask, Policies> again(config);
  again.task().train = test::split(test::linear_data(40), {8, 8, 8, 8, 8});
  const auto summary = again.fit();
  CHECK(summary.global_step == 6);
  CHECK(summary.checkpoint_error.empty());
  CHECK(fs::last_write_time(final_path) == written);
  bool told = false;
  for (const auto& m : again.logger().messages)
    told = told || m.text.starts_with("nothing to train");
  CHECK(told);
  fs::remove_all(dir);
}

// ---- runs never clobber each other ---------------------------------------------

TEST_CASE("two runs in one folder lose nothing, auto takes the latest, a name takes that one") {
  const auto dir = test::scratch_dir("faults-two-runs");
  auto config = run_config(dir);
  config.training.max_steps = 12;
  config.logging.keep_checkpoints = 2;
  config.logging.jsonl = true;
  auto files_of = [](const fs::path& run) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(run)) {
      if (e.is_regular_file()) files[fs::relative(e.path(), run).string()] = read_text(e.path());
    }
    return files;
  };
  fs::path first, second;
  {
    FaultyTrainer a(config);
    give_data(a);
    a.fit();
    first = a.run_directory();
  }
  const auto first_files = files_of(first);
  REQUIRE(first_files.count("checkpoints/best.pt") == 1);
  REQUIRE(first_files.count("checkpoints/final.pt") == 1);
  REQUIRE(first_files.count("metrics.jsonl") == 1);
  {
    config.training.max_steps = 20;  // a second, longer run: more rotations
    FaultyTrainer b(config);
    give_data(b);
    b.fit();
    second = b.run_directory();
  }
  CHECK(first != second);
  CHECK(first.parent_path() == second.parent_path());
  CHECK(files_of(first) == first_files);  // untouched, byte for byte
  CHECK(fs::exists(second / "checkpoints" / "checkpoint_step000000020.pt"));
  CHECK(fs::read_symlink(dir / "latest") == second.filename());

  config.training.resume = "auto";
  config.training.max_steps = 24;
  {
    FaultyTrainer latest(config);
    CHECK(latest.run_directory() == second);
    CHECK(latest.global_step() == 20);
  }
  config.logging.run_name = first.filename().string();
  {
    FaultyTrainer named(config);
    CHECK(named.run_directory() == first);
    CHECK(named.global_step() == 12);
  }
  // A fresh run under a taken name stops before training, naming the ways out.
  config.training.resume = "";
  try {
    FaultyTrainer clash(config);
    FAIL("a fresh run into another run's folder was allowed");
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    CHECK(what.find(first.string() + " already holds the run") != std::string::npos);
    CHECK(what.find("--resume auto") != std::string::npos);
    CHECK(what.find("--overwrite") != std::string::npos);
  }
  CHECK(files_of(first) == first_files);
  config.logging.overwrite = true;
  {
    FaultyTrainer over(config);
    CHECK(over.run_directory() == first);
    CHECK(over.global_step() == 0);
    CHECK_FALSE(fs::exists(first / "checkpoints" / "final.pt"));
  }
  CHECK(fs::exists(second / "checkpoints" / "final.pt"));  // the other run stays
  fs::remove_all(dir);
}

TEST_CASE("a run name that is not a folder name is refused") {
  auto config = run_config(test::scratch_dir("faults-names"));
  for (const char* bad : {"..", ".", "a/b", "latest"}) {
    CAPTURE(bad);
    config.logging.run_name = bad;
    CHECK_THROWS_AS(FaultyTrainer{config}, ConfigError);
  }
}

// ---- side tasks and loggers cannot kill training --------------------------------

namespace {

/// Samples of no length at all: a synthesis that stopped at once.
struct EmptySampleTask : FaultyTask {
  using FaultyTask::FaultyTask;
  void media(Media& media, std::int64_t) {
    media.images.push_back(spectrogram_image("samples/synthesized_mel", torch::zeros({80, 0})));
    media.images.push_back(spectrogram_image("samples/one_frame_mel", torch::zeros({80, 1})));
    media.audio.push_back(
        AudioClip{.tag = "samples/synthesized", .sample_rate = 22050, .samples = {}});
  }
};

struct MediaPolicies : DefaultPolicies {
  using logger = Loggers<MessageKeeper, TensorBoardLogger, SampleFileLogger>;
};

}  // namespace

TEST_CASE("samples of zero or one frame are written or left out, never a failure") {
  const auto dir = test::scratch_dir("faults-empty-samples");
  auto config = run_config(dir);
  config.training.epochs = 2;
  config.logging.tensorboard = true;
  Trainer<EmptySampleTask, MediaPolicies> t(config);
  t.task().train = test::split(test::linear_data(8), {4, 4});
  const auto summary = t.fit();
  CHECK(summary.epochs_completed == 2);
  CHECK(summary.side_task_failures == 0);
  CHECK(summary.logger_failures == 0);
  CHECK(warnings_of(t.logger().get<MessageKeeper>().messages).empty());
  CHECK(fs::exists(t.run_directory() / "samples" / "epoch_0002_one_frame_mel.png"));
  CHECK_FALSE(fs::exists(t.run_directory() / "samples" / "epoch_0002_synthesized_mel.png"));
  fs::remove_all(dir);
}

TEST_CASE(
    "loggers and checkpoints in unwritable places: reported once, counted, training goes on") {
  const auto dir = test::scratch_dir("faults-unwritable");
  auto config = run_config(dir);
  config.logging.run_name = "run";
  config.logging.tensorboard = true;
  config.logging.jsonl = true;
  config.training.max_steps = 10;
  // Where the loggers want a folder there is a file and the other way round:
  // unwritable for root too.
  const auto run = dir / "run";
  fs::create_directories(run / "metrics.jsonl");
  std::ofstream(run / "tensorboard") << "not a folder";
  std::ofstream(run / "checkpoints") << "not a folder";
  struct Policies : DefaultPolicies {
    using logger = Loggers<MessageKeeper, JsonlLogger, TensorBoardLogger>;
  };
  Trainer<FaultyTask, Policies> t(config);
  t.task().train = test::split(test::linear_data(40), {8, 8, 8, 8, 8});
  const auto summary = t.fit();
  CHECK(summary.global_step == 10);  // trained to the end
  CHECK(summary.logger_failures > 5);
  CHECK(summary.checkpoint_failures >= 3);  // steps 4 and 8, then the final state
  CHECK(summary.checkpoint_error.find("the state at step 10 could not be saved") !=
        std::string::npos);
  const auto warnings = warnings_of(t.logger().get<MessageKeeper>().messages);
  // Once per hook and cause for the loggers, once per failed save.
  int logger_warnings = 0, save_warnings = 0;
  for (const auto& w : warnings) {
    if (w.starts_with("a logger failed")) ++logger_warnings;
    if (w.starts_with("could not save the")) ++save_warnings;
  }
  CHECK(logger_warnings >= 1);
  CHECK(logger_warnings < summary.logger_failures);
  CHECK(save_warnings >= 1);
  CHECK(save_warnings < summary.checkpoint_failures);
  fs::remove_all(dir);
}

TEST_CASE("a full disk (a file-size limit) under the loggers and the checkpoints") {
  const auto dir = test::scratch_dir("faults-full-disk");
  fs::create_directories(dir);
  // A limit the first rows and checkpoints fit under and later ones do not
  // (the runner lifts it to print its summary).
  const int logs_full =
      run_runner({(dir / "logs").string(), "30", "fsize=12000", "tensorboard"}, dir / "logs.txt");
  const auto logs_output = read_text(dir / "logs.txt");
  INFO(logs_output);
  CHECK(logs_output.find("steps 30 ") != std::string::npos);  // trained to the end
  CHECK(logs_output.find("logger_failures 0 ") == std::string::npos);
  const auto [logged, torn] = last_logged_step(dir / "logs" / "run" / "metrics.jsonl");
  CHECK(logged > 0);
  CHECK(torn == 0);  // no row was left half written
  CHECK(fs::file_size(dir / "logs" / "run" / "metrics.jsonl") <= 12000);
  CHECK((logs_full == 0 || logs_full == 4));

  // A limit under one checkpoint's size: every save fails, training still
  // ends, and the exit says the state is lost.
  const int saves_full =
      run_runner({(dir / "saves").string(), "12", "fsize=600"}, dir / "saves.txt");
  const auto saves_output = read_text(dir / "saves.txt");
  INFO(saves_output);
  CHECK(saves_full == 4);
  CHECK(saves_output.find("steps 12 ") != std::string::npos);
  CHECK(saves_output.find("checkpoint_failures 0") == std::string::npos);
  CHECK(saves_output.find("the state at step 12 could not be saved") != std::string::npos);
  fs::remove_all(dir);
}

// ---- non-finite steps ------------------------------------------------------------

TEST_CASE("a NaN loss and inf gradients are not applied, and are counted") {
  const auto dir = test::scratch_dir("faults-nonfinite");
  for (const bool nan_loss : {true, false}) {
    CAPTURE(nan_loss);
    auto config = run_config(dir / (nan_loss ? "nan" : "inf"));
    config.training.max_steps = 6;
    config.training.scheduler = "constant";
    config.model.dropout = 0.0;
    config.logging.checkpoints = false;
    FaultyTrainer t(config);
    give_data(t);
    if (nan_loss) {
      t.task().nan_from = 3, t.task().nan_until = 4;
    } else {
      t.task().inf_grad_from = 3, t.task().inf_grad_until = 4;
    }
    std::vector<std::vector<torch::Tensor>> after;
    const std::vector<FaultyTask::Batch> batches(t.task().train.begin(), t.task().train.end());
    for (int step = 0; step < 5; ++step) {
      t.step(std::span(&batches[static_cast<std::size_t>(step)], 1));
      after.push_back(test::params_of(t.task().model()));
    }
    CHECK(t.nonfinite_steps() == 1);
    CHECK(test::all_equal(after[2], after[1]));        // step 3 changed nothing
    CHECK_FALSE(test::all_equal(after[3], after[2]));  // step 4 trained again
    for (const auto& p : after.back()) CHECK(torch::isfinite(p).all().item<bool>());
  }
  fs::remove_all(dir);
}

TEST_CASE("non-finite steps in a row roll back to the last good checkpoint with a lower rate") {
  const auto dir = test::scratch_dir("faults-rollback");
  auto config = run_config(dir);
  config.training.scheduler = "constant";
  config.training.warmup_steps = 0;
  config.training.max_steps = 20;
  config.training.max_nonfinite_steps = 3;
  config.logging.checkpoint_every_steps = 2;
  {
    FaultyTrainer t(config);
    give_data(t);
    t.task().nan_from = 8, t.task().nan_until = 11;  // steps 8, 9, 10: then a rollback to 6
    const auto summary = t.fit();
    CHECK(summary.global_step == 20);
    CHECK(summary.rollbacks == 1);
    CHECK(summary.nonfinite_steps == 3);
    CHECK(t.current_lr() == doctest::Approx(config.training.learning_rate * 0.5));
    for (const auto& p : test::params_of(t.task().model()))
      CHECK(torch::isfinite(p).all().item<bool>());
  }
  // A divergence that does not go away ends with an error after max_rollbacks.
  auto stubborn = config;
  stubborn.logging.run_name = "stubborn";
  stubborn.training.max_rollbacks = 2;
  FaultyTrainer t(stubborn);
  give_data(t);
  t.task().nan_from = 8, t.task().nan_until = 1 << 30;
  CHECK_THROWS_WITH_AS(t.fit(), doctest::Contains("training diverged"), Error);
  CHECK(t.rollbacks() == 2);
  fs::remove_all(dir);
}

TEST_CASE("each rollback to the same checkpoint lowers the rate again, and a stop keeps them") {
  const auto dir = test::scratch_dir("faults-rollback-again");
  auto config = run_config(dir);
  config.training.scheduler = "constant";
  config.training.warmup_steps = 0;
  config.training.max_steps = 40;
  config.training.max_nonfinite_steps = 3;
  config.training.max_rollbacks = 3;
  config.logging.checkpoint_every_steps = 2;
  const double lr = config.training.learning_rate;
  {
    // A divergence that comes back after every rollback to step 6: the rate
    // goes down by the factor each time, not once.
    FaultyTrainer t(config);
    give_data(t);
    t.task().nan_from = 8, t.task().nan_until = 1 << 30;
    CHECK_THROWS_WITH_AS(t.fit(), doctest::Contains("after 3 rollbacks"), Error);
    CHECK(t.rollbacks() == 3);
    CHECK(t.current_lr() == doctest::Approx(lr * 0.125));
  }
  // A stop right after a rollback (SIGTERM during the step that made it):
  // the checkpoint left behind is at the step rolled back to, and says so.
  auto stopped = config;
  stopped.logging.run_name = "stopped";
  {
    FaultyTrainer t(stopped);
    give_data(t);
    t.task().nan_from = 8, t.task().nan_until = 11;
    t.task().sigterm_at = 10;
    const auto summary = t.fit();
    CHECK(summary.stop_signal == SIGTERM);
    CHECK(summary.rollbacks == 1);
    CHECK(summary.global_step == 6);
  }
  stopped.training.resume = "auto";
  FaultyTrainer resumed(stopped);
  give_data(resumed);
  CHECK(resumed.global_step() == 6);
  CHECK(resumed.rollbacks() == 1);
  CHECK(resumed.current_lr() == doctest::Approx(lr * 0.5));
  fs::remove_all(dir);
}

// ---- killed at random moments; signals ------------------------------------------

TEST_CASE("kill -9 at 20 random moments, each followed by --resume auto, loses nothing") {
  const auto dir = test::scratch_dir("faults-kill9");
  fs::create_directories(dir);
  constexpr int kSteps = 150;
  REQUIRE(run_runner({(dir / "straight").string(), std::to_string(kSteps)}, dir / "straight.txt") ==
          0);
  const auto straight = weights_of(dir / "straight" / "run" / "checkpoints" / "final.pt");

  const auto run = dir / "killed";
  const CheckpointManager checkpoints(run / "run" / "checkpoints");
  std::mt19937 random(20261201);  // the same moments every time the test runs
  std::uniform_int_distribution<int> delay_ms(0, 600);
  std::int64_t saved = 0;
  int kills = 0;
  bool finished = false;
  for (int attempt = 0; kills < 20 && !finished; ++attempt) {
    std::vector<std::string> args = {run.string(), std::to_string(kSteps)};
    if (attempt > 0) args.emplace_back("auto");
    const pid_t child = spawn_runner(args, dir / "attempt.txt");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    ::kill(child, SIGKILL);
    const int status = wait_for(child);
    if (WIFEXITED(status)) {
      REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, read_text(dir / "attempt.txt"));
      finished = true;
      break;
    }
    ++kills;
    // Every checkpoint that has a name is whole, the newest never goes back,
    // and the steps since it are at most one interval (3 steps).
    for (const auto& path : checkpoints.periodic()) CHECK_NOTHROW(load_checkpoint_file(path));
    const auto latest = checkpoints.latest_valid();
    const std::int64_t now =
        latest ? load_checkpoint_file(*latest).at("global_step").toInt() : std::int64_t{0};
    CHECK(now >= saved);
    saved = now;
    const auto [logged, torn] = last_logged_step(run / "run" / "metrics.jsonl");
    CHECK(logged - saved <= 3);
    CHECK(torn <= kills);  // at most a row cut by each kill, never more
  }
  MESSAGE(kills << " kills, the last at step " << saved);
  CHECK((kills == 20 || finished));
  if (!finished) {
    REQUIRE(run_runner({run.string(), std::to_string(kSteps), "auto"}, dir / "last.txt") == 0);
  }
  // No stray temporaries of the killed writers are left either.
  int temporaries = 0;
  for (const auto& e : fs::directory_iterator(run / "run" / "checkpoints")) {
    temporaries += e.path().filename().string().starts_with(".tmp-");
  }
  CHECK(temporaries <= 1);
  CHECK(same_weights(weights_of(run / "run" / "checkpoints" / "final.pt"), straight));
  fs::remove_all(dir);
}

TEST_CASE("a second signal ends the run at once, one signal saves, and auto continues") {
  const auto dir = test::scratch_dir("faults-signals");
  fs::create_directories(dir);
  auto wait_until_training = [](const fs::path& jsonl) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (last_logged_step(jsonl).first < 2 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  {
    // A training run asked twice, by two different signals.
    const auto run = dir / "twice";
    const pid_t child = spawn_runner({run.string(), "100000"}, dir / "twice.txt");
    wait_until_training(run / "run" / "metrics.jsonl");
    ::kill(child, SIGINT);
    ::kill(child, SIGTERM);
    const int status = wait_for(child);
    CHECK(WIFSIGNALED(status));  // not a graceful exit: stopped at once
  }
  // Every pair, the second after the first was handled (two of the same
  // sent at once would merge into one): a process that only holds the guard.
  for (const auto& [first, second] : {std::pair{SIGINT, SIGTERM}, std::pair{SIGTERM, SIGINT},
                                      std::pair{SIGTERM, SIGTERM}, std::pair{SIGINT, SIGINT}}) {
    CAPTURE(first);
    CAPTURE(second);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // only async-signal-safe calls from here on
      StopSignalGuard guard;
      std::raise(first);
      if (stop_requested() != first) ::_exit(10);
      std::raise(second);
      ::_exit(0);
    }
    const int status = wait_for(child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == second);
  }
  const auto run = dir / "once";
  const pid_t child = spawn_runner({run.string(), "100000"}, dir / "once.txt");
  wait_until_training(run / "run" / "metrics.jsonl");
  ::kill(child, SIGTERM);
  const int status = wait_for(child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);  // stopped by the signal, its state saved
  const auto latest = CheckpointManager(run / "run" / "checkpoints").latest_valid();
  REQUIRE(latest.has_value());
  const auto step = load_checkpoint_file(*latest).at("global_step").toInt();
  CHECK(run_runner({run.string(), std::to_string(step + 5), "auto"}, dir / "after.txt") == 0);
  CHECK(read_text(dir / "after.txt").find(fmt::format("steps {} ", step + 5)) != std::string::npos);
  fs::remove_all(dir);
}
