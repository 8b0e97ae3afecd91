// A small, real, LJSpeech-format corpus that any Debian machine can build in
// seconds: English sentences from the license texts Debian ships
// (/usr/share/common-licenses), spoken by espeak-ng, with MFA-style TextGrids
// whose phones are espeak-ng's own phoneme events. It lets the trainer, the data
// pipeline and their tests run end to end without downloading LJSpeech.
//
// Promises: the same options give byte-identical files; the corpus appears
// under its name only when complete (it is built in a temporary folder and
// renamed); every TextGrid tier covers its clip from 0 to its duration without
// gaps; the phone labels of a clip are the phones of
// phonemize(normalized text), in order.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include "kokoro/core/media.hpp"
#include "kokoro/tts/align/textgrid.hpp"
#include "kokoro/tts/text/arpabet.hpp"
#include "kokoro/tts/text/espeak.hpp"
#include "kokoro/tts/text/normalizer.hpp"
#include "kokoro/util/atomic_file.hpp"
#include "kokoro/util/errors.hpp"
#include "kokoro/util/seeded_shuffle.hpp"
#include "kokoro/util/wav.hpp"

namespace english_tts {

using namespace kokoro;
using namespace kokoro::tts;

/// What build_demo_corpus() makes. Every default is stated.
struct DemoCorpusOptions {
  std::filesystem::path out = "demo_corpus";  ///< the corpus folder (replaced if it is one)
  int clips = 300;                            ///< clips wanted (fewer if sentences run out)
  std::uint64_t seed = 1;                     ///< picks and orders the sentences
  std::string voice = "en-us";                ///< espeak-ng voice
  /// Folder of English prose, read file by file in name order.
  std::filesystem::path sources = "/usr/share/common-licenses";
  int min_words = 4;          ///< shortest sentence kept, in words
  int max_words = 25;         ///< longest sentence kept, in words
  double min_seconds = 1.0;   ///< shorter clips are left out (LJSpeech: 1.1 s)
  double max_seconds = 10.0;  ///< longer clips are left out (LJSpeech: 10.1 s)
};

/// What build_demo_corpus() made.
struct DemoCorpusReport {
  std::filesystem::path root;      ///< the corpus folder
  int clips = 0;                   ///< clips written
  double audio_seconds = 0;        ///< total audio
  double build_seconds = 0;        ///< wall time of the build
  int sentences_available = 0;     ///< clean, distinct sentences found
  int sentences_skipped = 0;       ///< tried but left out (too short/long audio, synthesis error)
  std::string source;              ///< where the sentences came from
  std::vector<std::string> notes;  ///< anything the user should know (fallbacks, shortfalls)

