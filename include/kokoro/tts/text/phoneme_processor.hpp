// English text to model input ids: normalise the text (numbers, abbreviations),
// convert it to espeak-ng phone tokens (see espeak.hpp) and look each token up in
// a vocabulary. Id 0 is padding and id 1 stands for any symbol the vocabulary
// lacks; such symbols are counted, never dropped, so a vocabulary that does not
// fit the data shows up in the numbers instead of as silently shorter inputs.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kokoro/tts/text/arpabet.hpp"
#include "kokoro/tts/text/espeak.hpp"
#include "kokoro/tts/text/normalizer.hpp"
#include "kokoro/tts/text/phone_table.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/state_dict.hpp"

namespace kokoro::tts {

namespace detail::phonemes {

// The phoneme table of espeak-ng's en-us voice (espeak-ng 1.51: the "en-us"
// table with what it inherits from "en", "base1" and "base"), the phonemes of
// kinds vowel to nasal. Pauses, stress marks and virtual phonemes are not
// phones. Some entries (the base tables' "A~", "x", ...) English never uses;
// they cost an unused embedding row each and make the list complete by
// construction rather than by sampling.
inline constexpr std::array<std::string_view, 63> kEnUsVowels = {
    "@",   "@-",  "a",  "e",  "i",   "o",  "u",  "m-", "n-", "N-",  "l-",  "3",  "I2",
    "@2",  "@5",  "U",  "@L", "a#",  "a2", "aa", "A:", "E",  "E#",  "E2",  "I",  "I#",
    "I2#", "0",   "0#", "02", "O2",  "V",  "A@", "A#", "3:", "i:",  "O:",  "O",  "O@",
    "o@",  "u:",  "aU", "oU", "oU#", "aI", "eI", "OI", "e@", "i@",  "i@3", "U@", "aI@",
    "aI3", "aU@", "IR", "VR", "o:",  "A~", "O~", "e:", "e#", "a#2", "@#"};

inline constexpr std::array<std::string_view, 74> kEnUsConsonants = {
    // liquids and glides
    "r", ";", "r-", "r/", "R", "R2", "R3", "l", "l/", "j", "w", "l/2", "l/3", "l^", "l.", "L/", "L",
    "**", "r.",
    // voiceless and voiced stops
    "?", "t", "p", "k", "t[", "tS", "tS;", "c", "q", "t2", "d#", "*", "t#", "b", "d", "d[", "dZ",
    "dZ;", "J", "g",
    // voiceless and voiced fricatives
    "#X1", "h", "f", "T", "s", "S", "s.", "s;", "S;", "C", "x", "l#", "X", "z#", "w#", "r\"", "B",
    "v", "v#", "D", "z", "Z", "z.", "z;", "Z;", "J^", "Q", "Q^", "Q\"", "z/2",
    // nasals
    "n", "m", "n.", "n^", "N"};

/// The first line of a saved vocabulary: magic, version, voice.
inline constexpr std::string_view kFileMagic = "kokoro-phoneme-vocabulary";
inline constexpr int kFileVersion = 1;

/// A symbol as one line of the file: a space is "\s", a tab "\t", a backslash "\\".
inline std::string escape_symbol(std::string_view symbol) {
  std::string out;
  for (const char c : symbol) {
    if (c == ' ') {
      out += "\\s";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out;
}

/// Symbols that cannot be a line of the file or would be lost in one.
inline bool is_storable_symbol(std::string_view symbol) {
  if (symbol.empty()) return false;
  for (const char c : symbol) {
    if (c == '\n' || c == '\r' || c == '\0') return false;
  }
  return true;
}

/// Counts the symbols encode() did not find. Copyable (the counts are copied).
class UnknownCounter {
 public:
  UnknownCounter() = default;
  UnknownCounter(const UnknownCounter& other) : counts_(other.snapshot()) {}
  UnknownCounter& operator=(const UnknownCounter& other) {
    if (this != &other) {
      auto counts = other.snapshot();
      std::lock_guard<std::mutex> lock(mutex_);
      counts_ = std::move(counts);
    }
    return *this;
  }

  void add(const std::string& symbol) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_[symbol];
  }
  std::map<std::string, std::int64_t> snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return counts_;
  }
  void reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    counts_.clear();
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t> counts_;
};

}  // namespace detail::phonemes

/// The built-in vocabulary: "<pad>", "<unk>", the word boundary " ", the
/// punctuation tokens (kPunctuationTokens), every en-us vowel unstressed, then
/// with primary stress ("'a"), then with secondary stress (",a"), then every
/// en-us consonant, with the punctuation-like mnemonics spelled as espeak.hpp
/// spells them ("?#", ";#").
inline std::vector<std::string> english_phoneme_vocabulary() {
  std::vector<std::string> v = {"<pad>", "<unk>", std::string(kWordBoundary)};
  for (const auto p : kPunctuationTokens) v.emplace_back(p);
  for (const char stress : {'\0', '\'', ','}) {
    for (const auto vowel : detail::phonemes::kEnUsVowels) {
      v.push_back(detail::espeak::phone_token(vowel, stress));
    }
  }
  for (const auto consonant : detail::phonemes::kEnUsConsonants) {
    v.push_back(detail::espeak::phone_token(consonant, 0));
  }
  return v;
}

/// English text to token ids and back, over a fixed vocabulary. Thread-safe:
/// tokens() and encode() may be called from several threads (espeak-ng calls
/// queue on one lock).
class EnglishPhonemeProcessor {
 public:
  static constexpr std::string_view kPad = "<pad>";
  static constexpr std::string_view kUnk = "<unk>";

