// kokoro-make-demo-corpus: builds the LJSpeech-format demo corpus of
// demo_corpus.hpp (espeak-ng speech of sentences from Debian's license texts).
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "demo_corpus.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: kokoro-make-demo-corpus [--out DIR] [--clips N] [--seed S]\n"
    "\n"
    "Builds a small LJSpeech-format corpus (metadata.csv, wavs/, TextGrid/) of\n"
    "English sentences from /usr/share/common-licenses spoken by espeak-ng.\n"
    "\n"
    "  --out DIR    corpus folder (default demo_corpus); an earlier demo corpus\n"
    "               there is replaced, any other folder is left alone\n"
    "  --clips N    number of clips (default 300)\n"
    "  --seed S     picks and orders the sentences (default 1)\n"
    "  --help       this text\n";

template <class T>
bool parse_number(std::string_view text, T& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) {
  english_tts::DemoCorpusOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
    const bool takes_value = arg == "--out" || arg == "--clips" || arg == "--seed";
    if (!takes_value || i + 1 >= argc) {
      fmt::print(stderr, "kokoro-make-demo-corpus: {} '{}'\n\n{}",
                 takes_value ? "missing value after" : "unknown argument", arg, kUsage);
      return 2;
    }
    const std::string_view value = argv[++i];
    bool ok = true;
    if (arg == "--out") {
      options.out = std::string(value);
    } else if (arg == "--clips") {
      ok = parse_number(value, options.clips) && options.clips > 0;
    } else {
      ok = parse_number(value, options.seed);
    }
    if (!ok) {
      fmt::print(stderr, "kokoro-make-demo-corpus: {} needs a whole number {}, got '{}'\n", arg,
                 arg == "--clips" ? "above 0" : "from 0 up", value);
      return 2;
    }
  }
  try {
    const auto report = english_tts::build_demo_corpus(options);
    for (const auto& note : report.notes) fmt::print("note: {}\n", note);
    fmt::print("wrote {} clips ({:.3f} h of audio) to {} in {:.1f} s; sentences from {}\n",
               report.clips, report.audio_hours(), report.root.string(), report.build_seconds,
               report.source);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kokoro-make-demo-corpus: {}\n", e.what());
    return 1;
  }
}
