// English text normalisation for text-to-speech, run before grapheme-to-phoneme
// conversion: it spells out what a G2P front end cannot read (numbers, money,
// percentages, ordinals, years, clock times, Roman numerals, identifiers,
// common abbreviations, "&") the way LJSpeech's normalized column does, and
// collapses whitespace. Case and punctuation otherwise pass through unchanged,
// because punctuation carries the pauses and intonation the model learns.
// Written here because what it must match is LJSpeech's own reading (regnal
// numbers, labels said in pairs, house numbers digit by digit), a convention
// of that corpus that no packaged normaliser follows; the test data holds
// LJSpeech's lines to hold it to that.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kokoro::tts {

namespace detail::normalize {

inline constexpr std::array<std::string_view, 20> kOnes = {
    "zero",     "one",     "two",     "three",     "four",     "five",    "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",  "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
inline constexpr std::array<std::string_view, 10> kTens = {
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
inline constexpr std::array<std::string_view, 6> kScales = {"",        "thousand", "million",
                                                            "billion", "trillion", "quadrillion"};

/// Integers with more digits than this (10^18 and up) are read digit by digit:
/// nobody says "one quintillion" to a TTS system, and the value fits uint64_t.
inline constexpr std::size_t kMaxCardinalDigits = 18;

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
inline bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
inline char to_lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
inline char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

inline bool at(std::string_view s, std::size_t i, char c) { return i < s.size() && s[i] == c; }
inline bool digit_at(std::string_view s, std::size_t i) { return i < s.size() && is_digit(s[i]); }
inline bool alpha_at(std::string_view s, std::size_t i) { return i < s.size() && is_alpha(s[i]); }
inline bool alnum_at(std::string_view s, std::size_t i) { return i < s.size() && is_alnum(s[i]); }

/// True when s[i, i+n) are digits and no digit follows them.
inline bool exactly_digits(std::string_view s, std::size_t i, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) {
    if (!digit_at(s, i + k)) return false;
  }
  return !digit_at(s, i + n);
}

/// Whether position i begins a word, so that a "-" there is a minus sign and a
/// "." there a decimal point: at the start, after a space, an opening bracket
/// or quote, or a non-ASCII character (curly quotes, dashes).
inline bool starts_word(std::string_view s, std::size_t i) {
  if (i == 0) return true;
  const char p = s[i - 1];
  return p == ' ' || p == '(' || p == '[' || p == '{' || p == '"' || p == '\'' || p == '/' ||
         static_cast<unsigned char>(p) >= 0x80;
}

/// The word that ends just before s[i] (one space between), or "".
inline std::string_view word_before(std::string_view s, std::size_t i) {
  if (i < 2 || s[i - 1] != ' ') return {};
  std::size_t start = i - 1;
  while (start > 0 && alpha_at(s, start - 1)) --start;
  return s.substr(start, i - 1 - start);
}

/// Whether s[i] begins a sentence: the text's start, or after ". ", "! ", "? ".
inline bool sentence_start(std::string_view s, std::size_t i) {
  std::size_t k = i;
  while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '"' || s[k - 1] == '(')) --k;
  return k == 0 || s[k - 1] == '.' || s[k - 1] == '!' || s[k - 1] == '?';
}

inline bool equals_lower(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (to_lower(word[k]) != lower[k]) return false;
  }
  return true;
}

/// Typographic quotes as ASCII ones: U+201C-U+201F become '"', U+2018-U+201B
/// become "'", so that "Müller’s" has the apostrophe a front end knows.
inline std::string ascii_quotes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\xE2' && at(s, i + 1, '\x80') && i + 2 < s.size()) {
      const auto c = static_cast<unsigned char>(s[i + 2]);
      if (c >= 0x98 && c <= 0x9F) {
        out += c >= 0x9C ? '"' : '\'';
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

/// Every run of whitespace (ASCII or U+00A0 no-break space) becomes one space;
/// leading and trailing whitespace is dropped. The other ASCII control
/// characters (NUL, DEL and the rest, which no text means to be spoken) count
/// as whitespace: a NUL inside the text would end it early for the C front
/// ends and not for the C++ around them.
inline std::string collapse_whitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if ((c >= '\0' && c <= ' ') || c == '\x7F') {
      pending = true;
    } else if (c == '\xC2' && at(s, i + 1, '\xA0')) {
      pending = true;
      ++i;
    } else {
      if (pending && !out.empty()) out += ' ';
      pending = false;
      out += c;
    }
  }
  return out;
}

inline std::string below_thousand(unsigned n) {
  std::string out;
  if (n >= 100) {
    out += kOnes[n / 100];
    out += " hundred";
    n %= 100;
    if (n == 0) return out;
    out += ' ';
  }
  if (n < 20) {
    out += kOnes[n];
    return out;
  }
  out += kTens[n / 10];
  if (n % 10 != 0) {
    out += '-';
    out += kOnes[n % 10];
  }
  return out;
}