  /// The built-in vocabulary (english_phoneme_vocabulary()) and voice en-us.
  EnglishPhonemeProcessor() : EnglishPhonemeProcessor(english_phoneme_vocabulary()) {}

  /// A saved or custom vocabulary: symbol i has id i. Requires "<pad>" first,
  /// "<unk>" second, and every symbol non-empty, without line breaks, and once;
  /// throws kokoro::Error otherwise.
  explicit EnglishPhonemeProcessor(std::vector<std::string> vocabulary, std::string voice = "en-us")
      : vocabulary_(std::move(vocabulary)), voice_(std::move(voice)) {
    if (vocabulary_.size() < 2 || vocabulary_[0] != kPad || vocabulary_[1] != kUnk) {
      throw Error(fmt::format(
          "phoneme vocabulary: the first two symbols must be \"{}\" and \"{}\", found {}", kPad,
          kUnk,
          vocabulary_.size() < 2
              ? fmt::format("{} symbols", vocabulary_.size())
              : fmt::format("\"{}\" and \"{}\"", vocabulary_[0], vocabulary_[1])));
    }
    for (std::size_t i = 0; i < vocabulary_.size(); ++i) {
      const std::string& symbol = vocabulary_[i];
      if (!detail::phonemes::is_storable_symbol(symbol)) {
        throw Error(fmt::format("phoneme vocabulary: symbol {} is empty or holds a line break", i));
      }
      const auto [it, added] = ids_.emplace(symbol, static_cast<std::int64_t>(i));
      if (!added) {
        throw Error(fmt::format("phoneme vocabulary: symbol \"{}\" appears at {} and {}", symbol,
                                it->second, i));
      }
    }
  }

  /// The processor of a phoneme set (`data.phoneme_set`): "espeak" (espeak-ng's
  /// en-us mnemonics) or "arpabet" (CMUdict phones through flite), with its
  /// built-in vocabulary. Throws kokoro::Error for another name.
  static EnglishPhonemeProcessor for_phoneme_set(std::string_view set) {
    if (set == "espeak") return EnglishPhonemeProcessor();
    if (set == "arpabet")
      return EnglishPhonemeProcessor(arpabet_vocabulary(), std::string(kArpabetVoice));
    throw Error(fmt::format("phoneme set \"{}\": expected espeak or arpabet", set));
  }

  /// The notation of the tokens: ARPAbet for the voice kArpabetVoice, else
  /// espeak-ng's mnemonics.
  PhoneSet phone_set() const {
    return voice_ == kArpabetVoice ? PhoneSet::arpabet : PhoneSet::espeak;
  }

  /// The tokens of `text`: its normalised form through the front end of
  /// phone_set(): phonemize(..., voice()) or arpabet_tokens(...).
  std::vector<std::string> tokens(std::string_view text) const { return transcribe(text).tokens; }

  /// tokens(text), and the words they say: one label per run of phones
  /// between word boundaries, from the normalised text (numbers spelled out;
  /// words espeak-ng speaks as one, "of the", share a label). What a TextGrid's
  /// words tier is labelled with.
  struct Transcription {
    std::vector<std::string> tokens;
    std::vector<std::string> words;
  };
  Transcription transcribe(std::string_view text) const {
    const auto normalized = normalize_english(text);
    Transcription t;
    t.tokens = phone_set() == PhoneSet::arpabet ? arpabet_tokens(normalized, &t.words)
                                                : phonemize(normalized, voice_, &t.words);
    return t;
  }