  double audio_hours() const { return audio_seconds / 3600.0; }
};

namespace detail::demo {

/// A sentence and the file it came from.
struct Sentence {
  std::string text;
  std::string source;
};

/// Everyday sentences, used when the license texts are not there.
inline const std::vector<std::string_view>& fallback_sentences() {
  static const std::vector<std::string_view> sentences = {
      "The small boat drifted slowly toward the northern shore.",
      "Every morning the baker opened his shop before the sun came up.",
      "She wrote the address on the back of an old envelope.",
      "Heavy rain kept the children inside for most of the afternoon.",
      "The museum will close early on the last day of the month.",
      "A quiet voice from the back of the room asked a simple question.",
      "He could not remember where he had left the keys to the garden gate.",
      "The train was delayed because of snow on the tracks.",
      "Nobody expected the old clock in the hall to start working again.",
      "They planted apple trees along the edge of the field.",
      "Please read the instructions carefully before you begin.",
      "The river rose quickly after the storm and flooded the lower road.",
      "Our neighbours painted their front door a bright shade of green.",
      "Why did the lights in the library go out so suddenly?",
      "The committee agreed to meet again after the holidays.",
      "A narrow path led through the woods to a forgotten chapel.",
      "What a wonderful view you have from this window!",
      "The doctor listened carefully and then wrote a short note.",
      "Several birds were singing in the hedge beside the house.",
      "The letter arrived three weeks after it had been posted.",
      "Fresh bread and warm soup were waiting for the travellers.",
      "The teacher asked the class to describe their favourite season.",
      "On clear nights the stars above the valley seemed very close.",
      "He folded the map, put it in his pocket, and walked on.",
      "The bridge was built of stone more than two centuries ago.",
      "Could you tell me the way to the railway station, please?",
      "The garden looked different after the first frost of the year.",
      "She laughed, shook her head, and closed the book.",
      "A long queue had formed outside the theatre by seven o'clock.",
      "The old sailor told stories about distant islands and strange winds.",
      "Workers repaired the roof before the winter storms arrived.",
      "The kitten slept in a basket near the kitchen stove.",
      "Nobody answered when he knocked on the heavy wooden door.",
      "The results of the experiment surprised everyone in the laboratory.",
      "Bright flags hung from every window along the main street.",
      "We watched the ships sail past the lighthouse at dawn.",
      "The price of coffee rose sharply during the dry season.",
      "After dinner they sat by the fire and talked about the journey.",
      "The young musician practised the same melody all evening.",
      "Snow covered the hills, and the roads were silent.",
  };
  return sentences;
}

inline bool is_ascii_upper(char c) { return c >= 'A' && c <= 'Z'; }
inline bool is_ascii_lower(char c) { return c >= 'a' && c <= 'z'; }
inline bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

inline std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

/// Whether the '.' at text[dot] ends an abbreviation or an initial ("e.g.",
/// "Inc.", "A."), which does not end a sentence.
inline bool is_abbreviation(std::string_view text, std::size_t dot) {
  std::size_t start = dot;
  while (start > 0 && text[start - 1] != ' ') --start;
  std::string_view word = text.substr(start, dot - start);
  while (!word.empty() && (word.front() == '(' || word.front() == '"')) word.remove_prefix(1);
  if (word.size() <= 1 || word.find('.') != std::string_view::npos) return true;
  static const std::set<std::string_view> known = {"Mr", "Mrs", "Ms", "Dr",  "St", "Inc", "Ltd",
                                                   "Co", "No",  "vs", "etc", "Jr", "Sr",  "cf"};
  return known.count(word) > 0;
}

/// `sentence` without a leading enumeration ("2. ", "b) ", "(iv) ", "D. ") and
/// without parentheses around all of it.
inline std::string_view strip_enumeration(std::string_view sentence) {
  const auto space = sentence.find(' ');
  if (space != std::string_view::npos && space >= 2 && space <= 8) {
    std::string_view core = sentence.substr(0, space);
    if (core.front() == '(') core.remove_prefix(1);
    const char end = core.back();
    core.remove_suffix(1);
    const bool letters =
        !core.empty() && core.size() <= 3 && std::all_of(core.begin(), core.end(), [](char c) {
          return is_ascii_lower(c) || (is_ascii_upper(c) && c != 'I');  // "I."
        });
    const bool number =
        !core.empty() && is_ascii_digit(core.front()) &&
        std::all_of(core.begin(), core.end(), [](char c) { return is_ascii_digit(c) || c == '.'; });
    if ((letters || number) && (end == '.' || end == ')')) sentence.remove_prefix(space + 1);
  }
  if (sentence.size() > 2 && sentence.front() == '(' && sentence.back() == ')' &&
      sentence.find('(', 1) == std::string_view::npos) {
    sentence = sentence.substr(1, sentence.size() - 2);
  }
  return sentence;
}

/// The sentences of one paragraph (whitespace already collapsed), without
/// leading enumerations.
inline std::vector<std::string> split_sentences(std::string_view paragraph) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < paragraph.size(); ++i) {
    const char c = paragraph[i];
    if (c != '.' && c != '!' && c != '?') continue;
    std::size_t end = i + 1;
    while (end < paragraph.size() && (paragraph[end] == '"' || paragraph[end] == ')')) ++end;
    const bool last = end == paragraph.size();
    const bool next_starts = end + 1 < paragraph.size() && paragraph[end] == ' ' &&
                             (is_ascii_upper(paragraph[end + 1]) || paragraph[end + 1] == '"' ||
                              paragraph[end + 1] == '(' || is_ascii_digit(paragraph[end + 1]));
    if (!last && !next_starts) continue;
    if (c == '.' && is_abbreviation(paragraph, i)) continue;
    out.emplace_back(strip_enumeration(paragraph.substr(start, end - start)));
    start = end + 1;
    i = end;
  }
  return out;
}

