// kokoro-make-demo-corpus: builds the LJSpeech-format demo corpus of
// demo_corpus.hpp (espeak-ng speech of sentences from Debian's license texts).
#include <exception>
#include <string>

#include <fmt/format.h>

#include "common/command_line.hpp"
#include "demo_corpus.hpp"

int main(int argc, char** argv) {
  english_tts::DemoCorpusOptions options;
  CLI::App app(
      "Builds a small LJSpeech-format corpus (metadata.csv, wavs/, TextGrid/) of English\n"
      "sentences from /usr/share/common-licenses spoken by espeak-ng.",
      "kokoro-make-demo-corpus");
  std::string out = options.out.string();
  app.add_option("--out", out,
                 fmt::format("corpus folder (default {}); an earlier demo corpus there is "
                             "replaced, any other folder is left alone",
                             out))
      ->option_text("DIR");
  app.add_option("--clips", options.clips,
                 fmt::format("number of clips (default {})", options.clips))
      ->check(examples::whole_number_above_0)
      ->option_text("N");
  app.add_option("--seed", options.seed,
                 fmt::format("picks and orders the sentences (default {})", options.seed))
      ->option_text("S");
  std::string grid_phones = "espeak";
  app.add_option("--grid-phones", grid_phones,
                 "the phone tiers' notation: espeak (espeak-ng's own, which match its tokens), "
                 "arpabet (MFA 1.x style, from the CMU lexicon) or ipa (MFA 2.x english_mfa "
                 "style, from espeak-ng's IPA)")
      ->check(CLI::IsMember({"espeak", "arpabet", "ipa"}))
      ->option_text("espeak|arpabet|ipa");
  if (const auto exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;
  options.out = out;
  try {
    const auto report = english_tts::build_demo_corpus(options);
    for (const auto& note : report.notes) fmt::print("note: {}\n", note);
    if (grid_phones != "espeak") {
      const int rewritten = english_tts::rewrite_phone_tiers(
          report.root, grid_phones == "arpabet" ? english_tts::GridPhones::arpabet
                                                : english_tts::GridPhones::ipa);
      fmt::print("phone tiers rewritten in {}: {} TextGrids\n", grid_phones, rewritten);
    }
    fmt::print("wrote {} clips ({:.3f} h of audio) to {} in {:.1f} s; sentences from {}\n",
               report.clips, report.audio_hours(), report.root.string(), report.build_seconds,
               report.source);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kokoro-make-demo-corpus: {}\n", e.what());
    return 1;
  }
}
