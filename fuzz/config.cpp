// A run's YAML configuration and its command-line overrides: the text
// before the input's first NUL byte is the file, each line after it an
// override. What loads must write out and load back to the same settings.
#include <cstdlib>

#include "fuzz_target.hpp"
#include "kokoro/core/config_io.hpp"
#include "kokoro/tts/tts_config.hpp"

KOKORO_FUZZ_TARGET(config) {
  namespace fuzz = kokoro::fuzz;
  const auto [yaml, overrides] = fuzz::split_at_nul(fuzz::as_text(data, size));
  kokoro::tts::TtsConfig config;
  try {
    kokoro::apply_yaml(config, yaml, "fuzz.yaml");
    kokoro::apply_overrides(config, fuzz::lines_of(overrides));
  } catch (const kokoro::Error&) {
    return 0;
  }
  kokoro::tts::TtsConfig again;
  kokoro::apply_yaml(again, kokoro::to_yaml(config), "fuzz.yaml written");
  if (!(again == config)) std::abort();
  return 0;
}
