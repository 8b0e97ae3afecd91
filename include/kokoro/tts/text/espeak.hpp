// espeak-ng as a process-wide engine: speech synthesis with the exact sample
// position of every phoneme and word, and grapheme-to-phoneme tokens that are,
// by construction, the phones of that synthesis. The library keeps global state
// and is not thread-safe, so it is initialised once and every call holds one
// mutex; callers on several threads simply queue.
//
// Phone tokens are espeak-ng's ASCII phoneme mnemonics ("h", "@", "oU", "t#"),
// with two additions:
//  - stress stays on the vowel: "'oU" is a vowel with primary stress, ",oU" with
//    secondary stress, "oU" unstressed (espeak-ng's own notation);
//  - the two mnemonics that would read as punctuation get a '#': the glottal stop
//    "?" is "?#" and the vowel-linking phoneme ";" is ";#".
// PhonemeEvent::name carries these same tokens, so the phones of a TextGrid made
// from the events and the phones of phonemize() are the same strings.
//
// Synthesis is repeatable: the same text and voice give the same samples
// whatever was spoken before, for en-us and the other plain voices (see
// Engine::load_steady_voice for what that takes, and for the exceptions).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <espeak-ng/speak_lib.h>

#include <fmt/format.h>

#include "kokoro/util/errors.hpp"

namespace kokoro::tts {

/// The word-boundary token of phonemize().
inline constexpr std::string_view kWordBoundary = " ";

/// The punctuation tokens of phonemize(), in vocabulary order.
inline constexpr std::array<std::string_view, 7> kPunctuationTokens = {".", ",", "?", "!",
                                                                       ";", ":", "-"};

/// Whether `token` is one of kPunctuationTokens.
inline bool is_punctuation_token(std::string_view token) {
  return std::find(kPunctuationTokens.begin(), kPunctuationTokens.end(), token) !=
         kPunctuationTokens.end();
}

/// Whether `name` is an espeak-ng pause ("_", "_:", "_!", "||", ...): silence, not a phone.
inline bool is_espeak_pause(std::string_view name) {
  return name.empty() || name.front() == '_' || name.front() == '|';
}

/// A phoneme event of a synthesis.
struct PhonemeEvent {
  /// The phone token (see the top of this file), or espeak-ng's pause name ("_", "_:").
  std::string name;
  /// Where the phoneme starts: the absolute sample index in this utterance. Events
  /// never go backwards.
  std::int64_t sample = 0;
  /// Index into Synthesis::words of the word this phone belongs to; -1 for pauses.
  int word = -1;

  bool is_pause() const { return is_espeak_pause(name); }
};

/// A word event of a synthesis, placed on a word of the input (espeak-ng's own
/// text positions are sometimes off by a word; Engine::synthesize corrects them).
struct WordEvent {
  std::string text;         ///< the word of the input (letters, digits, inner apostrophes)
  std::int64_t sample = 0;  ///< sample index where espeak-ng starts the word
  std::size_t offset = 0;   ///< byte offset of `text` in the input
};

/// The result of synthesize().
struct Synthesis {
  int sample_rate = 0;                 ///< espeak-ng's native rate, 22050 Hz
  std::vector<float> samples;          ///< mono, in [-1, 1)
  std::vector<PhonemeEvent> phonemes;  ///< in time order, pauses included
  std::vector<WordEvent> words;        ///< in time order; words espeak-ng did not mark are absent
  /// Whether the vowels carry stress marks. False only when espeak-ng's phoneme
  /// transcription of the text could not be matched to the events (then every
  /// phone is unmarked, in the synthesis and in phonemize() alike).
  bool stress_marked = false;

