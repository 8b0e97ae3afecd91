// The English TTS task inside kokoro::Trainer, end to end on the tiny demo
// corpus with a tiny model: every loss falls, a stopped run resumes to the
// same weights as a straight one, and samples are written.
#include <doctest/doctest.h>

#include <kokoro/amp/dynamic_grad_scaler.hpp>
#include <kokoro/trainer.hpp>
#include <kokoro/tts/english_tts_task.hpp>

#include <filesystem>

#include "test_tasks.hpp"
#include "tts_fixtures.hpp"

using namespace kokoro;
namespace fs = std::filesystem;

namespace {

struct TtsPolicies : DefaultPolicies {
  using scaler = DynamicGradScaler;
  using logger = test::SpyLogger;
};
using TtsTrainer = Trainer<tts::EnglishTtsTask, TtsPolicies>;

TrainingConfig tiny_tts_config(const fs::path& output) {
  auto c = test::quick_config();
  c.data.data_dir = test::tiny_demo_corpus().string();
  static const auto cache = test::scratch_dir("tts-trainer-cache");  // shared by the runs
  c.data.cache_dir = cache.string();
  c.data.validation_split = 0.25;
  c.data.num_workers = 1;
  c.model.hidden_dim = 32;
  c.model.encoder_layers = 1;
  c.model.decoder_layers = 1;
  c.model.num_heads = 2;
  c.model.ff_dim = 64;
  c.model.dropout = 0.1;
  c.training.batch_size = 3;
  c.training.learning_rate = 3e-3;
  c.training.grad_clip_norm = 1.0;
  c.logging.output_dir = output.string();
  c.logging.media_every_epochs = 0;
  c.audio.max_frames = 1000;
  return c;
}

std::vector<torch::Tensor> params_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

}  // namespace

TEST_CASE("a short run on the tiny corpus lowers every loss and writes a sample") {
  const auto dir = test::scratch_dir("tts-trainer");
  auto config = tiny_tts_config(dir);
  config.training.epochs = 12;
  config.logging.media_every_epochs = 12;
  TtsTrainer trainer(config);
  const auto before = trainer.validate();
  const auto summary = trainer.fit();
  const auto& after = summary.last_validation;
  for (const char* component : {"loss", "loss/mel", "loss/duration", "loss/stop"}) {
    CAPTURE(component);
    REQUIRE(before.get(component).has_value());
    REQUIRE(after.get(component).has_value());
    CHECK(*after.get(component) < *before.get(component));
  }
  // The sample of the last epoch: a mel image, its audio and its text.
  const auto sample = trainer.task().last_sample();
  REQUIRE_FALSE(sample.empty());
  CHECK(fs::file_size(sample.string() + ".png") > 100);
  CHECK(fs::file_size(sample.string() + ".wav") > 44);
  CHECK(fs::exists(dir / "phonemes.txt"));
  fs::remove_all(dir);
}

TEST_CASE("a TTS run stopped and resumed ends with the weights of a straight run") {
  const auto dir = test::scratch_dir("tts-resume");
  auto straight_config = tiny_tts_config(dir / "straight");
  straight_config.training.max_steps = 6;
  straight_config.training.epochs = 10;
  TtsTrainer straight(straight_config);
  straight.fit();

  auto config = tiny_tts_config(dir / "resumed");
  config.training.epochs = 10;
  config.logging.checkpoints = true;
  config.logging.checkpoint_every_steps = 3;
  config.training.max_steps = 3;  // the middle of the second epoch (2 batches an epoch)
  {
    TtsTrainer first(config);
    first.fit();
  }
  config.training.max_steps = 6;
  config.training.resume = "auto";
  TtsTrainer resumed(config);
  CHECK(resumed.global_step() == 3);
  resumed.fit();
  const auto p1 = params_of(straight.task().model());
  const auto p2 = params_of(resumed.task().model());
  REQUIRE(p1.size() == p2.size());
  for (std::size_t i = 0; i < p1.size(); ++i) CHECK(torch::equal(p1[i], p2[i]));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint from another phoneme set is refused") {
  const auto dir = test::scratch_dir("tts-vocab");
  tts::EnglishTtsTask task(tiny_tts_config(dir));
  auto state = task.state_dict();
  CHECK(std::get<std::vector<std::string>>(state.at("phoneme_vocabulary")).size() ==
        static_cast<std::size_t>(task.processor().vocab_size()));
  task.load_state_dict(state);  // its own: accepted
  auto other = std::get<std::vector<std::string>>(state.at("phoneme_vocabulary"));
  other.pop_back();
  state["phoneme_vocabulary"] = other;
  CHECK_THROWS_WITH_AS(task.load_state_dict(state), doctest::Contains("phoneme vocabulary"), Error);
  fs::remove_all(dir);
}
