// The TTS text front end without libtorch: English normalisation, Praat
// TextGrids in both formats and encodings, frame durations rounded as numpy
// rounds them, and the alignment of MFA phones to G2P tokens.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <kokoro/tts/align/phone_projection.hpp>
#include <kokoro/tts/align/textgrid.hpp>
#include <kokoro/tts/text/arpabet.hpp>
#include <kokoro/tts/text/ascii_fold.hpp>
#include <kokoro/tts/text/normalizer.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#ifndef KOKORO_TEST_DATA
#error "KOKORO_TEST_DATA must be the absolute path of tests/data"
#endif

using kokoro::tts::normalize_english;
namespace fs = std::filesystem;
namespace tts = kokoro::tts;

namespace {

const fs::path kGrids = fs::path(KOKORO_TEST_DATA) / "textgrid";
const fs::path kLjSpeech = fs::path(KOKORO_TEST_DATA) / "ljspeech";

fs::path scratch_file(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "kokoro_tts_text_tests";
  fs::create_directories(dir);
  return dir / name;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string error_of(auto&& fn) {
  try {
    fn();
  } catch (const kokoro::Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::int64_t sum(const std::vector<std::int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), std::int64_t{0});
}

tts::Tier tier_of(std::vector<tts::Interval> intervals) { return {"phones", std::move(intervals)}; }

/// A phone tier of 0.1 s intervals with these labels.
tts::Tier phones_of(const std::vector<std::string>& labels) {
  tts::Tier tier{"phones", {}};
  double t = 0;
  for (const auto& label : labels) {
    tier.intervals.push_back({t, t + 0.1, label});
    t += 0.1;
  }
  return tier;
}

bool is_pause(std::string_view token) {
  return token == " " || token == "." || token == "," || token == "?" || token == "!" ||
         token == ";" || token == ":" || token == "-";
}

std::string utf16(const std::u32string& text, bool big_endian) {
  std::string out = big_endian ? "\xFE\xFF" : "\xFF\xFE";
  auto put = [&](char32_t unit) {
    const char hi = static_cast<char>(unit >> 8), lo = static_cast<char>(unit & 0xFF);
    out += big_endian ? std::string{hi, lo} : std::string{lo, hi};
  };
  for (const char32_t cp : text) {
    if (cp >= 0x10000) {
      put(0xD800 + ((cp - 0x10000) >> 10));
      put(0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else {
      put(cp);
    }
  }
  return out;
}

}  // namespace

// ---- normalisation ------------------------------------------------------------

TEST_CASE("cardinals are spelled out, with thousands separators and signs") {
  CHECK(normalize_english("0") == "zero");
  CHECK(normalize_english("7 dogs") == "seven dogs");
  CHECK(normalize_english("13") == "thirteen");
  CHECK(normalize_english("21") == "twenty-one");
  CHECK(normalize_english("105") == "one hundred five");
  CHECK(normalize_english("999") == "nine hundred ninety-nine");
  CHECK(normalize_english("1,000") == "one thousand");
  CHECK(normalize_english("12,345") == "twelve thousand three hundred forty-five");
  CHECK(normalize_english("1,000,000") == "one million");
  CHECK(normalize_english("2,000,000,001") == "two billion one");
  CHECK(normalize_english("1,234,567,890") ==
        "one billion two hundred thirty-four million five hundred sixty-seven thousand eight "
        "hundred ninety");
  CHECK(normalize_english("5000000000000") == "five trillion");
  CHECK(normalize_english("-5") == "minus five");
  CHECK(normalize_english("it was -12 outside") == "it was minus twelve outside");
  CHECK(normalize_english("(-3)") == "(minus three)");
}

TEST_CASE("odd digit strings are read digit by digit and hyphens between numbers stay") {
  CHECK(normalize_english("agent 007") == "agent zero zero seven");
  CHECK(normalize_english("1234567890123456789") ==
        "one two three four five six seven eight nine zero one two three four five six seven "
        "eight nine");
  CHECK(normalize_english("pages 5-6") == "pages five-six");
  CHECK(normalize_english("1,2 and 1,23") == "one,two and one,twenty-three");
}

TEST_CASE("decimals read the digits after the point one by one") {
  CHECK(normalize_english("3.14") == "three point one four");
  CHECK(normalize_english("0.05") == "zero point zero five");
  CHECK(normalize_english(".5 of it") == "point five of it");
  CHECK(normalize_english("-2.5") == "minus two point five");
  CHECK(normalize_english("1,000.25") == "one thousand point two five");
  CHECK(normalize_english("It cost 3.") == "It cost three.");
}

TEST_CASE("ordinals take the form of their last word") {
  CHECK(normalize_english("1st") == "first");
  CHECK(normalize_english("2nd") == "second");
  CHECK(normalize_english("3rd") == "third");
  CHECK(normalize_english("11th") == "eleventh");
  CHECK(normalize_english("12th") == "twelfth");
  CHECK(normalize_english("20th") == "twentieth");
  CHECK(normalize_english("22nd") == "twenty-second");
  CHECK(normalize_english("103rd") == "one hundred third");
  CHECK(normalize_english("1,000th") == "one thousandth");
  CHECK(normalize_english("the 5TH day") == "the fifth day");
}

TEST_CASE("standalone four-digit numbers in year ranges are read as years") {
  CHECK(normalize_english("1984") == "nineteen eighty-four");
  CHECK(normalize_english("in 1905,") == "in nineteen oh five,");
  CHECK(normalize_english("1900") == "nineteen hundred");
  CHECK(normalize_english("1100") == "eleven hundred");
  CHECK(normalize_english("275 B.C.") == "two seventy-five B.C.");
  CHECK(normalize_english("about 2250 B.C.,") == "about twenty-two fifty B.C.,");
  CHECK(normalize_english("in 484 BC") == "in four eighty-four BC");
  CHECK(normalize_english("A.D. 79 and 410 A.D.") == "A.D. seventy-nine and four ten A.D.");
  // Three digits where a year goes, unless a plural noun says they count.
  CHECK(normalize_english("In 606, Nineveh fell") == "In six oh six, Nineveh fell");
  CHECK(normalize_english("in the year 562, after") == "in the year five sixty-two, after");
  CHECK(normalize_english("In 529 Cyrus died.") == "In five twenty-nine Cyrus died.");
  CHECK(normalize_english("in 300 cases") == "in three hundred cases");
  CHECK(normalize_english("in 600") == "in six hundred");
  CHECK(normalize_english("2000") == "two thousand");
  CHECK(normalize_english("2005") == "two thousand five");
  CHECK(normalize_english("2010") == "twenty ten");
  CHECK(normalize_english("2023.") == "twenty twenty-three.");
  CHECK(normalize_english("1980s") == "nineteen eighties");
  CHECK(normalize_english("the 90s") == "the nineties");
  CHECK(normalize_english("1800s") == "eighteen hundreds");
}

TEST_CASE("numbers that are not years are read as cardinals") {
  CHECK(normalize_english("1099") == "one thousand ninety-nine");
  CHECK(normalize_english("2100") == "twenty-one hundred");
  CHECK(normalize_english("2101") == "two thousand one hundred one");
  CHECK(normalize_english("1,984") == "one thousand nine hundred eighty-four");
  CHECK(normalize_english("-1984") == "minus one thousand nine hundred eighty-four");
  CHECK(normalize_english("1984.5") == "one thousand nine hundred eighty-four point five");
  CHECK(normalize_english("B1984") == "B one nine eight four");
}

TEST_CASE("money is read with its unit, and cents after a comma") {
  CHECK(normalize_english("$3.50") == "three dollars, fifty cents");
  CHECK(normalize_english("$1") == "one dollar");
  CHECK(normalize_english("$1.01") == "one dollar, one cent");
  CHECK(normalize_english("$3.5") == "three dollars, fifty cents");
  CHECK(normalize_english("$0.99") == "ninety-nine cents");
  CHECK(normalize_english("$.25") == "twenty-five cents");
  CHECK(normalize_english("$0") == "zero dollars");
  CHECK(normalize_english("$3.00") == "three dollars");
  CHECK(normalize_english("$1,500") == "fifteen hundred dollars");
  CHECK(normalize_english("$1,501") == "one thousand five hundred one dollars");
  CHECK(normalize_english("$1984") == "one thousand nine hundred eighty-four dollars");
  CHECK(normalize_english("£5") == "five pounds");
  CHECK(normalize_english("£1") == "one pound");
  CHECK(normalize_english("£2.01") == "two pounds, one penny");
  CHECK(normalize_english("£0.50") == "fifty pence");
  CHECK(normalize_english("€2.50") == "two euros, fifty cents");
  CHECK(normalize_english("-$5") == "minus five dollars");
  CHECK(normalize_english("$1.005") == "one point zero zero five dollars");
  CHECK(normalize_english("costs $5.") == "costs five dollars.");
  CHECK(normalize_english("a $ sign") == "a $ sign");
}

TEST_CASE("a scale word after money moves the unit after it") {
  CHECK(normalize_english("$2 million") == "two million dollars");
  CHECK(normalize_english("$1 billion.") == "one billion dollars.");
  CHECK(normalize_english("$2.5 Billion") == "two point five Billion dollars");
  CHECK(normalize_english("£3 thousand") == "three thousand pounds");
  CHECK(normalize_english("$2 millionaires") == "two dollars millionaires");
}

TEST_CASE("percentages") {
  CHECK(normalize_english("5%") == "five percent");
  CHECK(normalize_english("3.5%.") == "three point five percent.");
  CHECK(normalize_english("-2%") == "minus two percent");
  CHECK(normalize_english("100%") == "one hundred percent");
}

TEST_CASE("clock times") {
  CHECK(normalize_english("at 3:30") == "at three thirty");
  CHECK(normalize_english("at 3:05") == "at three oh five");
  CHECK(normalize_english("at 3:00.") == "at three o'clock.");
  CHECK(normalize_english("at 3:00 pm") == "at three pm");
  CHECK(normalize_english("at 11:00 a.m.") == "at eleven a.m.");
  CHECK(normalize_english("14:00") == "fourteen hundred");
  CHECK(normalize_english("12:45pm") == "twelve forty-five pm");
  CHECK(normalize_english("25:00") == "twenty-five:zero zero");
}

TEST_CASE("numbers glued to letters are separated from them") {
  CHECK(normalize_english("B52") == "B fifty-two");
  CHECK(normalize_english("10am") == "ten am");
  CHECK(normalize_english("3D") == "three D");
  // Three digits and more after letters are a serial number.
  CHECK(normalize_english("rifle C2766") == "rifle C two seven six six");
}

TEST_CASE("titles before names are expanded and lose their period") {
  CHECK(normalize_english("Mr. Smith") == "Mister Smith");
  CHECK(normalize_english("Mrs. Smith") == "Missus Smith");
  CHECK(normalize_english("Ms. Smith") == "Miz Smith");
  CHECK(normalize_english("Dr. Watson") == "Doctor Watson");
  CHECK(normalize_english("Gen. Lee") == "General Lee");
  CHECK(normalize_english("Col. Mustard") == "Colonel Mustard");
  CHECK(normalize_english("Capt. Hook") == "Captain Hook");
  CHECK(normalize_english("Lt. Dan") == "Lieutenant Dan");
  CHECK(normalize_english("Sgt. Pepper") == "Sergeant Pepper");
  CHECK(normalize_english("Rev. King") == "Reverend King");
  CHECK(normalize_english("Hon. Member") == "Honorable Member");
  CHECK(normalize_english("Prof. Higgins") == "Professor Higgins");
  CHECK(normalize_english("Ali vs. Frazier") == "Ali versus Frazier");
  CHECK(normalize_english("MR. SMITH") == "MISTER SMITH");
  CHECK(normalize_english("I saw the Dr.") == "I saw the Doctor.");
}

TEST_CASE("trailing abbreviations keep their period where it ends a sentence") {
  CHECK(normalize_english("John Smith Jr. spoke") == "John Smith Junior spoke");
  CHECK(normalize_english("John Smith Sr., the elder") == "John Smith Senior, the elder");
  CHECK(normalize_english("Smith & Co. Then he left.") == "Smith and Company. Then he left.");
  CHECK(normalize_english("Smith Co. Ltd.") == "Smith Company Limited.");
  CHECK(normalize_english("apples, pears, etc. and more") == "apples, pears, et cetera and more");
  CHECK(normalize_english("apples, etc.") == "apples, et cetera.");
}

TEST_CASE("St. is Saint before a capitalised word and Street otherwise") {
  CHECK(normalize_english("St. Louis") == "Saint Louis");
  CHECK(normalize_english("on Baker St.") == "on Baker Street.");
  CHECK(normalize_english("Baker St., London") == "Baker Street, London");
  CHECK(normalize_english("1st St. is near") == "first Street is near");
}

TEST_CASE("No. is a number only before one") {
  CHECK(normalize_english("No. 5") == "Number five");
  CHECK(normalize_english("see no.12") == "see number twelve");
  CHECK(normalize_english("No. I won't.") == "No. I won't.");
}

TEST_CASE("words that only look like abbreviations are left alone") {
  CHECK(normalize_english("rev. the engine") == "rev. the engine");
  CHECK(normalize_english("thanks, hon.") == "thanks, hon.");
  CHECK(normalize_english("visit bbc.co.uk") == "visit bbc.co.uk");
  CHECK(normalize_english("Co.uk") == "Co.uk");
  CHECK(normalize_english("Mrs") == "Mrs");
}

TEST_CASE("ampersands become and") {
  CHECK(normalize_english("salt & pepper") == "salt and pepper");
  CHECK(normalize_english("AT&T") == "AT and T");
}

TEST_CASE("whitespace collapses, and case and punctuation otherwise stay") {
  CHECK(normalize_english("  Hello,\t\n world!  ") == "Hello, world!");
  CHECK(normalize_english("a\xC2\xA0"
                          "b") == "a b");
  CHECK(normalize_english("\"Why?\" she asked; (quietly) - then left...") ==
        "\"Why?\" she asked; (quietly) - then left...");
  CHECK(normalize_english("caf\xC3\xA9 \"quoted\"") == "caf\xC3\xA9 \"quoted\"");
  CHECK(normalize_english("") == "");
  CHECK(normalize_english("   ") == "");
  // Control characters are no text to speak: they separate words as spaces do.
  CHECK(normalize_english(std::string("a\0b\x01"
                                      "c\x7F"
                                      "d\x1B",
                                      8)) == "a b c d");
}

TEST_CASE("a sentence mixing the rules") {
  CHECK(normalize_english("On May 3rd, 1984, Dr. Jones paid $2.50 for 25% of No. 7 & left.") ==
        "On May third, nineteen eighty-four, Doctor Jones paid two dollars, fifty cents for "
        "twenty-five percent of Number seven and left.");
}

TEST_CASE("round hundreds from 1100 to 9900 are read in hundreds") {
  CHECK(normalize_english("\xC2\xA3"
                          "1400") == "fourteen hundred pounds");
  CHECK(normalize_english("1,300 persons") == "thirteen hundred persons");
  CHECK(normalize_english("4500") == "forty-five hundred");
  CHECK(normalize_english("9,900") == "ninety-nine hundred");
  CHECK(normalize_english("10,000") == "ten thousand");
  CHECK(normalize_english("3000") == "three thousand");
  CHECK(normalize_english("1,050") == "one thousand fifty");
  CHECK(normalize_english("1,500th") == "fifteen hundredth");
}

TEST_CASE("Roman numerals: regnal after a name, counts after a counting word, initials stay") {
  CHECK(normalize_english("George III.") == "George the third.");
  CHECK(normalize_english("of George III., as many") == "of George the third, as many");
  CHECK(normalize_english("by Charles I. in the sixth year") ==
        "by Charles the first in the sixth year");
  CHECK(normalize_english("in the 16th Charles I.") == "in the sixteenth Charles the first.");
  CHECK(normalize_english("the reign of James I.,") == "the reign of James the first,");
  CHECK(normalize_english("Henry VIII. a new") == "Henry the eighth a new");
  CHECK(normalize_english("Louis XIV") == "Louis the fourteenth");
  CHECK(normalize_english("the 4 George IV cap. 64") ==
        "the four George the fourth cap. sixty-four");
  // A multi-letter numeral after a capitalised word not at a sentence's start.
  CHECK(normalize_english("King Tut II.") == "King Tut the second.");
  CHECK(normalize_english("chapter IV") == "chapter four");
  CHECK(normalize_english("Chapter XLII.") == "Chapter forty-two.");
  CHECK(normalize_english("World War II") == "World War two");
  CHECK(normalize_english("Part I") == "Part one");
  // Initials, the pronoun, and words that only look like numerals.
  CHECK(normalize_english("Robert I. Bouck") == "Robert I. Bouck");
  CHECK(normalize_english("Robert I Bouck") == "Robert I Bouck");
  CHECK(normalize_english("Forrest V. Sorrels") == "Forrest V. Sorrels");
  CHECK(normalize_english("letters to V. T. Lee,") == "letters to V. T. Lee,");
  CHECK(normalize_english("It was I. I did it.") == "It was I. I did it.");
  CHECK(normalize_english("Then I went") == "Then I went");
  CHECK(normalize_english("Franklin D. Roosevelt") == "Franklin D. Roosevelt");
  CHECK(normalize_english("Washington DC") == "Washington DC");
  CHECK(normalize_english("a colonel in the MVD") == "a colonel in the MVD");
  CHECK(normalize_english("IV drip") == "IV drip");
  CHECK(normalize_english("George IIII") == "George IIII");
  CHECK(normalize_english("George III's") == "George III's");
}

TEST_CASE("numbers that name things are read as LJSpeech's reader reads them") {
  CHECK(normalize_english("Post Office Box 2915, Dallas") ==
        "Post Office Box two nine one five, Dallas");
  CHECK(normalize_english("rented box 2915") == "rented box two nine one five");
  // Labels: three or four digits in pairs, five and more one by one.
  CHECK(normalize_english("Exhibit No. 133-B,") == "Exhibit Number one thirty-three-B,");
  CHECK(normalize_english("Commission Exhibit No. 150 (the shirt)") ==
        "Commission Exhibit Number one fifty (the shirt)");
  CHECK(normalize_english("chapter 6, page 249.") == "chapter six, page two forty-nine.");
  CHECK(normalize_english("at frame 343, 30 frames") ==
        "at frame three forty-three, thirty frames");
  CHECK(normalize_english("enrolled in P.S. 117") == "enrolled in P.S. one seventeen");
  CHECK(normalize_english("page 300") == "page three hundred");
  CHECK(normalize_english("No. 2,202,130,462") ==
        "Number two two zero two one three zero four six two");
  CHECK(normalize_english("Route No. 77") == "Route Number seventy-seven");
  // House numbers before a street name.
  CHECK(normalize_english("544 Camp Street New Orleans") ==
        "five four four Camp Street New Orleans");
  CHECK(normalize_english("at 602 Elsbeth Street in Dallas") ==
        "at six oh two Elsbeth Street in Dallas");
  CHECK(normalize_english("found it to be 411 Elm Street. End quote.") ==
        "found it to be four one one Elm Street. End quote.");
  CHECK(normalize_english("at 1026 North Beckley Avenue") ==
        "at ten twenty-six North Beckley Avenue");
  CHECK(normalize_english("500 North Beckley") == "five hundred North Beckley");
  CHECK(normalize_english("No. 1, Newgate Street") == "Number one, Newgate Street");
  CHECK(normalize_english("544 camels") == "five hundred forty-four camels");
  // Serial numbers: capitals glued to three digits or more.
  CHECK(normalize_english("control number VC836,") == "control number V C eight three six,");
  CHECK(normalize_english("serial No. C2766, which") == "serial Number C two seven six six, which");
  CHECK(normalize_english("ABCD1234") == "ABCD one thousand two hundred thirty-four");
}

TEST_CASE("a bore written as a decimal is read as a whole number") {
  CHECK(normalize_english("a .22 caliber rifle") == "a twenty-two caliber rifle");
  CHECK(normalize_english("the .22 rifle and the .22 pistol") ==
        "the twenty-two rifle and the twenty-two pistol");
  CHECK(normalize_english("a .38-caliber pistol") == "a thirty-eight-caliber pistol");
  CHECK(normalize_english(".357 magnum") == "three fifty-seven magnum");
  CHECK(normalize_english("a .22 lead") == "a point two two lead");
}

TEST_CASE("typographic quotes become ASCII, other letters stay for the front end") {
  CHECK(normalize_english("a \xE2\x80\x9Csponge,\xE2\x80\x9D M\xC3\xBCller\xE2\x80\x99s") ==
        "a \"sponge,\" M\xC3\xBCller's");
  CHECK(normalize_english("\xE2\x80\x98Victoria\xE2\x80\x99") == "'Victoria'");
  CHECK(normalize_english("bric-\xC3\xA0-brac") == "bric-\xC3\xA0-brac");
}

TEST_CASE("normalize_english's options leave numbers or abbreviations as written") {
  const std::string text = "Mr. Smith paid $5 to George III.";
  CHECK(normalize_english(text, {.numbers = false}) == "Mister Smith paid $5 to George III.");
  CHECK(normalize_english(text, {.abbreviations = false}) ==
        "Mr. Smith paid five dollars to George the third.");
}

TEST_CASE("the ARPAbet front end reads Latin letters outside ASCII as their ASCII forms") {
  CHECK(tts::ascii_folded("M\xC3\xBCller c\xC3\xA9l\xC3\xA8"
                          "bre Stra\xC3\x9F"
                          "e \xC3\x86sir") == "Muller celebre Strasse AEsir");
  CHECK(tts::ascii_folded("plain") == "plain");
  CHECK(tts::arpabet_tokens("M\xC3\xBCller") == tts::arpabet_tokens("Muller"));
  CHECK(tts::arpabet_tokens("d'\xC3\xAAtre") == tts::arpabet_tokens("d'etre"));
}

/// The words of a text as they are said: lower case, punctuation and case
/// dropped, hyphens splitting words, dots inside a word dropped ("I.Q." is
/// "iq"), typographic apostrophes as ASCII ones, other letters kept.
std::vector<std::string> spoken_words(std::string_view text) {
  std::string plain;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (text.substr(i, 3) == "\xE2\x80\x99" || text.substr(i, 3) == "\xE2\x80\x98") {
      plain += '\'';
      i += 2;
    } else if (c >= 0x80 || std::isalnum(c) || c == '\'') {
      plain += static_cast<char>(c >= 0x80 ? c : std::tolower(c));
    } else if (c != '.') {
      plain += ' ';
    }
  }
  std::vector<std::string> words;
  std::istringstream in(plain);
  for (std::string w; in >> w;) {
    while (!w.empty() && w.front() == '\'') w.erase(0, 1);
    while (!w.empty() && w.back() == '\'') w.pop_back();
    if (!w.empty()) words.push_back(w);
  }
  return words;
}

TEST_CASE("the normaliser says LJSpeech's lines as its own normalized column does") {
  // Every line of LJSpeech 1.1's metadata.csv whose two text columns differ
  // or that holds something the normaliser reads (see its README): words of
  // normalize_english(text) against the normalized column's, where the
  // abbreviations LJSpeech leaves written ("Mr.") are expanded on both sides.
  std::ifstream in(kLjSpeech / "metadata_excerpt.csv");
  REQUIRE(in);
  std::int64_t lines = 0;
  std::vector<std::string> differing;
  for (std::string line; std::getline(in, line);) {
    const auto a = line.find('|'), b = line.find('|', a + 1);
    REQUIRE_MESSAGE(b != std::string::npos, line);
    const std::string id = line.substr(0, a), raw = line.substr(a + 1, b - a - 1),
                      theirs = line.substr(b + 1);
    ++lines;
    const auto ours = normalize_english(raw);
    if (spoken_words(ours) != spoken_words(normalize_english(theirs, {.numbers = false}))) {
      differing.push_back(id);
      MESSAGE(id << "\n  ours:      " << ours << "\n  LJSpeech:  " << theirs);
    }
  }
  // The rest of the 13,100 lines have raw == normalized and nothing a
  // reading applies to, so they agree whatever the readings do.
  constexpr std::int64_t kLjSpeechLines = 13100;
  CHECK(lines > 1000);
  const double agreement =
      1.0 - static_cast<double>(differing.size()) / static_cast<double>(kLjSpeechLines);
  MESSAGE(differing.size() << " of " << lines << " excerpt lines differ: agreement "
                           << agreement * 100.0 << "% of LJSpeech's lines");
  CHECK(agreement >= 0.995);
}

// ---- TextGrid parsing -------------------------------------------------------------

TEST_CASE("the long-format MFA fixture parses into its words and phones") {
  const auto grid = tts::read_textgrid(kGrids / "the_cat_sat.long.TextGrid");
  CHECK(grid.xmin == 0);
  CHECK(grid.xmax == 1.06);
  REQUIRE(grid.tiers.size() == 2);
  const auto* words = grid.tier("words");
  const auto* phones = grid.tier("phones");
  REQUIRE(words != nullptr);
  REQUIRE(phones != nullptr);
  CHECK(grid.tier("syllables") == nullptr);
  REQUIRE(words->intervals.size() == 5);
  CHECK(words->intervals[1].label == "the");
  CHECK(words->intervals[3].start == 0.52);
  CHECK(words->intervals[3].end == 0.9);
  REQUIRE(phones->intervals.size() == 10);
  CHECK(phones->intervals[0].label == "");
  CHECK(phones->intervals[2].label == "AH0");
  CHECK(phones->intervals[9].end == 1.06);
}

TEST_CASE("the short-format fixture parses to the same grid as the long one") {
  const auto long_grid = tts::read_textgrid(kGrids / "the_cat_sat.long.TextGrid");
  const auto short_grid = tts::read_textgrid(kGrids / "the_cat_sat.short.TextGrid");
  CHECK(tts::format_textgrid(short_grid) == tts::format_textgrid(long_grid));
  REQUIRE(short_grid.tier("phones") != nullptr);
  CHECK(short_grid.tier("phones")->intervals[4].label == "AE1");
}

TEST_CASE("formatting the parsed long fixture reproduces it byte for byte") {
  std::ifstream in(kGrids / "the_cat_sat.long.TextGrid", std::ios::binary);
  const std::string file{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  CHECK(tts::format_textgrid(tts::parse_textgrid(file, "fixture")) == file);
}

TEST_CASE("format then parse gives back the grid, quotes and odd times included") {
  tts::TextGrid grid{0, 2.0000000000000004, {}};
  grid.tiers.push_back(
      {"words \"quoted\"", {{0, 0.1, "say \"hi\""}, {0.1, 2.0000000000000004, ""}}});
  grid.tiers.push_back({"phones", {{0, 1.0 / 3.0, "ʃ"}, {1.0 / 3.0, 2.0000000000000004, "sil"}}});
  const auto back = tts::parse_textgrid(tts::format_textgrid(grid), "round trip");
  CHECK(back.xmax == grid.xmax);
  REQUIRE(back.tiers.size() == 2);
  CHECK(back.tiers[0].name == "words \"quoted\"");
  CHECK(back.tiers[0].intervals[0].label == "say \"hi\"");
  CHECK(back.tiers[1].intervals[0].end == 1.0 / 3.0);
  CHECK(back.tiers[1].intervals[0].label == "ʃ");
  CHECK(tts::format_textgrid(back) == tts::format_textgrid(grid));
}

TEST_CASE("write_textgrid and read_textgrid round trip through a file") {
  tts::TextGrid grid{0, 1.5, {{"phones", {{0, 0.5, ""}, {0.5, 1.5, "AA1"}}}}};
  const auto path = scratch_file("written.TextGrid");
  tts::write_textgrid(grid, path);
  const auto back = tts::read_textgrid(path);
  CHECK(tts::format_textgrid(back) == tts::format_textgrid(grid));
  fs::remove(path);
}

TEST_CASE("doubled quotes and multi-line strings are read as Praat writes them") {
  const std::string text =
      "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\n0\n1\n<exists>\n1\n"
      "\"IntervalTier\"\n\"words\"\n0\n1\n2\n0\n0.5\n\"\"\"Is anyone home?\"\"\"\n"
      "0.5\n1\n\"two\nlines\"\n";
  const auto grid = tts::parse_textgrid(text, "inline");
  REQUIRE(grid.tiers.size() == 1);
  CHECK(grid.tiers[0].intervals[0].label == "\"Is anyone home?\"");
  CHECK(grid.tiers[0].intervals[1].label == "two\nlines");
}

TEST_CASE("point tiers are skipped in both formats") {
  const std::string long_text = R"(File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "TextTier"
        name = "bells"
        xmin = 0
        xmax = 1
        points: size = 2
        points [1]:
            number = 0.25
            mark = "ding"
        points [2]:
            number = 0.75
            mark = "dong"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 1
            text = "AA"
)";
  const auto grid = tts::parse_textgrid(long_text, "points.TextGrid");
  REQUIRE(grid.tiers.size() == 1);
  CHECK(grid.tiers[0].name == "phones");

  const std::string short_text =
      "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\n0\n1\n<exists>\n2\n"
      "\"TextTier\"\n\"bells\"\n0\n1\n1\n0.5\n\"ding\"\n"
      "\"IntervalTier\"\n\"phones\"\n0\n1\n1\n0\n1\n\"AA\"\n";
  const auto short_grid = tts::parse_textgrid(short_text, "points-short.TextGrid");
  REQUIRE(short_grid.tiers.size() == 1);
  CHECK(short_grid.tiers[0].intervals[0].label == "AA");
}

TEST_CASE("tab indentation, CRLF line ends and MFA 1.x labels are read") {
  const std::string text =
      "File type = \"ooTextFile\"\r\nObject class = \"TextGrid\"\r\n\r\nxmin = 0.0\r\n"
      "xmax = 0.5\r\ntiers? <exists>\r\nsize = 1\r\nitem []:\r\n\titem [1]:\r\n"
      "\t\tclass = \"IntervalTier\"\r\n\t\tname = \"phones\"\r\n\t\txmin = 0.0\r\n"
      "\t\txmax = 0.5\r\n\t\tintervals: size = 2\r\n\t\tintervals [1]:\r\n"
      "\t\t\txmin = 0.0\r\n\t\t\txmax = 0.25\r\n\t\t\ttext = \"sil\"\r\n"
      "\t\tintervals [2]:\r\n\t\t\txmin = 0.25\r\n\t\t\txmax = 0.5\r\n"
      "\t\t\ttext = \"AA1\"\r\n";
  const auto grid = tts::parse_textgrid(text, "mfa1.TextGrid");
  REQUIRE(grid.tiers.size() == 1);
  REQUIRE(grid.tiers[0].intervals.size() == 2);
  CHECK(grid.tiers[0].intervals[0].label == "sil");
  CHECK(grid.tiers[0].intervals[1].start == 0.25);
  CHECK(grid.tiers[0].intervals[1].label == "AA1");
}

TEST_CASE("a grid without tiers parses") {
  const auto grid = tts::parse_textgrid(
      "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\nxmin = 0\nxmax = 2\n"
      "tiers? <absent>\n",
      "empty");
  CHECK(grid.xmax == 2);
  CHECK(grid.tiers.empty());
}

TEST_CASE("UTF-16 files of either byte order and UTF-8 with a BOM are read") {
  const std::string utf8 =
      "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\n0\n1\n<exists>\n1\n"
      "\"IntervalTier\"\n\"phones\"\n0\n1\n2\n0\n0.5\n\"\xCA\x83\"\n0.5\n1\n\"\xF0\x9F\x98\x80\"\n";
  std::u32string wide;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    // The fixture holds ASCII, U+0283 (2 bytes) and U+1F600 (4 bytes, a surrogate pair).
    if (utf8.compare(i, 2, "\xCA\x83") == 0) {
      wide += U'\u0283';
      i += 1;
    } else if (utf8.compare(i, 4, "\xF0\x9F\x98\x80") == 0) {
      wide += U'\U0001F600';
      i += 3;
    } else {
      wide += static_cast<char32_t>(utf8[i]);
    }
  }
  for (const bool big_endian : {false, true}) {
    CAPTURE(big_endian);
    const auto path = scratch_file(big_endian ? "utf16be.TextGrid" : "utf16le.TextGrid");
    write_bytes(path, utf16(wide, big_endian));
    const auto grid = tts::read_textgrid(path);
    REQUIRE(grid.tiers.size() == 1);
    CHECK(grid.tiers[0].intervals[0].label == "\xCA\x83");
    CHECK(grid.tiers[0].intervals[1].label == "\xF0\x9F\x98\x80");
    fs::remove(path);
  }
  const auto bom8 = scratch_file("utf8bom.TextGrid");
  write_bytes(bom8, "\xEF\xBB\xBF" + utf8);
  CHECK(tts::read_textgrid(bom8).tiers[0].intervals[0].label == "\xCA\x83");
  fs::remove(bom8);
}

TEST_CASE("a damaged UTF-16 file is reported with its line") {
  const auto path = scratch_file("bad16.TextGrid");
  std::string bytes = utf16(U"File type = \"ooTextFile\"\nObject", false);
  bytes += std::string("\x00\xD8", 2);  // a high surrogate, then the end of the file
  write_bytes(path, bytes);
  const auto message = error_of([&] { tts::read_textgrid(path); });
  CHECK(message.starts_with(path.string() + ":2: "));
  CHECK(message.find("surrogate") != std::string::npos);
  fs::remove(path);
}

TEST_CASE("a malformed file is reported with its name, the line and what was expected") {
  std::ifstream in(kGrids / "the_cat_sat.long.TextGrid", std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  // Line 29 holds "xmax = 0.9 ", the end of the word "sat".
  const auto at = text.find("xmax = 0.9 ");
  REQUIRE(at != std::string::npos);
  CHECK(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n') == 28);
  text.replace(at, 11, "xmax = oops ");
  const auto path = scratch_file("broken.TextGrid");
  write_bytes(path, text);
  const auto message = error_of([&] { tts::read_textgrid(path); });
  CHECK(message ==
        path.string() +
            ":29: expected the xmax of interval [4] of tier 1 \"words\" (a number), found 'oops'");
  fs::remove(path);
}

TEST_CASE("each kind of malformed text names its line and what was expected") {
  const std::string head = "File type = \"ooTextFile\"\nObject class = \"TextGrid\"\n\n";
  CHECK(error_of([&] { tts::parse_textgrid("", "a.TextGrid"); }) ==
        "a.TextGrid:1: expected File type = \"ooTextFile\", found the end of the file");
  CHECK(error_of([&] {
          tts::parse_textgrid("File type = \"ooTextFile\"\nObject class = \"Sound\"\n", "b");
        }) == "b:2: expected Object class = \"TextGrid\", found the string \"Sound\"");
  // A long-format key out of place: xmax where xmin belongs.
  CHECK(error_of([&] { tts::parse_textgrid(head + "xmax = 1\n", "c"); }) ==
        "c:4: expected the TextGrid's xmin (a number), found the key 'xmax'");
  // A value missing after "=".
  CHECK(error_of([&] { tts::parse_textgrid(head + "xmin = \nxmax = 1\n", "d"); }) ==
        "d:4: expected the TextGrid's xmin (a number), found nothing after '='");
  // Truncated: the size promises an interval that never comes.
  CHECK(error_of([&] {
          tts::parse_textgrid(
              head + "0\n1\n<exists>\n1\n\"IntervalTier\"\n\"phones\"\n0\n1\n1\n0\n", "e");
        }) ==
        "e:13: expected the xmax of interval [1] of tier 1 \"phones\" (a number), found the "
        "end of the file");
  CHECK(error_of([&] {
          tts::parse_textgrid(head + "0\n1\n<exists>\n1\n\"Spectrogram\"\n", "f");
        }).starts_with("f:8: expected the name of tier 1"));
  CHECK(error_of([&] {
          tts::parse_textgrid(head + "0\n1\n<exists>\n1\n\"Spectrogram\"\n\"x\"\n0\n1\n0\n", "g");
        }) ==
        "g:8: expected the class of tier 1 to be \"IntervalTier\" or \"TextTier\", found the "
        "string \"Spectrogram\"");
  CHECK(error_of([&] {
          tts::parse_textgrid(
              head + "0\n1\n<exists>\n1\n\"IntervalTier\"\n\"p\"\n0\n1\n1\n0.5\n0.2\n\"a\"\n", "h");
        }) ==
        "h:14: expected the xmax of interval [1] of tier 1 \"p\" to be at least its xmin 0.5, "
        "found the number 0.2");
  CHECK(error_of([&] { tts::parse_textgrid(head + "0\n1\n<exists>\n-2\n", "i"); }) ==
        "i:7: expected the number of tiers (a count: a whole number, 0 or more), found the number "
        "-2");
  CHECK(error_of([&] { tts::parse_textgrid(head + "0\n1\n<exists>\n0\n\"extra\"\n", "j"); }) ==
        "j:8: expected the end of the file after 0 tiers (as its size says), found the string "
        "\"extra\"");
  CHECK(error_of([&] { tts::parse_textgrid(head + "0\n1\n<exists>\n1\n\"Interval\n", "k"); }) ==
        "k:8: expected a closing '\"' for the string opened here");
  CHECK(error_of([&] {
          tts::parse_textgrid(std::string("ooBinaryFile\x08TextGrid", 21), "m");
        }).starts_with("m:1: expected a text TextGrid, found a binary one"));
  CHECK(error_of([&] { tts::parse_textgrid(head + "0\n1.2.3\n", "l"); }) ==
        "l:5: expected the TextGrid's xmax (a number), found the number 1.2.3");
}

TEST_CASE("a missing file is reported by name") {
  const auto message = error_of([] { tts::read_textgrid("/nonexistent/x.TextGrid"); });
  CHECK(message.starts_with("/nonexistent/x.TextGrid: cannot open"));
}

TEST_CASE("silence labels of MFA 1.x and 2.x") {
  using tts::LabelKind;
  for (const char* silence : {"", "  ", "sil", "sp", " sil\t", "SIL", "<eps>"})
    CHECK(tts::label_kind(silence) == LabelKind::silence);
  CHECK(tts::label_kind("spn") == LabelKind::spoken_noise);
  CHECK(tts::label_kind("SPN") == LabelKind::spoken_noise);
  for (const char* phone : {"s", "AH0", "silk", "\xC9\x99"})
    CHECK(tts::label_kind(phone) == LabelKind::phone);
}

// ---- frame durations ----------------------------------------------------------

TEST_CASE("boundaries round to frames with halves going to even, as numpy does") {
  // 16000 Hz, hop 250: 64 frames per second, and these times are exact in binary.
  CHECK(tts::time_to_frame(0.0078125, 16000, 250) == 0);  // 0.5 frames
  CHECK(tts::time_to_frame(0.0234375, 16000, 250) == 2);  // 1.5 frames
  CHECK(tts::time_to_frame(0.0390625, 16000, 250) == 2);  // 2.5 frames
  CHECK(tts::time_to_frame(0.0546875, 16000, 250) == 4);  // 3.5 frames
  CHECK(tts::time_to_frame(0.03, 16000, 250) == 2);       // 1.92 frames
  CHECK(tts::time_to_frame(-0.0078125, 16000, 250) == 0);
  CHECK(tts::time_to_frame(1.0, 22050, 256) == 86);  // 86.13
}

TEST_CASE("durations round boundaries, not lengths") {
  // Every length is 0.5, 1, 1 or 1.5 frames; rounding boundaries gives 0,2,0,2,
  // rounding lengths would give 0,1,1,2, rounding halves up 1,1,1,1.
  const auto tier = tier_of({{0, 0.0078125, "a"},
                             {0.0078125, 0.0234375, "b"},
                             {0.0234375, 0.0390625, "c"},
                             {0.0390625, 0.0625, "d"}});
  CHECK(tts::frame_durations(tier, 16000, 250, 4) == std::vector<std::int64_t>{0, 2, 0, 2});
}

TEST_CASE("the fixture's phone durations at 22050 Hz and hop 256") {
  const auto grid = tts::read_textgrid(kGrids / "the_cat_sat.long.TextGrid");
  const auto d = tts::frame_durations(*grid.tier("phones"), 22050, 256, 91);
  CHECK(d == std::vector<std::int64_t>{10, 4, 4, 8, 11, 8, 9, 15, 9, 13});
  CHECK(sum(d) == 91);
}

TEST_CASE("a longer mel adds its extra frames to the last interval") {
  const auto grid = tts::read_textgrid(kGrids / "the_cat_sat.long.TextGrid");
  const auto d = tts::frame_durations(*grid.tier("phones"), 22050, 256, 93);
  CHECK(d == std::vector<std::int64_t>{10, 4, 4, 8, 11, 8, 9, 15, 9, 15});
  CHECK(sum(d) == 93);
}

TEST_CASE("a shorter mel takes frames from the end without going negative") {
  const auto tier = phones_of({"a", "b", "c"});  // 0.1 s each: 10 frames at 100 per second
  CHECK(tts::frame_durations(tier, 1000, 10, 28) == std::vector<std::int64_t>{10, 10, 8});
  CHECK(tts::frame_durations(tier, 1000, 10, 17) == std::vector<std::int64_t>{10, 7, 0});
  CHECK(tts::frame_durations(tier, 1000, 10, 0) == std::vector<std::int64_t>{0, 0, 0});
}

TEST_CASE("a time beyond 2^53 frames is refused by name, not converted") {
  CHECK(tts::time_to_frame(3600.0, 22050, 256) == 310078);
  CHECK(error_of([] { tts::time_to_frame(1e119, 22050, 256); }).find("out of range") !=
        std::string::npos);
  CHECK(error_of([] { tts::time_to_frame(-1e30, 22050, 256); }).find("out of range") !=
        std::string::npos);
}

TEST_CASE("frame_durations rejects what it cannot honour") {
  CHECK(error_of([] { tts::frame_durations(tier_of({}), 22050, 256, 3); }).find("no intervals") !=
        std::string::npos);
  CHECK(tts::frame_durations(tier_of({}), 22050, 256, 0).empty());
  CHECK(error_of([] { tts::frame_durations(phones_of({"a"}), 22050, 256, -1); }).find("n_frames") !=
        std::string::npos);
  CHECK(error_of([] { tts::frame_durations(phones_of({"a"}), 22050, 0, 10); }).find("hop_length") !=
        std::string::npos);
}

// ---- alignment to G2P tokens ----------------------------------------------------

const tts::ProjectionOptions kArpabetTokens{.token_set = tts::PhoneSet::arpabet};

tts::TokenProjection project(const std::vector<std::string>& tokens, const tts::Tier& tier,
                             const std::vector<std::int64_t>& frames,
                             const tts::ProjectionOptions& options = kArpabetTokens) {
  return tts::project_durations(tokens, tier, frames, is_pause, options);
}

TEST_CASE("the phone table relates espeak-ng, ARPAbet and MFA's IPA") {
  using tts::PhoneSet;
  const auto cost = [](std::string_view a, PhoneSet sa, std::string_view b, PhoneSet sb) {
    return tts::phone_distance(tts::phone_features(a, sa), tts::phone_features(b, sb));
  };
  // The same sound in three notations, stress and variant marks ignored.
  CHECK(cost("DH", PhoneSet::arpabet, "D", PhoneSet::espeak) == 0.0);
  CHECK(cost("DH", PhoneSet::arpabet, "\xC3\xB0", PhoneSet::ipa) == 0.0);  // ð
  CHECK(cost("AH0", PhoneSet::arpabet, "@2", PhoneSet::espeak) == 0.0);    // ə
  CHECK(cost("AH1", PhoneSet::arpabet, "'V", PhoneSet::espeak) == 0.0);    // ʌ
  CHECK(cost("ER0", PhoneSet::arpabet, "3", PhoneSet::espeak) == 0.0);     // ɚ
  CHECK(cost("AY1", PhoneSet::arpabet, "aj", PhoneSet::ipa) == 0.0);
  CHECK(cost("G", PhoneSet::arpabet, "\xC9\xA1", PhoneSet::ipa) == 0.0);   // ɡ U+0261
  CHECK(cost("T", PhoneSet::arpabet, "t\xCA\xB0", PhoneSet::ipa) == 0.0);  // tʰ
  CHECK(cost("N", PhoneSet::espeak, "NG", PhoneSet::arpabet) == 0.0);      // ŋ, not n
  CHECK(cost("ow", PhoneSet::ipa, "oU#", PhoneSet::espeak) == 0.0);
  // Near sounds cost less than far ones; unrelated ones cost 1.
  const double schwa_for_full = cost("AH0", PhoneSet::arpabet, "I2", PhoneSet::espeak);
  const double glottal_for_t = cost("\xCA\x94", PhoneSet::ipa, "t", PhoneSet::espeak);  // ʔ
  CHECK(schwa_for_full > 0.0);
  CHECK(schwa_for_full < 0.5);
  CHECK(glottal_for_t < 0.5);
  CHECK(cost("S", PhoneSet::arpabet, "Z", PhoneSet::arpabet) <
        cost("S", PhoneSet::arpabet, "M", PhoneSet::arpabet));
  CHECK(cost("IY1", PhoneSet::arpabet, "k", PhoneSet::espeak) == 1.0);
  CHECK_FALSE(tts::phone_features(";#", PhoneSet::espeak).has_value());
  CHECK(tts::phone_distance(std::nullopt, tts::phone_features("k", PhoneSet::espeak)) == 1.0);
}

TEST_CASE("a grid's phone set is told from its labels") {
  CHECK(tts::guess_phone_set({"DH", "AH0", "K", "AE1", "T"}) == tts::PhoneSet::arpabet);
  CHECK(tts::guess_phone_set({"\xC3\xB0", "\xC9\x99", "k", "\xC3\xA6", "t"}) ==
        tts::PhoneSet::ipa);  // ð ə k æ t
  CHECK(tts::guess_phone_set({"D", "@", "k", "'a", "t"}) == tts::PhoneSet::espeak);
}

TEST_CASE("the fixture aligns to its G2P tokens with silences on the edges") {
  const auto grid = tts::read_textgrid(kGrids / "the_cat_sat.long.TextGrid");
  const auto& phones = *grid.tier("phones");
  const auto frames = tts::frame_durations(phones, 22050, 256, 91);
  const std::vector<std::string> tokens = {"DH", "AH", " ",  "K", "AE", "T",
                                           " ",  "S",  "AE", "T", "."};
  const auto a = project(tokens, phones, frames);
  REQUIRE_MESSAGE(a.ok, a.problem);
  // The leading silence joins the first token; the trailing one the final ".".
  CHECK(a.durations == std::vector<std::int64_t>{14, 4, 0, 8, 11, 8, 0, 9, 15, 9, 13});
  CHECK(sum(a.durations) == sum(frames));
  CHECK(a.match_score == 1.0);
  CHECK(a.exact_pairs == 7);    // AH0 is a schwa, the token AH a full vowel:
  CHECK(a.similar_pairs == 1);  // similar, and paired
}

TEST_CASE("a leading pause token takes the leading silence") {
  const auto tier = phones_of({"sil", "HH", "AY1"});
  const auto a = project({" ", "HH", "AY"}, tier, {5, 3, 7});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.durations == std::vector<std::int64_t>{5, 3, 7});
}

TEST_CASE("a silence between words goes to the pause token there") {
  const auto tier = phones_of({"K", "AE1", "T", "sp", "S", "AE1", "T"});
  const std::vector<std::string> tokens = {"K", "AE", "T", ",", " ", "S", "AE", "T"};
  const auto a = project(tokens, tier, {1, 2, 3, 4, 5, 6, 7});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.durations == std::vector<std::int64_t>{1, 2, 3, 4, 0, 5, 6, 7});
}

TEST_CASE("a silence where G2P put no pause goes to the previous token") {
  const auto tier = phones_of({"K", "AE1", "", "T", "", ""});
  const auto a = project({"K", "AE", "T", "."}, tier, {1, 2, 3, 4, 5, 6});
  REQUIRE_MESSAGE(a.ok, a.problem);
  // Both trailing silences go to "." (the pause token after the last phone).
  CHECK(a.durations == std::vector<std::int64_t>{1, 5, 4, 11});
  CHECK(sum(a.durations) == 21);
}

TEST_CASE("pause tokens without a silence keep zero frames, even at the end") {
  const auto tier = phones_of({"HH", "AY1"});
  const auto a = project({" ", "HH", "-", "AY", "!", " "}, tier, {3, 4});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.durations == std::vector<std::int64_t>{0, 3, 0, 4, 0, 0});
}