  double duration_seconds() const {
    return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0;
  }
};

namespace detail::espeak {

/// Byte offset of every code point of UTF-8 `text`, plus text.size() at the end:
/// espeak-ng reports text positions in characters, 1-based.
inline std::vector<std::size_t> code_point_offsets(std::string_view text) {
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(text.size());
  return offsets;
}

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline bool is_alnum(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
}

/// The words of `text` as byte ranges: runs of letters, digits and non-ASCII
/// characters, with apostrophes inside them ("don't" is one word).
inline std::vector<std::pair<std::size_t, std::size_t>> word_spans(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !is_alnum(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && (is_alnum(text[i]) ||
                               (text[i] == '\'' && i + 1 < text.size() && is_alnum(text[i + 1])))) {
      ++i;
    }
    if (i > start) spans.emplace_back(start, i);
  }
  return spans;
}

/// The token for a (non-pause) espeak-ng mnemonic with its stress mark.
inline std::string phone_token(std::string_view mnemonic, char stress) {
  std::string token;
  if (stress != 0) token += stress;
  token += mnemonic;
  if (is_punctuation_token(mnemonic)) token += '#';
  return token;
}

/// A phone of espeak-ng's text-to-phonemes output: its stress mark and name.
struct MarkedPhone {
  char stress = 0;  ///< '\'' primary, ',' secondary, 0 none
  std::string name;
};

/// Parses one clause of espeak_TextToPhonemes output written with ' ' between
/// phonemes (words are then two spaces apart). Pauses and language switches
/// ("(fr)") are left out; the lengthening and syllabic suffixes (':' '-') that
/// this output may add stay on the name, and the caller matches by prefix.
inline void parse_marked_phones(std::string_view clause, std::vector<MarkedPhone>& out) {
  std::size_t i = 0;
  while (i < clause.size()) {
    while (i < clause.size() && clause[i] == ' ') ++i;
    std::size_t j = i;
    while (j < clause.size() && clause[j] != ' ') ++j;
    std::string_view token = clause.substr(i, j - i);
    i = j;
    if (token.empty()) continue;
    MarkedPhone phone;
    while (!token.empty() &&
           (token.front() == '\'' || token.front() == ',' || token.front() == '=')) {
      if (token.front() != '=') phone.stress = token.front();
      token.remove_prefix(1);
    }
    if (token.empty() || is_espeak_pause(token) || token.front() == '(') continue;
    phone.name = std::string(token);
    out.push_back(std::move(phone));
  }
}

/// Collects what the synthesis callback receives for one utterance.
struct Capture {
  std::vector<short> samples;
  std::vector<PhonemeEvent> phonemes;
  struct Word {
    int position = 0;  // 1-based character
    int length = 0;    // characters
    std::int64_t sample = 0;
  };
  std::vector<Word> words;
};

class Engine {
 public:
  static Engine& instance() {
    static Engine engine;
    return engine;
  }

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Synthesis synthesize(std::string_view text, const std::string& voice) {
    std::lock_guard<std::mutex> lock(mutex_);
    prepare(voice);
    const std::string input(text);  // espeak-ng wants a NUL-terminated buffer

    Capture capture;
    current_ = &capture;
    unsigned int id = 0;
    const auto status = espeak_Synth(input.c_str(), input.size() + 1, 0, POS_CHARACTER, 0,
                                     espeakCHARS_UTF8, &id, nullptr);
    espeak_Synchronize();
    current_ = nullptr;
    if (status != EE_OK) {
      throw Error(fmt::format("espeak-ng: synthesis failed (error {}) for \"{}\"",
                              static_cast<int>(status), input));
    }

    Synthesis out;
    out.sample_rate = sample_rate_;
    out.samples.reserve(capture.samples.size());
    for (const short s : capture.samples) out.samples.push_back(static_cast<float>(s) / 32768.0f);

    // Words: espeak-ng's positions are characters, and not always right: the
    // second word of one of its multi-word entries ("such as", "do so") comes
    // one character after the first, and a lone dash is marked as the start of
    // the word after it. So each mark is placed on a word of the text, in
    // order: the word at (or after) its position, or if that word is already
    // taken, the next one; a mark at the same position as the one before (a
    // word espeak-ng spells letter by letter) stays on the same word.
    const auto offsets = code_point_offsets(input);
    const auto to_byte = [&](int position) {
      const auto index = static_cast<std::size_t>(std::max(position, 1) - 1);
      return offsets[std::min(index, offsets.size() - 1)];
    };
    const auto text_words = word_spans(input);
    std::vector<int> word_index(capture.words.size(), -1);
    std::size_t taken = 0;  // text words before this index are taken
    int last_position = -1;
    for (std::size_t w = 0; w < capture.words.size(); ++w) {
      const auto& word = capture.words[w];
      if (word.length <= 0) continue;  // espeak-ng marks some pauses as empty words
      const std::size_t at = to_byte(word.position);
      std::size_t i = 0;
      while (i < text_words.size() && text_words[i].second <= at) ++i;
      if (word.position == last_position && taken > 0) {
        i = taken - 1;
      } else if (i < taken) {
        i = taken;
      }
      last_position = word.position;
      std::size_t begin = at, end = to_byte(word.position + word.length);
      if (i < text_words.size()) {
        std::tie(begin, end) = text_words[i];
        taken = i + 1;
      }
      word_index[w] = static_cast<int>(out.words.size());
      out.words.push_back({input.substr(begin, end - begin), word.sample, begin});
    }

    // Phonemes: belong to the last word marked before them; stress marks come
    // from espeak-ng's transcription of the same text, phone by phone.
    const auto marked = marked_phones(input);
    std::vector<std::size_t> phones;
    for (std::size_t i = 0; i < capture.phonemes.size(); ++i) {
      if (!capture.phonemes[i].is_pause()) phones.push_back(i);
    }
    out.stress_marked = marked.size() == phones.size();
    for (std::size_t k = 0; out.stress_marked && k < phones.size(); ++k) {
      out.stress_marked =
          std::string_view(marked[k].name).starts_with(capture.phonemes[phones[k]].name);
    }
    out.phonemes = std::move(capture.phonemes);
    std::size_t k = 0;
    std::int64_t last_sample = 0;
    for (auto& event : out.phonemes) {
      event.sample = std::clamp<std::int64_t>(event.sample, last_sample,
                                              static_cast<std::int64_t>(out.samples.size()));
      last_sample = event.sample;
      if (event.word >= 0) event.word = word_index[static_cast<std::size_t>(event.word)];
      if (event.is_pause()) {
        event.word = -1;
        continue;
      }
      event.name = phone_token(event.name, out.stress_marked ? marked[k].stress : 0);
      ++k;
    }
    // Phones before espeak-ng's first word mark, or after an empty one, join the
    // nearest earlier word (or the first word).
    int current = -1;
    for (auto& event : out.phonemes) {
      if (event.is_pause()) continue;
      if (event.word >= 0) {
        current = event.word;
      } else if (current >= 0) {
        event.word = current;
      }
    }
    for (auto& event : out.phonemes) {
      if (!event.is_pause() && event.word < 0 && !out.words.empty()) event.word = 0;
    }
    return out;
  }

