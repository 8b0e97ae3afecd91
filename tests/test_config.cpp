// Configurations: the framework's TrainingConfig and a task's RunConfig (the
// TTS task's, and the minimal example's): defaults and presets, YAML round
// trip, overrides, legacy keys, and the error message for each kind of bad
// input.
#include <doctest/doctest.h>

#include <kokoro/core/config_io.hpp>
#include <kokoro/tts/tts_config.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

std::string error_of(auto&& fn) {
  try {
    fn();
  } catch (const kokoro::ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string load_error(const std::string& yaml) {
  return error_of([&] {
    auto config = kokoro::tts::default_config();
    kokoro::apply_yaml(config, yaml, "run.yaml");
  });
}

std::string override_error(const std::string& arg) {
  return error_of([&] {
    auto config = kokoro::tts::default_config();
    kokoro::apply_overrides(config, {arg});
  });
}

}  // namespace

TEST_CASE("the TTS task's default config carries the reference system's defaults") {
  const auto c = kokoro::tts::default_config();
  CHECK(c.audio.sample_rate == 22050);
  CHECK(c.audio.n_fft == 1024);
  CHECK(c.audio.hop_length == 256);
  CHECK(c.audio.n_mels == 80);
  CHECK(c.audio.fmax == 8000.0);
  CHECK(c.audio.max_frames == 2500);
  CHECK(c.model.hidden_dim == 512);
  CHECK(c.model.encoder_layers == 6);
  CHECK(c.model.decoder_layers == 6);
  CHECK(c.model.num_heads == 8);
  CHECK(c.model.ff_dim == 2048);
  CHECK(c.model.dropout == doctest::Approx(0.1));
  CHECK(c.training.learning_rate == doctest::Approx(1e-4));
  CHECK(c.training.weight_decay == doctest::Approx(0.01));
  CHECK(c.training.batch_size == 16);
  CHECK(c.training.epochs == 100);
  CHECK(c.training.scheduler_t0 == 20);
  CHECK(c.training.scheduler_t_mult == 2);
  CHECK(c.training.min_learning_rate == doctest::Approx(1e-6));
  CHECK(c.hardware.grad_scale_init == 65536.0);
  CHECK(c.hardware.grad_scale_interval == 2000);
  CHECK(c.data.num_workers == 2);
  CHECK(c.loss.duration_weight == doctest::Approx(0.1));
  CHECK(c.loss.stop_weight == doctest::Approx(1.0));
  CHECK(kokoro::validate(c).empty());
}

TEST_CASE("the TTS task's small config shrinks the model and the run") {
  const auto c = kokoro::tts::small_config();
  CHECK(c.model.hidden_dim == 256);
  CHECK(c.model.encoder_layers == 4);
  CHECK(c.model.decoder_layers == 4);
  CHECK(c.model.ff_dim == 1024);
  CHECK(c.training.batch_size == 8);
  CHECK(c.training.epochs == 10);
  CHECK(kokoro::validate(c).empty());
  CHECK_FALSE(c == kokoro::tts::default_config());
}

TEST_CASE("YAML written by to_yaml reads back to an equal config") {
  auto c = kokoro::tts::small_config();
  c.training.learning_rate = 3.3e-5;
  c.training.adam_eps = 1e-9;
  c.model.dropout = 0.15;
  c.audio.fmin = 55.0;
  c.hardware.mixed_precision = false;
  c.data.data_dir = "/data/LJ \"Speech\" #1: a\\b";
  c.logging.run_name = "yes";  // a YAML 1.1 boolean word, kept as a string
  c.training.seed = -7;

  auto loaded = kokoro::tts::default_config();
  kokoro::apply_yaml(loaded, kokoro::to_yaml(c), "roundtrip.yaml");
  CHECK(loaded == c);
  CHECK(loaded.data.data_dir == c.data.data_dir);
}

TEST_CASE("save_config and load_config round-trip through a file") {
  const auto path = std::filesystem::temp_directory_path() / "kokoro_test_config.yaml";
  auto c = kokoro::tts::default_config();
  c.training.batch_size = 3;
  kokoro::save_config(c, path);
  CHECK(kokoro::load_config<kokoro::tts::TtsConfig>(path) == c);
  std::filesystem::remove(path);
}

TEST_CASE("a YAML file overrides only the fields it names") {
  auto c = kokoro::tts::small_config();
  kokoro::apply_yaml(c, "training:\n  learning_rate: 2e-4\nmodel:\n  dropout: 0\n", "x.yaml");
  CHECK(c.training.learning_rate == doctest::Approx(2e-4));
  CHECK(c.model.dropout == 0.0);
  CHECK(c.model.hidden_dim == 256);  // from the small preset, untouched
}

TEST_CASE("an empty YAML document changes nothing") {
  auto c = kokoro::tts::small_config();
  kokoro::apply_yaml(c, "", "empty.yaml");
  CHECK(c == kokoro::tts::small_config());
}

TEST_CASE("an unknown key names the file, the line, the key and the nearest valid key") {
  const auto msg = load_error("training:\n  batch_size: 4\n  lerning_rate: 0.1\n");
  CHECK(msg ==
        "run.yaml:3: unknown key 'training.lerning_rate' (did you mean "
        "'training.learning_rate'?)");
}

TEST_CASE("an unknown section names the nearest section") {
  const auto msg = load_error("trainig:\n  batch_size: 4\n");
  CHECK(msg == "run.yaml:1: unknown section 'trainig' (did you mean 'training'?)");
}

TEST_CASE("a key or a section given twice is an error naming both lines") {
  // YAML would keep both and one would silently win.
  CHECK(load_error("training:\n  batch_size: 4\n  epochs: 2\n  batch_size: 8\n") ==
        "run.yaml:4: training.batch_size is given twice (first at run.yaml:2)");
  CHECK(load_error("training:\n  epochs: 2\nlogging:\n  log_every: 3\ntraining:\n  seed: 1\n") ==
        "run.yaml:5: section 'training' appears twice (first at run.yaml:1)");
}

TEST_CASE("a value of the wrong type names the field and the expected type") {
  CHECK(load_error("training:\n  batch_size: sixteen\n") ==
        "run.yaml:2: training.batch_size: expected an integer, got 'sixteen'");
  CHECK(load_error("hardware:\n  mixed_precision: maybe\n") ==
        "run.yaml:2: hardware.mixed_precision: expected true or false, got 'maybe'");
  CHECK(load_error("training:\n  learning_rate: 1e-4x\n") ==
        "run.yaml:2: training.learning_rate: expected a number, got '1e-4x'");
  CHECK(load_error("training:\n  epochs: [1, 2]\n") ==
        "run.yaml:2: training.epochs: expected a single value, got a list");
}

TEST_CASE("an invalid value names the field, the rule and the value") {
  CHECK(load_error("training:\n  learning_rate: -0.001\n") ==
        "run.yaml:2: training.learning_rate: must be > 0 (got -0.001)");
  CHECK(load_error("\ntraining:\n  batch_size: 0\n") ==
        "run.yaml:3: training.batch_size: must be > 0 (got 0)");
  CHECK(load_error("model:\n  dropout: 1.5\n") ==
        "run.yaml:2: model.dropout: must be in [0, 1) (got 1.5)");
  CHECK(load_error("hardware:\n  device: tpu\n") ==
        "run.yaml:2: hardware.device: must be one of: auto, cuda, mps, cpu (got \"tpu\")");
  CHECK(
      load_error("model:\n  gradient_checkpointing: yes\n") ==
      "run.yaml:2: model.gradient_checkpointing: must be one of: auto, true, false (got \"yes\")");
  CHECK(load_error("model:\n  kernels: quick\n") ==
        "run.yaml:2: model.kernels: must be one of: fast, reference (got \"quick\")");
  CHECK(load_error("model:\n  attention_dropout: 1.0\n") ==
        "run.yaml:2: model.attention_dropout: must be in [0, 1) (got 1)");
}

TEST_CASE("rules that tie fields together are checked") {
  CHECK(load_error("model:\n  hidden_dim: 100\n  num_heads: 8\n") ==
        "run.yaml:2: model.hidden_dim: must be divisible by model.num_heads (got 100 and 8)");
  CHECK(override_error("audio.win_length=2048") ==
        "audio.win_length: must be <= audio.n_fft (got 2048 > 1024)");
  CHECK(override_error("audio.fmax=12000") ==
        "audio.fmax: must be <= audio.sample_rate / 2 = 11025 (got 12000)");
}

TEST_CASE("every problem in a file is reported at once") {
  const auto msg = load_error("training:\n  batch_size: -1\n  epochs: 0\n");
  CHECK(msg.starts_with("2 problems in the configuration:"));
  CHECK(msg.find("run.yaml:2: training.batch_size: must be > 0 (got -1)") != std::string::npos);
  CHECK(msg.find("run.yaml:3: training.epochs: must be > 0 (got 0)") != std::string::npos);
}

TEST_CASE("malformed YAML and a document that is not a mapping are rejected") {
  CHECK(load_error("training:\n  batch_size: [1\n").starts_with("run.yaml:"));
  CHECK(load_error("training:\n  batch_size: [1\n").find("not valid YAML") != std::string::npos);
  CHECK(load_error("- 1\n- 2\n").starts_with("run.yaml:1: expected a mapping of sections"));
  CHECK(load_error("training: 5\n") ==
        "run.yaml:1: section 'training' must be a mapping of key: value");
}

TEST_CASE("a missing file is named") {
  const auto msg = error_of([] { kokoro::load_config("/nonexistent/kokoro.yaml"); });
  CHECK(msg == "/nonexistent/kokoro.yaml: cannot open the configuration file");
}

TEST_CASE("command-line overrides set any field as section.key=value") {
  auto c = kokoro::tts::default_config();
  kokoro::apply_overrides(c, {"training.learning_rate=3e-4", "hardware.mixed_precision=false",
                              "data.data_dir=/tmp/LJSpeech-1.1", "model.num_heads=4"});
  CHECK(c.training.learning_rate == doctest::Approx(3e-4));
  CHECK_FALSE(c.hardware.mixed_precision);
  CHECK(c.data.data_dir == "/tmp/LJSpeech-1.1");
  CHECK(c.model.num_heads == 4);
}

TEST_CASE("a bad override names the argument and what was wrong") {
  CHECK(override_error("training.batchsize=4") ==
        "override 'training.batchsize=4': unknown key 'training.batchsize' (did you mean "
        "'training.batch_size'?)");
  CHECK(override_error("training.batch_size") ==
        "override 'training.batch_size': expected section.key=value");
  CHECK(override_error("training.batch_size=four") ==
        "override 'training.batch_size=four': training.batch_size: expected an integer, got "
        "'four'");
  CHECK(override_error("training.batch_size=-4") == "training.batch_size: must be > 0 (got -4)");
}

TEST_CASE("edit distance picks the closest name") {
  CHECK(kokoro::edit_distance("kitten", "sitting") == 3);
  CHECK(kokoro::nearest_word("epoch", {"epochs", "seed", "batch_size"}) == "epochs");
}

TEST_CASE("the shipped YAML presets equal the presets in code") {
  const std::filesystem::path configs = KOKORO_SOURCE_DIR "/examples/english_tts/configs";
  CHECK(kokoro::load_config(configs / "default.yaml", kokoro::tts::default_config()) ==
        kokoro::tts::default_config());
  // Loaded over the defaults, so every field the small preset changes must be in the file.
  CHECK(kokoro::load_config(configs / "small.yaml", kokoro::tts::default_config()) ==
        kokoro::tts::small_config());
  // And each file lists every field, so it documents the whole configuration.
  for (const char* file : {"default.yaml", "small.yaml"}) {
    const auto yaml = YAML::LoadFile((configs / file).string());
    for (const auto& name : kokoro::detail::field_names<kokoro::tts::TtsConfig>()) {
      const auto dot = name.find('.');
      CHECK_MESSAGE(yaml[name.substr(0, dot)][name.substr(dot + 1)].IsDefined(),
                    file << " lacks " << name);
    }
  }
}

TEST_CASE("the framework's config holds only training, hardware and logging") {
  std::vector<std::string> sections;
  const kokoro::TrainingConfig c;
  kokoro::TrainingConfig::sections(
      c, [&](const char* name, const auto&) { sections.push_back(name); });
  CHECK(sections == std::vector<std::string>{"training", "hardware", "logging"});
  CHECK(kokoro::validate(c).empty());
}

TEST_CASE("a framework config refuses a task's section, naming the nearest it knows") {
  const auto msg = error_of([] {
    kokoro::TrainingConfig c;
    kokoro::apply_yaml(c, "model:\n  hidden_dim: 4\n", "run.yaml");
  });
  CHECK(msg == "run.yaml:1: unknown section 'model' (did you mean 'logging'?)");
}

TEST_CASE("a task's sections sit beside the framework's in one file, after them") {
  const auto yaml = kokoro::to_yaml(kokoro::tts::small_config());
  const auto at = [&](const char* s) { return yaml.find(s); };
  CHECK(at("\ntraining:\n") < at("\nhardware:\n"));
  CHECK(at("\nlogging:\n") < at("\ndata:\n"));
  CHECK(at("\nmodel:\n") < at("\naudio:\n"));
  CHECK(at("\naudio:\n") < at("\nloss:\n"));
  CHECK(at("duration_weight: 0.1") != std::string::npos);
  CHECK(at("duration_loss_weight") == std::string::npos);  // written under today's names only
}

TEST_CASE("an unknown key names the nearest valid key across every section") {
  CHECK(override_error("loss.stop_wieght=2") ==
        "override 'loss.stop_wieght=2': unknown key 'loss.stop_wieght' (did you mean "
        "'loss.stop_weight'?)");
  CHECK(override_error("modle.hidden_dim=4") ==
        "override 'modle.hidden_dim=4': unknown key 'modle.hidden_dim' (did you mean "
        "'model.hidden_dim'?)");
}

TEST_CASE("legacy keys still load and land in their new place") {
  auto c = kokoro::tts::default_config();
  kokoro::apply_overrides(c, {"training.duration_loss_weight=0.25", "training.stop_loss_weight=3",
                              "training.stop_positive_weight=5"});
  CHECK(c.loss.duration_weight == doctest::Approx(0.25));
  CHECK(c.loss.stop_weight == doctest::Approx(3.0));
  CHECK(c.loss.stop_positive_weight == doctest::Approx(5.0));
  // A value at the legacy key is still checked by the rule of its new field.
  CHECK(override_error("training.stop_positive_weight=0") ==
        "loss.stop_positive_weight: must be > 0 (got 0)");
  // Without a task that owns them, the framework accepts and ignores them.
  kokoro::TrainingConfig framework;
  kokoro::apply_overrides(framework, {"training.duration_loss_weight=0.25"});
  CHECK(framework == kokoro::TrainingConfig{});
}

TEST_CASE("the small preset as shipped before the split by layer loads to today's small preset") {
  const std::filesystem::path file = KOKORO_SOURCE_DIR "/tests/data/pre_layering/small.yaml";
  // It names gradient checkpointing `true`, the default then; today's is `auto`.
  auto expected = kokoro::tts::small_config();
  expected.model.gradient_checkpointing = "true";
  CHECK(kokoro::load_config(file, kokoro::tts::default_config()) == expected);
}