TEST_CASE("a phone that differs from its token is paired by similarity and scored") {
  // B for T: both stops, a few places apart: a similar pair, not a mismatch.
  const auto tier = phones_of({"", "K", "AE1", "B"});
  const auto a = project({"K", "AE", " ", "T"}, tier, {1, 2, 3, 4});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.durations == std::vector<std::int64_t>{3, 3, 0, 4});
  CHECK(a.exact_pairs == 2);
  CHECK(a.similar_pairs == 1);
  CHECK(a.match_score == 1.0);
  CHECK(a.interval_of_token == std::vector<std::int64_t>{1, 2, -1, 3});
}

TEST_CASE("a token the aligner has no phone for shares its neighbour's frames") {
  const auto tier = phones_of({"K", "AE1"});
  const auto a = project({"K", "AE", "T", "."}, tier, {1, 6});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.durations == std::vector<std::int64_t>{1, 3, 3, 0});
  CHECK(a.unpaired_tokens == 1);
  CHECK(a.match_score == doctest::Approx(2.0 / 3.0));
}

TEST_CASE("a phone no token stands for gives its frames to the token before it") {
  const auto tier = phones_of({"K", "AE1", "T"});
  const auto a = project({"K", "AE", "."}, tier, {1, 2, 3});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.durations == std::vector<std::int64_t>{1, 5, 0});
  CHECK(a.unpaired_phones == 1);
  CHECK(a.match_score == doctest::Approx(2.0 / 3.0));
}