/// Whether a sentence reads well aloud and fits an LJSpeech line: plain ASCII
/// prose, starting with a capital and ending with . ! or ?, between min_words
/// and max_words words, no markup, addresses, enumerations ("(a)", "1."),
/// abbreviations inside, or shouting (mostly capitals).
inline bool is_clean_sentence(std::string_view s, int min_words, int max_words) {
  if (s.size() < 2) return false;
  if (!is_ascii_upper(s.front()) && !(s.front() == '"' && is_ascii_upper(s[1]))) return false;
  const char last = s.back() == '"' || s.back() == ')' ? s[s.size() - 2] : s.back();
  if (last != '.' && last != '!' && last != '?') return false;
  const auto words = split_words(s);
  if (static_cast<int>(words.size()) < min_words || static_cast<int>(words.size()) > max_words) {
    return false;
  }
  int upper = 0, lower = 0, open = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (is_ascii_upper(c)) {
      ++upper;
    } else if (is_ascii_lower(c)) {
      ++lower;
    } else if (c == '(') {
      if (open > 0) return false;
      const auto close = s.find(')', i);
      if (close == std::string_view::npos || close - i <= 4) return false;  // "(a)", "(iv)"
      ++open;
    } else if (c == ')') {
      if (open == 0) return false;
      --open;
    } else if (c == '.' && i + 1 < s.size() && s[i + 1] != ' ' && s[i + 1] != '"' &&
               s[i + 1] != ')') {
      return false;  // "e.g.", "2.1", "example.com"
    } else if (std::string_view(" ,;:'\"-!?.").find(c) == std::string_view::npos &&
               !is_ascii_digit(c)) {
      return false;  // markup, symbols, non-ASCII
    }
  }
  if (open != 0 || lower == 0 || upper * 2 > upper + lower) return false;
  for (const auto word : words) {
    // Numbers are fine as words ("version 3", "2007"); digits mixed into a
    // word ("2b", "GPLv3") or longer numbers are references, not prose.
    const bool has_digit = std::any_of(word.begin(), word.end(), is_ascii_digit);
    if (!has_digit) continue;
    std::string_view core = word;
    while (!core.empty() && !is_ascii_digit(core.back())) core.remove_suffix(1);
    while (!core.empty() && !is_ascii_digit(core.front())) core.remove_prefix(1);
    if (core.size() > 4 || !std::all_of(core.begin(), core.end(), is_ascii_digit)) return false;
    if (std::any_of(word.begin(), word.end(),
                    [](char c) { return is_ascii_upper(c) || is_ascii_lower(c); })) {
      return false;
    }
  }
  return s.find("--") == std::string_view::npos;
}

/// Collapses runs of whitespace to one space and trims the ends.
inline std::string collapse_spaces(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

/// The clean sentences of every file in `folder` (name order), each once (the
/// first occurrence is kept, case and spacing ignored). Files that are links to
/// a file already read are skipped.
inline std::vector<Sentence> read_sentences(const std::filesystem::path& folder, int min_words,
                                            int max_words) {
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    if (entry.is_regular_file(error)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::set<std::filesystem::path> read;
  std::set<std::string> seen;
  std::vector<Sentence> out;
  for (const auto& file : files) {
    auto canonical = std::filesystem::weakly_canonical(file, error);
    if (error) canonical = file;
    if (!read.insert(canonical).second) continue;
    std::ifstream in(file, std::ios::binary);
    if (!in) continue;
    std::string paragraph, line;
    const auto flush = [&] {
      for (auto& sentence : split_sentences(collapse_spaces(paragraph))) {
        if (!is_clean_sentence(sentence, min_words, max_words)) continue;
        std::string key;
        for (const char c : sentence) key += is_ascii_upper(c) ? static_cast<char>(c + 32) : c;
        if (seen.insert(key).second) out.push_back({sentence, canonical.filename().string()});
      }
      paragraph.clear();
    };
    while (std::getline(in, line)) {
      if (collapse_spaces(line).empty()) {
        flush();
      } else {
        paragraph += ' ';
        paragraph += line;
      }
    }
    flush();
  }
  return out;
}

/// splitmix64 with rejection sampling: the generator this corpus's sentence
/// order has always come from, kept so that a seed still gives the corpus
/// (and the checkpoints trained on it) it gave before.
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n), n > 0, by rejection (no modulo bias).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
};

/// Writes a new file and flushes it to disk, so that once the corpus folder is
/// renamed into place its files are complete even after a crash.
inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  kokoro::write_file_durably(path, bytes);
}

