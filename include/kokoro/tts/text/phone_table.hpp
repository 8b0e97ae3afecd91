// One table relating the phone sets an English corpus meets: espeak-ng's
// ASCII mnemonics (the espeak front end's tokens), ARPAbet (CMUdict, MFA's
// english_us_arpa, MFA 1.x LJSpeech alignments) and MFA's IPA set
// (english_mfa). Each symbol maps to articulatory features, and two phones
// cost 0 (the same sound) to 1 (unrelated) to pair: the cost the alignment
// projection (phone_projection.hpp) minimises. Written here because no
// Debian library relates these sets; the features follow the IPA chart.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kokoro::tts {

/// The notation a sequence of phone labels is written in.
enum class PhoneSet { espeak, arpabet, ipa };

inline std::string_view phone_set_name(PhoneSet set) {
  switch (set) {
    case PhoneSet::espeak:
      return "espeak";
    case PhoneSet::arpabet:
      return "arpabet";
    case PhoneSet::ipa:
      return "ipa";
  }
  return "?";
}

/// A phone's place in the IPA chart. Vowels: height 0 (close) .. 6 (open),
/// backness 0 (front) .. 2 (back), rounding. Consonants: place 0 (bilabial)
/// .. 7 (glottal), manner (stop, affricate, fricative, nasal, lateral,
/// approximant, tap), voicing.
struct PhoneFeatures {
  enum class Kind { vowel, consonant };
  enum Manner { stop, affricate, fricative, nasal, lateral, approximant, tap };
  Kind kind = Kind::vowel;
  int height_or_place = 0;
  int backness_or_manner = 0;
  bool rounded_or_voiced = false;
  bool diphthong = false;
  bool rhotic = false;    ///< r-coloured vowel (ɚ ɝ ɑɹ ...)
  bool syllabic = false;  ///< syllabic consonant (n̩ l̩ m̩)
  std::string canonical;  ///< the IPA spelling the table uses for it
};

