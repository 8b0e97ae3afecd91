// The ARPAbet front end: English words to CMUdict phones with stress digits
// ("HH AH0 L OW1") through flite's CMU lexicon (libflite_cmulex: CMUdict
// plus letter-to-sound rules for words outside it), the phone set of MFA's
// english_us_arpa model and of the MFA 1.x LJSpeech alignments, so that
// their TextGrids pair with these tokens phone for phone.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <flite/flite.h>

#include "kokoro/tts/text/ascii_fold.hpp"
#include "kokoro/tts/text/espeak.hpp"

extern "C" cst_lexicon* cmu_lex_init(void);

namespace kokoro::tts {

/// The 39 CMUdict phones: vowels take a stress digit 0, 1 or 2.
inline constexpr std::array<std::string_view, 15> kArpabetVowels = {
    "AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"};
inline constexpr std::array<std::string_view, 24> kArpabetConsonants = {
    "B",  "CH", "D", "DH", "F",  "G", "HH", "JH", "K", "L", "M", "N",
    "NG", "P",  "R", "S",  "SH", "T", "TH", "V",  "W", "Y", "Z", "ZH"};

/// The voice name that selects this front end in a saved vocabulary.
inline constexpr std::string_view kArpabetVoice = "cmudict-arpabet";

namespace detail::arpabet {

/// flite's lexicon is read-only after its first initialisation, which is
/// not itself safe to race: lookups share one lock (they take microseconds).
inline std::mutex& lock() {
  static std::mutex m;
  return m;
}

inline const cst_lexicon* lexicon() {
  static const cst_lexicon* lex = cmu_lex_init();
  return lex;
}

}  // namespace detail::arpabet

/// The CMUdict phones of one word (letters and apostrophes; anything else is
/// dropped), in upper case with stress digits on vowels. flite writes the
/// unstressed mid-central vowel as "ax"; it becomes CMUdict's "AH0", and a
/// vowel without a stress digit gets 0.
inline std::vector<std::string> arpabet_word(std::string_view word) {
  std::string clean;
  for (const char c : word) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalpha(u) || c == '\'') clean += static_cast<char>(std::tolower(u));
  }
  std::vector<std::string> phones;
  if (clean.empty()) return phones;
  std::lock_guard guard(detail::arpabet::lock());
  cst_val* found = lex_lookup(detail::arpabet::lexicon(), clean.c_str(), nullptr, nullptr);
  for (const cst_val* v = found; v != nullptr; v = val_cdr(v)) {
    std::string phone;
    for (const char c : std::string_view(val_string(val_car(v))))
      phone += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (phone.starts_with("AX")) phone = "AH" + phone.substr(2);
    // A vowel flite leaves without stress (rare, from its letter-to-sound
    // rules) is unstressed, as CMUdict would write it.
    if (std::find(kArpabetVowels.begin(), kArpabetVowels.end(), phone) != kArpabetVowels.end())
      phone += '0';
    phones.push_back(std::move(phone));
  }
  delete_val(found);
  return phones;
}

/// The tokens of normalised English text: each word's phones, kWordBoundary
/// between words, and a punctuation token (kPunctuationTokens) after a word
/// the text follows with one: the same layout as the espeak-ng front end's.
/// Latin letters outside ASCII are read as their ASCII forms ("Müller" as
/// "Muller"). `words`, when given, receives each word the tokens hold (as
/// read, ASCII-folded), one per run of phones between word boundaries.
inline std::vector<std::string> arpabet_tokens(std::string_view input,
                                               std::vector<std::string>* words = nullptr) {
  // The lexicon and its letter-to-sound rules read ASCII only.
  const std::string text = ascii_folded(input);
  std::vector<std::string> tokens;
  if (words) words->clear();
  bool in_word = false;
  std::string word;
  auto punctuation_after_word = [&](char c) {
    const std::string mark(1, c);
    if (is_punctuation_token(mark) && !tokens.empty() && tokens.back() != mark)
      tokens.push_back(mark);
  };
  auto end_word = [&] {
    if (!in_word) return;
    in_word = false;
    auto phones = arpabet_word(word);
    if (!phones.empty() && words) words->push_back(word);
    word.clear();
    if (phones.empty()) return;
    if (!tokens.empty()) tokens.emplace_back(kWordBoundary);
    for (auto& p : phones) tokens.push_back(std::move(p));
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    // Letters, digits and apostrophes inside a word belong to it; a hyphen
    // between letters splits the word without a pause of its own.
    if (std::isalnum(u) || (c == '\'' && in_word) || u >= 0x80) {
      word += c;
      in_word = true;
      continue;
    }
    end_word();
    if (c == '-' && i > 0 && i + 1 < text.size() &&
        std::isalpha(static_cast<unsigned char>(text[i - 1])) &&
        std::isalpha(static_cast<unsigned char>(text[i + 1]))) {
      continue;
    }
    punctuation_after_word(c);
  }
  end_word();
  return tokens;
}

/// The built-in ARPAbet vocabulary: "<pad>", "<unk>", the word boundary, the
/// punctuation tokens, each vowel with stress 0, 1 and 2, then the consonants.
inline std::vector<std::string> arpabet_vocabulary() {
  std::vector<std::string> v = {"<pad>", "<unk>", std::string(kWordBoundary)};
  for (const auto p : kPunctuationTokens) v.emplace_back(p);
  for (const char stress : {'0', '1', '2'}) {
    for (const auto vowel : kArpabetVowels) v.push_back(std::string(vowel) + stress);
  }
  for (const auto consonant : kArpabetConsonants) v.emplace_back(consonant);
  return v;
}

}  // namespace kokoro::tts
