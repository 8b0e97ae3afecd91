// An LJSpeech-style metadata.csv (id|text|normalized text, a line a clip):
// every line read, the bad ones reported, then split for validation.
#include "fuzz_target.hpp"
#include "kokoro/tts/data/ljspeech.hpp"

KOKORO_FUZZ_TARGET(ljspeech_metadata) {
  namespace fuzz = kokoro::fuzz;
  try {
    const auto path = fuzz::write_file("metadata.csv", fuzz::as_text(data, size));
    const auto wavs = fuzz::scratch() / "wavs";
    const auto metadata =
        kokoro::tts::read_ljspeech_metadata(path, wavs, fuzz::scratch() / "TextGrid");
    kokoro::tts::split_train_validation(metadata.utterances, 0.1, 42);
  } catch (const kokoro::Error&) {
  }
  return 0;
}
