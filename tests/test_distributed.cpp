// Data parallel over c10d with Gloo: real process groups of 2 ranks on this
// machine (kokoro_distributed_runner started with torchrun's variables),
// against one process; the shard rule; the launch variables.
#include <doctest/doctest.h>

#include <kokoro/core/data_shard.hpp>
#include <kokoro/distributed/data_parallel.hpp>
#include <kokoro/distributed/launch_environment.hpp>

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
