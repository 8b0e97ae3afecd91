// phonemes.txt, the vocabulary a run keeps beside its checkpoints: read,
// then used on a sentence and written back.
#include <cstdlib>

#include "fuzz_target.hpp"
#include "kokoro/tts/text/phoneme_processor.hpp"

KOKORO_FUZZ_TARGET(phoneme_vocabulary) {
  namespace fuzz = kokoro::fuzz;
  try {
    const auto path = fuzz::write_file("phonemes.txt", fuzz::as_text(data, size));
    const auto processor = kokoro::tts::load_phoneme_processor(path);
    const auto ids = processor.encode_tokens({"h", "ə", " ", "<unk>", "."});
    processor.decode(ids);
    const auto written = fuzz::scratch() / "phonemes-written.txt";
    kokoro::tts::save_phoneme_processor(processor, written);
    if (kokoro::tts::load_phoneme_processor(written).vocabulary() != processor.vocabulary()) {
      std::abort();
    }
  } catch (const kokoro::Error&) {
  }
  return 0;
}
