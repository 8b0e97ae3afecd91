// Data parallel over c10d with Gloo: real process groups of 2 ranks on this
// machine (kokoro_distributed_runner started with torchrun's variables),
// against one process; the shard rule; the launch variables.
#include <doctest/doctest.h>

#include <torch/nn/modules/linear.h>
#include <kokoro/core/data_shard.hpp>
#include <kokoro/distributed/data_parallel.hpp>
#include <kokoro/distributed/gradient_buckets.hpp>
#include <kokoro/distributed/launch_environment.hpp>
#include <kokoro/nn/gradient_checkpoint.hpp>
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tts_fixtures.hpp"

#ifndef KOKORO_DISTRIBUTED_RUNNER
#error "KOKORO_DISTRIBUTED_RUNNER must be the path of kokoro_distributed_runner"
#endif

using namespace kokoro;
namespace fs = std::filesystem;

namespace {

/// A TCP port free on the loopback now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

struct RankResult {
  int exit_code = -1;
  std::int64_t steps = -1;
  std::vector<double> params;
  std::vector<double> initial;
  std::vector<int> batches;
  double validation = -1;
  std::int64_t failures = -1;
  /// GradientOverlapReport: steps, buckets, started in / after backward, redone.
  std::vector<std::int64_t> overlap;
  /// Each training forward's dropout mask (0 kept, 1 dropped).
  std::vector<std::string> masks;
  /// extra_params: whether the parameter has a gradient, then its values.
  std::vector<double> unused;
  std::vector<double> frozen;
  /// The TTS runner: "epoch:id" of each clip trained on.
  std::vector<std::string> clips;
  std::string stderr_text;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs the runner as `world` ranks (world 0: one plain process without
/// the launch variables) in `dir`, each with `args` plus its own extras;
/// waits for all and reads their results. `end_with_rank0`: once rank 0 has
/// exited the others are killed, as torchrun does with a failed group.
std::vector<RankResult> run_ranks(const fs::path& dir, int world,
                                  const std::vector<std::string>& args,
                                  const std::map<int, std::vector<std::string>>& extra = {},
                                  bool end_with_rank0 = false) {
  fs::create_directories(dir);
  const auto port = std::to_string(free_port());
  const int processes = std::max(world, 1);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < processes; ++rank) {
    std::vector<std::string> argv{KOKORO_DISTRIBUTED_RUNNER, dir.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    if (const auto it = extra.find(rank); it != extra.end()) {
      argv.insert(argv.end(), it->second.begin(), it->second.end());
    }
    const auto log = (dir / ("stderr-rank" + std::to_string(rank) + ".txt")).string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (world > 0) {
        ::setenv("RANK", std::to_string(rank).c_str(), 1);
        ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
        ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
        ::setenv("MASTER_ADDR", "127.0.0.1", 1);
        ::setenv("MASTER_PORT", port.c_str(), 1);
      } else {
        ::unsetenv("WORLD_SIZE");
        ::unsetenv("RANK");
      }
      if (std::freopen(log.c_str(), "w", stderr) == nullptr) std::_Exit(90);
      std::vector<char*> raw;
      for (auto& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      std::_Exit(91);
    }
    pids.push_back(pid);
  }
  std::vector<RankResult> results(static_cast<std::size_t>(processes));
  for (int rank = 0; rank < processes; ++rank) {
    int status = 0;
    if (end_with_rank0 && rank > 0) ::kill(pids[static_cast<std::size_t>(rank)], SIGKILL);
    ::waitpid(pids[static_cast<std::size_t>(rank)], &status, 0);
    auto& r = results[static_cast<std::size_t>(rank)];
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.stderr_text = read_text(dir / ("stderr-rank" + std::to_string(rank) + ".txt"));
    std::ifstream in(dir / ("result-rank" + std::to_string(rank) + ".txt"));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string key;
      words >> key;
      if (key == "steps") words >> r.steps;
      if (key == "params") {
        for (double v; words >> v;) r.params.push_back(v);
      }
      if (key == "initial") {
        for (double v; words >> v;) r.initial.push_back(v);
      }
      if (key == "batches") {
        for (int v; words >> v;) r.batches.push_back(v);
      }
      if (key == "validation") words >> r.validation;
      if (key == "failures") words >> r.failures;
      if (key == "overlap") {
        for (std::int64_t v; words >> v;) r.overlap.push_back(v);
      }
      if (key == "clips") {
        for (std::string v; words >> v;) r.clips.push_back(v);
      }
      if (key == "masks") {
        for (std::string v; words >> v;) r.masks.push_back(v);
      }
      if (key == "unused" || key == "frozen") {
        auto& values = key == "unused" ? r.unused : r.frozen;
        for (double v; words >> v;) values.push_back(v);
      }
    }
  }
  return results;
}

fs::path scratch(const std::string& name) {
  const auto dir =
      fs::temp_directory_path() / ("kokoro-distributed-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  return dir;
}

/// Both ranks ended with rank 0's weights, and those equal the single
/// process's within float32 rounding: the ranks' mean gradient is a sum in
/// another order, a few units in the 7th digit after 10 steps of lr 0.05.
void check_same_parameters(const std::vector<RankResult>& ranks, const RankResult& single) {
  REQUIRE(ranks.size() == 2);
  for (const auto& r : ranks) {
    CAPTURE(r.stderr_text);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.params.size() == single.params.size());
  }
  CHECK(ranks[0].params == ranks[1].params);
  for (std::size_t i = 0; i < single.params.size(); ++i) {
    CAPTURE(i);
    CHECK(ranks[0].params[i] == doctest::Approx(single.params[i]).epsilon(1e-5));
  }
  CHECK(ranks[0].params != std::vector<double>(single.params.size(), 0.0));
}

}  // namespace

TEST_CASE(
    "a rank's share of an epoch: disjoint, covering, padded or dropped as PyTorch's sampler") {
  // 10 batches over 4 ranks: 3 rounds, the last two ranks repeat batches 0, 1.
  std::vector<std::vector<std::int64_t>> shares;
  for (int r = 0; r < 4; ++r) shares.push_back(shard_indices(10, {.rank = r, .world_size = 4}));
  CHECK(shares[0] == std::vector<std::int64_t>{0, 4, 8});
  CHECK(shares[1] == std::vector<std::int64_t>{1, 5, 9});
  CHECK(shares[2] == std::vector<std::int64_t>{2, 6, 0});
  CHECK(shares[3] == std::vector<std::int64_t>{3, 7, 1});
  // drop_last: only the complete rounds.
  CHECK(shard_indices(10, {.rank = 3, .world_size = 4, .drop_last = true}) ==
        std::vector<std::int64_t>{3, 7});
  // From a position (a resumed epoch), the rest is shared out the same way.
  CHECK(shard_indices(10, {.rank = 1, .world_size = 2, .position = 6}) ==
        std::vector<std::int64_t>{7, 9});
  // Fewer batches left than ranks: each rank still takes one.
  CHECK(shard_indices(10, {.rank = 3, .world_size = 4, .position = 9}) ==
        std::vector<std::int64_t>{9});
  CHECK(shard_indices(10, {.rank = 0, .world_size = 1, .position = 4}).size() == 6);
  CHECK(advance_position(8, 10, 4, 1) == 10);
}

TEST_CASE("the launch variables: read as torchrun sets them, malformed ones named") {
  struct Env {
    ~Env() {
      for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) {
        ::unsetenv(name);
      }
    }
  } restore;
  ::unsetenv("WORLD_SIZE");
  CHECK_FALSE(read_launch_environment().launched);
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "1", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("MASTER_ADDR", "10.0.0.1", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  const auto env = read_launch_environment();
  CHECK(env.launched);
  CHECK(env.world_size == 2);
  CHECK(env.rank == 1);
  CHECK(env.master_addr == "10.0.0.1");
  CHECK(env.master_port == 29511);
  ::setenv("RANK", "2", 1);
  CHECK_THROWS_WITH_AS(read_launch_environment(), doctest::Contains("RANK=\"2\""), ConfigError);
  ::setenv("RANK", "0", 1);
  ::setenv("MASTER_PORT", "http", 1);
  CHECK_THROWS_WITH_AS(read_launch_environment(), doctest::Contains("MASTER_PORT"), ConfigError);
  // hardware.distributed: on without a launcher is refused before training.
  ::unsetenv("WORLD_SIZE");
  HardwareSection hardware;
  hardware.distributed = "on";
  CHECK_THROWS_WITH_AS(DataParallel(hardware, read_launch_environment()),
                       doctest::Contains("torchrun"), ConfigError);
  hardware.distributed = "auto";
  const DataParallel single(hardware, read_launch_environment());
  CHECK(single.world_size() == 1);
  CHECK(single.backend() == "none");
}

TEST_CASE("2 ranks of batch 4 take the steps of 1 process of batch 8") {
  SUBCASE("plain") {
    const auto single = run_ranks(scratch("single"), 0, {"batch=8"});
    REQUIRE(single[0].exit_code == 0);
    const auto ranks = run_ranks(scratch("pair"), 2, {"batch=4"});
    check_same_parameters(ranks, single[0]);
    // Shares: disjoint, and together the 20 batches of the epoch (10 steps).
    std::set<int> all;
    for (const auto& r : ranks) {
      CHECK(r.batches.size() == 10);
      all.insert(r.batches.begin(), r.batches.end());
    }
    CHECK(all.size() == 20);
    CHECK(ranks[0].batches.front() == 0);
    CHECK(ranks[1].batches.front() == 1);
    // Validation is sharded and its mean taken over every rank's batches.
    CHECK(ranks[0].validation == doctest::Approx(single[0].validation).epsilon(1e-5));
  }
  SUBCASE("with accumulation") {
    const auto single = run_ranks(scratch("single-acc"), 0, {"batch=8", "accumulation=2"});
    REQUIRE(single[0].exit_code == 0);
    const auto ranks = run_ranks(scratch("pair-acc"), 2, {"batch=4", "accumulation=2"});
    check_same_parameters(ranks, single[0]);
  }
  SUBCASE("with the dynamic grad scaler") {
    const auto single = run_ranks(scratch("single-scaler"), 0, {"batch=8", "scaler=dynamic"});
    REQUIRE(single[0].exit_code == 0);
    const auto ranks = run_ranks(scratch("pair-scaler"), 2, {"batch=4", "scaler=dynamic"});
    check_same_parameters(ranks, single[0]);
  }
  SUBCASE("the all-reduce overlapped with backward or after it: the same weights, bitwise") {
    const auto after =
        run_ranks(scratch("pair-after"), 2, {"batch=4", "accumulation=2", "overlap=off"});
    const auto during = run_ranks(scratch("pair-during"), 2, {"batch=4", "accumulation=2"});
    for (const auto* pair : {&after, &during}) {
      for (const auto& r : *pair) {
        CAPTURE(r.stderr_text);
        REQUIRE(r.exit_code == 0);
        REQUIRE(r.overlap.size() == 5);
        CHECK(r.overlap[0] == 10);  // steps
        CHECK(r.overlap[4] == 0);   // none redone
      }
    }
    CHECK(during[0].params == after[0].params);
    // The linear model is one bucket: it goes out in the last micro-batch's
    // backward when overlapping, after backward when not.
    CHECK(during[0].overlap[2] == 10);
    CHECK(after[0].overlap[2] == 0);
    CHECK(after[0].overlap[3] == 10);
  }
}

TEST_CASE("an out-of-memory step on one rank is retried there in halves, the ranks in step") {
  const auto plain = run_ranks(scratch("no-oom"), 2, {"batch=4"});
  const auto recovered = run_ranks(scratch("oom"), 2, {"batch=4", "oom_at=2"});
  for (const auto& r : recovered) {
    CAPTURE(r.stderr_text);
    REQUIRE(r.exit_code == 0);
    CHECK(r.steps == 10);
  }
  // Rank 1's step 3 ran as two halves of 2 samples, weighted as the whole.
  CHECK(recovered[1].batches.size() == 11);
  CHECK(std::count(recovered[1].batches.begin(), recovered[1].batches.end(), -1) == 1);
  check_same_parameters(recovered, plain[0]);
}

TEST_CASE("a parameter no rank uses and a frozen one stay untouched, as in one process") {
  // Weight decay on: a parameter given a zero gradient would still shrink.
  const auto single =
      run_ranks(scratch("extra-single"), 0, {"batch=8", "extra_params", "weight_decay=0.1"});
  REQUIRE(single[0].exit_code == 0);
  const auto ranks =
      run_ranks(scratch("extra-pair"), 2, {"batch=4", "extra_params", "weight_decay=0.1"});
  check_same_parameters(ranks, single[0]);
  // No gradient (the first value), and the values they were made with.
  for (const auto* r : {&single[0], &ranks[0], &ranks[1]}) {
    CHECK(r->unused == std::vector<double>{0, 1, 1, 1, 1});
    CHECK(r->frozen == std::vector<double>{0, 2, 2, 2});
  }
  // A frozen parameter holds back no bucket: the one bucket of the linear
  // model goes out during backward at every step.
  const auto frozen = run_ranks(scratch("frozen-pair"), 2, {"batch=4", "frozen_only"});
  for (const auto& r : frozen) {
    CAPTURE(r.stderr_text);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.overlap.size() == 5);
    CHECK(r.overlap[1] == 1);   // buckets
    CHECK(r.overlap[2] == 10);  // started in backward
    CHECK(r.frozen == std::vector<double>{0, 2, 2, 2});
  }
}

