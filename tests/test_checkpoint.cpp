// Checkpoints: complete state, atomic and verified files, bitwise resume,
// fallbacks, mismatch reports, keep-last-K, best loss, graceful stop.
#include <doctest/doctest.h>

#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/checkpoint/checkpoint_manager.hpp>
#include <kokoro/util/crc32.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_tasks.hpp"

using namespace kokoro;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const auto dir = test::scratch_dir(name);
  fs::create_directories(dir);
  return dir;
}

/// Everything that changes state: dropout, a scaler, a per-step cosine
/// schedule with warmup, AdamW.
struct ResumePolicies : DefaultPolicies {
  using scaler = DynamicGradScaler;
  using logger = test::SpyLogger;
};

TrainingConfig resume_config(const fs::path& dir) {
  auto c = test::quick_config();
  c.model.dropout = 0.3;
  c.training.epochs = 3;
  c.training.scheduler = "cosine_warm_restarts";
  c.training.scheduler_interval = "step";
  c.training.scheduler_t0 = 1;
  c.training.warmup_steps = 3;
  c.training.weight_decay = 0.01;
  c.logging.output_dir = dir.string();
  return c;
}

using ResumeTrainer = Trainer<test::LinearTask, ResumePolicies>;

/// The same batches for every trainer.
void give_data(ResumeTrainer& t) {
  static const auto train = test::split(test::linear_data(10, 5), {2, 2, 2, 2, 2});
  static const auto valid = test::split(test::linear_data(4, 6), {4});
  t.task().train = train;
  t.task().valid = valid;
}

/// Flips one byte inside a tensor's data: the middle of the first run of
/// `value`'s float bytes. (Not the file's middle: libtorch 2.x writes a zip
/// whose records are padded, and a flipped padding byte changes nothing.)
void corrupt_tensor(const fs::path& path, float value) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string run;
  for (int i = 0; i < 16; ++i) run.append(reinterpret_cast<const char*>(&value), sizeof value);
  const auto at = bytes.find(run);
  REQUIRE(at != std::string::npos);
  bytes[at + run.size() / 2] = static_cast<char>(bytes[at + run.size() / 2] ^ 0x5a);
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void truncate_half(const fs::path& path) { fs::resize_file(path, fs::file_size(path) / 2); }

}  // namespace

TEST_CASE("the CRC-32 variants give their check values") {
  CHECK(Crc32Ieee().update("123456789").value() == 0xCBF43926u);
  CHECK(Crc32c().update("123456789").value() == 0xE3069283u);
}

TEST_CASE("an atomic write replaces the file and leaves no temporary behind") {
  const auto dir = scratch("atomic");
  write_file_atomically(dir / "a.txt", "first");
  write_file_atomically(dir / "a.txt", "second");
  std::ifstream in(dir / "a.txt");
  std::string text;
  in >> text;
  CHECK(text == "second");
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 1);
  CHECK_THROWS_WITH_AS(write_file_atomically(dir / "missing" / "b.txt", "x"),
                       doctest::Contains("missing/b.txt: cannot create"), Error);
  fs::remove_all(dir);
}

TEST_CASE("every piece of training state round-trips through a checkpoint") {
  const auto dir = scratch("roundtrip");
  auto config = resume_config(dir);
  config.training.max_steps = 4;
  ResumeTrainer a(config);
  give_data(a);
  a.fit();
  const auto path = dir / "state.pt";
  save_checkpoint_file(path, a.checkpoint());
  const auto next_random = torch::rand({4});  // what a's generator gives next

  config.training.seed = 999;  // other initial weights, to be overwritten
  config.training.max_steps = 0;
  ResumeTrainer b(config);
  b.load_checkpoint(path);
  const auto pa = test::params_of(a.task().model());
  const auto pb = test::params_of(b.task().model());
  for (std::size_t i = 0; i < pa.size(); ++i) CHECK(torch::equal(pa[i], pb[i]));
  CHECK(b.global_step() == 4);
  CHECK(b.epoch() == a.epoch());
  CHECK(b.current_lr() == a.current_lr());
  CHECK((b.scheduler().state_dict() == a.scheduler().state_dict()));
  CHECK((b.scaler().state_dict() == a.scaler().state_dict()));
  CHECK(b.best_loss() == a.best_loss());
  const auto sa = optimizer_state_dict(a.optimizer()).at("state").toGenericDict();
  const auto sb = optimizer_state_dict(b.optimizer()).at("state").toGenericDict();
  REQUIRE(sa.size() == sb.size());
  for (const auto& entry : sa) {
    const auto other = sb.at(entry.key()).toGenericDict();
    for (const auto& field : entry.value().toGenericDict()) {
      CHECK(torch::equal(field.value().toTensor(), other.at(field.key()).toTensor()));
    }
  }
  // The random generator continues from the saved state.
  CHECK(torch::equal(torch::rand({4}), next_random));
  fs::remove_all(dir);
}