  /// espeak-ng's own IPA transcription of `text`: its phones in order, stress
  /// marks (ˈ ˌ) left out, the length mark kept ("ɑː"). Words are not told apart.
  std::vector<std::string> ipa_phones(std::string_view text, const std::string& voice) {
    std::lock_guard<std::mutex> lock(mutex_);
    prepare(voice);
    const std::string input(text);
    std::vector<std::string> out;
    const void* cursor = input.c_str();
    for (std::size_t guard = 0; within_text(cursor, input) && guard <= input.size() + 1; ++guard) {
      const char* clause =
          espeak_TextToPhonemes(&cursor, espeakCHARS_UTF8, espeakPHONEMES_IPA | ('_' << 8));
      if (clause == nullptr) break;
      std::string phone;
      auto flush = [&] {
        if (!phone.empty()) out.push_back(std::move(phone));
        phone.clear();
      };
      for (std::size_t i = 0; clause[i] != '\0'; ++i) {
        const std::string_view rest(clause + i);
        if (clause[i] == '_' || clause[i] == ' ') {
          flush();
        } else if (rest.starts_with("\u02C8") || rest.starts_with("\u02CC")) {
          ++i;  // ˈ ˌ: two bytes
        } else {
          phone += clause[i];
        }
      }
      flush();
    }
    return out;
  }

 private:
  Engine() = default;

  void prepare(const std::string& voice) {
    if (sample_rate_ <= 0) {
      // DONT_EXIT: without it a missing data folder ends the process.
      const int rate =
          espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr,
                            espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT);
      if (rate <= 0) {
        throw Error(
            "espeak-ng: initialisation failed (is espeak-ng-data installed? Debian: "
            "apt install espeak-ng-data)");
      }
      espeak_SetSynthCallback(&Engine::on_audio);
      sample_rate_ = rate;
    }
    if (voice != voice_) {
      voice_.clear();
      if (espeak_SetVoiceByName(voice.c_str()) != EE_OK) {
        const std::string name = voice_for_language(voice);
        if (name.empty() || espeak_SetVoiceByName(name.c_str()) != EE_OK) {
          throw Error(fmt::format(
              "espeak-ng: unknown voice '{}' (give a voice or a language: en-us, en-gb, en, ...)",
              voice));
        }
      }
      load_steady_voice();
      voice_ = voice;
    }
  }

