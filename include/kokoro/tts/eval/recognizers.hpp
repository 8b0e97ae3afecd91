// Choosing the speech recognizer by name (evaluation.recognizer,
// kokoro-eval --recognizer):
//   moonshine     Moonshine base in kokoro's Python environment (moonshine.hpp)
//   pocketsphinx  PocketSphinx from Debian (pocketsphinx.hpp)
//   auto          Moonshine where it runs, else PocketSphinx
//   none          no recognizer: no word or character error rates
// Moonshine is the default because it hears (12% WER on espeak-ng's speech,
// 2.5% on LJSpeech recordings, against PocketSphinx's 82% and 23%): only it
// can tell on the demo corpus whether the model says the words. The WER of
// one recognizer cannot be compared with the other's, so every report names
// the one that heard.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kokoro/tts/eval/moonshine.hpp"
#include "kokoro/tts/eval/pocketsphinx.hpp"
#include "kokoro/tts/eval/recognizer.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts::eval {

inline const std::vector<std::string>& recognizer_names() {
  static const std::vector<std::string> names{"auto", "moonshine", "pocketsphinx", "none"};
  return names;
}

struct RecognizerOptions {
  std::string name = "auto";  ///< one of recognizer_names()
  MoonshineOptions moonshine{};
  PocketSphinxOptions pocketsphinx{};
};

/// What make_recognizer() gave: the engine (null for "none"), and when
/// "auto" fell back to PocketSphinx, why Moonshine could not run.
struct ChosenRecognizer {
  std::unique_ptr<Recognizer> recognizer;
  std::string fallback_reason;
};

/// The recognizer `options.name` asks for. Throws kokoro::Error when a
/// named engine cannot run here, or when "auto" finds neither.
inline ChosenRecognizer make_recognizer(const RecognizerOptions& options) {
  const auto& n = options.name;
  if (n == "none") return {};
  if (n == "moonshine") return {std::make_unique<MoonshineRecognizer>(options.moonshine), {}};
  if (n == "pocketsphinx") {
    return {std::make_unique<PocketSphinxRecognizer>(options.pocketsphinx), {}};
  }
  if (n == "auto") {
    std::string why;
    try {
      return {std::make_unique<MoonshineRecognizer>(options.moonshine), {}};
    } catch (const std::exception& e) {
      why = e.what();
    }
    try {
      return {std::make_unique<PocketSphinxRecognizer>(options.pocketsphinx), why};
    } catch (const std::exception& e) {
      throw Error(fmt::format("no speech recognizer runs here: Moonshine: {}; PocketSphinx: {}",
                              why, e.what()));
    }
  }
  throw Error(fmt::format("unknown recognizer '{}': expected auto, moonshine, pocketsphinx or none",
                          n));
}

}  // namespace kokoro::tts::eval