/// American style, without "and": 105 -> "one hundred five".
inline std::string cardinal(std::uint64_t n) {
  if (n == 0) return "zero";
  std::array<unsigned, kScales.size()> groups{};
  for (auto& g : groups) {
    g = static_cast<unsigned>(n % 1000);
    n /= 1000;
  }
  std::string out;
  for (std::size_t k = groups.size(); k-- > 0;) {
    if (groups[k] == 0) continue;
    if (!out.empty()) out += ' ';
    out += below_thousand(groups[k]);
    if (k > 0) {
      out += ' ';
      out += kScales[k];
    }
  }
  return out;
}

inline std::string digit_by_digit(std::string_view digits) {
  std::string out;
  for (const char d : digits) {
    if (!out.empty()) out += ' ';
    out += kOnes[d - '0'];
  }
  return out;
}

/// A digit string as words; one with a leading zero ("007") or too long for a
/// cardinal is read digit by digit, as people read codes and serial numbers.
/// Round hundreds from 1100 to 9900 are read in hundreds, as people say
/// them: "1,500" -> "fifteen hundred", "4500" -> "forty-five hundred".
inline std::string integer_words(std::string_view digits) {
  if ((digits.size() > 1 && digits[0] == '0') || digits.size() > kMaxCardinalDigits) {
    return digit_by_digit(digits);
  }
  std::uint64_t n = 0;
  for (const char d : digits) n = n * 10 + static_cast<std::uint64_t>(d - '0');
  if (n >= 1100 && n <= 9900 && n % 100 == 0 && n % 1000 != 0)
    return cardinal(n / 100) + " hundred";
  return cardinal(n);
}

/// Words that follow a bore written as a decimal (".22 caliber", ".38
/// revolver"), which is read as a whole number: "twenty-two caliber".
inline constexpr std::array<std::string_view, 14> kBoreWords = {
    "ammunition", "automatic", "bullet", "bullets", "caliber",  "calibre", "cartridge",
    "cartridges", "gun",       "magnum", "pistol",  "revolver", "rifle",   "special"};

/// Whether the word after s[i] (one space or hyphen between) is one of
/// `words`.
template <std::size_t N>
inline bool word_after_is(std::string_view s, std::size_t i,
                          const std::array<std::string_view, N>& words) {
  if (!at(s, i, ' ') && !at(s, i, '-')) return false;
  std::size_t end = i + 1;
  while (alpha_at(s, end)) ++end;
  const std::string_view next = s.substr(i + 1, end - i - 1);
  for (const auto w : words) {
    if (equals_lower(next, w)) return true;
  }
  return false;
}

inline std::size_t last_word_start(const std::string& words) {
  const auto cut = words.find_last_of(" -");
  return cut == std::string::npos ? 0 : cut + 1;
}

/// "twenty-one" -> "twenty-first": only the last word changes.
inline std::string ordinal(std::string words) {
  static constexpr std::array<std::array<std::string_view, 2>, 7> kIrregular = {
      {{"one", "first"},
       {"two", "second"},
       {"three", "third"},
       {"five", "fifth"},
       {"eight", "eighth"},
       {"nine", "ninth"},
       {"twelve", "twelfth"}}};
  const std::size_t start = last_word_start(words);
  const std::string_view last = std::string_view(words).substr(start);
  for (const auto& [cardinal_word, ordinal_word] : kIrregular) {
    if (last == cardinal_word) return words.substr(0, start) + std::string(ordinal_word);
  }
  if (words.back() == 'y') return words.substr(0, words.size() - 1) + "ieth";
  return words + "th";
}

/// "nineteen eighty" -> "nineteen eighties" (decades: "1980s", "the 90s").
inline std::string plural(std::string words) {
  if (words.back() == 'y') return words.substr(0, words.size() - 1) + "ies";
  if (words.back() == 'x') return words + "es";
  return words + "s";
}

inline bool reads_as_year(unsigned n) {
  return (n >= 1100 && n <= 1999) || (n >= 2010 && n <= 2099);
}

/// 1984 -> "nineteen eighty-four", 1905 -> "nineteen oh five", 1900 ->
/// "nineteen hundred", 2015 -> "twenty fifteen".
inline std::string year_words(unsigned year) {
  const unsigned high = year / 100, low = year % 100;
  std::string out = cardinal(high);
  if (low == 0) return out + " hundred";
  if (low < 10) return out + " oh " + std::string(kOnes[low]);
  return out + " " + cardinal(low);
}

/// "B.C.", "A.D.", "BC" or "AD" after a number (one optional space between).
inline bool era_at(std::string_view s, std::size_t i) {
  if (at(s, i, ' ')) ++i;
  for (const std::string_view era : {"B.C.", "A.D.", "BC", "AD", "B.C", "A.D"}) {
    if (s.substr(i, era.size()) == era && !alpha_at(s, i + era.size())) return true;
  }
  return false;
}

/// Whether a three-digit number at s[start, end) is a year by its context:
/// after "in" or "year" ("in 606,", "in the year 562"), unless a plural noun
/// follows ("in 300 cases"), which the lowercase word ending in "s" stands for.
inline bool three_digit_year_context(std::string_view s, std::size_t start, std::size_t end) {
  const std::string_view before = word_before(s, start);
  if (!equals_lower(before, "in") && !equals_lower(before, "year")) return false;
  if (!at(s, end, ' ') || !alpha_at(s, end + 1) || is_upper(s[end + 1])) return true;
  std::size_t k = end + 1;
  while (alpha_at(s, k)) ++k;
  return s[k - 1] != 's';
}