  /// The name of the voice that speaks `language` ("en-gb") with the highest
  /// priority, or "" if none does. Exact matches only: espeak-ng's own search
  /// by language also accepts prefixes, so "no-such-voice" would be Norwegian.
  static std::string voice_for_language(const std::string& language) {
    const auto lower = [](std::string s) {
      for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      return s;
    };
    const std::string wanted = lower(language);
    std::string best;
    int best_priority = 1 << 30;
    const espeak_VOICE** voices = espeak_ListVoices(nullptr);
    for (std::size_t i = 0; voices != nullptr && voices[i] != nullptr; ++i) {
      // languages: (priority byte, NUL-terminated name)*, then a zero byte.
      for (const char* p = voices[i]->languages; p != nullptr && *p != 0;) {
        const int priority = static_cast<unsigned char>(*p++);
        const std::string name = p;
        p += name.size() + 1;
        if (lower(name) == wanted && priority < best_priority && voices[i]->name != nullptr) {
          best = voices[i]->name;
          best_priority = priority;
        }
      }
    }
    return best;
  }

  /// Reloads the current voice with pitch flutter and roughness off. Both
  /// vary the pitch from a state that survives between utterances (flutter's
  /// phase is a static that nothing resets), so with them the same text comes
  /// out different after each earlier utterance; without them synthesis depends
  /// on the text and voice alone. The voice file is copied with "flutter 0" and
  /// "roughness 0" added, loaded, and removed (espeak-ng reads it once). If any
  /// step fails the voice stays as loaded, and not repeatable; so are variants
  /// that add breath noise or echo ("en-us+f2"), which draw on rand() and an
  /// echo buffer that also outlive an utterance.
  void load_steady_voice() {
    const espeak_VOICE* current = espeak_GetCurrentVoice();
    const char* data = nullptr;
    espeak_Info(&data);
    if (current == nullptr || current->identifier == nullptr || data == nullptr) return;
    std::string identifier = current->identifier, variant;
    if (const auto plus = identifier.find('+'); plus != std::string::npos) {
      variant = identifier.substr(plus + 1);
      identifier.resize(plus);
    }
    const auto read = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    std::string text = read(std::string(data) + "/voices/" + identifier);
    if (text.empty()) text = read(std::string(data) + "/lang/" + identifier);
    if (text.empty()) return;
    if (!variant.empty()) {
      // A variant ("+f2") is a voice file applied on top; merged into one file
      // so that the lines below come last and win.
      const std::string extra = read(std::string(data) + "/voices/!v/" + variant);
      if (extra.empty()) return;
      std::size_t start = 0;
      while (start < extra.size()) {
        std::size_t end = extra.find('\n', start);
        if (end == std::string::npos) end = extra.size();
        const std::string_view line(extra.data() + start, end - start);
        if (!line.starts_with("language") && !line.starts_with("name")) {
          text += '\n';
          text += line;
        }
        start = end + 1;
      }
    }
    text += "\nflutter 0\nroughness 0\n";
    // espeak-ng lower-cases the path and keeps 59 characters of it.
    const std::string path = fmt::format("/tmp/kokoro-espeak-{}.voice", ::getpid());
    ::unlink(path.c_str());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (written) espeak_SetVoiceByFile(path.c_str());
    ::unlink(path.c_str());
  }

  /// Whether espeak_TextToPhonemes's cursor still points into `input` before
  /// its end. espeak-ng may leave it past the end rather than null (found by
  /// fuzz/text_front_ends.cpp with control characters in the text): reading
  /// on from there reads memory that is not the text.
  static bool within_text(const void* cursor, const std::string& input) {
    const auto* at = static_cast<const char*>(cursor);
    const char* begin = input.c_str();
    return at != nullptr && at >= begin && at < begin + std::strlen(begin);
  }

  /// The stress-marked phones of espeak-ng's transcription, clause by clause.
  static std::vector<MarkedPhone> marked_phones(const std::string& input) {
    std::vector<MarkedPhone> out;
    const void* cursor = input.c_str();
    // Every call consumes at least one character; the bound only guards a loop.
    for (std::size_t guard = 0; within_text(cursor, input) && guard <= input.size() + 1; ++guard) {
      const char* clause = espeak_TextToPhonemes(&cursor, espeakCHARS_UTF8, ' ' << 8);
      if (clause == nullptr) break;
      parse_marked_phones(clause, out);
    }
    return out;
  }