TEST_CASE("k steps, a stop and a resume give bitwise the parameters of a straight run") {
  const auto dir = scratch("bitwise");
  auto straight_config = resume_config(dir / "straight");
  straight_config.training.max_steps = 12;
  ResumeTrainer straight(straight_config);
  give_data(straight);
  straight.fit();

  for (std::int64_t stop_at : {5, 7}) {  // an epoch boundary and the middle of an epoch
    auto config = resume_config(dir / fmt::format("resumed{}", stop_at));
    config.logging.checkpoints = true;
    config.logging.checkpoint_every_steps = stop_at;
    config.training.max_steps = stop_at;
    {
      ResumeTrainer first(config);
      give_data(first);
      first.fit();
    }
    config.training.max_steps = 12;
    config.training.resume = "auto";
    ResumeTrainer resumed(config);
    give_data(resumed);
    CHECK(resumed.global_step() == stop_at);
    resumed.fit();
    const auto p1 = test::params_of(straight.task().model());
    const auto p2 = test::params_of(resumed.task().model());
    for (std::size_t i = 0; i < p1.size(); ++i) {
      CHECK_MESSAGE(torch::equal(p1[i], p2[i]), "stopped at step " << stop_at);
    }
    CHECK(resumed.current_lr() == straight.current_lr());
  }
  fs::remove_all(dir);
}