/// A number as written: the integer digits without thousands separators, and
/// the digits after the decimal point.
struct Number {
  std::string integer;   ///< empty for ".5"
  std::string fraction;  ///< empty when there is no decimal point
  bool grouped = false;  ///< written with thousands separators
  std::size_t end = 0;   ///< one past its last character
};

/// The number starting at s[i] (a digit, or "." before a digit). A comma is a
/// thousands separator only after a first group of 1-3 digits and before
/// exactly three digits, so "1,2" and "1984, 20" keep their commas.
inline Number scan_number(std::string_view s, std::size_t i) {
  Number n;
  std::size_t j = i;
  while (digit_at(s, j)) ++j;
  n.integer = std::string(s.substr(i, j - i));
  if (!n.integer.empty() && n.integer.size() <= 3) {
    while (at(s, j, ',') && exactly_digits(s, j + 1, 3)) {
      n.integer.append(s.substr(j + 1, 3));
      n.grouped = true;
      j += 4;
    }
  }
  if (at(s, j, '.') && digit_at(s, j + 1)) {
    const std::size_t k = ++j;
    while (digit_at(s, j)) ++j;
    n.fraction = std::string(s.substr(k, j - k));
  }
  n.end = j;
  return n;
}

inline std::string number_words(const Number& n) {
  std::string out = n.integer.empty() ? std::string() : integer_words(n.integer);
  if (!n.fraction.empty()) {
    if (!out.empty()) out += ' ';
    out += "point " + digit_by_digit(n.fraction);
  }
  return out;
}

/// Words replacing s[start, end).
struct Reading {
  std::string words;
  std::size_t end = 0;
};

/// "am", "pm", "a.m.", "PM" after a clock time (one optional space between).
inline bool am_pm_at(std::string_view s, std::size_t i) {
  if (at(s, i, ' ')) ++i;
  if (i >= s.size()) return false;
  const char c = to_lower(s[i]);
  if (c != 'a' && c != 'p') return false;
  ++i;
  if (at(s, i, '.')) ++i;
  return i < s.size() && to_lower(s[i]) == 'm' && !alpha_at(s, i + 1);
}

/// "3:05" -> "three oh five", "3:30" -> "three thirty", "3:00" -> "three
/// o'clock" ("three" before am/pm), "14:00" -> "fourteen hundred".
inline std::string clock_words(unsigned hour, unsigned minute, bool before_am_pm) {
  std::string out = cardinal(hour);
  if (minute == 0) {
    if (hour == 0 || hour > 12) return out + " hundred";
    return before_am_pm ? out : out + " o'clock";
  }
  if (minute < 10) return out + " oh " + std::string(kOnes[minute]);
  return out + " " + cardinal(minute);
}

/// The run of characters other than spaces that ends just before s[i] (one
/// space between), or "": "No." in "No. 5", "P.S." in "P.S. 117".
inline std::string_view token_before(std::string_view s, std::size_t i) {
  if (i < 2 || s[i - 1] != ' ') return {};
  std::size_t start = i - 1;
  while (start > 0 && s[start - 1] != ' ') --start;
  return s.substr(start, i - 1 - start);
}

/// Words (and tokens) after which a number is a label, said in pairs as
/// LJSpeech's reader says them: "Exhibit No. 133" -> "one thirty-three",
/// "page 249" -> "two forty-nine".
inline constexpr std::array<std::string_view, 9> kLabelWords = {
    "exhibit", "exhibits", "frame", "frames", "no.", "number", "p.s.", "page", "pages"};

/// Street names' last words, by which a number before them is a house number.
inline constexpr std::array<std::string_view, 17> kStreetWords = {
    "Avenue", "Ave.",       "Boulevard", "Blvd.",  "Circle",  "Court",
    "Drive",  "Expressway", "Freeway",   "Lane",   "Parkway", "Place",
    "Road",   "Rd.",        "Square",    "Street", "Way"};

/// Whether a house number ends at s[e]: a street name follows, either up to
/// three capitalised words and a street word ("544 Camp Street"), or a
/// compass point and a capitalised word ("1026 North Beckley").
inline bool street_follows(std::string_view s, std::size_t e) {
  std::size_t k = e;
  for (int words = 0; words < 4; ++words) {
    if (!at(s, k, ' ') || k + 1 >= s.size() || !is_upper(s[k + 1])) return false;
    std::size_t end = k + 1;
    while (alpha_at(s, end) || at(s, end, '.')) ++end;
    const std::string_view word = s.substr(k + 1, end - k - 1);
    for (const auto street : kStreetWords) {
      // "Street." ends a sentence; "St." and "Ave." keep their period.
      if (word == street || (word.ends_with('.') && word.substr(0, word.size() - 1) == street))
        return words > 0;
    }
    if (words == 0) {
      for (const std::string_view compass : {"North", "South", "East", "West"}) {
        if (word == compass) return at(s, end, ' ') && end + 1 < s.size() && is_upper(s[end + 1]);
      }
    }
    k = end;
  }
  return false;
}