TEST_CASE("out of memory inside a gradient bucket on one rank leaves the ranks in step") {
  const auto plain = run_ranks(scratch("bucket-plain"), 2, {"batch=4"});
  REQUIRE(plain[0].exit_code == 0);
  // A bucket per parameter; rank 1 fails to send the second one at step 3,
  // after the first went out, and runs the step again in halves.
  const auto faulty =
      run_ranks(scratch("bucket-fault"), 2, {"batch=4", "bucket_fault=2", "timeout=10"});
  for (const auto& r : faulty) {
    CAPTURE(r.stderr_text);
    REQUIRE(r.exit_code == 0);
    CHECK(r.steps == 10);
    REQUIRE(r.overlap.size() == 5);
    CHECK(r.overlap[1] == 2);  // buckets
    CHECK(r.overlap[4] == 1);  // that step reduced again, on both ranks
  }
  CHECK(faulty[1].stderr_text.find("out of memory at step 3") != std::string::npos);
  check_same_parameters(faulty, plain[0]);
}

TEST_CASE("dropout masks differ across ranks, a rerun and a resume on 2 ranks draw the same") {
  const std::vector<std::string> args{"batch=4", "dropout=0.5"};
  const auto first = run_ranks(scratch("dropout-first"), 2, args);
  const auto again = run_ranks(scratch("dropout-again"), 2, args);
  for (const auto* pair : {&first, &again}) {
    for (const auto& r : *pair) {
      CAPTURE(r.stderr_text);
      REQUIRE(r.exit_code == 0);
      REQUIRE(r.masks.size() == 10);
    }
  }
  int same_steps = 0;
  for (std::size_t step = 0; step < 10; ++step)
    same_steps += first[0].masks[step] == first[1].masks[step];
  CHECK(same_steps <= 1);  // 12 coin flips a step: two equal masks are rare
  CHECK(first[0].masks == again[0].masks);
  CHECK(first[1].masks == again[1].masks);
  CHECK(first[0].params == again[0].params);
  // Stopped after 6 steps and resumed on 2 ranks: the same masks from step 7
  // and the same weights, bitwise.
  const auto dir = scratch("dropout-resume");
  auto with_files = args;
  with_files.push_back("files");
  auto part = with_files;
  part.push_back("steps=6");
  REQUIRE(run_ranks(dir, 2, part)[0].exit_code == 0);
  auto rest = with_files;
  rest.push_back("resume");
  const auto resumed = run_ranks(dir, 2, rest);
  for (int rank = 0; rank < 2; ++rank) {
    const auto& r = resumed[static_cast<std::size_t>(rank)];
    CAPTURE(r.stderr_text);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.masks.size() == 4);
    const auto& straight = first[static_cast<std::size_t>(rank)].masks;
    CHECK(r.masks == std::vector<std::string>(straight.begin() + 6, straight.end()));
    CHECK(r.params == first[static_cast<std::size_t>(rank)].params);
  }
}