  static int on_audio(short* wav, int count, espeak_EVENT* events) {
    Capture* capture = instance().current_;
    if (capture == nullptr) return 0;
    if (wav != nullptr && count > 0)
      capture->samples.insert(capture->samples.end(), wav, wav + count);
    for (; events != nullptr && events->type != espeakEVENT_LIST_TERMINATED; ++events) {
      if (events->type == espeakEVENT_WORD) {
        capture->words.push_back({events->text_position, events->length, events->sample});
      } else if (events->type == espeakEVENT_PHONEME) {
        // The name field is 8 bytes and has no terminator when full.
        const char* name = events->id.string;
        PhonemeEvent event;
        event.name.assign(name, strnlen(name, sizeof(events->id.string)));
        event.sample = events->sample;
        event.word = static_cast<int>(capture->words.size()) - 1;
        capture->phonemes.push_back(std::move(event));
      }
    }
    return 0;  // continue
  }

  std::mutex mutex_;
  int sample_rate_ = 0;
  std::string voice_;
  Capture* current_ = nullptr;
};

}  // namespace detail::espeak

/// Speaks `text` (UTF-8) with espeak-ng's `voice`, returning the audio at the
/// native 22050 Hz and the sample position of every phoneme and word. Throws
/// kokoro::Error when espeak-ng cannot start or does not know the voice.
inline Synthesis synthesize(std::string_view text, const std::string& voice = "en-us") {
  return detail::espeak::Engine::instance().synthesize(text, voice);
}

namespace detail::espeak {

/// Appends the punctuation tokens that end whitespace-separated chunks of
/// text[begin, end): "world!" gives "!", a lone " - " gives "-", "yes..." gives
/// one ".". Closing quotes and brackets after the mark are looked through.
inline void append_punctuation(std::string_view text, std::size_t begin, std::size_t end,
                               std::vector<std::string>& tokens) {
  static constexpr std::array<std::string_view, 7> closers = {
      ")", "]", "}", "\"", "'", "\xE2\x80\x9D", "\xE2\x80\x99"};
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 3> wide = {
      {{"\xE2\x80\xA6", "."}, {"\xE2\x80\x93", "-"}, {"\xE2\x80\x94", "-"}}};  // … – —
  end = std::min(end, text.size());
  std::size_t chunk_end = std::min(begin, end);
  while (chunk_end < end) {
    while (chunk_end < end && is_space(text[chunk_end])) ++chunk_end;
    std::size_t chunk_start = chunk_end;
    while (chunk_end < text.size() && !is_space(text[chunk_end])) ++chunk_end;
    if (chunk_start >= end) break;
    // Walk back from the chunk's end over punctuation and closers.
    std::vector<std::string_view> marks;
    std::string_view rest = text.substr(chunk_start, chunk_end - chunk_start);
    for (bool more = true; more && !rest.empty();) {
      more = false;
      const std::string_view last(rest.data() + rest.size() - 1, 1);
      if (is_punctuation_token(last)) {
        marks.push_back(last);
        rest.remove_suffix(1);
        more = true;
        continue;
      }
      for (const auto closer : closers) {
        if (rest.ends_with(closer)) {
          rest.remove_suffix(closer.size());
          more = true;
          break;
        }
      }
      if (more) continue;
      for (const auto& [mark, token] : wide) {
        if (rest.ends_with(mark)) {
          marks.push_back(token);
          rest.remove_suffix(mark.size());
          more = true;
          break;
        }
      }
    }
    for (auto it = marks.rbegin(); it != marks.rend(); ++it) {
      if (tokens.empty() || tokens.back() != *it) tokens.emplace_back(*it);
    }
  }
}

/// The words of `text` joined by single spaces, the punctuation around and
/// between them left out ("well, I" -> "well I"); an apostrophe or hyphen
/// between two word characters stays ("don't", "well-known"). Letters,
/// digits and any non-ASCII character are word characters.
inline std::string spoken_words_of(std::string_view text) {
  std::string out;
  bool gap = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool inner = (c == '\'' || c == '-') && i > 0 && i + 1 < text.size() &&
                       is_alnum(text[i - 1]) && is_alnum(text[i + 1]);
    if (is_alnum(c) || inner) {
      if (gap && !out.empty()) out += ' ';
      out += c;
      gap = false;
    } else {
      gap = true;
    }
  }
  return out;
}

