// What the quality measures ask of a speech recognizer: the words it hears in
// a clip. The engines are pocketsphinx.hpp and moonshine.hpp;
// recognizers.hpp picks one by name.
#pragma once

#include <string>
#include <vector>

namespace kokoro::tts::eval {

class Recognizer {
 public:
  virtual ~Recognizer() = default;

  /// The words heard in `samples` (mono, [-1, 1], at `sample_rate` Hz), as
  /// the engine writes them; error_rate.hpp reads both sides the same way
  /// (lower case, punctuation out, numbers in words). Empty when nothing was
  /// heard. Throws kokoro::Error when the engine fails.
  virtual std::string transcribe(const std::vector<float>& samples, int sample_rate) = 0;

  /// "moonshine", "pocketsphinx": reports say which one heard.
  virtual std::string name() const = 0;
};

}  // namespace kokoro::tts::eval