TEST_CASE("a damaged newest checkpoint is named and auto-resume falls back to an older one") {
  const auto dir = scratch("fallback");
  CheckpointManager manager(dir, 0);
  for (std::int64_t step : {1, 2, 3}) {
    auto state = make_ivalue_dict();
    state.insert("global_step", step);
    state.insert("weights", torch::full({256}, static_cast<float>(step)));
    manager.save_periodic(step, state);
  }
  corrupt_tensor(manager.periodic_path(3), 3.0f);
  truncate_half(manager.periodic_path(2));
  CHECK_THROWS_WITH_AS(
      load_checkpoint_file(manager.periodic_path(3)),
      doctest::Contains("checkpoint_step000000003.pt: the checkpoint is corrupted"), Error);
  CHECK_THROWS_WITH_AS(load_checkpoint_file(manager.periodic_path(2)),
                       doctest::Contains("checkpoint_step000000002.pt: not a readable checkpoint"),
                       Error);
  std::vector<std::string> rejected;
  const auto latest = manager.latest_valid(&rejected);
  REQUIRE(latest.has_value());
  CHECK(*latest == manager.periodic_path(1));
  CHECK(rejected.size() == 2);
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint whose integrity entry is malformed is named, and auto skips it") {
  const auto dir = scratch("malformed-integrity");
  CheckpointManager manager(dir, 0);
  auto good = make_ivalue_dict();
  good.insert("global_step", std::int64_t{1});
  manager.save_periodic(1, good);
  // Written past save_checkpoint_file: each integrity entry libtorch would
  // refuse to read as the dict of an integer it should be.
  auto not_a_dict = make_ivalue_dict();
  not_a_dict.insert("integrity", std::string("crc32"));
  auto no_crc = make_ivalue_dict();
  no_crc.insert("integrity", make_ivalue_dict());
  auto text_crc = make_ivalue_dict();
  auto entry = make_ivalue_dict();
  entry.insert("crc32", std::string("0x1234"));
  text_crc.insert("integrity", entry);
  std::int64_t step = 2;
  for (const auto& state : {not_a_dict, no_crc, text_crc}) {
    const auto bytes = torch::pickle_save(state);
    std::ofstream(manager.periodic_path(step), std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    const auto expected = manager.periodic_path(step).filename().string() +
                          ": the checkpoint's integrity entry is malformed";
    CHECK_THROWS_WITH_AS(load_checkpoint_file(manager.periodic_path(step)),
                         doctest::Contains(expected.c_str()), Error);
    ++step;
  }
  std::vector<std::string> rejected;
  const auto latest = manager.latest_valid(&rejected);
  REQUIRE(latest.has_value());
  CHECK(*latest == manager.periodic_path(1));
  CHECK(rejected.size() == 3);
  fs::remove_all(dir);
}

TEST_CASE("auto-resume in a trainer skips damaged checkpoints, a missing path is an error") {
  const auto dir = scratch("trainer-fallback");
  auto config = resume_config(dir);
  config.logging.checkpoints = true;
  config.logging.checkpoint_every_steps = 2;
  config.logging.keep_checkpoints = 0;
  config.training.max_steps = 4;
  fs::path run;
  {
    ResumeTrainer t(config);
    give_data(t);
    t.fit();
    run = t.run_directory();
  }
  const CheckpointManager manager(run / "checkpoints");
  truncate_half(manager.periodic_path(4));
  config.training.resume = "auto";
  ResumeTrainer resumed(config);
  CHECK(resumed.global_step() == 2);

  config.training.resume = (dir / "nope.pt").string();
  CHECK_THROWS_WITH_AS(ResumeTrainer{config},
                       doctest::Contains("nope.pt: cannot open the checkpoint"), Error);
  config.training.resume = "auto";
  config.logging.output_dir = (dir / "empty").string();
  ResumeTrainer fresh(config);
  CHECK(fresh.global_step() == 0);
  fs::remove_all(dir);
}

TEST_CASE("a kill -9 in the middle of saves never leaves a broken checkpoint behind") {
  const auto dir = scratch("kill");
  // The writer saves 32 MiB checkpoints back to back (~0.2 s each here).
  // Each run waits for its first checkpoint, however loaded the machine is,
  // then kills it at a different point of the following saves.
  for (int delay_ms : {0, 70, 150, 230}) {
    const auto run = dir / std::to_string(delay_ms);
    fs::create_directories(run);
    const std::string program = KOKORO_CHECKPOINT_WRITER;
    const std::string folder = run.string();
    char* argv[] = {const_cast<char*>(program.c_str()), const_cast<char*>(folder.c_str()), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t child = 0;
    REQUIRE(posix_spawn(&child, program.c_str(), &actions, nullptr, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (CheckpointManager(run).periodic().empty() &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));

    const CheckpointManager manager(run);
    for (const auto& path : manager.periodic()) {
      CHECK_NOTHROW(load_checkpoint_file(path));  // every named checkpoint is whole
    }
    const auto latest = manager.latest_valid();
    REQUIRE(latest.has_value());  // the writer did save before being killed
    CHECK(load_checkpoint_file(*latest).at("global_step").toInt() >= 1);
  }
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint of another architecture lists missing, unexpected and mis-shaped tensors") {
  const auto dir = scratch("mismatch");
  torch::nn::Module saved_model;
  saved_model.register_module("linear", torch::nn::Linear(3, 1));
  saved_model.register_module("extra", torch::nn::Linear(2, 2));
  torch::nn::Module model;
  model.register_module("linear", torch::nn::Linear(4, 1));
  model.register_module("head", torch::nn::Linear(1, 1));
  const auto before = test::params_of(model);
  CHECK_THROWS_WITH_AS(load_module_state_dict(model, module_state_dict(saved_model), "other.pt"),
                       "other.pt: the checkpoint does not fit this model\n"
                       "  missing (2): head.bias, head.weight\n"
                       "  unexpected (2): extra.weight, extra.bias\n"
                       "  mis-shaped (1): linear.weight (saved [1, 3], model [1, 4])",
                       Error);
  const auto after = test::params_of(model);
  for (std::size_t i = 0; i < before.size(); ++i) CHECK(torch::equal(before[i], after[i]));
  fs::remove_all(dir);
}

TEST_CASE("only the newest keep_checkpoints periodic checkpoints are kept") {
  const auto dir = scratch("keep");
  CheckpointManager manager(dir, 2);
  for (std::int64_t step = 1; step <= 5; ++step) {
    auto state = make_ivalue_dict();
    state.insert("global_step", step);
    manager.save_periodic(step, state);
  }
  const auto kept = manager.periodic();
  REQUIRE(kept.size() == 2);
  CHECK(kept[0] == manager.periodic_path(5));
  CHECK(kept[1] == manager.periodic_path(4));
  fs::remove_all(dir);
}

TEST_CASE("the best loss survives a resume and best.pt holds it") {
  const auto dir = scratch("best");
  auto config = resume_config(dir);
  config.logging.checkpoints = true;
  config.logging.checkpoint_every_epochs = 1;
  ResumeTrainer first(config);
  give_data(first);
  first.fit();
  const double best = first.best_loss();
  CHECK(std::isfinite(best));
  const auto checkpoints = first.run_directory() / "checkpoints";
  const auto saved = load_checkpoint_file(checkpoints / "best.pt");
  CHECK(saved.at("best_loss").toDouble() == best);
  CHECK(load_checkpoint_file(checkpoints / "final.pt").at("epoch").toInt() == 3);
  CHECK(fs::exists(checkpoints / "model_weights.pt"));

  config.training.resume = "auto";
  config.training.epochs = 4;
  ResumeTrainer resumed(config);
  CHECK(resumed.best_loss() == best);  // not the last epoch's loss
  CHECK(resumed.epoch() == 3);
  fs::remove_all(dir);
}

namespace {

/// Sends itself SIGTERM while computing the loss of its third batch.
class TerminatedTask : public test::LinearTask {
 public:
  using LinearTask::LinearTask;
  Loss loss(const Batch& b) {
    if (++calls_ == 3) std::raise(SIGTERM);
    return LinearTask::loss(b);
  }

 private:
  int calls_ = 0;
};

}  // namespace

TEST_CASE("SIGTERM finishes the step, saves a checkpoint and returns") {
  const auto dir = scratch("sigterm");
  auto config = resume_config(dir);
  config.logging.checkpoints = true;
  struct sigaction before {};
  sigaction(SIGTERM, nullptr, &before);
  Trainer<TerminatedTask, ResumePolicies> trainer(config);
  trainer.task().train = test::split(test::linear_data(10, 5), {2, 2, 2, 2, 2});
  const auto summary = trainer.fit();
  CHECK(summary.stop_signal == SIGTERM);
  CHECK(summary.global_step == 3);  // the interrupted step was completed
  REQUIRE_FALSE(summary.checkpoint.empty());
  const auto saved = load_checkpoint_file(summary.checkpoint);
  CHECK(saved.at("global_step").toInt() == 3);
  CHECK(saved.at("step_in_epoch").toInt() == 3);
  struct sigaction now {};
  sigaction(SIGTERM, nullptr, &now);
  CHECK((now.sa_handler == before.sa_handler));  // the previous handler is back
  fs::remove_all(dir);
}

TEST_CASE_TEMPLATE("Adam, AdamW and SGD states round-trip in PyTorch's layout", Optimizer,
                   torch::optim::Adam, torch::optim::AdamW, torch::optim::SGD) {
  auto make = [] {
    auto w = torch::tensor({1.0f, -2.0f}, torch::requires_grad());
    auto options = [] {
      if constexpr (std::is_same_v<Optimizer, torch::optim::SGD>) {
        return torch::optim::SGDOptions(0.1).momentum(0.9);
      } else if constexpr (std::is_same_v<Optimizer, torch::optim::Adam>) {
        return torch::optim::AdamOptions(0.1).betas({0.8, 0.9});
      } else {
        return torch::optim::AdamWOptions(0.1).betas({0.8, 0.9});
      }
    }();
    return std::make_pair(w, std::make_unique<Optimizer>(std::vector<torch::Tensor>{w}, options));
  };
  auto [w1, first] = make();
  for (int i = 0; i < 3; ++i) {
    first->zero_grad();
    (w1 * w1 * w1).sum().backward();
    first->step();
  }
  const auto saved = optimizer_state_dict(*first);
  auto [w2, second] = make();
  {
    torch::NoGradGuard no_grad;
    w2.copy_(w1);
  }
  load_optimizer_state_dict(*second, saved, "test");
  const auto groups = optimizer_state_dict(*second).at("param_groups").toList();
  CHECK(groups.get(0).toGenericDict().at("lr").toDouble() == 0.1);
  auto step = [](torch::Tensor& w, torch::optim::Optimizer& opt) {
    opt.zero_grad();
    (w * w * w).sum().backward();
    opt.step();
  };
  step(w1, *first);
  step(w2, *second);
  CHECK(torch::equal(w1, w2));  // the restored state drives the same update
}

TEST_CASE("the checkpoint manager's role: best, final with its weights, and load") {
  static_assert(CheckpointPolicy<CheckpointManager> && CheckpointPolicy<archetype::Checkpoints>);
  const auto dir = scratch("manager-role");
  auto config = test::quick_config();
  config.logging.output_dir = dir.string();
  const CheckpointManager manager(config);
  auto state = make_ivalue_dict();
  state.insert("global_step", std::int64_t{7});
  auto weights = make_ivalue_dict();
  weights.insert("linear.weight", torch::ones({2, 2}));
  manager.save_best(state);
  CHECK(manager.save_final(state, weights) == dir / "checkpoints" / "final.pt");
  CHECK(manager.load(dir / "checkpoints" / "best.pt").at("global_step").toInt() == 7);
  CHECK(manager.load(dir / "checkpoints" / "final.pt").at("global_step").toInt() == 7);
  CHECK(fs::exists(dir / "checkpoints" / "model_weights.pt"));
  CHECK_THROWS_WITH_AS(manager.load(dir / "checkpoints" / "missing.pt"),
                       doctest::Contains("missing.pt"), Error);
  fs::remove_all(dir);
}
