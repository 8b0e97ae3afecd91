// The speech recognizer every machine with kokoro has: CMU PocketSphinx 0.8
// (Debian's libpocketsphinx-dev) with its US English acoustic model, trigram
// language model and CMU dictionary (pocketsphinx-en-us), decoding each clip
// as one utterance. It is weak (measured here: 23% WER on the 16 LJSpeech
// recordings, 66% on the amateur speaker, 82% on espeak-ng's speech; Moonshine
// gets 2.5%, 33% and 12%, see recognizers.hpp), so it is the fallback, not the
// default. Audio goes in at any rate and is resampled to the model's 16 kHz
// with libsoxr.
#pragma once

#include <pocketsphinx.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kokoro/audio/audio_file.hpp"
#include "kokoro/tts/eval/recognizer.hpp"
#include "kokoro/util/errors.hpp"

namespace kokoro::tts::eval {

struct PocketSphinxOptions {
  std::filesystem::path acoustic_model = "/usr/share/pocketsphinx/model/en-us/en-us";
  std::filesystem::path language_model = "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin";
  std::filesystem::path dictionary = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";
};

/// One decoder; not for two threads at once.
class PocketSphinxRecognizer final : public Recognizer {
 public:
  static constexpr int kSampleRate = 16000;

  explicit PocketSphinxRecognizer(const PocketSphinxOptions& options = {}) {
    for (const auto* path :
         {&options.acoustic_model, &options.language_model, &options.dictionary}) {
      if (!std::filesystem::exists(*path)) {
        throw Error(fmt::format(
            "{}: the speech recognizer's model is missing (Debian's pocketsphinx-en-us installs "
            "it; scripts/setup does)",
            path->string()));
      }
    }
    config_ = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", options.acoustic_model.c_str(), "-lm",
                          options.language_model.c_str(), "-dict", options.dictionary.c_str(),
                          "-logfn", "/dev/null", nullptr);
    if (config_ == nullptr) throw Error("the speech recognizer refused its settings");
    decoder_ = ps_init(config_);
    if (decoder_ == nullptr) {
      cmd_ln_free_r(config_);
      throw Error(fmt::format("the speech recognizer could not load its model from {}",
                              options.acoustic_model.string()));
    }
  }
  PocketSphinxRecognizer(const PocketSphinxRecognizer&) = delete;
  PocketSphinxRecognizer& operator=(const PocketSphinxRecognizer&) = delete;
  ~PocketSphinxRecognizer() override {
    ps_free(decoder_);
    cmd_ln_free_r(config_);
  }

  std::string name() const override { return "pocketsphinx"; }

  std::string transcribe(const std::vector<float>& samples, int sample_rate) override {
    const auto audio16k = audio::resample(samples, sample_rate, kSampleRate);
    std::vector<std::int16_t> pcm(audio16k.size());
    std::transform(audio16k.begin(), audio16k.end(), pcm.begin(), [](float x) {
      return static_cast<std::int16_t>(std::lround(std::clamp(x, -1.0f, 1.0f) * 32767.0f));
    });
    if (ps_start_utt(decoder_) < 0) throw Error("the speech recognizer could not start");
    if (!pcm.empty() && ps_process_raw(decoder_, pcm.data(), pcm.size(), FALSE, TRUE) < 0) {
      ps_end_utt(decoder_);
      throw Error("the speech recognizer could not take the audio");
    }
    ps_end_utt(decoder_);
    std::int32_t score = 0;
    const char* hypothesis = ps_get_hyp(decoder_, &score);
    std::string out = hypothesis ? hypothesis : "";
    // Alternative pronunciations come back as "word(2)": the word is what counts.
    std::string words;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i] == '(') {
        while (i < out.size() && out[i] != ')') ++i;
        continue;
      }
      words += out[i];
    }
    return words;
  }

 private:
  cmd_ln_t* config_ = nullptr;
  ps_decoder_t* decoder_ = nullptr;
};

}  // namespace kokoro::tts::eval