namespace detail::phones {

using F = PhoneFeatures;

inline F vowel(const char* ipa, int height, int backness, bool rounded, bool diphthong = false,
               bool rhotic = false) {
  return {.kind = F::Kind::vowel,
          .height_or_place = height,
          .backness_or_manner = backness,
          .rounded_or_voiced = rounded,
          .diphthong = diphthong,
          .rhotic = rhotic,
          .canonical = ipa};
}

inline F consonant(const char* ipa, int place, int manner, bool voiced, bool syllabic = false) {
  return {.kind = F::Kind::consonant,
          .height_or_place = place,
          .backness_or_manner = manner,
          .rounded_or_voiced = voiced,
          .syllabic = syllabic,
          .canonical = ipa};
}

/// Every sound the three sets share, by its IPA spelling.
inline const std::map<std::string, F, std::less<>>& sounds() {
  static const auto table = [] {
    std::map<std::string, F, std::less<>> t;
    const std::vector<F> all = {vowel("i", 0, 0, false),
                                vowel("ɪ", 1, 0, false),
                                vowel("e", 2, 0, false),
                                vowel("ɛ", 4, 0, false),
                                vowel("æ", 5, 0, false),
                                vowel("a", 6, 0, false),
                                vowel("ɑ", 6, 2, false),
                                vowel("ɒ", 6, 2, true),
                                vowel("ɔ", 4, 2, true),
                                vowel("o", 2, 2, true),
                                vowel("ʊ", 1, 2, true),
                                vowel("u", 0, 2, true),
                                vowel("ʌ", 4, 2, false),
                                vowel("ə", 3, 1, false),
                                vowel("ɜ", 4, 1, false),
                                vowel("ɐ", 5, 1, false),
                                vowel("ʉ", 0, 1, true),
                                vowel("ɨ", 0, 1, false),
                                vowel("ɚ", 3, 1, false, false, true),
                                vowel("ɝ", 4, 1, false, false, true),
                                vowel("aɪ", 6, 0, false, true),
                                vowel("aʊ", 6, 1, false, true),
                                vowel("eɪ", 2, 0, false, true),
                                vowel("oʊ", 2, 2, true, true),
                                vowel("ɔɪ", 4, 2, true, true),
                                vowel("ɪɹ", 1, 0, false, true, true),
                                vowel("ɛɹ", 4, 0, false, true, true),
                                vowel("ʊɹ", 1, 2, true, true, true),
                                vowel("ɑɹ", 6, 2, false, true, true),
                                vowel("ɔɹ", 4, 2, true, true, true),
                                consonant("p", 0, F::stop, false),
                                consonant("b", 0, F::stop, true),
                                consonant("t", 3, F::stop, false),
                                consonant("d", 3, F::stop, true),
                                consonant("k", 6, F::stop, false),
                                consonant("g", 6, F::stop, true),
                                consonant("c", 5, F::stop, false),
                                consonant("ɟ", 5, F::stop, true),
                                consonant("ʔ", 7, F::stop, false),
                                consonant("tʃ", 4, F::affricate, false),
                                consonant("dʒ", 4, F::affricate, true),
                                consonant("f", 1, F::fricative, false),
                                consonant("v", 1, F::fricative, true),
                                consonant("θ", 2, F::fricative, false),
                                consonant("ð", 2, F::fricative, true),
                                consonant("s", 3, F::fricative, false),
                                consonant("z", 3, F::fricative, true),
                                consonant("ʃ", 4, F::fricative, false),
                                consonant("ʒ", 4, F::fricative, true),
                                consonant("ç", 5, F::fricative, false),
                                consonant("x", 6, F::fricative, false),
                                consonant("h", 7, F::fricative, false),
                                consonant("m", 0, F::nasal, true),
                                consonant("n", 3, F::nasal, true),
                                consonant("ɲ", 5, F::nasal, true),
                                consonant("ŋ", 6, F::nasal, true),
                                consonant("l", 3, F::lateral, true),
                                consonant("ɹ", 3, F::approximant, true),
                                consonant("j", 5, F::approximant, true),
                                consonant("w", 0, F::approximant, true),
                                consonant("ɾ", 3, F::tap, true),
                                consonant("m\u0329", 0, F::nasal, true, true),
                                consonant("n\u0329", 3, F::nasal, true, true),
                                consonant("\u014b\u0329", 6, F::nasal, true, true),
                                consonant("l\u0329", 3, F::lateral, true, true)};
    for (const auto& f : all) t.emplace(f.canonical, f);
    return t;
  }();
  return table;
}

inline std::optional<F> sound(std::string_view ipa) {
  const auto it = sounds().find(ipa);
  if (it == sounds().end()) return std::nullopt;
  return it->second;
}

/// espeak-ng's en-us mnemonics (stress marks ' and , removed) -> IPA.
inline const std::map<std::string, std::string, std::less<>>& espeak_names() {
  static const std::map<std::string, std::string, std::less<>> t = {{"@", "ə"},
                                                                    {"@-", "ə"},
                                                                    {"3", "ɚ"},
                                                                    {"3:", "ɝ"},
                                                                    {"VR", "ɝ"},
                                                                    {"a", "æ"},
                                                                    {"aa", "æ"},
                                                                    {"A:", "ɑ"},
                                                                    {"A", "ɑ"},
                                                                    {"0", "ɑ"},
                                                                    {"A@", "ɑɹ"},
                                                                    {"E", "ɛ"},
                                                                    {"e", "e"},
                                                                    {"e:", "e"},
                                                                    {"e@", "ɛɹ"},
                                                                    {"eI", "eɪ"},
                                                                    {"i", "i"},
                                                                    {"i:", "i"},
                                                                    {"I", "ɪ"},
                                                                    {"i@", "ɪɹ"},
                                                                    {"i@3", "ɪɹ"},
                                                                    {"IR", "ɪɹ"},
                                                                    {"O", "ɔ"},
                                                                    {"O:", "ɔ"},
                                                                    {"O@", "ɔɹ"},
                                                                    {"o@", "ɔɹ"},
                                                                    {"o", "o"},
                                                                    {"o:", "o"},
                                                                    {"OI", "ɔɪ"},
                                                                    {"oU", "oʊ"},
                                                                    {"u", "u"},
                                                                    {"u:", "u"},
                                                                    {"U", "ʊ"},
                                                                    {"U@", "ʊɹ"},
                                                                    {"V", "ʌ"},
                                                                    {"aI", "aɪ"},
                                                                    {"aI@", "aɪ"},
                                                                    {"aI3", "aɪ"},
                                                                    {"aU", "aʊ"},
                                                                    {"aU@", "aʊ"},
                                                                    {"A~", "ɑ"},
                                                                    {"O~", "ɔ"},
                                                                    {"@L", "l\u0329"},
                                                                    {"p", "p"},
                                                                    {"b", "b"},
                                                                    {"t", "t"},
                                                                    {"d", "d"},
                                                                    {"k", "k"},
                                                                    {"g", "g"},
                                                                    {"q", "k"},
                                                                    {"c", "c"},
                                                                    {"J", "ɟ"},
                                                                    {"?", "ʔ"},
                                                                    {"t#", "ɾ"},
                                                                    {"*", "ɾ"},
                                                                    {"tS", "tʃ"},
                                                                    {"dZ", "dʒ"},
                                                                    {"f", "f"},
                                                                    {"v", "v"},
                                                                    {"B", "v"},
                                                                    {"T", "θ"},
                                                                    {"D", "ð"},
                                                                    {"s", "s"},
                                                                    {"z", "z"},
                                                                    {"S", "ʃ"},
                                                                    {"Z", "ʒ"},
                                                                    {"C", "ç"},
                                                                    {"x", "x"},
                                                                    {"X", "x"},
                                                                    {"h", "h"},
                                                                    {"m", "m"},
                                                                    {"n", "n"},
                                                                    {"N", "ŋ"},
                                                                    {"n^", "ɲ"},
                                                                    {"m-", "m\u0329"},
                                                                    {"n-", "n\u0329"},
                                                                    {"N-", "\u014b\u0329"},
                                                                    {"l-", "l\u0329"},
                                                                    {"l", "l"},
                                                                    {"L", "l"},
                                                                    {"r", "ɹ"},
                                                                    {"r-", "ɹ"},
                                                                    {"R", "ɹ"},
                                                                    {"j", "j"},
                                                                    {"w", "w"}};
  return t;
}

/// ARPAbet (stress digits removed) -> IPA; AH0 and ER0 are handled apart.
inline const std::map<std::string, std::string, std::less<>>& arpabet_names() {
  static const std::map<std::string, std::string, std::less<>> t = {
      {"AA", "ɑ"},       {"AE", "æ"},       {"AH", "ʌ"},  {"AO", "ɔ"}, {"AW", "aʊ"},
      {"AY", "aɪ"},      {"AX", "ə"},       {"AXR", "ɚ"}, {"EH", "ɛ"}, {"ER", "ɝ"},
      {"EY", "eɪ"},      {"IH", "ɪ"},       {"IX", "ɨ"},  {"IY", "i"}, {"OW", "oʊ"},
      {"OY", "ɔɪ"},      {"UH", "ʊ"},       {"UW", "u"},  {"UX", "ʉ"}, {"B", "b"},
      {"CH", "tʃ"},      {"D", "d"},        {"DH", "ð"},  {"DX", "ɾ"}, {"EL", "l\u0329"},
      {"EM", "m\u0329"}, {"EN", "n\u0329"}, {"F", "f"},   {"G", "g"},  {"HH", "h"},
      {"JH", "dʒ"},      {"K", "k"},        {"L", "l"},   {"M", "m"},  {"N", "n"},
      {"NG", "ŋ"},       {"NX", "ɾ"},       {"P", "p"},   {"Q", "ʔ"},  {"R", "ɹ"},
      {"S", "s"},        {"SH", "ʃ"},       {"T", "t"},   {"TH", "θ"}, {"V", "v"},
      {"W", "w"},        {"WH", "w"},       {"Y", "j"},   {"Z", "z"},  {"ZH", "ʒ"}};
  return t;
}

/// MFA's IPA spellings that differ from the table's.
inline const std::map<std::string, std::string, std::less<>>& ipa_aliases() {
  static const std::map<std::string, std::string, std::less<>> t = {
      {"aj", "aɪ"},
      {"aw", "aʊ"},
      {"ej", "eɪ"},
      {"ow", "oʊ"},
      {"ɔj", "ɔɪ"},
      {"oj", "ɔɪ"},
      {"ɫ", "l"},
      {"r", "ɹ"},
      {"ʧ", "tʃ"},
      {"ʤ", "dʒ"},
      {"ɵ", "o"},
      {"ɘ", "ə"},
      // espeak-ng's own IPA (its en-us voice), where it differs from MFA's.
      {"aɪə", "aɪ"},
      {"aɪɚ", "aɪ"},
      {"aʊɚ", "aʊ"},
      {"iə", "ɪɹ"},
      {"oɹ", "ɔɹ"},
      {"əl", "l\u0329"},
      {"ən", "n\u0329"},
      {"əm", "m\u0329"},
      {"ᵻ", "ɪ"}};
  return t;
}

/// Decodes one UTF-8 code point at s[i], moving i past it (a stray byte is
/// taken as itself).
inline char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  int length = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 1;
  if (i + length > s.size()) length = 1;
  char32_t cp = length == 1 ? b0 : b0 & (0x7F >> length);
  for (int k = 1; k < length; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  i += length;
  return cp;
}

/// `label` without the marks that do not change which phone it is: IPA
/// stress, length and the spacing modifier letters (ʰ ʲ ʷ ː ˈ ˌ ...,
/// U+02B0..U+02FF), combining diacritics (U+0300..U+036F, such as the
/// syllabic mark, kept apart so n̩ stays syllabic), and ASCII digits.
inline std::string strip_ipa_marks(std::string_view label, bool* syllabic) {
  std::string out;
  for (std::size_t i = 0; i < label.size();) {
    const std::size_t start = i;
    const char32_t cp = next_code_point(label, i);
    if (cp == 0x0329 || cp == 0x030D) {
      if (syllabic) *syllabic = true;
      continue;
    }
    if ((cp >= 0x02B0 && cp <= 0x02FF) || (cp >= 0x0300 && cp <= 0x036F)) continue;
    if (cp < 0x80 && (std::isdigit(static_cast<int>(cp)) || std::isspace(static_cast<int>(cp))))
      continue;
    out.append(label.substr(start, i - start));
  }
  return out;
}

inline std::string without_stress_prefix(std::string_view espeak) {
  while (!espeak.empty() && (espeak.front() == '\'' || espeak.front() == ',')) {
    espeak.remove_prefix(1);
  }
  return std::string(espeak);
}

}  // namespace detail::phones