TEST_CASE("ctest lists a test that reports kokoro-skip as skipped") {
  if (std::getenv("KOKORO_SKIP_PROBE") != nullptr) {
    MESSAGE("kokoro-skip: asked to skip by KOKORO_SKIP_PROBE");
    return;
  }
  // This very test, run by ctest with the probe set: ctest must say skipped.
  const auto tests_dir = fs::path(KOKORO_DISTRIBUTED_RUNNER).parent_path();
  const auto out = scratch("skip-probe") += ".txt";
  const auto command = "KOKORO_SKIP_PROBE=1 ctest --test-dir '" + tests_dir.string() +
                       "' -R '^ctest lists a test that reports kokoro-skip as skipped$' > '" +
                       out.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  const auto text = read_text(out);
  CAPTURE(text);
  CHECK(status == 0);
  CHECK(text.find("***Skipped") != std::string::npos);
  CHECK(text.find("1 tests failed") == std::string::npos);
  CHECK(text.find(" Passed ") == std::string::npos);
  fs::remove(out);
}

TEST_CASE("data parallel: only rank 0 writes, and a run of 2 ranks resumes on 1") {
  const auto dir = scratch("writer");
  // Rank 1 may write no file content: a write it made would fail and count.
  const auto ranks = run_ranks(dir, 2, {"batch=4", "steps=6", "files"}, {{1, {"no_writes"}}});
  for (const auto& r : ranks) {
    CAPTURE(r.stderr_text);
    REQUIRE(r.exit_code == 0);
    CHECK(r.failures == 0);
  }
  CHECK(fs::exists(dir / "run" / "run.yaml"));
  CHECK(fs::exists(dir / "run" / "checkpoints" / "final.pt"));
  CHECK(fs::exists(dir / "run" / "metrics.jsonl"));
  // 6 steps of 2 ranks used batches 0-11; one process goes on from 12.
  const auto resumed = run_ranks(dir, 0, {"batch=4", "steps=10", "files", "resume"});
  CAPTURE(resumed[0].stderr_text);
  REQUIRE(resumed[0].exit_code == 0);
  CHECK(resumed[0].steps == 10);
  CHECK(resumed[0].batches == std::vector<int>{12, 13, 14, 15});
}