/// The TextGrid of one clip: "words" and "phones" tiers in seconds.
inline TextGrid clip_textgrid(const Synthesis& synthesis, std::string_view text) {
  const double rate = synthesis.sample_rate;
  const auto to_tier = [&](std::string name, const std::vector<TimedLabel>& labels) {
    Tier tier{std::move(name), {}};
    for (const auto& l : labels) tier.intervals.push_back({l.start / rate, l.end / rate, l.label});
    return tier;
  };
  TextGrid grid;
  grid.xmin = 0;
  grid.xmax = static_cast<double>(synthesis.samples.size()) / rate;
  grid.tiers.push_back(to_tier("words", word_intervals(synthesis, text)));
  grid.tiers.push_back(to_tier("phones", phone_intervals(synthesis)));
  return grid;
}

/// Whether `folder` holds a corpus this builder made (its README says so).
inline bool is_demo_corpus(const std::filesystem::path& folder) {
  std::ifstream in(folder / "README.txt");
  std::string first;
  return in && std::getline(in, first) && first.rfind("kokoro demo corpus", 0) == 0;
}

/// Throws kokoro::Error unless `out` may be (re)placed: absent, an empty
/// folder, or a demo corpus.
inline void check_replaceable(const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  if (!fs::exists(out)) return;
  if (!fs::is_directory(out) || (!fs::is_empty(out) && !is_demo_corpus(out))) {
    throw Error(fmt::format(
        "demo corpus: {} exists and is not a demo corpus; choose another --out or remove it",
        out.string()));
  }
}

/// Removes the temporary folders of builds of `name` in `parent` that were
/// interrupted (their process is gone): ".tmp-<name>-<pid>", ".tmp-<name>-old-<pid>".
inline void remove_stale_staging(const std::filesystem::path& parent, const std::string& name) {
  namespace fs = std::filesystem;
  const std::string stem = fmt::format("{}{}-", kTemporaryPrefix, name);
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(parent, error)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(stem, 0) != 0) continue;
    std::string rest = file.substr(stem.size());
    if (rest.rfind("old-", 0) == 0) rest.erase(0, 4);
    if (rest.empty() || rest.size() > 9 || !std::all_of(rest.begin(), rest.end(), is_ascii_digit)) {
      continue;
    }
    const auto pid = static_cast<pid_t>(std::stol(rest));
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  }
}

}  // namespace detail::demo

/// Builds the corpus described by `options` into options.out:
///   metadata.csv            `id|text|normalized text`, UTF-8, no header, no quoting
///   wavs/<id>.wav           16-bit PCM, mono, 22050 Hz
///   TextGrid/<id>.TextGrid  Praat long format, tiers "words" and "phones"
///   README.txt              what this is and how it was made
/// Sentences are read from options.sources (or, when that yields none, from a
/// built-in list, and the report says so), shuffled by options.seed, and
/// spoken in that order until options.clips clips fall inside the duration
/// bounds. Ids are DEMO-0001, DEMO-0002, ... The corpus is written to a
/// temporary sibling folder and renamed into place; an existing options.out is
/// The notations a corpus's phone tiers can be rewritten in, as aligners
/// other than espeak-ng would have written them.
enum class GridPhones {
  arpabet,  ///< MFA 1.x LJSpeech style: CMU lexicon phones, upper case, sil/sp
  ipa,      ///< MFA 2.x english_mfa style: IPA, aj aw ej ow ɔj, "" silences
};

namespace detail {
/// MFA's IPA spellings of espeak-ng's diphthongs.
inline std::string mfa_ipa(std::string phone) {
  static const std::pair<std::string_view, std::string_view> respelled[] = {
      {"a\u026A", "aj"},
      {"a\u028A", "aw"},
      {"e\u026A", "ej"},
      {"o\u028A", "ow"},
      {"\u0254\u026A", "\u0254j"}};
  for (const auto& [from, to] : respelled) {
    if (phone == from) return std::string(to);
  }
  return phone;
}
}  // namespace detail