TEST_CASE("an extra word in the G2P costs a few frames, not the clip") {
  // The aligner's dictionary drops "uh"; the phonemizer keeps it.
  const auto tier = phones_of({"sil", "HH", "AY1", "sp", "DH", "EH1", "R", "sil"});
  const std::vector<std::string> tokens = {"HH", "AY", " ", "AH", " ", "DH", "EH", "R", "."};
  const auto a = project(tokens, tier, {4, 3, 5, 2, 3, 6, 4, 5});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(sum(a.durations) == 32);
  CHECK(a.durations[0] == 7);  // the leading silence and HH
  CHECK(a.durations[5] == 3);  // DH
  CHECK(a.durations[8] == 5);  // the final silence
  CHECK(a.unpaired_tokens == 1);
  CHECK(a.match_score == doctest::Approx(5.0 / 6.0));
}

/// A words tier over phones_of's 0.1 s intervals: each word covers `count`
/// phones ("" for a silence).
tts::Tier words_of(const std::vector<std::pair<std::string, int>>& words) {
  tts::Tier tier{"words", {}};
  double t = 0;
  for (const auto& [word, count] : words) {
    tier.intervals.push_back({t, t + 0.1 * count, word});
    t += 0.1 * count;
  }
  return tier;
}

TEST_CASE("the words tier decides which word a token the aligner merged belongs to") {
  // The phonemizer has "an" + "knee" with two n's; the aligner heard one,
  // and its words tier says whose it is. Either way costs the same without
  // the words tier; with it, the n's frames stay in the aligner's word, and
  // the unpaired n shares frames within its own word.
  const std::vector<std::string> tokens = {"AH", "N", " ", "N", "IY", "."};
  const auto tier = phones_of({"AH0", "N", "IY1"});
  const std::vector<std::int64_t> frames = {2, 4, 6};
  const auto first_words = words_of({{"an", 2}, {"e", 1}});
  const auto second_words = words_of({{"a", 1}, {"knee", 2}});
  const auto a =
      tts::project_durations(tokens, tier, frames, is_pause, kArpabetTokens, &first_words);
  const auto b =
      tts::project_durations(tokens, tier, frames, is_pause, kArpabetTokens, &second_words);
  REQUIRE_MESSAGE(a.ok, a.problem);
  REQUIRE_MESSAGE(b.ok, b.problem);
  CHECK(a.durations == std::vector<std::int64_t>{2, 4, 0, 3, 3, 0});
  CHECK(b.durations == std::vector<std::int64_t>{1, 1, 0, 4, 6, 0});
  CHECK(a.unpaired_tokens == 1);
  CHECK(b.unpaired_tokens == 1);
  CHECK(a.match_score == b.match_score);
  // Without the words tier both grids give one of the two.
  const auto plain = project(tokens, tier, frames).durations;
  CHECK((plain == a.durations) != (plain == b.durations));
}