/// The features of `label` read in `set`, or nothing for a symbol the
/// table does not know (it can still pair with an identical label).
inline std::optional<PhoneFeatures> phone_features(std::string_view label, PhoneSet set) {
  using namespace detail::phones;
  std::string_view trimmed = label;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front())))
    trimmed.remove_prefix(1);
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
    trimmed.remove_suffix(1);
  if (trimmed.empty()) return std::nullopt;
  switch (set) {
    case PhoneSet::espeak: {
      std::string name = without_stress_prefix(trimmed);
      for (int attempt = 0; attempt < 2; ++attempt) {
        if (const auto it = espeak_names().find(name); it != espeak_names().end())
          return sound(it->second);
        // Variants: "I2", "@5", "oU#", "l/", "n^"...: the base name.
        while (name.size() > 1 && std::string_view("0123456789#/^.;[\"~").find(name.back()) !=
                                      std::string_view::npos) {
          name.pop_back();
        }
      }
      return std::nullopt;
    }
    case PhoneSet::arpabet: {
      std::string name;
      char stress = 0;
      for (const char ch : trimmed) {
        if (std::isdigit(static_cast<unsigned char>(ch))) {
          stress = ch;
        } else {
          name += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        }
      }
      if (stress == '0' && name == "AH") return sound("ə");
      if (stress == '0' && name == "ER") return sound("ɚ");
      const auto it = arpabet_names().find(name);
      if (it == arpabet_names().end()) return std::nullopt;
      return sound(it->second);
    }
    case PhoneSet::ipa: {
      bool syllabic = false;
      std::string name = strip_ipa_marks(trimmed, &syllabic);
      if (const auto it = ipa_aliases().find(name); it != ipa_aliases().end()) name = it->second;
      // IPA's g is U+0261, ASCII g in the table (also inside "ɡʷ" and the like).
      std::string ascii_g;
      for (std::size_t i = 0; i < name.size();) {
        if (name.compare(i, 2, "\u0261") == 0) {
          ascii_g += 'g';
          i += 2;
        } else {
          ascii_g += name[i++];
        }
      }
      name = std::move(ascii_g);
      if (syllabic) {
        if (auto f = sound(name + "\u0329")) return f;
      }
      if (auto f = sound(name)) return f;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

/// What pairing a phone `a` with a phone `b` costs, from 0 (the same
/// sound) to 1 (unrelated). Identical labels cost 0 even when the table does
/// not know them; an unknown symbol otherwise costs 1.
inline double phone_distance(const std::optional<PhoneFeatures>& a,
                             const std::optional<PhoneFeatures>& b) {
  if (!a || !b) return 1.0;
  if (a->canonical == b->canonical) return 0.0;
  using Kind = PhoneFeatures::Kind;
  const auto diff = [](int x, int y) { return static_cast<double>(std::abs(x - y)); };
  if (a->kind == Kind::vowel && b->kind == Kind::vowel) {
    const double cost = 0.15 + 0.07 * diff(a->height_or_place, b->height_or_place) +
                        0.12 * diff(a->backness_or_manner, b->backness_or_manner) +
                        0.08 * (a->rounded_or_voiced != b->rounded_or_voiced) +
                        0.12 * (a->diphthong != b->diphthong) + 0.12 * (a->rhotic != b->rhotic);
    return std::min(cost, 0.9);
  }
  if (a->kind == Kind::consonant && b->kind == Kind::consonant) {
    const double cost = 0.15 + 0.05 * diff(a->height_or_place, b->height_or_place) +
                        0.25 * (a->backness_or_manner != b->backness_or_manner) +
                        0.1 * (a->rounded_or_voiced != b->rounded_or_voiced) +
                        0.1 * (a->syllabic != b->syllabic);
    return std::min(cost, 0.9);
  }
  // A vowel and a consonant: close only where one glides into the other
  // (j ~ i, w ~ u, ɹ ~ ɚ) or a syllabic consonant stands for schwa + consonant.
  const auto& v = a->kind == Kind::vowel ? *a : *b;
  const auto& c = a->kind == Kind::vowel ? *b : *a;
  if ((c.canonical == "j" && (v.canonical == "i" || v.canonical == "ɪ")) ||
      (c.canonical == "w" && (v.canonical == "u" || v.canonical == "ʊ")) ||
      (c.canonical == "ɹ" && v.rhotic) || (c.syllabic && v.canonical == "ə")) {
    return 0.5;
  }
  return 1.0;
}

/// The set a grid's phone labels are written in, judged by how many of them
/// each set knows (silences left out): ARPAbet when nearly all are
/// upper-case ARPAbet, else whichever of espeak and IPA knows more.
inline PhoneSet guess_phone_set(const std::vector<std::string>& labels) {
  std::size_t total = 0, arpabet = 0, espeak = 0, ipa = 0;
  for (const auto& label : labels) {
    if (label.empty()) continue;
    ++total;
    const bool upper = std::none_of(label.begin(), label.end(), [](char ch) {
      return std::islower(static_cast<unsigned char>(ch)) || static_cast<unsigned char>(ch) >= 0x80;
    });
    if (upper && phone_features(label, PhoneSet::arpabet)) ++arpabet;
    if (phone_features(label, PhoneSet::espeak)) ++espeak;
    if (phone_features(label, PhoneSet::ipa)) ++ipa;
  }
  if (total > 0 && arpabet * 10 >= total * 9) return PhoneSet::arpabet;
  return espeak >= ipa ? PhoneSet::espeak : PhoneSet::ipa;
}

}  // namespace kokoro::tts
