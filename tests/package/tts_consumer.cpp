// A downstream program of the tts component: it reads a TTS configuration
// with an override and normalises a sentence, and says what it got.
#include <kokoro/core/config_io.hpp>
#include <kokoro/tts/text/normalizer.hpp>
#include <kokoro/tts/tts_config.hpp>

#include <cstdio>

int main() {
  auto config = kokoro::tts::small_config();
  kokoro::apply_overrides(config, {"model.num_heads=4", "loss.stop_weight=2.0"});
  const auto text = kokoro::tts::normalize_english("Dr. Smith paid $3.");
  std::printf("tts consumer: d=%lld heads=%lld stop weight %.1f; %s\n",
              static_cast<long long>(config.model.hidden_dim),
              static_cast<long long>(config.model.num_heads), config.loss.stop_weight,
              text.c_str());
  return config.model.num_heads == 4 ? 0 : 1;
}