/// Three or four digits in pairs, the way years are said ("133" -> "one
/// thirty-three", "1026" -> "ten twenty-six"); round hundreds and thousands
/// as cardinals.
inline std::string pairs_words(unsigned value) {
  if (value % 1000 == 0 || (value < 1000 && value % 100 == 0)) return cardinal(value);
  return year_words(value);
}

/// A house number: three digits one by one with 0 as "oh" ("602" -> "six oh
/// two"), four in pairs, round hundreds and shorter ones as cardinals.
inline std::string house_number_words(std::string_view digits) {
  const auto value = static_cast<unsigned>(std::stoul(std::string(digits)));
  if (digits.size() == 4) return pairs_words(value);
  if (digits.size() != 3 || value % 100 == 0) return cardinal(value);
  std::string out;
  for (const char d : digits) {
    if (!out.empty()) out += ' ';
    out += d == '0' ? "oh" : kOnes[d - '0'];
  }
  return out;
}

/// How a number of `digits` at s[start, end) that names something is said,
/// by what is around it; nothing for a number that counts.
/// - after "Box": digit by digit ("Box 2915" -> "two nine one five");
/// - after a label word (kLabelWords): three or four digits in pairs,
///   five or more digit by digit ("No. 2,202,130,462");
/// - before a street name: a house number.
inline std::optional<std::string> label_reading(std::string_view s, std::size_t start,
                                                std::size_t end, const std::string& digits) {
  if (digits.size() > kMaxCardinalDigits) return std::nullopt;
  const std::string_view before = token_before(s, start);
  if (equals_lower(before, "box")) return digit_by_digit(digits);
  bool label = false;
  for (const auto w : kLabelWords) label = label || equals_lower(before, w);
  if (label && digits.size() >= 5) return digit_by_digit(digits);
  if (label && digits.size() >= 3 && digits[0] != '0') {
    return pairs_words(static_cast<unsigned>(std::stoul(digits)));
  }
  if (digits.size() <= 4 && street_follows(s, end)) return house_number_words(digits);
  return std::nullopt;
}

