// The espeak-ng side of the TTS data pipeline: synthesis with phoneme events,
// phonemize() tokens equal to those events, the phoneme vocabulary and its
// file, and the demo corpus built from them.
#include <doctest/doctest.h>

#include <kokoro/tts/align/textgrid.hpp>
#include <kokoro/tts/text/espeak.hpp>
#include <kokoro/tts/text/normalizer.hpp>
#include <kokoro/tts/text/phoneme_processor.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "english_tts/demo_corpus.hpp"

using namespace kokoro;
using namespace kokoro::tts;
using namespace english_tts;
namespace fs = std::filesystem;

namespace {

/// A fresh folder for one test, removed when the test ends.
struct Scratch {
  fs::path path;
  explicit Scratch(const std::string& name)
      : path(fs::temp_directory_path() /
             ("kokoro-test-phonemes-" + std::to_string(::getpid()) + "-" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Scratch() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// The names of the non-pause phoneme events of a synthesis.
std::vector<std::string> event_phones(const Synthesis& s) {
  std::vector<std::string> out;
  for (const auto& e : s.phonemes) {
    if (!e.is_pause()) out.push_back(e.name);
  }
  return out;
}

/// The phone tokens of a token list (pause tokens left out).
std::vector<std::string> phones_of(const std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  for (const auto& t : tokens) {
    if (EnglishPhonemeProcessor::is_phone_token(t)) out.push_back(t);
  }
  return out;
}

/// Varied English: questions, numbers, abbreviations, contractions, names,
/// foreign words, dashes, quotes, letters, long clauses, vowel-linking and
/// glottal-stop phonemes, phones espeak-ng renders with no time of their own.
const std::vector<std::string>& varied_sentences() {
  static const std::vector<std::string> sentences = {
      "The quick brown fox jumps over the lazy dog.",
      "Hello, world! How are you today?",
      "She sells sea shells by the sea shore; the shells she sells are surely seashells.",
      "I can't believe it's already half past nine, isn't it?",
      "Dr. Smith's appointment was moved to the 21st of March.",
      "It costs $5.50, or 3% more than last year.",
      "See the GNU General Public License for appropriate patent material.",
      "Also, all the tall walls fell in the autumn.",
      "Wait - really -- yes... okay.",
      "\"Quoted,\" she said (quietly), \"is not the same as spoken.\"",
      "Naive cafe owners in Zurich serve creme brulee.",
      "The U.S.A. and the U.K. signed the treaty in 1999.",
      "Read the book you read yesterday; lead the dog made of lead.",
      "Wednesday's schedule: breakfast at 7:30, lunch at noon, and dinner at six.",
      "Photosynthesis, mitochondria, and deoxyribonucleic acid are biology words.",
      "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z.",
      "Hmm... well, uh, I don't know!",
      "Mr. and Mrs. Jones live at 42 Elm Street with their 3 cats.",
      "Through the thick thorny thicket, the thirty thieves thought thoroughly.",
      "Measure the treasure with pleasure; the vision was unusual.",
      "Judge the church choir's joyful jubilee in June.",
      "Which witch wished which wicked wish?",
      "Rural jurors rarely err regarding regular irregularities.",
      "The sixth sick sheik's sixth sheep's sick.",
      "Ouch! That hurt, and I'm not going to pretend otherwise.",
      "Tchaikovsky, Goethe, Bach and Dvorak wrote music in Europe.",
      "Button, kitten, mountain, and certain all hide a stop.",
      "Idea, area, and the other ones end in a vowel.",
      "The cooperative coordinated a reenactment of the preexisting plan.",
      "Can you hear me now? Good. Now, listen carefully.",
      "Programs that are free software respect the freedom of their users.",
      "Why would anyone want to copy this license, word for word, by hand?",
      "Nobody said it would be easy; nobody said it would be this hard.",
      "Ten thousand, four hundred and twelve people attended.",
      "The rhythm of the rain on the roof was hypnotic.",
      "Yes!",
      "Oh.",
      "Queueing is a very British activity, according to them.",
      "Strengths, twelfths, and sixths are hard to say quickly.",
      "In 1066, William crossed the Channel; in 1215, the barons met at Runnymede.",
  };
  return sentences;
}

/// A little-endian integer from a byte string.
std::uint32_t le(const std::string& bytes, std::size_t at, int size) {
  std::uint32_t v = 0;
  for (int i = size - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

std::vector<std::string> split_bar(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (std::size_t bar; (bar = line.find('|', start)) != std::string::npos; start = bar + 1) {
    fields.push_back(line.substr(start, bar - start));
  }
  fields.push_back(line.substr(start));
  return fields;
}

/// Every regular file under `root`, relative path -> bytes.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), root).string()] = read_bytes(entry.path());
    }
  }
  return files;
}

void check_tier_covers(const Tier& tier, double xmax) {
  INFO("tier " << tier.name);
  REQUIRE(!tier.intervals.empty());
  CHECK(tier.intervals.front().start == 0.0);
  CHECK(tier.intervals.back().end == xmax);
  for (std::size_t i = 0; i < tier.intervals.size(); ++i) {
    CHECK(tier.intervals[i].start < tier.intervals[i].end);
    if (i + 1 < tier.intervals.size()) {
      CHECK(tier.intervals[i].end == tier.intervals[i + 1].start);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- synthesis

TEST_CASE("synthesize gives 22050 Hz audio with ordered phoneme events inside it") {
  const auto s = synthesize("Hello, world. This is a test of the speech engine.");
  CHECK(s.sample_rate == 22050);
  CHECK(s.duration_seconds() > 1.0);
  CHECK(s.duration_seconds() < 6.0);
  float peak = 0;
  for (const float x : s.samples) peak = std::max(peak, std::abs(x));
  CHECK(peak > 0.05f);  // speech, not silence
  CHECK(peak <= 1.0f);
  REQUIRE(event_phones(s).size() > 20);
  std::int64_t last = 0;
  for (const auto& e : s.phonemes) {
    CHECK(e.sample >= last);
    CHECK(e.sample <= static_cast<std::int64_t>(s.samples.size()));
    CHECK(!e.name.empty());
    last = e.sample;
  }
  CHECK(s.stress_marked);
}

TEST_CASE("synthesize marks words with their text, offset and sample") {
  const std::string text = "Hello, wonderful world.";
  const auto s = synthesize(text);
  REQUIRE(s.words.size() == 3);
  CHECK(s.words[0].text == "Hello");
  CHECK(s.words[1].text == "wonderful");
  CHECK(s.words[2].text == "world");
  CHECK(s.words[1].offset == text.find("wonderful"));
  CHECK(s.words[0].sample < s.words[1].sample);
  CHECK(s.words[1].sample < s.words[2].sample);
  for (const auto& e : s.phonemes) {
    if (e.is_pause()) {
      CHECK(e.word == -1);
    } else {
      REQUIRE(e.word >= 0);
      CHECK(e.sample >= s.words[static_cast<std::size_t>(e.word)].sample);
    }
  }
}

TEST_CASE("words land on the text's words where espeak-ng reports them off by one") {
  // espeak-ng puts "so" of "do so" and "as" of "such as" one character after
  // the word before, and marks a lone dash as the start of the next word.
  const std::string text = "The maker can do so, such as masks - really.";
  const auto s = synthesize(text);
  std::vector<std::string> words;
  for (const auto& w : s.words) {
    words.push_back(w.text);
    CHECK(text.substr(w.offset, w.text.size()) == w.text);
  }
  CHECK(words == std::vector<std::string>{"The", "maker", "can", "do", "so", "such", "as", "masks",
                                          "really"});
  const auto tokens = tokens_from_synthesis(s, text);
  std::vector<std::string> marks;
  for (const auto& t : tokens) {
    if (is_punctuation_token(t)) marks.push_back(t);
  }
  CHECK(marks == std::vector<std::string>{",", "-", "."});
}

TEST_CASE("word events use character positions, so non-ASCII text keeps its words") {
  const std::string text = "naïve café owners";
  const auto s = synthesize(text);
  REQUIRE(s.words.size() == 3);
  CHECK(s.words[1].text == "café");
  CHECK(s.words[2].text == "owners");
  CHECK(s.words[2].offset == text.find("owners"));
}

TEST_CASE("the same text gives the same audio whatever was spoken before") {
  const std::string text = "Reproducible speech makes reproducible corpora.";
  const auto first = synthesize(text);
  synthesize("Why? Because the pitch of espeak-ng could otherwise drift!");
  synthesize("Москва, 東京, and café.");
  const auto second = synthesize(text);
  CHECK(first.samples == second.samples);
  REQUIRE(first.phonemes.size() == second.phonemes.size());
  for (std::size_t i = 0; i < first.phonemes.size(); ++i) {
    CHECK(first.phonemes[i].name == second.phonemes[i].name);
    CHECK(first.phonemes[i].sample == second.phonemes[i].sample);
  }
}

TEST_CASE("an unknown voice is an error that names it") {
  CHECK_THROWS_WITH_AS(synthesize("hello", "no-such-voice"), doctest::Contains("no-such-voice"),
                       Error);
  CHECK(synthesize("hello").sample_rate == 22050);  // the engine still works
}

TEST_CASE("an empty text gives no phones") {
  CHECK(phones_of(phonemize("")).empty());
  CHECK(event_phones(synthesize("")).empty());
}

// ---------------------------------------------------------------- phonemize

TEST_CASE("phonemize gives exactly the phones of the synthesis events") {
  for (const auto& raw : varied_sentences()) {
    const std::string text = normalize_english(raw);
    INFO(text);
    const auto tokens = phonemize(text);
    const auto s = synthesize(text);
    CHECK(phones_of(tokens) == event_phones(s));
    CHECK(s.stress_marked);
  }
}

TEST_CASE("phonemize separates words with a boundary and keeps the text's punctuation") {
  const auto tokens = phonemize("Hello, world! Is it you? Yes; fine: good - ok.");
  std::vector<std::string> marks;
  int boundaries = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == " ") {
      ++boundaries;
      CHECK(i > 0);
      CHECK(i + 1 < tokens.size());
      CHECK(tokens[i + 1] != " ");
    } else if (is_punctuation_token(tokens[i])) {
      marks.push_back(tokens[i]);
      // a mark follows its word and precedes the boundary
      CHECK(i > 0);
      CHECK(tokens[i - 1] != " ");
    }
  }
  CHECK(marks == std::vector<std::string>{",", "!", "?", ";", ":", "-", "."});
  CHECK(boundaries == 8);  // 9 words
  CHECK(tokens.back() == ".");
}

TEST_CASE("phonemize marks stress on vowels and never emits a phone that reads as punctuation") {
  const auto tokens = phonemize("See the GNU license for appropriate patent material.");
  const auto vocabulary = english_phoneme_vocabulary();
  const std::set<std::string> known(vocabulary.begin(), vocabulary.end());
  bool primary = false, linking = false, glottal = false;
  for (const auto& t : phones_of(tokens)) {
    CHECK(known.count(t) == 1);
    CHECK(!is_punctuation_token(t));
    primary = primary || t.front() == '\'';
    linking = linking || t == ";#";
    glottal = glottal || t == "?#";
  }
  CHECK(primary);
  CHECK(linking);  // espeak-ng's ";" between "GNU" letters
  CHECK(glottal);  // espeak-ng's "?" in "patent"
}

TEST_CASE("phonemize is safe to call from several threads") {
  const std::string a = "The first thread speaks about rivers and mountains.";
  const std::string b = "The second thread talks about cities and roads.";
  const auto expected_a = phonemize(a), expected_b = phonemize(b);
  std::vector<std::string> got_a, got_b;
  std::thread t1([&] {
    for (int i = 0; i < 5; ++i) got_a = phonemize(a);
  });
  std::thread t2([&] {
    for (int i = 0; i < 5; ++i) got_b = phonemize(b);
  });
  t1.join();
  t2.join();
  CHECK(got_a == expected_a);
  CHECK(got_b == expected_b);
}

// ---------------------------------------------------------------- alignment

TEST_CASE("phone intervals cover the clip without gaps and keep every phone") {
  // "all", "tall", "walls": espeak-ng renders the "l" inside the vowel, with no
  // time of its own; such phones must still get an interval.
  const auto s = synthesize("Also, all the tall walls fell in the autumn.");
  bool zero_length_phone = false;
  for (std::size_t i = 0; i + 1 < s.phonemes.size(); ++i) {
    zero_length_phone = zero_length_phone || (!s.phonemes[i].is_pause() &&
                                              s.phonemes[i].sample == s.phonemes[i + 1].sample);
  }
  CHECK(zero_length_phone);  // the case this test is about is really there
  const auto phones = phone_intervals(s);
  REQUIRE(!phones.empty());
  CHECK(phones.front().start == 0);
  CHECK(phones.back().end == static_cast<std::int64_t>(s.samples.size()));
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < phones.size(); ++i) {
    CHECK(phones[i].start < phones[i].end);
    if (i + 1 < phones.size()) CHECK(phones[i].end == phones[i + 1].start);
    if (i + 1 < phones.size() && phones[i].label.empty()) CHECK(!phones[i + 1].label.empty());
    if (!phones[i].label.empty()) labels.push_back(phones[i].label);
  }
  CHECK(labels == event_phones(s));
}

TEST_CASE("word intervals span their phones and carry the words of the text") {
  const std::string text = "Copy it word for word.";
  const auto s = synthesize(text);
  const auto words = word_intervals(s, text);
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < words.size(); ++i) {
    CHECK(words[i].start < words[i].end);
    if (i + 1 < words.size()) CHECK(words[i].end == words[i + 1].start);
    if (!words[i].label.empty()) labels.push_back(words[i].label);
  }
  CHECK(words.front().start == 0);
  CHECK(words.back().end == static_cast<std::int64_t>(s.samples.size()));
  CHECK(labels == std::vector<std::string>{"Copy", "it", "word", "for", "word"});
  // A label is the words of its stretch of text, punctuation left out.
  using kokoro::tts::detail::espeak::spoken_words_of;
  CHECK(spoken_words_of(" well, I  ") == "well I");
  CHECK(spoken_words_of("\"Source code\" for") == "Source code for");
  CHECK(spoken_words_of("don't - well-known.") == "don't well-known");
  CHECK(spoken_words_of("...").empty());
}

// ---------------------------------------------------------------- vocabulary

TEST_CASE("the built-in vocabulary starts with padding, unknown, boundary and punctuation") {
  const EnglishPhonemeProcessor p;
  const auto& v = p.vocabulary();
  REQUIRE(v.size() > 10);
  CHECK(p.pad_id() == 0);
  CHECK(p.unk_id() == 1);
  CHECK(v[0] == "<pad>");
  CHECK(v[1] == "<unk>");
  CHECK(v[2] == " ");
  CHECK(std::vector<std::string>(v.begin() + 3, v.begin() + 10) ==
        std::vector<std::string>{".", ",", "?", "!", ";", ":", "-"});
  CHECK(p.vocab_size() == static_cast<std::int64_t>(v.size()));
  CHECK(std::set<std::string>(v.begin(), v.end()).size() == v.size());
  CHECK(p.id("'oU") > 9);
  CHECK(p.is_pause_token(" "));
  CHECK(p.is_pause_token("?"));
  CHECK(!p.is_pause_token("?#"));
  CHECK(!p.is_pause_token("'oU"));
}

TEST_CASE("the built-in vocabulary holds every phone espeak-ng says for varied English") {
  EnglishPhonemeProcessor p;
  std::vector<std::string> paragraphs = varied_sentences();
  // A long real text when the machine has it: the GPL, about 5,600 words,
  // spoken a paragraph at a time (all at once it is 37 minutes of audio).
  const fs::path gpl = "/usr/share/common-licenses/GPL-3";
  if (fs::exists(gpl)) {
    std::ifstream in(gpl);
    std::string line, paragraph;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t") == std::string::npos) {
        paragraphs.push_back(paragraph);
        paragraph.clear();
      } else {
        paragraph += line + " ";
      }
    }
    paragraphs.push_back(paragraph);
  }
  std::size_t tokens = 0;
  for (const auto& text : paragraphs) tokens += p.encode(text).size();
  CHECK(tokens > 1000);
  CHECK(p.unknown_count() == 0);
  CHECK(p.unknown_symbols().empty());
}