  /// The ids of tokens(text); unknown symbols become unk_id() and are counted.
  std::vector<std::int64_t> encode(std::string_view text) const {
    return encode_tokens(tokens(text));
  }

  /// The ids of `tokens`; unknown symbols become unk_id() and are counted.
  std::vector<std::int64_t> encode_tokens(const std::vector<std::string>& tokens) const {
    std::vector<std::int64_t> ids;
    ids.reserve(tokens.size());
    for (const auto& token : tokens) {
      const auto it = ids_.find(token);
      if (it == ids_.end()) {
        unknown_.add(token);
        ids.push_back(unk_id());
      } else {
        ids.push_back(it->second);
      }
    }
    return ids;
  }

  /// The symbols of `ids`, padding left out. Throws kokoro::Error for an id
  /// outside the vocabulary.
  std::vector<std::string> decode(const std::vector<std::int64_t>& ids) const {
    std::vector<std::string> out;
    out.reserve(ids.size());
    for (const auto id : ids) {
      if (id < 0 || id >= vocab_size()) {
        throw Error(fmt::format("phoneme vocabulary: id {} is outside [0, {})", id, vocab_size()));
      }
      if (id != pad_id()) out.push_back(vocabulary_[static_cast<std::size_t>(id)]);
    }
    return out;
  }

  /// The id of `symbol`, or unk_id() (not counted).
  std::int64_t id(std::string_view symbol) const {
    const auto it = ids_.find(std::string(symbol));
    return it == ids_.end() ? unk_id() : it->second;
  }

  std::int64_t vocab_size() const { return static_cast<std::int64_t>(vocabulary_.size()); }
  std::int64_t pad_id() const { return 0; }
  std::int64_t unk_id() const { return 1; }
  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  const std::string& voice() const { return voice_; }

  /// Whether `token` stands where a pause may be: the word boundary or a
  /// punctuation mark. These have no phone of their own in an alignment.
  static bool is_pause_token(std::string_view token) {
    return token == kWordBoundary || is_punctuation_token(token);
  }

  /// Per id of `ids`, whether its symbol is a pause token (ids outside the
  /// vocabulary are not).
  std::vector<bool> pause_mask(const std::vector<std::int64_t>& ids) const {
    std::vector<bool> out(ids.size(), false);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= 0 && ids[i] < vocab_size())
        out[i] = is_pause_token(vocabulary_[static_cast<std::size_t>(ids[i])]);
    }
    return out;
  }

  /// Whether `token` is a phone: neither a pause token nor "<pad>"/"<unk>".
  static bool is_phone_token(std::string_view token) {
    return !token.empty() && !is_pause_token(token) && token != kPad && token != kUnk;
  }

  /// How many unknown symbols encode() has met since construction or the last
  /// reset_unknown(), and which (symbol -> count).
  std::int64_t unknown_count() const {
    std::int64_t total = 0;
    for (const auto& [symbol, count] : unknown_.snapshot()) total += count;
    return total;
  }
  std::map<std::string, std::int64_t> unknown_symbols() const { return unknown_.snapshot(); }
  void reset_unknown() { unknown_.reset(); }

 private:
  std::vector<std::string> vocabulary_;
  std::string voice_;
  std::unordered_map<std::string, std::int64_t> ids_;
  mutable detail::phonemes::UnknownCounter unknown_;
};

/// Writes the processor's vocabulary to `path` atomically: a header line
/// "kokoro-phoneme-vocabulary 1 <voice>", then one symbol per line in id order
/// (a space written "\s", a tab "\t", a backslash "\\").
inline void save_phoneme_processor(const EnglishPhonemeProcessor& processor,
                                   const std::filesystem::path& path) {
  std::string text = fmt::format("{} {} {}\n", detail::phonemes::kFileMagic,
                                 detail::phonemes::kFileVersion, processor.voice());
  for (const auto& symbol : processor.vocabulary()) {
    text += detail::phonemes::escape_symbol(symbol);
    text += '\n';
  }
  write_file_atomically(path, text);
}

