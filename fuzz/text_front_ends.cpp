// A line of text, as kokoro-text, kokoro-synthesize and a corpus's
// transcriptions give it: normalised, then through both front ends
// (espeak-ng's IPA and the CMU lexicon's ARPAbet) to token ids and back.
// The first byte picks the normaliser's options; the raw text also goes
// through espeak-ng's own transcription.
#include "fuzz_target.hpp"
#include "kokoro/tts/text/normalizer.hpp"
#include "kokoro/tts/text/phoneme_processor.hpp"

KOKORO_FUZZ_TARGET(text_front_ends) {
  namespace tts = kokoro::tts;
  if (size == 0 || size > 4096) return 0;  // a line, not a book: espeak-ng is slow on long text
  const auto text = kokoro::fuzz::as_text(data + 1, size - 1);
  static const auto ipa = tts::EnglishPhonemeProcessor::for_phoneme_set("espeak");
  static const auto arpabet = tts::EnglishPhonemeProcessor::for_phoneme_set("arpabet");
  try {
    tts::normalize_english(text,
                           {.numbers = (data[0] & 2) == 0, .abbreviations = (data[0] & 4) == 0});
    const auto& processor = (data[0] & 1) ? arpabet : ipa;
    const auto transcription = processor.transcribe(text);
    processor.decode(processor.encode_tokens(transcription.tokens));
    tts::ipa_phones(text);  // espeak-ng's own transcription, of the text as it came
  } catch (const kokoro::Error&) {
  }
  return 0;
}