TEST_CASE("encode and decode round-trip through the ids") {
  const EnglishPhonemeProcessor p;
  const std::string text = "On the 3rd of May, Dr. Brown paid $12 for a very old map!";
  const auto tokens = p.tokens(text);
  const auto ids = p.encode(text);
  REQUIRE(ids.size() == tokens.size());
  CHECK(p.decode(ids) == tokens);
  for (const auto id : ids) {
    CHECK(id >= 2);  // neither padding nor unknown
    CHECK(id < p.vocab_size());
  }
  auto padded = ids;
  padded.insert(padded.end(), 4, p.pad_id());
  CHECK(p.decode(padded) == tokens);  // padding is not a symbol
  CHECK_THROWS_AS(p.decode({p.vocab_size()}), Error);
  CHECK(p.unknown_count() == 0);
}

TEST_CASE("symbols missing from the vocabulary become <unk> and are counted, never dropped") {
  EnglishPhonemeProcessor p({"<pad>", "<unk>", " ", ".", "h", "@", "l"});
  const auto tokens = p.tokens("Hello there.");
  const auto ids = p.encode("Hello there.");
  REQUIRE(ids.size() == tokens.size());
  std::int64_t missing = 0;
  std::map<std::string, std::int64_t> expected;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const bool known = tokens[i] == " " || tokens[i] == "." || tokens[i] == "h" ||
                       tokens[i] == "@" || tokens[i] == "l";
    CHECK(ids[i] == (known ? p.id(tokens[i]) : p.unk_id()));
    if (!known) {
      ++missing;
      ++expected[tokens[i]];
    }
  }
  CHECK(missing > 0);
  CHECK(p.unknown_count() == missing);
  CHECK(p.unknown_symbols() == expected);
  p.encode_tokens({"zzz", "h"});
  CHECK(p.unknown_count() == missing + 1);
  p.reset_unknown();
  CHECK(p.unknown_count() == 0);
}