/// Rewrites the phone tier of every TextGrid under `corpus`/TextGrid in
/// `notation`: each word of the words tier gets its phones from the CMU
/// lexicon (arpabet) or from espeak-ng's IPA transcription (ipa), sharing the
/// word's time evenly; the stretches between words become silences. The
/// durations then come from another G2P than the tokens', as with real
/// alignments. Returns the number of grids rewritten.
inline int rewrite_phone_tiers(const std::filesystem::path& corpus, GridPhones notation,
                               const std::string& voice = "en-us") {
  int rewritten = 0;
  {
    // The corpus says what its phone tiers now hold.
    std::ofstream readme(corpus / "README.txt", std::ios::app);
    readme << (notation == GridPhones::arpabet
                   ? "\nThe phone tiers were rewritten MFA 1.x style: ARPAbet phones of each word "
                     "from the CMU lexicon (flite), sharing the word's time evenly; sil/sp "
                     "between words.\n"
                   : "\nThe phone tiers were rewritten MFA 2.x (english_mfa) style: espeak-ng's "
                     "IPA phones of each word in MFA's spellings (aj aw ej ow), sharing the "
                     "word's time evenly; empty labels between words.\n");
  }
  for (const auto& entry : std::filesystem::directory_iterator(corpus / "TextGrid")) {
    auto grid = kokoro::tts::read_textgrid(entry.path());
    const kokoro::tts::Tier* words = grid.aligner_tier("words");
    if (words == nullptr) continue;
    kokoro::tts::Tier phones{.name = "phones", .intervals = {}};
    for (std::size_t w = 0; w < words->intervals.size(); ++w) {
      const auto& word = words->intervals[w];
      std::vector<std::string> labels;
      if (!word.label.empty()) {
        if (notation == GridPhones::arpabet) {
          labels = kokoro::tts::arpabet_word(word.label);
        } else {
          for (auto& phone : kokoro::tts::ipa_phones(word.label, voice))
            labels.push_back(detail::mfa_ipa(std::move(phone)));
        }
      }
      if (labels.empty()) {
        const bool edge = w == 0 || w + 1 == words->intervals.size();
        const std::string silence = notation == GridPhones::ipa ? "" : edge ? "sil" : "sp";
        phones.intervals.push_back({.start = word.start, .end = word.end, .label = silence});
        continue;
      }
      const double step = (word.end - word.start) / static_cast<double>(labels.size());
      for (std::size_t p = 0; p < labels.size(); ++p) {
        const double end =
            p + 1 == labels.size() ? word.end : word.start + step * static_cast<double>(p + 1);
        phones.intervals.push_back(
            {.start = word.start + step * static_cast<double>(p), .end = end, .label = labels[p]});
      }
    }
    grid.tiers = {*words, std::move(phones)};
    kokoro::tts::write_textgrid(grid, entry.path());
    ++rewritten;
  }
  return rewritten;
}