TEST_CASE("a rank that dies or hangs stops the others within the timeout, naming the rank") {
  SUBCASE("dies") {
    const auto dir = scratch("dies");
    const auto start = std::chrono::steady_clock::now();
    const auto ranks = run_ranks(dir, 2, {"batch=4", "timeout=20", "die_at=4", "files"});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(ranks[1].exit_code == 7);
    CHECK(ranks[0].exit_code == 1);
    CHECK(ranks[0].stderr_text.find("rank 0 of 2") != std::string::npos);
    CHECK(seconds < 20.0);
    // The checkpoint of step 3 is whole: one process resumes from it.
    const auto resumed = run_ranks(dir, 0, {"batch=4", "files", "resume"});
    CAPTURE(resumed[0].stderr_text);
    CHECK(resumed[0].exit_code == 0);
    CHECK(resumed[0].stderr_text.find("step 3") != std::string::npos);
    CHECK(resumed[0].batches.front() == 6);
  }
  SUBCASE("hangs") {
    const auto start = std::chrono::steady_clock::now();
    const auto ranks =
        run_ranks(scratch("hangs"), 2, {"batch=4", "timeout=3", "hang_at=3"}, {}, true);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CAPTURE(ranks[0].stderr_text);
    CHECK(ranks[0].exit_code == 1);
    CHECK(ranks[0].stderr_text.find("rank 0 of 2: all_reduce failed") != std::string::npos);
    CHECK(ranks[0].stderr_text.find("hardware.distributed_timeout = 3 s") != std::string::npos);
    CHECK(seconds >= 3.0);
    CHECK(seconds < 20.0);
  }
}