/// The labels of the spoken words of `synthesis` (which spoke `text`), one per
/// entry of `groups`: the event word (Synthesis::words index, or -1) of each
/// run of phones espeak-ng speaks as one word, in order. A label is the text
/// from where espeak-ng marks its word to where it marks the next spoken one,
/// its punctuation left out (spoken_words_of), so words spoken as one ("of the")
/// share a label; a word of symbols only ("&") keeps espeak-ng's text, and a
/// group with no text at all (or none marked, word -1) is "*" (spoken, so
/// never the silence label).
inline std::vector<std::string> spoken_word_labels(const Synthesis& synthesis,
                                                   std::string_view text,
                                                   const std::vector<int>& groups) {
  const auto offset_of = [&](int w) {
    return std::min(synthesis.words[static_cast<std::size_t>(w)].offset, text.size());
  };
  std::vector<std::string> labels;
  labels.reserve(groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (groups[g] < 0) {  // phones before espeak-ng marked any word
      labels.emplace_back("*");
      continue;
    }
    const std::size_t begin = offset_of(groups[g]);
    std::size_t end = text.size();  // where the next marked word starts
    for (std::size_t h = g + 1; h < groups.size(); ++h) {
      if (groups[h] >= 0) {
        end = std::max(offset_of(groups[h]), begin);
        break;
      }
    }
    std::string label = spoken_words_of(text.substr(begin, end - begin));
    if (label.empty()) label = synthesis.words[static_cast<std::size_t>(groups[g])].text;
    if (label.empty()) label = "*";
    labels.push_back(std::move(label));
  }
  return labels;
}

}  // namespace detail::espeak

/// The tokens of `synthesis`, which spoke `text` (the same string): the phone
/// of every non-pause phoneme event in order, kWordBoundary between words, and
/// a punctuation token after a word whose text (or a lone mark after it) ends
/// with one. phonemize() is this applied to a fresh synthesis. `words`, when
/// given, receives the label of each word the tokens hold, in order (see
/// detail::espeak::spoken_word_labels): as many as the runs of phones that
/// kWordBoundary separates.
inline std::vector<std::string> tokens_from_synthesis(const Synthesis& synthesis,
                                                      std::string_view text,
                                                      std::vector<std::string>* words = nullptr) {
  std::vector<std::string> tokens;
  std::vector<int> groups;
  int word = -2;  // no word yet
  std::size_t word_offset = 0;
  for (const auto& event : synthesis.phonemes) {
    if (event.is_pause()) continue;
    if (event.word != word) {
      const std::size_t offset =
          event.word >= 0 ? synthesis.words[static_cast<std::size_t>(event.word)].offset : 0;
      if (word != -2) {
        detail::espeak::append_punctuation(text, word_offset, std::max(offset, word_offset),
                                           tokens);
        tokens.emplace_back(kWordBoundary);
      }
      word = event.word;
      word_offset = offset;
      groups.push_back(word);
    }
    tokens.push_back(event.name);
  }
  if (word != -2) detail::espeak::append_punctuation(text, word_offset, text.size(), tokens);
  if (words) *words = detail::espeak::spoken_word_labels(synthesis, text, groups);
  return tokens;
}

/// espeak-ng's IPA transcription of `text` (Engine::ipa_phones): an
/// independent notation of the same phones, for fixtures in MFA's IPA style.
inline std::vector<std::string> ipa_phones(std::string_view text,
                                           const std::string& voice = "en-us") {
  return detail::espeak::Engine::instance().ipa_phones(text, voice);
}

/// Grapheme-to-phoneme tokens of `text` (normalise it first): phone tokens
/// (see the top of this file), kWordBoundary between words and punctuation
/// tokens where the text has them. The phones are exactly those of
/// synthesize(text, voice), in order, because they are read from its events:
/// espeak_TextToPhonemes is ~30x faster but its output is not always the
/// synthesis's phones (it appends ':' to lengthened phonemes, which then reads as
/// another phoneme, and spells some letters differently), so it is used for the
/// stress marks only. Costs one synthesis, about 1000x real time on one core.
inline std::vector<std::string> phonemize(std::string_view text, const std::string& voice = "en-us",
                                          std::vector<std::string>* words = nullptr) {
  return tokens_from_synthesis(synthesize(text, voice), text, words);
}

/// A stretch of an utterance in samples, [start, end), and its label.
struct TimedLabel {
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::string label;
};