TEST_CASE("a vocabulary must start with <pad> and <unk> and hold each symbol once") {
  CHECK_THROWS_AS(EnglishPhonemeProcessor({"<unk>", "<pad>", "a"}), Error);
  CHECK_THROWS_AS(EnglishPhonemeProcessor({"<pad>"}), Error);
  CHECK_THROWS_AS(EnglishPhonemeProcessor({"<pad>", "<unk>", "a", "a"}), Error);
  CHECK_THROWS_AS(EnglishPhonemeProcessor({"<pad>", "<unk>", ""}), Error);
  CHECK_THROWS_AS(EnglishPhonemeProcessor({"<pad>", "<unk>", "a\nb"}), Error);
}

TEST_CASE("a saved vocabulary loads back with the same ids and voice") {
  Scratch dir("save");
  const EnglishPhonemeProcessor original({"<pad>", "<unk>", " ", ".", "a\\b", "'oU", "x y"},
                                         "en-gb");
  save_phoneme_processor(original, dir.path / "vocab.txt");
  const auto text = read_bytes(dir.path / "vocab.txt");
  CHECK(text.rfind("kokoro-phoneme-vocabulary 1 en-gb\n", 0) == 0);
  CHECK(text.find("\n\\s\n") != std::string::npos);  // the boundary, visible
  const auto loaded = load_phoneme_processor(dir.path / "vocab.txt");
  CHECK(loaded.vocabulary() == original.vocabulary());
  CHECK(loaded.voice() == "en-gb");

  const EnglishPhonemeProcessor builtin;
  save_phoneme_processor(builtin, dir.path / "builtin.txt");
  CHECK(load_phoneme_processor(dir.path / "builtin.txt").vocabulary() == builtin.vocabulary());
}