TEST_CASE("torchrun --standalone launches the ranks, and they train as when started by hand") {
  if (std::system("command -v torchrun >/dev/null 2>&1") != 0) {
    MESSAGE("kokoro-skip: torchrun is not installed (Debian's python3-torch has it)");
    return;
  }
  const auto dir = scratch("torchrun");
  fs::create_directories(dir);
  // PET_REDIRECTS/PET_TEE: torchrun 1.13 under Python 3.11 cannot parse its
  // own defaults for these (README, "Data parallel with torchrun").
  const auto command =
      "PET_REDIRECTS=1 PET_TEE=1 torchrun --standalone --nproc_per_node=2 "
      "--no_python " +
      std::string(KOKORO_DISTRIBUTED_RUNNER) + " " + dir.string() + " batch=4 > " +
      (dir / "torchrun.txt").string() + " 2>&1";
  const int status = std::system(command.c_str());
  CAPTURE(read_text(dir / "torchrun.txt"));
  REQUIRE(status == 0);
  const auto by_hand = run_ranks(scratch("by-hand"), 2, {"batch=4"});
  for (int rank = 0; rank < 2; ++rank) {
    std::ifstream in(dir / ("result-rank" + std::to_string(rank) + ".txt"));
    std::string key;
    in >> key;
    std::int64_t steps = 0;
    in >> steps;
    CHECK(steps == 10);
    in >> key;
    std::vector<double> params(by_hand[0].params.size());
    for (auto& v : params) in >> v;
    CHECK(params == by_hand[static_cast<std::size_t>(rank)].params);
  }
}