/// Reads a vocabulary written by save_phoneme_processor. Throws kokoro::Error
/// "<path>:<line>: <what is wrong>" for a missing or foreign header, a newer
/// version, an empty line, an unknown escape, a repeated symbol, or a file that
/// does not start with "<pad>" and "<unk>".
inline EnglishPhonemeProcessor load_phoneme_processor(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open the phoneme vocabulary", path.string()));
  const auto fail = [&](int line, const std::string& what) {
    return Error(fmt::format("{}:{}: {}", path.string(), line, what));
  };
  std::string line;
  int number = 0;
  std::string voice;
  std::vector<std::string> symbols;
  std::unordered_map<std::string, int> seen;  // symbol -> line
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1) {
      const std::string expected = fmt::format("\"{} {} <voice>\"", detail::phonemes::kFileMagic,
                                               detail::phonemes::kFileVersion);
      const auto first = line.find(' ');
      const auto second = first == std::string::npos ? first : line.find(' ', first + 1);
      if (first == std::string::npos || line.substr(0, first) != detail::phonemes::kFileMagic) {
        throw fail(number, fmt::format("not a phoneme vocabulary: expected {}, found \"{}\"",
                                       expected, line));
      }
      const std::string version = line.substr(first + 1, second - first - 1);
      if (version != std::to_string(detail::phonemes::kFileVersion)) {
        throw fail(number, fmt::format("version \"{}\" is not supported (this reader knows {})",
                                       version, detail::phonemes::kFileVersion));
      }
      voice = second == std::string::npos ? std::string() : line.substr(second + 1);
      if (voice.empty() || voice.find(' ') != std::string::npos) {
        throw fail(number, fmt::format("expected {}, found \"{}\"", expected, line));
      }
      continue;
    }
    if (line.empty()) throw fail(number, "empty line (a space is written \\s)");
    std::string symbol;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] != '\\') {
        symbol += line[i];
        continue;
      }
      const char next = i + 1 < line.size() ? line[i + 1] : '\0';
      if (next == 's') {
        symbol += ' ';
      } else if (next == 't') {
        symbol += '\t';
      } else if (next == '\\') {
        symbol += '\\';
      } else {
        throw fail(number, fmt::format("unknown escape in \"{}\" (known: \\s \\t \\\\)", line));
      }
      ++i;
    }
    const std::size_t index = symbols.size();
    if (index == 0 && symbol != EnglishPhonemeProcessor::kPad) {
      throw fail(number, fmt::format("expected \"{}\" (id 0), found \"{}\"",
                                     EnglishPhonemeProcessor::kPad, symbol));
    }
    if (index == 1 && symbol != EnglishPhonemeProcessor::kUnk) {
      throw fail(number, fmt::format("expected \"{}\" (id 1), found \"{}\"",
                                     EnglishPhonemeProcessor::kUnk, symbol));
    }
    const auto [it, added] = seen.emplace(symbol, number);
    if (!added) {
      throw fail(number, fmt::format("symbol \"{}\" repeats line {}", line, it->second));
    }
    symbols.push_back(std::move(symbol));
  }
  if (in.bad()) throw Error(fmt::format("{}: read failed", path.string()));
  if (number == 0) throw fail(1, "empty file, expected the header line");
  if (symbols.size() < 2) {
    throw fail(
        number,
        fmt::format("the vocabulary ends after {} symbols; it needs \"{}\" and \"{}\"",
                    symbols.size(), EnglishPhonemeProcessor::kPad, EnglishPhonemeProcessor::kUnk));
  }
  return EnglishPhonemeProcessor(std::move(symbols), std::move(voice));
}

/// A task's state for its checkpoint: the vocabulary and front end its
/// phoneme ids mean ("phoneme_vocabulary", "phoneme_voice").
inline StateDict phoneme_state_dict(const EnglishPhonemeProcessor& processor) {
  StateDict d;
  d["phoneme_vocabulary"] = processor.vocabulary();
  d["phoneme_voice"] = processor.voice();
  return d;
}

/// Refuses a checkpoint whose vocabulary differs from `processor`'s: its
/// embedding rows would mean other phonemes. A checkpoint without one
/// (written before the vocabulary travelled in it) is taken as it is.
inline void check_phoneme_state_dict(const StateDict& d, const EnglishPhonemeProcessor& processor) {
  const auto it = d.find("phoneme_vocabulary");
  if (it == d.end()) return;
  const auto* vocabulary = std::get_if<std::vector<std::string>>(&it->second);
  if (vocabulary && *vocabulary != processor.vocabulary()) {
    throw Error(fmt::format(
        "the checkpoint's phoneme vocabulary ({} symbols) differs from this build's ({} symbols); "
        "it was trained with another phoneme set",
        vocabulary->size(), processor.vocabulary().size()));
  }
}

}  // namespace kokoro::tts
