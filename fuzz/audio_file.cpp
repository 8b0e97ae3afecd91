// A corpus's audio file, whatever libsndfile takes it for (WAV, FLAC, OGG,
// AIFF, ...): read, mixed to mono and resampled as the corpus does.
#include "kokoro/audio/audio_file.hpp"
#include "fuzz_target.hpp"

KOKORO_FUZZ_TARGET(audio_file) {
  namespace fuzz = kokoro::fuzz;
  try {
    const auto path = fuzz::write_file("clip", fuzz::as_text(data, size));
    // A minute at most (the default, 600 s, bounds the memory too, but a file
    // that decodes to that much takes the fuzzer's time for one input).
    kokoro::audio::load_audio(path, 22050, nullptr, 60.0);
  } catch (const kokoro::Error&) {
  }
  return 0;
}