TEST_CASE("torchrun --max-restarts: a rank that dies is started again and the run resumes") {
  if (std::system("command -v torchrun >/dev/null 2>&1") != 0) {
    MESSAGE("kokoro-skip: torchrun is not installed (Debian's python3-torch has it)");
    return;
  }
  const auto straight = run_ranks(scratch("elastic-straight"), 2, {"batch=4", "files"});
  REQUIRE(straight[0].exit_code == 0);
  const auto dir = scratch("elastic");
  fs::create_directories(dir);
  // Rank 1 dies before its 6th step in the first attempt only; checkpoints
  // every 3 steps; the first attempt finds nothing to resume.
  const auto command =
      "PET_REDIRECTS=1 PET_TEE=1 torchrun --standalone --nproc_per_node=2 "
      "--max_restarts=1 --monitor_interval=1 --no_python " +
      std::string(KOKORO_DISTRIBUTED_RUNNER) + " " + dir.string() +
      " batch=4 files resume die_once_at=5 timeout=20 > " + (dir / "torchrun.txt").string() +
      " 2>&1";
  const int status = std::system(command.c_str());
  const auto log = read_text(dir / "torchrun.txt");
  CAPTURE(log);
  REQUIRE(status == 0);
  CHECK(fs::exists(dir / "died-once"));
  CHECK(log.find("no valid checkpoint to resume from") != std::string::npos);
  CHECK(log.find("resumed from") != std::string::npos);
  for (int rank = 0; rank < 2; ++rank) {
    CAPTURE(rank);
    std::ifstream in(dir / ("result-rank" + std::to_string(rank) + ".txt"));
    std::map<std::string, std::vector<double>> values;
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string key;
      words >> key;
      for (double v; words >> v;) values[key].push_back(v);
    }
    // The same number of steps as without the death, and the restarted
    // attempt began at the newest checkpoint (step 3, or 5 had rank 0 saved
    // on its way out): at most a checkpoint interval was trained twice.
    REQUIRE(values["steps"].size() == 1);
    CHECK(values["steps"][0] == 10);
    CHECK(values["batches"].size() >= 5);
    CHECK(values["batches"].size() <= 7);
    CHECK(values["params"] == straight[static_cast<std::size_t>(rank)].params);
  }
}

namespace {

double distance(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(sum);
}

}  // namespace

TEST_CASE("the TTS task: 2 ranks of batch 2 move the weights as 1 process of batch 4 does") {
  const auto corpus = test::tiny_demo_corpus().string();
  const auto cache = scratch("tts-cache");
  for (const std::vector<std::string>& variant :
       {std::vector<std::string>{}, {"accumulation=2"}, {"scaler=dynamic"}}) {
    CAPTURE(variant.empty() ? std::string("plain") : variant[0]);
    auto with = [&](const std::string& batch) {
      std::vector<std::string> args{"task=tts", "corpus=" + corpus, "cache=" + cache.string(),
                                    "batch=" + batch};
      args.insert(args.end(), variant.begin(), variant.end());
      return args;
    };
    // The single process first: it fills the feature cache the ranks read.
    const auto single = run_ranks(scratch("tts-single"), 0, with("4"));
    CAPTURE(single[0].stderr_text);
    REQUIRE(single[0].exit_code == 0);
    const auto ranks = run_ranks(scratch("tts-pair"), 2, with("2"));
    for (const auto& r : ranks) {
      CAPTURE(r.stderr_text);
      REQUIRE(r.exit_code == 0);
      REQUIRE(r.params.size() == single[0].params.size());
    }
    CHECK(ranks[0].params == ranks[1].params);
    CHECK(ranks[0].initial == single[0].initial);  // the same seed, then rank 0's weights
    const double moved = distance(single[0].params, single[0].initial);
    const double apart = distance(ranks[0].params, single[0].params);
    CAPTURE(moved);
    CAPTURE(apart);
    CHECK(moved > 1.0);
    // Measured: 1.5e-6 of the distance training moved the weights. The TTS
    // losses are per-clip means averaged over the batch, so weighting each
    // rank by its clips is exact, and what is left is float32 summed in
    // another order, grown by 10 AdamW steps. Two ranks on the wrong clips
    // (or on the same ones) land percents apart.
    CHECK(apart < 1e-4 * moved);
    // Buckets of 16 KiB: most of the gradients go out while backward runs.
    for (const auto& r : ranks) {
      REQUIRE(r.overlap.size() == 5);
      const auto [steps, buckets, during, after, redone] =
          std::tuple{r.overlap[0], r.overlap[1], r.overlap[2], r.overlap[3], r.overlap[4]};
      CAPTURE(buckets);
      CAPTURE(during);
      CHECK(steps == 10);
      CHECK(buckets > 4);
      CHECK(during + after == steps * buckets);
      CHECK(during > steps * buckets / 2);
      CHECK(redone == 0);
    }
  }
}

