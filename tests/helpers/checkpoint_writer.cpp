// Writes checkpoints into a folder without end, as fast as it can, so that a
// test can kill it with SIGKILL in the middle of a save.
//   kokoro_checkpoint_writer DIR
#include <kokoro/checkpoint/checkpoint_manager.hpp>

#include <cstdint>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kokoro_checkpoint_writer DIR\n");
    return 2;
  }
  kokoro::CheckpointManager manager(argv[1], /*keep_last=*/3);
  const auto weights = torch::randn({8, 1024, 1024});  // 32 MiB: a save takes a while
  for (std::int64_t step = 1;; ++step) {
    auto state = kokoro::make_ivalue_dict();
    state.insert("global_step", step);
    state.insert("weights", weights);
    manager.save_periodic(step, state);
    std::printf("%lld\n", static_cast<long long>(step));
    std::fflush(stdout);
  }
}