TEST_CASE("with a words tier, a phone the tokens lack keeps its frames in its word") {
  // "cat sat" where the phonemizer dropped the s: its frames go to the "a" of
  // "sat", not to the "t" of "cat" (which is where they go without words).
  const std::vector<std::string> tokens = {"K", "AE", "T", " ", "AE", "T", "."};
  const auto tier = phones_of({"K", "AE1", "T", "S", "AE1", "T"});
  const std::vector<std::int64_t> frames = {1, 2, 3, 4, 5, 6};
  const auto words = words_of({{"cat", 3}, {"sat", 3}});
  const auto with_words =
      tts::project_durations(tokens, tier, frames, is_pause, kArpabetTokens, &words);
  REQUIRE_MESSAGE(with_words.ok, with_words.problem);
  CHECK(with_words.durations == std::vector<std::int64_t>{1, 2, 3, 0, 9, 6, 0});
  CHECK(project(tokens, tier, frames).durations == std::vector<std::int64_t>{1, 2, 7, 0, 5, 6, 0});
}

TEST_CASE("spn gives its frames to the tokens of its word") {
  // MFA 1.x: an out-of-dictionary word is one `spn` interval.
  const auto tier = phones_of({"sil", "DH", "AH0", "spn", "sil"});
  const std::vector<std::string> tokens = {"DH", "AH", " ", "K", "AO", "R", "G", "IY", "."};
  const auto a = project(tokens, tier, {2, 3, 4, 11, 6});
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.durations == std::vector<std::int64_t>{5, 4, 0, 3, 2, 2, 2, 2, 6});
  CHECK(a.spoken_noise_tokens == 5);
  CHECK(a.match_score == 1.0);
}