TEST_CASE(
    "the TTS task stopped mid-epoch on 2 ranks sees every clip of it once, resumed on 2 or 1") {
  const auto corpus = test::tiny_demo_corpus().string();
  const auto cache = scratch("tts-resume-cache");
  // Batch 1: 2 ranks take an epoch of the 8 clips in 4 steps, one process in 8.
  const std::vector<std::string> args{"task=tts", "corpus=" + corpus, "cache=" + cache.string(),
                                      "batch=1", "files"};
  const auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), args.begin(), args.end());
    return more;
  };
  // Fills the feature cache the later runs read at once.
  REQUIRE(run_ranks(scratch("tts-resume-warm"), 0, with({"steps=1"}))[0].exit_code == 0);
  const auto epoch0 = [](const std::vector<RankResult>& runs) {
    std::multiset<std::string> seen;
    for (const auto& r : runs) {
      for (const auto& clip : r.clips) {
        if (clip.rfind("0:", 0) == 0) seen.insert(clip);
      }
    }
    return seen;
  };
  for (const int resume_world : {2, 0}) {
    CAPTURE(resume_world);
    const auto dir = scratch("tts-resume-" + std::to_string(resume_world));
    const auto before = run_ranks(dir, 2, with({"steps=1"}));
    for (const auto& r : before) {
      CAPTURE(r.stderr_text);
      REQUIRE(r.exit_code == 0);
    }
    const auto after = run_ranks(dir, resume_world, with({"steps=12", "resume"}));
    for (const auto& r : after) {
      CAPTURE(r.stderr_text);
      REQUIRE(r.exit_code == 0);
    }
    auto seen = epoch0(before);
    for (const auto& clip : epoch0(after)) seen.insert(clip);
    CAPTURE(seen);
    CHECK(seen.size() == 8);
    CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 8);
    // The stop was mid-epoch: 2 clips before it, 6 after.
    CHECK(epoch0(before).size() == 2);
  }
}

TEST_CASE("a signal to one rank stops every rank at the same step, and rank 0 saves it") {
  const auto dir = scratch("signal");
  const auto ranks = run_ranks(dir, 2, {"batch=4", "files", "term_at=4"});
  for (const auto& r : ranks) {
    CAPTURE(r.stderr_text);
    CHECK(r.exit_code == 3);  // stopped before training.max_steps
  }
  // Rank 1 asked during step 5; both finished it and stopped there.
  CHECK(ranks[0].steps == 5);
  CHECK(ranks[1].steps == 5);
  CHECK(fs::exists(dir / "run" / "checkpoints" / "checkpoint_step000000005.pt"));
}

namespace {

/// A Gloo group of one rank in this process: its all-reduce is the identity,
/// so what GradientBuckets does around it can be seen on its own.
c10::intrusive_ptr<CollectiveGroup> group_of_one() {
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(10));
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::HashStore>(), 0, 1,
                                                     options);
}

/// Three layers, each parameter its own bucket (a 1-byte cap).
struct Layers {
  Layers() {
    torch::manual_seed(3);
    for (int i = 0; i < 3; ++i) layers.emplace_back(torch::nn::Linear(4, 4));
    for (auto& l : layers) {
      for (const auto& p : l->parameters()) params.push_back(p);
    }
  }
  torch::Tensor loss(const torch::Tensor& x) {
    auto h = x;
    for (auto& l : layers) h = torch::tanh(l->forward(h));
    return h.pow(2).sum();
  }
  std::vector<torch::Tensor> grads() const {
    std::vector<torch::Tensor> g;
    for (const auto& p : params) g.push_back(p.grad().clone());
    return g;
  }
  void zero() {
    for (auto& p : params) p.mutable_grad().reset();
  }
  std::vector<torch::nn::Linear> layers;
  std::vector<torch::Tensor> params;
};

GradientBuckets buckets_for(const Layers& model) {
  return GradientBuckets(group_of_one(), model.params, {.bucket_bytes = 1, .first_bucket_bytes = 1},
                         [](const std::string& what, const std::exception& e) {
                           return Error(what + ": " + e.what());
                         });
}

void check_weighted(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& plain,
                    double weight) {
  REQUIRE(got.size() == plain.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(torch::allclose(got[i], plain[i] * weight, 1e-5, 1e-6));
  }
}

}  // namespace