/// A serial number at s[i]: one to three capitals glued to three or more
/// digits, spelled and read digit by digit ("C2766" -> "C two seven six six",
/// "VC836" -> "V C eight three six").
inline std::optional<Reading> read_serial(std::string_view s, std::size_t i) {
  if (!is_upper(s[i]) || (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.'))) return std::nullopt;
  std::size_t j = i;
  while (j < s.size() && is_upper(s[j]) && j - i < 4) ++j;
  if (j - i > 3 || !digit_at(s, j)) return std::nullopt;
  std::size_t k = j;
  while (digit_at(s, k)) ++k;
  if (k - j < 3 || alnum_at(s, k) || (at(s, k, '.') && digit_at(s, k + 1))) return std::nullopt;
  std::string words;
  for (std::size_t c = i; c < j; ++c) {
    words += s[c];
    words += ' ';
  }
  return Reading{words + digit_by_digit(s.substr(j, k - j)), k};
}

/// A number starting at s[i], with its sign and what it is glued to: a clock
/// time, a percentage, an ordinal suffix, a plural "s", or a year.
inline std::optional<Reading> read_number(std::string_view s, std::size_t i) {
  const std::size_t start = i;
  const bool negative = s[i] == '-' && starts_word(s, i);
  if (negative) ++i;
  const bool point_first = at(s, i, '.') && digit_at(s, i + 1) && (negative || starts_word(s, i));
  if (!digit_at(s, i) && !point_first) return std::nullopt;

  const Number n = scan_number(s, i);
  const std::size_t e = n.end;
  const std::string sign = negative ? "minus " : "";
  const bool integer_only = n.fraction.empty() && !n.integer.empty();

  if (!negative && integer_only && !n.grouped && n.integer.size() <= 2 && at(s, e, ':') &&
      exactly_digits(s, e + 1, 2)) {
    const auto hour = static_cast<unsigned>(std::stoul(n.integer));
    const auto minute = static_cast<unsigned>(std::stoul(std::string(s.substr(e + 1, 2))));
    if (hour <= 23 && minute <= 59) {
      return Reading{clock_words(hour, minute, am_pm_at(s, e + 3)), e + 3};
    }
  }
  if (at(s, e, '%')) return Reading{sign + number_words(n) + " percent", e + 1};
  if (!negative && n.integer.empty() && (n.fraction.size() == 2 || n.fraction.size() == 3) &&
      word_after_is(s, e, kBoreWords)) {
    const auto bore = static_cast<unsigned>(std::stoul(n.fraction));
    return Reading{n.fraction.size() == 3 ? year_words(bore) : integer_words(n.fraction), e};
  }
  if (!integer_only) return Reading{sign + number_words(n), e};

  if (e + 1 < s.size() && !alnum_at(s, e + 2)) {
    const std::string suffix{to_lower(s[e]), to_lower(s[e + 1])};
    if (suffix == "st" || suffix == "nd" || suffix == "rd" || suffix == "th") {
      return Reading{sign + ordinal(integer_words(n.integer)), e + 2};
    }
  }
  const bool glued_before = start > 0 && is_alpha(s[start - 1]);
  if (!negative && !glued_before) {
    if (auto label = label_reading(s, start, e, n.integer);
        label && (!n.grouped || n.integer.size() >= 5)) {
      return Reading{std::move(*label), e};
    }
  }
  const auto value = n.integer.size() <= 4 ? std::stoul(n.integer) : 0ul;
  // Years: four digits in the usual range, or three or four before an era
  // ("275 B.C." -> "two seventy-five B.C.") or in a year's place ("in 606").
  const bool year = !negative && !n.grouped && !glued_before && !at(s, start, '0') &&
                    ((n.integer.size() == 4 && reads_as_year(static_cast<unsigned>(value))) ||
                     (n.integer.size() >= 3 && n.integer.size() <= 4 && era_at(s, e)) ||
                     (n.integer.size() == 3 && three_digit_year_context(s, start, e)));
  const std::string words =
      year ? year_words(static_cast<unsigned>(value)) : integer_words(n.integer);
  if (at(s, e, 's') && !alnum_at(s, e + 1)) return Reading{sign + plural(words), e + 1};
  return Reading{sign + words, e};
}

struct Currency {
  std::string_view symbol, one, many, minor_one, minor_many;
};

inline constexpr std::array<Currency, 3> kCurrencies = {{
    {"$", "dollar", "dollars", "cent", "cents"},
    {"\xC2\xA3", "pound", "pounds", "penny", "pence"},   // £
    {"\xE2\x82\xAC", "euro", "euros", "cent", "cents"},  // €
}};

/// "thousand", "million", "billion" or "trillion" (any case) at s[i], as a
/// whole word: its length, or 0.
inline std::size_t scale_word_at(std::string_view s, std::size_t i) {
  for (std::size_t k = 1; k < kScales.size() - 1; ++k) {
    const std::string_view word = kScales[k];
    if (i + word.size() > s.size() || alpha_at(s, i + word.size())) continue;
    bool same = true;
    for (std::size_t c = 0; c < word.size() && same; ++c) same = to_lower(s[i + c]) == word[c];
    if (same) return word.size();
  }
  return 0;
}

/// An amount of money at s[i]: an optional minus, a currency sign, a number,
/// and an optional scale word ("$2 million" -> "two million dollars").
inline std::optional<Reading> read_currency(std::string_view s, std::size_t i) {
  const bool negative = s[i] == '-' && starts_word(s, i);
  if (negative) ++i;
  for (const Currency& c : kCurrencies) {
    if (s.substr(i, c.symbol.size()) != c.symbol) continue;
    const std::size_t j = i + c.symbol.size();
    if (!digit_at(s, j) && !(at(s, j, '.') && digit_at(s, j + 1))) return std::nullopt;
    const Number n = scan_number(s, j);
    const std::string sign = negative ? "minus " : "";

    const std::size_t word = at(s, n.end, ' ') ? n.end + 1 : n.end;
    if (const std::size_t len = scale_word_at(s, word); len > 0) {
      return Reading{sign + number_words(n) + " " + std::string(s.substr(word, len)) + " " +
                         std::string(c.many),
                     word + len};
    }
    if (n.fraction.size() > 2)
      return Reading{sign + number_words(n) + " " + std::string(c.many), n.end};

    const std::string major = n.integer.empty() ? "0" : n.integer;
    const unsigned minor = n.fraction.empty()
                               ? 0u
                               : static_cast<unsigned>(std::stoul((n.fraction + "0").substr(0, 2)));
    std::string words;
    if (major.find_first_not_of('0') != std::string::npos || minor == 0) {
      words = integer_words(major) + " " + std::string(major == "1" ? c.one : c.many);
    }
    if (minor > 0) {
      if (!words.empty()) words += ", ";
      words += cardinal(minor) + " " + std::string(minor == 1 ? c.minor_one : c.minor_many);
    }
    return Reading{sign + words, n.end};
  }
  return std::nullopt;
}

enum class AbbreviationKind {
  kTitle,     ///< precedes a name: the period is dropped
  kTrailing,  ///< follows a name or list: the period stays where it ends a sentence
  kNumber,    ///< "No." only before a number
  kSaint,     ///< "St.": "Saint" before a capitalised word, "Street" otherwise
};

struct Abbreviation {
  std::string_view written;    ///< lower case, without the period
  std::string_view expansion;  ///< lower case
  AbbreviationKind kind;
  bool capitalised_only;  ///< "rev." or "hon." in lower case are words, not titles
};

inline constexpr std::array<Abbreviation, 20> kAbbreviations = {{
    {"mr", "mister", AbbreviationKind::kTitle, true},
    {"mrs", "missus", AbbreviationKind::kTitle, true},
    {"ms", "miz", AbbreviationKind::kTitle, true},
    {"dr", "doctor", AbbreviationKind::kTitle, true},
    {"st", "saint", AbbreviationKind::kSaint, true},
    {"jr", "junior", AbbreviationKind::kTrailing, true},
    {"sr", "senior", AbbreviationKind::kTrailing, true},
    {"co", "company", AbbreviationKind::kTrailing, true},
    {"ltd", "limited", AbbreviationKind::kTrailing, true},
    {"gen", "general", AbbreviationKind::kTitle, true},
    {"col", "colonel", AbbreviationKind::kTitle, true},
    {"capt", "captain", AbbreviationKind::kTitle, true},
    {"lt", "lieutenant", AbbreviationKind::kTitle, true},
    {"sgt", "sergeant", AbbreviationKind::kTitle, true},
    {"rev", "reverend", AbbreviationKind::kTitle, true},
    {"hon", "honorable", AbbreviationKind::kTitle, true},
    {"prof", "professor", AbbreviationKind::kTitle, true},
    {"vs", "versus", AbbreviationKind::kTitle, false},
    {"etc", "et cetera", AbbreviationKind::kTrailing, false},
    {"no", "number", AbbreviationKind::kNumber, false},
}};

/// The abbreviation written at s[i] (letters then "."), if s[i] starts a word.
inline const Abbreviation* abbreviation_at(std::string_view s, std::size_t i) {
  if (!alpha_at(s, i) || (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.'))) return nullptr;
  std::size_t j = i;
  while (alpha_at(s, j)) ++j;
  if (!at(s, j, '.') || alpha_at(s, j + 1)) return nullptr;  // "Co.uk" is no abbreviation
  const std::string_view word = s.substr(i, j - i);
  for (const Abbreviation& a : kAbbreviations) {
    if (word.size() != a.written.size() || (a.capitalised_only && !is_upper(word[0]))) continue;
    bool same = true;
    for (std::size_t k = 0; k < word.size() && same; ++k) same = to_lower(word[k]) == a.written[k];
    if (same) return &a;
  }
  return nullptr;
}

/// The expansion in the case the abbreviation was written in: "MR." ->
/// "MISTER", "Etc." -> "Et cetera", "etc." -> "et cetera".
inline std::string with_case_of(std::string_view written, std::string_view expansion) {
  std::string out(expansion);
  bool all_upper = written.size() > 1;
  for (const char c : written) all_upper = all_upper && is_upper(c);
  if (all_upper) {
    for (char& c : out) c = to_upper(c);
  } else if (is_upper(written[0])) {
    out[0] = to_upper(out[0]);
  }
  return out;
}

inline std::optional<Reading> read_abbreviation(std::string_view s, std::size_t i) {
  const Abbreviation* a = abbreviation_at(s, i);
  if (a == nullptr) return std::nullopt;
  const std::size_t after = i + a->written.size() + 1;  // past the period
  const std::size_t next_word = at(s, after, ' ') ? after + 1 : after;
  const bool capital_follows = at(s, after, ' ') && next_word < s.size() && is_upper(s[next_word]);
  if (digit_at(s, after) && a->kind != AbbreviationKind::kNumber) return std::nullopt;

  std::string_view expansion = a->expansion;
  auto kind = a->kind;
  if (kind == AbbreviationKind::kNumber && !digit_at(s, next_word) &&
      !(next_word < s.size() && read_serial(s, next_word))) {
    return std::nullopt;
  }
  if (kind == AbbreviationKind::kSaint) {
    if (!capital_follows) {
      expansion = "street";
      kind = AbbreviationKind::kTrailing;
    }
  }
  // The period doubles as a full stop at the end of the text, and after a
  // trailing abbreviation followed by a capitalised word that is not itself an
  // abbreviation ("Smith & Co. Then ..." but "Smith Co. Ltd.").
  const bool ends_sentence =
      after == s.size() || (kind == AbbreviationKind::kTrailing && capital_follows &&
                            abbreviation_at(s, next_word) == nullptr);
  std::string words = with_case_of(s.substr(i, a->written.size()), expansion);
  if (ends_sentence) words += '.';
  return Reading{std::move(words), after};
}

/// The value (1-3999) of a Roman numeral written in capitals in canonical
/// form ("IV", "XIX", "MCMXC"; not "IIII" or "IC"), or 0.
inline unsigned roman_value(std::string_view word) {
  static constexpr std::array<std::pair<std::string_view, unsigned>, 13> kParts = {{{"M", 1000},
                                                                                    {"CM", 900},
                                                                                    {"D", 500},
                                                                                    {"CD", 400},
                                                                                    {"C", 100},
                                                                                    {"XC", 90},
                                                                                    {"L", 50},
                                                                                    {"XL", 40},
                                                                                    {"X", 10},
                                                                                    {"IX", 9},
                                                                                    {"V", 5},
                                                                                    {"IV", 4},
                                                                                    {"I", 1}}};
  if (word.empty() || word.size() > 15) return 0;
  // Read greedily, then accept only if writing the value back gives the word.
  unsigned value = 0;
  std::size_t at_char = 0;
  for (const auto& [part, worth] : kParts) {
    while (word.substr(at_char, part.size()) == part) {
      value += worth;
      at_char += part.size();
    }
  }
  if (at_char != word.size() || value == 0 || value > 3999) return 0;
  std::string canonical;
  unsigned rest = value;
  for (const auto& [part, worth] : kParts) {
    while (rest >= worth) {
      canonical += part;
      rest -= worth;
    }
  }
  return canonical == word ? value : 0;
}

/// Words after which a Roman numeral counts: "chapter IV" -> "chapter four",
/// "World War II" -> "World War two".
inline constexpr std::array<std::string_view, 22> kCountingWords = {
    "act",      "appendix", "article", "book",  "chap",   "chapter", "class", "exhibit",
    "figure",   "grade",    "level",   "no",    "number", "part",    "phase", "plate",
    "schedule", "scene",    "section", "title", "volume", "war"};

/// Names that take a regnal number: "George III." -> "George the third".
/// A single-letter numeral (I, V, X) is read so only after one of these,
/// since after other words it is more often an initial or the pronoun.
inline constexpr std::array<std::string_view, 62> kRegnalNames = {
    "Alexander",      "Alfonso",   "Amenhotep",   "Anne",        "Antiochus", "Artaxerxes",
    "Benedict",       "Boniface",  "Cambyses",    "Casimir",     "Catherine", "Charles",
    "Christian",      "Clement",   "Constantine", "Cyrus",       "Darius",    "David",
    "Edward",         "Elizabeth", "Esarhaddon",  "Ferdinand",   "Francis",   "Frederick",
    "George",         "Gregory",   "Gustavus",    "Henry",       "Innocent",  "Isabella",
    "Ivan",           "James",     "John",        "Joseph",      "Julius",    "Leo",
    "Leopold",        "Louis",     "Ludwig",      "Malcolm",     "Mary",      "Napoleon",
    "Nebuchadnezzar", "Nicholas",  "Otto",        "Paul",        "Peter",     "Philip",
    "Pius",           "Ptolemy",   "Rameses",     "Ramesses",    "Richard",   "Robert",
    "Sargon",         "Seleucus",  "Sennacherib", "Shalmaneser", "Thothmes",  "Victoria",
    "Wilhelm",        "William"};

/// A Roman numeral at s[i], read by the word before it: a count after a
/// counting word ("chapter IV" -> "chapter four"), a regnal number after a
/// name ("George III." -> "George the third"). A single letter followed by a
/// capitalised word is an initial and stays ("Robert I. Bouck"). The period
/// after a regnal number is dropped unless it also ends a sentence (the end
/// of the text, or a capitalised word after it).
inline std::optional<Reading> read_roman(std::string_view s, std::size_t i) {
  if (!is_upper(s[i]) || (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.'))) return std::nullopt;
  std::size_t j = i;
  while (j < s.size() && std::string_view("IVXLCDM").find(s[j]) != std::string_view::npos) ++j;
  if (j == i || alnum_at(s, j) || at(s, j, '\'')) return std::nullopt;
  const unsigned value = roman_value(s.substr(i, j - i));
  if (value == 0) return std::nullopt;
  const std::string_view before = word_before(s, i);
  if (before.empty()) return std::nullopt;

  const bool dot = at(s, j, '.');
  const std::size_t after = dot ? j + 1 : j;
  const bool capital_follows = at(s, after, ' ') && after + 1 < s.size() && is_upper(s[after + 1]);
  const bool single = j - i == 1;
  bool counting = false;
  for (const auto w : kCountingWords) counting = counting || equals_lower(before, w);
  if (counting) {
    if (single && s[i] != 'I' && s[i] != 'V' && s[i] != 'X') return std::nullopt;
    return Reading{cardinal(value), j};  // the period, if any, stays
  }
  if (value > 39 || !is_upper(before[0])) return std::nullopt;
  bool name = false;
  for (const auto n : kRegnalNames) name = name || before == n;
  if (single && (!name || capital_follows)) return std::nullopt;
  if (!single && !name && sentence_start(s, i - 1 - before.size())) return std::nullopt;
  std::string words = "the " + ordinal(cardinal(value));
  if (dot && (after == s.size() || capital_follows)) words += '.';
  return Reading{std::move(words), after};
}

}  // namespace detail::normalize

/// Which readings normalize_english applies; whitespace is always collapsed
/// and "&" always read.
struct NormalizeOptions {
  bool numbers = true;        ///< digits, money, percentages, Roman numerals
  bool abbreviations = true;  ///< "Mr." -> "Mister" and the rest of the table
};

/// English text ready for grapheme-to-phoneme conversion, read the way
/// LJSpeech's normalized column reads its text. What changes:
///
/// - Whitespace: every run (including U+00A0, and control characters) becomes
///   one space; ends trimmed.
///   Typographic quotes become ASCII ones (U+201C/D '"', U+2018/9 "'").
/// - Cardinals, American style without "and": "105" -> "one hundred five",
///   "1,000,000" -> "one million", up to 18 digits (quadrillions). Commas are
///   thousands separators only between groups of exactly three digits. Round
///   hundreds from 1100 to 9900 are said in hundreds: "£1400" -> "fourteen
///   hundred pounds", "1,300" -> "thirteen hundred". Integers with a leading
///   zero ("007") or more than 18 digits are read digit by digit. "-5" is
///   "minus five" only where the "-" starts a word ("5-6" keeps its hyphen:
///   "five-six").
/// - Decimals: "3.14" -> "three point one four", ".5" -> "point five"; a
///   bore before a gun word is a whole number: ".22 caliber" -> "twenty-two
///   caliber", ".38-caliber", ".357 magnum" -> "three fifty-seven magnum".
/// - Ordinals: digits + st/nd/rd/th in any case -> "first", "twenty-second",
///   "one hundred third", "eleventh"; the suffix is not checked against the
///   number ("1th" -> "first").
/// - Years: a standalone four-digit integer in 1100-1999 or 2010-2099 (no sign,
///   separators, decimals, currency or letter directly before it) is read as a
///   year: "1984" -> "nineteen eighty-four", "1905" -> "nineteen oh five",
///   "1900" -> "nineteen hundred", "2015" -> "twenty fifteen"; 2000-2009 read as
///   cardinals ("two thousand five"). Any such number is taken for a year, even
///   a count ("1984 people"): in read speech years are the common case. Three
///   or four digits before an era are a year too ("275 B.C." -> "two
///   seventy-five B.C."), and three after "in" or "year" unless a lowercase
///   word ending in "s" follows ("in 606," -> "in six oh six,"; "in 300 cases"
///   counts).
/// - Decades and plural numbers: "1980s" -> "nineteen eighties", "90s" ->
///   "nineties". "1980's" keeps its "'s" ("nineteen eighty's"), which sounds the
///   same and stays right for a possessive.
/// - Numbers that name things: after "Box", digit by digit ("Box 2915" ->
///   "Box two nine one five"); after No., Number, Exhibit, page, frame or
///   P.S., three or four digits in pairs ("Exhibit No. 133-B" -> "Exhibit
///   Number one thirty-three-B", "page 249" -> "page two forty-nine") and five
///   or more digit by digit; before a street name, a house number ("544 Camp
///   Street" -> "five four four", "602" -> "six oh two", "1026 North Beckley"
///   -> "ten twenty-six"). One to three capitals glued to three or more
///   digits are a serial number: "C2766" -> "C two seven six six", "VC836" ->
///   "V C eight three six".
/// - Clock times H:MM (hour 0-23, minute 00-59): "3:05" -> "three oh five",
///   "10:30" -> "ten thirty", "3:00" -> "three o'clock" (just "three" before
///   am/pm), "14:00" -> "fourteen hundred".
/// - Money: "$3.50" -> "three dollars, fifty cents", "$1" -> "one dollar",
///   "$0.99" -> "ninety-nine cents", "£5" -> "five pounds", "£0.01" -> "one
///   penny", "€2" -> "two euros", "-$5" -> "minus five dollars". A scale word
///   after the amount moves the unit after it: "$2 million" -> "two million
///   dollars", "$2.5 billion" -> "two point five billion dollars". More than two
///   decimals are read as a decimal: "$1.005" -> "one point zero zero five
///   dollars".
/// - Percent: "5%" -> "five percent", "-2.5%" -> "minus two point five percent".
/// - Roman numerals (canonical, in capitals): after a counting word (chapter,
///   part, act, volume, war, ... in any case) a cardinal ("chapter IV" ->
///   "chapter four", "World War II" -> "World War two"); after a capitalised
///   name a regnal number ("George III." -> "George the third", "Louis XIV"
///   -> "Louis the fourteenth"), its period dropped unless it also ends a
///   sentence. A single-letter numeral (I, V, X) is regnal only after a name
///   of kRegnalNames and when no capitalised word follows, so initials stay
///   ("Robert I. Bouck", "Forrest V. Sorrels") and so does the pronoun.
/// - Abbreviations with their period, at the start of a word: Mr. Mrs. Ms. Dr.
///   Jr. Sr. Co. Ltd. Gen. Col. Capt. Lt. Sgt. Rev. Hon. Prof. (capitalised
///   only: "rev." is a word), vs. and etc. (any case), "No." only before a
///   number or a serial ("No. 5" -> "Number five"; "No." alone is the word
///   "no"). "St." is "Saint" before a capitalised word ("St. Louis") and
///   "Street" otherwise ("Main St."). The expansion takes the written case
///   ("MR." -> "MISTER"). The period is dropped, except at the end of the text
///   and after Jr./Sr./Co./Ltd./etc./Street when a capitalised word follows,
///   where it also ends a sentence.
/// - "&" -> "and", with spaces around it ("AT&T" -> "AT and T").
/// - A number glued to letters is separated from them: "B52" -> "B fifty-two",
///   "10am" -> "ten am".
///
/// Letters outside ASCII stay as written (espeak-ng reads them; the ARPAbet
/// front end folds them itself). Not handled, left as written: ranges
/// ("1990-1995" reads as two years joined by a hyphen), fractions ("1/2"),
/// units, URLs, other currencies, abbreviations without their period.
/// `options` can leave numbers or abbreviations as written.
inline std::string normalize_english(std::string_view text, const NormalizeOptions& options = {}) {
  using namespace detail::normalize;
  const std::string s = ascii_quotes(collapse_whitespace(text));
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  std::size_t i = 0;
  while (i < s.size()) {
    std::optional<Reading> r;
    if (options.numbers) r = read_currency(s, i);
    if (!r && options.numbers) r = read_serial(s, i);
    if (!r && options.numbers) r = read_number(s, i);
    if (!r && options.abbreviations) r = read_abbreviation(s, i);
    if (!r && options.numbers) r = read_roman(s, i);
    if (r) {
      // Words never stick to neighbouring letters or digits ("B52", "10am").
      if (i > 0 && is_alnum(s[i - 1])) out += ' ';
      out += r->words;
      if (alnum_at(s, r->end)) out += ' ';
      i = r->end;
    } else if (s[i] == '&') {
      out += " and ";
      ++i;
    } else {
      out += s[i++];
    }
  }
  return collapse_whitespace(out);
}

}  // namespace kokoro::tts