TEST_CASE("espeak-ng's break between spelled letters is no phone, its glottal stop is one") {
  // "G N" spelled by espeak-ng: ";#" between the letters, in its grid and tokens.
  const auto tier = phones_of({"dZ", ",i:", ";#", ",E", "n", "?#"});
  const auto a = tts::project_durations({"dZ", ",i:", ";#", ",E", "n", "?#"}, tier,
                                        {2, 3, 1, 4, 5, 2}, is_pause);
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.grid_set == tts::PhoneSet::espeak);
  CHECK(a.phones == 5);
  CHECK(a.phone_tokens == 5);
  CHECK(a.exact_pairs == 5);
  CHECK(a.match_score == 1.0);
  CHECK(a.durations == std::vector<std::int64_t>{2, 3, 1, 4, 5, 2});
}

TEST_CASE("a grid that stops short of its audio on a phone gets a silence, not a longer phone") {
  const auto tier = tier_of({{0.0, 0.1, "K"}, {0.1, 0.2, "AE1"}});
  const auto filled = tts::with_trailing_silence(tier, 0.25);
  REQUIRE(filled.intervals.size() == 3);
  CHECK(filled.intervals[2].start == 0.2);
  CHECK(filled.intervals[2].end == 0.25);
  CHECK(tts::label_kind(filled.intervals[2].label) == tts::LabelKind::silence);
  // 0.25 s at 22050 Hz, hop 256: 22 frames; the phones keep their own.
  const auto frames = tts::frame_durations(filled, 22050, 256, 22);
  CHECK(frames == std::vector<std::int64_t>{9, 8, 5});
  const auto a = project({"K", "AE", "."}, filled, frames);
  CHECK(a.durations == std::vector<std::int64_t>{9, 8, 5});
  // Ending on a silence, or reaching the end: left as it is.
  CHECK(tts::with_trailing_silence(tier, 0.2).intervals.size() == 2);
  CHECK(tts::with_trailing_silence(phones_of({"K", ""}), 9.0).intervals.size() == 2);
}