TEST_CASE(
    "gradient buckets go out while backward runs, and a step that cannot trust them is redone") {
  Layers model;
  const auto x = torch::randn({5, 4});
  model.loss(x).backward();
  const auto plain = model.grads();
  model.zero();
  auto buckets = buckets_for(model);
  const auto totals = torch::tensor({5.0, 1.5}, torch::kDouble);

  SUBCASE("every bucket starts in backward, in order, and carries gradient x weight") {
    buckets.expect_last_backward(3.0);
    model.loss(x).backward();
    const auto summed = buckets.finish(3.0, totals);
    CHECK(torch::equal(summed, totals));
    check_weighted(model.grads(), plain, 3.0);
    const auto r = buckets.report();
    CHECK(r.buckets == 6);
    CHECK(r.started_in_backward == 6);
    CHECK(r.started_after_backward == 0);
    CHECK(r.redone_steps == 0);
  }
  SUBCASE("a parameter without a gradient holds back its bucket and the later ones") {
    buckets.expect_last_backward(2.0);
    // Only the last layer: buckets 0 and 1 (its bias, its weight) are ready,
    // bucket 2 (the middle layer's bias) never is, and the rest wait for it.
    torch::tanh(model.layers[2]->forward(x)).pow(2).sum().backward();
    buckets.finish(2.0, totals);
    const auto r = buckets.report();
    CHECK(r.started_in_backward == 2);
    CHECK(r.started_after_backward == 4);
    CHECK(r.redone_steps == 0);
    // As DDP leaves them: no rank used them, so they have no gradient and
    // the optimizer passes them by.
    for (std::size_t i = 0; i < 4; ++i) CHECK_FALSE(model.params[i].grad().defined());
    CHECK(model.params[4].grad().abs().sum().item<double>() > 0);
  }
  SUBCASE("a frozen parameter gets no bucket, and the others all go out in backward") {
    model.layers[0]->weight.requires_grad_(false);
    auto trainable = buckets_for(model);
    CHECK(trainable.tracked() == 5);
    trainable.expect_last_backward(1.0);
    model.loss(x).backward();
    trainable.finish(1.0, totals);
    CHECK(trainable.report().buckets == 5);
    CHECK(trainable.report().started_in_backward == 5);
    CHECK_FALSE(model.layers[0]->weight.grad().defined());
    // Unfrozen later, it would train on each rank's own gradient: refused.
    model.layers[0]->weight.requires_grad_(true);
    model.zero();
    trainable.expect_last_backward(1.0);
    model.loss(x).backward();
    CHECK_THROWS_WITH_AS(trainable.finish(1.0, totals), doctest::Contains("was frozen"), Error);
  }
  SUBCASE("an abandoned backward (out of memory) is reduced again from the gradients") {
    buckets.expect_last_backward(2.0);
    model.loss(x).backward();  // went out, then the step is run again in halves
    buckets.abandon();
    model.zero();
    model.loss(x.slice(0, 0, 2)).backward();
    buckets.expect_last_backward(2.0);  // ignored: this step is already abandoned
    model.loss(x.slice(0, 2, 5)).backward();
    buckets.finish(2.0, totals);
    check_weighted(model.grads(), plain, 2.0);
    CHECK(buckets.report().redone_steps == 1);
    // The next step overlaps again.
    model.zero();
    buckets.expect_last_backward(1.0);
    model.loss(x).backward();
    buckets.finish(1.0, totals);
    check_weighted(model.grads(), plain, 1.0);
    const auto r = buckets.report();
    CHECK(r.redone_steps == 1);
    CHECK(r.started_in_backward == 6 + 6);
  }
  SUBCASE("a gradient that grows after its bucket went out: the step is redone, and right") {
    // The first layer in two checkpointed segments: the reentrant backward of
    // each reaches its accumulators, the second time after their buckets
    // (over this layer alone) went out.
    auto first = GradientBuckets(group_of_one(), model.layers[0]->parameters(),
                                 {.bucket_bytes = 1, .first_bucket_bytes = 1},
                                 [](const std::string& what, const std::exception& e) {
                                   return Error(what + ": " + e.what());
                                 });
    auto layer = [&](const torch::autograd::variable_list& in) -> torch::autograd::variable_list {
      return {torch::tanh(model.layers[0]->forward(in[0]))};
    };
    auto twice = [&] {
      const auto h = nn::checkpoint(layer, {x})[0];
      return nn::checkpoint(layer, {h})[0].pow(2).sum();
    };
    twice().backward();
    const auto& w = model.layers[0]->weight;
    const auto reference = w.grad().clone();
    model.zero();
    first.expect_last_backward(2.0);
    twice().backward();
    first.finish(2.0, totals);
    CHECK(torch::allclose(w.grad(), reference * 2.0, 1e-5, 1e-6));
    CHECK(first.report().started_in_backward == 2);
    CHECK(first.report().redone_steps == 1);
  }
}