/// replaced only if it is empty or a demo corpus, otherwise kokoro::Error.
inline DemoCorpusReport build_demo_corpus(const DemoCorpusOptions& options) {
  namespace fs = std::filesystem;
  using namespace detail::demo;
  const auto started = std::chrono::steady_clock::now();
  if (options.clips <= 0) {
    throw Error(fmt::format("demo corpus: clips must be positive, got {}", options.clips));
  }
  fs::path out = options.out.lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" names "dir"
  const std::string name = out.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw Error(fmt::format("demo corpus: '{}' does not name a folder", options.out.string()));
  }
  check_replaceable(out);  // fail before the work, not after it

  DemoCorpusReport report;
  report.root = options.out;
  auto sentences = read_sentences(options.sources, options.min_words, options.max_words);
  report.source = options.sources.string();
  if (sentences.empty()) {
    report.notes.push_back(fmt::format(
        "no usable sentences in {} (missing or empty); used the {} built-in sentences instead",
        options.sources.string(), fallback_sentences().size()));
    report.source = "built-in sentences";
    for (const auto s : fallback_sentences()) sentences.push_back({std::string(s), "built-in"});
  }
  report.sentences_available = static_cast<int>(sentences.size());
  SplitMix64 rng{options.seed};
  kokoro::seeded_shuffle(sentences, [&rng](std::size_t n) { return rng.below(n); });

  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  const fs::path staging = parent / fmt::format("{}{}-{}", kTemporaryPrefix, name, ::getpid());
  try {
    fs::create_directories(parent);
    remove_stale_staging(parent, name);
    fs::remove_all(staging);
    fs::create_directories(staging / "wavs");
    fs::create_directories(staging / "TextGrid");

    std::string metadata;
    std::map<std::string, int> per_source;
    const int digits = std::max(4, static_cast<int>(std::to_string(options.clips).size()));
    for (const auto& sentence : sentences) {
      if (report.clips == options.clips) break;
      const std::string normalized = normalize_english(sentence.text);
      TextGrid grid;
      Synthesis synthesis;
      try {
        synthesis = synthesize(normalized, options.voice);
        if (synthesis.duration_seconds() < options.min_seconds ||
            synthesis.duration_seconds() > options.max_seconds ||
            normalized.find('|') != std::string::npos) {
          ++report.sentences_skipped;
          continue;
        }
        grid = clip_textgrid(synthesis, normalized);
      } catch (const Error&) {
        ++report.sentences_skipped;  // a sentence espeak-ng cannot time is left out
        continue;
      }
      const std::string id = fmt::format("DEMO-{:0{}}", report.clips + 1, digits);
      write_bytes(staging / "wavs" / (id + ".wav"),
                  encode_wav(synthesis.samples, synthesis.sample_rate));
      write_bytes(staging / "TextGrid" / (id + ".TextGrid"), format_textgrid(grid));
      metadata += fmt::format("{}|{}|{}\n", id, sentence.text, normalized);
      report.audio_seconds += synthesis.duration_seconds();
      ++per_source[sentence.source];
      ++report.clips;
    }
    if (report.clips < options.clips) {
      report.notes.push_back(fmt::format("only {} of the {} clips asked for: the sentences ran out",
                                         report.clips, options.clips));
    }

    std::string sources;
    for (const auto& [name, count] : per_source) {
      sources += fmt::format("               {:<14} {:>4} clips\n", name, count);
    }
    const char* espeak_data = nullptr;
    const std::string espeak_version = espeak_Info(&espeak_data);
    const bool licenses = report.source != "built-in sentences";
    std::string readme = fmt::format(
        "kokoro demo corpus: {} clips, {:.1f} minutes of speech, LJSpeech layout.\n"
        "\n"
        "A small real corpus for trying the kokoro English TTS trainer and its data\n"
        "pipeline without downloading LJSpeech. The voice is synthetic (espeak-ng), so\n"
        "a model trained on it learns to imitate espeak-ng, not a human speaker.\n"
        "\n"
        "How it was made\n"
        "  sentences  {} clean, distinct English sentences of {} to {} words from\n"
        "             {}, taken in an order shuffled with seed {}:\n"
        "{}"
        "  text       the sentence as written; the third column of metadata.csv is its\n"
        "             normalised form (kokoro::tts::normalize_english), which was spoken\n"
        "  speech     espeak-ng {}, voice {} (pitch flutter and roughness off, so that\n"
        "             speech is repeatable), 22050 Hz; clips outside {} to {} s left out\n"
        "  alignment  espeak-ng's phoneme and word events. Tier \"phones\" holds phone\n"
        "             tokens as kokoro/tts/text/espeak.hpp writes them (ASCII mnemonics,\n"
        "             stress marked on the vowel), tier \"words\" the words; pauses are\n"
        "             empty labels (MFA 2.x style); both tiers cover each clip from 0 to\n"
        "             its end without gaps\n"
        "\n"
        "Layout\n"
        "  metadata.csv            id|text|normalized text (UTF-8, no header, no quoting)\n"
        "  wavs/<id>.wav           16-bit PCM, mono, 22050 Hz\n"
        "  TextGrid/<id>.TextGrid  Praat long text format\n"
        "\n"
        "Rebuild (the same options and espeak-ng give byte-identical files):\n"
        "  kokoro-make-demo-corpus --out <dir> --clips {} --seed {}\n",
        report.clips, report.audio_seconds / 60.0, report.sentences_available, options.min_words,
        options.max_words, report.source, options.seed, sources, espeak_version, options.voice,
        options.min_seconds, options.max_seconds, options.clips, options.seed);
    if (licenses) {
      readme +=
          "\nThe sentences are quotations of license texts, whose authors allow verbatim\n"
          "copies; this corpus is for testing software and states no license's terms.\n";
    }
    for (const auto& note : report.notes) readme += "\nNote: " + note + "\n";
    write_bytes(staging / "metadata.csv", metadata);
    write_bytes(staging / "README.txt", readme);
    kokoro::sync_directory(staging / "wavs");
    kokoro::sync_directory(staging / "TextGrid");
    kokoro::sync_directory(staging);

    // Replace an earlier demo corpus (or an empty folder), never anything else.
    check_replaceable(out);
    if (fs::exists(out)) {
      const fs::path old = parent / fmt::format("{}{}-old-{}", kTemporaryPrefix, name, ::getpid());
      fs::remove_all(old);
      fs::rename(out, old);
      fs::rename(staging, out);
      std::error_code ignored;
      fs::remove_all(old, ignored);
    } else {
      fs::rename(staging, out);
    }
    kokoro::sync_directory(parent);
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw Error(fmt::format("demo corpus: {}", e.what()));
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    throw;
  }
  report.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace english_tts