TEST_CASE("silence frames with no tokens at all are a problem, and no frames are not") {
  const auto tier = phones_of({""});
  CHECK_FALSE(project({}, tier, {4}).ok);
  const auto empty = project({}, tier, {0});
  CHECK(empty.ok);
  CHECK(empty.durations.empty());
}

TEST_CASE("project_durations rejects frame counts that do not fit the tier") {
  const auto tier = phones_of({"K", "AE1"});
  CHECK(error_of([&] {
          project({"K", "AE"}, tier, {1});
        }).find("1 frame counts for the 2 intervals") != std::string::npos);
}

// ---- real aligner output, as REFERENCE.md describes it ------------------------

/// A long-format grid with tiers {name, [(xmin, xmax, text)]}, written the
/// way the named aligner writes it.
std::string long_grid(
    double xmax,
    const std::vector<std::pair<std::string, std::vector<std::tuple<double, double, std::string>>>>&
        tiers,
    const std::string& indent, const std::string& newline) {
  std::string out = "File type = \"ooTextFile\"" + newline + "Object class = \"TextGrid\"" +
                    newline + newline + "xmin = 0 " + newline + fmt::format("xmax = {} ", xmax) +
                    newline + "tiers? <exists> " + newline +
                    fmt::format("size = {} ", tiers.size()) + newline + "item []: " + newline;
  for (std::size_t t = 0; t < tiers.size(); ++t) {
    const auto& [name, intervals] = tiers[t];
    out += indent + fmt::format("item [{}]:", t + 1) + newline;
    const std::string in2 = indent + indent;
    out += in2 + "class = \"IntervalTier\" " + newline + in2 + "name = \"" + name + "\" " +
           newline + in2 + "xmin = 0 " + newline + in2 + fmt::format("xmax = {} ", xmax) + newline +
           in2 + fmt::format("intervals: size = {} ", intervals.size()) + newline;
    for (std::size_t i = 0; i < intervals.size(); ++i) {
      const auto& [a, b, text] = intervals[i];
      out += in2 + fmt::format("intervals [{}]:", i + 1) + newline;
      out += in2 + indent + fmt::format("xmin = {} ", a) + newline + in2 + indent +
             fmt::format("xmax = {} ", b) + newline + in2 + indent + "text = \"" + text + "\" " +
             newline;
    }
  }
  return out;
}