TEST_CASE("a malformed vocabulary file is an error naming the file and line") {
  Scratch dir("malformed");
  const auto path = dir.path / "vocab.txt";
  const std::string header = "kokoro-phoneme-vocabulary 1 en-us\n";
  struct Case {
    std::string text;
    int line;
    std::string what;
  };
  const std::vector<Case> cases = {
      {"", 1, "empty file"},
      {"a vocabulary\n<pad>\n<unk>\n", 1, "not a phoneme vocabulary"},
      {"kokoro-phoneme-vocabulary 9 en-us\n<pad>\n<unk>\n", 1, "version"},
      {"kokoro-phoneme-vocabulary 1\n<pad>\n<unk>\n", 1, "expected"},
      {header + "<unk>\n<pad>\n", 2, "<pad>"},
      {header + "<pad>\nx\n", 3, "<unk>"},
      {header + "<pad>\n<unk>\na\n\nb\n", 5, "empty line"},
      {header + "<pad>\n<unk>\na\nb\na\n", 6, "repeats line 4"},
      {header + "<pad>\n<unk>\n\\q\n", 4, "escape"},
      {header + "<pad>\n", 2, "ends after 1"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    write_text(path, c.text);
    const std::string where = path.string() + ":" + std::to_string(c.line) + ":";
    CHECK_THROWS_WITH_AS(load_phoneme_processor(path), doctest::Contains(where.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_phoneme_processor(path), doctest::Contains(c.what.c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(load_phoneme_processor(dir.path / "missing.txt"),
                       doctest::Contains("missing.txt"), Error);
}

// ---------------------------------------------------------------- demo corpus

// ---- the ARPAbet front end ---------------------------------------------------

TEST_CASE("the ARPAbet front end gives CMUdict's phones with stress, schwa as AH0") {
  CHECK(arpabet_word("cat") == std::vector<std::string>{"K", "AE1", "T"});
  CHECK(arpabet_word("the") == std::vector<std::string>{"DH", "AH0"});
  CHECK(arpabet_word("Hello,") == std::vector<std::string>{"HH", "AH0", "L", "OW1"});
  CHECK(arpabet_word("").empty());
  // A word outside the dictionary goes through flite's letter-to-sound rules.
  const auto made_up = arpabet_word("zorblax");
  REQUIRE_FALSE(made_up.empty());
  CHECK(made_up.front() == "Z");
  const auto vocabulary = arpabet_vocabulary();
  for (const auto& phone : made_up) {
    CHECK(std::find(vocabulary.begin(), vocabulary.end(), phone) != vocabulary.end());
  }
}

TEST_CASE("ARPAbet tokens lay out words, boundaries and punctuation as espeak's do") {
  CHECK(arpabet_tokens("The cat, sat.") == std::vector<std::string>{"DH", "AH0", " ", "K", "AE1",
                                                                    "T", ",", " ", "S", "AE1", "T",
                                                                    "."});
  // A hyphen between letters parts the words without a token of its own.
  CHECK(arpabet_tokens("well-known") ==
        std::vector<std::string>{"W", "EH1", "L", " ", "N", "OW1", "N"});
  auto processor = EnglishPhonemeProcessor::for_phoneme_set("arpabet");
  CHECK(processor.phone_set() == PhoneSet::arpabet);
  CHECK(processor.voice() == kArpabetVoice);
  processor.reset_unknown();
  const auto ids = processor.encode("Doctor Smith paid three dollars for it!");
  CHECK(processor.unknown_count() == 0);
  CHECK(processor.decode(ids).back() == "!");
  CHECK(EnglishPhonemeProcessor::for_phoneme_set("espeak").phone_set() == PhoneSet::espeak);
  CHECK_THROWS_WITH_AS(EnglishPhonemeProcessor::for_phoneme_set("ipa"),
                       doctest::Contains("expected espeak or arpabet"), Error);
}

TEST_CASE("the demo corpus keeps clean prose sentences and drops the rest") {
  using english_tts::detail::demo::is_clean_sentence;
  CHECK(is_clean_sentence("You may charge a fee for this Package.", 4, 25));
  CHECK(is_clean_sentence("\"You\" is you, if you're thinking about copying it.", 4, 25));
  CHECK(is_clean_sentence("The GNU General Public License, version 3, applies.", 4, 25));
  CHECK(!is_clean_sentence("Grant of License.", 4, 25));  // too short
  CHECK(!is_clean_sentence("See http://www.gnu.org/licenses/ for details.", 4, 25));
  CHECK(!is_clean_sentence("THERE IS NO WARRANTY FOR THE PROGRAM AT ALL.", 4, 25));  // shouting
  CHECK(!is_clean_sentence("Use it, e.g. in a program you wrote.", 4, 25));
  CHECK(!is_clean_sentence("Apply subsection 6b to the object code you convey.", 4, 25));
  CHECK(!is_clean_sentence("If (a) holds then you may stop the program.", 4, 25));
  CHECK(english_tts::detail::demo::split_sentences(
            "4. You may copy it. (b) Then stop. (Thus, you win.)") ==
        std::vector<std::string>{"You may copy it.", "Then stop.", "Thus, you win."});
}

TEST_CASE("a tiny demo corpus is a valid LJSpeech corpus aligned to phonemize()") {
  Scratch dir("corpus");
  DemoCorpusOptions options;
  options.out = dir.path / "demo";
  options.clips = 5;
  options.seed = 7;
  const auto report = build_demo_corpus(options);
  CHECK(report.clips == 5);
  CHECK(report.audio_seconds > 5.0);
  CHECK(report.root == options.out);

  const auto metadata = read_bytes(options.out / "metadata.csv");
  CHECK(fs::exists(options.out / "README.txt"));
  std::vector<std::string> lines;
  for (std::size_t start = 0, end; (end = metadata.find('\n', start)) != std::string::npos;
       start = end + 1) {
    lines.push_back(metadata.substr(start, end - start));
  }
  REQUIRE(lines.size() == 5);
  double total = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto fields = split_bar(lines[i]);
    REQUIRE(fields.size() == 3);
    const std::string& id = fields[0];
    const std::string& text = fields[1];
    const std::string& normalized = fields[2];
    INFO(id << ": " << normalized);
    CHECK(id == fmt::format("DEMO-{:04}", i + 1));
    CHECK(!text.empty());
    CHECK(normalized == normalize_english(text));

    const auto wav = read_bytes(options.out / "wavs" / (id + ".wav"));
    REQUIRE(wav.size() > 44);
    CHECK(wav.substr(0, 4) == "RIFF");
    CHECK(wav.substr(8, 4) == "WAVE");
    CHECK(le(wav, 20, 2) == 1);      // PCM
    CHECK(le(wav, 22, 2) == 1);      // mono
    CHECK(le(wav, 24, 4) == 22050);  // rate
    CHECK(le(wav, 34, 2) == 16);     // bits
    const auto samples = le(wav, 40, 4) / 2;
    CHECK(wav.size() == 44 + 2 * samples);

    const auto grid = read_textgrid(options.out / "TextGrid" / (id + ".TextGrid"));
    CHECK(grid.xmin == 0.0);
    CHECK(grid.xmax == static_cast<double>(samples) / 22050.0);
    total += grid.xmax;
    const Tier* words = grid.tier("words");
    const Tier* phones = grid.tier("phones");
    REQUIRE(words != nullptr);
    REQUIRE(phones != nullptr);
    check_tier_covers(*words, grid.xmax);
    check_tier_covers(*phones, grid.xmax);
    std::vector<std::string> labels;
    for (const auto& interval : phones->intervals) {
      if (label_kind(interval.label) == LabelKind::phone) labels.push_back(interval.label);
    }
    CHECK(labels == phones_of(phonemize(normalized)));
    CHECK(words->intervals.size() >= 4);
  }
  CHECK(total == doctest::Approx(report.audio_seconds));
  // No temporary folders are left next to the corpus.
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    CHECK(entry.path().filename() == "demo");
  }
}

TEST_CASE("building the demo corpus twice gives byte-identical files") {
  Scratch dir("twice");
  DemoCorpusOptions options;
  options.clips = 4;
  options.seed = 3;
  options.out = dir.path / "a";
  build_demo_corpus(options);
  synthesize("Something else spoken in between, to move espeak-ng's state.");
  options.out = dir.path / "b";
  build_demo_corpus(options);
  const auto a = snapshot(dir.path / "a");
  CHECK(a.size() == 1 + 1 + 4 + 4);  // metadata, README, WAVs, TextGrids
  CHECK(a == snapshot(dir.path / "b"));

  build_demo_corpus(options);  // replaces the earlier corpus in place
  CHECK(a == snapshot(dir.path / "b"));

  options.seed = 4;
  options.out = dir.path / "c";
  build_demo_corpus(options);
  CHECK(read_bytes(dir.path / "a" / "metadata.csv") != read_bytes(dir.path / "c" / "metadata.csv"));
}

TEST_CASE("an interrupted demo corpus build leaves no corpus, and the next build tidies up") {
  Scratch dir("interrupted");
  DemoCorpusOptions options;
  options.out = dir.path / "demo";
  options.clips = 300;  // about two seconds of work
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      build_demo_corpus(options);
    } catch (...) {
    }
    ::_exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  const bool finished = WIFEXITED(status);
  if (finished) {
    CHECK(fs::exists(options.out / "metadata.csv"));  // too quick to interrupt: complete
  } else {
    CHECK(!fs::exists(options.out));
    CHECK(fs::exists(dir.path / (".tmp-demo-" + std::to_string(child))));
  }
  options.clips = 2;
  build_demo_corpus(options);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    left.push_back(entry.path().filename().string());
  }
  CHECK(left == std::vector<std::string>{"demo"});
}

TEST_CASE("without its source texts the demo corpus uses built-in sentences and says so") {
  Scratch dir("fallback");
  DemoCorpusOptions options;
  options.out = dir.path / "demo";
  options.clips = 3;
  options.sources = dir.path / "no-such-folder";
  const auto report = build_demo_corpus(options);
  CHECK(report.clips == 3);
  CHECK(report.source == "built-in sentences");
  REQUIRE(report.notes.size() == 1);
  CHECK(report.notes[0].find("no-such-folder") != std::string::npos);
  CHECK(read_bytes(options.out / "README.txt").find("built-in") != std::string::npos);
}

TEST_CASE("the demo corpus never replaces a folder that is not a demo corpus") {
  Scratch dir("keep");
  const auto out = dir.path / "data";
  fs::create_directories(out);
  write_text(out / "precious.txt", "keep me");
  DemoCorpusOptions options;
  options.out = out;
  options.clips = 2;
  CHECK_THROWS_WITH_AS(build_demo_corpus(options), doctest::Contains("not a demo corpus"), Error);
  CHECK(read_bytes(out / "precious.txt") == "keep me");
  std::vector<fs::path> left;
  for (const auto& entry : fs::directory_iterator(dir.path)) left.push_back(entry.path());
  CHECK(left == std::vector<fs::path>{out});  // no temporary folder left behind
}