/// The phones of `synthesis` as contiguous intervals covering [0, its length):
/// each phone from its event to the next event, pauses (and the audio before
/// the first event) as one empty label per stretch, MFA 2.x style. espeak-ng
/// renders some phones inside the previous one (an "l" after "O:" comes with no
/// time of its own); such a phone shares its neighbour's stretch equally, so
/// every phone keeps its place and no interval is empty.
inline std::vector<TimedLabel> phone_intervals(const Synthesis& synthesis) {
  const auto length = static_cast<std::int64_t>(synthesis.samples.size());
  std::vector<TimedLabel> raw;
  raw.push_back({0, 0, ""});
  for (const auto& event : synthesis.phonemes) {
    raw.back().end = event.sample;
    raw.push_back({event.sample, event.sample, event.is_pause() ? "" : event.name});
  }
  raw.back().end = length;

  std::vector<TimedLabel> out;
  for (auto& interval : raw) {
    const bool pause = interval.label.empty();
    if (pause && interval.end == interval.start) continue;
    if (pause && !out.empty() && out.back().label.empty()) {
      out.back().end = interval.end;
      continue;
    }
    out.push_back(std::move(interval));
  }
  // A run of phones with no time joins the phone before it, else the phone
  // after it, else the pause before (or after) it.
  const auto is_phone = [&](std::size_t i) { return !out[i].label.empty(); };
  for (std::size_t first = 0; first < out.size(); ++first) {
    if (!is_phone(first) || out[first].start != out[first].end) continue;
    std::size_t last = first + 1;  // the run is [first, last)
    while (last < out.size() && is_phone(last) && out[last].start == out[last].end) ++last;
    std::size_t lo = first, hi = last;
    if (first > 0 && is_phone(first - 1)) {
      lo = first - 1;
    } else if (last < out.size() && is_phone(last)) {
      hi = last + 1;
    } else if (first > 0) {
      lo = first - 1;
    } else if (last < out.size()) {
      hi = last + 1;
    }
    const std::int64_t start = out[lo].start, span = out[hi - 1].end - start;
    const auto n = static_cast<std::int64_t>(hi - lo);
    if (span < n) {
      throw Error(
          fmt::format("espeak-ng: {} phones share {} samples at sample {}", n, span, start));
    }
    for (std::int64_t k = 0; k < n; ++k) {
      out[lo + static_cast<std::size_t>(k)].start = start + span * k / n;
      out[lo + static_cast<std::size_t>(k)].end = start + span * (k + 1) / n;
    }
    first = last - 1;
  }
  return out;
}

/// The words of `synthesis`, which spoke `text`, as contiguous intervals
/// covering [0, its length): a word spans its phones (as phone_intervals() times
/// them), silence between words is an empty label. Words are labelled as
/// tokens_from_synthesis labels them, so words espeak-ng speaks as one
/// ("of the") share a label.
inline std::vector<TimedLabel> word_intervals(const Synthesis& synthesis, std::string_view text) {
  const auto phones = phone_intervals(synthesis);
  const auto length = static_cast<std::int64_t>(synthesis.samples.size());
  // The word of each phone interval, in order (phone_intervals keeps phone order).
  std::vector<int> phone_words;
  for (const auto& event : synthesis.phonemes) {
    if (!event.is_pause()) phone_words.push_back(event.word);
  }
  struct Spoken {
    int word;
    std::int64_t start, end;
  };
  std::vector<Spoken> spoken;
  std::size_t k = 0;
  for (const auto& interval : phones) {
    if (interval.label.empty()) continue;
    const int word = phone_words[k++];
    if (spoken.empty() || spoken.back().word != word) {
      spoken.push_back({word, interval.start, interval.end});
    } else {
      spoken.back().end = interval.end;
    }
  }
  std::vector<int> groups;
  for (const auto& s : spoken) groups.push_back(s.word);
  auto labels = detail::espeak::spoken_word_labels(synthesis, text, groups);
  std::vector<TimedLabel> out;
  std::int64_t at = 0;
  for (std::size_t w = 0; w < spoken.size(); ++w) {
    if (spoken[w].start > at) out.push_back({at, spoken[w].start, ""});
    out.push_back({spoken[w].start, spoken[w].end, std::move(labels[w])});
    at = spoken[w].end;
  }
  if (at < length || out.empty()) out.push_back({at, length, ""});
  return out;
}

}  // namespace kokoro::tts