TEST_CASE("MFA 1.x ARPAbet output (tabs, sil/sp/spn, <unk>) projects onto espeak tokens") {
  // "the cat sat" + an out-of-dictionary word, 3-decimal times, words tier first.
  const auto text = long_grid(1.6,
                              {{"words",
                                {{0, 0.1, ""},
                                 {0.1, 0.3, "the"},
                                 {0.3, 0.6, "cat"},
                                 {0.6, 0.65, ""},
                                 {0.65, 0.95, "sat"},
                                 {0.95, 1.4, "<unk>"},
                                 {1.4, 1.6, ""}}},
                               {"phones",
                                {{0, 0.1, "sil"},
                                 {0.1, 0.16, "DH"},
                                 {0.16, 0.3, "AH0"},
                                 {0.3, 0.4, "K"},
                                 {0.4, 0.52, "AE1"},
                                 {0.52, 0.6, "T"},
                                 {0.6, 0.65, "sp"},
                                 {0.65, 0.75, "S"},
                                 {0.75, 0.87, "AE1"},
                                 {0.87, 0.95, "T"},
                                 {0.95, 1.4, "spn"},
                                 {1.4, 1.6, "sil"}}}},
                              "\t", "\n");
  const auto grid = tts::parse_textgrid(text, "LJ001-0001.TextGrid");
  const auto& phones = *grid.aligner_tier("phones");
  const auto frames = tts::frame_durations(phones, 22050, 256, 138);
  // espeak-ng's tokens for "the cat sat zorblax.": note its schwa "@" and "a" for AE.
  const std::vector<std::string> tokens = {"D", "@", " ",  "k", "'a", "t", " ", "s", "'a", "t",
                                           " ", "z", "'0", "b", "l",  "a", "k", "s", "."};
  const auto a = tts::project_durations(tokens, phones, frames, is_pause);
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.grid_set == tts::PhoneSet::arpabet);
  CHECK(a.exact_pairs == 8);
  CHECK(a.match_score == 1.0);
  CHECK(sum(a.durations) == 138);
  CHECK(a.durations[0] == frames[0] + frames[1]);  // sil + DH
  CHECK(a.durations[3] == frames[3]);              // k
  CHECK(a.durations[6] == frames[6]);              // sp -> the word boundary
  // spn (0.95..1.4 s) is spread over the seven tokens of the unknown word.
  std::int64_t word = 0;
  for (std::size_t t = 11; t < 18; ++t) word += a.durations[t];
  CHECK(word == frames[10]);
  CHECK(a.durations[18] == frames[11]);  // the final sil -> "."
}

TEST_CASE("MFA 2.x IPA output (\"\" silences, ɡ U+0261, tʰ, speaker tiers) projects too") {
  // english_mfa: "big dog", speaker-prefixed tier names, CRLF, float32-style times.
  const auto text = long_grid(
      1.0,
      {{"LJ - words", {{0, 0.2, ""}, {0.2, 0.45, "big"}, {0.45, 0.8, "dog"}, {0.8, 1.0, ""}}},
       {"LJ - phones",
        {{0, 0.2, ""},
         {0.2, 0.279999, "b"},
         {0.279999, 0.36, "\xC9\xAA"},  // ɪ
         {0.36, 0.45, "\xC9\xA1"},      // ɡ
         {0.45, 0.53, "d"},
         {0.53, 0.709999, "\xC9\x91\xCB\x90"},  // ɑː
         {0.709999, 0.8, "\xC9\xA1"},           // ɡ
         {0.8, 1.0, ""}}}},
      "    ", "\r\n");
  const auto grid = tts::parse_textgrid(text, "LJ002-0002.TextGrid");
  REQUIRE(grid.aligner_tier("phones") != nullptr);
  CHECK(grid.aligner_tier("phones")->name == "LJ - phones");
  const auto& phones = *grid.aligner_tier("phones");
  const auto frames = tts::frame_durations(phones, 22050, 256, 87);
  // espeak-ng: b 'I g \s d 'A: g . (en-us says "dAg" with a long A:)
  const std::vector<std::string> tokens = {"b", "'I", "g", " ", "d", "'A:", "g", "."};
  const auto a = tts::project_durations(tokens, phones, frames, is_pause);
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.grid_set == tts::PhoneSet::ipa);
  CHECK(a.exact_pairs == 6);
  CHECK(a.durations == std::vector<std::int64_t>{frames[0] + frames[1], frames[2], frames[3], 0,
                                                 frames[4], frames[5], frames[6], frames[7]});
}

TEST_CASE("a UTF-16 big-endian grid with a speaker tier name is read and projected") {
  const auto utf8 =
      long_grid(0.5, {{"spk1-phones", {{0, 0.1, "sil"}, {0.1, 0.3, "HH"}, {0.3, 0.5, "AY1"}}}},
                "    ", "\r\n");
  std::string bytes = "\xFE\xFF";  // big-endian byte-order mark
  for (const char c : utf8) {
    bytes += '\0';
    bytes += c;
  }
  const auto dir = fs::temp_directory_path() / fmt::format("kokoro-utf16-be-grid-{}", ::getpid());
  fs::create_directories(dir);
  const auto path = dir / "a.TextGrid";
  std::ofstream(path, std::ios::binary) << bytes;
  const auto grid = tts::read_textgrid(path);
  REQUIRE(grid.aligner_tier("phones") != nullptr);
  const auto& phones = *grid.aligner_tier("phones");
  const auto frames = tts::frame_durations(phones, 22050, 256, 44);
  const auto a = tts::project_durations({"h", "'aI", "."}, phones, frames, is_pause);
  REQUIRE_MESSAGE(a.ok, a.problem);
  CHECK(a.match_score == 1.0);
  CHECK(a.durations == std::vector<std::int64_t>{frames[0] + frames[1], frames[2], 0});
  fs::remove_all(dir);
}
